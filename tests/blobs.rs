//! End-to-end: the blob capability (wasi:blobstore@0.2.0-draft) from a Python guest that streams objects
//! both ways — round trip, list/exists/delete, traversal-looking and refused names, grants (at deploy and
//! per container), isolation between apps, `wisp blob` (streamed, names with `/` and spaces), the size
//! quotas, durability across a restart, and a 50 MB object through a guest whose memory limit is below it
//! while the node's peak resident memory stays well under the object's size.

mod common;

use common::{Server, stderr, stdout};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

fn grant(app: &str, route: &str) -> serde_json::Value {
    json!({"app": app, "routes": [route], "blob_containers": ["default", "uploads"]})
}

/// Every file under `dir` whose name is `name`.
fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                found.push(p);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_round_trip_names_grants_isolation_cli_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("files", "blob-py", grant("docs", "/files")).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.url);
    let put = |p: &str, body: &'static str| {
        let (http, u) = (http.clone(), url(p));
        async move {
            let r = http.put(u).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // Round trip, exists, info, listing, delete. Each invocation's record counts its blob operations and the
    // object bytes its streams moved: open the container, start the upload, commit it; open, look the
    // object up, open it for reading.
    assert_eq!(put("/files/hello", "hello, blobs").await, (200, "stored 12 bytes\n".into()));
    let rec = s.logs("files").await.last().cloned().unwrap();
    assert_eq!(rec["services"], json!({"blobs": {"ops": 3, "bytes": 12}}), "{rec}");
    assert_eq!(s.get("/files/hello").await, (200, "hello, blobs".into()));
    let rec = s.logs("files").await.last().cloned().unwrap();
    assert_eq!(rec["services"], json!({"blobs": {"ops": 3, "bytes": 12}}), "{rec}");
    assert_eq!(s.get("/files/hello?exists").await, (200, "true".into()));
    assert_eq!(s.get("/files/nothing?exists").await, (200, "false".into()));
    assert_eq!(s.get("/files/hello?info").await, (200, "12 default".into()));
    assert_eq!(s.get("/files/nothing").await.0, 404);
    assert_eq!(put("/files/other", "x").await.0, 200);
    assert_eq!(put("/files/empty", "").await, (200, "stored 0 bytes\n".into()));
    assert_eq!(s.get("/files/empty").await, (200, String::new()));
    assert_eq!(s.get("/files/").await, (200, "empty\nhello\nother\n".into()));
    assert_eq!(http.delete(url("/files/other")).send().await.unwrap().status(), 200);
    assert_eq!(s.get("/files/other?exists").await, (200, "false".into()));
    // consume-sync answers small values and refuses big ones, saying to stream; an instance holds at most 16
    // values open at once.
    assert_eq!(s.get("/files/hello?sync").await, (200, "hello, blobs".into()));
    let five_mb = http.put(url("/files/five")).body(vec![5u8; 5 << 20]).send().await.unwrap();
    assert_eq!(five_mb.status(), 200);
    let (status, body) = s.get("/files/five?sync").await;
    assert!(status == 500 && body.contains("use incoming-value-consume-async to stream it"), "{status} {body}");
    assert_eq!(s.get("/files/hello?hold=16").await, (200, "held 16".into()));
    let (status, body) = s.get("/files/hello?hold=17").await;
    assert!(status == 500 && body.contains("holds 16 blob values open, the most at once"), "{status} {body}");
    assert_eq!(http.delete(url("/files/five")).send().await.unwrap().status(), 200);
    // Another granted container is a different set of objects.
    assert_eq!(put("/files/hello?container=uploads", "in uploads").await.0, 200);
    assert_eq!(s.get("/files/hello?container=uploads").await.1, "in uploads");
    assert_eq!(s.get("/files/hello").await.1, "hello, blobs");

    // Names are data: traversal-looking names are plain names (stored and read back, no file of that name
    // anywhere); NUL and over-long names are refused with a clear error.
    assert_eq!(put("/files/x?key=..%2F..%2Fescaped", "not a path").await.0, 200);
    assert_eq!(s.get("/files/x?key=..%2F..%2Fescaped").await, (200, "not a path".into()));
    assert_eq!(put("/files/x?key=%2Fetc%2Fhostname", "mine").await.0, 200);
    assert_eq!(s.get("/files/x?key=%2Fetc%2Fhostname").await, (200, "mine".into()));
    assert!(files_named(dir.path(), "escaped").is_empty());
    let (status, body) = put("/files/x?key=a%00b", "x").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("NUL"), "{body}");
    let long = format!("/files/x?key={}", "k".repeat(1025));
    let (status, body) = put(&long, "x").await;
    assert!(status == 500 && body.contains("at most 1024 bytes"), "{status} {body}");

    // A container outside the grant: access denied, naming the grant.
    let (status, body) = s.get("/files/hello?container=secrets").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("access denied") && body.contains("blob_containers"), "{body}");
    assert!(body.contains(r#"["default", "uploads"]"#), "{body}");

    // Isolation: another app running the same code with the same container names sees none of docs'
    // objects, however it names them; the same app's other function shares them.
    s.deploy("spy", "blob-py", grant("other-app", "/spy")).await;
    assert_eq!(s.get("/spy/hello").await.0, 404);
    assert_eq!(s.get("/spy/").await, (200, String::new()));
    assert_eq!(s.get("/spy/x?key=..%2Fdocs%2Fdefault%2Fhello").await.0, 404);
    assert_eq!(s.get("/spy/hello?container=uploads").await.0, 404);
    assert_eq!(s.get("/spy/hello?container=..%2F..%2Fapp%2Fdocs%2Fdefault").await.0, 403);
    s.deploy("files-admin", "blob-py", grant("docs", "/admin")).await;
    assert_eq!(s.get("/admin/hello").await, (200, "hello, blobs".into()));

    // `wisp blob` manages the same containers, streaming: names with `/` and spaces, files both ways.
    let blob = |args: &[&str]| {
        let mut all = vec!["blob", "--app", "docs"];
        all.extend_from_slice(args);
        s.cli(&all)
    };
    let out = blob(&["get", "hello"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello, blobs");
    let out = blob(&["put", "dir/with space/ü.txt", "-d", "from the cli"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/files/x?key=dir%2Fwith%20space%2F%C3%BC.txt").await.1, "from the cli");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &big).unwrap();
    let out = blob(&["put", "a/b/big.bin", "--file", src.to_str().unwrap()]);
    assert!(out.status.success() && stderr(&out).contains("3000000 bytes"), "{}", stderr(&out));
    let back = dir.path().join("back.bin");
    assert!(blob(&["get", "a/b/big.bin", "--file", back.to_str().unwrap()]).status.success());
    assert!(std::fs::read(&back).unwrap() == big, "the file came back unchanged");
    assert_eq!(stdout(&blob(&["ls", "--prefix", "a/"])), "a/b/big.bin\n");
    let ls = stdout(&blob(&["ls"]));
    assert_eq!(ls, "../../escaped\n/etc/hostname\na/b/big.bin\ndir/with space/ü.txt\nempty\nhello\n");
    // The API lists a page at a time: `next` is where the following page starts.
    let page = |q: &str| {
        let req = s.api(reqwest::Method::GET, &format!("/_wisp/v1/namespaces/default/apps/docs/blobs/default?{q}"));
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let first = page("limit=2").await;
    assert_eq!(first["objects"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["next"], "/etc/hostname", "{first}");
    let second = page("limit=2&after=%2Fetc%2Fhostname&prefix=a%2F").await;
    assert_eq!(second["objects"][0]["name"], "a/b/big.bin", "{second}");
    assert_eq!(second["objects"][0]["size"], 3_000_000, "{second}");
    assert!(second["next"].is_null(), "{second}");
    let long_ls = stdout(&blob(&["ls", "-l", "--prefix", "hel"]));
    assert!(long_ls.trim_start().starts_with("12 ") && long_ls.trim_end().ends_with(" hello"), "{long_ls}");
    let out = blob(&["put", "../../cli-escaped", "-d", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(files_named(dir.path(), "cli-escaped").is_empty());
    assert_eq!(stdout(&blob(&["get", "../../cli-escaped"])), "x");
    assert!(blob(&["rm", "dir/with space/ü.txt"]).status.success());
    let out = blob(&["get", "dir/with space/ü.txt"]);
    assert!(!out.status.success() && stderr(&out).contains("no object"), "{}", stderr(&out));
    let out = blob(&["rm", "dir/with space/ü.txt"]);
    assert!(!out.status.success() && stderr(&out).contains("no object"), "{}", stderr(&out));
    let out = s.cli(&["blob", "--app", "other-app", "get", "hello"]);
    assert!(!out.status.success(), "other-app has no hello");
    let out = s.cli(&["blob", "get", "hello"]);
    assert!(stderr(&out).contains("--app APP"), "{}", stderr(&out));

    // No grant: the import is refused at deploy with the grant to add.
    let bytes = std::fs::read(common::guest("blob-py")).unwrap();
    let err = s.deploy_bytes("nogrant", bytes, json!({"routes": ["/nogrant"]})).await.unwrap_err();
    assert_eq!(err.0, 400, "{err:?}");
    assert!(err.1.contains("imports `wasi:blobstore/"), "{err:?}");
    assert!(err.1.contains(r#"add `blob_containers = ["default"]`"#), "{err:?}");
    let out = s.cli(&[
        "deploy",
        common::guest("blob-py").to_str().unwrap(),
        "--name",
        "flagged",
        "--blob-container",
        "default",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/flagged/hello").await.0, 404, "a function of its own has containers of its own");

    // Durable across a restart.
    drop(http);
    let mut s = s;
    s.stop();
    let s = Server::start(&dir.path().join("data"));
    assert_eq!(s.get("/files/hello").await, (200, "hello, blobs".into()));
    assert_eq!(s.get("/files/x?key=..%2F..%2Fescaped").await, (200, "not a path".into()));
    let out = s.cli(&["blob", "--app", "docs", "get", "a/b/big.bin"]);
    assert!(out.status.success() && out.stdout == big);
}

/// Resets a process's peak resident memory to its current resident memory (`clear_refs` 5, Linux 4.0+), so
/// `VmHWM` measures from now on.
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// Peak resident memory of a process, KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_megabytes_stream_through_a_guest_with_bounded_memory() {
    const SIZE: usize = 50 << 20;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // The guest's memory limit is below the object's size: it cannot hold the object.
    let spec = json!({"app": "media", "routes": ["/media"], "blob_containers": ["default"],
                      "limits": {"memory_mb": 40, "timeout_ms": 120000}});
    s.deploy("media", "blob-py", spec).await;
    let http = reqwest::Client::new();
    let url = format!("{}/media/big", s.url);
    // Warm up the path (an instance, a small object both ways) so the baseline includes it.
    let r = http.put(&url).body(vec![1u8; 256 << 10]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http.get(&url).send().await.unwrap().bytes().await.unwrap().len(), 256 << 10);
    let mut data = vec![0u8; SIZE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let want = Sha256::digest(&data);
    // The peak from here on: deploying (compiling an 18 MB component) peaked far higher than serving does.
    reset_peak_rss(s.pid());
    let before = peak_rss_kib(s.pid());
    let r = http.put(&url).body(data).send().await.unwrap();
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!((status.as_u16(), text.as_str()), (200, format!("stored {SIZE} bytes\n").as_str()));
    let mut r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut hash = Sha256::new();
    let mut got = 0;
    while let Some(chunk) = r.chunk().await.unwrap() {
        got += chunk.len();
        hash.update(&chunk);
    }
    assert_eq!(got, SIZE);
    assert_eq!(hash.finalize(), want, "the object came back unchanged");

    let after = peak_rss_kib(s.pid());
    let grown_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("peak RSS {before} KiB before, {after} KiB after: +{grown_mib:.1} MiB for a 50 MiB object");
    assert!(grown_mib < 20.0, "peak RSS grew by {grown_mib:.1} MiB moving a 50 MiB object");
}

#[tokio::test(flavor = "multi_thread")]
async fn size_quotas_name_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[blobstore]\nmax_object_mb = 1\nmax_app_mb = 2\n").unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("q", "blob-py", json!({"app": "quota", "routes": ["/q"], "blob_containers": ["default"]})).await;
    let http = reqwest::Client::new();
    let put = |name: &str, len: usize| {
        let (http, u) = (http.clone(), format!("{}/q/{name}", s.url));
        async move {
            let r = http.put(u).body(vec![7u8; len]).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = put("too-big", 1_500_000).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 1 MiB per object (blobstore.max_object_mb)"), "{body}");
    assert_eq!(s.get("/q/too-big?exists").await.1, "false");
    assert_eq!(put("a", 900_000).await.0, 200);
    assert_eq!(put("b", 900_000).await.0, 200);
    let (status, body) = put("c", 900_000).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 2 MiB per app (blobstore.max_app_mb)"), "{body}");
    assert_eq!(http.delete(format!("{}/q/a", s.url)).send().await.unwrap().status(), 200);
    assert_eq!(put("c", 900_000).await.0, 200, "deleting made room");
    // The API enforces the same limits, and answers why even while the client is still sending (it reads
    // what follows a refusal, up to a bound, instead of closing on unread bytes: that would reset the
    // connection before the answer arrives).
    let src = dir.path().join("big.bin");
    std::fs::write(&src, vec![0u8; 6_000_000]).unwrap();
    let out = s.cli(&["blob", "--app", "quota", "put", "big", "--file", src.to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("blobstore.max_object_mb"), "{}", stderr(&out));

    // Out-of-range and unknown keys stop `wisp up` with the key named.
    for (text, want) in [
        ("[blobstore]\nmax_object_mb = 0\n", "blobstore.max_object_mb = 0 is out of range"),
        ("[blobstore]\nmax_total_mb = 5\n", "unknown field `max_total_mb`"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(common::wisp_bin())
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data2"))
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(want), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
