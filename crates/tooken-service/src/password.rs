//! Human passwords: argon2id, hashed and checked on the blocking pool (a
//! hash takes tens of milliseconds of CPU, which must not stall the async
//! workers).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};

/// argon2id's cost: memory, passes, lanes.
pub use argon2::Params;
use secrecy::{ExposeSecret, SecretString};
use tooken_core::credential::random_bytes;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted: hashing cost grows with length.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the password hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Why a new password is refused, in words for the form.
pub fn check_new_password(password: &str, confirm: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("Use at least {MIN_PASSWORD_CHARS} characters."));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("Use at most {MAX_PASSWORD_BYTES} bytes."));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("The password must not be your email address.".into());
    }
    if password != confirm {
        return Err("The two passwords do not match.".into());
    }
    Ok(())
}

/// Hashes `password` with argon2id and a fresh random salt, as a PHC string
/// (which records the algorithm, cost and salt).
pub async fn hash_password(
    password: SecretString,
    params: Params,
) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(PasswordError::Hash)?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(PasswordError::Hash)
    })
    .await?
}

/// Checks `password` against `stored` (a PHC string) with the cost the
/// hash records: `Some(matches)` once argon2id has run, `None` when the
/// stored hash cannot be read (then nothing was checked, and the caller
/// must treat it as a failure).
pub async fn verify_password(
    password: SecretString,
    stored: String,
) -> Result<Option<bool>, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            tracing::error!("a stored password hash cannot be parsed");
            return None;
        };
        Some(
            Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await
    .map_err(PasswordError::from)
}

/// The argon2 parameters a PHC string records (`m=…,t=…,p=…`).
pub fn hash_params(stored: &str) -> Option<&str> {
    stored.split('$').find(|part| part.starts_with("m="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(8, 1, 1, None).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash_password(SecretString::from("correct horse battery"), cheap())
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_eq!(hash_params(&h), Some("m=8,t=1,p=1"));
        assert_eq!(
            verify_password(SecretString::from("correct horse battery"), h.clone())
                .await
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            verify_password(SecretString::from("wrong horse battery"), h)
                .await
                .unwrap(),
            Some(false)
        );
        assert_eq!(
            verify_password(SecretString::from("x"), "garbage".into())
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(check_new_password("short", "short", "a@b.c").is_err());
        assert!(check_new_password("a@example.com", "a@example.com", "a@example.com").is_err());
        assert!(check_new_password("long enough pw", "long enough pX", "a@b.c").is_err());
        assert!(check_new_password("long enough pw", "long enough pw", "a@b.c").is_ok());
    }
}
