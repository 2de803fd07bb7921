//! End-to-end: the key-value capability (wasi:keyvalue@0.2.0-draft) from a Python guest — round trip, an
//! atomic increment from 32 concurrent requests with no lost update, listing, the grant, and isolation
//! between apps.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn key_value_round_trip_atomic_increments_grants_and_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let grant = |app: &str, route: &str| json!({"app": app, "routes": [route], "key_value_stores": ["default"]});
    s.deploy("cart", "kv-py", grant("shop", "/kv")).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.url);

    // Round trip, listing, delete.
    let r = http.put(url("/kv/greeting")).body("hello, store").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    http.put(url("/kv/other")).body("x").send().await.unwrap();
    assert_eq!(s.get("/kv/greeting").await, (200, "hello, store".to_string()));
    assert_eq!(s.get("/kv/").await, (200, "greeting\nother\n".to_string()));
    http.delete(url("/kv/other")).send().await.unwrap();
    assert_eq!(s.get("/kv/other").await.0, 404);

    // 32 concurrent increments: every value 1..=32 handed out once.
    let mut all = Vec::new();
    for _ in 0..32 {
        let (http, u) = (http.clone(), url("/kv/hits"));
        all.push(tokio::spawn(async move { http.get(u).send().await.unwrap().text().await.unwrap() }));
    }
    let mut got: Vec<u64> = Vec::new();
    for h in all {
        let text = h.await.unwrap();
        got.push(text.trim().strip_prefix("hits: ").unwrap_or_else(|| panic!("{text}")).parse().unwrap());
    }
    got.sort();
    assert_eq!(got, (1..=32).collect::<Vec<u64>>(), "no lost update");

    // Another app opening `default` sees its own store, not shop's; a store it was not granted is refused.
    s.deploy("spy", "kv-py", grant("other-app", "/spy")).await;
    assert_eq!(s.get("/spy/greeting").await.0, 404);
    assert_eq!(s.get("/spy/").await, (200, String::new()));
    let (status, body) = s.get("/spy/greeting?store=secrets").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("access-denied") || body.contains("AccessDenied"), "{body}");
    // The same app's other function shares the app's store.
    s.deploy("cart-admin", "kv-py", grant("shop", "/admin")).await;
    assert_eq!(s.get("/admin/greeting").await, (200, "hello, store".to_string()));

    // `wisp kv` manages the same stores: what a guest wrote, the CLI reads, and the other way round.
    let kv = |args: &[&str]| {
        let mut all = vec!["kv", "--app", "shop"];
        all.extend_from_slice(args);
        s.cli(&all)
    };
    let out = kv(&["get", "greeting"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out), "hello, store");
    assert!(kv(&["set", "from the cli ü", "-d", "set by the CLI"]).status.success());
    assert_eq!(s.get("/kv/from%20the%20cli%20%C3%BC").await.1, "set by the CLI");
    // Keys may hold `/` (the data plane's path policy keeps `%2F` out of routed paths; the API takes them).
    assert!(kv(&["set", "a/b", "-d", "slashed"]).status.success());
    assert_eq!(common::stdout(&kv(&["get", "a/b"])), "slashed");
    let ls = common::stdout(&kv(&["ls"]));
    assert_eq!(ls, "a/b\nfrom the cli ü\ngreeting\nhits\n");
    assert!(kv(&["rm", "a/b"]).status.success());
    let out = kv(&["get", "a/b"]);
    assert!(!out.status.success() && common::stderr(&out).contains("no key"), "{}", common::stderr(&out));
    let out = s.cli(&["kv", "--app", "other-app", "get", "greeting"]);
    assert!(!out.status.success(), "other-app has no greeting");
    let out = s.cli(&["kv", "get", "greeting"]);
    assert!(common::stderr(&out).contains("--app APP"), "{}", common::stderr(&out));

    // No grant: the import is refused at deploy with the grant to add.
    let bytes = std::fs::read(common::guest("kv-py")).unwrap();
    let err = s.deploy_bytes("nogrant", bytes, json!({"routes": ["/nogrant"]})).await.unwrap_err();
    assert_eq!(err.0, 400, "{err:?}");
    assert!(
        err.1.contains(r#"imports `wasi:keyvalue/store@0.2.0-draft`; add `key_value_stores = ["default"]`"#),
        "{err:?}"
    );

    // The data is durable across a restart.
    drop(http);
    let mut s = s;
    s.stop();
    let s = Server::start(&dir.path().join("data"));
    assert_eq!(s.get("/kv/greeting").await, (200, "hello, store".to_string()));
    assert_eq!(s.get("/kv/hits").await, (200, "hits: 33\n".to_string()));
}

