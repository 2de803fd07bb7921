//! `wisp.toml`: parsing arbitrary text never panics; errors are messages, not crashes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = wisp_core::manifest::Manifest::parse(data, "wisp.toml");
});
