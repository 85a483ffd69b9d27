use super::*;
use proptest::prelude::*;
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> AllowedIps {
    let raw: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    AllowedIps::parse("allowed_ips", &raw).unwrap()
}

fn limit(name: &str, limit: i64, window_seconds: i64) -> RateLimitSpec {
    RateLimitSpec {
        name: name.into(),
        limit,
        window_seconds,
    }
}

fn limits(list: &[(&str, i64, i64)]) -> RateLimits {
    let raw: Vec<RateLimitSpec> = list.iter().map(|&(n, l, w)| limit(n, l, w)).collect();
    RateLimits::parse("rate_limits", &raw).unwrap()
}

fn refill_daily(amount: i64) -> RefillSpec {
    RefillSpec {
        amount,
        interval: Some(RefillInterval::Daily),
        interval_seconds: None,
    }
}

fn refill_every(amount: i64, secs: i64) -> RefillSpec {
    RefillSpec {
        amount,
        interval: None,
        interval_seconds: Some(secs),
    }
}

fn caveats(v: serde_json::Value) -> Result<Caveats, ValidationError> {
    let spec: CaveatsSpec = serde_json::from_value(v).unwrap();
    Caveats::parse(&spec)
}

fn field_of(v: serde_json::Value) -> String {
    caveats(v).unwrap_err().field
}

// --- allowed_ips ------------------------------------------------------------

