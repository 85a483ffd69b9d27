//! Webhooks (SPEC §13): event names, signing secrets, Standard Webhooks
//! signatures and their verification, the retry schedule, and which
//! targets deliveries may go to.
//!
//! # Signatures
//!
//! Deliveries follow the Standard Webhooks convention: headers
//! `webhook-id` (the same on every attempt of one event),
//! `webhook-timestamp` (Unix seconds of the attempt) and
//! `webhook-signature: v1,<base64 of HMAC-SHA256(key, "id.timestamp.body")>`,
//! where the key is the base64-decoded part of the `whsec_…` secret. During
//! a secret's rotation overlap, one signature per secret, space-separated.
//! [`verify`] accepts a delivery when any `v1` signature matches (compared
//! in constant time) and the timestamp is within the tolerance (default
//! [`DEFAULT_TOLERANCE_SECONDS`]) of the receiver's clock; entries of other
//! versions are ignored. The Rust client and the Python and TypeScript SDKs
//! mirror it; `testdata/webhook-vectors.json` beside this crate holds the
//! cases they all must agree on (including the published Standard Webhooks
//! vectors).
//!
//! # Retries
//!
//! [`next_attempt`]: after the n-th failed attempt, wait 5 s × 3^(n−1),
//! at most 6 hours, times a jitter factor in [0.75, 1.25]; so the first
//! retry comes 3.75–6.25 s after the first failure, then about 15 s, 45 s,
//! 2 min, 7 min, 20 min, 1 h, 3 h, then every 6 h. Nothing is attempted
//! after 3 days from the first attempt ([`RETRY_FOR_SECONDS`]); the last
//! retry is moved up to that deadline, so an endpoint is tried about 20
//! times in all. The jitter comes in as a parameter: the schedule is pure.
//!
//! # Targets
//!
//! [`TargetUrl::parse`] accepts absolute `http`/`https` URLs with a host,
//! without user info or fragment, at most [`MAX_URL_BYTES`] bytes; a live
//! endpoint needs `https` unless private targets are allowed. It uses the
//! WHATWG URL parser of the `url` crate, the one the HTTP client uses, so
//! both read the same host (`http://2130706433/` and `http://0x7f.1/` are
//! both 127.0.0.1 to either).
//!
//! [`classify`] sorts an address (after DNS resolution, on every attempt:
//! the delivery side calls it) and [`check_address`] refuses loopback,
//! private (RFC 1918, IPv6 ULA), link-local, shared (CGNAT, 100.64.0.0/10),
//! reserved and documentation ranges unless private targets are allowed;
//! multicast, broadcast, unspecified and cloud metadata addresses are
//! refused even then (no development setup needs them as a webhook
//! target). IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
//! (`2002::/16`) addresses are judged by the IPv4 address they carry.

#![warn(missing_docs)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Mode, ValidationError};

/// Most webhook endpoints per workspace and mode.
pub const MAX_ENDPOINTS: usize = 10;
/// Longest endpoint URL, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;
/// Prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret.
pub const SECRET_BYTES: usize = 32;
/// Fewest key bytes a secret may have (Standard Webhooks: 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most key bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;
/// How far a delivery's timestamp may be from the receiver's clock, by
/// default.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
/// Deliveries are retried for this long after the first attempt: 3 days.
pub const RETRY_FOR_SECONDS: i64 = 3 * 86_400;
/// The wait after the first failure, before jitter.
pub const FIRST_RETRY_SECONDS: i64 = 5;
/// The longest wait between two attempts, before jitter: 6 hours.
pub const MAX_RETRY_DELAY_SECONDS: i64 = 6 * 3_600;

/// Header: the event's id, the same on every attempt.
pub const HEADER_ID: &str = "webhook-id";
/// Header: Unix seconds of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: the signatures, `v1,<base64>` space-separated.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

// ---------------------------------------------------------------------------
// event types
// ---------------------------------------------------------------------------

macro_rules! event_types {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// The kinds of event an endpoint may subscribe to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The event's name, e.g. `token.created`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    TokenCreated => "token.created", "A token was created.";
    TokenUpdated => "token.updated", "A token's name, description, metadata, scopes, expiry or caveats changed.";
    TokenRotated => "token.rotated", "A token got a new secret.";
    TokenRevoked => "token.revoked", "A token was revoked: one per token, a cascade's descendants each with `cascade_from`.";
    TokenExpiring => "token.expiring", "A token expires within the workspace's `expiry_warning_seconds` (sent once).";
    TokenExpired => "token.expired", "A token expired.";
    TokenUsageExceeded => "token.usage_exceeded", "A verification was refused: the token's budget is spent.";
    TokenRateLimited => "token.rate_limited", "A verification was refused by a rate limit (at most once per token per window).";
    TokenLeaked => "token.leaked", "A token was reported leaked.";
    ApiKeyCreated => "api_key.created", "An API key was created.";
    ApiKeyRegenerated => "api_key.regenerated", "An API key was regenerated.";
    ApiKeyDeleted => "api_key.deleted", "An API key was deleted.";
    ApiKeyLeaked => "api_key.leaked", "An API key was reported leaked.";
    SettingsUpdated => "settings.updated", "The workspace settings changed (sent to live endpoints).";
    AuthzRulesUpdated => "authz_rules.updated", "Gateway route rules changed (sent to live endpoints).";
    WebhookTest => "webhook.test", "A test event sent on request to one endpoint.";
}

