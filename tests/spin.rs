//! End-to-end: a Spin app built with the Spin SDK for Python 3.4.1 (componentize-py 0.17.2), deployed from its
//! own `spin.toml` unchanged: key-value (`fermyon:spin/key-value`), variables (`fermyon:spin/variables`, a
//! required one given with `--var`), outbound HTTP, Spin's `spin-*` request headers, and an interface wisp does
//! not serve yet (`spin:sqlite`) linked to trap with a message naming it, instead of failing the deploy.

mod common;

use common::{Server, pong_server, stderr, stdout};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_spin_sdk_app_deploys_from_its_spin_toml_and_answers_as_under_spin() {
    let (port, _) = pong_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/spin-py");
    std::fs::copy(src.join("spin.toml"), app.join("spin.toml")).unwrap();
    std::fs::copy(common::guest("spin-py"), app.join("app.wasm")).unwrap();
    let app_dir = app.to_str().unwrap();

    // The app's required variable: named when missing, nothing deployed.
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("variable `upstream` is required"), "{}", stderr(&out));
    assert_eq!(s.get("/spin/var").await.0, 404);

    let upstream = format!("upstream=http://127.0.0.1:{port}/ping");
    let out = s.cli(&["deploy", app_dir, "--var", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = s.function("spin-py").await;
    assert_eq!(f["app"], "spin-py");

    // Variables: the component's template, resolved from the app's default.
    assert_eq!(s.get("/spin/var").await, (200, "hello from spin variables".to_string()));

    // Key-value through the SDK's key_value module, in the app's default store.
    let http = reqwest::Client::new();
    let posted = http.post(format!("{}/spin/kv", s.url)).body("first note").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let kv: Value = serde_json::from_str(&posted.text().await.unwrap()).unwrap();
    assert_eq!(kv, serde_json::json!({"hits": 1, "note": "first note", "keys": ["hits", "note"]}));
    let (status, body) = s.get("/spin/kv").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["hits"], 2);
    // The same store the CLI shows for the app.
    let out = s.cli(&["kv", "get", "--app", "spin-py", "hits"]);
    assert_eq!(stdout(&out).trim(), "2", "{}", stderr(&out));

    // Spin's request headers.
    let (status, body) = s.get("/spin/headers?x=1").await;
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-matched-route"], "/spin/...");
    assert_eq!(h["spin-raw-component-route"], "/spin/...");
    assert_eq!(h["spin-component-route"], "/spin");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-full-url"].as_str().unwrap().ends_with("/spin/headers?x=1"), "{h}");
    assert!(h["spin-client-addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{h}");

    // Outbound HTTP through the SDK's send(), to the address the grant allows.
    assert_eq!(s.get("/spin/fetch").await, (200, "pong".to_string()));

    // spin:sqlite is imported (componentize-py imports the whole Spin world) but not served yet: deploying
    // worked, and a call traps with a message naming the interface, in the invocation's record.
    let (status, _) = s.get("/spin/sql").await;
    assert_eq!(status, 500);
    let logs = s.logs("spin-py").await;
    let last = logs.last().unwrap().to_string();
    assert!(last.contains("of `spin:sqlite/sqlite@3.0.0`, which this wisp node does not serve yet"), "{last}");
    // The instance that trapped is gone; the next request is served.
    assert_eq!(s.get("/spin/var").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_manifest_keys_wisp_cannot_honour_are_errors_that_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let manifest = dir.path().join("spin.toml");
    let write = |extra: &str| {
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/x/...\"\ncomponent = \"x\"\n[component.x]\nsource = \"x.wasm\"\n{extra}"
            ),
        )
        .unwrap()
    };
    write("files = [\"static/**\"]\n");
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(stderr(&out).contains("[component.x]: `files` is not supported yet"), "{}", stderr(&out));
    write("sqlite_databases = [\"default\"]\n");
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(stderr(&out).contains("sqlite_databases is not served yet"), "{}", stderr(&out));
    std::fs::write(&manifest, "spin_manifest_version = 1\nname = \"x\"\n[application]\nname = \"x\"\n").unwrap();
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(stderr(&out).contains("wisp reads version 2 manifests"), "{}", stderr(&out));
    assert_eq!(s.functions().await.as_array().unwrap().len(), 0, "nothing deployed");
}
