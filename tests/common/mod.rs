//! End-to-end harness: runs the real `wisp` binary on 127.0.0.1:0 with a temporary data directory.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub fn wisp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wisp")
}

/// A built guest from `target/guests` (made by `scripts/build-guests.sh`).
pub fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("WISP_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guests"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.exists(), "guest {} is missing: run scripts/build-guests.sh first", p.display());
    p
}

pub struct Server {
    child: Option<Child>,
    /// The data plane (functions; the API too unless it has a listener of its own).
    pub url: String,
    /// The control API's own listener (`--api-listen`), if any.
    pub api_url: Option<String>,
    /// The web console's URL, as `wisp up` printed it.
    pub console_url: Option<String>,
    pub data: PathBuf,
    pub token: String,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `wisp up` on a free port with `data` as its data directory.
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.with_extension("log")).unwrap();
        let mut child = Command::new(wisp_bin())
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("WISP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn wisp up");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut api_url = None;
        let mut console_url = None;
        let url = loop {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("console: ") {
                        console_url = rest.split_whitespace().next().map(str::to_string);
                    }
                    if let Some(rest) = line.strip_prefix("wisp API listening on ") {
                        api_url = Some(rest.trim().to_string());
                    }
                    if let Some(rest) = line.strip_prefix("wisp listening on ") {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
                    panic!("wisp up did not start ({e}); its log:\n{log}");
                }
            }
        };
        let token = std::fs::read_to_string(data.join("api-token")).unwrap().trim().to_string();
        Server {
            child: Some(child),
            url,
            api_url,
            console_url,
            data: data.to_path_buf(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait for exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }

    /// Waits for exit after a signal was sent some other way.
    pub fn stop_after_signal(&mut self) -> ExitStatus {
        self.child.take().expect("running").wait().unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(wisp_bin())
            .args(args)
            .env("WISP_URL", self.api_base())
            .env("WISP_DATA_DIR", &self.data)
            .env_remove("WISP_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run wisp")
    }

    /// Makes this harness's client open a new connection per request: for servers started with a short
    /// idle timeout, where a pooled keep-alive connection may be closed by the server just as it is reused.
    pub fn without_connection_reuse(mut self) -> Self {
        self.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        self
    }

    /// Where the control API answers.
    pub fn api_base(&self) -> &str {
        self.api_url.as_deref().unwrap_or(&self.url)
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.api_base())).bearer_auth(&self.token)
    }

    /// Uploads a file; returns its sha256.
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<String, (u16, String)> {
        let r = self.api(reqwest::Method::POST, "/_wisp/v1/artifacts").body(bytes).send().await.unwrap();
        let v = json_or_error(r).await?;
        Ok(v["sha256"].as_str().unwrap().to_string())
    }

    /// Deploys `bytes` as `name` with `spec` fields merged in (routes, kind, env, limits).
    pub async fn deploy_bytes(&self, name: &str, bytes: Vec<u8>, spec: Value) -> Result<Value, (u16, String)> {
        let sha = self.upload(bytes).await?;
        let mut body = json!({ "artifact": sha });
        for (k, v) in spec.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self
            .api(reqwest::Method::PUT, &format!("/_wisp/v1/namespaces/default/functions/{name}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        json_or_error(r).await
    }

    pub async fn deploy(&self, name: &str, guest_name: &str, spec: Value) -> Value {
        let bytes = std::fs::read(guest(guest_name)).unwrap();
        self.deploy_bytes(name, bytes, spec).await.unwrap_or_else(|e| panic!("deploy {name}: {e:?}"))
    }

    /// GET a routed path; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// GET an API path (`/_wisp/...`) with the token; its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.api(reqwest::Method::GET, path).send().await.unwrap().json().await.unwrap()
    }

    pub async fn status(&self) -> Value {
        self.get_json("/_wisp/v1/status").await
    }

    /// One function as the API shows it (live counters, mode in force, scaling).
    pub async fn function(&self, name: &str) -> Value {
        let path = format!("/_wisp/v1/namespaces/default/functions/{name}");
        self.get_json(&path).await["function"].clone()
    }

    /// Every function in the default namespace.
    pub async fn functions(&self) -> Value {
        self.get_json("/_wisp/v1/namespaces/default/functions").await
    }

    pub async fn logs(&self, name: &str) -> Vec<Value> {
        self.api(reqwest::Method::GET, &format!("/_wisp/v1/namespaces/default/functions/{name}/logs?limit=50"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Waits (bounded) until the function's live counters satisfy `pred`.
pub async fn until(s: &Server, name: &str, pred: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if pred(&s.function(name).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{name} never reached the expected state: {}", s.function(name).await);
}

pub fn get(s: &Server, path: &str) -> tokio::task::JoinHandle<u16> {
    let (http, url) = (s.http.clone(), format!("{}{path}", s.url));
    tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
}

/// A POST whose body the test controls: the echo guest keeps reading it, so the invocation stays in flight
/// until the sender is dropped. Returns the status and the echoed body.
pub fn held(s: &Server, path: &str) -> (tokio::task::JoinHandle<(u16, String)>, tokio::sync::mpsc::Sender<Vec<u8>>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx)) });
    let (http, url) = (s.http.clone(), format!("{}{path}", s.url));
    let task = tokio::spawn(async move {
        let r = http.post(url).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    });
    (task, tx)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The JSON body of a successful API answer, or (status, error message).
async fn json_or_error(r: reqwest::Response) -> Result<Value, (u16, String)> {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    if status >= 300 {
        let message = v["error"]["message"].as_str().unwrap_or_default();
        return Err((status, message.to_string()));
    }
    Ok(v)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A local HTTP server answering every request with `pong`; returns its port and a count of requests.
pub async fn pong_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::io::AsyncReadExt::read(&mut c, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tokio::io::AsyncWriteExt::write_all(
                    &mut c,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong",
                )
                .await;
            });
        }
    });
    (port, hits)
}
