//! Showing a new secret exactly once, across a redirect.
//!
//! A POST that makes a secret (a token created or rotated, an API key
//! created or regenerated, an invitation) answers with a redirect to the
//! page of what it made (so reloading that page never resubmits the form),
//! and that page shows the secret once. Between the two, neither side alone
//! holds the secret: the store keeps it XORed with a one-time pad of the
//! same length drawn from the OS CSPRNG, and only the browser holds the pad,
//! in a short-lived `HttpOnly` cookie. The page takes (reads and deletes)
//! the store's half and clears the cookie, so a reload shows nothing.
//! Taking works only for the session that made it, and for a while only.

use axum::http::{HeaderMap, HeaderValue};
use chrono::Duration;
use tooken_core::audit::hex;
use tooken_core::credential::random_bytes;
use tooken_core::SecretHash;

use super::error::{DashError, DashResult};
use super::session::{cookie, set_cookie, Session};
use crate::AppState;

pub const REVEAL_COOKIE: &str = "tooken_reveal";
/// How long a secret waits to be shown.
const REVEAL_LIFETIME_SECONDS: i64 = 600;

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok().filter(|p| p.len() == 2)?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// Keeps `secret` for one showing on the page of `target_kind`
/// `target_id`; returns the cookie to send with the redirect there.
pub async fn seal(
    state: &AppState,
    session: &Session,
    target_kind: &str,
    target_id: &str,
    secret: &str,
) -> DashResult<HeaderValue> {
    let id = hex(&random_bytes::<16>());
    let mut pad = vec![0u8; secret.len()];
    getrandom_fill(&mut pad);
    let sealed: Vec<u8> = secret.bytes().zip(&pad).map(|(s, p)| s ^ p).collect();
    let expires_at = state.service.now() + Duration::seconds(REVEAL_LIFETIME_SECONDS);
    state
        .service
        .keep_reveal(
            session,
            SecretHash::of(&id),
            (target_kind, target_id),
            &sealed,
            expires_at,
        )
        .await?;
    Ok(set_cookie(
        REVEAL_COOKIE,
        &format!("{id}.{}", hex(&pad)),
        Some(REVEAL_LIFETIME_SECONDS),
        session.secure,
    ))
}

fn getrandom_fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(32) {
        let r = random_bytes::<32>();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
}

/// The secret kept for this page, if any, taken so it is never shown
/// again; with the cookie that clears the pad when one was used.
pub async fn open(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    target_kind: &str,
    target_id: &str,
) -> DashResult<(Option<String>, Option<HeaderValue>)> {
    let Some((id, pad)) = cookie(headers, REVEAL_COOKIE).and_then(|c| c.split_once('.')) else {
        return Ok((None, None));
    };
    let Some(pad) = unhex(pad) else {
        return Ok((None, None));
    };
    let taken = state
        .service
        .take_reveal(session, &SecretHash::of(id), (target_kind, target_id))
        .await?;
    let Some(sealed) = taken else {
        return Ok((None, None));
    };
    if sealed.len() != pad.len() {
        return Err(DashError::internal(std::io::Error::other(
            "a sealed secret and its pad differ in length",
        )));
    }
    let secret: Vec<u8> = sealed.iter().zip(&pad).map(|(s, p)| s ^ p).collect();
    let secret = String::from_utf8(secret)
        .map_err(|_| DashError::internal(std::io::Error::other("a sealed secret is not text")))?;
    Ok((
        Some(secret),
        Some(set_cookie(REVEAL_COOKIE, "", Some(0), session.secure)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = random_bytes::<20>();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes.to_vec());
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
