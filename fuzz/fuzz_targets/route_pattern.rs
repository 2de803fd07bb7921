//! Route patterns: parsing never panics, and a parsed pattern displays to a string that parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp_core::RoutePattern;

fuzz_target!(|data: &str| {
    if let Ok(p) = RoutePattern::parse(data) {
        let again = RoutePattern::parse(&p.to_string()).expect("a displayed pattern parses");
        assert_eq!(again, p);
        assert!(p.path.starts_with('/'));
        assert!(p.matches_path(&p.path));
    }
});
