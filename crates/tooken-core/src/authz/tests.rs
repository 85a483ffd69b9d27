use super::*;
use proptest::prelude::*;
use serde_json::json;

fn rules(v: serde_json::Value) -> Result<RuleSet, ValidationError> {
    let spec: RulesSpec = serde_json::from_value(json!({ "rules": v })).unwrap();
    RuleSet::parse(&spec.rules)
}

fn field_of(v: serde_json::Value) -> String {
    rules(json!([v])).unwrap_err().field
}

fn pattern(s: &str) -> PathPattern {
    PathPattern::parse("path", s).unwrap()
}

fn path(s: &str) -> RequestPath {
    RequestPath::parse(s).unwrap()
}

fn segs(p: &RequestPath) -> Vec<&str> {
    p.segments().iter().map(String::as_str).collect()
}

// --- methods -------------------------------------------------------------------

#[test]
fn methods_are_a_list_in_any_case_or_a_star() {
    assert_eq!(Method::parse("get"), Some(Method::Get));
    assert_eq!(Method::parse("PaTcH"), Some(Method::Patch));
    assert_eq!(Method::parse("PROPFIND"), None);
    assert_eq!(Method::parse(""), None);
    for m in Method::ALL {
        assert_eq!(Method::parse(m.as_str()), Some(m));
        assert_eq!(Method::parse(&m.as_str().to_lowercase()), Some(m));
    }
    let r = rules(json!([{"methods": ["get", "Post", "GET"], "path": "/a"}])).unwrap();
    assert_eq!(
        r.rules()[0].methods(),
        &Methods::Only(vec![Method::Get, Method::Post])
    );
    let any = rules(json!([{"methods": "*", "path": "/a"}])).unwrap();
    assert_eq!(any.rules()[0].methods(), &Methods::Any);
    // A method outside the known set is matched by "*" only.
    assert!(any.rules()[0].matches(None, &path("/a")));
    assert!(!r.rules()[0].matches(None, &path("/a")));
    assert!(r.rules()[0].matches(Method::parse("post"), &path("/a")));
    assert!(!r.rules()[0].matches(Some(Method::Head), &path("/a")));
}

#[test]
fn each_bad_method_list_is_named() {
    for (methods, field) in [
        (json!("GET"), "rules[0].methods"),
        (json!("all"), "rules[0].methods"),
        (json!([]), "rules[0].methods"),
        (json!(["GET", "FETCH"]), "rules[0].methods[1]"),
        (json!(["*"]), "rules[0].methods[0]"),
        (json!(["get "]), "rules[0].methods[0]"),
        (json!(vec!["GET"; 17]), "rules[0].methods"),
    ] {
        assert_eq!(
            field_of(json!({"methods": methods, "path": "/a"})),
            field,
            "{methods}"
        );
    }
    // Not a string or a list: the decoder names the field.
    let e =
        crate::api::parse_json_object::<RulesSpec>(br#"{"rules": [{"methods": 3, "path": "/a"}]}"#)
            .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("rules[0].methods"));
}

// --- path patterns ---------------------------------------------------------------

#[test]
fn patterns_are_segments_literal_or_wild() {
    for ok in [
        "/",
        "/invoices",
        "/invoices/**",
        "/invoices/*/lines",
        "/**",
        "/a/**/b/**",
        "/ünï/côdé",
        "/v1/users/@me",
        "/a;b=c/d:e",
        "/files/a b",
    ] {
        assert_eq!(pattern(ok).as_str(), ok);
    }
    let bad = [
        "",
        "invoices",
        "/invoices/",
        "//",
        "/a//b",
        "/a/./b",
        "/a/..",
        "/inv*",
        "/a/***",
        "/a/*b",
        "/a\tb",
        "/a\nb",
        "/a?x=1",
        "/a#x",
        "/a%2Fb",
        "/a%20b",
        "/a\\b",
    ];
    for b in bad {
        assert!(PathPattern::parse("rules[0].path", b).is_err(), "{b:?}");
        assert_eq!(
            field_of(json!({"methods": "*", "path": b})),
            "rules[0].path"
        );
    }
    let long = format!("/{}", "a".repeat(MAX_PATTERN_BYTES));
    assert!(PathPattern::parse("path", &long).is_err());
    assert!(PathPattern::parse("path", &long[..MAX_PATTERN_BYTES]).is_ok());
    let deep = "/a".repeat(MAX_PATTERN_SEGMENTS + 1);
    assert!(PathPattern::parse("path", &deep).is_err());
    assert!(PathPattern::parse("path", &deep[2..]).is_ok());
}

