//! End-to-end: the web console in a real headless Chromium, driven through WebDriver (chromedriver, started by
//! the test on a free loopback port). A person's path through it: the login screen refuses a wrong token with a
//! clear message and takes the right one; the deployed function is listed; its page shows the invocations the
//! test makes (by their ids) in the recent invocations and in the requests chart, with guest output shown as
//! text (never as markup); live logs show a new invocation as it finishes; scaling is changed from the form (and
//! a refused change says why); the usage page has the function's row. No page breaks its Content-Security-
//! Policy. Screenshots of each page are saved under `$CARGO_TARGET_TMPDIR/console-screenshots/`.

mod common;

use common::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the page may take to show what the test waits for (it refreshes every 5 s).
const DEADLINE: Duration = Duration::from_secs(60);

/// A chromedriver the test started; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    /// Kills chromedriver's process group: the browser it started too, even when the test failed before it
    /// could end the session.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

fn chromedriver(log: &Path) -> Driver {
    // A free loopback port: bound, read, released for chromedriver.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("chromedriver is missing: scripts/test.sh installs the apt packages chromium and chromium-driver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    driver
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1440,1000".into(),
        "--hide-scrollbars".into(),
        "--force-color-profile=srgb".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.push("--force-device-scale-factor=1".into());
    let mut options = json!({ "args": args });
    if Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("start a headless Chromium session")
}

struct Shots {
    dir: PathBuf,
    saved: Vec<PathBuf>,
}

impl Shots {
    /// Saves the page as `<name>.png`, from its top, the window as tall as the page (up to 2400 px) so nothing
    /// is cut.
    async fn take(&mut self, c: &Client, name: &str) {
        let js = |s: &'static str| async move { c.execute(s, vec![]).await.unwrap().as_u64().unwrap_or(0) as u32 };
        c.execute("window.scrollTo(0, 0); return true", vec![]).await.unwrap();
        let chrome = js("return window.outerHeight - window.innerHeight").await;
        let height = js("return document.documentElement.scrollHeight").await.clamp(900, 2400);
        c.set_window_size(1440, height + chrome).await.unwrap();
        let png = c.screenshot().await.unwrap();
        let path = self.dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        self.saved.push(path);
        c.set_window_size(1440, 1000).await.unwrap();
    }
}

