//! Caveats: limits a token carries beyond its scopes and expiry, enforced
//! when it is verified (SPEC §11).
//!
//! - [`AllowedIps`]: the networks a token may be presented from, at most
//!   [`MAX_ALLOWED_IPS`] [`Cidr`]s. A bare address is a `/32` or `/128`; a
//!   network with host bits set (`10.0.0.1/8`) is an error, so is a prefix
//!   longer than the family allows (`/33`). An IPv4-mapped IPv6 address
//!   (`::ffff:203.0.113.7`) is the IPv4 address it maps: it matches IPv4
//!   networks, and a mapped network of prefix ≥ 96 (`::ffff:10.0.0.0/104`) is
//!   kept as the IPv4 network it maps (`10.0.0.0/8`). Otherwise IPv4
//!   addresses match only IPv4 networks and IPv6 addresses only IPv6 ones
//!   (`::/0` does not admit IPv4 clients).
//! - [`RateLimits`]: at most [`MAX_RATE_LIMITS`] named limits, each `limit`
//!   units per `window_seconds` (1 s to 1 day), all checked together.
//! - A budget: `remaining_uses`, optionally refilled ([`Refill`]): set back to
//!   `amount` daily (00:00 UTC), monthly (the 1st, 00:00 UTC) or every
//!   `interval_seconds`.
//! - [`Cost`]: what one verification spends of the limits and the budget,
//!   0 to 1,000,000, default 1. A cost of 0 checks without spending: it is
//!   admitted exactly when a verification of cost 1 would be, and spends
//!   nothing. So an exhausted budget or a full window refuses even a check.
//!
//! Counts (`limit`, `remaining_uses`, `refill.amount`) are at most
//! [`MAX_COUNT`], 2^53 − 1: the largest integer every SDK's JSON number
//! holds exactly.
//!
//! # Attenuation (a token created through another)
//!
//! A child token is bounded by its parent, caveat by caveat. First
//! [`Caveats::inherit`]: each caveat the child omits is copied from the
//! parent (`remaining_uses` and `refill` together, as the budget). Then
//! [`Caveats::check_within`] requires, whenever the parent has the caveat:
//!
//! - `allowed_ips`: the child has them, and each child network lies inside
//!   one of the parent's networks (same family, prefix at least as long,
//!   same leading bits).
//! - `rate_limits`: for every parent limit, the child has a limit of the
//!   same `name` and the same `window_seconds` whose `limit` is no higher.
//!   The child may add limits of its own (up to 10 in all). Limits with
//!   different windows are never compared: "50 per 30 s" is not "no more
//!   than 100 per 60 s" (it admits 100 within 31 s).
//! - `remaining_uses`: the child has a budget of at most what the parent
//!   has left when the child is created (or changed).
//! - `refill`: the child refills only if the parent does, with an `amount`
//!   no higher, and no more often: the same interval, or a child period
//!   whose shortest length is at least the parent period's longest (a day
//!   is 86,400 s; a month 28 to 31 days; `interval_seconds` exactly that).
//!
//! These rules keep the child's own caveats honest on display; they are not
//! the only guard. A verification of a child also spends (and is refused
//! by) every ancestor's rate limits and budget, so no chain of children can
//! multiply what its root was given.
//!
//! # Rate limit algorithm: sliding-window counter
//!
//! Each limit keeps two counts per key: the units admitted in the current
//! fixed window and in the one before. Windows are aligned to the Unix
//! epoch (a one-day window runs from 00:00 UTC), so every node agrees on
//! where a window starts. The load in the sliding window ending now is
//! estimated as `ceil(previous × (1 − elapsed/window)) + current`, and a
//! request is admitted when that estimate plus its cost is at most `limit`.
//!
//! Why not a fixed window: a client that spent its limit at the end of one
//! window could spend it again at the start of the next, twice the limit
//! within a few milliseconds. Why not a log of every request: memory grows
//! with the limit. The sliding-window counter costs three integers per
//! limit and key ([`WindowCounter`]) and, on one node, is exact in these
//! terms:
//!
//! - within every aligned window, the units admitted never exceed `limit`
//!   (the estimate always includes the current window's count in full);
//! - under steady traffic the admitted rate is `limit` per `window`; only a
//!   burst packed at the very end of one window followed by steady traffic
//!   in the next can see more than `limit` in an unaligned span of one
//!   window (at most `2 × limit`, never in an aligned one).
//!
//! Rounding is always towards refusing (the estimate is rounded up), and
//! `retry_at` is the exact first millisecond at which the same request
//! would be admitted if nothing else is spent meanwhile.
//!
//! State is kept only in memory ([`RateLimiter`]); a restart or SIGKILL
//! forgets the counts of the current and previous window (at most twice
//! the limit can then be admitted in the window of the restart).
//! Idle keys (both windows over) are dropped by [`RateLimiter::evict_idle`].
//!
//! ## Sharing a limit across nodes (not built yet)
//!
//! The counter takes the limit it admits against as a parameter and its
//! windows are aligned to the epoch, so the same structure can hold a
//! *share* of a limit: a node leases `n` units of a key's window from the
//! shared store, admits against `n` ([`WindowCounter::check`] with
//! `limit = n`), and asks for more when its lease runs low; units admitted
//! elsewhere can be folded in with [`WindowCounter::record`]. Over-admission
//! across nodes is then bounded by the unspent leases, never by the node
//! count times the limit.
//!
//! # Verification
//!
//! [`Refusal`] orders the codes of SPEC §11 (the first one that applies is
//! the answer); [`check_client_ip`] applies `allowed_ips`;
//! [`Budget::admits`] and [`RateLimiter::check`] decide the budget and the
//! limits without spending, so that nothing is spent unless the answer is
//! `VALID`; [`cache_until`] says how long an answer may be reused.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Most networks in `allowed_ips`.
pub const MAX_ALLOWED_IPS: usize = 100;
/// Most named rate limits on one token.
pub const MAX_RATE_LIMITS: usize = 10;
/// Longest rate limit name, in bytes (names are ASCII).
pub const MAX_LIMIT_NAME_LEN: usize = 32;
/// Shortest rate limit window.
pub const MIN_WINDOW_SECONDS: u32 = 1;
/// Longest rate limit window: one day.
pub const MAX_WINDOW_SECONDS: u32 = 86_400;
/// Largest `limit`, `remaining_uses` or refill `amount`: 2^53 − 1, the
/// largest integer a JSON number holds exactly in every SDK.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Largest cost of one verification.
pub const MAX_COST: u32 = 1_000_000;
/// Shortest `refill.interval_seconds` (refilling faster is a rate limit).
pub const MIN_REFILL_SECONDS: u32 = 60;
/// Longest `refill.interval_seconds`: 366 days.
pub const MAX_REFILL_SECONDS: u32 = 366 * 86_400;
/// Longest time an answer about a token with neither an expiry nor a
/// rotation grace period may be reused (see [`cache_until`]).
pub const CACHE_HORIZON_SECONDS: i64 = 3_600;