#[test]
fn patterns_match_as_documented() {
    let cases: &[(&str, &str, bool)] = &[
        ("/invoices/**", "/invoices", true),
        ("/invoices/**", "/invoices/", true),
        ("/invoices/**", "/invoices/42", true),
        ("/invoices/**", "/invoices/42/lines", true),
        ("/invoices/**", "/invoicesX", false),
        ("/invoices/**", "/invoice", false),
        ("/invoices/**", "/Invoices/42", false),
        ("/invoices/**", "/", false),
        ("/invoices/*", "/invoices", false),
        ("/invoices/*", "/invoices/42", true),
        ("/invoices/*", "/invoices/42/lines", false),
        ("/invoices/*/lines", "/invoices/42/lines", true),
        ("/invoices/*/lines", "/invoices/lines", false),
        ("/**", "/", true),
        ("/**", "/a/b/c", true),
        ("/", "/", true),
        ("/", "/a", false),
        ("/a/**/b", "/a/b", true),
        ("/a/**/b", "/a/x/y/b", true),
        ("/a/**/b", "/a/x/y/c", false),
        ("/a/**/b/**", "/a/b/b/b", true),
        ("/**/edit", "/a/b/edit", true),
        ("/**/edit", "/a/b/edit/x", false),
        ("/*/**", "/", false),
        ("/*/**", "/a", true),
        ("/admin", "/adm%69n", true),
        ("/files/a b", "/files/a%20b", true),
        ("/ünï", "/%C3%BCn%C3%AF", true),
        ("/ünï", "/ünï", true),
    ];
    for &(p, r, expected) in cases {
        assert_eq!(pattern(p).matches(&path(r)), expected, "{p} vs {r}");
    }
}

// --- request paths -------------------------------------------------------------

#[test]
fn request_paths_are_decoded_once_without_query_or_trailing_slash() {
    assert_eq!(segs(&path("/")), Vec::<&str>::new());
    assert_eq!(segs(&path("/?x=1")), Vec::<&str>::new());
    assert_eq!(segs(&path("/a/b?x=../..//%2F")), ["a", "b"]);
    assert_eq!(segs(&path("/a/b#frag/..")), ["a", "b"]);
    assert_eq!(segs(&path("/a/b/")), ["a", "b"]);
    assert_eq!(segs(&path("/adm%69n")), ["admin"]);
    assert_eq!(segs(&path("/a%2eb")), ["a.b"]);
    assert_eq!(segs(&path("/a%25b")), ["a%b"]);
    // Decoded once: %252F is the text "%2F", not a slash.
    assert_eq!(segs(&path("/a%252Fb")), ["a%2Fb"]);
    assert_eq!(segs(&path("/a+b;c=d:e@f")), ["a+b;c=d:e@f"]);
    assert_eq!(segs(&path("/files/a%20b")), ["files", "a b"]);
    assert_eq!(path("/a/b/").to_string(), "/a/b");
    assert_eq!(path("/").to_string(), "/");
}

