//! What of a client's input may be repeated in an error message or a log
//! line.
//!
//! People paste secrets in the wrong places: a token in the URL instead of
//! the `Authorization` header, a key as a scope, a setup link with a typo.
//! Whatever the mistake, the answer and the log must not carry the secret
//! onwards. So client-sent text is repeated only when it cannot hold a
//! piece of a secret worth having: when it is shorter than
//! [`MIN_SECRET_PIECE`] characters, when it is a plain name (lowercase
//! letters and `_ . : * -`, like every field name and scope of the API), or
//! when it is shaped like a resource id. Credentials (base62, mixing digits
//! and both cases) and dashboard links (hex) are never any of these.

use std::borrow::Cow;

/// Client-sent text this long or longer is repeated only if it is a plain
/// name or a resource id.
pub const MIN_SECRET_PIECE: usize = 16;
/// Longest plain name repeated.
const MAX_PLAIN_NAME: usize = 64;
/// What is shown instead of text that may not be repeated.
pub const REDACTED: &str = "<redacted>";

/// May `s`, sent by a client, be repeated in an error or a log line?
pub fn may_repeat(s: &str) -> bool {
    s.chars().count() < MIN_SECRET_PIECE
        || (s.len() <= MAX_PLAIN_NAME
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b"_.:*-".contains(&b)))
        || crate::id::looks_like_id(s)
}

/// `s` if it may be repeated, else [`REDACTED`].
pub fn shown(s: &str) -> &str {
    if may_repeat(s) {
        s
    } else {
        REDACTED
    }
}

/// A request path with each segment that may not be repeated replaced by
/// [`REDACTED`], for the request log: `/v1/tokens/tk_…` stays as it is,
/// `/dashboard/setup/<link secret>` does not.
pub fn redact_path(path: &str) -> Cow<'_, str> {
    if path.split('/').all(may_repeat) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(path.split('/').map(shown).collect::<Vec<_>>().join("/"))
}

/// A deserializer's error message (serde: JSON bodies, query strings,
/// forms, path parameters) without the client's values it quotes:
/// `string "…"` and `` `…` `` keep their content only if it may be
/// repeated, so `invalid type: string "tkn_live_…", expected i64` becomes
/// `invalid type: string "<redacted>", expected i64` while `unknown field
/// `nme`, expected one of …` stays as it is. Then, since a value may
/// itself hold quotes or backticks, every remaining word that may not be
/// repeated is replaced as well.
pub fn redact_serde_message(message: &str) -> String {
    redact_words(&redact_quoted(message))
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let quote = rest.find("string \"").map(|i| (i, true));
        let tick = rest.find('`').map(|i| (i, false));
        let next = match (quote, tick) {
            (Some(q), Some(t)) => Some(if q.0 < t.0 { q } else { t }),
            (q, t) => q.or(t),
        };
        let Some((at, is_string)) = next else {
            out.push_str(rest);
            return out;
        };
        let (open, close) = if is_string {
            ("string \"", '"')
        } else {
            ("`", '`')
        };
        out.push_str(&rest[..at]);
        out.push_str(open);
        let inner_start = at + open.len();
        let Some(len) = closing(&rest[inner_start..], close, is_string) else {
            // Unterminated: whatever follows is the client's.
            out.push_str(REDACTED);
            return out;
        };
        out.push_str(shown(&rest[inner_start..inner_start + len]));
        out.push(close);
        rest = &rest[inner_start + len + close.len_utf8()..];
    }
}

