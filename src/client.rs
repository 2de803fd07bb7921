//! The CLI's client for the control API.

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use wisp_api::ErrorBody;

use crate::Global;

/// An authenticated API client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    pub namespace: String,
}

impl Client {
    /// Builds a client from the global options: token from `--token`/`WISP_TOKEN`, else `<data-dir>/api-token`.
    pub fn new(g: &Global) -> anyhow::Result<Client> {
        let token = match &g.token {
            Some(t) => t.clone(),
            None => {
                let path = crate::wiring::token_path(&g.data_dir);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no API token: set WISP_TOKEN (or --token), or point --data-dir / WISP_DATA_DIR at the server's data directory (tried {})",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string()
            }
        };
        wisp_core::Name::new(g.namespace.as_str()).map_err(|e| anyhow::anyhow!("--namespace: {e}"))?;
        Ok(Client {
            http: reqwest::Client::builder().build()?,
            base: g.url.trim_end_matches('/').to_string(),
            token,
            namespace: g.namespace.clone(),
        })
    }

    /// `/_wisp/v1/namespaces/<ns>/functions[/<name>][<suffix>]`
    pub fn function_path(&self, name: Option<&str>, suffix: &str) -> String {
        match name {
            Some(n) => format!("/_wisp/v1/namespaces/{}/functions/{n}{suffix}", self.namespace),
            None => format!("/_wisp/v1/namespaces/{}/functions", self.namespace),
        }
    }

    /// A request to `path` with the token set.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// Sends, turning transport failures and API error bodies into readable errors.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow::anyhow!(
                    "cannot reach the wisp server at {} (is `wisp up` running? set --url / WISP_URL)",
                    self.base
                )
            } else {
                anyhow::anyhow!("request to {} failed: {e}", self.base)
            }
        })?;
        Ok(resp)
    }

    /// Sends and decodes a JSON answer, or fails with the API's error message.
    pub async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            bail!("{}", api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("unexpected answer from the server: {}", String::from_utf8_lossy(&bytes)))
    }
}

/// The message of an API error body, or the raw text.
pub fn api_error(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error.message,
        Err(_) => format!("server answered {status}: {}", String::from_utf8_lossy(body).trim()),
    }
}

/// "3m ago"-style age of a unix-ms timestamp.
pub fn ago(ms: u64) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// Prints rows as an aligned table.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
}
