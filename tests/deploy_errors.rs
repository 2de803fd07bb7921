//! End-to-end: bad uploads and bad manifests are rejected with clear messages and change nothing.

mod common;

use common::{Server, guest, stderr, stdout};
use serde_json::json;

async fn still_serving(s: &Server) {
    assert_eq!(s.get("/x").await, (200, "Hello from C!\n".to_string()));
    let v = s.functions().await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["generation"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_artifacts_are_rejected_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("x", "hello-c", json!({"routes": ["/x"]})).await;

    // Not wasm: refused at upload.
    let e = s.deploy_bytes("x", b"#!/bin/sh\necho hi\n".to_vec(), json!({"routes": ["/x"]})).await.unwrap_err();
    assert_eq!(e.0, 400);
    assert!(e.1.contains("not WebAssembly"), "{}", e.1);
    still_serving(&s).await;

    // Truncated component.
    let mut bytes = std::fs::read(guest("hello-c")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let e = s.deploy_bytes("x", bytes, json!({"routes": ["/x"]})).await.unwrap_err();
    assert_eq!(e.0, 400);
    assert!(e.1.starts_with("the artifact is not valid WebAssembly"), "{}", e.1);
    still_serving(&s).await;

    // A component importing something wisp does not provide.
    let alien = wat::parse_str(r#"(component (import "acme:billing/charge@1.0.0" (instance)))"#).unwrap();
    let e = s.deploy_bytes("x", alien, json!({"routes": ["/x"]})).await.unwrap_err();
    assert_eq!(e.0, 400);
    assert!(e.1.contains("imports `acme:billing/charge@1.0.0`, which wisp does not provide"), "{}", e.1);
    still_serving(&s).await;

    // Right bytes, wrong kind.
    let e =
        s.deploy_bytes("x", std::fs::read(guest("hello-wagi")).unwrap(), json!({"routes": ["/x"]})).await.unwrap_err();
    assert!(e.1.contains("the artifact is a core module, not a component"), "{}", e.1);
    still_serving(&s).await;

    // Limits beyond the node's ceiling.
    let e = s
        .deploy_bytes(
            "x",
            std::fs::read(guest("echo-c")).unwrap(),
            json!({"routes": ["/x"], "limits": {"memory_mb": 4096}}),
        )
        .await
        .unwrap_err();
    assert!(e.1.contains("exceeds this node's ceiling"), "{}", e.1);
    // Unknown spec field.
    let e = s
        .deploy_bytes("x", std::fs::read(guest("echo-c")).unwrap(), json!({"routes": ["/x"], "replicas": 3}))
        .await
        .unwrap_err();
    assert!(e.1.contains("unknown field `replicas`"), "{}", e.1);
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn route_conflicts_name_both_functions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("x", "hello-c", json!({"routes": ["/x"]})).await;
    let e =
        s.deploy_bytes("other", std::fs::read(guest("echo-c")).unwrap(), json!({"routes": ["/x/"]})).await.unwrap_err();
    assert_eq!(e.0, 409);
    assert_eq!(
        e.1,
        "route `/x` is already served by `default/x`; `default/other` cannot claim it too (pick another route, or remove it from `default/x` first)"
    );
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_manifests_are_rejected_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("x", "hello-c", json!({"routes": ["/x"]})).await;
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::copy(guest("echo-c"), app.join("f.wasm")).unwrap();
    let manifest = app.join("wisp.toml");
    std::fs::write(
        &manifest,
        "[app]\nname = \"a\"\n\n[[function]]\nname = \"x\"\nsource = \"f.wasm\"\nroutes = [\"/x\"]\nreplicas = 3\n",
    )
    .unwrap();
    let out = s.cli(&["deploy", app.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("wisp.toml: TOML parse error at line 8, column 1"), "{err}");
    assert!(
        err.contains(
            "unknown field `replicas`, expected one of `name`, `kind`, `source`, `routes`, `env`, `limits`, `scaling`"
        ),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "nothing was deployed: {}", stdout(&out));
    still_serving(&s).await;

    std::fs::write(&manifest, "[app]\nname = \"a\"\n\n[[function]]\nname = \"x\"\nsource = \"missing.wasm\"\n")
        .unwrap();
    let out = s.cli(&["deploy", app.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("function `x`: reading") && stderr(&out).contains("missing.wasm"),
        "{}",
        stderr(&out)
    );
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_requires_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let r = s.http.get(format!("{}/_wisp/v1/status", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("missing `Authorization: Bearer <token>`"));
    let r = s.http.get(format!("{}/_wisp/v1/status", s.url)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data.join("api-token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The CLI finds it in the data directory.
    let out = s.cli(&["status"]);
    assert!(out.status.success() && stdout(&out).contains("0 functions active"), "{}", stderr(&out));
}