// ---------------------------------------------------------------------------
// allowed_ips
// ---------------------------------------------------------------------------

/// One network of `allowed_ips`: an IPv4 or IPv6 CIDR with no host bits
/// set, kept canonical (IPv4-mapped networks of prefix ≥ 96 as IPv4).
/// Shown as `203.0.113.0/24`, `2001:db8::/32`, `198.51.100.7/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

/// Why a string is not a [`Cidr`]. Messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IP address before the `/` (or at all).
    #[error("must be an IPv4 or IPv6 address or network, e.g. 203.0.113.0/24 or 2001:db8::/32")]
    NotAnAddress,
    /// The prefix length is not a plain number.
    #[error("the prefix length after / must be a number, e.g. /24")]
    BadPrefix,
    /// Longer than the family allows (`/33`, `/129`).
    #[error("an {family} prefix is at most /{max}")]
    PrefixTooLong {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
    /// The address has bits set beyond the prefix (`10.0.0.1/8`).
    #[error("host bits are set: the network is {network}")]
    HostBitsSet {
        /// The network meant, probably (`10.0.0.0/8`).
        network: String,
    },
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:db8::/32`, or a bare address
    /// (`/32` or `/128`). Strict: no spaces, no zone, no leading zeros in
    /// the prefix, no host bits set.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::NotAnAddress)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => parse_prefix(p)?,
        };
        if prefix > max {
            let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(CidrError::PrefixTooLong { family, max });
        }
        let net = IpNet::new(addr, prefix).map_err(|_| CidrError::BadPrefix)?;
        if net.network() != addr {
            return Err(CidrError::HostBitsSet {
                network: Cidr(net.trunc()).canonical().to_string(),
            });
        }
        Ok(Cidr(net).canonical())
    }

    /// An IPv4-mapped IPv6 network of prefix ≥ 96 as the IPv4 network it maps.
    fn canonical(self) -> Cidr {
        match self.0 {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
                Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                    .map(Cidr)
                    .unwrap_or(self),
                None => self,
            },
            _ => self,
        }
    }

    /// The network.
    pub fn network(&self) -> IpNet {
        self.0
    }

    /// Is `ip` in this network? An IPv4-mapped IPv6 address counts as the
    /// IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// Does this network contain all of `other`?
    pub fn covers(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }
}

/// A prefix length: 1–3 ASCII digits, no leading zero (but `0` itself).
fn parse_prefix(p: &str) -> Result<u8, CidrError> {
    let digits_only = !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (p.len() > 1 && p.starts_with('0')) {
        return Err(CidrError::BadPrefix);
    }
    p.parse().map_err(|_| CidrError::BadPrefix)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Cidr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "An IPv4 or IPv6 network in CIDR notation without host bits set; \
                 a bare address means /32 or /128.",
            ))
            .examples(["203.0.113.0/24"])
            .into()
    }
}

impl utoipa::ToSchema for Cidr {}

/// The networks a token (or API key) may be used from: 1 to
/// [`MAX_ALLOWED_IPS`] [`Cidr`]s, duplicates dropped, order kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AllowedIps(Vec<Cidr>);

impl AllowedIps {
    /// Validates a list from a request; errors name `field` or `field[i]`.
    /// An empty list is refused: a token usable from nowhere is a mistake
    /// (`null` means no restriction).
    pub fn parse(field: &str, raw: &[String]) -> Result<AllowedIps, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new(
                field,
                "must list at least one network (leave it out, or null, for no restriction)",
            ));
        }
        if raw.len() > MAX_ALLOWED_IPS {
            return Err(ValidationError::new(
                field,
                format!(
                    "at most {MAX_ALLOWED_IPS} networks are allowed, got {}",
                    raw.len()
                ),
            ));
        }
        let mut out: Vec<Cidr> = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let cidr = Cidr::parse(s)
                .map_err(|e| ValidationError::new(format!("{field}[{i}]"), e.to_string()))?;
            if !out.contains(&cidr) {
                out.push(cidr);
            }
        }
        Ok(AllowedIps(out))
    }

    /// The networks, in the order given.
    pub fn networks(&self) -> &[Cidr] {
        &self.0
    }

    /// Is `ip` in one of the networks?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|c| c.0.contains(&ip))
    }

    /// The index of the first network not inside any of `parent`'s.
    fn first_outside(&self, parent: &AllowedIps) -> Option<usize> {
        self.0
            .iter()
            .position(|c| !parent.0.iter().any(|p| p.covers(c)))
    }
}

impl<'de> Deserialize<'de> for AllowedIps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        AllowedIps::parse("allowed_ips", &raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for AllowedIps {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(<Cidr as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .max_items(Some(MAX_ALLOWED_IPS))
            .into()
    }
}

impl utoipa::ToSchema for AllowedIps {}

/// Parses the `client_ip` of a verify request: an IPv4 or IPv6 address.
pub fn parse_client_ip(field: &str, raw: &str) -> Result<IpAddr, ValidationError> {
    raw.parse::<IpAddr>()
        .map_err(|_| ValidationError::new(field, "must be an IPv4 or IPv6 address"))
}

/// Applies `allowed_ips` to the address a token was presented from. A
/// token with `allowed_ips` and no known address is refused.
pub fn check_client_ip(
    allowed: Option<&AllowedIps>,
    client_ip: Option<IpAddr>,
) -> Result<(), Refusal> {
    match (allowed, client_ip) {
        (None, _) => Ok(()),
        (Some(nets), Some(ip)) if nets.contains(ip) => Ok(()),
        (Some(_), _) => Err(Refusal::IpNotAllowed),
    }
}

// ---------------------------------------------------------------------------
// cost
// ---------------------------------------------------------------------------

/// What one verification (or one gateway rule match) spends of a token's
/// rate limits and budget: 0 to [`MAX_COST`], default 1. Zero checks
/// without spending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Cost(u32);

impl Default for Cost {
    fn default() -> Self {
        Cost::ONE
    }
}

impl Cost {
    /// The default cost.
    pub const ONE: Cost = Cost(1);
    /// A check that spends nothing.
    pub const ZERO: Cost = Cost(0);

    /// Validates a cost from a request; the error names `field`.
    pub fn parse(field: &str, raw: i64) -> Result<Cost, ValidationError> {
        if (0..=i64::from(MAX_COST)).contains(&raw) {
            Ok(Cost(raw as u32))
        } else {
            Err(ValidationError::new(
                field,
                format!("must be between 0 and {MAX_COST}"),
            ))
        }
    }

    /// The units spent.
    pub fn get(self) -> u64 {
        u64::from(self.0)
    }

    /// The units that must be available for the request to be admitted:
    /// the cost, or 1 for a check of cost 0.
    pub fn needed(self) -> u64 {
        u64::from(self.0.max(1))
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = i64::deserialize(d)?;
        Cost::parse("cost", raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl utoipa::PartialSchema for Cost {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_COST))
            .default(Some(serde_json::json!(1)))
            .into()
    }
}

impl utoipa::ToSchema for Cost {}

// ---------------------------------------------------------------------------
// rate_limits
// ---------------------------------------------------------------------------

/// The name of a rate limit: 1–32 characters, lowercase letters, digits,
/// `_`, `-` and `.`, starting with a letter or a digit (`default`,
/// `per_minute`, `burst`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LimitName(String);

impl LimitName {
    /// Validates a name; the error names `field`.
    pub fn parse(field: &str, raw: &str) -> Result<LimitName, ValidationError> {
        let bytes = raw.as_bytes();
        let ok = (1..=MAX_LIMIT_NAME_LEN).contains(&bytes.len())
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
        if ok {
            Ok(LimitName(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                format!(
                    "must be 1–{MAX_LIMIT_NAME_LEN} lowercase letters, digits, _, - or ., \
                     starting with a letter or digit"
                ),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LimitName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LimitName::parse("name", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl utoipa::PartialSchema for LimitName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9][a-z0-9_.-]*$"))
            .min_length(Some(1))
            .max_length(Some(MAX_LIMIT_NAME_LEN))
            .examples(["default"])
            .into()
    }
}

impl utoipa::ToSchema for LimitName {}

/// A rate limit as a client sends it (`rate_limits[i]` of a create or
/// update body); [`RateLimits::parse`] validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Unique among the token's limits.
    #[schema(value_type = LimitName)]
    pub name: String,
    /// Units admitted per window (each verification spends its `cost`).
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    pub limit: i64,
    /// 1 second to 1 day.
    #[schema(minimum = 1, maximum = 86_400)]
    pub window_seconds: i64,
}

/// A validated rate limit: at most `limit` units per `window_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateLimit {
    name: LimitName,
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    limit: u64,
    #[schema(minimum = 1, maximum = 86_400)]
    window_seconds: u32,
}

impl RateLimit {
    /// Validates one limit; errors name `field.name`, `field.limit` or
    /// `field.window_seconds`.
    pub fn parse(field: &str, spec: &RateLimitSpec) -> Result<RateLimit, ValidationError> {
        let name = LimitName::parse(&format!("{field}.name"), &spec.name)?;
        if !(1..=MAX_COUNT as i64).contains(&spec.limit) {
            return Err(ValidationError::new(
                format!("{field}.limit"),
                format!("must be between 1 and {MAX_COUNT}"),
            ));
        }
        let window = i64::from(MIN_WINDOW_SECONDS)..=i64::from(MAX_WINDOW_SECONDS);
        if !window.contains(&spec.window_seconds) {
            return Err(ValidationError::new(
                format!("{field}.window_seconds"),
                format!(
                    "must be between {MIN_WINDOW_SECONDS} and {MAX_WINDOW_SECONDS} seconds (one day)"
                ),
            ));
        }
        Ok(RateLimit {
            name,
            limit: spec.limit as u64,
            window_seconds: spec.window_seconds as u32,
        })
    }

    /// The limit's name.
    pub fn name(&self) -> &LimitName {
        &self.name
    }

    /// Units admitted per window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The window, in seconds.
    pub fn window_seconds(&self) -> u32 {
        self.window_seconds
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = RateLimitSpec::deserialize(d)?;
        RateLimit::parse("rate_limit", &spec).map_err(serde::de::Error::custom)
    }
}

/// A token's rate limits: 1 to [`MAX_RATE_LIMITS`], names unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RateLimits(Vec<RateLimit>);

impl RateLimits {
    /// Validates the limits of a request; errors name `field`,
    /// `field[i].name`, `field[i].limit` or `field[i].window_seconds`. An
    /// empty list is refused (`null` means no limits).
    pub fn parse(field: &str, raw: &[RateLimitSpec]) -> Result<RateLimits, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new(
                field,
                "must hold at least one limit (leave it out, or null, for no limits)",
            ));
        }
        if raw.len() > MAX_RATE_LIMITS {
            return Err(ValidationError::new(
                field,
                format!(
                    "at most {MAX_RATE_LIMITS} rate limits are allowed, got {}",
                    raw.len()
                ),
            ));
        }
        let mut out: Vec<RateLimit> = Vec::with_capacity(raw.len());
        for (i, spec) in raw.iter().enumerate() {
            let limit = RateLimit::parse(&format!("{field}[{i}]"), spec)?;
            if out.iter().any(|l| l.name == limit.name) {
                return Err(ValidationError::new(
                    format!("{field}[{i}].name"),
                    format!("another limit is already named `{}`", limit.name),
                ));
            }
            out.push(limit);
        }
        Ok(RateLimits(out))
    }

    /// The limits, in the order given.
    pub fn limits(&self) -> &[RateLimit] {
        &self.0
    }

    /// The limit named `name`.
    pub fn get(&self, name: &LimitName) -> Option<&RateLimit> {
        self.0.iter().find(|l| &l.name == name)
    }
}

