//! End-to-end: pre-initialisation snapshots of WAGI modules (Wizer) at deploy, and the per-phase timings
//! every invocation records (cold-start transparency).

mod common;

use common::{Server, guest, stderr, stdout};
use serde_json::json;

const PRIMES_1000: &str = "1000: not prime; 168 primes below it\n";
const PRIMES_997: &str = "997: prime; 167 primes below it\n";

/// A module exporting `wizer-initialize` has it run once at deploy: every instance starts from the snapshot
/// (the init phase is zero), answers from the initialised state, and the deploy says what happened.
#[tokio::test(flavor = "multi_thread")]
async fn wagi_init_runs_at_deploy_and_instances_start_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let d = s.deploy("primes", "primes-wagi", json!({"kind": "wagi", "routes": ["/primes"]})).await;
    let note = d["preinit"].as_str().unwrap_or_default();
    assert!(note.contains("`wizer-initialize` ran at deploy"), "{d}");

    assert_eq!(s.get("/primes?n=1000").await, (200, PRIMES_1000.to_string()));
    assert_eq!(s.get("/primes?n=997").await, (200, PRIMES_997.to_string()));
    let logs = s.logs("primes").await;
    assert_eq!(logs.len(), 2);
    for l in &logs {
        assert_eq!(l["cold"], true, "WAGI instances are fresh: {l}");
        assert_eq!(l["init_us"], 0, "the snapshot leaves nothing to initialise: {l}");
        assert!(l["handler_us"].as_u64().unwrap() > 0, "{l}");
    }

    // The CLI shows the phases: per invocation in `wisp logs`, summarised in `wisp status NAME`.
    let out = s.cli(&["logs", "primes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" init 0.000 handler "), "{}", stdout(&out));
    let out = s.cli(&["status", "primes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("recent:      2 invocations, 0 failed"), "{text}");
    assert!(text.contains("cold ×2: total "), "{text}");
    assert!(text.contains("(loaded in "), "{text}");
}

/// With snapshots off, the init runs in every instance before `_start`: same answers, and the init phase
/// shows the cost the snapshot saves.
#[tokio::test(flavor = "multi_thread")]
async fn without_snapshots_the_init_runs_in_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--preinit-snapshots", "false"]);
    let d = s.deploy("primes", "primes-wagi", json!({"kind": "wagi", "routes": ["/primes"]})).await;
    let note = d["preinit"].as_str().unwrap_or_default();
    assert!(note.contains("not snapshotted, `wizer-initialize` runs in every instance"), "{d}");
    assert_eq!(s.get("/primes?n=1000").await, (200, PRIMES_1000.to_string()));
    assert_eq!(s.get("/primes?n=997").await, (200, PRIMES_997.to_string()));
    for l in s.logs("primes").await {
        assert!(l["init_us"].as_u64().unwrap() > 0, "the init ran in this instance: {l}");
    }
}

/// An init that fails at deploy would fail every request: the deploy is refused with the failure and what
/// the module printed, and nothing is stored or served.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_init_refuses_the_deploy_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let bytes = std::fs::read(guest("badinit-wagi")).unwrap();
    let (status, message) =
        s.deploy_bytes("bad", bytes, json!({"kind": "wagi", "routes": ["/bad"]})).await.expect_err("must be refused");
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("`wizer-initialize` export failed at deploy"), "{message}");
    assert!(message.contains("badinit: cannot load the configuration"), "{message}");
    assert_eq!(s.get("/bad").await.0, 404);
    assert_eq!(s.functions().await.as_array().unwrap().len(), 0);
}

/// Phase timings of a wasi:http component: a cold invocation instantiates, a warm one does not, and both
/// record handler and response phases.
#[tokio::test(flavor = "multi_thread")]
async fn component_invocations_record_their_phases() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"], "scaling": {"instance_mode": "reuse"}})).await;
    for _ in 0..3 {
        assert_eq!(s.get("/hello").await.0, 200);
    }
    let logs = s.logs("hello").await;
    let (cold, warm): (Vec<_>, Vec<_>) = logs.iter().partition(|l| l["cold"] == true);
    assert_eq!((cold.len(), warm.len()), (1, 2), "{logs:?}");
    assert!(cold[0]["instantiate_us"].as_u64().unwrap() > 0, "{:?}", cold[0]);
    for l in &warm {
        assert_eq!(l["instantiate_us"], 0, "{l}");
    }
    for l in &logs {
        let sum: u64 = ["queue_us", "instantiate_us", "init_us", "handler_us", "response_us"]
            .iter()
            .map(|k| l[k].as_u64().unwrap())
            .sum();
        assert!(sum <= l["duration_us"].as_u64().unwrap(), "phases fit in the total: {l}");
        assert!(l["handler_us"].as_u64().unwrap() > 0, "{l}");
    }
    let show: serde_json::Value = s.get_json("/_wisp/v1/namespaces/default/functions/hello").await;
    assert_eq!(show["phases"]["cold"]["count"], 1, "{show}");
    assert_eq!(show["phases"]["warm"]["count"], 2, "{show}");
}
