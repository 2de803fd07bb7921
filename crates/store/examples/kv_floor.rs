//! The storage floor for the key-value benchmark (bench/kv.py): get and set ops/s straight on the embedded
//! key-value backend from Rust, `CONCURRENCY` tasks for `SECONDS` each. No HTTP, no guest.
//!
//! usage: cargo run --release -p wisp-store --example kv_floor -- [SECONDS] [CONCURRENCY]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wisp_store::guest_kv::{EmbeddedKv, KvBackend};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let dir = tempfile::tempdir().expect("temp dir");
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedKv::open(&dir.path().join("kv.sqlite3")).expect("open"));
    let scope = "default/app/bench/default/";
    kv.set(scope, "k", b"a small value".to_vec()).await.expect("seed");
    for (op, label) in [(0, "get"), (1, "set")] {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (kv, done) = (kv.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    if op == 0 {
                        kv.get(scope, "k").await.expect("get");
                    } else {
                        kv.set(scope, "k", b"a small value".to_vec()).await.expect("set");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let t0 = Instant::now();
        for t in tasks {
            t.await.expect("task");
        }
        let n = done.load(Ordering::Relaxed);
        println!("kv-floor {label} {:.0}", n as f64 / t0.elapsed().as_secs_f64());
    }
}
