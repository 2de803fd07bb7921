//! End-to-end: deploy real guests (C, Python, JavaScript, WAGI) into the real `wisp` binary and serve them.

mod common;

use common::{Server, guest, stderr, stdout};
use serde_json::json;

/// The examples app (every language) deploys through the CLI, and each hello and echo answers; echo streams
/// a 10 MB body through unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn examples_app_serves_every_language() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let out = s.cli(&["deploy", manifest]);
    assert!(out.status.success(), "deploy failed:\n{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("hello-py: revision"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("primes-wagi: pre-initialised: `wizer-initialize` ran at deploy"),
        "{}",
        stdout(&out)
    );

    for (route, want) in [
        ("/hello-c", "Hello from C!\n"),
        ("/hello-py", "Hello from Python!\n"),
        ("/hello-js", "Hello from JavaScript!\n"),
        ("/hello-wagi", "Hello from WAGI!\n"),
        ("/primes?n=7919", "7919: prime; 999 primes below it\n"),
    ] {
        assert_eq!(s.get(route).await, (200, want.to_string()), "{route}");
    }

    let body: Vec<u8> = (0..10_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for route in ["/echo-c", "/echo-py", "/echo-js"] {
        let r = s
            .http
            .post(format!("{}{route}", s.url))
            .header("content-type", "application/x-test")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{route}");
        assert_eq!(r.headers()["content-type"], "application/x-test", "{route}");
        let got = r.bytes().await.unwrap();
        assert!(
            got.len() == body.len() && got[..] == body[..],
            "{route}: echoed {} bytes, sent {}",
            got.len(),
            body.len()
        );
    }

    // The CLI sees them all.
    let ls = stdout(&s.cli(&["ls"]));
    for name in [
        "hello-c",
        "echo-c",
        "hello-py",
        "echo-py",
        "hello-js",
        "echo-js",
        "hello-wagi",
        "primes-wagi",
        "kv-py",
        "events",
        "orders",
        "orders-handler",
        "blobs",
    ] {
        assert!(ls.contains(name), "ls lacks {name}:\n{ls}");
    }
    // The demo's platform services: a blob streamed in and out, a message reaching its handler.
    let r = s.http.put(format!("{}/blobs/note", s.url)).body("a blob").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/blobs/note").await, (200, "a blob".to_string()));
    let r = s.http.post(format!("{}/orders/orders", s.url)).body("two apples").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = s.get("/orders/last/orders").await;
        if status == 200 {
            assert!(body.contains("\"data\": \"two apples\""), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the message never reached orders-handler");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // `wisp invoke` bypasses routes.
    let inv = s.cli(&["invoke", "hello-py"]);
    assert!(inv.status.success(), "{}", stderr(&inv));
    assert_eq!(stdout(&inv), "Hello from Python!\n");
    // The event handler takes an event queued on its route.
    let r = s
        .http
        .post(format!("{}/events", s.url))
        .header("x-wisp-invocation-type", "Event")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = stdout(&s.cli(&["invocation", &id]));
        if out.contains("state       succeeded") {
            break;
        }
        assert!(std::time::Instant::now() < deadline && !out.contains("dead_lettered"), "{out}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The configured function reads its config (a template over the app's variables).
    assert_eq!(s.get("/config/").await, (200, "hello, wisp!\n".to_string()));
    // The key-value backed function keeps what it is given.
    let r = s.http.put(format!("{}/kv/greeting", s.url)).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/kv/greeting").await, (200, "hello".to_string()));
    assert_eq!(s.get("/kv/hits").await, (200, "hits: 1\n".to_string()));
    // Its triggers: a topic (wisp publish), a webhook route and a cron schedule, all shown by `wisp status`.
    let out = s.cli(&["publish", "greetings", "-d", "hi from a topic"]);
    assert!(out.status.success() && stdout(&out).starts_with("events\t"), "{}{}", stdout(&out), stderr(&out));
    let r = s.http.post(format!("{}/hooks/events", s.url)).body("hi from a webhook").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let status = stdout(&s.cli(&["status"]));
    for t in ["cron `*/30 * * * * *` UTC", "topic greetings", "webhook /hooks/events"] {
        assert!(status.contains(t), "status lacks {t}:\n{status}");
    }
}

/// WAGI gets CGI meta-variables: the path below the route prefix, the method, the query.
#[tokio::test(flavor = "multi_thread")]
async fn wagi_sees_cgi_variables() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("greeter", "hello-wagi", json!({"kind": "wagi", "routes": ["/wagi"]})).await;
    let r = s.http.put(format!("{}/wagi/sub/path?x=1", s.url)).body("hi").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-wagi-method"], "PUT");
    assert_eq!(r.headers()["x-wagi-path"], "/sub/path");
    assert_eq!(r.text().await.unwrap(), "Hello from WAGI!\n");
}

/// Guest stdout and stderr are captured per invocation and shown by `wisp logs`; env reaches the guest.
#[tokio::test(flavor = "multi_thread")]
async fn logs_capture_guest_output_and_env_reaches_guest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("talker", "logs-c", json!({"routes": ["/talk"], "env": {"GREETING": "bonjour"}})).await;
    let (status, body) = s.get("/talk").await;
    assert_eq!((status, body.as_str()), (200, "greeting=bonjour"));
    let logs = s.logs("talker").await;
    assert_eq!(logs.len(), 1);
    let text = logs[0]["logs"].as_str().unwrap();
    assert!(text.contains("stdout line from guest") && text.contains("stderr line from guest"), "{text}");
    let cli = stdout(&s.cli(&["logs", "talker"]));
    assert!(cli.contains("status=200") && cli.contains("| stderr line from guest"), "{cli}");

    // Output past max_log_bytes is cut and marked, and the guest is unaffected.
    s.deploy("terse", "logs-c", json!({"routes": ["/terse"], "limits": {"max_log_bytes": 10}})).await;
    assert_eq!(s.get("/terse").await.0, 200);
    let logs = s.logs("terse").await;
    assert_eq!(logs[0]["logs"].as_str().unwrap().len(), 10);
    assert_eq!(logs[0]["logs_truncated"], true);
}

/// Routing: longest prefix wins, host routes beat host-less ones, unknown paths 404.
#[tokio::test(flavor = "multi_thread")]
async fn longest_prefix_and_host_routing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("root", "hello-c", json!({"routes": ["/api"]})).await;
    s.deploy("deeper", "logs-c", json!({"routes": ["/api/v2", "shop.test/"], "env": {"GREETING": "deep"}})).await;
    assert_eq!(s.get("/api").await.1, "Hello from C!\n");
    assert_eq!(s.get("/api/v1/x").await.1, "Hello from C!\n");
    assert_eq!(s.get("/api/v2/x").await.1, "greeting=deep");
    assert_eq!(s.get("/api/v2x").await.1, "Hello from C!\n");
    assert_eq!(s.get("/nothing").await.0, 404);
    let r = s.http.get(format!("{}/api", s.url)).header("host", "shop.test:8080").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "greeting=deep");
}