#[test]
fn networks_and_bare_addresses_are_shown_canonically() {
    for (input, shown) in [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("198.51.100.7", "198.51.100.7/32"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8:0:0::1", "2001:db8::1/128"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:203.0.113.9", "203.0.113.9/32"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("::fffe:0:0/95", "::fffe:0:0/95"),
    ] {
        assert_eq!(Cidr::parse(input).unwrap().to_string(), shown, "{input}");
    }
}

#[test]
fn malformed_networks_are_refused_with_a_reason() {
    use CidrError::*;
    for (input, expected) in [
        ("", NotAnAddress),
        (
            "203.0.113.0/33",
            PrefixTooLong {
                family: "IPv4",
                max: 32,
            },
        ),
        (
            "2001:db8::/129",
            PrefixTooLong {
                family: "IPv6",
                max: 128,
            },
        ),
        ("10.0.0.0/", BadPrefix),
        ("10.0.0.0/+8", BadPrefix),
        ("10.0.0.0/08", BadPrefix),
        ("10.0.0.0/ 8", BadPrefix),
        ("10.0.0.0/1000", BadPrefix),
        ("10.0.0.0/8/8", BadPrefix),
        ("10.0.0.0/-1", BadPrefix),
        (" 10.0.0.0/8", NotAnAddress),
        ("10.0.0/8", NotAnAddress),
        ("010.0.0.0/8", NotAnAddress),
        ("fe80::1%eth0", NotAnAddress),
        ("host.example", NotAnAddress),
        ("10.0.0.256", NotAnAddress),
    ] {
        assert_eq!(Cidr::parse(input), Err(expected), "{input:?}");
    }
}

#[test]
fn host_bits_set_are_refused_naming_the_network() {
    let e = Cidr::parse("10.0.0.1/8").unwrap_err();
    assert_eq!(
        e,
        CidrError::HostBitsSet {
            network: "10.0.0.0/8".into()
        }
    );
    assert!(e.to_string().contains("10.0.0.0/8"));
    assert!(matches!(
        Cidr::parse("2001:db8::1/32"),
        Err(CidrError::HostBitsSet { .. })
    ));
    assert!(matches!(
        Cidr::parse("::ffff:10.0.0.1/104"),
        Err(CidrError::HostBitsSet { network }) if network == "10.0.0.0/8"
    ));
}

#[test]
fn ipv4_mapped_addresses_match_ipv4_networks_only() {
    let nets = ips(&["203.0.113.0/24", "2001:db8::/32"]);
    assert!(nets.contains(ip("203.0.113.9")));
    assert!(nets.contains(ip("::ffff:203.0.113.9")));
    assert!(nets.contains(ip("2001:db8::5")));
    assert!(!nets.contains(ip("203.0.114.1")));
    assert!(!nets.contains(ip("::ffff:203.0.114.1")));
    assert!(!nets.contains(ip("2001:db9::1")));
    // A mapped network is an IPv4 network.
    assert!(ips(&["::ffff:10.0.0.0/104"]).contains(ip("10.1.2.3")));
    // All of IPv6 is not all of IPv4, and the other way round.
    assert!(!ips(&["::/0"]).contains(ip("203.0.113.9")));
    assert!(!ips(&["::/0"]).contains(ip("::ffff:203.0.113.9")));
    assert!(!ips(&["0.0.0.0/0"]).contains(ip("2001:db8::1")));
    assert!(ips(&["0.0.0.0/0"]).contains(ip("::ffff:1.2.3.4")));
}

#[test]
fn allowed_ip_lists_are_bounded_named_and_deduplicated() {
    let many: Vec<String> = (0..101).map(|i| format!("10.0.{i}.0/24")).collect();
    let e = AllowedIps::parse("allowed_ips", &many).unwrap_err();
    assert_eq!(e.field, "allowed_ips");
    assert!(AllowedIps::parse("allowed_ips", &many[..100]).is_ok());
    let bad: Vec<String> = ["10.0.0.0/8", "10.0.0.0/8", "1.2.3.4", "10.0.0.1/8"]
        .map(String::from)
        .to_vec();
    let e = AllowedIps::parse("allowed_ips", &bad).unwrap_err();
    assert_eq!(e.field, "allowed_ips[3]");
    assert!(e.message.contains("host bits"), "{}", e.message);
    assert_eq!(
        AllowedIps::parse("allowed_ips", &[]).unwrap_err().field,
        "allowed_ips"
    );
    assert_eq!(
        ips(&["10.0.0.0/8", "10.0.0.0/8", "1.2.3.4"])
            .networks()
            .len(),
        2
    );
    assert_eq!(
        field_of(json!({"allowed_ips": ["10.0.0.0/8", "10.0.0.0/33"]})),
        "allowed_ips[1]"
    );
}

#[test]
fn a_secret_pasted_as_a_network_is_not_repeated() {
    let secret = crate::Credential::generate("tkn", crate::Mode::Live);
    let raw = vec![secret.expose().to_owned()];
    let e = AllowedIps::parse("allowed_ips", &raw).unwrap_err();
    assert!(
        !e.message.contains(&secret.expose()[9..25]),
        "{}",
        e.message
    );
}

#[test]
fn client_addresses_are_checked_against_allowed_ips() {
    let nets = ips(&["203.0.113.0/24"]);
    assert_eq!(check_client_ip(None, None), Ok(()));
    assert_eq!(check_client_ip(None, Some(ip("1.2.3.4"))), Ok(()));
    assert_eq!(
        check_client_ip(Some(&nets), Some(ip("203.0.113.1"))),
        Ok(())
    );
    assert_eq!(
        check_client_ip(Some(&nets), Some(ip("1.2.3.4"))),
        Err(Refusal::IpNotAllowed)
    );
    // No address given: refused.
    assert_eq!(
        check_client_ip(Some(&nets), None),
        Err(Refusal::IpNotAllowed)
    );
    assert_eq!(parse_client_ip("client_ip", "::1").unwrap(), ip("::1"));
    for bad in ["", "localhost", "1.2.3.4/32", "1.2.3", "::1%lo"] {
        assert_eq!(
            parse_client_ip("client_ip", bad).unwrap_err().field,
            "client_ip"
        );
    }
}

// --- cost -----------------------------------------------------------------

#[test]
fn costs_are_bounded() {
    assert_eq!(Cost::parse("cost", 0).unwrap(), Cost::ZERO);
    assert_eq!(Cost::parse("cost", 1_000_000).unwrap().get(), 1_000_000);
    for bad in [-1, 1_000_001, i64::MIN, i64::MAX] {
        assert_eq!(Cost::parse("cost", bad).unwrap_err().field, "cost");
    }
    assert_eq!(Cost::default(), Cost::ONE);
    assert_eq!(Cost::ZERO.needed(), 1);
    assert_eq!(Cost::ZERO.get(), 0);
    let e = crate::api::parse_json_object::<CostBody>(br#"{"cost": -1}"#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("cost"));
    let e = crate::api::parse_json_object::<CostBody>(br#"{"cost": 1.5}"#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("cost"));
    let ok: CostBody = crate::api::parse_json_object(br#"{}"#).unwrap();
    assert_eq!(ok.cost, Cost::ONE);
}

#[derive(Debug, Deserialize)]
struct CostBody {
    #[serde(default)]
    cost: Cost,
}

// --- rate_limits ---------------------------------------------------------------

#[test]
fn each_bad_rate_limit_is_named() {
    let cases = [
        (
            json!([{"name": "a", "limit": 0, "window_seconds": 60}]),
            "rate_limits[0].limit",
        ),
        (
            json!([{"name": "a", "limit": -5, "window_seconds": 60}]),
            "rate_limits[0].limit",
        ),
        (
            json!([{"name": "a", "limit": 9_007_199_254_740_992_i64, "window_seconds": 60}]),
            "rate_limits[0].limit",
        ),
        (
            json!([{"name": "a", "limit": 1, "window_seconds": 0}]),
            "rate_limits[0].window_seconds",
        ),
        (
            json!([{"name": "a", "limit": 1, "window_seconds": -1}]),
            "rate_limits[0].window_seconds",
        ),
        (
            json!([{"name": "a", "limit": 1, "window_seconds": 86_401}]),
            "rate_limits[0].window_seconds",
        ),
        (
            json!([{"name": "a", "limit": 1, "window_seconds": 1}, {"name": "a", "limit": 2, "window_seconds": 2}]),
            "rate_limits[1].name",
        ),
        (
            json!([{"name": "Default", "limit": 1, "window_seconds": 1}]),
            "rate_limits[0].name",
        ),
        (
            json!([{"name": "", "limit": 1, "window_seconds": 1}]),
            "rate_limits[0].name",
        ),
        (
            json!([{"name": "_x", "limit": 1, "window_seconds": 1}]),
            "rate_limits[0].name",
        ),
        (
            json!([{"name": "a".repeat(33), "limit": 1, "window_seconds": 1}]),
            "rate_limits[0].name",
        ),
        (
            json!([{"name": "per minute", "limit": 1, "window_seconds": 1}]),
            "rate_limits[0].name",
        ),
        (json!([]), "rate_limits"),
    ];
    for (raw, field) in cases {
        assert_eq!(field_of(json!({ "rate_limits": raw })), field, "{raw}");
    }
    let eleven: Vec<_> = (0..11)
        .map(|i| json!({"name": format!("l{i}"), "limit": 1, "window_seconds": 1}))
        .collect();
    assert_eq!(field_of(json!({ "rate_limits": eleven })), "rate_limits");
    assert!(caveats(json!({ "rate_limits": eleven[..10] })).is_ok());
    let ok = limits(&[("default", 100, 60), ("a-b.c_9", 1, 86_400), ("0", 1, 1)]);
    assert_eq!(ok.limits().len(), 3);
    assert_eq!(
        ok.get(&LimitName("a-b.c_9".into()))
            .unwrap()
            .window_seconds(),
        86_400
    );
}

#[test]
fn wire_errors_in_rate_limits_name_the_field() {
    for (body, field) in [
        (
            r#"{"rate_limits": [{"name": "a", "limit": 1}]}"#,
            "rate_limits[0].window_seconds",
        ),
        (
            r#"{"rate_limits": [{"name": "a", "limit": "1", "window_seconds": 1}]}"#,
            "rate_limits[0].limit",
        ),
        (
            r#"{"rate_limits": [{"name": "a", "limit": 1, "window_seconds": 1, "burst": 2}]}"#,
            "rate_limits[0].burst",
        ),
        (
            r#"{"refill": {"amount": 1, "interval": "weekly"}}"#,
            "refill.interval",
        ),
        (r#"{"remaining_uses": "many"}"#, "remaining_uses"),
    ] {
        let e = crate::api::parse_json_object::<CaveatsSpec>(body.as_bytes()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{body}: {e:?}");
    }
}

// --- remaining_uses and refill -------------------------------------------------

#[test]
fn each_bad_budget_is_named() {
    let cases = [
        (json!({"remaining_uses": -1}), "remaining_uses"),
        (
            json!({"remaining_uses": 9_007_199_254_740_992_i64}),
            "remaining_uses",
        ),
        (
            json!({"refill": {"amount": 5, "interval": "daily"}}),
            "refill",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 5, "interval": "daily", "interval_seconds": 60}}),
            "refill.interval_seconds",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 5}}),
            "refill.interval",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 0, "interval": "daily"}}),
            "refill.amount",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": -3, "interval": "daily"}}),
            "refill.amount",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 5, "interval_seconds": 59}}),
            "refill.interval_seconds",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 5, "interval_seconds": 31_622_401}}),
            "refill.interval_seconds",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(field_of(body.clone()), field, "{body}");
    }
    let ok = caveats(json!({"remaining_uses": 0, "refill": {"amount": 5, "interval": "monthly"}}))
        .unwrap();
    assert_eq!(ok.budget().unwrap().remaining_uses, 0);
    assert_eq!(
        ok.budget().unwrap().refill.unwrap().period(),
        RefillPeriod::Monthly
    );
}

