//! The `Authorization` header of every API request: `Bearer`, one space and
//! a well-formed credential, nothing else, and never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tooken_core::Credential;

fuzz_target!(|data: &[u8]| {
    match Credential::from_authorization(data) {
        Ok(c) => {
            let rest = data
                .strip_prefix(b"Bearer ")
                .expect("accepted without `Bearer `");
            assert_eq!(c.expose().as_bytes(), rest);
        }
        Err(_) => {
            if let Some(rest) = data.strip_prefix(b"Bearer ") {
                let rest = std::str::from_utf8(rest);
                assert!(rest.map_or(true, |r| Credential::parse(r).is_err()));
            }
        }
    }
});
