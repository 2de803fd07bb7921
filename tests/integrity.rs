//! End-to-end: the store and what serves agree, whatever the order of changes, a corrupt row, or a
//! routine redeploy.

mod common;

use common::{Server, held, stdout, until};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_or_newer_record_is_skipped_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data);
    s.deploy("a", "hello-c", json!({"routes": ["/a"]})).await;
    s.deploy("b", "hello-wagi", json!({"kind": "wagi", "routes": ["/b"]})).await;
    s.stop();

    let db = rusqlite::Connection::open(data.join("store/meta.sqlite3")).unwrap();
    db.execute(
        "INSERT INTO kv (bucket, key, value, revision) VALUES ('functions', 'default/broken', ?1, 999)",
        [b"{not json".to_vec()],
    )
    .unwrap();
    let future = json!({"v": 99, "key": "default/future", "something": "new"}).to_string();
    db.execute(
        "INSERT INTO kv (bucket, key, value, revision) VALUES ('functions', 'default/future', ?1, 1000)",
        [future.into_bytes()],
    )
    .unwrap();
    drop(db);

    let s = Server::start(&data);
    assert_eq!(s.get("/a").await, (200, "Hello from C!\n".into()));
    assert_eq!(s.get("/b").await.1, "Hello from WAGI!\n");
    // Deploys of other functions still work, and `ls` shows the readable ones.
    s.deploy("c", "hello-c", json!({"routes": ["/c"]})).await;
    assert_eq!(s.get("/c").await.0, 200);
    let names: Vec<String> =
        s.functions().await.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let log = std::fs::read_to_string(dir.path().join("data.log")).unwrap();
    assert!(log.contains("skipping a stored record") && log.contains("default/broken"), "{log}");
    assert!(log.contains("schema version 99, written by a newer wisp"), "{log}");
    // The bad row can be removed.
    assert!(s.cli(&["rm", "broken"]).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_changes_leave_ls_equal_to_what_serves() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Server::start(&dir.path().join("data")));
    let hello = std::fs::read(common::guest("hello-c")).unwrap();
    let wagi = std::fs::read(common::guest("hello-wagi")).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (s, hello, wagi) = (s.clone(), hello.clone(), wagi.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..6 {
                let name = format!("f{}", (t + i) % 5);
                match (t + i) % 4 {
                    0 => drop(s.deploy_bytes(&name, hello.clone(), json!({"routes": [format!("/{name}")]})).await),
                    1 => drop(
                        s.deploy_bytes(&name, wagi.clone(), json!({"kind": "wagi", "routes": [format!("/{name}")]}))
                            .await,
                    ),
                    2 => {
                        let path = format!("/_wisp/v1/namespaces/default/functions/{name}/scaling");
                        let body = json!({"max_queue_depth": 10 + t});
                        drop(s.api(reqwest::Method::PATCH, &path).json(&body).send().await.unwrap());
                    }
                    _ => {
                        let path = format!("/_wisp/v1/namespaces/default/functions/{name}");
                        drop(s.api(reqwest::Method::DELETE, &path).send().await.unwrap());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every function `ls` shows serves what its record says, and nothing else serves.
    let listed = s.functions().await;
    let listed = listed.as_array().unwrap();
    for i in 0..5 {
        let name = format!("f{i}");
        let f = listed.iter().find(|f| f["name"] == name.as_str());
        let (status, body) = s.get(&format!("/{name}")).await;
        match f {
            None => assert_eq!(status, 404, "{name} is not listed but serves: {body}"),
            Some(f) => {
                assert_eq!(f["active"], true, "{f}");
                let want = if f["kind"] == "wagi" { "Hello from WAGI!\n" } else { "Hello from C!\n" };
                assert_eq!((status, body.as_str()), (200, want), "{name}: {f}");
                let live = s.function(&name).await;
                assert_eq!(live["scaling"], f["scaling"]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redeploy_keeps_scaling_and_scale_changes_only_the_given_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with(&data, &["--autoscale-tick-ms", "60000"]);
    let wasm = common::guest("hello-c");
    let wasm = wasm.to_str().unwrap();
    assert!(s.cli(&["deploy", wasm, "--name", "k", "-e", "SECRET=hunter2"]).status.success());
    let out = s.cli(&["scale", "k", "--instance-mode", "reuse", "--min-instances", "2"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = s.cli(&["scale", "k", "--max-queue-depth", "7"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // A routine single-file redeploy (a new env, so a new revision) keeps the stored scaling.
    let out = s.cli(&["deploy", wasm, "--name", "k", "-e", "SECRET=hunter3"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let f = s.function("k").await;
    assert_eq!(f["generation"], 2);
    assert_eq!(f["scaling"]["min_instances"], 2);
    assert_eq!(f["scaling"]["max_queue_depth"], 7);
    assert_eq!(f["scaling"]["instance_mode"], "reuse");
    until(&s, "k", |f| f["idle_instances"] == 2).await;

    // Env values never come back from the API; keys do.
    let shown = s
        .api(reqwest::Method::GET, "/_wisp/v1/namespaces/default/functions/k")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains("hunter"), "{shown}");
    assert!(shown.contains(r#""env_keys":["SECRET"]"#), "{shown}");
    assert!(stdout(&s.cli(&["status", "k"])).contains("revisions:   2"));
    // The data directory is private.
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_a_reserved_function_under_load_never_stalls_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--max-concurrency", "4"]);
    s.deploy("r", "echo-c", json!({"routes": ["/r"], "scaling": {"reserved_concurrency": 2}})).await;
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    // Both reserved slots in use.
    let (a, ta) = held(&s, "/r");
    let (b, tb) = held(&s, "/r");
    ta.send(b"a".to_vec()).await.unwrap();
    tb.send(b"b".to_vec()).await.unwrap();
    until(&s, "r", |f| f["in_flight"] == 2).await;
    // Change the reserved function's settings twice while it is busy: the others keep their share.
    for (timeout, reserved) in [(60, 2), (61, 3)] {
        let out = s.cli(&[
            "scale",
            "r",
            "--idle-timeout-seconds",
            &timeout.to_string(),
            "--reserved-concurrency",
            &reserved.to_string(),
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert_eq!(s.get("/ok").await.0, 200);
    }
    let f = s.function("r").await;
    assert_eq!((f["in_flight"].as_u64(), f["scaling"]["reserved_concurrency"].as_u64()), (Some(2), Some(3)));
    // Only the node's remaining unreserved slot is left for everyone else: one runs, more would queue.
    let out = s.cli(&["scale", "r", "--reserved-concurrency", "5"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("scaling.reserved_concurrency = 5 is out of range: allowed 0..=4"),
        "{}",
        common::stderr(&out)
    );
    drop((ta, tb));
    assert_eq!(a.await.unwrap(), (200, "a".into()));
    assert_eq!(b.await.unwrap(), (200, "b".into()));
    assert_eq!(s.function("r").await["in_flight"], 0);
    assert_eq!(s.get("/ok").await.0, 200);
}