#[test]
fn caveats_have_the_wire_shape_of_the_spec() {
    let c = caveats(json!({
        "allowed_ips": ["203.0.113.0/24", "2001:db8::/32"],
        "rate_limits": [{"name": "default", "limit": 100, "window_seconds": 60}],
        "remaining_uses": 1000,
        "refill": {"amount": 1000, "interval": "daily"}
    }))
    .unwrap();
    let shown = serde_json::to_value(&c).unwrap();
    assert_eq!(
        shown,
        json!({
            "allowed_ips": ["203.0.113.0/24", "2001:db8::/32"],
            "rate_limits": [{"name": "default", "limit": 100, "window_seconds": 60}],
            "remaining_uses": 1000,
            "refill": {"amount": 1000, "interval": "daily"}
        })
    );
    assert_eq!(serde_json::from_value::<Caveats>(shown).unwrap(), c);
    let every =
        caveats(json!({"remaining_uses": 3, "refill": {"amount": 7, "interval_seconds": 3600}}))
            .unwrap();
    assert_eq!(
        serde_json::to_value(&every).unwrap(),
        json!({
            "allowed_ips": null,
            "rate_limits": null,
            "remaining_uses": 3,
            "refill": {"amount": 7, "interval_seconds": 3600}
        })
    );
    assert_eq!(
        serde_json::to_value(Caveats::none()).unwrap(),
        json!({"allowed_ips": null, "rate_limits": null, "remaining_uses": null, "refill": null})
    );
    assert_eq!(
        serde_json::from_value::<Caveats>(json!({})).unwrap(),
        Caveats::none()
    );
    // What the store keeps cannot come back broken.
    assert!(serde_json::from_value::<Caveats>(
        json!({"refill": {"amount": 1, "interval": "daily"}})
    )
    .is_err());
    assert!(serde_json::from_value::<Caveats>(json!({"allowed_ips": ["10.0.0.1/8"]})).is_err());
}

#[test]
fn the_documented_limits_are_the_enforced_ones() {
    use utoipa::PartialSchema;
    let spec = serde_json::to_value(RateLimitSpec::schema()).unwrap();
    assert_eq!(
        spec["properties"]["window_seconds"]["maximum"],
        MAX_WINDOW_SECONDS
    );
    assert_eq!(
        spec["properties"]["window_seconds"]["minimum"],
        MIN_WINDOW_SECONDS
    );
    assert_eq!(spec["properties"]["limit"]["maximum"], MAX_COUNT);
    let refill = serde_json::to_value(RefillSpec::schema()).unwrap();
    assert_eq!(
        refill["properties"]["interval_seconds"]["minimum"],
        MIN_REFILL_SECONDS
    );
    assert_eq!(
        refill["properties"]["interval_seconds"]["maximum"],
        MAX_REFILL_SECONDS
    );
    assert_eq!(refill["properties"]["amount"]["maximum"], MAX_COUNT);
    let create = serde_json::to_value(CaveatsSpec::schema()).unwrap();
    assert_eq!(
        create["properties"]["allowed_ips"]["maxItems"],
        MAX_ALLOWED_IPS
    );
    assert_eq!(
        create["properties"]["rate_limits"]["maxItems"],
        MAX_RATE_LIMITS
    );
    assert_eq!(create["properties"]["remaining_uses"]["maximum"], MAX_COUNT);
    let cost = serde_json::to_value(Cost::schema()).unwrap();
    assert_eq!(cost["maximum"], MAX_COST);
    let name = serde_json::to_value(LimitName::schema()).unwrap();
    assert_eq!(name["maxLength"], MAX_LIMIT_NAME_LEN);
}

