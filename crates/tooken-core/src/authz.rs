//! Gateway route rules (SPEC §12): which requests a gateway lets through,
//! and what they need.
//!
//! A workspace (per mode) has an ordered list of [`Rule`]s,
//! `{"methods": ["GET"] | "*", "path": "/invoices/**", "scopes": [...],
//! "anonymous"?: bool, "cost"?: n}`. For a request, the first rule whose
//! methods and path match decides ([`RuleSet::find`]); no match is a
//! refusal.
//!
//! - **Methods** are compared case-insensitively, from the set of
//!   [`Method`]: `GET HEAD POST PUT PATCH DELETE OPTIONS CONNECT TRACE`
//!   (RFC 9110 and PATCH). `"*"` matches every method, including ones
//!   outside that set; a listed method matches only itself (`GET` does not
//!   imply `HEAD`).
//! - **Paths** ([`PathPattern`]) are case-sensitive and made of `/`-separated
//!   segments: a literal segment matches itself, `*` exactly one segment,
//!   `**` zero or more. So `/invoices/**` matches `/invoices`,
//!   `/invoices/42` and `/invoices/42/lines`; `/**` matches every path;
//!   `/` matches only the root. A pattern is written decoded (no `%`), has
//!   no empty, `.` or `..` segment, and does not end with `/`.
//! - **Scopes** are all required; `anonymous: true` makes a public route
//!   (no token needed, none looked at, so it takes neither scopes nor a
//!   cost); `cost` (default 1) is what a match spends of the token's rate
//!   limits and budget.
//!
//! Limits: at most [`MAX_RULES`] rules; per rule a path of at most
//! [`MAX_PATTERN_BYTES`] bytes and [`MAX_PATTERN_SEGMENTS`] segments, at
//! most [`MAX_METHODS`] methods listed and 50 scopes.
//!
//! # Request paths
//!
//! [`RequestPath::parse`] turns the original URI into decoded segments, or
//! refuses it ([`PathRefusal`]) where a gateway and the upstream service
//! might disagree about which path it is:
//!
//! - the query string and fragment are cut off first, and never matched;
//! - a `.` or `..` segment (also encoded, `%2E%2E`), an empty segment
//!   (`//`), an encoded `/` or `\` (`%2F`, `%2f`, `%5C`, `%5c`), a raw `\`
//!   or space, control characters (also encoded, `%00`, `%0A`), a malformed
//!   `%` escape or escapes that do not decode to UTF-8 are all refused;
//! - every other `%XX` is decoded once before matching, so `/adm%69n` is
//!   `/admin`, as the upstream will see it; `%25` decodes to a literal `%`
//!   and is not decoded again;
//! - one trailing `/` is ignored (`/invoices/` is matched as `/invoices`):
//!   most services route both to the same handler, so treating them alike
//!   cannot open a way around a rule;
//! - paths over [`MAX_REQUEST_PATH_BYTES`] bytes or
//!   [`MAX_REQUEST_SEGMENTS`] segments are refused.
//!
//! Servers that treat `;` in a segment as a parameter separator (Java
//! servlet containers read `/admin;x=1` as `/admin`) see a different path
//! than these rules do: protect them with patterns that end in `/**` or put
//! a normalizing proxy in front.
//!
//! # Warnings
//!
//! [`RuleSet::warnings`] names rules that can never match because earlier
//! rules catch every request they would. It is exact in one direction
//! only: a warned rule certainly never matches, while some unreachable
//! rules may go unwarned. A rule is warned when, for each of its methods
//! (for `"*"`: as a whole), an earlier rule with that method (or `"*"`)
//! has a path pattern that covers its own: checked symbol by symbol, a
//! `**` covering any run of segments or wildcards, a `*` covering one
//! literal or `*`, a literal only the same literal.
//!
//! # Answer headers
//!
//! [`metadata_header`] encodes a token's metadata for `X-Tooken-Metadata`
//! (base64url without padding of the compact JSON), or says it is left out
//! past [`METADATA_HEADER_MAX_BYTES`].

