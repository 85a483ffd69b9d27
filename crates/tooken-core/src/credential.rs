//! The credential format: `<prefix>_<mode>_<body>`.
//!
//! `body` is 30 base62 characters drawn from the OS CSPRNG (≈178 bits)
//! followed by 6 base62 characters encoding the CRC32 of everything before
//! them. The checksum lets a scanner validate a candidate offline and rejects
//! a typo before any lookup; it adds no security by itself.
//!
//! Secrets live in [`Credential`], whose `Debug` never prints the value and
//! whose memory is zeroized on drop. Only [`SecretHash`] (SHA-256) is stored.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of every workspace API key.
pub const API_KEY_PREFIX: &str = "tok";
/// Prefix of tokens unless a workspace sets its own `token_prefix`.
pub const DEFAULT_TOKEN_PREFIX: &str = "tkn";
/// Random base62 characters in a credential body.
pub const RANDOM_LEN: usize = 30;
/// Checksum base62 characters at the end of a credential body.
pub const CHECKSUM_LEN: usize = 6;
/// Length of the body after `<prefix>_<mode>_`.
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `live` or `test`. Every API key and token has one; a credential only ever
/// sees and creates objects of its own mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Live,
    Test,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Mode::Live),
            "test" => Ok(Mode::Test),
            _ => Err(UnknownMode),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("mode must be `live` or `test`")]
pub struct UnknownMode;

/// What a credential is, judged from its prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    Token,
}

/// Why a string is not a well-formed credential. Deliberately coarse: callers
/// must not tell clients which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed credential")]
pub struct Malformed;

/// Is `prefix` acceptable as a prefix: 2–12 lowercase ASCII letters or digits.
pub fn is_valid_prefix(prefix: &str) -> bool {
    (2..=12).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A parsed, well-formed credential. Holds the secret; never prints it.
pub struct Credential {
    secret: SecretString,
    prefix_len: usize,
    mode: Mode,
}

impl Credential {
    /// A fresh credential with the given prefix and mode, from the OS CSPRNG.
    ///
    /// Panics if `prefix` is not a valid prefix: prefixes come from
    /// validated settings or constants, never straight from a client.
    pub fn generate(prefix: &str, mode: Mode) -> Credential {
        assert!(is_valid_prefix(prefix), "invalid credential prefix");
        let mut s = String::with_capacity(prefix.len() + 6 + BODY_LEN);
        s.push_str(prefix);
        s.push('_');
        s.push_str(mode.as_str());
        s.push('_');
        push_random_base62(&mut s, RANDOM_LEN);
        let checksum = encode_checksum(crc32fast::hash(s.as_bytes()));
        // Safe: base62 digits are ASCII.
        s.push_str(std::str::from_utf8(&checksum).unwrap_or_default());
        Credential {
            secret: SecretString::from(s),
            prefix_len: prefix.len(),
            mode,
        }
    }

    /// Strict, total parse. Any deviation from the format is [`Malformed`].
    pub fn parse(candidate: &str) -> Result<Credential, Malformed> {
        let (prefix_len, mode) = check_format(candidate)?;
        Ok(Credential {
            secret: SecretString::from(candidate.to_owned()),
            prefix_len,
            mode,
        })
    }

    /// The credential in an `Authorization` header's value: `Bearer`, exactly
    /// one space, and a well-formed credential, nothing before or after.
    /// Total: any other bytes are [`Malformed`].
    pub fn from_authorization(value: &[u8]) -> Result<Credential, Malformed> {
        let candidate = value.strip_prefix(b"Bearer ").ok_or(Malformed)?;
        Credential::parse(std::str::from_utf8(candidate).map_err(|_| Malformed)?)
    }

    pub fn prefix(&self) -> &str {
        &self.secret.expose_secret()[..self.prefix_len]
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn kind(&self) -> CredentialKind {
        if self.prefix() == API_KEY_PREFIX {
            CredentialKind::ApiKey
        } else {
            CredentialKind::Token
        }
    }

    /// The SHA-256 of the whole credential: the only form ever stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.secret.expose_secret())
    }

    /// The display hint, e.g. `tkn_live_…9fQz`: prefix, mode, last four.
    pub fn hint(&self) -> String {
        let s = self.secret.expose_secret();
        format!("{}_{}_…{}", self.prefix(), self.mode, &s[s.len() - 4..])
    }

    /// The secret itself, for the one response that shows it.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({})", self.hint())
    }
}