impl<'de> Deserialize<'de> for RateLimits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<RateLimitSpec>::deserialize(d)?;
        RateLimits::parse("rate_limits", &raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for RateLimits {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(<RateLimitSpec as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .max_items(Some(MAX_RATE_LIMITS))
            .into()
    }
}

impl utoipa::ToSchema for RateLimits {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <RateLimitSpec as utoipa::ToSchema>::schemas(out);
    }
}

// ---------------------------------------------------------------------------
// remaining_uses and refill
// ---------------------------------------------------------------------------

/// A calendar refill interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RefillInterval {
    /// Every day at 00:00 UTC.
    Daily,
    /// The 1st of every month at 00:00 UTC.
    Monthly,
}

/// A refill as a client sends it: `amount` with exactly one of `interval`
/// and `interval_seconds`; [`Refill::parse`] validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefillSpec {
    /// What `remaining_uses` is set to at each refill.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    pub amount: i64,
    /// `daily` (00:00 UTC) or `monthly` (the 1st, 00:00 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<RefillInterval>,
    /// Every so many seconds from the last refill (60 s to 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 31_622_400)]
    pub interval_seconds: Option<i64>,
}

/// How often a budget is refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefillPeriod {
    /// At 00:00 UTC every day.
    Daily,
    /// At 00:00 UTC on the 1st of every month.
    Monthly,
    /// Every so many seconds, counted from the previous refill (the first
    /// from when the budget was set).
    Seconds(u32),
}