#![warn(missing_docs)]

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::caveat::Cost;
use crate::scope::{parse_scopes, Scope};
use crate::ValidationError;

/// Most rules per workspace and mode.
pub const MAX_RULES: usize = 1_000;
/// Longest path pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 512;
/// Most segments in a path pattern.
pub const MAX_PATTERN_SEGMENTS: usize = 32;
/// Most entries in a rule's `methods` list.
pub const MAX_METHODS: usize = 16;
/// Longest request path matched (before the query string), in bytes.
pub const MAX_REQUEST_PATH_BYTES: usize = 8_192;
/// Most segments in a request path matched.
pub const MAX_REQUEST_SEGMENTS: usize = 256;
/// Longest `X-Tooken-Metadata` value, in bytes; longer is left out.
pub const METADATA_HEADER_MAX_BYTES: usize = 2_048;

/// The path of the forward-auth endpoint.
pub const FORWARD_PATH: &str = "/v1/authz/forward";
/// Header carrying the gateway's own credential.
pub const HEADER_GATEWAY_KEY: &str = "tooken-gateway-key";
/// Answer header: the verified token's id.
pub const HEADER_TOKEN_ID: &str = "x-tooken-token-id";
/// Answer header: the token's scopes, space-separated.
pub const HEADER_SCOPES: &str = "x-tooken-scopes";
/// Answer header: the token's metadata ([`metadata_header`]).
pub const HEADER_METADATA: &str = "x-tooken-metadata";
/// Answer header present instead of [`HEADER_METADATA`] when it is too large.
pub const HEADER_METADATA_OMITTED: &str = "x-tooken-metadata-omitted";
/// The value of [`HEADER_METADATA_OMITTED`].
pub const METADATA_OMITTED_TOO_LARGE: &str = "too-large";
/// Answer header: the verify code of a refusal.
pub const HEADER_CODE: &str = "x-tooken-code";
/// Answer header telling a bad gateway key from a bad client token.
pub const HEADER_ERROR: &str = "x-tooken-error";
/// The value of [`HEADER_ERROR`] for a bad gateway key.
pub const ERROR_INVALID_GATEWAY_KEY: &str = "invalid_gateway_key";

// ---------------------------------------------------------------------------
// methods
// ---------------------------------------------------------------------------

/// The HTTP methods a rule may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `CONNECT`
    Connect,
    /// `TRACE`
    Trace,
}

impl Method {
    /// Every method a rule may list.
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
        Method::Connect,
        Method::Trace,
    ];

    /// The method named `s`, in any case; `None` for any other string.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    /// The method's name, in capitals.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The methods a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    /// `"*"`: every method, known or not.
    Any,
    /// The listed methods (at least one, no duplicates, in the order given).
    Only(Vec<Method>),
}

impl Methods {
    /// Does a request with `method` match? `None` stands for a method
    /// outside [`Method::ALL`], matched only by `"*"`.
    pub fn matches(&self, method: Option<Method>) -> bool {
        match (self, method) {
            (Methods::Any, _) => true,
            (Methods::Only(list), Some(m)) => list.contains(&m),
            (Methods::Only(_), None) => false,
        }
    }
}

impl Serialize for Methods {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Methods::Any => s.serialize_str("*"),
            Methods::Only(list) => s.collect_seq(list.iter().map(|m| m.as_str())),
        }
    }
}

/// A rule's `methods` as sent: `"*"` or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MethodsSpec {
    /// `"*"`: every method.
    Any(String),
    /// Method names, in any case: GET HEAD POST PUT PATCH DELETE OPTIONS
    /// CONNECT TRACE.
    List(Vec<String>),
}

