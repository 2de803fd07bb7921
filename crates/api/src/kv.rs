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

/// Keys per listing page.
const PAGE: usize = 1000;

#[derive(Deserialize)]
pub(crate) struct Cursor {
    cursor: Option<u64>,
}

fn scope(api: &Api, ns: &str, owner: &str, name: &str, store: &str) -> ApiResult<String> {
    let bad = |what: &str, e: String| ApiError::new(ErrorClass::InvalidInput, format!("{what}: {e}"));
    Name::new(ns).map_err(|e| bad("namespace", e.to_string()))?;
    Name::new(name).map_err(|e| bad(owner, e.to_string()))?;
    wisp_core::kv::check_grant(&[store.to_string()]).map_err(|e| bad("store", e))?;
    if api.kv.is_none() {
        return Err(ApiError::new(ErrorClass::Unavailable, "this node has no key-value backend"));
    }
    Ok(match owner {
        "app" => wisp_core::kv::scope(ns, Some(name), "", store),
        _ => wisp_core::kv::scope(ns, None, name, store),
    })
}

fn backend(api: &Api) -> &dyn wisp_store::guest_kv::KvBackend {
    api.kv.as_deref().expect("checked by scope()")
}

fn check_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.len() > wisp_core::kv::MAX_KEY_BYTES {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            format!("a key is 1 to {} bytes; this one is {}", wisp_core::kv::MAX_KEY_BYTES, key.len()),
        ));
    }
    Ok(())
}

async fn list(api: &Api, scope: String, cursor: Option<u64>) -> ApiResult<Json<serde_json::Value>> {
    let start = cursor.unwrap_or(0);
    let mut keys = backend(api).keys(&scope, start, PAGE + 1).await?;
    let more = keys.len() > PAGE;
    keys.truncate(PAGE);
    let next = more.then_some(start + keys.len() as u64);
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
    if body.len() > wisp_core::kv::MAX_VALUE_BYTES {
        return Err(ApiError::new(
            ErrorClass::PayloadTooLarge,
            format!("the value is {} bytes; values are at most {}", body.len(), wisp_core::kv::MAX_VALUE_BYTES),
        ));
    }
    backend(api).set(&scope, &key, body.to_vec()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(api: &Api, scope: String, key: String) -> ApiResult<StatusCode> {
    check_key(&key)?;
    backend(api).delete(&scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! owner_handlers {
    ($owner:literal, $list:ident, $get:ident, $put:ident, $delete:ident) => {
        pub(crate) async fn $list(
            State(api): State<Arc<Api>>,
            Path((ns, name, store)): Path<(String, String, String)>,
            Query(c): Query<Cursor>,
        ) -> ApiResult<Json<serde_json::Value>> {
            let scope = scope(&api, &ns, $owner, &name, &store)?;
            list(&api, scope, c.cursor).await
        }

        pub(crate) async fn $get(
            State(api): State<Arc<Api>>,
            Path((ns, name, store, key)): Path<(String, String, String, String)>,
        ) -> ApiResult<Response> {
            let scope = scope(&api, &ns, $owner, &name, &store)?;
            get(&api, scope, key).await
        }

        pub(crate) async fn $put(
            State(api): State<Arc<Api>>,
            Path((ns, name, store, key)): Path<(String, String, String, String)>,
            body: Bytes,
        ) -> ApiResult<StatusCode> {
            let scope = scope(&api, &ns, $owner, &name, &store)?;
            put(&api, scope, key, body).await
        }

        pub(crate) async fn $delete(
            State(api): State<Arc<Api>>,
            Path((ns, name, store, key)): Path<(String, String, String, String)>,
        ) -> ApiResult<StatusCode> {
            let scope = scope(&api, &ns, $owner, &name, &store)?;
            delete(&api, scope, key).await
        }
    };
}

owner_handlers!("app", app_list, app_get, app_put, app_delete);
owner_handlers!("function", fn_list, fn_get, fn_put, fn_delete);
