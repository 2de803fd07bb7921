//! The function spec JSON the deploy API takes: decoding and validating never panic, and a valid spec's
//! revision id is stable across a JSON round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp_core::FunctionSpec;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<FunctionSpec>(data)
        && spec.validate().is_ok()
    {
        let again: FunctionSpec = serde_json::from_slice(&serde_json::to_vec(&spec).unwrap()).unwrap();
        assert_eq!(again.revision_id(), spec.revision_id());
    }
});
