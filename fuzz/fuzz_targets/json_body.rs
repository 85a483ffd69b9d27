//! Request bodies as the API reads them: strict JSON-object decoding of
//! every wire type, then the same validation the server applies. Never a
//! panic; an accepted body is one JSON object and nothing more.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use tooken_core::api::{
    parse_json_object, CreateToken, RevokeToken, RotateToken, UpdateSettings, UpdateToken,
    VerifyRequest,
};
use tooken_core::scope::parse_scopes;
use tooken_core::text::{Description, Name, Reason};
use tooken_core::{token, Credential, Settings};

fn decode<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match parse_json_object::<T>(data) {
        Ok(v) => {
            let whole: serde_json::Value =
                serde_json::from_slice(data).expect("accepted a body that is not JSON");
            assert!(whole.is_object(), "accepted a body that is not an object");
            Some(v)
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let settings = Settings::default();
    if let Some(req) = decode::<CreateToken>(data) {
        let _ = Name::parse(&req.name);
        let _ = req.description.as_deref().map(Description::parse);
        let _ = parse_scopes("scopes", &req.scopes);
        let _ = req.metadata.map(token::parse_metadata);
        let _ = token::expiry_for_new_token(now, req.expires_at, req.expires_in, &settings);
    }
    if let Some(req) = decode::<UpdateToken>(data) {
        let _ = req.name.as_deref().map(Name::parse);
        let _ = req.description.flatten().as_deref().map(Description::parse);
        let _ = req.metadata.flatten().map(token::parse_metadata);
        let _ = req.scopes.as_deref().map(|s| parse_scopes("scopes", s));
        let _ = req
            .expires_at
            .map(|at| token::check_expiry(now, at, &settings));
    }
    if let Some(req) = decode::<UpdateSettings>(data) {
        let mut s = Settings::default();
        s.require_expiration = req.require_expiration.unwrap_or(s.require_expiration);
        s.max_token_ttl_seconds = req.max_token_ttl_seconds.unwrap_or(s.max_token_ttl_seconds);
        s.default_token_ttl_seconds = req
            .default_token_ttl_seconds
            .unwrap_or(s.default_token_ttl_seconds);
        s.token_prefix = req.token_prefix.unwrap_or(s.token_prefix);
        s.audit_retention_days = req.audit_retention_days.unwrap_or(s.audit_retention_days);
        if s.validate().is_ok() {
            // Valid settings never make computing an expiry overflow.
            let _ = token::expiry_for_new_token(now, None, None, &s);
            let _ = token::expiry_for_new_token(now, None, Some(1), &s);
            let _ = Credential::generate(&s.token_prefix, tooken_core::Mode::Live);
        }
    }
    if let Some(req) = decode::<RotateToken>(data) {
        let _ = req.grace_period_seconds;
    }
    if let Some(req) = decode::<RevokeToken>(data) {
        let _ = req.reason.as_deref().map(Reason::parse);
    }
    if let Some(req) = decode::<VerifyRequest>(data) {
        let _ = parse_scopes("scopes", &req.scopes);
        let _ = Credential::parse(req.token.expose());
    }
});
