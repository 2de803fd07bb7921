//! Managing guests' key-value data over the API (what `wisp kv` uses): the same stores a function granted
//! `key_value_stores` opens, addressed by the scope they live in — an app (`apps/{app}`) or, for a function
//! deployed without an app, the function (`functions/{name}`).
//!
//! | method | path (under `/_wisp/v1/namespaces/{ns}/`) | what |
//! |---|---|---|
//! | GET | `apps/{app}/kv/{store}[?cursor=N]` | up to 1000 keys → `{keys, cursor}` (cursor absent on the last page) |
//! | GET, PUT, DELETE | `apps/{app}/kv/{store}/{key}` | the value's bytes (404 if absent), set it (body), delete it |
//! | (same) | `functions/{name}/kv/{store}…` | the stores of a function deployed on its own |

use crate::{Api, ApiError, ApiResult};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use wisp_core::{ErrorClass, Name};

#[derive(Deserialize)]
pub(crate) struct Cursor {
    cursor: Option<u64>,
}

fn scope(api: &Api, ns: &str, owner: &str, name: &str, store: &str) -> ApiResult<String> {
    let scope = data_scope(ns, owner, name, "store", store)?;
    if api.kv.is_none() {
        return Err(ApiError::new(ErrorClass::Unavailable, "this node has no key-value backend"));
    }
    Ok(scope)
}

/// The scope of a labelled store or database (`what` names it in errors) of an app (`owner` = "app") or of
/// a function deployed on its own, with every part checked.
pub(crate) fn data_scope(ns: &str, owner: &str, name: &str, what: &str, label: &str) -> ApiResult<String> {
    check_owner(ns, owner, name)?;
    wisp_core::kv::check_labels(what, &[label.to_string()])
        .map_err(|e| ApiError::new(ErrorClass::InvalidInput, format!("{what}: {e}")))?;
    Ok(match owner {
        "app" => wisp_core::kv::scope(ns, Some(name), "", label),
        _ => wisp_core::kv::scope(ns, None, name, label),
    })
}

fn backend(api: &Api) -> &dyn wisp_store::guest_kv::KvBackend {
    api.kv.as_deref().expect("checked by scope()")
}

fn check_key(key: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(ApiError::new(ErrorClass::InvalidInput, "the key is empty: name it after the store"));
    }
    wisp_core::kv::check_key(key).map_err(|e| ApiError::new(ErrorClass::InvalidInput, e))
}

async fn list(api: &Api, scope: String, cursor: Option<u64>) -> ApiResult<Json<serde_json::Value>> {
    let (keys, next) = backend(api).page(&scope, cursor.unwrap_or(0)).await?;
    Ok(Json(serde_json::json!({ "keys": keys, "cursor": next })))
}

async fn get(api: &Api, scope: String, key: String) -> ApiResult<Response> {
    check_key(&key)?;
    match backend(api).get(&scope, &key).await? {
        Some(v) => {
            Ok((StatusCode::OK, [(http::header::CONTENT_TYPE, "application/octet-stream")], v.value).into_response())
        }
        None => Err(ApiError::new(ErrorClass::NotFound, format!("no key {key:?} in this store"))),
    }
}

async fn put(api: &Api, scope: String, key: String, body: Bytes) -> ApiResult<StatusCode> {
    check_key(&key)?;
    wisp_core::kv::check_value(body.len()).map_err(|e| ApiError::new(ErrorClass::PayloadTooLarge, e))?;
    backend(api).set(&scope, &key, body.to_vec()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(api: &Api, scope: String, key: String) -> ApiResult<StatusCode> {
    check_key(&key)?;
    backend(api).delete(&scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the namespace and the owner's name (`owner`: "app" or "function") of a data path.
pub(crate) fn check_owner(ns: &str, owner: &str, name: &str) -> ApiResult<()> {
    let bad = |what: &str, e: String| ApiError::new(ErrorClass::InvalidInput, format!("{what}: {e}"));
    Name::new(ns).map_err(|e| bad("namespace", e.to_string()))?;
    Name::new(name).map_err(|e| bad(owner, e.to_string()))?;
    Ok(())
}

/// Whose stores a path names: `APP` for `apps/{app}/kv/…`, else `functions/{name}/kv/…`.
pub(crate) fn owner<const APP: bool>() -> &'static str {
    if APP { "app" } else { "function" }
}

pub(crate) async fn list_keys<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, store)): Path<(String, String, String)>,
    Query(c): Query<Cursor>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = scope(&api, &ns, owner::<APP>(), &name, &store)?;
    list(&api, scope, c.cursor).await
}

pub(crate) async fn get_key<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, store, key)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let scope = scope(&api, &ns, owner::<APP>(), &name, &store)?;
    get(&api, scope, key).await
}

pub(crate) async fn put_key<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, store, key)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let scope = scope(&api, &ns, owner::<APP>(), &name, &store)?;
    put(&api, scope, key, body).await
}

pub(crate) async fn delete_key<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, store, key)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let scope = scope(&api, &ns, owner::<APP>(), &name, &store)?;
    delete(&api, scope, key).await
}