/// A name that is not an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type: use names such as token.created or api_key.leaked, or \"*\"")]
pub struct UnknownEventType;

impl EventType {
    /// The event type named `s` (exactly, lowercase).
    pub fn parse(s: &str) -> Result<EventType, UnknownEventType> {
        EventType::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or(UnknownEventType)
    }

    /// Events about something without a mode (workspace settings), or that
    /// SPEC §13 sends to live endpoints only.
    pub fn live_endpoints_only(self) -> bool {
        matches!(
            self,
            EventType::SettingsUpdated | EventType::AuthzRulesUpdated
        )
    }
}

impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|e| e.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for EventType {}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventType::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An endpoint's `events` as sent: `"*"` or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EventsSpec {
    /// `"*"`: every event.
    All(String),
    /// Event names.
    List(Vec<String>),
}

/// The events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// `"*"`: all, including event types added later.
    All,
    /// These (at least one, no duplicates, in the order given).
    Only(Vec<EventType>),
}

impl EventFilter {
    /// Validates an endpoint's `events`; errors name `field` or `field[i]`.
    pub fn parse(field: &str, spec: &EventsSpec) -> Result<EventFilter, ValidationError> {
        match spec {
            EventsSpec::All(s) if s == "*" => Ok(EventFilter::All),
            EventsSpec::All(_) => Err(ValidationError::new(
                field,
                "must be a list of event names, or \"*\" for every event",
            )),
            EventsSpec::List(list) => {
                if list.is_empty() {
                    return Err(ValidationError::new(
                        field,
                        "must name at least one event, or be \"*\"",
                    ));
                }
                if list.len() > EventType::ALL.len() {
                    return Err(ValidationError::new(
                        field,
                        format!("at most {} event names", EventType::ALL.len()),
                    ));
                }
                let mut out = Vec::with_capacity(list.len());
                for (i, raw) in list.iter().enumerate() {
                    let e = EventType::parse(raw).map_err(|e| {
                        ValidationError::new(format!("{field}[{i}]"), e.to_string())
                    })?;
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
                Ok(EventFilter::Only(out))
            }
        }
    }

    /// Does the endpoint receive `event`?
    pub fn matches(&self, event: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(list) => list.contains(&event),
        }
    }
}

impl Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventFilter::All => s.serialize_str("*"),
            EventFilter::Only(list) => s.collect_seq(list),
        }
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = EventsSpec::deserialize(d)?;
        EventFilter::parse("events", &spec).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for EventFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <EventsSpec as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for EventFilter {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <EventsSpec as utoipa::ToSchema>::schemas(out);
    }
}

/// A delivery's body: `data` is the object as the API shows it (never a
/// secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventPayload {
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// The object concerned, as the API shows it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

// ---------------------------------------------------------------------------
// secrets and signatures
// ---------------------------------------------------------------------------

/// An endpoint's signing secret, `whsec_` + base64 of the key. `Debug`
/// shows nothing of it; the key is zeroized on drop.
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

/// Why a string is not a signing secret. Says nothing of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is whsec_ followed by the base64 of 24 to 64 bytes")]
pub struct InvalidSecret;

impl WebhookSecret {
    /// A new secret of [`SECRET_BYTES`] bytes from the OS CSPRNG.
    pub fn generate() -> WebhookSecret {
        let mut bytes = crate::credential::random_bytes::<SECRET_BYTES>();
        let key = SecretSlice::from(bytes.to_vec());
        zeroize::Zeroize::zeroize(&mut bytes);
        WebhookSecret { key }
    }

    /// Reads `whsec_<base64>` (the prefix may be left out, as Standard
    /// Webhooks libraries allow), padded or not.
    pub fn parse(s: &str) -> Result<WebhookSecret, InvalidSecret> {
        let encoded = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let engine = base64::engine::general_purpose::STANDARD;
        let lenient = base64::engine::general_purpose::STANDARD_NO_PAD;
        let key = engine
            .decode(encoded)
            .or_else(|_| lenient.decode(encoded))
            .map_err(|_| InvalidSecret)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(WebhookSecret {
            key: SecretSlice::from(key),
        })
    }

