use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

// --- signatures ------------------------------------------------------------------

/// The cases every receiver (this crate, the client, both SDKs) must agree
/// on, including the published Standard Webhooks vectors.
const VECTORS: &str = include_str!("../../testdata/webhook-vectors.json");

#[test]
fn signatures_match_the_shared_vectors() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let sign = v["sign"].as_array().unwrap();
    assert!(sign.len() >= 2);
    for case in sign {
        let secret = WebhookSecret::parse(case["secret"].as_str().unwrap()).unwrap();
        let signature = secret.sign(
            case["id"].as_str().unwrap(),
            case["timestamp"].as_i64().unwrap(),
            case["body"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(
            signature,
            case["signature"].as_str().unwrap(),
            "{}",
            case["source"]
        );
    }
    // The two published Standard Webhooks vectors are among them.
    assert_eq!(
        sign[0]["signature"],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    assert_eq!(
        sign[1]["signature"],
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn verification_agrees_with_the_shared_vectors() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let tolerance = v["tolerance_seconds"].as_i64().unwrap();
    assert_eq!(tolerance, DEFAULT_TOLERANCE_SECONDS);
    let cases = v["verify"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let secret = WebhookSecret::parse(case["secret"].as_str().unwrap()).unwrap();
        let h = &case["headers"];
        let headers = WebhookHeaders {
            id: h[HEADER_ID].as_str(),
            timestamp: h[HEADER_TIMESTAMP].as_str(),
            signature: h[HEADER_SIGNATURE].as_str(),
        };
        let body = case["body"].as_str().unwrap().as_bytes();
        let now = at(case["now"].as_i64().unwrap());
        let result = verify(&secret, &headers, body, now, tolerance);
        assert_eq!(
            result.is_ok(),
            case["valid"].as_bool().unwrap(),
            "{name}: {result:?}"
        );
        if let Err(e) = result {
            assert_eq!(e.code(), case["error"].as_str().unwrap(), "{name}");
        }
    }
}

#[test]
fn generated_secrets_are_whsec_and_32_random_bytes() {
    let a = WebhookSecret::generate();
    let b = WebhookSecret::generate();
    let shown = a.expose();
    assert!(shown.starts_with(SECRET_PREFIX));
    let key = base64::engine::general_purpose::STANDARD
        .decode(&shown[SECRET_PREFIX.len()..])
        .unwrap();
    assert_eq!(key.len(), SECRET_BYTES);
    assert_ne!(shown, b.expose());
    // What is shown reads back as the same key.
    let again = WebhookSecret::parse(&shown).unwrap();
    assert_eq!(again.sign("i", 1, b"x"), a.sign("i", 1, b"x"));
    assert_eq!(a.clone().expose(), shown);
    // Debug shows nothing of it.
    let dbg = format!("{a:?}");
    assert_eq!(dbg, "WebhookSecret(<redacted>)");
    assert!(!dbg.contains(&shown[6..20]));
}

#[test]
fn malformed_secrets_are_refused() {
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    for bad in [
        String::new(),
        "whsec_".into(),
        format!("whsec_{}", b64(23)),
        format!("whsec_{}", b64(65)),
        "whsec_not base64!".into(),
        format!("whsec_{}%", b64(24)),
    ] {
        assert_eq!(
            WebhookSecret::parse(&bad).unwrap_err(),
            InvalidSecret,
            "{bad:?}"
        );
    }
    assert!(WebhookSecret::parse(&format!("whsec_{}", b64(24))).is_ok());
    assert!(WebhookSecret::parse(&format!("whsec_{}", b64(64))).is_ok());
    // Unpadded is read too.
    let unpadded = b64(32).trim_end_matches('=').to_owned();
    assert!(WebhookSecret::parse(&format!("whsec_{unpadded}")).is_ok());
}

#[test]
fn a_rotation_overlap_signs_with_both_secrets() {
    let old = WebhookSecret::generate();
    let new = WebhookSecret::generate();
    let (id, ts, body) = ("evt_1", 1_900_000_000, br#"{"type":"webhook.test"}"#);
    let header = signature_header(&[&new, &old], id, ts, body);
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts, [new.sign(id, ts, body), old.sign(id, ts, body)]);
    let headers = WebhookHeaders {
        id: Some(id),
        timestamp: Some("1900000000"),
        signature: Some(&header),
    };
    for receiver in [&old, &new] {
        assert_eq!(
            verify(receiver, &headers, body, at(ts), DEFAULT_TOLERANCE_SECONDS),
            Ok(())
        );
    }
    let stranger = WebhookSecret::generate();
    assert_eq!(
        verify(&stranger, &headers, body, at(ts), DEFAULT_TOLERANCE_SECONDS),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(signature_header(&[], id, ts, body), "");
}

// --- event types -----------------------------------------------------------------

#[test]
fn event_types_are_the_ones_of_the_spec() {
    let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "token.created",
            "token.updated",
            "token.rotated",
            "token.revoked",
            "token.expiring",
            "token.expired",
            "token.usage_exceeded",
            "token.rate_limited",
            "token.leaked",
            "api_key.created",
            "api_key.regenerated",
            "api_key.deleted",
            "api_key.leaked",
            "settings.updated",
            "authz_rules.updated",
            "webhook.test",
        ]
    );
    for &e in EventType::ALL {
        assert_eq!(EventType::parse(e.as_str()), Ok(e));
        assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
        assert_eq!(
            serde_json::from_value::<EventType>(json!(e.as_str())).unwrap(),
            e
        );
        assert_eq!(
            e.live_endpoints_only(),
            matches!(e, EventType::SettingsUpdated | EventType::AuthzRulesUpdated)
        );
    }
    for bad in [
        "",
        "*",
        "token",
        "Token.Created",
        "token.created ",
        "token.deleted",
    ] {
        assert_eq!(EventType::parse(bad), Err(UnknownEventType), "{bad:?}");
    }
    use utoipa::PartialSchema;
    let schema = serde_json::to_value(EventType::schema()).unwrap();
    assert_eq!(
        schema["enum"].as_array().unwrap().len(),
        EventType::ALL.len()
    );
}

#[test]
fn endpoints_subscribe_to_names_or_everything() {
    let parse = |v: Value| {
        let spec: EventsSpec = serde_json::from_value(v).unwrap();
        EventFilter::parse("events", &spec)
    };
    let all = parse(json!("*")).unwrap();
    assert!(EventType::ALL.iter().all(|&e| all.matches(e)));
    let some = parse(json!(["token.revoked", "token.leaked", "token.revoked"])).unwrap();
    assert_eq!(
        some,
        EventFilter::Only(vec![EventType::TokenRevoked, EventType::TokenLeaked])
    );
    assert!(some.matches(EventType::TokenLeaked));
    assert!(!some.matches(EventType::TokenCreated));
    assert_eq!(
        serde_json::to_value(&some).unwrap(),
        json!(["token.revoked", "token.leaked"])
    );
    assert_eq!(serde_json::to_value(&all).unwrap(), json!("*"));
    for (v, field) in [
        (json!(["token.created", "token.exploded"]), "events[1]"),
        (json!(["*"]), "events[0]"),
        (json!([]), "events"),
        (json!("all"), "events"),
        (json!(vec!["token.created"; 17]), "events"),
    ] {
        assert_eq!(parse(v.clone()).unwrap_err().field, field, "{v}");
    }
    assert!(serde_json::from_value::<EventFilter>(json!(["nope"])).is_err());
    assert_eq!(
        serde_json::from_value::<EventFilter>(json!("*")).unwrap(),
        all
    );
}

#[test]
fn payloads_have_the_spec_shape() {
    let p = EventPayload {
        event_type: EventType::TokenRevoked,
        timestamp: t("2030-01-01T00:00:00Z"),
        data: json!({"id": "tk_1", "cascade_from": "tk_0"}),
    };
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v,
        json!({"type": "token.revoked", "timestamp": "2030-01-01T00:00:00Z", "data": {"id": "tk_1", "cascade_from": "tk_0"}})
    );
    assert_eq!(serde_json::from_value::<EventPayload>(v).unwrap(), p);
}

// --- retries ---------------------------------------------------------------------

#[test]
fn retries_back_off_from_seconds_to_hours() {
    let secs = |n, j| retry_delay(n, j).num_milliseconds() as f64 / 1000.0;
    assert_eq!(secs(1, 0.0), 3.75);
    assert_eq!(secs(1, 0.5), 5.0);
    assert_eq!(secs(1, 1.0), 6.25);
    assert_eq!(secs(2, 0.5), 15.0);
    assert_eq!(secs(3, 0.5), 45.0);
    assert_eq!(secs(9, 0.5), 6.0 * 3600.0);
    assert_eq!(secs(40, 0.5), 6.0 * 3600.0);
    assert_eq!(secs(u32::MAX, 1.0), 7.5 * 3600.0);
    // Out-of-range jitter is clamped.
    assert_eq!(secs(1, f64::NAN), 5.0);
    assert_eq!(secs(1, -3.0), 3.75);
    assert_eq!(secs(1, 7.0), 6.25);
}

#[test]
fn deliveries_are_tried_for_three_days_then_given_up() {
    let first = t("2030-01-01T00:00:00Z");
    assert_eq!(next_attempt(0, first, first, 0.3), Some(first));
    let deadline = first + Duration::seconds(RETRY_FOR_SECONDS);
    let mut now = first;
    let mut attempts = 1;
    while let Some(next) = next_attempt(attempts, first, now, 0.5) {
        assert!(next > now && next <= deadline);
        now = next;
        attempts += 1;
    }
    assert_eq!(now, deadline, "the last retry is at the deadline");
    assert!((18..=24).contains(&attempts), "{attempts} attempts");
    assert_eq!(next_attempt(3, first, deadline, 0.5), None);
    assert_eq!(
        next_attempt(3, first, deadline - Duration::seconds(1), 0.5),
        Some(deadline)
    );
}

// --- targets ---------------------------------------------------------------------

fn target(raw: &str, mode: Mode, allow_private: bool) -> Result<TargetUrl, ValidationError> {
    TargetUrl::parse("url", raw, mode, allow_private)
}

#[test]
fn endpoint_urls_are_http_or_https_with_a_host() {
    let ok = target("https://hooks.example.com/tooken?k=v", Mode::Live, false).unwrap();
    assert_eq!(
        ok.host(),
        Some(TargetHost::Domain("hooks.example.com".into()))
    );
    assert_eq!(ok.port(), 443);
    assert_eq!(ok.as_str(), "https://hooks.example.com/tooken?k=v");
    let test_http = target("http://hooks.example.com:8080/x", Mode::Test, false).unwrap();
    assert_eq!(test_http.port(), 8080);
    assert!(target("https://203.0.113.9/x", Mode::Live, false).is_err());
    assert!(target("https://93.184.215.14/x", Mode::Live, false).is_ok());
    for (raw, mode) in [
        ("http://hooks.example.com/", Mode::Live),
        ("ftp://hooks.example.com/", Mode::Test),
        ("file:///etc/passwd", Mode::Test),
        ("javascript:alert(1)", Mode::Test),
        ("hooks.example.com/x", Mode::Test),
        ("/relative", Mode::Test),
        ("https://", Mode::Test),
        ("https://user@hooks.example.com/", Mode::Test),
        ("https://user:pw@hooks.example.com/", Mode::Test),
        ("https://:pw@hooks.example.com/", Mode::Test),
        ("https://hooks.example.com/#frag", Mode::Test),
    ] {
        let e = target(raw, mode, false).unwrap_err();
        assert_eq!(e.field, "url", "{raw}");
    }
    let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_BYTES));
    assert!(target(&long, Mode::Test, false).is_err());
    // The flag allows http for live endpoints too.
    assert!(target("http://hooks.example.com/", Mode::Live, true).is_ok());
}