#[test]
fn updates_set_clear_and_add() {
    let base =
        caveats(json!({"remaining_uses": 10, "refill": {"amount": 10, "interval": "daily"}}))
            .unwrap();
    let add = |n| CaveatsPatch {
        add_uses: Some(n),
        ..Default::default()
    };
    assert_eq!(
        base.patched(&add(5))
            .unwrap()
            .budget()
            .unwrap()
            .remaining_uses,
        15
    );
    assert_eq!(
        base.patched(&add(-50))
            .unwrap()
            .budget()
            .unwrap()
            .remaining_uses,
        0
    );
    assert_eq!(base.patched(&add(i64::MAX)).unwrap_err().field, "add_uses");
    let both = CaveatsPatch {
        remaining_uses: Some(Some(3)),
        add_uses: Some(1),
        ..Default::default()
    };
    assert_eq!(base.patched(&both).unwrap_err().field, "add_uses");
    assert_eq!(
        Caveats::none().patched(&add(1)).unwrap_err().field,
        "add_uses"
    );
    // Removing the budget but not its refill.
    let clear_uses = CaveatsPatch {
        remaining_uses: Some(None),
        ..Default::default()
    };
    assert_eq!(base.patched(&clear_uses).unwrap_err().field, "refill");
    let clear_both = CaveatsPatch {
        remaining_uses: Some(None),
        refill: Some(None),
        ..Default::default()
    };
    assert_eq!(base.patched(&clear_both).unwrap(), Caveats::none());
    // Absent fields are left alone; bad values are named.
    let ips_only = CaveatsPatch {
        allowed_ips: Some(Some(vec!["10.0.0.0/8".into()])),
        ..Default::default()
    };
    let patched = base.patched(&ips_only).unwrap();
    assert_eq!(patched.budget(), base.budget());
    assert!(patched.allowed_ips().unwrap().contains(ip("10.9.9.9")));
    let bad = CaveatsPatch {
        rate_limits: Some(Some(vec![limit("x", 1, 0)])),
        ..Default::default()
    };
    assert_eq!(
        base.patched(&bad).unwrap_err().field,
        "rate_limits[0].window_seconds"
    );
    assert!(!Caveats::none().is_metered());
    assert!(base.is_metered());
    assert_eq!(
        base.with_remaining_uses(4).budget().unwrap().remaining_uses,
        4
    );
    assert_eq!(Caveats::none().with_remaining_uses(4), Caveats::none());
}

// --- attenuation ---------------------------------------------------------------

fn parent() -> Caveats {
    caveats(json!({
        "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
        "rate_limits": [{"name": "default", "limit": 100, "window_seconds": 60}],
        "remaining_uses": 500,
        "refill": {"amount": 1000, "interval": "daily"}
    }))
    .unwrap()
}

#[test]
fn an_omitted_caveat_is_the_parents() {
    let child = Caveats::none().for_child_of(&parent()).unwrap();
    assert_eq!(child, parent());
    let own_ips = caveats(json!({"allowed_ips": ["10.1.0.0/16"]})).unwrap();
    let child = own_ips.for_child_of(&parent()).unwrap();
    assert_eq!(child.allowed_ips(), own_ips.allowed_ips());
    assert_eq!(child.rate_limits(), parent().rate_limits());
    assert_eq!(child.budget(), parent().budget());
    // A child giving remaining_uses alone does not get the parent's refill.
    let own_uses = caveats(json!({"remaining_uses": 5})).unwrap();
    let child = own_uses.for_child_of(&parent()).unwrap();
    assert_eq!(child.budget().unwrap().refill, None);
    // Without caveats on the parent, the child has what it asked for.
    assert_eq!(own_ips.for_child_of(&Caveats::none()).unwrap(), own_ips);
}

#[test]
fn a_child_may_only_narrow_its_parent() {
    let p = parent();
    let ok = caveats(json!({
        "allowed_ips": ["10.2.3.0/24", "2001:db8:1::/48", "10.0.0.0/8"],
        "rate_limits": [
            {"name": "burst", "limit": 5, "window_seconds": 1},
            {"name": "default", "limit": 100, "window_seconds": 60}
        ],
        "remaining_uses": 500,
        "refill": {"amount": 10, "interval": "monthly"}
    }))
    .unwrap();
    assert_eq!(ok.check_within(&p), Ok(()));
    let cases = [
        (
            json!({"allowed_ips": ["10.0.0.0/16", "11.0.0.0/8"]}),
            "allowed_ips[1]",
        ),
        (json!({"allowed_ips": ["0.0.0.0/0"]}), "allowed_ips[0]"),
        (json!({"allowed_ips": ["2001:db8::/31"]}), "allowed_ips[0]"),
        (
            json!({"rate_limits": [{"name": "other", "limit": 1, "window_seconds": 60}]}),
            "rate_limits",
        ),
        (
            json!({"rate_limits": [{"name": "default", "limit": 50, "window_seconds": 30}]}),
            "rate_limits[0].window_seconds",
        ),
        (
            json!({"rate_limits": [{"name": "x", "limit": 1, "window_seconds": 1}, {"name": "default", "limit": 101, "window_seconds": 60}]}),
            "rate_limits[1].limit",
        ),
        (json!({"remaining_uses": 501}), "remaining_uses"),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 1001, "interval": "daily"}}),
            "refill.amount",
        ),
        (
            json!({"remaining_uses": 5, "refill": {"amount": 5, "interval_seconds": 3600}}),
            "refill.interval_seconds",
        ),
    ];
    for (body, field) in cases {
        let child = caveats(body.clone()).unwrap().inherit(&p);
        assert_eq!(child.check_within(&p).unwrap_err().field, field, "{body}");
    }
    // Removing a caveat the parent has (an update to null) is refused.
    for (patch, field) in [
        (
            CaveatsPatch {
                allowed_ips: Some(None),
                ..Default::default()
            },
            "allowed_ips",
        ),
        (
            CaveatsPatch {
                rate_limits: Some(None),
                ..Default::default()
            },
            "rate_limits",
        ),
        (
            CaveatsPatch {
                remaining_uses: Some(None),
                refill: Some(None),
                ..Default::default()
            },
            "remaining_uses",
        ),
    ] {
        let child = p.patched(&patch).unwrap();
        assert_eq!(child.check_within(&p).unwrap_err().field, field);
    }
    // A budget that does not refill cannot hand out a refilling one.
    let no_refill = caveats(json!({"remaining_uses": 10})).unwrap();
    let child =
        caveats(json!({"remaining_uses": 5, "refill": {"amount": 1, "interval": "monthly"}}))
            .unwrap();
    assert_eq!(child.check_within(&no_refill).unwrap_err().field, "refill");
}