    /// The secret as shown once and as kept for signing: `whsec_<base64>`.
    pub fn expose(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.key.expose_secret());
        format!("{SECRET_PREFIX}{encoded}")
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag)
        )
    }
}

impl Clone for WebhookSecret {
    fn clone(&self) -> Self {
        WebhookSecret {
            key: SecretSlice::from(self.key.expose_secret().to_vec()),
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` value: one signature per secret (several during
/// a rotation's overlap), space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a delivery, as received (`None` when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

/// Why a delivery is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// One of the three headers is absent (named).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a plain number.
    #[error("webhook-timestamp is not a number of seconds")]
    InvalidTimestamp,
    /// Older than the tolerance: perhaps a replay.
    #[error("webhook-timestamp is too old")]
    TimestampTooOld,
    /// Further ahead than the tolerance.
    #[error("webhook-timestamp is too far in the future")]
    TimestampTooNew,
    /// No `v1` signature is right for this secret, id, timestamp and body.
    #[error("no signature matches")]
    NoMatchingSignature,
}

impl VerifyError {
    /// A stable name for the error, shared with the SDKs' receivers:
    /// `missing_header`, `invalid_timestamp`, `timestamp_too_old`,
    /// `timestamp_too_new` or `no_matching_signature`.
    pub fn code(self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::InvalidTimestamp => "invalid_timestamp",
            VerifyError::TimestampTooOld => "timestamp_too_old",
            VerifyError::TimestampTooNew => "timestamp_too_new",
            VerifyError::NoMatchingSignature => "no_matching_signature",
        }
    }
}

/// Checks a delivery received at `now`: the headers are present, the
/// timestamp within `tolerance_seconds` of `now` either way, and one `v1`
/// signature of `webhook-signature` is the HMAC of `id.timestamp.body`
/// under `secret`.
pub fn verify(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let id = headers.id.ok_or(VerifyError::MissingHeader(HEADER_ID))?;
    let timestamp = headers
        .timestamp
        .ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = headers
        .signature
        .ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let now_s = now.timestamp();
    if now_s.saturating_sub(ts) > tolerance_seconds {
        return Err(VerifyError::TimestampTooOld);
    }
    if ts.saturating_sub(now_s) > tolerance_seconds {
        return Err(VerifyError::TimestampTooNew);
    }
    let expected = secret.mac(id, ts, body);
    let matched = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        // `verify_slice` compares in constant time.
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

// ---------------------------------------------------------------------------
// retries
// ---------------------------------------------------------------------------

/// When to try a delivery again after `attempts_made` attempts (the last
/// one failing at `now`), or `None` to give up. `first_attempt_at` starts
/// the 3-day clock; `jitter` is a uniform random number in [0, 1] (values
/// outside are clamped). With no attempt made yet, the answer is `now`.
pub fn next_attempt(
    attempts_made: u32,
    first_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let deadline = first_attempt_at + Duration::seconds(RETRY_FOR_SECONDS);
    if now >= deadline {
        return None;
    }
    if attempts_made == 0 {
        return Some(now);
    }
    Some((now + retry_delay(attempts_made, jitter)).min(deadline))
}

/// The wait after the `attempt`-th failure (see the module documentation).
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(12);
    let base_ms = (FIRST_RETRY_SECONDS * 1000)
        .saturating_mul(3_i64.pow(exponent))
        .min(MAX_RETRY_DELAY_SECONDS * 1000);
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let factor = 0.75 + 0.5 * jitter;
    Duration::milliseconds((base_ms as f64 * factor).round() as i64)
}

// ---------------------------------------------------------------------------
// targets
// ---------------------------------------------------------------------------

/// An endpoint URL that passed [`TargetUrl::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(url::Url);

/// The host of a target, as the HTTP client will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A name, to be resolved (and its addresses checked) at delivery.
    Domain(String),
    /// An address, already checked.
    Ip(IpAddr),
}

impl TargetUrl {
    /// Validates an endpoint URL for an endpoint of `mode`. Errors name
    /// `field` and never repeat the URL (it may carry a token in its query).
    pub fn parse(
        field: &str,
        raw: &str,
        mode: Mode,
        allow_private: bool,
    ) -> Result<TargetUrl, ValidationError> {
        let err = |m: &str| Err(ValidationError::new(field, m));
        if raw.len() > MAX_URL_BYTES {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_URL_BYTES} bytes"),
            ));
        }
        let Ok(url) = url::Url::parse(raw) else {
            return err("must be an absolute http or https URL");
        };
        match url.scheme() {
            "https" => {}
            "http" if mode == Mode::Test || allow_private => {}
            "http" => return err("must use https for a live endpoint"),
            _ => return err("must be an http or https URL"),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return err("must not contain a user name or password");
        }
        if url.fragment().is_some() {
            return err("must not contain a fragment (#…): it is never sent");
        }
        let target = TargetUrl(url);
        match target.host() {
            None => return err("must have a host"),
            Some(TargetHost::Ip(ip)) => {
                if let Err(class) = check_address(ip, allow_private) {
                    return Err(ValidationError::new(
                        field,
                        format!("must not point to {}", class.describe()),
                    ));
                }
            }
            Some(TargetHost::Domain(d)) => {
                let d = d.trim_end_matches('.');
                if (d == "localhost" || d.ends_with(".localhost")) && !allow_private {
                    return err("must not point to a loopback address");
                }
            }
        }
        Ok(target)
    }

    /// The host: a name to resolve, or an address.
    pub fn host(&self) -> Option<TargetHost> {
        match self.0.host()? {
            url::Host::Domain(d) => Some(TargetHost::Domain(d.to_owned())),
            url::Host::Ipv4(a) => Some(TargetHost::Ip(IpAddr::V4(a))),
            url::Host::Ipv6(a) => Some(TargetHost::Ip(IpAddr::V6(a))),
        }
    }

    /// The port, explicit or the scheme's.
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }

    /// The URL, normalized.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// What kind of address a delivery would go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10, 64:ff9b:1::/48.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 224/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// 100.64.0.0/10 (carrier-grade NAT).
    SharedAddressSpace,
    /// Cloud instance metadata services: 169.254.169.254, 169.254.170.2,
    /// 169.254.170.23, 100.100.100.200, 192.0.0.192, fd00:ec2::254.
    CloudMetadata,
    /// Reserved, documentation, benchmarking and deprecated ranges.
    Reserved,
}

