//! WAGI output: parsing never panics, and a parsed head's body offset is inside the output.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = wisp_core::cgi::parse(data) {
        assert!(head.body_start <= data.len());
        assert!((100..=999).contains(&head.status));
    }
});
