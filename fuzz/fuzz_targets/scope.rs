//! Scope parsing and matching: total, and consistent with itself. The input
//! is read as lines: each a scope (or not), the whole a scope list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tooken_core::scope::{any_covers, parse_scopes, MAX_SCOPES, MAX_SCOPE_LEN};
use tooken_core::Scope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut valid = Vec::new();
    for line in &lines {
        if let Ok(scope) = Scope::parse(line) {
            assert_eq!(scope.as_str(), line);
            assert!(!line.is_empty() && line.len() <= MAX_SCOPE_LEN);
            assert!(line.as_bytes()[0].is_ascii_lowercase());
            assert!(scope.covers(&scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            valid.push(scope);
        }
    }
    // The checks below are cubic: a dozen scopes are plenty.
    valid.truncate(12);
    for a in &valid {
        for b in &valid {
            assert_eq!(any_covers(std::slice::from_ref(a), b), a.covers(b));
            // Covering is transitive: what a scope covers, a scope covering
            // it covers too (no way around a narrower grant).
            if a.covers(b) {
                for c in &valid {
                    if b.covers(c) {
                        assert!(a.covers(c), "{a} covers {b}, which covers {c}");
                    }
                }
            }
        }
    }
    match parse_scopes("scopes", &lines) {
        Ok(list) => {
            assert!(lines.len() <= MAX_SCOPES);
            assert_eq!(list.len(), {
                let mut seen = Vec::new();
                for l in &lines {
                    if !seen.contains(l) {
                        seen.push(l.clone());
                    }
                }
                seen.len()
            });
        }
        Err(e) => assert!(e.field.starts_with("scopes")),
    }
});
