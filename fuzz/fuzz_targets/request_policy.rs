//! The data plane's request policy: the path check and host normalisation never panic, an accepted path
//! has no empty or dot segment, and a routing host is normalised (lowercase, no trailing dot, no port).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if wisp_core::route::check_request_path(data).is_ok() {
        let inner = data.strip_suffix('/').unwrap_or(data);
        for seg in inner.split('/').skip(1) {
            assert!(data == "/" || !seg.is_empty(), "{data:?}");
            assert!(seg != "." && seg != "..", "{data:?}");
        }
    }
    if let Some(h) = wisp_core::route::routing_host(data) {
        assert!(!h.is_empty() && !h.ends_with('.') && h == h.to_ascii_lowercase(), "{data:?} -> {h:?}");
    }
});