/// Polls `script` (a function body returning a truthy value when the page shows what is wanted) until it holds,
/// or fails with what the page shows.
async fn wait(c: &Client, shots: &mut Shots, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let v = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return v;
        }
        if Instant::now() > deadline {
            shots.take(c, &format!("failed-{}", what.replace(' ', "-"))).await;
            let text = c.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
            panic!("the console never showed {what}; the page says:\n{}", text.as_str().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the element `css` selects. The pages re-render as they refresh, so an element found may be
/// replaced before it is read: that is retried (bounded), anything else fails.
async fn text(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await,
            Err(e) => Err(e),
        };
        match got {
            Ok(t) => return t,
            Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Clicks the element `css` selects (retried like [`text`]).
async fn click(c: &Client, css: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let done = match c.find(Locator::Css(css)).await {
            Ok(e) => e.click().await,
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Calls the function through its route; returns the invocation id.
async fn call(s: &Server, path: &str) -> String {
    let r = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string()
}

const SHOUT: &str = "<img src=x id=xss> shouted \u{1b}[31m";

#[tokio::test(flavor = "multi_thread")]
async fn a_person_logs_in_watches_a_function_and_reads_its_usage() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[pricing]\ncurrency = \"USD\"\nper_million_requests = 0.2\nper_gb_second = 0.0000166667\n\
         per_million_cpu_ms = 0.02\n[pricing.free]\nrequests = 3\n",
    )
    .unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("talk", "logs-c", json!({"routes": ["/talk"], "env": {"SHOUT": SHOUT}, "limits": {"memory_mb": 64}}))
        .await;
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"]})).await;

    let driver = chromedriver(&dir.path().join("chromedriver.log"));
    let c = browser(&driver, &dir.path().join("profile")).await;
    let mut shots = Shots { dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"), saved: vec![] };
    std::fs::create_dir_all(&shots.dir).unwrap();
    let console = format!("{}/_wisp/console", s.api_base());
    assert_eq!(s.console_url.as_deref(), Some(console.as_str()), "wisp up prints where the console is");

    // The page and its files come with the policy; the API without a token still refuses.
    let r = s.http.get(&console).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(s.http.get(format!("{}/_wisp/v1/status", s.api_base())).send().await.unwrap().status(), 401);

    c.goto(&console).await.unwrap();
    wait(&c, &mut shots, "the login screen", "return document.getElementById('token') !== null").await;
    // Every policy violation from here on is collected (hash navigation keeps this document).
    c.execute(
        "window.__violations = []; document.addEventListener('securitypolicyviolation', \
         (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI)); return true",
        vec![],
    )
    .await
    .unwrap();
    shots.take(&c, "login").await;

    // A wrong token: a clear refusal, still on the login screen.
    c.find(Locator::Css("#token")).await.unwrap().send_keys("not-the-token").await.unwrap();
    click(&c, "#login").await;
    wait(&c, &mut shots, "the wrong-token error", "return document.getElementById('login-error').innerText").await;
    let error = text(&c, "#login-error").await;
    assert!(error.contains("not accepted") && error.contains("wrong API token"), "{error}");
    shots.take(&c, "login-wrong-token").await;

    // The right one: the functions list, with both functions.
    let input = c.find(Locator::Css("#token")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&s.token).await.unwrap();
    click(&c, "#login").await;
    wait(&c, &mut shots, "the functions list", "return document.querySelector('tr[data-function=\"talk\"]') !== null")
        .await;
    let row = text(&c, "tr[data-function=\"talk\"]").await;
    assert!(row.contains("talk") && row.contains("Serving") && row.contains("/talk"), "{row}");
    assert!(c.find(Locator::Css("tr[data-function=\"hello\"]")).await.is_ok());
    assert_eq!(
        c.execute("return sessionStorage.getItem('wisp.console.token')", vec![]).await.unwrap(),
        json!(s.token),
        "the token stays in this tab's session storage"
    );
    shots.take(&c, "functions-deployed").await;

    // Its page: nothing yet; then the invocations the test makes, by id, in the list and in the chart.
    click(&c, "tr[data-function=\"talk\"] a").await;
    wait(&c, &mut shots, "the empty invocations list", "return document.querySelector('#invocations .empty') !== null")
        .await;
    const N: usize = 6;
    let mut ids = Vec::new();
    for _ in 0..N {
        ids.push(call(&s, "/talk").await);
    }
    let all_listed = format!(
        "return {ids:?}.every((id) => document.querySelector(`#invocations tr[data-id=\"${{id}}\"]`) !== null)"
    );
    wait(&c, &mut shots, "the new invocations", &all_listed).await;
    wait(
        &c,
        &mut shots,
        "the invocations in the requests chart",
        &format!(
            "const t = document.querySelector('#chart-requests .chart-total'); \
             return t && t.innerText === '{N} requests' && \
             document.querySelectorAll('#chart-requests svg .bar, #chart-requests svg path.line').length > 0"
        ),
    )
    .await;
    // Hovering the chart's latest bucket shows its rate.
    let tip = c
        .execute(
            "const r = document.querySelector('#chart-requests svg > rect').getBoundingClientRect(); \
             document.querySelector('#chart-requests svg > rect').dispatchEvent(new MouseEvent('mousemove', \
               { clientX: r.right - 1, clientY: r.top + r.height / 2, bubbles: true })); \
             const t = document.querySelector('#chart-requests .chart-tip'); \
             return getComputedStyle(t).display === 'block' ? t.innerText : ''",
            vec![],
        )
        .await
        .unwrap();
    assert!(tip.as_str().is_some_and(|t| t.contains("req/s")), "tooltip: {tip}");
    let stats = text(&c, "#stat-requests").await;
    assert!(stats.contains(&N.to_string()), "{stats}");
    // One invocation opened: its phases, and the guest's output as text, not markup.
    click(&c, &format!("#invocations tr[data-id=\"{}\"]", ids[0])).await;
    let detail = text(&c, "#invocations .inv-detail").await;
    assert!(detail.contains(&ids[0]) && detail.contains("Instantiate") && detail.contains("Handler"), "{detail}");
    assert!(detail.contains("stdout line from guest") && detail.contains("<img src=x id=xss> shouted"), "{detail}");
    assert!(detail.contains("\\u{1b}[31m"), "control characters shown as escapes: {detail}");
    assert_eq!(c.execute("return document.getElementById('xss')", vec![]).await.unwrap(), Value::Null);
    shots.take(&c, "function").await;

    // Live logs: following first, then a new invocation's output as it finishes.
    click(&c, "#tab-logs").await;
    wait(
        &c,
        &mut shots,
        "the live stream",
        "return document.getElementById('live-state').innerText.startsWith('Live')",
    )
    .await;
    let fresh = call(&s, "/talk").await;
    wait(
        &c,
        &mut shots,
        "the new invocation's log lines",
        &format!(
            "const e = document.querySelector('#logs .log-entry[data-id=\"{fresh}\"]'); \
             return e && e.innerText.includes('stdout line from guest') && e.innerText.includes('stderr line from guest')"
        ),
    )
    .await;
    shots.take(&c, "logs").await;

    // Scaling: a change is saved (and is what the API then answers); a refused one says why.
    click(&c, "#tab-scaling").await;
    wait(&c, &mut shots, "the scaling form", "return document.getElementById('scale-max_queue_depth') !== null").await;
    let depth = c.find(Locator::Css("#scale-max_queue_depth")).await.unwrap();
    depth.clear().await.unwrap();
    depth.send_keys("42").await.unwrap();
    click(&c, "#scaling-save").await;
    wait(
        &c,
        &mut shots,
        "the saved scaling",
        "return document.getElementById('scaling-result').innerText.includes('Scaling saved')",
    )
    .await;
    let scaling: Value = s.get_json("/_wisp/v1/namespaces/default/functions/talk/scaling").await;
    assert_eq!(scaling["max_queue_depth"], 42, "{scaling}");
    let per = c.find(Locator::Css("#scale-concurrency_per_instance")).await.unwrap();
    per.clear().await.unwrap();
    per.send_keys("2").await.unwrap();
    click(&c, "#scaling-save").await;
    wait(
        &c,
        &mut shots,
        "the refusal",
        "return document.getElementById('scaling-result').innerText.includes('refused')",
    )
    .await;
    let refusal = text(&c, "#scaling-result").await;
    assert!(refusal.contains("400") && refusal.contains("concurrency_per_instance"), "{refusal}");
    shots.take(&c, "scaling").await;

    click(&c, "#tab-revisions").await;
    wait(&c, &mut shots, "the revisions", "return document.body.innerText.includes('serving')").await;
    shots.take(&c, "revisions").await;

    // Usage and cost: the function's row counts every invocation.
    click(&c, "#nav-usage").await;
    wait(
        &c,
        &mut shots,
        "the function's usage row",
        &format!(
            "const r = document.querySelector('#usage-table tr[data-function=\"talk\"]'); \
             return r && r.children[2].innerText === '{}'",
            N + 1
        ),
    )
    .await;
    assert!(text(&c, "#usage-chart").await.contains("default/talk"));
    shots.take(&c, "usage").await;

    // Back on the list, the function's row counts them too.
    click(&c, "#nav-functions").await;
    wait(
        &c,
        &mut shots,
        "the requests in the functions list",
        &format!(
            "const r = document.querySelector('tr[data-function=\"talk\"]'); \
             return r && r.children[5].innerText === '{}' && r.querySelectorAll('svg.spark rect').length > 0",
            N + 1
        ),
    )
    .await;
    shots.take(&c, "functions").await;

    click(&c, "#nav-node").await;
    wait(&c, &mut shots, "the node page", "return document.querySelector('#node .stats') !== null").await;
    shots.take(&c, "node").await;

    // The function page again, in the dark theme (the sidebar's switch), for the eye.
    click(&c, "#theme").await;
    c.goto(&format!("{console}#/fn/default/talk")).await.unwrap();
    wait(
        &c,
        &mut shots,
        "the dark function page",
        "return document.documentElement.dataset.theme === 'dark' && \
         document.querySelectorAll('#invocations tr[data-id]').length > 0",
    )
    .await;
    shots.take(&c, "function-dark").await;

    // No page broke the Content-Security-Policy (hash navigation kept the one document).
    let violations = c.execute("return window.__violations", vec![]).await.unwrap();
    assert_eq!(violations, json!([]), "the pages broke their Content-Security-Policy");

    // Signing out forgets the token.
    click(&c, "#signout").await;
    wait(&c, &mut shots, "the login screen again", "return document.getElementById('token') !== null").await;
    assert_eq!(c.execute("return sessionStorage.getItem('wisp.console.token')", vec![]).await.unwrap(), Value::Null);

    c.close().await.unwrap();
    drop(driver);
    println!("{} screenshots in {}", shots.saved.len(), shots.dir.display());
}
