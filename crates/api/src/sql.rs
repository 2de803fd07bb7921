//! Guests' SQL databases over the API (what `wisp sql` and `wisp deploy`'s migrations use): the databases a
//! function granted `sqlite_databases` opens, addressed by the scope they live in, as for key-value data.
//!
//! | method | path (under `/_wisp/v1/namespaces/{ns}/`) | what |
//! |---|---|---|
//! | POST | `apps/{app}/sql/{db}/query` | `{statement, params?}` → `{columns, rows, changes, last_insert_rowid}` (one statement, parameters bound; values in JSON as [`wisp_core::sql::SqlValue`]) |
//! | POST | `apps/{app}/sql/{db}/migrations` | `{migrations: [{name, sql}]}` in name order → `{applied, all}`: the pending ones applied in one transaction, or none (400 naming the failed one) |
//! | GET | `apps/{app}/sql/{db}/migrations` | `{all}`: the names applied, in order |
//! | (same) | `functions/{name}/sql/{db}/…` | the databases of a function deployed on its own |

use crate::kv::{data_scope, owner};
use crate::{Api, ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisp_core::ErrorClass;
use wisp_core::sql::{Migration, SqlValue};
use wisp_store::sql::{SqlDatabases, SqlError};

/// How long a statement sent over the API may run.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Query {
    statement: String,
    #[serde(default)]
    params: Vec<SqlValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Migrations {
    migrations: Vec<Migration>,
}

fn databases(api: &Api) -> ApiResult<&Arc<SqlDatabases>> {
    api.sql.as_ref().ok_or_else(|| ApiError::new(ErrorClass::Unavailable, "this node has no SQL backend"))
}

fn failed(e: SqlError) -> ApiError {
    let class = match e {
        SqlError::DatabaseFull(_) => ErrorClass::PayloadTooLarge,
        SqlError::Failed(_) => ErrorClass::InvalidInput,
    };
    ApiError::new(class, e.to_string())
}

pub(crate) async fn query<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, db)): Path<(String, String, String)>,
    Json(q): Json<Query>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = data_scope(&ns, owner::<APP>(), &name, "database", &db)?;
    let dbs = databases(&api)?;
    let mut lease = None;
    let done =
        dbs.execute(&mut lease, &scope, q.statement, q.params, Instant::now() + QUERY_TIMEOUT).await.map_err(failed)?;
    Ok(Json(serde_json::json!({
        "columns": done.result.columns,
        "rows": done.result.rows,
        "changes": done.changes,
        "last_insert_rowid": done.last_insert_rowid,
    })))
}

pub(crate) async fn migrate<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, db)): Path<(String, String, String)>,
    Json(m): Json<Migrations>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = data_scope(&ns, owner::<APP>(), &name, "database", &db)?;
    let dbs = databases(&api)?;
    let applied = dbs.migrate(&scope, m.migrations).await.map_err(failed)?;
    let all = dbs.applied(&scope).await.map_err(failed)?;
    tracing::info!(%ns, %name, database = %db, applied = applied.len(), "migrations applied");
    Ok(Json(serde_json::json!({ "applied": applied, "all": all })))
}

pub(crate) async fn applied<const APP: bool>(
    State(api): State<Arc<Api>>,
    Path((ns, name, db)): Path<(String, String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = data_scope(&ns, owner::<APP>(), &name, "database", &db)?;
    let all = databases(&api)?.applied(&scope).await.map_err(failed)?;
    Ok(Json(serde_json::json!({ "all": all })))
}