impl RefillPeriod {
    /// Shortest and longest length of one period, in seconds.
    fn bounds(self) -> (i64, i64) {
        match self {
            RefillPeriod::Daily => (86_400, 86_400),
            RefillPeriod::Monthly => (28 * 86_400, 31 * 86_400),
            RefillPeriod::Seconds(n) => (i64::from(n), i64::from(n)),
        }
    }

    /// Does a refill every `self` happen no more often than every `other`?
    pub fn no_more_often_than(self, other: RefillPeriod) -> bool {
        self == other || self.bounds().0 >= other.bounds().1
    }
}

/// A validated refill: `remaining_uses` is set back to `amount` (not added
/// to) at each boundary of `period`. Several boundaries missed are one
/// refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refill {
    amount: u64,
    period: RefillPeriod,
}

/// What applying a refill between the last one and now gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillDue {
    /// `Some(amount)` when at least one refill fell due: the new
    /// `remaining_uses`. `None` when none did.
    pub remaining_uses: Option<u64>,
    /// The time of the latest refill at or before now (to store as the
    /// budget's last refill), or the previous one if none fell due.
    pub last_refill_at: DateTime<Utc>,
    /// The next refill after now.
    pub next_refill_at: DateTime<Utc>,
}

impl Refill {
    /// Validates a refill; errors name `field`, `field.amount`,
    /// `field.interval` or `field.interval_seconds`.
    pub fn parse(field: &str, spec: &RefillSpec) -> Result<Refill, ValidationError> {
        if !(1..=MAX_COUNT as i64).contains(&spec.amount) {
            return Err(ValidationError::new(
                format!("{field}.amount"),
                format!("must be between 1 and {MAX_COUNT}"),
            ));
        }
        let period = match (spec.interval, spec.interval_seconds) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    format!("{field}.interval_seconds"),
                    "give either interval or interval_seconds, not both",
                ))
            }
            (None, None) => {
                return Err(ValidationError::new(
                    format!("{field}.interval"),
                    "give interval (daily or monthly) or interval_seconds",
                ))
            }
            (Some(RefillInterval::Daily), None) => RefillPeriod::Daily,
            (Some(RefillInterval::Monthly), None) => RefillPeriod::Monthly,
            (None, Some(secs)) => {
                let range = i64::from(MIN_REFILL_SECONDS)..=i64::from(MAX_REFILL_SECONDS);
                if !range.contains(&secs) {
                    return Err(ValidationError::new(
                        format!("{field}.interval_seconds"),
                        format!(
                            "must be between {MIN_REFILL_SECONDS} and {MAX_REFILL_SECONDS} \
                             seconds (366 days); use rate_limits for shorter periods"
                        ),
                    ));
                }
                RefillPeriod::Seconds(secs as u32)
            }
        };
        Ok(Refill {
            amount: spec.amount as u64,
            period,
        })
    }

    /// What `remaining_uses` is set to at each refill.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// How often.
    pub fn period(&self) -> RefillPeriod {
        self.period
    }

    /// The first refill boundary strictly after `t`. For
    /// [`RefillPeriod::Seconds`], `t` must be the previous refill (or when
    /// the budget was set): boundaries are counted from it.
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.period {
            RefillPeriod::Daily => start_of_day(t) + Duration::days(1),
            RefillPeriod::Monthly => {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                    .single()
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            RefillPeriod::Seconds(n) => t + Duration::seconds(i64::from(n)),
        }
    }

    /// Applies the refills due since `last_refill_at` (the previous refill,
    /// or when the budget was set) as of `now`. A clock behind
    /// `last_refill_at` refills nothing.
    pub fn due(&self, last_refill_at: DateTime<Utc>, now: DateTime<Utc>) -> RefillDue {
        let next = self.next_after(last_refill_at);
        if now < next {
            return RefillDue {
                remaining_uses: None,
                last_refill_at,
                next_refill_at: next,
            };
        }
        let latest = match self.period {
            RefillPeriod::Daily => start_of_day(now),
            RefillPeriod::Monthly => Utc
                .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(next),
            RefillPeriod::Seconds(n) => {
                let period_ms = i64::from(n) * 1000;
                let elapsed = (now - last_refill_at).num_milliseconds();
                last_refill_at + Duration::milliseconds(elapsed - elapsed % period_ms)
            }
        };
        RefillDue {
            remaining_uses: Some(self.amount),
            last_refill_at: latest,
            next_refill_at: self.next_after(latest),
        }
    }

    fn spec(&self) -> RefillSpec {
        let (interval, interval_seconds) = match self.period {
            RefillPeriod::Daily => (Some(RefillInterval::Daily), None),
            RefillPeriod::Monthly => (Some(RefillInterval::Monthly), None),
            RefillPeriod::Seconds(n) => (None, Some(i64::from(n))),
        };
        RefillSpec {
            amount: self.amount as i64,
            interval,
            interval_seconds,
        }
    }
}

fn start_of_day(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or(t)
}

impl Serialize for Refill {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.spec().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Refill {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = RefillSpec::deserialize(d)?;
        Refill::parse("refill", &spec).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Refill {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <RefillSpec as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Refill {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <RefillSpec as utoipa::ToSchema>::schemas(out);
    }
}

/// A token's budget at one moment: what is left, and how it refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Units left.
    pub remaining_uses: u64,
    /// How it is refilled, if it is.
    pub refill: Option<Refill>,
}

impl Budget {
    /// Would a verification of `cost` be admitted? (Cost 0 needs one unit
    /// left, and spends nothing.)
    pub fn admits(&self, cost: Cost) -> bool {
        self.remaining_uses >= cost.needed()
    }

    /// `remaining_uses` after spending `cost` (never below zero).
    pub fn spend(&self, cost: Cost) -> u64 {
        self.remaining_uses.saturating_sub(cost.get())
    }

    /// The budget after applying refills due between `last_refill_at` and
    /// `now`, with when they fell due (see [`Refill::due`]). Without a
    /// refill, the budget is unchanged and `None` is returned.
    pub fn refilled(
        &self,
        last_refill_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Budget, Option<RefillDue>) {
        let Some(refill) = self.refill else {
            return (*self, None);
        };
        let due = refill.due(last_refill_at, now);
        let budget = Budget {
            remaining_uses: due.remaining_uses.unwrap_or(self.remaining_uses),
            refill: self.refill,
        };
        (budget, Some(due))
    }
}

// ---------------------------------------------------------------------------
// all caveats of a token
// ---------------------------------------------------------------------------

/// The caveat fields of a create body, as sent. Absent and `null` are the
/// same: no caveat (or, for a token created through another, the parent's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaveatsSpec {
    /// At most 100 IPv4/IPv6 networks; a bare address means /32 or /128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Cidr>>, max_items = 100)]
    pub allowed_ips: Option<Vec<String>>,
    /// At most 10 named limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 10)]
    pub rate_limits: Option<Vec<RateLimitSpec>>,
    /// A budget of units, each verification spending its `cost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub remaining_uses: Option<i64>,
    /// Needs `remaining_uses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<RefillSpec>,
}