#[test]
fn refill_periods_compare_by_their_extreme_lengths() {
    use RefillPeriod::*;
    assert!(Daily.no_more_often_than(Daily));
    assert!(Monthly.no_more_often_than(Daily));
    assert!(!Daily.no_more_often_than(Monthly));
    assert!(Monthly.no_more_often_than(Monthly));
    assert!(Seconds(86_400).no_more_often_than(Daily));
    assert!(Daily.no_more_often_than(Seconds(86_400)));
    assert!(!Seconds(86_399).no_more_often_than(Daily));
    assert!(Seconds(31 * 86_400).no_more_often_than(Monthly));
    assert!(!Seconds(30 * 86_400).no_more_often_than(Monthly));
    assert!(Monthly.no_more_often_than(Seconds(28 * 86_400)));
    assert!(!Monthly.no_more_often_than(Seconds(28 * 86_400 + 1)));
}

// --- refill timing -------------------------------------------------------------

fn refill(spec: RefillSpec) -> Refill {
    Refill::parse("refill", &spec).unwrap()
}

#[test]
fn daily_refills_happen_at_midnight_utc() {
    let r = refill(refill_daily(100));
    let last = t("2030-01-01T10:00:00Z");
    let d = r.due(last, t("2030-01-01T23:59:59.999Z"));
    assert_eq!(d.remaining_uses, None);
    assert_eq!(d.last_refill_at, last);
    assert_eq!(d.next_refill_at, t("2030-01-02T00:00:00Z"));
    let d = r.due(last, t("2030-01-02T00:00:00Z"));
    assert_eq!(d.remaining_uses, Some(100));
    assert_eq!(d.last_refill_at, t("2030-01-02T00:00:00Z"));
    assert_eq!(d.next_refill_at, t("2030-01-03T00:00:00Z"));
    // Days missed are one refill, to the amount (not added up).
    let d = r.due(last, t("2030-01-05T07:00:00Z"));
    assert_eq!(d.remaining_uses, Some(100));
    assert_eq!(d.last_refill_at, t("2030-01-05T00:00:00Z"));
    assert_eq!(d.next_refill_at, t("2030-01-06T00:00:00Z"));
    // A clock behind the last refill refills nothing.
    assert_eq!(r.due(last, t("2029-12-31T00:00:00Z")).remaining_uses, None);
}

#[test]
fn monthly_refills_happen_on_the_first() {
    let r = refill(RefillSpec {
        amount: 9,
        interval: Some(RefillInterval::Monthly),
        interval_seconds: None,
    });
    assert_eq!(
        r.next_after(t("2030-01-31T12:00:00Z")),
        t("2030-02-01T00:00:00Z")
    );
    assert_eq!(
        r.next_after(t("2030-12-01T00:00:00Z")),
        t("2031-01-01T00:00:00Z")
    );
    assert_eq!(
        r.next_after(t("2032-02-29T23:00:00Z")),
        t("2032-03-01T00:00:00Z")
    );
    let d = r.due(t("2030-01-15T00:00:00Z"), t("2030-03-15T08:00:00Z"));
    assert_eq!(d.remaining_uses, Some(9));
    assert_eq!(d.last_refill_at, t("2030-03-01T00:00:00Z"));
    assert_eq!(d.next_refill_at, t("2030-04-01T00:00:00Z"));
}

#[test]
fn interval_refills_keep_their_phase() {
    let r = refill(refill_every(50, 3600));
    let last = t("2030-01-01T10:00:00Z");
    assert_eq!(
        r.due(last, t("2030-01-01T10:59:59.999Z")).remaining_uses,
        None
    );
    let d = r.due(last, t("2030-01-01T12:30:00Z"));
    assert_eq!(d.remaining_uses, Some(50));
    assert_eq!(d.last_refill_at, t("2030-01-01T12:00:00Z"));
    assert_eq!(d.next_refill_at, t("2030-01-01T13:00:00Z"));
}

#[test]
fn budgets_admit_spend_and_refill() {
    let b = Budget {
        remaining_uses: 3,
        refill: Some(refill(refill_daily(10))),
    };
    assert!(b.admits(Cost::ONE));
    assert!(b.admits(Cost::parse("cost", 3).unwrap()));
    assert!(!b.admits(Cost::parse("cost", 4).unwrap()));
    assert_eq!(b.spend(Cost::parse("cost", 3).unwrap()), 0);
    assert_eq!(b.spend(Cost::ZERO), 3);
    let empty = Budget {
        remaining_uses: 0,
        refill: None,
    };
    // An exhausted budget refuses even a check of cost 0.
    assert!(!empty.admits(Cost::ZERO));
    let (after, due) = b.refilled(t("2030-01-01T10:00:00Z"), t("2030-01-02T01:00:00Z"));
    assert_eq!(after.remaining_uses, 10);
    assert_eq!(due.unwrap().last_refill_at, t("2030-01-02T00:00:00Z"));
    let (same, due) = empty.refilled(t("2030-01-01T10:00:00Z"), t("2031-01-01T00:00:00Z"));
    assert_eq!((same, due), (empty, None));
}

// --- codes and caching -------------------------------------------------------