#[test]
fn ambiguous_request_paths_are_refused() {
    use PathRefusal::*;
    for (uri, why) in [
        ("", NotAbsolute),
        ("?x=1", NotAbsolute),
        ("a/b", NotAbsolute),
        ("http://example.com/a", NotAbsolute),
        ("*", NotAbsolute),
        ("/a/../b", DotSegment),
        ("/..", DotSegment),
        ("/a/./b", DotSegment),
        ("/a/%2e%2E/b", DotSegment),
        ("/a/.%2e", DotSegment),
        ("/%2e", DotSegment),
        ("//a", EmptySegment),
        ("/a//b", EmptySegment),
        ("/a//", EmptySegment),
        ("/a%2Fb", EncodedSlash),
        ("/a%2fb", EncodedSlash),
        ("/a%5Cb", EncodedBackslash),
        ("/a%5cb", EncodedBackslash),
        ("/a\\b", BadCharacter),
        ("/a b", BadCharacter),
        ("/a\tb", BadCharacter),
        ("/a%00", BadCharacter),
        ("/a%0A", BadCharacter),
        ("/a%7f", BadCharacter),
        ("/a%zz", BadEncoding),
        ("/a%2", BadEncoding),
        ("/a%", BadEncoding),
        ("/a%+1", BadEncoding),
        ("/a%FF", BadEncoding),
        ("/a%C3", BadEncoding),
    ] {
        assert_eq!(RequestPath::parse(uri), Err(why), "{uri:?}");
    }
    let long = format!("/{}", "a".repeat(MAX_REQUEST_PATH_BYTES));
    assert_eq!(RequestPath::parse(&long), Err(PathRefusal::TooLong));
    assert!(RequestPath::parse(&long[..MAX_REQUEST_PATH_BYTES]).is_ok());
    let deep = "/a".repeat(MAX_REQUEST_SEGMENTS + 1);
    assert_eq!(RequestPath::parse(&deep), Err(PathRefusal::TooLong));
    assert!(RequestPath::parse(&deep[2..]).is_ok());
}

// --- rules -----------------------------------------------------------------------

#[test]
fn the_first_matching_rule_decides() {
    let set = rules(json!([
        {"methods": ["GET"], "path": "/invoices/**", "scopes": ["invoices:read"]},
        {"methods": ["POST", "PUT"], "path": "/invoices/**", "scopes": ["invoices:write"], "cost": 5},
        {"methods": "*", "path": "/health", "anonymous": true},
        {"methods": "*", "path": "/**", "scopes": ["admin"]}
    ]))
    .unwrap();
    let find = |m: &str, p: &str| set.find(Method::parse(m), &path(p)).map(|(i, _)| i);
    assert_eq!(find("GET", "/invoices/42"), Some(0));
    assert_eq!(find("get", "/invoices"), Some(0));
    assert_eq!(find("POST", "/invoices"), Some(1));
    assert_eq!(find("DELETE", "/invoices/1"), Some(3));
    assert_eq!(find("GET", "/health?full=1"), Some(2));
    assert_eq!(find("PROPFIND", "/health"), Some(2));
    assert_eq!(find("GET", "/other"), Some(3));
    let (_, rule) = set.find(Some(Method::Post), &path("/invoices")).unwrap();
    assert_eq!(rule.cost().get(), 5);
    assert_eq!(rule.scopes()[0].as_str(), "invoices:write");
    let (_, public) = set.find(Some(Method::Get), &path("/health")).unwrap();
    assert!(public.is_anonymous());
    assert_eq!(public.cost(), Cost::ONE);
    // No match: refused.
    let narrow = rules(json!([{"methods": ["GET"], "path": "/a"}])).unwrap();
    assert_eq!(narrow.find(Some(Method::Get), &path("/b")), None);
    assert_eq!(narrow.find(Some(Method::Post), &path("/a")), None);
    assert_eq!(RuleSet::default().find(Some(Method::Get), &path("/")), None);
}