/// The caveat fields of an update body: absent leaves a caveat alone,
/// `null` removes it, a value replaces it; `add_uses` adds to (or, when
/// negative, takes from) `remaining_uses`. Build it from the update body's
/// fields (each decoded with [`crate::api::double_option`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaveatsPatch {
    /// `allowed_ips`: absent, `null` or a list.
    pub allowed_ips: Option<Option<Vec<String>>>,
    /// `rate_limits`: absent, `null` or a list.
    pub rate_limits: Option<Option<Vec<RateLimitSpec>>>,
    /// `remaining_uses`: absent, `null` or a number.
    pub remaining_uses: Option<Option<i64>>,
    /// `refill`: absent, `null` or a refill.
    pub refill: Option<Option<RefillSpec>>,
    /// `add_uses`: added to `remaining_uses` (floored at 0).
    pub add_uses: Option<i64>,
}

/// A token's caveats, validated. Serialized as the token object shows them:
/// `allowed_ips`, `rate_limits`, `remaining_uses` and `refill`, each `null`
/// when unset. A `refill` always comes with `remaining_uses`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "CaveatsWire")]
pub struct Caveats {
    /// Networks the token may be used from; `null`: anywhere.
    allowed_ips: Option<AllowedIps>,
    /// Rate limits on successful verifications; `null`: none.
    rate_limits: Option<RateLimits>,
    /// Units left of the budget; `null`: no budget.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    remaining_uses: Option<u64>,
    /// How the budget refills; `null`: it does not.
    refill: Option<Refill>,
}

#[derive(Deserialize)]
struct CaveatsWire {
    #[serde(default)]
    allowed_ips: Option<AllowedIps>,
    #[serde(default)]
    rate_limits: Option<RateLimits>,
    #[serde(default)]
    remaining_uses: Option<u64>,
    #[serde(default)]
    refill: Option<Refill>,
}

impl TryFrom<CaveatsWire> for Caveats {
    type Error = ValidationError;
    fn try_from(w: CaveatsWire) -> Result<Self, Self::Error> {
        let caveats = Caveats {
            allowed_ips: w.allowed_ips,
            rate_limits: w.rate_limits,
            remaining_uses: w.remaining_uses,
            refill: w.refill,
        };
        caveats.check_budget_shape()?;
        Ok(caveats)
    }
}

impl Caveats {
    /// No caveat at all.
    pub fn none() -> Caveats {
        Caveats::default()
    }

    /// Validates the caveats of a create body. Errors name the field:
    /// `allowed_ips[3]`, `rate_limits[1].window_seconds`,
    /// `remaining_uses`, `refill.interval_seconds`, …
    pub fn parse(spec: &CaveatsSpec) -> Result<Caveats, ValidationError> {
        let caveats = Caveats {
            allowed_ips: spec
                .allowed_ips
                .as_deref()
                .map(|raw| AllowedIps::parse("allowed_ips", raw))
                .transpose()?,
            rate_limits: spec
                .rate_limits
                .as_deref()
                .map(|raw| RateLimits::parse("rate_limits", raw))
                .transpose()?,
            remaining_uses: spec.remaining_uses.map(parse_remaining_uses).transpose()?,
            refill: spec
                .refill
                .as_ref()
                .map(|r| Refill::parse("refill", r))
                .transpose()?,
        };
        caveats.check_budget_shape()?;
        Ok(caveats)
    }