/// Replaces each word (text between spaces, quotes, backticks and
/// punctuation) that may not be repeated.
fn redact_words(s: &str) -> String {
    let is_separator = |c: char| c.is_whitespace() || "\"`',;()".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    for c in s.chars() {
        if is_separator(c) {
            out.push_str(shown(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(shown(&word));
    out
}

/// The length of text before the closing `close`, skipping characters
/// escaped with `\` when `escapes` (Rust's `{:?}` quoting).
fn closing(s: &str, close: char, escapes: bool) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if escapes => escaped = true,
            c if c == close => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, Mode};
    use proptest::prelude::*;

    #[test]
    fn names_ids_and_short_text_may_be_repeated() {
        for s in [
            "expires_inn",
            "grace_period_second",
            "invoices:read",
            "Invoices:Read",
            "tk_01m8ftre7e5bnqsqwq49bq8t70",
            "v1",
            "openapi.json",
            "",
        ] {
            assert!(may_repeat(s), "{s}");
        }
    }

    #[test]
    fn credentials_and_links_may_not() {
        let key = Credential::generate("tok", Mode::Live);
        let token = Credential::generate("acme", Mode::Test);
        let link = crate::audit::hex(&crate::credential::random_bytes::<32>());
        for s in [key.expose(), token.expose(), &link, &key.expose()[9..25]] {
            assert!(!may_repeat(s), "{s}");
            assert_eq!(shown(s), REDACTED);
        }
    }

    #[test]
    fn paths_keep_routes_and_ids_only() {
        let token = Credential::generate("tkn", Mode::Live);
        assert_eq!(
            redact_path("/v1/tokens/tk_01m8ftre7e5bnqsqwq49bq8t70/rotate"),
            "/v1/tokens/tk_01m8ftre7e5bnqsqwq49bq8t70/rotate"
        );
        assert_eq!(
            redact_path(&format!("/v1/tokens/{}/revoke", token.expose())),
            "/v1/tokens/<redacted>/revoke"
        );
        let link = "c6af83a87b404e0af6157a2d73012e8cbc9a7897ee9f8ecd6b4ba5acd61b184f";
        assert_eq!(
            redact_path(&format!("/dashboard/setup/{link}")),
            "/dashboard/setup/<redacted>"
        );
    }

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        let secret = Credential::generate("tkn", Mode::Live);
        let s = secret.expose();
        let cases = [
            (
                format!("invalid type: string \"{s}\", expected i64 at line 1 column 76"),
                "invalid type: string \"<redacted>\", expected i64 at line 1 column 76".to_owned(),
            ),
            (
                format!("unknown field `{s}`, expected one of `limit`, `starting_after`"),
                "unknown field `<redacted>`, expected one of `limit`, `starting_after`".to_owned(),
            ),
            (
                format!("unknown variant `{s}`, expected `live` or `test`"),
                "unknown variant `<redacted>`, expected `live` or `test`".to_owned(),
            ),
            (
                "invalid type: string \"abc\", expected i64".to_owned(),
                "invalid type: string \"abc\", expected i64".to_owned(),
            ),
            (
                "unknown field `nme`, expected `name`".to_owned(),
                "unknown field `nme`, expected `name`".to_owned(),
            ),
            (
                format!("invalid value: string \"{s}\\\"`{s}\", expected x"),
                "invalid value: string \"<redacted>\", expected x".to_owned(),
            ),
            (
                format!("unknown field `{s}"),
                "unknown field `<redacted>".to_owned(),
            ),
            (
                format!("unknown field `x`{s}`, expected `name`"),
                // Misaligned quoting, but nothing of the value is left.
                "unknown field `x`<redacted>`, expected `name`<redacted>".to_owned(),
            ),
            (
                "expected value at line 1 column 9".to_owned(),
                "expected value at line 1 column 9".to_owned(),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(redact_serde_message(&message), expected);
        }
    }

    proptest! {
        /// Whatever the message, no credential in it survives redaction,
        /// and redacting never panics.
        #[test]
        fn no_credential_survives(before in ".{0,20}", after in ".{0,20}", quote in 0..3usize) {
            let secret = Credential::generate("tkn", Mode::Live);
            let s = secret.expose();
            let message = match quote {
                0 => format!("{before}string \"{s}\"{after}"),
                1 => format!("{before}`{s}`{after}"),
                _ => format!("{before}string {s:?}{after}"),
            };
            let redacted = redact_serde_message(&message);
            prop_assert!(!redacted.contains(&s[9..25]), "{}", redacted);
        }
    }
}