#[test]
fn refusals_are_decided_in_the_spec_order() {
    let codes: Vec<&str> = Refusal::ORDER.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        [
            "MALFORMED",
            "NOT_FOUND",
            "REVOKED",
            "EXPIRED",
            "IP_NOT_ALLOWED",
            "INSUFFICIENT_SCOPE",
            "RATE_LIMITED",
            "USAGE_EXCEEDED"
        ]
    );
    let mut sorted = Refusal::ORDER;
    sorted.sort();
    assert_eq!(sorted, Refusal::ORDER);
    for r in Refusal::ORDER {
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        assert_eq!(r.to_string(), r.as_str());
    }
    assert_eq!(
        Refusal::first([
            Refusal::UsageExceeded,
            Refusal::Expired,
            Refusal::IpNotAllowed
        ]),
        Some(Refusal::Expired)
    );
    assert_eq!(
        Refusal::first([Refusal::RateLimited, Refusal::UsageExceeded]),
        Some(Refusal::RateLimited)
    );
    assert_eq!(Refusal::first([]), None);
}

#[test]
fn answers_are_cached_until_the_earliest_end() {
    let now = t("2030-01-01T00:00:00Z");
    let horizon = now + Duration::seconds(CACHE_HORIZON_SECONDS);
    assert_eq!(cache_until(now, None, None, false), Some(horizon));
    let soon = now + Duration::seconds(30);
    let later = now + Duration::seconds(90);
    assert_eq!(cache_until(now, Some(later), Some(soon), false), Some(soon));
    assert_eq!(cache_until(now, Some(soon), Some(later), false), Some(soon));
    assert_eq!(cache_until(now, None, Some(later), false), Some(later));
    let far = now + Duration::days(30);
    assert_eq!(cache_until(now, Some(far), None, false), Some(horizon));
    // Metered tokens' answers are never reused.
    assert_eq!(cache_until(now, Some(soon), None, true), None);
}

// --- rate limiter ----------------------------------------------------------------

fn cost(n: u32) -> Cost {
    Cost::parse("cost", i64::from(n)).unwrap()
}

#[test]
fn a_window_admits_its_limit_and_says_when_to_retry() {
    let start = t("2030-01-01T00:00:00Z");
    let mut c = WindowCounter::default();
    for i in 0..3 {
        let d = c.check(3, 10, start, Cost::ONE);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2 - i);
        assert_eq!(d.reset_at, start + Duration::seconds(20));
        c.spend(10, start, Cost::ONE);
    }
    let d = c.check(3, 10, start + Duration::seconds(1), Cost::ONE);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    // The 3 units carried into the next window shrink by one every 3⅓ s:
    // one unit fits once ceil(3 × (10 − x)/10) ≤ 2, at x = 10/3 s.
    assert_eq!(d.retry_at, Some(start + Duration::milliseconds(13_334)));
    assert_eq!(d.retry_after_seconds, Some(13));
    assert!(
        !c.check(3, 10, start + Duration::milliseconds(13_333), Cost::ONE)
            .allowed
    );
    assert!(
        c.check(3, 10, start + Duration::milliseconds(13_334), Cost::ONE)
            .allowed
    );
    // A check of cost 0 is refused like one of cost 1, and spends nothing.
    assert!(!c.check(3, 10, start, Cost::ZERO).allowed);
    let mut fresh = WindowCounter::default();
    assert!(fresh.check(3, 10, start, Cost::ZERO).allowed);
    fresh.spend(10, start, Cost::ZERO);
    assert_eq!(fresh.check(3, 10, start, Cost::ONE).remaining, 2);
    // A cost over the limit is never admitted; the answer says when all is clear.
    let d = fresh.check(3, 10, start, cost(4));
    assert!(!d.allowed);
    assert_eq!(
        d.retry_at,
        Some(d.reset_at.max(start + Duration::milliseconds(1)))
    );
}

#[test]
fn the_previous_window_weighs_less_as_time_passes() {
    let start = t("2030-01-01T00:00:00Z");
    let mut c = WindowCounter::default();
    c.spend(60, start, cost(100));
    // Half-way through the next window half of the previous one counts.
    let d = c.check(100, 60, start + Duration::seconds(90), Cost::ONE);
    assert!(d.allowed);
    assert_eq!(d.remaining, 49);
    assert_eq!(d.reset_at, start + Duration::seconds(180));
    let d = c.check(100, 60, start + Duration::seconds(90), cost(51));
    assert!(!d.allowed);
    assert_eq!(d.remaining, 50);
    assert_eq!(d.retry_at, Some(start + Duration::milliseconds(90_600)));
    assert_eq!(d.retry_after_seconds, Some(1));
    // Two windows later nothing is left and the counter is idle.
    assert!(c.is_idle(60, start + Duration::seconds(120)));
    assert!(!c.is_idle(60, start + Duration::seconds(119)));
}

#[test]
fn a_day_long_window_starts_at_midnight_utc() {
    let mut c = WindowCounter::default();
    let evening = t("2030-01-01T23:00:00Z");
    c.spend(86_400, evening, cost(10));
    let d = c.check(10, 86_400, evening, Cost::ONE);
    assert!(!d.allowed);
    assert_eq!(d.reset_at, t("2030-01-03T00:00:00Z"));
    // Right after midnight almost all of yesterday still weighs.
    assert!(
        !c.check(10, 86_400, t("2030-01-02T00:00:01Z"), Cost::ONE)
            .allowed
    );
}

#[test]
fn units_admitted_elsewhere_are_counted() {
    let now = t("2030-01-01T00:00:00Z");
    let mut c = WindowCounter::default();
    c.record(10, now, 8);
    assert_eq!(c.check(10, 10, now, Cost::ONE).remaining, 1);
    assert!(!c.check(10, 10, now, cost(3)).allowed);
}