    /// These caveats changed by an update body. `remaining_uses` and
    /// `add_uses` together are refused; so is a `refill` left without
    /// `remaining_uses`, and `add_uses` on a token without a budget.
    pub fn patched(&self, patch: &CaveatsPatch) -> Result<Caveats, ValidationError> {
        let mut out = self.clone();
        if let Some(ips) = &patch.allowed_ips {
            out.allowed_ips = ips
                .as_deref()
                .map(|raw| AllowedIps::parse("allowed_ips", raw))
                .transpose()?;
        }
        if let Some(limits) = &patch.rate_limits {
            out.rate_limits = limits
                .as_deref()
                .map(|raw| RateLimits::parse("rate_limits", raw))
                .transpose()?;
        }
        if let Some(refill) = &patch.refill {
            out.refill = refill
                .as_ref()
                .map(|r| Refill::parse("refill", r))
                .transpose()?;
        }
        match (patch.remaining_uses, patch.add_uses) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "add_uses",
                    "give either remaining_uses or add_uses, not both",
                ))
            }
            (Some(uses), None) => {
                out.remaining_uses = uses.map(parse_remaining_uses).transpose()?;
            }
            (None, Some(add)) => {
                let Some(current) = out.remaining_uses else {
                    return Err(ValidationError::new(
                        "add_uses",
                        "the token has no remaining_uses to add to: set remaining_uses instead",
                    ));
                };
                out.remaining_uses = Some(add_uses(current, add)?);
            }
            (None, None) => {}
        }
        out.check_budget_shape()?;
        Ok(out)
    }

    fn check_budget_shape(&self) -> Result<(), ValidationError> {
        if self.refill.is_some() && self.remaining_uses.is_none() {
            return Err(ValidationError::new(
                "refill",
                "a refill needs remaining_uses: give both",
            ));
        }
        Ok(())
    }

    /// Networks the token may be used from (`None`: anywhere).
    pub fn allowed_ips(&self) -> Option<&AllowedIps> {
        self.allowed_ips.as_ref()
    }

    /// The token's rate limits (`None`: none).
    pub fn rate_limits(&self) -> Option<&RateLimits> {
        self.rate_limits.as_ref()
    }

    /// The budget (`None`: unlimited uses).
    pub fn budget(&self) -> Option<Budget> {
        self.remaining_uses.map(|remaining_uses| Budget {
            remaining_uses,
            refill: self.refill,
        })
    }

    /// These caveats with `remaining_uses` set (after a verification spent
    /// from the budget, or a refill). No effect without a budget.
    pub fn with_remaining_uses(&self, remaining_uses: u64) -> Caveats {
        let mut out = self.clone();
        if out.remaining_uses.is_some() {
            out.remaining_uses = Some(remaining_uses.min(MAX_COUNT));
        }
        out
    }

    /// Does the token carry a rate limit or a budget? Answers about such a
    /// token must not be reused (see [`cache_until`]).
    pub fn is_metered(&self) -> bool {
        self.rate_limits.is_some() || self.remaining_uses.is_some()
    }

    /// These caveats with each one left unset copied from `parent`
    /// (`remaining_uses` and `refill` as one: the budget).
    pub fn inherit(&self, parent: &Caveats) -> Caveats {
        let mut out = self.clone();
        if out.allowed_ips.is_none() {
            out.allowed_ips = parent.allowed_ips.clone();
        }
        if out.rate_limits.is_none() {
            out.rate_limits = parent.rate_limits.clone();
        }
        if out.remaining_uses.is_none() && out.refill.is_none() {
            out.remaining_uses = parent.remaining_uses;
            out.refill = parent.refill;
        }
        out
    }

    /// Are these caveats at least as tight as `parent`'s, by the rules of
    /// the module documentation? `parent` holds the parent's budget as it
    /// is now. The error names the child's field at fault.
    pub fn check_within(&self, parent: &Caveats) -> Result<(), ValidationError> {
        if let Some(parent_ips) = &parent.allowed_ips {
            let Some(ips) = &self.allowed_ips else {
                return Err(ValidationError::new(
                    "allowed_ips",
                    "must be set: the parent token's allowed_ips bound every token created through it",
                ));
            };
            if let Some(i) = ips.first_outside(parent_ips) {
                return Err(ValidationError::new(
                    format!("allowed_ips[{i}]"),
                    format!("{} is not within the parent token's allowed_ips", ips.0[i]),
                ));
            }
        }
        if let Some(parent_limits) = &parent.rate_limits {
            let Some(limits) = &self.rate_limits else {
                return Err(ValidationError::new(
                    "rate_limits",
                    "must be set: the parent token's rate_limits bound every token created through it",
                ));
            };
            for p in &parent_limits.0 {
                let Some(i) = limits.0.iter().position(|c| c.name == p.name) else {
                    return Err(ValidationError::new(
                        "rate_limits",
                        format!(
                            "must keep the parent token's limit `{}` ({} per {} s) or a lower one",
                            p.name, p.limit, p.window_seconds
                        ),
                    ));
                };
                let c = &limits.0[i];
                if c.window_seconds != p.window_seconds {
                    return Err(ValidationError::new(
                        format!("rate_limits[{i}].window_seconds"),
                        format!(
                            "must be {} like the parent token's limit `{}`",
                            p.window_seconds, p.name
                        ),
                    ));
                }
                if c.limit > p.limit {
                    return Err(ValidationError::new(
                        format!("rate_limits[{i}].limit"),
                        format!(
                            "must be at most {}, the parent token's limit `{}`",
                            p.limit, p.name
                        ),
                    ));
                }
            }
        }
        if let Some(parent_left) = parent.remaining_uses {
            let Some(uses) = self.remaining_uses else {
                return Err(ValidationError::new(
                    "remaining_uses",
                    "must be set: the parent token has a budget",
                ));
            };
            if uses > parent_left {
                return Err(ValidationError::new(
                    "remaining_uses",
                    format!("must be at most {parent_left}, what the parent token has left"),
                ));
            }
        }
        if let Some(refill) = &self.refill {
            match &parent.refill {
                None if parent.remaining_uses.is_some() => {
                    return Err(ValidationError::new(
                        "refill",
                        "the parent token's budget does not refill",
                    ))
                }
                None => {}
                Some(p) => {
                    if refill.amount > p.amount {
                        return Err(ValidationError::new(
                            "refill.amount",
                            format!("must be at most {}, the parent token's refill", p.amount),
                        ));
                    }
                    if !refill.period.no_more_often_than(p.period) {
                        let field = match refill.period {
                            RefillPeriod::Seconds(_) => "refill.interval_seconds",
                            _ => "refill.interval",
                        };
                        return Err(ValidationError::new(
                            field,
                            "must not refill more often than the parent token",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The caveats of a token created through `parent`: [`Self::inherit`]
    /// then [`Self::check_within`].
    pub fn for_child_of(&self, parent: &Caveats) -> Result<Caveats, ValidationError> {
        let child = self.inherit(parent);
        child.check_within(parent)?;
        Ok(child)
    }
}

fn parse_remaining_uses(raw: i64) -> Result<u64, ValidationError> {
    if (0..=MAX_COUNT as i64).contains(&raw) {
        Ok(raw as u64)
    } else {
        Err(ValidationError::new(
            "remaining_uses",
            format!("must be between 0 and {MAX_COUNT}"),
        ))
    }
}

/// `current + add`, floored at zero; above [`MAX_COUNT`] is an error
/// naming `add_uses`.
fn add_uses(current: u64, add: i64) -> Result<u64, ValidationError> {
    let sum = i128::from(current) + i128::from(add);
    if sum > i128::from(MAX_COUNT) {
        return Err(ValidationError::new(
            "add_uses",
            format!("remaining_uses would exceed {MAX_COUNT}"),
        ));
    }
    Ok(sum.max(0) as u64)
}

// ---------------------------------------------------------------------------
// verification: codes, cache_until
// ---------------------------------------------------------------------------

/// Why a verification is refused, in the order SPEC §11 decides them: when
/// several apply, the least (first declared) is the answer. Serialized as
/// the verify `code` (`MALFORMED`, …).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Refusal {
    /// Not a well-formed credential (format or checksum).
    Malformed,
    /// No such token in the caller's workspace and mode.
    NotFound,
    /// Revoked (also through an ancestor).
    Revoked,
    /// Past its expiry, or a previous secret past its grace period.
    Expired,
    /// Presented from outside its `allowed_ips` (or from no known address).
    IpNotAllowed,
    /// Lacks a required scope.
    InsufficientScope,
    /// A rate limit of the token or an ancestor is reached.
    RateLimited,
    /// The budget of the token or an ancestor is spent.
    UsageExceeded,
}

impl Refusal {
    /// Every refusal, first decided first.
    pub const ORDER: [Refusal; 8] = [
        Refusal::Malformed,
        Refusal::NotFound,
        Refusal::Revoked,
        Refusal::Expired,
        Refusal::IpNotAllowed,
        Refusal::InsufficientScope,
        Refusal::RateLimited,
        Refusal::UsageExceeded,
    ];

    /// The verify code.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "MALFORMED",
            Refusal::NotFound => "NOT_FOUND",
            Refusal::Revoked => "REVOKED",
            Refusal::Expired => "EXPIRED",
            Refusal::IpNotAllowed => "IP_NOT_ALLOWED",
            Refusal::InsufficientScope => "INSUFFICIENT_SCOPE",
            Refusal::RateLimited => "RATE_LIMITED",
            Refusal::UsageExceeded => "USAGE_EXCEEDED",
        }
    }

    /// The answer when all of `refusals` apply: the first in [`Self::ORDER`];
    /// `None` (valid) when there is none.
    pub fn first(refusals: impl IntoIterator<Item = Refusal>) -> Option<Refusal> {
        refusals.into_iter().min()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest time a verifier may reuse an answer about a token (the
/// verify answer's `cache_until`): the earliest of `expires_at`, the end
/// of the rotation grace period when the secret presented is the previous
/// one (`grace_ends_at`), and `now` + [`CACHE_HORIZON_SECONDS`]. `None`
/// (the answer must not be reused) for a metered token (rate limits or a
/// budget: each answer spends).
///
/// The horizon is this module's choice where the spec is silent: an answer
/// about a token with no expiry is still not reused forever by a verifier
/// that misses change events.
pub fn cache_until(
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    grace_ends_at: Option<DateTime<Utc>>,
    metered: bool,
) -> Option<DateTime<Utc>> {
    if metered {
        return None;
    }
    let horizon = now + Duration::seconds(CACHE_HORIZON_SECONDS);
    Some(
        [expires_at, grace_ends_at]
            .into_iter()
            .flatten()
            .fold(horizon, DateTime::min),
    )
}

// ---------------------------------------------------------------------------
// rate limiter
// ---------------------------------------------------------------------------

/// The counts of one rate limit for one key: units admitted in the current
/// window and in the one before (see the module documentation). Windows
/// are aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounter {
    /// Index of the current window (milliseconds since the epoch divided by
    /// the window length).
    window: i64,
    previous: u64,
    current: u64,
}

/// The answer of one rate limit to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Admitted?
    pub allowed: bool,
    /// Units per window.
    pub limit: u64,
    /// Units left once this request is spent (when allowed), or now (when
    /// refused).
    pub remaining: u64,
    /// When the whole `limit` is available again if nothing more is spent.
    pub reset_at: DateTime<Utc>,
    /// When refused: the first moment the same request would be admitted if
    /// nothing more is spent. A cost above `limit` is never admitted; then
    /// this is `reset_at`.
    pub retry_at: Option<DateTime<Utc>>,
    /// When refused: seconds from now to `retry_at`, rounded up (at least 1).
    pub retry_after_seconds: Option<u64>,
}

/// The counts as seen at one moment.
struct View {
    start_ms: i64,
    window_ms: i64,
    elapsed_ms: i64,
    previous: u64,
    current: u64,
}

impl View {
    /// `ceil(previous × (window − elapsed) / window)`: the previous window's
    /// share of the sliding window ending now, rounded towards refusing.
    fn carried(&self) -> u64 {
        let remaining = (self.window_ms - self.elapsed_ms) as u128;
        let w = self.window_ms as u128;
        ((self.previous as u128 * remaining).div_ceil(w)).min(u64::MAX as u128) as u64
    }

    fn used(&self) -> u64 {
        self.carried().saturating_add(self.current)
    }
}

impl WindowCounter {
    fn view(&self, window_seconds: u32, now: DateTime<Utc>) -> View {
        let window_ms = i64::from(window_seconds.max(1)) * 1000;
        let now_ms = now.timestamp_millis();
        let index = now_ms.div_euclid(window_ms);
        let (window, previous, current) = if index <= self.window {
            // A clock behind the last window seen counts as in that window,
            // from its start: the whole previous count still weighs.
            (self.window, self.previous, self.current)
        } else if index == self.window + 1 {
            (index, self.current, 0)
        } else {
            (index, 0, 0)
        };
        let start_ms = window.saturating_mul(window_ms);
        View {
            start_ms,
            window_ms,
            elapsed_ms: (now_ms - start_ms).clamp(0, window_ms - 1),
            previous,
            current,
        }
    }

    /// Would a request of `cost` be admitted by a limit of `limit` units per
    /// `window_seconds` at `now`? Spends nothing. `limit` may be a node's
    /// share of the real limit (see the module documentation).
    pub fn check(
        &self,
        limit: u64,
        window_seconds: u32,
        now: DateTime<Utc>,
        cost: Cost,
    ) -> Decision {
        let v = self.view(window_seconds, now);
        let used = v.used();
        let allowed = used.saturating_add(cost.needed()) <= limit;
        let ms = |t: i64| DateTime::from_timestamp_millis(t).unwrap_or(DateTime::<Utc>::MAX_UTC);
        if allowed {
            let current = v.current.saturating_add(cost.get());
            let after = View { current, ..v };
            return Decision {
                allowed,
                limit,
                remaining: limit - after.used().min(limit),
                reset_at: ms(full_reset_ms(&after)).max(now),
                retry_at: None,
                retry_after_seconds: None,
            };
        }
        let reset_ms = full_reset_ms(&v);
        let retry_ms = retry_ms(&v, limit, cost.needed()).unwrap_or(reset_ms);
        let now_ms = now.timestamp_millis();
        let wait_ms = (retry_ms - now_ms).max(1);
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset_at: ms(reset_ms).max(now),
            retry_at: Some(ms(now_ms + wait_ms)),
            retry_after_seconds: Some((wait_ms as u64).div_ceil(1000)),
        }
    }

    /// Counts `cost` as admitted at `now` (after a successful check).
    pub fn spend(&mut self, window_seconds: u32, now: DateTime<Utc>, cost: Cost) {
        self.record(window_seconds, now, cost.get());
    }

    /// Counts `units` admitted at `now`, without any check: units admitted
    /// elsewhere (another node's share of the same limit) are folded in so.
    pub fn record(&mut self, window_seconds: u32, now: DateTime<Utc>, units: u64) {
        let v = self.view(window_seconds, now);
        *self = WindowCounter {
            window: v.start_ms / v.window_ms,
            previous: v.previous,
            current: v.current.saturating_add(units),
        };
    }

    /// Has everything counted aged out by `now` (the state can be dropped)?
    pub fn is_idle(&self, window_seconds: u32, now: DateTime<Utc>) -> bool {
        let v = self.view(window_seconds, now);
        v.current == 0 && v.carried() == 0
    }
}

/// When the sliding window ending then holds nothing, if nothing more is
/// spent: the end of the next window if the current one has counts, else
/// the end of this one if the previous one still weighs, else now.
fn full_reset_ms(v: &View) -> i64 {
    if v.current > 0 {
        v.start_ms + 2 * v.window_ms
    } else if v.carried() > 0 {
        v.start_ms + v.window_ms
    } else {
        v.start_ms + v.elapsed_ms
    }
}

/// The first millisecond at which `needed` units fit under `limit` if
/// nothing more is spent; `None` if never (`needed > limit`).
fn retry_ms(v: &View, limit: u64, needed: u64) -> Option<i64> {
    if needed > limit {
        return None;
    }
    let w = v.window_ms as u128;
    // Still in this window: the carried share shrinks as time passes.
    if let Some(room) = limit.checked_sub(v.current.saturating_add(needed)) {
        if v.previous == 0 {
            return Some(v.start_ms + v.elapsed_ms);
        }
        // carried(x) ≤ room ⟺ previous × (w − x) ≤ room × w
        //              ⟺ x ≥ w − floor(room × w / previous)
        let x = w.saturating_sub(room as u128 * w / v.previous as u128) as i64;
        let x = x.max(v.elapsed_ms);
        if x < v.window_ms {
            return Some(v.start_ms + x);
        }
    }
    // In the next window, this window's count is the one carried.
    let next = v.start_ms + v.window_ms;
    let room = limit - needed;
    if v.current == 0 {
        return Some(next);
    }
    let y = w.saturating_sub(room as u128 * w / v.current as u128) as i64;
    Some(next + y.min(v.window_ms))
}

/// One limit's answer, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDecision {
    /// The limit's name.
    pub name: LimitName,
    /// Its window.
    pub window_seconds: u32,
    /// Its answer.
    pub decision: Decision,
}

/// The answer of all of a key's limits to one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LimitsCheck {
    /// Each limit's answer, in the order of the limits.
    pub limits: Vec<LimitDecision>,
}

impl LimitsCheck {
    /// Admitted by every limit?
    pub fn allowed(&self) -> bool {
        self.limits.iter().all(|l| l.decision.allowed)
    }

    /// When refused: the longest wait among the refusing limits, in seconds
    /// (rounded up).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.limits
            .iter()
            .filter_map(|l| l.decision.retry_after_seconds)
            .max()
    }

    /// The limit closest to refusing (least `remaining`; of those, the
    /// latest `reset_at`): the one for `RateLimit-Limit`, `-Remaining` and
    /// `-Reset` headers, which describe a single limit.
    pub fn most_restrictive(&self) -> Option<&LimitDecision> {
        self.limits.iter().min_by(|a, b| {
            a.decision
                .remaining
                .cmp(&b.decision.remaining)
                .then(b.decision.reset_at.cmp(&a.decision.reset_at))
        })
    }

    /// The verify answer's `rate_limits`.
    pub fn statuses(&self) -> Vec<RateLimitStatus> {
        self.limits
            .iter()
            .map(|l| RateLimitStatus {
                name: l.name.clone(),
                limit: l.decision.limit,
                remaining: l.decision.remaining,
                reset_at: l.decision.reset_at,
            })
            .collect()
    }

    /// Both checks together (a token's and its ancestors').
    pub fn and(mut self, other: LimitsCheck) -> LimitsCheck {
        self.limits.extend(other.limits);
        self
    }
}