#[test]
fn each_bad_rule_is_named() {
    for (rule, field) in [
        (
            json!({"methods": "*", "path": "/a", "scopes": ["ok", "Bad"]}),
            "rules[0].scopes[1]",
        ),
        (
            json!({"methods": "*", "path": "/a", "anonymous": true, "scopes": ["a"]}),
            "rules[0].scopes",
        ),
        (
            json!({"methods": "*", "path": "/a", "anonymous": true, "cost": 0}),
            "rules[0].cost",
        ),
        (
            json!({"methods": "*", "path": "/a", "cost": -1}),
            "rules[0].cost",
        ),
        (
            json!({"methods": "*", "path": "/a", "cost": 1_000_001}),
            "rules[0].cost",
        ),
    ] {
        assert_eq!(field_of(rule.clone()), field, "{rule}");
    }
    let scopes: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
    assert_eq!(
        field_of(json!({"methods": "*", "path": "/a", "scopes": scopes})),
        "rules[0].scopes"
    );
    // The index is the rule's.
    let e = rules(json!([
        {"methods": "*", "path": "/a"},
        {"methods": "*", "path": "/b"},
        {"methods": ["GET"], "path": "b"}
    ]))
    .unwrap_err();
    assert_eq!(e.field, "rules[2].path");
    // Decoding errors name the field too.
    for (body, field) in [
        (
            r#"{"rules": [{"methods": "*", "path": "/a", "scope": ["x"]}]}"#,
            "rules[0].scope",
        ),
        (r#"{"rules": [{"methods": "*"}]}"#, "rules[0].path"),
        (
            r#"{"rules": [{"methods": "*", "path": "/a", "cost": "1"}]}"#,
            "rules[0].cost",
        ),
        (r#"{"rule": []}"#, "rule"),
    ] {
        let e = crate::api::parse_json_object::<RulesSpec>(body.as_bytes()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{body}");
    }
}

#[test]
fn rules_are_bounded() {
    let one = json!({"methods": ["GET"], "path": "/a"});
    let max: Vec<_> = vec![one.clone(); MAX_RULES];
    assert_eq!(rules(json!(max)).unwrap().rules().len(), MAX_RULES);
    let over: Vec<_> = vec![one; 10_000];
    assert_eq!(rules(json!(over)).unwrap_err().field, "rules");
}

#[test]
fn rules_are_shown_as_they_are_written() {
    let written = json!([
        {"methods": ["GET"], "path": "/invoices/**", "scopes": ["invoices:read"]},
        {"methods": "*", "path": "/health", "scopes": [], "anonymous": true},
        {"methods": ["POST"], "path": "/a/*", "scopes": [], "cost": 0}
    ]);
    let set = rules(written.clone()).unwrap();
    assert_eq!(serde_json::to_value(&set).unwrap(), written);
    // Methods come back in capitals.
    let lower =
        rules(json!([{"methods": ["delete"], "path": "/x", "anonymous": false, "cost": 1}]))
            .unwrap();
    assert_eq!(
        serde_json::to_value(&lower).unwrap(),
        json!([{"methods": ["DELETE"], "path": "/x", "scopes": []}])
    );
    // The store's copy reads back the same.
    let back: RuleSet = serde_json::from_value(written).unwrap();
    assert_eq!(back, set);
    let answer = serde_json::to_value(set.answer()).unwrap();
    assert_eq!(answer["warnings"], json!([]));
    assert_eq!(answer["rules"][0]["path"], "/invoices/**");
}

// --- warnings --------------------------------------------------------------------

fn warned(v: serde_json::Value) -> Vec<(String, Vec<usize>)> {
    rules(v)
        .unwrap()
        .warnings()
        .into_iter()
        .map(|w| (w.field, w.shadowed_by))
        .collect()
}

#[test]
fn rules_after_a_catch_all_are_warned() {
    let w = rules(json!([
        {"methods": "*", "path": "/**"},
        {"methods": ["GET"], "path": "/invoices"},
        {"methods": "*", "path": "/"}
    ]))
    .unwrap()
    .warnings();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].field, "rules[1]");
    assert_eq!(w[0].shadowed_by, [0]);
    assert_eq!(
        w[0].message,
        "rules[1] can never match: rules[0] matches every request it would"
    );
    assert_eq!(w[1].field, "rules[2]");
}

#[test]
fn shadowing_is_warned_only_when_certain() {
    // Narrower after wider, same method: warned.
    assert_eq!(
        warned(json!([
            {"methods": ["GET"], "path": "/invoices/**"},
            {"methods": ["get"], "path": "/invoices/*/lines"}
        ])),
        [("rules[1]".to_string(), vec![0])]
    );
    // Exact duplicates: warned.
    assert_eq!(
        warned(json!([
            {"methods": ["GET"], "path": "/a/*"},
            {"methods": ["GET"], "path": "/a/*"}
        ])),
        [("rules[1]".to_string(), vec![0])]
    );
    // Several earlier rules together.
    assert_eq!(
        warned(json!([
            {"methods": ["GET"], "path": "/a/**"},
            {"methods": ["POST"], "path": "/**"},
            {"methods": ["GET", "POST"], "path": "/a/b"}
        ])),
        [("rules[2]".to_string(), vec![0, 1])]
    );
    // Nothing certain: not warned.
    for set in [
        // Wider after narrower.
        json!([{"methods": ["GET"], "path": "/a/*"}, {"methods": ["GET"], "path": "/a/**"}]),
        // Another method.
        json!([{"methods": ["GET"], "path": "/**"}, {"methods": ["POST"], "path": "/a"}]),
        // Only some of its methods caught.
        json!([{"methods": ["GET"], "path": "/**"}, {"methods": ["GET", "HEAD"], "path": "/a"}]),
        // "*" is more than any list: unknown methods still reach it.
        json!([{"methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"], "path": "/**"}, {"methods": "*", "path": "/a"}]),
        // `*` needs a segment, `**` does not.
        json!([{"methods": "*", "path": "/a/*"}, {"methods": "*", "path": "/a/**"}]),
        // Case matters in paths.
        json!([{"methods": "*", "path": "/A/**"}, {"methods": "*", "path": "/a"}]),
        // Unreachable in fact, but not provable symbol by symbol: left alone.
        json!([{"methods": "*", "path": "/*/**"}, {"methods": "*", "path": "/**/a"}]),
    ] {
        assert_eq!(warned(set.clone()), vec![], "{set}");
    }
}