/// Checks the whole format; returns the prefix length and mode.
fn check_format(candidate: &str) -> Result<(usize, Mode), Malformed> {
    let bytes = candidate.as_bytes();
    let first = bytes.iter().position(|&b| b == b'_').ok_or(Malformed)?;
    let prefix = &candidate[..first];
    if !is_valid_prefix(prefix) {
        return Err(Malformed);
    }
    let rest = &candidate[first + 1..];
    let (mode, body) = if let Some(body) = rest.strip_prefix("live_") {
        (Mode::Live, body)
    } else if let Some(body) = rest.strip_prefix("test_") {
        (Mode::Test, body)
    } else {
        return Err(Malformed);
    };
    if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Malformed);
    }
    let split = candidate.len() - CHECKSUM_LEN;
    let expected = encode_checksum(crc32fast::hash(&bytes[..split]));
    if expected[..] != bytes[split..] {
        return Err(Malformed);
    }
    Ok((first, mode))
}

/// Does `candidate` have the exact shape and checksum of a credential? For
/// scanners: no secret is kept.
pub fn is_well_formed(candidate: &str) -> bool {
    check_format(candidate).is_ok()
}

fn push_random_base62(out: &mut String, n: usize) {
    // Rejection sampling keeps the distribution uniform: 248 = 4 × 62.
    let mut pushed = 0;
    let mut buf = [0u8; 64];
    while pushed < n {
        // The OS CSPRNG failing is unrecoverable: no credential can be made
        // safely without it.
        getrandom::fill(&mut buf).expect("OS random number generator unavailable");
        for &b in &buf {
            if b < 248 && pushed < n {
                out.push(BASE62[(b % 62) as usize] as char);
                pushed += 1;
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut buf);
}

fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

/// Random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    buf
}

/// A secret as a request or response body carries it (a new token's
/// `secret`, the `token` presented to verify): serialized as the plain
/// string, so the wire format is the string itself, but its `Debug` shows
/// only the hint (or `<redacted>` when it is no credential), it is zeroized
/// on drop, and two are compared in constant time. Read it with
/// [`Secret::expose`] (or through `Deref`, explicitly), never by printing.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Its display hint when it is a well-formed credential.
    pub fn hint(&self) -> Option<String> {
        Credential::parse(self.expose()).ok().map(|c| c.hint())
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        self.expose()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<&Credential> for Secret {
    fn from(c: &Credential) -> Secret {
        Secret::new(c.expose())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.expose().as_bytes(), other.expose().as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hint() {
            Some(hint) => write!(f, "Secret({hint})"),
            None => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl utoipa::PartialSchema for Secret {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl utoipa::ToSchema for Secret {}

/// SHA-256 of a secret. Comparing two hashes is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_slice(bytes: &[u8]) -> Option<SecretHash> {
        bytes.try_into().ok().map(SecretHash)
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

/// Consistent with the constant-time `Eq`, so that maps keyed by a hash
/// (the credential cache) compare keys in constant time too.
impl std::hash::Hash for SecretHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_credentials_have_the_documented_shape() {
        let c = Credential::generate("tok", Mode::Live);
        let s = c.expose();
        assert!(s.starts_with("tok_live_"));
        assert_eq!(s.len(), "tok_live_".len() + 36);
        assert_eq!(c.kind(), CredentialKind::ApiKey);
        assert_eq!(c.mode(), Mode::Live);
        let t = Credential::generate("acme", Mode::Test);
        assert!(t.expose().starts_with("acme_test_"));
        assert_eq!(t.kind(), CredentialKind::Token);
        assert_eq!(t.prefix(), "acme");
    }

    #[test]
    fn two_credentials_differ() {
        let a = Credential::generate("tkn", Mode::Live);
        let b = Credential::generate("tkn", Mode::Live);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        // Hash agrees with the constant-time Eq: usable as a map key.
        let set: std::collections::HashSet<SecretHash> = [a.hash(), b.hash(), a.hash()].into();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&SecretHash::of(a.expose())));
    }

    #[test]
    fn hint_shows_prefix_mode_and_last_four_only() {
        let c = Credential::generate("tkn", Mode::Live);
        let s = c.expose();
        assert_eq!(c.hint(), format!("tkn_live_…{}", &s[s.len() - 4..]));
        assert!(!c.hint().contains(&s[9..20]));
    }

    #[test]
    fn wire_secrets_travel_as_strings_and_print_as_hints() {
        let c = Credential::generate("tkn", Mode::Live);
        let secret = Secret::from(&c);
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, format!("\"{}\"", c.expose()));
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
        assert_eq!(format!("{back:?}"), format!("Secret({})", c.hint()));
        let other = Secret::new("not a credential at all, but secret");
        assert_eq!(format!("{other:?}"), "Secret(<redacted>)");
        assert_ne!(other, secret);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let c = Credential::generate("tkn", Mode::Live);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(c.expose()));
        assert!(!dbg.contains(&c.expose()[9..30]));
    }

    #[test]
    fn checksum_catches_a_single_changed_character() {
        let c = Credential::generate("tkn", Mode::Live);
        let s = c.expose().to_string();
        for i in 9..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(b).unwrap();
            assert_eq!(Credential::parse(&typo).err(), Some(Malformed), "{i}");
        }
    }

    #[test]
    fn rejects_every_kind_of_malformation() {
        let good = Credential::generate("tok", Mode::Live).expose().to_string();
        let body = &good[9..];
        let cases = [
            String::new(),
            "tok".into(),
            "tok_live_".into(),
            format!("tok_prod_{body}"),
            format!("tok_LIVE_{body}"),
            format!("TOK_live_{body}"),
            format!("t_live_{body}"),
            format!("abcdefghijklm_live_{body}"),
            format!("{good}x"),
            good[..good.len() - 1].to_string(),
            format!(" {good}"),
            format!("{good} "),
            format!("{good}\n"),
            good.replace('_', "-"),
            format!(
                "tok_live_{}",
                &body.replacen(|c: char| c.is_alphanumeric(), "-", 1)
            ),
            format!("tok__live_{body}"),
        ];
        for case in cases {
            assert!(Credential::parse(&case).is_err(), "accepted {case:?}");
        }
        assert!(Credential::parse(&good).is_ok());
    }

    #[test]
    fn checksum_is_crc32_of_everything_before_it() {
        let c = Credential::generate("tkn", Mode::Test);
        let s = c.expose();
        let (head, tail) = s.split_at(s.len() - 6);
        let mut n: u64 = 0;
        for ch in tail.bytes() {
            n = n * 62 + BASE62.iter().position(|&d| d == ch).unwrap() as u64;
        }
        assert_eq!(n, crc32fast::hash(head.as_bytes()) as u64);
    }

    #[test]
    fn hashes_compare_by_value() {
        assert_eq!(SecretHash::of("a"), SecretHash::of("a"));
        assert_ne!(SecretHash::of("a"), SecretHash::of("b"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Credential::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(s in "[a-z0-9]{0,14}_(live|test|x)_[A-Za-z0-9_ -]{0,40}") {
            let _ = Credential::parse(&s);
        }

        #[test]
        fn parse_agrees_with_is_well_formed_and_keeps_the_input(s in "\\PC*") {
            let parsed = Credential::parse(&s);
            prop_assert_eq!(parsed.is_ok(), is_well_formed(&s));
            if let Ok(c) = parsed {
                prop_assert_eq!(c.expose(), s.as_str());
            }
        }

        #[test]
        fn any_single_substitution_is_caught(
            prefix in "[a-z0-9]{2,12}",
            at in any::<prop::sample::Index>(),
            with in "[A-Za-z0-9_]",
        ) {
            let good = Credential::generate(&prefix, Mode::Live).expose().to_owned();
            let i = at.index(good.len());
            prop_assume!(good.as_bytes()[i] != with.as_bytes()[0]);
            let mut typo = good.into_bytes();
            typo[i] = with.as_bytes()[0];
            let typo = String::from_utf8(typo).unwrap();
            prop_assert!(Credential::parse(&typo).is_err(), "{typo} accepted");
        }

        #[test]
        fn authorization_parsing_is_total(value in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(c) = Credential::from_authorization(&value) {
                prop_assert_eq!(Some(c.expose().as_bytes()), value.strip_prefix(b"Bearer "));
            }
        }

        #[test]
        fn authorization_is_bearer_one_space_and_a_credential(
            prefix in "[a-z0-9]{2,12}",
            before in "|bearer |Bearer  |Bearer\t|Basic | Bearer |Bearer|BEARER ",
            after in "|[ \t\r\n,;=]|[ ,][a-z=\\\"]{1,8}",
        ) {
            let c = Credential::generate(&prefix, Mode::Test);
            let good = format!("Bearer {}", c.expose());
            let parsed = Credential::from_authorization(good.as_bytes()).unwrap();
            prop_assert_eq!(parsed.hash(), c.hash());
            let bad = format!("{before}{}{after}", c.expose());
            prop_assume!(bad != good);
            prop_assert!(Credential::from_authorization(bad.as_bytes()).is_err(), "{bad:?}");
        }

        #[test]
        fn generated_credentials_round_trip(prefix in "[a-z0-9]{2,12}", live in any::<bool>()) {
            let mode = if live { Mode::Live } else { Mode::Test };
            let c = Credential::generate(&prefix, mode);
            let parsed = Credential::parse(c.expose()).unwrap();
            prop_assert_eq!(parsed.prefix(), prefix.as_str());
            prop_assert_eq!(parsed.mode(), mode);
            prop_assert_eq!(parsed.hash(), c.hash());
            prop_assert_eq!(parsed.hint(), c.hint());
        }
    }
}