#[test]
fn a_clock_going_back_does_not_reset_the_count() {
    let now = t("2030-01-01T00:00:30Z");
    let mut c = WindowCounter::default();
    c.spend(10, now, cost(5));
    let earlier = now - Duration::seconds(25);
    let d = c.check(5, 10, earlier, Cost::ONE);
    assert!(!d.allowed);
    assert!(d.retry_at.unwrap() > earlier);
}

#[test]
fn the_limiter_keeps_counts_per_key_and_limit() {
    let now = t("2030-01-01T00:00:00Z");
    let mut rl: RateLimiter<&str> = RateLimiter::new();
    let two = limits(&[("default", 2, 60), ("burst", 5, 1)]);
    assert!(rl.check(&"a", &two, now, Cost::ONE).allowed());
    rl.spend(&"a", &two, now, Cost::ONE);
    rl.spend(&"a", &two, now, Cost::ONE);
    let check = rl.check(&"a", &two, now, Cost::ONE);
    assert!(!check.allowed());
    assert!(!check.limits[0].decision.allowed);
    assert!(check.limits[1].decision.allowed);
    assert_eq!(
        check.retry_after_seconds(),
        check.limits[0].decision.retry_after_seconds
    );
    let tightest = check.most_restrictive().unwrap();
    assert_eq!(tightest.name.as_str(), "default");
    assert_eq!(tightest.decision.remaining, 0);
    let statuses = check.statuses();
    assert_eq!(statuses[0].name.as_str(), "default");
    assert_eq!((statuses[0].limit, statuses[0].remaining), (2, 0));
    assert_eq!((statuses[1].limit, statuses[1].remaining), (5, 2));
    assert_eq!(
        serde_json::to_value(&statuses[0]).unwrap(),
        json!({"name": "default", "limit": 2, "remaining": 0, "reset_at": "2030-01-01T00:02:00Z"})
    );
    // Another key is untouched.
    assert!(rl.check(&"b", &two, now, Cost::ONE).allowed());
    // A higher limit of the same name and window keeps the count...
    let raised = limits(&[("default", 3, 60)]);
    assert_eq!(
        rl.check(&"a", &raised, now, Cost::ONE).limits[0]
            .decision
            .remaining,
        0
    );
    // ...a renamed one starts afresh.
    let renamed = limits(&[("other", 2, 60)]);
    assert!(rl.check(&"a", &renamed, now, Cost::ONE).allowed());
    // A parent's limits and a child's together.
    let both = rl.check(&"b", &two, now, Cost::ONE).and(check);
    assert!(!both.allowed());
    assert_eq!(both.limits.len(), 4);
    // Idle keys are evicted once both windows are over.
    assert_eq!(rl.len(), 1);
    assert_eq!(rl.evict_idle(now + Duration::seconds(119)), 0);
    assert_eq!(rl.evict_idle(now + Duration::seconds(120)), 1);
    assert!(rl.is_empty());
    rl.spend(&"c", &two, now, Cost::ONE);
    rl.remove(&"c");
    assert!(rl.is_empty());
}

// --- properties ------------------------------------------------------------------

fn arb_v4_net() -> impl Strategy<Value = String> {
    (any::<u32>(), 0u8..=32).prop_map(|(bits, p)| {
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        format!("{}/{p}", std::net::Ipv4Addr::from(bits & mask))
    })
}