#[test]
fn warnings_for_the_largest_rule_set_are_computed() {
    // Every rule a double wildcard over a long literal tail: the most
    // work per pair the coverage check can be given.
    let deep: String = (0..MAX_PATTERN_SEGMENTS - 3)
        .map(|i| format!("/s{i}"))
        .collect();
    let set: Vec<_> = (0..MAX_RULES)
        .map(|i| json!({"methods": "*", "path": format!("/**{deep}/x{i}/**")}))
        .collect();
    assert_eq!(rules(json!(set)).unwrap().warnings(), vec![]);
}

// --- headers ---------------------------------------------------------------------

#[test]
fn metadata_travels_as_base64url_of_compact_json() {
    use base64::Engine;
    let meta = json!({"plan": "pro", "team": "ä/ö?"});
    let Value::Object(map) = meta.clone() else {
        unreachable!()
    };
    let MetadataHeader::Value(v) = metadata_header(&map) else {
        panic!("small metadata is sent")
    };
    assert!(!v.contains(['=', '+', '/']));
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&v)
        .unwrap();
    assert_eq!(decoded, serde_json::to_vec(&meta).unwrap());
    assert!(!String::from_utf8(decoded).unwrap().contains(' '));
    // 1536 bytes of JSON encode to exactly 2048 characters; one more is too many.
    let sized = |json_len: usize| {
        let mut m = Map::new();
        m.insert("k".into(), Value::String("x".repeat(json_len - 8)));
        assert_eq!(serde_json::to_vec(&m).unwrap().len(), json_len);
        metadata_header(&m)
    };
    match sized(1536) {
        MetadataHeader::Value(v) => assert_eq!(v.len(), METADATA_HEADER_MAX_BYTES),
        other => panic!("{other:?}"),
    }
    assert_eq!(sized(1537), MetadataHeader::TooLarge);
    assert_eq!(sized(4096), MetadataHeader::TooLarge);
}