impl Methods {
    /// Validates a rule's `methods`; errors name `field` or `field[i]`.
    pub fn parse(field: &str, spec: &MethodsSpec) -> Result<Methods, ValidationError> {
        match spec {
            MethodsSpec::Any(s) if s == "*" => Ok(Methods::Any),
            MethodsSpec::Any(_) => Err(ValidationError::new(
                field,
                "must be a list of methods, or \"*\" for every method",
            )),
            MethodsSpec::List(list) => {
                if list.is_empty() {
                    return Err(ValidationError::new(
                        field,
                        "must list at least one method, or be \"*\"",
                    ));
                }
                if list.len() > MAX_METHODS {
                    return Err(ValidationError::new(
                        field,
                        format!("at most {MAX_METHODS} methods may be listed"),
                    ));
                }
                let mut out = Vec::with_capacity(list.len());
                for (i, raw) in list.iter().enumerate() {
                    let Some(m) = Method::parse(raw) else {
                        return Err(ValidationError::new(
                            format!("{field}[{i}]"),
                            "unknown method: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, \
                             CONNECT or TRACE (or \"*\" instead of the list)",
                        ));
                    };
                    if !out.contains(&m) {
                        out.push(m);
                    }
                }
                Ok(Methods::Only(out))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// path patterns
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: one segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

/// A validated path pattern (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    raw: String,
    tokens: Vec<Token>,
}

impl PathPattern {
    /// Validates a pattern; errors name `field`.
    pub fn parse(field: &str, raw: &str) -> Result<PathPattern, ValidationError> {
        let err = |m: &str| Err(ValidationError::new(field, m));
        if !raw.starts_with('/') {
            return err("must start with /, e.g. /invoices/**");
        }
        if raw.len() > MAX_PATTERN_BYTES {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_PATTERN_BYTES} bytes"),
            ));
        }
        if let Some(c) = raw
            .chars()
            .find(|&c| c.is_control() || (c.is_whitespace() && c != ' ') || "?#%\\".contains(c))
        {
            let shown = if c.is_control() || c.is_whitespace() {
                "tabs, line breaks or control characters".to_owned()
            } else {
                format!("`{c}`")
            };
            return Err(ValidationError::new(
                field,
                format!(
                    "must not contain {shown}: write the path decoded, without query or fragment"
                ),
            ));
        }
        if raw == "/" {
            return Ok(PathPattern {
                raw: raw.to_owned(),
                tokens: Vec::new(),
            });
        }
        if raw.ends_with('/') {
            return err("must not end with / (a trailing / in a request is ignored)");
        }
        let mut tokens = Vec::new();
        for segment in raw[1..].split('/') {
            let token = match segment {
                "" => return err("must not contain an empty segment (//)"),
                "." | ".." => return err("must not contain . or .. segments"),
                "*" => Token::One,
                "**" => Token::Any,
                s if s.contains('*') => {
                    return err("* and ** stand for whole segments only, e.g. /invoices/*/lines")
                }
                s => Token::Literal(s.to_owned()),
            };
            // `**/**` is `**`.
            if !(token == Token::Any && tokens.last() == Some(&Token::Any)) {
                tokens.push(token);
            }
        }
        if raw[1..].split('/').count() > MAX_PATTERN_SEGMENTS {
            return Err(ValidationError::new(
                field,
                format!("must have at most {MAX_PATTERN_SEGMENTS} segments"),
            ));
        }
        Ok(PathPattern {
            raw: raw.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Does the pattern match `path`?
    pub fn matches(&self, path: &RequestPath) -> bool {
        glob_match(&self.tokens, &path.segments)
    }

    /// Does this pattern match every path `other` matches? Exact when it
    /// says yes; may say no for some patterns that do (see the module
    /// documentation).
    pub fn covers(&self, other: &PathPattern) -> bool {
        let mut interner = Interner::default();
        let (a, b) = (interner.shape(&self.tokens), interner.shape(&other.tokens));
        covers(&a, &b)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Wildcard matching with `**` as the star and `*` as one segment: the
/// classic two-pointer algorithm, backtracking only to the last `**`.
fn glob_match(tokens: &[Token], segments: &[String]) -> bool {
    let (mut t, mut s) = (0, 0);
    // Where to resume after the last `**`: (token after it, segment).
    let mut resume: Option<(usize, usize)> = None;
    while s < segments.len() {
        match tokens.get(t) {
            Some(Token::Any) => {
                resume = Some((t + 1, s));
                t += 1;
                continue;
            }
            Some(Token::One) => {
                t += 1;
                s += 1;
                continue;
            }
            Some(Token::Literal(l)) if *l == segments[s] => {
                t += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            // Let the last `**` take one more segment.
            Some((after, taken_from)) => {
                t = after;
                s = taken_from + 1;
                resume = Some((after, taken_from + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Any)
}

/// A pattern reduced for coverage checks: segments interned to numbers,
/// and what every pattern it covers must have.
#[derive(Debug, Clone)]
struct Shape {
    symbols: Vec<Symbol>,
    /// Segments in the shortest path it matches.
    min_len: usize,
    has_any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Symbol {
    Literal(u32),
    One,
    Any,
}

/// Numbers for literal segments, shared by the shapes compared.
#[derive(Default)]
struct Interner<'a>(std::collections::HashMap<&'a str, u32>);

impl<'a> Interner<'a> {
    fn shape(&mut self, tokens: &'a [Token]) -> Shape {
        let symbols: Vec<Symbol> = tokens
            .iter()
            .map(|t| match t {
                Token::Literal(l) => {
                    let next = self.0.len() as u32;
                    Symbol::Literal(*self.0.entry(l.as_str()).or_insert(next))
                }
                Token::One => Symbol::One,
                Token::Any => Symbol::Any,
            })
            .collect();
        Shape {
            min_len: symbols.iter().filter(|s| **s != Symbol::Any).count(),
            has_any: symbols.contains(&Symbol::Any),
            symbols,
        }
    }
}

/// Does pattern `a` match every path pattern `b` matches, symbol by
/// symbol? A `**` of `a` covers any run of `b`'s symbols, a `*` one literal
/// or `*`, a literal the same literal.
fn covers(a: &Shape, b: &Shape) -> bool {
    // Quick refusals, each a consequence of the symbol rules below.
    if (b.has_any && !a.has_any) || a.min_len > b.min_len {
        return false;
    }
    if !a.has_any && a.symbols.len() != b.symbols.len() {
        return false;
    }
    // `a`'s literals must appear in `b` in the same order.
    let mut rest = b.symbols.iter();
    for s in &a.symbols {
        if let Symbol::Literal(_) = s {
            if !rest.any(|t| t == s) {
                return false;
            }
        }
    }
    // Patterns have at most 32 segments, so a row of the table of
    // "a[i..] covers b[j..]" fits in a u64, bit j for b[j..].
    let m = b.symbols.len();
    let mut row: u64 = 1 << m;
    for s in a.symbols.iter().rev() {
        row = match s {
            // Covers b[j..] if a[i+1..] covers any b[k..] with k ≥ j.
            Symbol::Any => match row {
                0 => 0,
                r => u64::MAX >> r.leading_zeros(),
            },
            Symbol::One => {
                (row >> 1)
                    & mask(&b.symbols, |t| {
                        matches!(t, Symbol::One | Symbol::Literal(_))
                    })
            }
            lit @ Symbol::Literal(_) => (row >> 1) & mask(&b.symbols, |t| t == *lit),
        };
        if row == 0 {
            return false;
        }
    }
    row & 1 == 1
}

/// Bit j set where `b[j]` satisfies `keep`.
fn mask(b: &[Symbol], keep: impl Fn(Symbol) -> bool) -> u64 {
    b.iter()
        .enumerate()
        .filter(|(_, &t)| keep(t))
        .fold(0, |m, (j, _)| m | 1 << j)
}

// ---------------------------------------------------------------------------
// request paths
// ---------------------------------------------------------------------------

/// Why a request path is refused before any rule is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// Not starting with `/` (empty, relative, absolute URI, `*`).
    #[error("the path must start with /")]
    NotAbsolute,
    /// Over [`MAX_REQUEST_PATH_BYTES`] or [`MAX_REQUEST_SEGMENTS`].
    #[error("the path is too long")]
    TooLong,
    /// A `.` or `..` segment, plain or encoded.
    #[error("the path has a . or .. segment")]
    DotSegment,
    /// `//`.
    #[error("the path has an empty segment (//)")]
    EmptySegment,
    /// `%2F` or `%2f`.
    #[error("the path has an encoded / (%2F)")]
    EncodedSlash,
    /// `%5C` or `%5c`.
    #[error("the path has an encoded \\ (%5C)")]
    EncodedBackslash,
    /// A `%` not followed by two hex digits, or escapes that are not UTF-8.
    #[error("the path has a malformed % escape")]
    BadEncoding,
    /// A raw `\` or space, or a control character (raw or encoded).
    #[error("the path has a raw \\ or space, or a control character")]
    BadCharacter,
}

/// A request path as rules see it: decoded segments, without query string,
/// fragment or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<String>,
}

impl RequestPath {
    /// Reads the path of an original request URI (`/invoices/42?x=1`), by
    /// the rules of the module documentation.
    pub fn parse(uri: &str) -> Result<RequestPath, PathRefusal> {
        let path = uri.split(['?', '#']).next().unwrap_or_default();
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathRefusal::NotAbsolute);
        };
        if path.len() > MAX_REQUEST_PATH_BYTES {
            return Err(PathRefusal::TooLong);
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(RequestPath {
                segments: Vec::new(),
            });
        }
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            if segments.len() == MAX_REQUEST_SEGMENTS {
                return Err(PathRefusal::TooLong);
            }
            if raw.is_empty() {
                return Err(PathRefusal::EmptySegment);
            }
            let segment = decode_segment(raw)?;
            if segment == "." || segment == ".." {
                return Err(PathRefusal::DotSegment);
            }
            segments.push(segment);
        }
        Ok(RequestPath { segments })
    }

    /// The decoded segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

fn decode_segment(raw: &str) -> Result<String, PathRefusal> {
    // Control characters, decoded or not, are never part of a path a
    // service routes; a raw space or `\` is not even valid in a URI.
    let control = |b: u8| b < 0x20 || b == 0x7f;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathRefusal::BadEncoding)?;
            let decoded = std::str::from_utf8(hex)
                .ok()
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PathRefusal::BadEncoding)?;
            match decoded {
                b'/' => return Err(PathRefusal::EncodedSlash),
                b'\\' => return Err(PathRefusal::EncodedBackslash),
                d if control(d) => return Err(PathRefusal::BadCharacter),
                d => out.push(d),
            }
            i += 3;
        } else if control(b) || b == b' ' || b == b'\\' {
            return Err(PathRefusal::BadCharacter);
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathRefusal::BadEncoding)
}

/// The original URI of an Envoy HTTP `ext_authz` check, which appends it to
/// the configured path prefix: `/v1/authz/forward/invoices/42?x=1` is
/// `/invoices/42?x=1`, `/v1/authz/forward` is `/`. `None` when
/// `path_and_query` is not under [`FORWARD_PATH`] (`/v1/authz/forwarder`).
pub fn envoy_original_uri(path_and_query: &str) -> Option<String> {
    let rest = path_and_query.strip_prefix(FORWARD_PATH)?;
    match rest.as_bytes().first() {
        None => Some("/".to_owned()),
        Some(b'/') => Some(rest.to_owned()),
        Some(b'?' | b'#') => Some(format!("/{rest}")),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------------------
// rules
// ---------------------------------------------------------------------------

/// A rule as sent in `PUT /v1/authz/rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A list of methods (any case), or `"*"` for every method.
    pub methods: MethodsSpec,
    /// Case-sensitive; `*` is one segment, `**` zero or more
    /// (`/invoices/**` also matches `/invoices`).
    #[schema(max_length = 512, examples("/invoices/**"))]
    pub path: String,
    /// All required of the token.
    #[serde(default)]
    #[schema(value_type = Vec<Scope>, max_items = 50)]
    pub scopes: Vec<String>,
    /// A public route: no token needed (and no scopes or cost given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
    /// What a match spends of the token's rate limits and budget
    /// (0 to 1,000,000, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub cost: Option<i64>,
}

/// The body of `PUT /v1/authz/rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// First match wins; a request no rule matches is refused.
    #[schema(max_items = 1000)]
    pub rules: Vec<RuleSpec>,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    methods: Methods,
    path: PathPattern,
    scopes: Vec<Scope>,
    anonymous: bool,
    cost: Cost,
}

impl Rule {
    /// Validates one rule; errors name `field.methods[1]`, `field.path`,
    /// `field.scopes[0]`, `field.cost`, ….
    pub fn parse(field: &str, spec: &RuleSpec) -> Result<Rule, ValidationError> {
        let methods = Methods::parse(&format!("{field}.methods"), &spec.methods)?;
        let path = PathPattern::parse(&format!("{field}.path"), &spec.path)?;
        let scopes = parse_scopes(&format!("{field}.scopes"), &spec.scopes)?;
        let anonymous = spec.anonymous.unwrap_or(false);
        let cost = match spec.cost {
            Some(c) => Cost::parse(&format!("{field}.cost"), c)?,
            None => Cost::default(),
        };
        if anonymous && !scopes.is_empty() {
            return Err(ValidationError::new(
                format!("{field}.scopes"),
                "an anonymous rule needs no token, so it cannot require scopes",
            ));
        }
        if anonymous && spec.cost.is_some() {
            return Err(ValidationError::new(
                format!("{field}.cost"),
                "an anonymous rule looks at no token, so it spends nothing",
            ));
        }
        Ok(Rule {
            methods,
            path,
            scopes,
            anonymous,
            cost,
        })
    }

    /// The methods it matches.
    pub fn methods(&self) -> &Methods {
        &self.methods
    }

    /// The path pattern.
    pub fn path(&self) -> &PathPattern {
        &self.path
    }

    /// Scopes the token must all hold.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// A public route?
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// What a match spends.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// Does the rule match this request? `method` is `None` for a method
    /// outside [`Method::ALL`].
    pub fn matches(&self, method: Option<Method>, path: &RequestPath) -> bool {
        self.methods.matches(method) && self.path.matches(path)
    }

    fn spec(&self) -> RuleSpec {
        RuleSpec {
            methods: match &self.methods {
                Methods::Any => MethodsSpec::Any("*".into()),
                Methods::Only(list) => {
                    MethodsSpec::List(list.iter().map(|m| m.as_str().to_owned()).collect())
                }
            },
            path: self.path.raw.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            anonymous: self.anonymous.then_some(true),
            cost: (self.cost != Cost::default()).then_some(self.cost.get() as i64),
        }
    }
}

/// Shown as it is sent: methods in capitals (or `"*"`), `anonymous` only
/// when true, `cost` only when not 1.
impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.spec().serialize(s)
    }
}

/// The route rules of a workspace and mode, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RuleSet(Vec<Rule>);

/// A rule that can never match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleWarning {
    /// The rule: `rules[3]`.
    pub field: String,
    /// Why, naming the earlier rules.
    pub message: String,
    /// Indexes of the earlier rules that catch every request it would.
    pub shadowed_by: Vec<usize>,
}

