//! `Credential::parse`: total (never panics), and what it accepts is exactly
//! what `is_well_formed` accepts, kept byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tooken_core::credential::{is_well_formed, API_KEY_PREFIX};
use tooken_core::{Credential, CredentialKind, SecretHash};

fuzz_target!(|data: &[u8]| {
    let Ok(candidate) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Credential::parse(candidate);
    assert_eq!(parsed.is_ok(), is_well_formed(candidate));
    if let Ok(c) = parsed {
        assert_eq!(c.expose(), candidate);
        assert!(candidate.starts_with(&format!("{}_{}_", c.prefix(), c.mode())));
        assert_eq!(
            c.kind() == CredentialKind::ApiKey,
            c.prefix() == API_KEY_PREFIX
        );
        assert!(c.hint().ends_with(&candidate[candidate.len() - 4..]));
        assert!(c.hash() == SecretHash::of(candidate));
    }
});
