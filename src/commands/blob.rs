//! `wisp blob`: guests' blobs — the containers functions use with a `blob_containers` grant. Uploads and
//! downloads stream: a file of any size goes up and comes down without being held in memory.

use crate::Global;
use crate::client::{Client, api_error};
use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
    /// The app whose containers to use (a function deployed with a wisp.toml belongs to its app).
    #[arg(long, global = true, conflicts_with = "function")]
    app: Option<String>,
    /// The function whose containers to use (one deployed on its own, without an app).
    #[arg(long, global = true)]
    function: Option<String>,
    /// The container (a label of the functions' `blob_containers` grant).
    #[arg(long, global = true, default_value = wisp_core::blob::DEFAULT_CONTAINER)]
    container: String,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Store an object (creating the container): the bytes of --file (`-` reads standard input) or -d.
    Put {
        key: String,
        /// Upload this file (streamed; `-` for standard input).
        #[arg(long, short = 'f', conflicts_with = "data", required_unless_present = "data")]
        file: Option<PathBuf>,
        /// Upload this text.
        #[arg(long, short = 'd')]
        data: Option<String>,
    },
    /// Write an object's bytes to standard output, or to --file.
    Get {
        key: String,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
    },
    /// List the container's objects in name order, one name per line.
    Ls {
        /// Only names starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Print size (bytes) and time too.
        #[arg(long, short = 'l')]
        long: bool,
    },
    /// Delete an object.
    Rm { key: String },
}

/// An object name as one path segment: every byte but unreserved ones percent-encoded (`/` too, so the name
/// is one segment whatever it holds).
fn encode(key: &str) -> anyhow::Result<String> {
    if key == "." || key == ".." {
        bail!(
            "the object name {key:?} cannot be used over the API (a URL path segment of `.` or `..` names a directory); choose another name"
        );
    }
    Ok(key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect())
}

/// The bytes of `reader` as a request body, 64 KiB at a time.
fn body_of(reader: impl AsyncRead + Send + Unpin + 'static) -> reqwest::Body {
    let chunks = futures::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<Bytes, std::io::Error>(buf.freeze()), Some(reader))),
            Err(e) => Some((Err(e), None)),
        }
    });
    reqwest::Body::wrap_stream(chunks)
}

pub async fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let base = match (&a.app, &a.function) {
        (Some(app), _) => format!("/_wisp/v1/namespaces/{}/apps/{app}/blobs/{}", g.namespace, a.container),
        (None, Some(f)) => format!("/_wisp/v1/namespaces/{}/functions/{f}/blobs/{}", g.namespace, a.container),
        (None, None) => bail!("name the containers' owner: --app APP (from its wisp.toml) or --function NAME"),
    };
    match a.op {
        Op::Put { key, file, data } => {
            let body = match (file, data) {
                (_, Some(d)) => reqwest::Body::from(d),
                (Some(f), None) if f.as_os_str() == "-" => body_of(tokio::io::stdin()),
                (Some(f), None) => {
                    body_of(tokio::fs::File::open(&f).await.with_context(|| format!("opening {}", f.display()))?)
                }
                (None, None) => bail!("give the bytes to store: --file F or -d DATA"),
            };
            let path = format!("{base}/{}", encode(&key)?);
            let v: Value = client.json(client.request(Method::PUT, &path).body(body)).await?;
            eprintln!("stored {key:?} ({} bytes)", v["size"].as_u64().unwrap_or(0));
        }
        Op::Get { key, file } => {
            let path = format!("{base}/{}", encode(&key)?);
            let mut resp = client.send(client.request(Method::GET, &path)).await?;
            let status = resp.status();
            if !status.is_success() {
                let bytes = resp.bytes().await?;
                bail!("{}", api_error(status, &bytes));
            }
            match file {
                Some(f) => {
                    let mut out =
                        tokio::fs::File::create(&f).await.with_context(|| format!("creating {}", f.display()))?;
                    let copied = async {
                        while let Some(chunk) = resp.chunk().await? {
                            out.write_all(&chunk).await?;
                        }
                        out.flush().await?;
                        anyhow::Ok(())
                    }
                    .await;
                    if let Err(e) = copied {
                        let _ = tokio::fs::remove_file(&f).await;
                        return Err(e.context(format!("downloading {key:?} to {}", f.display())));
                    }
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    while let Some(chunk) = resp.chunk().await? {
                        out.write_all(&chunk)?;
                    }
                    out.flush()?;
                }
            }
        }
        Op::Ls { prefix, long } => {
            let mut after: Option<String> = None;
            loop {
                let mut req = client.request(Method::GET, &base).query(&[("prefix", prefix.as_str())]);
                if let Some(a) = &after {
                    req = req.query(&[("after", a.as_str())]);
                }
                let v: Value = client.json(req).await?;
                let mut out = std::io::stdout().lock();
                for o in v["objects"].as_array().into_iter().flatten() {
                    let name = o["name"].as_str().unwrap_or_default();
                    if long {
                        let at = crate::client::ago(o["created_at_ms"].as_u64().unwrap_or(0));
                        writeln!(out, "{:>12}  {at:>8}  {name}", o["size"].as_u64().unwrap_or(0))?;
                    } else {
                        writeln!(out, "{name}")?;
                    }
                }
                after = v["next"].as_str().map(str::to_string);
                if after.is_none() {
                    break;
                }
            }
        }
        Op::Rm { key } => {
            let path = format!("{base}/{}", encode(&key)?);
            let resp = client.send(client.request(Method::DELETE, &path)).await?;
            let status = resp.status();
            if !status.is_success() {
                let bytes = resp.bytes().await?;
                bail!("{}", api_error(status, &bytes));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
