//! End-to-end: a Spin JavaScript app made from Spin 3.x's `http-js` template (@spinframework/build-tools
//! 1.0.7, whose j2w runs componentize-js 0.19.3, and @spinframework/wasi-http-proxy 1.0.1: a WASI 0.2
//! component exporting wasi:http/incoming-handler@0.2.3), built with its own `npm run build` and deployed from
//! its own `spin.toml` unchanged: a fixed route, variables (`fermyon:spin/variables@2.0.0`, a required one given
//! with `--var`), key-value (`fermyon:spin/key-value@2.0.0`, the store the CLI shows for the app), a store that
//! is not granted, and outbound HTTP through `fetch` to the address the grant allows.

mod common;

use common::{Server, pong_server, stderr, stdout};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread")]
async fn a_spin_js_app_deploys_from_its_spin_toml_and_answers_as_under_spin() {
    let (port, pongs) = pong_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // The app's directory as `spin build` leaves it: spin.toml and the component at its `source`.
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("dist")).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/spin-js");
    std::fs::copy(src.join("spin.toml"), app.join("spin.toml")).unwrap();
    std::fs::copy(common::guest("spin-js"), app.join("dist/spin-js.wasm")).unwrap();
    let app_dir = app.to_str().unwrap();

    // The app's required variable: named when missing, nothing deployed.
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("variable `upstream` is required"), "{}", stderr(&out));
    assert_eq!(s.get("/spin-js/hello").await.0, 404);

    let upstream = format!("upstream=http://127.0.0.1:{port}/ping");
    let out = s.cli(&["deploy", app_dir, "--var", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = s.function("spin-js").await;
    assert_eq!(f["app"], "spin-js");

    // The route's fixed body (the handler routes on Spin's `spin-path-info` header).
    assert_eq!(s.get("/spin-js/hello").await, (200, "Hello from a Spin JS component!".to_string()));
    assert_eq!(s.get("/spin-js/elsewhere").await, (404, "no such route".to_string()));

    // Variables: the component's template over the app's default; a name the component does not define is
    // Spin's `undefined` error case, thrown into JavaScript.
    assert_eq!(s.get("/spin-js/var").await, (200, "hello from spin variables in JS".to_string()));
    assert_eq!(s.get("/spin-js/var?name=nope").await, (404, "undefined".to_string()));

    // Key-value in the app's default store: a POST stores its body, every request counts a hit.
    let http = reqwest::Client::new();
    let posted = http.post(format!("{}/spin-js/kv", s.url)).body("first note").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let kv: Value = serde_json::from_str(&posted.text().await.unwrap()).unwrap();
    assert_eq!(kv, json!({"hits": 1, "note": "first note", "keys": ["hits", "note"], "exists": true}));
    let (status, body) = s.get("/spin-js/kv").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["hits"], 2);
    // The same store the CLI shows for the app, both ways.
    let out = s.cli(&["kv", "get", "--app", "spin-js", "hits"]);
    assert_eq!(stdout(&out).trim(), "2", "{}", stderr(&out));
    let out = s.cli(&["kv", "get", "--app", "spin-js", "note"]);
    assert_eq!(stdout(&out).trim(), "first note", "{}", stderr(&out));
    let out = s.cli(&["kv", "set", "--app", "spin-js", "note", "-d", "set by the CLI"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, body) = s.get("/spin-js/kv").await;
    let kv: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&kv["hits"], &kv["note"]), (&json!(3), &json!("set by the CLI")), "{body}");

    // Only the granted store opens; another is Spin's access-denied error case.
    assert_eq!(s.get("/spin-js/kvopen?store=default").await, (200, "opened".to_string()));
    assert_eq!(s.get("/spin-js/kvopen?store=other").await, (403, "access-denied".to_string()));

    // Outbound HTTP through fetch (wasi:http/outgoing-handler@0.2.3), to the address the grant allows.
    assert_eq!(s.get("/spin-js/fetch").await, (200, "pong".to_string()));
    assert_eq!(pongs.load(Ordering::SeqCst), 1);

    // The same component with an upstream the grant does not allow: fetch fails inside the guest (a 500 from
    // the handler's rejected promise), and no request reaches the server.
    let out = s.cli(&["deploy", app_dir, "--var", &format!("upstream=http://127.0.0.2:{port}/ping")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/spin-js/fetch").await.0, 500);
    assert_eq!(pongs.load(Ordering::SeqCst), 1, "a request the grant does not allow never leaves");
    assert_eq!(s.get("/spin-js/hello").await.0, 200);
}
