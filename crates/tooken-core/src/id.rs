//! Resource ids: `<type>_<26 lowercase Crockford base32>`, a 48-bit
//! millisecond timestamp then 80 random bits (the ULID layout), so ids sort by
//! creation time. An id is never a secret and never looks like a credential
//! (credentials have a mode segment and a 36-character base62 body).

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::credential::random_bytes;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ENCODED_LEN: usize = 26;

/// The kinds of resource that have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Workspace,
    ApiKey,
    Token,
    Event,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Workspace => "ws",
            IdKind::ApiKey => "key",
            IdKind::Token => "tk",
            IdKind::Event => "evt",
        }
    }
}

static LAST: Mutex<u128> = Mutex::new(0);

/// A new id of `kind`. Within one process, ids are strictly increasing.
pub fn new_id(kind: IdKind, now: DateTime<Utc>) -> String {
    let ms = now.timestamp_millis().max(0) as u128 & ((1 << 48) - 1);
    let rand = random_bytes::<10>();
    let mut value = ms << 80;
    for (i, b) in rand.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    {
        // Same millisecond (or a clock step back): keep ids increasing so
        // that "newest first" is also "highest id first".
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if value <= *last {
            value = *last + 1;
        }
        *last = value;
    }
    let mut out = String::with_capacity(kind.prefix().len() + 1 + ENCODED_LEN);
    out.push_str(kind.prefix());
    out.push('_');
    for i in (0..ENCODED_LEN).rev() {
        out.push(CROCKFORD[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// Is `s` shaped like an id of `kind`? (The id types' `parse` asks.)
fn is_id(kind: IdKind, s: &str) -> bool {
    match s
        .strip_prefix(kind.prefix())
        .and_then(|r| r.strip_prefix('_'))
    {
        Some(body) => body.len() == ENCODED_LEN && body.bytes().all(|b| CROCKFORD.contains(&b)),
        None => false,
    }
}

/// `s` is not an id of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an id of this kind")]
pub struct NotAnId;

/// Defines an id type of one kind: built by `new` or `parse`, read as `&str`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        string_type!($(#[$doc])* $name, NotAnId);

        impl $name {
            /// A new id, created at `now`.
            pub fn new(now: DateTime<Utc>) -> $name {
                $name(new_id($kind, now))
            }

            /// `s`, if it is shaped like an id of this kind.
            pub fn parse(s: &str) -> Result<$name, NotAnId> {
                if is_id($kind, s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(NotAnId)
                }
            }
        }
    };
}

id_type!(
    /// A token's id: `tk_…`.
    TokenId,
    IdKind::Token
);
id_type!(
    /// An API key's id: `key_…`.
    ApiKeyId,
    IdKind::ApiKey
);
id_type!(
    /// An audit event's id: `evt_…`.
    EventId,
    IdKind::Event
);

/// Is `s` shaped like an id of any kind (`usr_…` for dashboard users
/// included): a short lowercase prefix, `_`, 26 Crockford base32 digits.
pub fn looks_like_id(s: &str) -> bool {
    match s.split_once('_') {
        Some((prefix, body)) => {
            (2..=4).contains(&prefix.len())
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && body.len() == ENCODED_LEN
                && body.bytes().all(|b| CROCKFORD.contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::is_well_formed;

    #[test]
    fn ids_increase_and_validate() {
        let now = Utc::now();
        let a = new_id(IdKind::Token, now);
        let b = new_id(IdKind::Token, now);
        assert!(a < b);
        assert!(is_id(IdKind::Token, &a));
        assert!(!is_id(IdKind::ApiKey, &a));
        assert!(!is_id(IdKind::Token, "tk_short"));
        assert!(!is_well_formed(&a));
        assert!(looks_like_id(&a) && looks_like_id(&new_id(IdKind::Workspace, now)));
        assert!(!looks_like_id("tk_short"));
        let secret = crate::Credential::generate("tkn", crate::Mode::Live);
        assert!(!looks_like_id(secret.expose()));
    }

    #[test]
    fn typed_ids_parse_only_their_kind() {
        let now = Utc::now();
        let token = TokenId::new(now);
        assert_eq!(TokenId::parse(token.as_str()), Ok(token.clone()));
        assert_eq!(ApiKeyId::parse(token.as_str()), Err(NotAnId));
        assert_eq!(EventId::parse("evt_short"), Err(NotAnId));
        assert!(ApiKeyId::parse(&new_id(IdKind::ApiKey, now)).is_ok());
        let secret = crate::Credential::generate("tkn", crate::Mode::Live);
        assert_eq!(TokenId::parse(secret.expose()), Err(NotAnId));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let early = new_id(IdKind::Event, Utc::now() - chrono::Duration::days(1));
        let late = new_id(IdKind::Event, Utc::now() + chrono::Duration::days(1));
        assert!(early < late);
    }
}
