//! `allowed_outbound_hosts` entries: parsing never panics, a parsed pattern displays to a string that
//! parses back to it, and matching never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp_core::outbound::HostPattern;

fuzz_target!(|data: &str| {
    if let Ok(p) = HostPattern::parse(data) {
        let again = HostPattern::parse(&p.to_string()).expect("a displayed pattern parses");
        assert_eq!(again, p);
        let _ = p.allows(true, data, 443);
        let _ = p.allows(false, "example.com", 80);
    }
});