#[test]
fn scopes_travel_space_separated() {
    let scopes = crate::scope::parse_scopes("s", &["a:b".into(), "c".into()]).unwrap();
    assert_eq!(scopes_header(&scopes), "a:b c");
    assert_eq!(scopes_header(&[]), "");
}

// --- properties ------------------------------------------------------------------

fn arb_tokens() -> impl Strategy<Value = Vec<Token>> {
    prop::collection::vec(
        prop_oneof![
            3 => "[ab]".prop_map(Token::Literal),
            1 => Just(Token::One),
            1 => Just(Token::Any),
        ],
        0..6,
    )
}

fn arb_segments() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[abc]", 0..7)
}

/// Symbol-by-symbol coverage, as plainly as it can be written: a table of
/// "a[i..] covers b[j..]" filled from the ends.
fn covers_oracle(a: &[Token], b: &[Token]) -> bool {
    let (n, m) = (a.len(), b.len());
    let mut can = vec![vec![false; m + 1]; n + 1];
    can[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            can[i][j] = match (&a[i], b.get(j)) {
                (Token::Any, _) => can[i + 1][j] || (j < m && can[i][j + 1]),
                (_, None) => false,
                (Token::One, Some(Token::One | Token::Literal(_))) => can[i + 1][j + 1],
                (Token::One, Some(Token::Any)) => false,
                (Token::Literal(x), Some(Token::Literal(y))) => x == y && can[i + 1][j + 1],
                (Token::Literal(_), Some(_)) => false,
            };
        }
    }
    can[0][0]
}

fn covers_tokens(a: &[Token], b: &[Token]) -> bool {
    let mut interner = Interner::default();
    let (sa, sb) = (interner.shape(a), interner.shape(b));
    covers(&sa, &sb)
}

/// The definition, as plainly as it can be written.
fn oracle(tokens: &[Token], segments: &[String]) -> bool {
    match tokens.first() {
        None => segments.is_empty(),
        Some(Token::Any) => (0..=segments.len()).any(|k| oracle(&tokens[1..], &segments[k..])),
        Some(Token::One) => !segments.is_empty() && oracle(&tokens[1..], &segments[1..]),
        Some(Token::Literal(l)) => {
            segments.first() == Some(l) && oracle(&tokens[1..], &segments[1..])
        }
    }
}

