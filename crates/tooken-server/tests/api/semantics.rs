//! Token semantics: built-in scopes, attenuation, cascades, modes, rotation, policy.