/// Redeploying identical bytes is a no-op that says so; new code switches atomically to a new revision.
#[tokio::test(flavor = "multi_thread")]
async fn redeploy_is_noop_or_new_revision() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let hello = guest("hello-c");
    let hello = hello.to_str().unwrap();
    let first = s.cli(&["deploy", hello, "--name", "svc", "--route", "/svc"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("created"), "{}", stdout(&first));
    let again = s.cli(&["deploy", hello, "--name", "svc", "--route", "/svc"]);
    assert!(stdout(&again).contains("already uploaded"), "{}", stdout(&again));
    assert!(stdout(&again).contains("unchanged"), "{}", stdout(&again));
    assert_eq!(s.status().await["compilations"], 1);

    let echo = guest("echo-c");
    let upd = s.cli(&["deploy", echo.to_str().unwrap(), "--name", "svc", "--route", "/svc"]);
    assert!(stdout(&upd).contains("updated"), "{}", stdout(&upd));
    let r = s.http.post(format!("{}/svc", s.url)).body("ping").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ping");
    let st = stdout(&s.cli(&["status", "svc"]));
    assert!(st.contains("revisions:   2"), "{st}");

    // rm stops serving.
    let rm = s.cli(&["rm", "svc"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(s.get("/svc").await.0, 404);
    let rm2 = s.cli(&["rm", "svc"]);
    assert!(!rm2.status.success());
    assert!(stderr(&rm2).contains("function `default/svc` does not exist"), "{}", stderr(&rm2));
}

/// A hand-written WAT module is a WAGI function too: it prints CGI headers and a body with `fd_write`, and
/// a non-zero `proc_exit` is a failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_wat_module_serves_as_wagi() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let out = "Status: 201 Created\\nContent-Type: text/plain\\nX-From: wat\\n\\nhi from wat\\n";
    let wat = format!(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "{out}")
             (func (export "_start")
               (i32.store (i32.const 0) (i32.const 16))
               (i32.store (i32.const 4) (i32.const {len}))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
               (call $proc_exit (global.get $code)))
             (global $code i32 (i32.const {code})))"#,
        len = out.replace("\\n", "\n").len(),
        code = 0
    );
    let ok = wat::parse_str(&wat).unwrap();
    s.deploy_bytes("wat", ok, json!({"kind": "wagi", "routes": ["/wat"]})).await.unwrap();
    let r = s.http.get(format!("{}/wat", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-from"], "wat");
    assert_eq!(r.text().await.unwrap(), "hi from wat\n");

    let failing = wat::parse_str(wat.replace("(i32.const 0)))", "(i32.const 3)))")).unwrap();
    s.deploy_bytes("wat-fails", failing, json!({"kind": "wagi", "routes": ["/wat-fails"]})).await.unwrap();
    assert_eq!(s.get("/wat-fails").await.0, 500);
    let logs = s.logs("wat-fails").await;
    assert_eq!(logs[0]["error"], "WAGI module exited with code 3");
}