/// One rate limit's state in a verify answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimitStatus {
    /// The limit's name.
    pub name: LimitName,
    /// Units per window.
    #[schema(minimum = 1)]
    pub limit: u64,
    /// Units left in the sliding window ending now, after this call.
    pub remaining: u64,
    /// When the whole limit is available again if nothing more is spent.
    pub reset_at: DateTime<Utc>,
}

/// A counter slot: which limit it counts (by window and name fingerprint)
/// and the counts.
#[derive(Debug, Clone, Copy)]
struct Slot {
    window_seconds: u32,
    name_hash: u64,
    counter: WindowCounter,
}

/// In-memory rate-limit state for many keys (token ids), one
/// [`WindowCounter`] per limit of a key. Not synchronized: hold it behind a
/// lock, and check then spend under the same lock.
///
/// Slots are matched to limits by window length and a 64-bit hash of the
/// name, so a changed limit keeps its count while a renamed one starts
/// afresh. Two limits of one key colliding on both would share a count and
/// each would be charged twice: stricter, never looser.
#[derive(Debug, Clone)]
pub struct RateLimiter<K> {
    keys: HashMap<K, Vec<Slot>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            keys: HashMap::new(),
        }
    }
}

fn name_hash(name: &LimitName) -> u64 {
    // FNV-1a: stable, no allocation, no per-process seed.
    name.0.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// An empty limiter.
    pub fn new() -> Self {
        RateLimiter::default()
    }

    fn counter(&self, key: &K, limit: &RateLimit) -> WindowCounter {
        let hash = name_hash(&limit.name);
        self.keys
            .get(key)
            .and_then(|slots| {
                slots
                    .iter()
                    .find(|s| s.window_seconds == limit.window_seconds && s.name_hash == hash)
            })
            .map(|s| s.counter)
            .unwrap_or_default()
    }

    /// Would a request of `cost` be admitted by every one of `limits` for
    /// `key` at `now`? Spends nothing.
    pub fn check(
        &self,
        key: &K,
        limits: &RateLimits,
        now: DateTime<Utc>,
        cost: Cost,
    ) -> LimitsCheck {
        LimitsCheck {
            limits: limits
                .0
                .iter()
                .map(|l| LimitDecision {
                    name: l.name.clone(),
                    window_seconds: l.window_seconds,
                    decision: self
                        .counter(key, l)
                        .check(l.limit, l.window_seconds, now, cost),
                })
                .collect(),
        }
    }

    /// Spends `cost` on every one of `limits` for `key` (after a check that
    /// admitted it, and the rest of the verification). Counts of limits
    /// the key no longer has are dropped.
    pub fn spend(&mut self, key: &K, limits: &RateLimits, now: DateTime<Utc>, cost: Cost) {
        if cost == Cost::ZERO {
            // A check spends nothing, and needs no state.
            return;
        }
        let slots = self.keys.entry(key.clone()).or_default();
        slots.retain(|s| {
            limits
                .0
                .iter()
                .any(|l| l.window_seconds == s.window_seconds && name_hash(&l.name) == s.name_hash)
        });
        for l in &limits.0 {
            let hash = name_hash(&l.name);
            match slots
                .iter_mut()
                .find(|s| s.window_seconds == l.window_seconds && s.name_hash == hash)
            {
                Some(slot) => slot.counter.spend(l.window_seconds, now, cost),
                None => {
                    let mut counter = WindowCounter::default();
                    counter.spend(l.window_seconds, now, cost);
                    slots.push(Slot {
                        window_seconds: l.window_seconds,
                        name_hash: hash,
                        counter,
                    });
                }
            }
        }
    }

    /// Forgets `key` (a revoked or deleted token).
    pub fn remove(&mut self, key: &K) {
        self.keys.remove(key);
    }

    /// Drops every key whose counts have all aged out; returns how many.
    pub fn evict_idle(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.keys.len();
        self.keys.retain(|_, slots| {
            !slots
                .iter()
                .all(|s| s.counter.is_idle(s.window_seconds, now))
        });
        before - self.keys.len()
    }

    /// Keys with state.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No key has state?
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