#[test]
fn endpoint_urls_on_private_addresses_are_refused_however_written() {
    for raw in [
        "https://127.0.0.1/",
        "https://127.1.2.3:8443/",
        "https://[::1]/",
        "https://10.0.0.1/",
        "https://192.168.1.10/",
        "https://172.31.255.255/",
        "https://[fd12:3456::1]/",
        "https://169.254.1.1/",
        "https://[fe80::1]/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:7f00:1::]/",
        // The parser the client uses reads all of these as 127.0.0.1.
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "https://localhost:3000/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
    ] {
        let e = target(raw, Mode::Test, false).unwrap_err();
        assert_eq!(e.field, "url", "{raw}");
        assert!(
            e.message.starts_with("must not point to"),
            "{raw}: {}",
            e.message
        );
    }
    // The flag allows private targets, never metadata, multicast or broadcast.
    assert!(target("http://127.0.0.1:3000/hook", Mode::Live, true).is_ok());
    assert!(target("http://localhost:3000/hook", Mode::Live, true).is_ok());
    assert!(target("http://10.1.2.3/", Mode::Test, true).is_ok());
    for raw in [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://0.0.0.0/",
    ] {
        assert!(target(raw, Mode::Test, true).is_err(), "{raw}");
    }
}

#[test]
fn refusals_never_repeat_the_url() {
    let secret = crate::Credential::generate("tkn", crate::Mode::Live);
    for raw in [
        format!("ftp://hooks.example.com/?t={}", secret.expose()),
        format!("https://u:{}@hooks.example.com/", secret.expose()),
        format!("https://127.0.0.1/?t={}", secret.expose()),
    ] {
        let e = target(&raw, Mode::Live, false).unwrap_err();
        assert!(
            !e.message.contains(&secret.expose()[9..25]),
            "{}",
            e.message
        );
    }
}