proptest! {
    #[test]
    fn cidr_parsing_is_total(s in "\\PC{0,50}") {
        let _ = Cidr::parse(&s);
    }

    #[test]
    fn near_miss_cidrs_never_panic(s in "[0-9a-f:.]{0,40}(/[0-9+ -]{0,4})?") {
        if let Ok(c) = Cidr::parse(&s) {
            prop_assert_eq!(Cidr::parse(&c.to_string()), Ok(c));
        }
    }

    /// A network contains exactly the addresses sharing its leading bits.
    #[test]
    fn v4_networks_contain_what_a_mask_says(net in arb_v4_net(), addr in any::<u32>()) {
        let cidr = Cidr::parse(&net).unwrap();
        prop_assert_eq!(Cidr::parse(&cidr.to_string()), Ok(cidr));
        let p = cidr.network().prefix_len();
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        let IpAddr::V4(base) = cidr.network().network() else { unreachable!() };
        let inside = addr & mask == u32::from(base);
        let v4 = std::net::Ipv4Addr::from(addr);
        prop_assert_eq!(cidr.contains(IpAddr::V4(v4)), inside);
        prop_assert_eq!(cidr.contains(IpAddr::V6(v4.to_ipv6_mapped())), inside);
    }

    #[test]
    fn v6_networks_round_trip(bits in any::<u128>(), p in 0u8..=128) {
        let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
        let addr = std::net::Ipv6Addr::from(bits & mask);
        let c = Cidr::parse(&format!("{addr}/{p}")).unwrap();
        prop_assert_eq!(Cidr::parse(&c.to_string()), Ok(c));
        prop_assert!(c.contains(IpAddr::V6(addr)) || addr.to_ipv4_mapped().is_some());
        if bits & !mask != 0 {
            let with_host_bits = format!("{}/{p}", std::net::Ipv6Addr::from(bits));
            let refused = matches!(Cidr::parse(&with_host_bits), Err(CidrError::HostBitsSet { .. }));
            prop_assert!(refused);
        }
    }

    /// Whatever a child is allowed, its parent allows too.
    #[test]
    fn accepted_child_networks_lie_within_the_parent(
        parent in prop::collection::vec(arb_v4_net(), 1..4),
        child in prop::collection::vec(arb_v4_net(), 1..4),
        probes in prop::collection::vec(any::<u32>(), 16),
    ) {
        let p = Caveats::parse(&CaveatsSpec { allowed_ips: Some(parent), ..Default::default() }).unwrap();
        let c = Caveats::parse(&CaveatsSpec { allowed_ips: Some(child), ..Default::default() }).unwrap();
        if c.check_within(&p).is_ok() {
            let (pn, cn) = (p.allowed_ips().unwrap(), c.allowed_ips().unwrap());
            for probe in probes {
                let a = IpAddr::V4(probe.into());
                prop_assert!(!cn.contains(a) || pn.contains(a));
            }
            for net in cn.networks() {
                let first = net.network().network();
                prop_assert!(pn.contains(first));
                let IpAddr::V4(b) = net.network().broadcast() else { unreachable!() };
                prop_assert!(pn.contains(IpAddr::V4(b)));
            }
        }
    }

    /// On one node: never more than `limit` units admitted in an aligned
    /// window, never `2 × limit` in any span of one window; a refusal's
    /// `retry_at` is exactly the first moment the request fits; `remaining`
    /// is what the next request may spend.
    #[test]
    fn the_sliding_window_counter_keeps_its_promises(
        limit in 1u64..20,
        window_seconds in 1u32..5,
        steps in prop::collection::vec((0i64..1500, 0u32..6), 1..120),
    ) {
        let start = t("2030-01-01T00:00:00Z").timestamp_millis();
        let w = i64::from(window_seconds) * 1000;
        let mut c = WindowCounter::default();
        let mut now_ms = start;
        let mut admitted: Vec<(i64, u64)> = Vec::new();
        for (dt, units) in steps {
            now_ms += dt;
            let now = DateTime::from_timestamp_millis(now_ms).unwrap();
            let cost = cost(units);
            let d = c.check(limit, window_seconds, now, cost);
            prop_assert_eq!(d.allowed, d.retry_at.is_none());
            prop_assert!(d.reset_at >= now);
            if d.allowed {
                c.spend(window_seconds, now, cost);
                admitted.push((now_ms, cost.get()));
                // What is reported remaining is what the next request may take.
                for n in 1..=limit + 1 {
                    let next = c.check(limit, window_seconds, now, Cost::parse("cost", n as i64).unwrap());
                    prop_assert_eq!(next.allowed, n <= d.remaining, "n={} remaining={}", n, d.remaining);
                }
            } else if cost.needed() <= limit {
                let retry = d.retry_at.unwrap();
                prop_assert!(retry > now);
                prop_assert_eq!(d.retry_after_seconds, Some(((retry - now).num_milliseconds() as u64).div_ceil(1000)));
                prop_assert!(c.check(limit, window_seconds, retry, cost).allowed);
                let just_before = retry - Duration::milliseconds(1);
                prop_assert!(!c.check(limit, window_seconds, just_before, cost).allowed);
            }
        }
        let mut per_window: HashMap<i64, u64> = HashMap::new();
        for &(at, units) in &admitted {
            *per_window.entry(at.div_euclid(w)).or_default() += units;
        }
        for (&window, &units) in &per_window {
            prop_assert!(units <= limit, "window {} admitted {} > {}", window, units, limit);
        }
        for &(from, _) in &admitted {
            let span: u64 = admitted.iter().filter(|&&(at, _)| at >= from && at < from + w).map(|&(_, u)| u).sum();
            prop_assert!(span < 2 * limit.max(1) + 1, "{} in one window's span", span);
        }
    }

    /// Refills land on boundaries, never in the future, and applying one
    /// twice changes nothing.
    #[test]
    fn refills_are_due_once_per_boundary(
        kind in 0u8..3,
        secs in 60u32..200_000,
        last_s in 0i64..400_000_000,
        gap_s in 0i64..100_000_000,
    ) {
        let spec = match kind {
            0 => refill_daily(5),
            1 => RefillSpec { amount: 5, interval: Some(RefillInterval::Monthly), interval_seconds: None },
            _ => refill_every(5, i64::from(secs)),
        };
        let r = refill(spec);
        let base = t("2030-01-01T00:00:00Z");
        let last = base + Duration::seconds(last_s);
        let now = last + Duration::seconds(gap_s);
        let d = r.due(last, now);
        prop_assert!(d.next_refill_at > now);
        prop_assert!(d.last_refill_at <= now);
        prop_assert_eq!(d.next_refill_at, r.next_after(d.last_refill_at));
        prop_assert_eq!(d.remaining_uses.is_some(), now >= r.next_after(last));
        if d.remaining_uses.is_some() {
            prop_assert!(d.last_refill_at > last);
            let again = r.due(d.last_refill_at, now);
            prop_assert_eq!(again.remaining_uses, None);
            prop_assert_eq!(again.last_refill_at, d.last_refill_at);
            match r.period() {
                RefillPeriod::Daily => prop_assert_eq!(d.last_refill_at, start_of_day(d.last_refill_at)),
                RefillPeriod::Monthly => {
                    prop_assert_eq!(d.last_refill_at.day(), 1);
                    prop_assert_eq!(d.last_refill_at, start_of_day(d.last_refill_at));
                }
                RefillPeriod::Seconds(n) => {
                    prop_assert_eq!((d.last_refill_at - last).num_seconds() % i64::from(n), 0);
                }
            }
        } else {
            prop_assert_eq!(d.last_refill_at, last);
        }
    }

    #[test]
    fn costs_are_accepted_exactly_in_range(raw in any::<i64>()) {
        prop_assert_eq!(Cost::parse("cost", raw).is_ok(), (0..=1_000_000).contains(&raw));
    }
}

#[test]
fn the_openapi_schemas_name_every_type_they_refer_to() {
    crate::assert_schema_complete::<Caveats>();
    crate::assert_schema_complete::<CaveatsSpec>();
    crate::assert_schema_complete::<RateLimitStatus>();
    crate::assert_schema_complete::<RateLimits>();
    crate::assert_schema_complete::<Refill>();
    crate::assert_schema_complete::<Refusal>();
}
