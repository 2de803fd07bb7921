//! Managing guests' blobs over the API (what `wisp blob` uses): the containers a function granted
//! `blob_containers` uses, addressed by the scope they live in, as for key-value data. Bodies stream both
//! ways: an upload is written to the backend's staging as it arrives and becomes the object once complete; a
//! download is read from the object as the client takes it. Neither is held in memory.
//!
//! | method | path (under `/_wisp/v1/namespaces/{ns}/`) | what |
//! |---|---|---|
//! | GET | `apps/{app}/blobs/{container}[?prefix=P&after=NAME&limit=N]` | up to `limit` (default and most 1000) objects in name order → `{objects: [{name, size, created_at_ms}], next}` (`next`: pass as `after` for the next page; absent on the last) |
//! | GET, HEAD | `apps/{app}/blobs/{container}/{name}` | the object's bytes (404 if absent) |
//! | PUT | `apps/{app}/blobs/{container}/{name}` | stores the body as the object (creating the container) → 201 `{name, size}`; 413 past a size limit |
//! | DELETE | `apps/{app}/blobs/{container}/{name}` | deletes the object (404 if absent) |
//! | (same) | `functions/{fn}/blobs/{container}…` | the containers of a function deployed on its own |
//!
//! `{name}` is the rest of the path, percent-decoded: `%2F` is a `/` inside the name.

use crate::kv::{data_scope, owner};
use crate::{Api, ApiError, ApiResult};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::Deserialize;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wisp_core::ErrorClass;
use wisp_store::guest_blob::{BlobBackend, BlobError, PAGE_OBJECTS};

/// Bytes read from an object per chunk of a download's body.
const CHUNK: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let class = match &e {
            BlobError::NoContainer(_) | BlobError::NotFound(_) => ErrorClass::NotFound,
            BlobError::TooLarge(_) => ErrorClass::PayloadTooLarge,
            BlobError::Invalid(_) => ErrorClass::InvalidInput,
            BlobError::Backend(_) => {
                tracing::error!(error = %e, "blob backend error in control API");
                return ApiError::new(ErrorClass::Internal, "internal error; see the server log");
            }
        };
        ApiError::new(class, e.to_string())
    }
}

fn backend(api: &Api) -> ApiResult<&Arc<dyn BlobBackend>> {
    api.blobs.as_ref().ok_or_else(|| ApiError::new(ErrorClass::Unavailable, "this node has no blob backend"))
}

fn scope(ns: &str, owner: &str, name: &str, container: &str) -> ApiResult<String> {
    data_scope(ns, owner, name, "container", container)
}

fn check_name(name: &str) -> ApiResult<()> {
    wisp_core::blob::check_name(name).map_err(|e| ApiError::new(ErrorClass::InvalidInput, e))
}

pub(crate) async fn list<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, container)): Path<(String, String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = scope(&ns, owner::<APP>(), &name, &container)?;
    let limit = q.limit.unwrap_or(PAGE_OBJECTS).clamp(1, PAGE_OBJECTS);
    let page = backend(&api)?.list(&scope, &q.prefix, q.after.as_deref(), limit).await?;
    let next = (page.len() == limit).then(|| page.last().map(|o| o.name.clone())).flatten();
    let objects: Vec<serde_json::Value> = page
        .into_iter()
        .map(|o| serde_json::json!({ "name": o.name, "size": o.size, "created_at_ms": o.created_at_ms }))
        .collect();
    Ok(Json(serde_json::json!({ "objects": objects, "next": next })))
}

pub(crate) async fn get<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, container, key)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let scope = scope(&ns, owner::<APP>(), &name, &container)?;
    check_name(&key)?;
    let Some(d) = backend(&api)?.download(&scope, &key, 0, None).await? else {
        return Err(ApiError::new(ErrorClass::NotFound, format!("no object {key:?} in container {container:?}")));
    };
    let chunks = futures::stream::unfold(Some(d.reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = BytesMut::with_capacity(CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<Bytes, std::io::Error>(buf.freeze()), Some(reader))),
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok((
        StatusCode::OK,
        [
            (http::header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (http::header::CONTENT_LENGTH, d.len.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

pub(crate) async fn put<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, container, key)): Path<(String, String, String, String)>,
    mut body: Body,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let stored = store(&api, owner::<APP>(), (&ns, &name, &container, &key), &mut body).await;
    if stored.is_err() {
        linger(&mut body).await;
    }
    let info = stored?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "name": info.name, "size": info.size }))))
}

/// Streams `body` into the object `key` of a container (created if need be).
async fn store(
    api: &Api,
    owner: &str,
    (ns, name, container, key): (&str, &str, &str, &str),
    body: &mut Body,
) -> ApiResult<wisp_store::guest_blob::ObjectInfo> {
    let scope = scope(ns, owner, name, container)?;
    check_name(key)?;
    let backend = backend(api)?;
    backend.create_container(&scope).await?;
    let mut upload = backend.upload().await?;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("reading the request body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            upload.write_all(&data).await.map_err(BlobError::from_io)?;
        }
    }
    upload.flush().await.map_err(BlobError::from_io)?;
    Ok(upload.commit(&scope, key).await?)
}

/// How much of a refused upload's remaining body is read (and dropped) before the answer, and for how long.
const LINGER_BYTES: usize = 16 << 20;
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads (and drops) what is left of a refused upload, within [`LINGER_BYTES`] and [`LINGER`]: a client
/// still sending when the connection closes on unread bytes gets a reset instead of the answer saying why.
async fn linger(body: &mut Body) {
    let _ = tokio::time::timeout(LINGER, async {
        let mut read = 0;
        while read < LINGER_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                _ => return,
            }
        }
    })
    .await;
}

pub(crate) async fn delete<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, container, key)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let scope = scope(&ns, owner::<APP>(), &name, &container)?;
    check_name(&key)?;
    if backend(&api)?.delete(&scope, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorClass::NotFound, format!("no object {key:?} in container {container:?}")))
    }
}
