//! End-to-end: instance reuse (Lambda-style warm instances) per function, switched without a redeploy, with
//! automatic fallback for guests that cannot be reused.

mod common;

use common::{Server, stderr, stdout};
use serde_json::json;

/// No autoscaling steps after the one at start.
const QUIET: &[&str] = &["--autoscale-tick-ms", "60000"];

/// A Python module-level counter survives between requests in reuse mode and not in fresh mode; the mode
/// changes with `wisp scale`, without a redeploy or recompilation.
#[tokio::test(flavor = "multi_thread")]
async fn python_reuse_keeps_module_state_and_fresh_does_not() {
    let dir = tempfile::tempdir().unwrap();
    // The autoscaler stays out of the way (its first tick is at start): these cases assert exact cold/warm
    // sequences, which a prewarm between two requests would change.
    let s = Server::start_with(&dir.path().join("data"), QUIET);
    s.deploy("counter", "counter-py", json!({"routes": ["/count"]})).await;
    for _ in 0..3 {
        assert_eq!(s.get("/count").await, (200, "served=1\n".to_string()), "fresh mode: a new instance each time");
    }
    let out = s.cli(&["scale", "counter", "--instance-mode", "reuse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for want in 1..=4 {
        assert_eq!(s.get("/count").await, (200, format!("served={want}\n")), "reuse mode: one warm instance");
    }
    assert_eq!(s.function("counter").await["instance_mode"], "reuse");
    let logs = s.logs("counter").await;
    let cold: Vec<bool> = logs.iter().rev().take(4).map(|l| l["cold"].as_bool().unwrap()).collect();
    assert_eq!(cold, [false, false, false, true], "newest first: three warm after one cold start");
    assert!(stdout(&s.cli(&["logs", "counter"])).contains(" warm "));
    let f = s.function("counter").await;
    assert_eq!((f["invocations"].as_u64(), f["cold_starts"].as_u64()), (Some(7), Some(4)), "3 fresh + 1 cold, 3 warm");
    assert!(stdout(&s.cli(&["status", "counter"])).contains("(7 invocations since start, 4 cold)"));

    let out = s.cli(&["scale", "counter", "--instance-mode", "fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/count").await.1, "served=1\n");
    assert_eq!(s.status().await["compilations"], 1, "scaling changes never recompile");
}

/// StarlingMonkey (componentize-js) cannot answer twice from one instance. In reuse mode the platform notices,
/// falls back to fresh instances, and no request fails.
#[tokio::test(flavor = "multi_thread")]
async fn js_guest_falls_back_to_fresh_without_failing_requests() {
    let dir = tempfile::tempdir().unwrap();
    // The autoscaler stays out of the way (its first tick is at start): these cases assert exact cold/warm
    // sequences, which a prewarm between two requests would change.
    let s = Server::start_with(&dir.path().join("data"), QUIET);
    s.deploy("js", "hello-js", json!({"routes": ["/js"], "scaling": {"instance_mode": "reuse"}})).await;
    for i in 0..6 {
        assert_eq!(s.get("/js").await, (200, "Hello from JavaScript!\n".to_string()), "request {i}");
    }
    let f = s.function("js").await;
    assert_eq!(f["instance_mode"], "fresh", "{f}");
    assert_eq!(f["scaling"]["instance_mode"], "reuse", "the setting is kept; the fallback is the node's decision");
    let log = std::fs::read_to_string(s.data.with_extension("log")).unwrap();
    assert!(log.contains("falling back to a fresh instance per request"), "{log}");
}

/// Reused instances: output is captured per invocation; a failed instance is dropped, not reused, and a
/// guest that fails on every instance does not trigger the fallback.
#[tokio::test(flavor = "multi_thread")]
async fn reused_instances_capture_logs_per_invocation_and_drop_failed_ones() {
    let dir = tempfile::tempdir().unwrap();
    // The autoscaler stays out of the way (its first tick is at start): these cases assert exact cold/warm
    // sequences, which a prewarm between two requests would change.
    let s = Server::start_with(&dir.path().join("data"), QUIET);
    let reuse = json!({"instance_mode": "reuse"});
    s.deploy("talk", "logs-c", json!({"routes": ["/talk"], "scaling": reuse, "env": {"GREETING": "hi"}})).await;
    s.deploy("trap", "trap-c", json!({"routes": ["/trap"], "scaling": reuse})).await;
    s.deploy(
        "hello",
        "hello-c",
        json!({"routes": ["/hello"], "scaling": {"instance_mode": "reuse", "max_requests_per_instance": 3}}),
    )
    .await;

    for _ in 0..3 {
        assert_eq!(s.get("/talk").await.1, "greeting=hi");
    }
    let logs = s.logs("talk").await;
    assert_eq!(logs.len(), 3);
    for l in &logs {
        assert_eq!(l["logs"], "stdout line from guest\nstderr line from guest\n", "one invocation's output each");
    }
    assert_eq!(logs.iter().filter(|l| l["cold"] == true).count(), 1);

    for _ in 0..5 {
        assert_eq!(s.get("/trap").await.0, 500);
    }
    let f = s.function("trap").await;
    assert_eq!(f["instance_mode"], "reuse", "a guest that fails everywhere is not 'unreusable': {f}");
    assert!(s.logs("trap").await.iter().all(|l| l["cold"] == true), "trapped instances are never reused");

    // max_requests_per_instance = 3: every third request starts a new instance.
    for _ in 0..7 {
        assert_eq!(s.get("/hello").await.0, 200);
    }
    let cold: Vec<bool> = s.logs("hello").await.iter().map(|l| l["cold"].as_bool().unwrap()).collect();
    assert_eq!(cold, [true, false, false, true, false, false, true]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scaling_settings_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // The autoscaler stays out of the way (its first tick is at start): these cases assert exact cold/warm
    // sequences, which a prewarm between two requests would change.
    let s = Server::start_with(&dir.path().join("data"), QUIET);
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"]})).await;
    let out = s.cli(&["scale", "hello", "--max-requests-per-instance", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("scaling.max_requests_per_instance = 0 is out of range: allowed 1..=100000000"),
        "{}",
        stderr(&out)
    );
    let r = s
        .api(reqwest::Method::PUT, "/_wisp/v1/namespaces/default/functions/hello/scaling")
        .json(&json!({"instance_mode": "forever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown variant `forever`, expected `fresh` or `reuse`"));
    assert_eq!(s.function("hello").await["instance_mode"], "fresh");
}

/// `min_instances`: provisioned instances are initialised after a deploy and after a restart, so even the
/// first request finds a warm instance.
#[tokio::test(flavor = "multi_thread")]
async fn provisioned_instances_are_warm_after_deploy_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_with(&data, QUIET);
    let scaling = json!({"instance_mode": "reuse", "min_instances": 2});
    s.deploy("talk", "logs-c", json!({"routes": ["/talk"], "scaling": scaling, "env": {"GREETING": "hi"}})).await;
    assert_eq!(s.function("talk").await["idle_instances"], 2);
    assert_eq!(s.get("/talk").await.1, "greeting=hi");
    let logs = s.logs("talk").await;
    assert_eq!(logs[0]["cold"], false, "the first request found a provisioned instance");
    assert_eq!(logs[0]["logs"], "stdout line from guest\nstderr line from guest\n");
    s.kill();

    let s = Server::start_with(&data, QUIET);
    assert_eq!(s.function("talk").await["idle_instances"], 2, "re-provisioned at start");
    assert_eq!(s.get("/talk").await.1, "greeting=hi");
    assert_eq!(s.logs("talk").await[0]["cold"], false);

    // Raising the minimum takes effect at once; min above max_idle_instances is refused.
    let out = s.cli(&["scale", "talk", "--min-instances", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.function("talk").await["idle_instances"], 3);
    let out = s.cli(&["scale", "talk", "--min-instances", "5", "--max-idle-instances", "4"]);
    assert!(
        stderr(&out).contains("scaling.min_instances = 5 is out of range: allowed 0..=max_idle_instances (4)"),
        "{}",
        stderr(&out)
    );
}