/// The answer of `GET|PUT /v1/authz/rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulesAnswer {
    /// The rules, as stored.
    #[schema(value_type = Vec<RuleSpec>)]
    pub rules: RuleSet,
    /// Rules that can never match.
    pub warnings: Vec<RuleWarning>,
}

impl RuleSet {
    /// Validates the rules of a request; errors name `rules` or
    /// `rules[i].…`.
    pub fn parse(raw: &[RuleSpec]) -> Result<RuleSet, ValidationError> {
        if raw.len() > MAX_RULES {
            return Err(ValidationError::new(
                "rules",
                format!("at most {MAX_RULES} rules are allowed, got {}", raw.len()),
            ));
        }
        raw.iter()
            .enumerate()
            .map(|(i, spec)| Rule::parse(&format!("rules[{i}]"), spec))
            .collect::<Result<Vec<_>, _>>()
            .map(RuleSet)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.0
    }

    /// The first rule matching the request, and its index; `None`: refused.
    /// `method` is `None` for a method outside [`Method::ALL`] (see
    /// [`Method::parse`]).
    pub fn find(&self, method: Option<Method>, path: &RequestPath) -> Option<(usize, &Rule)> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(method, path))
    }

    /// Rules that can never match (see the module documentation).
    pub fn warnings(&self) -> Vec<RuleWarning> {
        let mut interner = Interner::default();
        let shapes: Vec<Shape> = self
            .0
            .iter()
            .map(|r| interner.shape(&r.path.tokens))
            .collect();
        let mut out = Vec::new();
        for (j, rule) in self.0.iter().enumerate() {
            let covering: Vec<usize> = (0..j).filter(|&i| covers(&shapes[i], &shapes[j])).collect();
            if covering.is_empty() {
                continue;
            }
            let shadowed_by: Vec<usize> = match &rule.methods {
                Methods::Any => covering
                    .into_iter()
                    .filter(|&i| self.0[i].methods == Methods::Any)
                    .take(1)
                    .collect(),
                Methods::Only(methods) => {
                    let mut by = Vec::new();
                    let all_caught = methods.iter().all(|&m| {
                        let catcher = covering
                            .iter()
                            .copied()
                            .find(|&i| self.0[i].methods.matches(Some(m)));
                        if let Some(i) = catcher {
                            if !by.contains(&i) {
                                by.push(i);
                            }
                        }
                        catcher.is_some()
                    });
                    if all_caught {
                        by.sort_unstable();
                        by
                    } else {
                        Vec::new()
                    }
                }
            };
            if shadowed_by.is_empty() {
                continue;
            }
            let names: Vec<String> = shadowed_by.iter().map(|i| format!("rules[{i}]")).collect();
            let message = if names.len() == 1 {
                format!(
                    "rules[{j}] can never match: {} matches every request it would",
                    names[0]
                )
            } else {
                format!(
                    "rules[{j}] can never match: {} together match every request it would",
                    names.join(", ")
                )
            };
            out.push(RuleWarning {
                field: format!("rules[{j}]"),
                message,
                shadowed_by,
            });
        }
        out
    }

    /// The answer for these rules: the rules and their warnings.
    pub fn answer(&self) -> RulesAnswer {
        RulesAnswer {
            rules: self.clone(),
            warnings: self.warnings(),
        }
    }
}

