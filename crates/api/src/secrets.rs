//! App secrets over the API (what `wisp secret` uses). A value goes in and never comes out: listing answers
//! names and times; the value reaches only the functions of the app whose `secrets` grant names it.
//!
//! | method | path (under `/_wisp/v1/namespaces/{ns}/`) | what |
//! |---|---|---|
//! | GET | `apps/{app}/secrets` | `{secrets: [{name, updated_at_ms}]}` |
//! | PUT | `apps/{app}/secrets/{name}` | sets it (body: the value, UTF-8, at most 64 KiB) → 204; the app's granted functions get it at once |
//! | DELETE | `apps/{app}/secrets/{name}` | removes it → 204 (404 if absent); refused (409) while a function grants it |

use crate::{Api, ApiError, ApiResult};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;
use wisp_core::{ErrorClass, FunctionSpec};
use wisp_store::secrets::{MAX_SECRET_BYTES, Secrets};

fn store(api: &Api) -> ApiResult<&Arc<Secrets>> {
    api.secrets.as_ref().ok_or_else(|| ApiError::new(ErrorClass::Unavailable, "this node has no secrets store"))
}

fn check(ns: &str, app: &str, name: Option<&str>) -> ApiResult<()> {
    crate::kv::check_owner(ns, "app", app)?;
    if let Some(n) = name {
        Secrets::check_name(n).map_err(|e| ApiError::new(ErrorClass::InvalidInput, e))?;
    }
    Ok(())
}

/// A deploy granting secrets: the function must belong to an app, and each secret must be set.
pub(crate) fn check_granted(api: &Api, ns: &str, spec: &FunctionSpec) -> ApiResult<()> {
    if spec.secrets.is_empty() {
        return Ok(());
    }
    let Some(app) = &spec.app else {
        return Err(ApiError::new(
            ErrorClass::InvalidInput,
            "secrets belong to an app: deploy the function from a manifest with [app] name",
        ));
    };
    let s = store(api)?;
    for name in &spec.secrets {
        if !s.exists(ns, app.as_str(), name) {
            return Err(ApiError::new(
                ErrorClass::InvalidInput,
                format!(
                    "the function is granted secret `{name}`, which app `{app}` does not have: set it first with `wisp secret set {app} {name}`"
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Path((ns, app)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    check(&ns, &app, None)?;
    let list: Vec<serde_json::Value> = store(&api)?
        .list(&ns, &app)
        .into_iter()
        .map(|i| serde_json::json!({ "name": i.name, "updated_at_ms": i.updated_at_ms }))
        .collect();
    Ok(Json(serde_json::json!({ "secrets": list })))
}

pub(crate) async fn set(
    State(api): State<Arc<Api>>,
    Path((ns, app, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    check(&ns, &app, Some(&name))?;
    if body.len() > MAX_SECRET_BYTES {
        return Err(ApiError::new(
            ErrorClass::PayloadTooLarge,
            format!("the value is {} bytes; secrets are at most {MAX_SECRET_BYTES} bytes", body.len()),
        ));
    }
    let value = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(ErrorClass::InvalidInput, "the value is not UTF-8 text (guests read secrets as strings)")
    })?;
    store(&api)?.set(&ns, &app, &name, value).await?;
    tracing::info!(%ns, %app, secret = %name, "secret set");
    for key in api.scheduler.refresh_secrets(&ns, &app) {
        let _ = api.scheduler.prewarm(&key).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn remove(
    State(api): State<Arc<Api>>,
    Path((ns, app, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    check(&ns, &app, Some(&name))?;
    let users: Vec<String> = api
        .scheduler
        .records()
        .into_iter()
        .filter(|r| {
            r.key.namespace.as_str() == ns
                && r.app.as_ref().is_some_and(|a| a.as_str() == app)
                && r.revision.secrets.contains(&name)
        })
        .map(|r| r.key.name.to_string())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::new(
            ErrorClass::Conflict,
            format!("secret `{name}` is granted to {}: deploy them without it first", users.join(", ")),
        ));
    }
    if !store(&api)?.remove(&ns, &app, &name).await? {
        return Err(ApiError::new(ErrorClass::NotFound, format!("app `{app}` has no secret `{name}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}