impl AddressClass {
    /// May a delivery go there? Private kinds only when allowed; multicast,
    /// broadcast, unspecified and metadata addresses never.
    pub fn allowed(self, allow_private: bool) -> bool {
        match self {
            AddressClass::Public => true,
            AddressClass::Loopback
            | AddressClass::Private
            | AddressClass::LinkLocal
            | AddressClass::SharedAddressSpace
            | AddressClass::Reserved => allow_private,
            AddressClass::Multicast
            | AddressClass::Unspecified
            | AddressClass::Broadcast
            | AddressClass::CloudMetadata => false,
        }
    }

    /// "a loopback address", "a cloud metadata address", ….
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Broadcast => "a broadcast address",
            AddressClass::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// Refuses an address a delivery must not go to; the error says what kind
/// it is.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), AddressClass> {
    let class = classify(ip);
    if class.allowed(allow_private) {
        Ok(())
    } else {
        Err(class)
    }
}

/// What kind of address `ip` is (see [`AddressClass`]).
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    const METADATA: [[u8; 4]; 5] = [
        [169, 254, 169, 254],
        [169, 254, 170, 2],
        [169, 254, 170, 23],
        [100, 100, 100, 200],
        [192, 0, 0, 192],
    ];
    if METADATA.contains(&ip.octets()) {
        return CloudMetadata;
    }
    let table: [([u8; 4], u32, AddressClass); 17] = [
        ([0, 0, 0, 0], 8, Unspecified),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([255, 255, 255, 255], 32, Broadcast),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Reserved),
        ([198, 51, 100, 0], 24, Reserved),
        ([203, 0, 113, 0], 24, Reserved),
        ([198, 18, 0, 0], 15, Reserved),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 31, 196, 0], 24, Reserved),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|&(_, _, class)| class)
        .unwrap_or(Public)
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let bits = u128::from(ip);
    if ip == Ipv6Addr::UNSPECIFIED {
        return Unspecified;
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Loopback;
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return CloudMetadata;
    }
    // Addresses carrying an IPv4 address are what that address is.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if in_v6(ip, 0x0064_ff9b << 96, 96) {
        return classify_v4(Ipv4Addr::from(bits as u32));
    }
    if in_v6(ip, 0x2002 << 112, 16) {
        return classify_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    let table: [(u128, u32, AddressClass); 11] = [
        (0, 96, Reserved),                     // IPv4-compatible (deprecated)
        (0x0064_ff9b_0001 << 80, 48, Private), // local-use NAT64
        (0x0100 << 112, 64, Reserved),         // discard-only
        (0x2001 << 112, 32, Reserved),         // Teredo
        (0x2001_0002 << 96, 48, Reserved),     // benchmarking
        (0x2001_0db8 << 96, 32, Reserved),     // documentation
        (0x3fff << 112, 20, Reserved),         // documentation
        (0xfc00 << 112, 7, Private),           // unique local
        (0xfe80 << 112, 10, LinkLocal),        // link-local
        (0xfec0 << 112, 10, Private),          // site-local (deprecated)
        (0xff00 << 112, 8, Multicast),         // multicast
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|&(_, _, class)| class)
        .unwrap_or(Public)
}

#[cfg(test)]
mod tests;