impl<'de> Deserialize<'de> for RuleSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<RuleSpec>::deserialize(d)?;
        RuleSet::parse(&raw).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// answer headers
// ---------------------------------------------------------------------------

/// What to send for a token's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataHeader {
    /// `X-Tooken-Metadata: <value>`.
    Value(String),
    /// `X-Tooken-Metadata-Omitted: too-large` instead.
    TooLarge,
}

/// The `X-Tooken-Metadata` value of a token's metadata: base64url without
/// padding (RFC 4648 §5) of the compact JSON, or [`MetadataHeader::TooLarge`]
/// when that is over [`METADATA_HEADER_MAX_BYTES`] bytes. A token without
/// metadata gets neither header.
pub fn metadata_header(metadata: &Map<String, Value>) -> MetadataHeader {
    let json = serde_json::to_vec(metadata).unwrap_or_default();
    // 4 characters per 3 bytes, without padding.
    if json.len().div_ceil(3) * 4 > METADATA_HEADER_MAX_BYTES + 3 {
        return MetadataHeader::TooLarge;
    }
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    if value.len() > METADATA_HEADER_MAX_BYTES {
        MetadataHeader::TooLarge
    } else {
        MetadataHeader::Value(value)
    }
}

/// The `X-Tooken-Scopes` value: the scopes, space-separated.
pub fn scopes_header(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