/// The same capability on the machine's Redis (`[key_value] backend = "redis"`): data lands in Redis under
/// the configured prefix, increments stay atomic, and a Redis backend without a URL is refused at start.
#[tokio::test(flavor = "multi_thread")]
async fn key_value_on_redis() {
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let prefix = format!("wisp-test-{}-{nanos}:", std::process::id());
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("[key_value]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"{prefix}\"\n"),
    )
    .unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("cart", "kv-py", json!({"app": "shop", "routes": ["/kv"], "key_value_stores": ["default"]})).await;
    let http = reqwest::Client::new();
    let r = http.put(format!("{}/kv/greeting", s.url)).body("hello, redis").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/kv/greeting").await, (200, "hello, redis".to_string()));
    let redis = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(redis(&["HGET", &format!("{prefix}default/app/shop/default/greeting"), "v"]), "hello, redis");
    let mut all = Vec::new();
    for _ in 0..16 {
        let (http, u) = (http.clone(), format!("{}/kv/hits", s.url));
        all.push(tokio::spawn(async move { http.get(u).send().await.unwrap().text().await.unwrap() }));
    }
    let mut got: Vec<u64> = Vec::new();
    for h in all {
        got.push(h.await.unwrap().trim().strip_prefix("hits: ").unwrap().parse().unwrap());
    }
    got.sort();
    assert_eq!(got, (1..=16).collect::<Vec<u64>>());
    assert_eq!(s.get("/kv/").await, (200, "greeting\nhits\n".to_string()));
    http.delete(format!("{}/kv/greeting", s.url)).send().await.unwrap();
    assert_eq!(s.get("/kv/greeting").await.0, 404);
    redis(&["DEL", &format!("{prefix}default/app/shop/default/hits")]);

    // A Redis backend without a URL: `wisp up` says what to add.
    std::fs::write(&config, "[key_value]\nbackend = \"redis\"\n").unwrap();
    let out = std::process::Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key_value.backend = \"redis\" needs key_value.url"));
}

/// A Spin runtime-config.toml naming Redis for its stores (`[key_value_store.default] type = "redis"`) puts
/// the node's key-value data there; a part wisp cannot honour (a `path`) stops `wisp up` with what to change.
#[tokio::test(flavor = "multi_thread")]
async fn a_spin_runtime_config_chooses_the_key_value_backend() {
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let app = format!("rc{}-{nanos}", std::process::id());
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n\n[sqlite_database.default]\ntype = \"spin\"\n",
    )
    .unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("cart", "kv-py", json!({"app": app, "routes": ["/kv"], "key_value_stores": ["default"]})).await;
    let r = reqwest::Client::new().put(format!("{}/kv/greeting", s.url)).body("from spin's config").send().await;
    assert_eq!(r.unwrap().status(), 200);
    let key = format!("wisp:default/app/{app}/default/greeting");
    let out = std::process::Command::new("redis-cli").args(["HGET", &key, "v"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from spin's config");
    std::process::Command::new("redis-cli").args(["DEL", &key]).output().unwrap();

    std::fs::write(&config, "[key_value_store.default]\ntype = \"spin\"\npath = \".spin/kv.db\"\n").unwrap();
    let out = std::process::Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[key_value_store.default] path = \".spin/kv.db\"") && err.contains("remove `path`"), "{err}");
}