/// A path `tokens` matches, with wildcards filled from `fill`.
fn instance(tokens: &[Token], fill: &[(usize, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (n, s) = fill[i % fill.len()].clone();
        match t {
            Token::Literal(l) => out.push(l.clone()),
            Token::One => out.push(s),
            Token::Any => out.extend(std::iter::repeat_n(s, n)),
        }
    }
    out
}

proptest! {
    #[test]
    fn matching_agrees_with_the_definition(tokens in arb_tokens(), segments in arb_segments()) {
        prop_assert_eq!(glob_match(&tokens, &segments), oracle(&tokens, &segments));
    }

    /// A warning is never wrong: whatever the later pattern matches, the
    /// earlier one does.
    #[test]
    fn coverage_is_sound(
        a in arb_tokens(),
        b in arb_tokens(),
        probes in prop::collection::vec(arb_segments(), 24),
        fills in prop::collection::vec(prop::collection::vec((0usize..3, "[abc]"), 1..4), 8),
    ) {
        let covered = covers_tokens(&a, &b);
        prop_assert_eq!(covered, covers_oracle(&a, &b));
        if covered {
            for p in probes {
                prop_assert!(!oracle(&b, &p) || oracle(&a, &p), "{:?} {:?} {:?}", a, b, p);
            }
            for fill in fills {
                let p = instance(&b, &fill);
                prop_assert!(oracle(&b, &p));
                prop_assert!(oracle(&a, &p), "{:?} covers {:?} but not {:?}", a, b, p);
            }
        }
        prop_assert!(covers_tokens(&a, &a));
    }

    #[test]
    fn request_path_parsing_is_total(uri in "\\PC{0,60}") {
        if let Ok(p) = RequestPath::parse(&uri) {
            for s in p.segments() {
                prop_assert!(!s.is_empty() && s != "." && s != "..");
                prop_assert!(!s.contains(['/', '\\']));
                prop_assert!(!s.chars().any(|c| c.is_control()));
            }
        }
    }

    #[test]
    fn near_miss_request_paths_never_panic(uri in "(/|%|[.]|[a%2fFcC5e]|[?#])*") {
        if let Ok(p) = RequestPath::parse(&uri) {
            for s in p.segments() {
                prop_assert!(!s.is_empty() && s != "." && s != "..");
                prop_assert!(!s.contains(['/', '\\']));
            }
        }
    }

    /// Escaping any character of a path changes nothing a rule sees.
    #[test]
    fn escaped_paths_match_like_plain_ones(
        plain in prop::collection::vec("[a-z0-9._~-]{1,6}", 0..5),
        escape_mask in any::<u64>(),
        pat in prop::sample::select(vec!["/**", "/a/**", "/*", "/*/*/**", "/a.b", "/x~y/*"]),
    ) {
        prop_assume!(plain.iter().all(|s| s != "." && s != ".."));
        let raw: String = plain.iter().map(|s| format!("/{s}")).collect();
        let raw = if raw.is_empty() { "/".to_owned() } else { raw };
        let mut escaped = String::new();
        for (i, c) in raw.chars().enumerate() {
            if c != '/' && escape_mask & (1 << (i % 64)) != 0 {
                escaped.push_str(&format!("%{:02X}", c as u32));
            } else {
                escaped.push(c);
            }
        }
        let (p1, p2) = (path(&raw), path(&escaped));
        prop_assert_eq!(&p1, &p2);
        prop_assert_eq!(pattern(pat).matches(&p1), pattern(pat).matches(&p2));
    }

    #[test]
    fn pattern_parsing_is_total(raw in "\\PC{0,40}") {
        if let Ok(p) = PathPattern::parse("path", &raw) {
            prop_assert_eq!(p.as_str(), raw.as_str());
            prop_assert!(p.covers(&p));
        }
    }
}

#[test]
fn the_openapi_schemas_name_every_type_they_refer_to() {
    crate::assert_schema_complete::<RulesSpec>();
    crate::assert_schema_complete::<RulesAnswer>();
}

#[test]
fn envoy_appends_the_original_uri_to_the_forward_path() {
    for (sent, original) in [
        (
            "/v1/authz/forward/invoices/42?x=1",
            Some("/invoices/42?x=1"),
        ),
        ("/v1/authz/forward", Some("/")),
        ("/v1/authz/forward/", Some("/")),
        ("/v1/authz/forward?x=1", Some("/?x=1")),
        ("/v1/authz/forward//a", Some("//a")),
        ("/v1/authz/forwarder", None),
        ("/v1/authz", None),
        ("/other/v1/authz/forward/a", None),
    ] {
        assert_eq!(envoy_original_uri(sent).as_deref(), original, "{sent}");
    }
    // What comes out is refused or matched like any forwarded URI.
    let uri = envoy_original_uri("/v1/authz/forward//a").unwrap();
    assert_eq!(RequestPath::parse(&uri), Err(PathRefusal::EmptySegment));
}