#[test]
fn addresses_are_classified() {
    use AddressClass::*;
    for (addr, class) in [
        ("8.8.8.8", Public),
        ("1.1.1.1", Public),
        ("2606:4700::1111", Public),
        ("127.0.0.1", Loopback),
        ("::1", Loopback),
        ("10.255.0.1", Private),
        ("172.16.0.1", Private),
        ("172.32.0.1", Public),
        ("192.168.0.1", Private),
        ("fc00::1", Private),
        ("fdff::1", Private),
        ("fec0::1", Private),
        ("64:ff9b:1::1", Private),
        ("169.254.0.1", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("224.0.0.251", Multicast),
        ("239.255.255.250", Multicast),
        ("ff02::1", Multicast),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("::", Unspecified),
        ("255.255.255.255", Broadcast),
        ("100.64.0.1", SharedAddressSpace),
        ("100.127.255.255", SharedAddressSpace),
        ("100.128.0.1", Public),
        ("169.254.169.254", CloudMetadata),
        ("169.254.170.2", CloudMetadata),
        ("100.100.100.200", CloudMetadata),
        ("fd00:ec2::254", CloudMetadata),
        ("::ffff:169.254.169.254", CloudMetadata),
        ("64:ff9b::169.254.169.254", CloudMetadata),
        ("::ffff:10.0.0.1", Private),
        ("::ffff:8.8.8.8", Public),
        ("64:ff9b::8.8.8.8", Public),
        ("64:ff9b::127.0.0.1", Loopback),
        ("2002:c0a8:0101::1", Private),
        ("2002:0808:0808::1", Public),
        ("240.0.0.1", Reserved),
        ("192.0.2.1", Reserved),
        ("198.51.100.1", Reserved),
        ("203.0.113.1", Reserved),
        ("198.18.0.1", Reserved),
        ("2001:db8::1", Reserved),
        ("2001::1", Reserved),
        ("3fff::1", Reserved),
        ("100::1", Reserved),
        ("::127.0.0.1", Reserved),
    ] {
        assert_eq!(classify(addr.parse().unwrap()), class, "{addr}");
    }
    assert_eq!(check_address("8.8.8.8".parse().unwrap(), false), Ok(()));
    assert_eq!(
        check_address("127.0.0.1".parse().unwrap(), false),
        Err(Loopback)
    );
    assert_eq!(check_address("127.0.0.1".parse().unwrap(), true), Ok(()));
    assert_eq!(
        check_address("169.254.169.254".parse().unwrap(), true),
        Err(CloudMetadata)
    );
}

proptest! {
    /// However an IPv4 address is carried in IPv6, it is judged the same.
    #[test]
    fn embedded_ipv4_addresses_are_judged_as_themselves(bits in any::<u32>()) {
        let v4 = Ipv4Addr::from(bits);
        let class = classify(IpAddr::V4(v4));
        prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), class);
        let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(bits));
        prop_assert_eq!(classify(IpAddr::V6(nat64)), class);
        let six_to_four = Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(bits) << 80) | 1);
        prop_assert_eq!(classify(IpAddr::V6(six_to_four)), class);
    }

    /// The standard library's own tests agree where they exist.
    #[test]
    fn classification_agrees_with_the_standard_library(bits in any::<u32>(), bits6 in any::<u128>()) {
        let v4 = Ipv4Addr::from(bits);
        let c = classify(IpAddr::V4(v4));
        if v4.is_loopback() { prop_assert_eq!(c, AddressClass::Loopback); }
        if v4.is_private() { prop_assert_eq!(c, AddressClass::Private); }
        if v4.is_multicast() { prop_assert_eq!(c, AddressClass::Multicast); }
        if v4.is_documentation() { prop_assert_eq!(c, AddressClass::Reserved); }
        if v4.is_link_local() { prop_assert!(matches!(c, AddressClass::LinkLocal | AddressClass::CloudMetadata)); }
        let v6 = Ipv6Addr::from(bits6);
        let c6 = classify(IpAddr::V6(v6));
        if v6.is_multicast() { prop_assert_eq!(c6, AddressClass::Multicast); }
        if v6.is_unique_local() { prop_assert!(matches!(c6, AddressClass::Private | AddressClass::CloudMetadata)); }
        if v6.is_unicast_link_local() { prop_assert_eq!(c6, AddressClass::LinkLocal); }
    }

    #[test]
    fn the_first_retry_comes_within_ten_seconds(jitter in any::<f64>()) {
        let d = retry_delay(1, jitter);
        prop_assert!(d > Duration::zero() && d <= Duration::seconds(10));
    }

    #[test]
    fn retries_never_go_past_three_days(
        attempts in 1u32..60,
        since_first in 0i64..(4 * 86_400),
        jitter in 0.0f64..=1.0,
    ) {
        let first = t("2030-01-01T00:00:00Z");
        let now = first + Duration::seconds(since_first);
        match next_attempt(attempts, first, now, jitter) {
            Some(next) => {
                prop_assert!(next > now);
                prop_assert!(next <= first + Duration::seconds(RETRY_FOR_SECONDS));
            }
            None => prop_assert!(since_first >= RETRY_FOR_SECONDS),
        }
    }

    #[test]
    fn url_parsing_is_total(raw in "\\PC{0,80}", live in any::<bool>(), allow in any::<bool>()) {
        let mode = if live { Mode::Live } else { Mode::Test };
        if let Ok(u) = TargetUrl::parse("url", &raw, mode, allow) {
            prop_assert!(matches!(u.url().scheme(), "http" | "https"));
            prop_assert!(u.host().is_some());
            if let Some(TargetHost::Ip(ip)) = u.host() {
                prop_assert!(classify(ip).allowed(allow));
            }
        }
    }

    #[test]
    fn verification_is_total(
        id in "\\PC{0,20}",
        ts in "\\PC{0,14}",
        sig in "(v1,[A-Za-z0-9+/=]{0,50}| ){0,4}",
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in 0i64..4_000_000_000,
    ) {
        let secret = WebhookSecret::generate();
        let headers = WebhookHeaders { id: Some(&id), timestamp: Some(&ts), signature: Some(&sig) };
        let _ = verify(&secret, &headers, &body, at(now), DEFAULT_TOLERANCE_SECONDS);
        // A signature it made itself always verifies, over any bytes.
        if let Ok(stamp) = ts.parse::<u32>() {
            let signed = secret.sign(&id, i64::from(stamp), &body);
            let headers = WebhookHeaders { signature: Some(&signed), ..headers };
            if ts.bytes().all(|b| b.is_ascii_digit()) && ts == stamp.to_string() {
                prop_assert_eq!(verify(&secret, &headers, &body, at(i64::from(stamp)), 0), Ok(()));
            }
        }
    }
}

#[test]
fn the_openapi_schemas_name_every_type_they_refer_to() {
    crate::assert_schema_complete::<EventPayload>();
    crate::assert_schema_complete::<EventFilter>();
}
