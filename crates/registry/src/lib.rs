//! The registry turns uploads and specs into servable code:
//!
//! 1. [`Registry::put_artifact`] stores bytes by sha256 (idempotent) after a header check (code), or as they
//!    are (a file a function mounts, [`Upload::File`]).
//! 2. [`Registry::deploy`] validates the spec, checks route conflicts against every other function, makes
//!    sure the artifact is validated and precompiled for this engine (the compiled cache, keyed by engine
//!    build + config + artifact digest; compiled before the deploy lock is taken), records an immutable
//!    revision, then switches the function record with compare-and-swap, and hands the result to the
//!    caller's `commit` (which activates it in the scheduler) while still holding the lock, so what serves
//!    changes in the order the store did. Any failure leaves the stored state — and so what serves —
//!    unchanged (a revision written before a failed swap is removed again).
//! 3. [`Registry::load_all`] (start-up) loads every function from the compiled cache; nothing is compiled
//!    unless the cache is missing or was made by another engine.

#![warn(missing_docs)]

mod files;

use bytes::Bytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wisp_core::spec::{SpecError, sha256_hex};
use wisp_core::{ErrorClass, FunctionKey, FunctionKind, FunctionRecord, FunctionSpec, RevisionRecord, RoutePattern};
use wisp_router::RouteConflict;
use wisp_store::{Expect, Store, StoreError};
use wisp_wasm_host::{ArtifactError, Code, Host, artifact_kind};

/// KV bucket of function records, key `<namespace>/<name>`.
pub const FUNCTIONS: &str = "functions";
/// KV bucket of revision records, key `<namespace>/<name>/<revision>`.
pub const REVISIONS: &str = "revisions";
/// Blob bucket of uploaded artifacts, key = sha256.
pub const ARTIFACTS: &str = "artifacts";
/// Default largest artifact accepted.
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 256 * 1024 * 1024;

/// Deploy and upload failures.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The artifact is unusable.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The artifact was never uploaded.
    #[error("artifact {0} has not been uploaded; upload it first (POST /_wisp/v1/artifacts)")]
    UnknownArtifact(String),
    /// A file the spec mounts was never uploaded.
    #[error(
        "file {path:?}: artifact {sha} has not been uploaded; upload it first (POST /_wisp/v1/artifacts?kind=file)"
    )]
    UnknownFile {
        /// Its guest path.
        path: String,
        /// The artifact it names.
        sha: String,
    },
    /// The files a spec mounts are over a limit.
    #[error("{0}")]
    FilesTooLarge(String),
    /// The artifact is too large.
    #[error("the artifact is {size} bytes, over this node's limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The component imports a capability the function is not granted.
    #[error("{0}")]
    Grant(String),
    /// Another function serves one of the routes.
    #[error("{0}")]
    RouteConflict(String),
    /// No such function.
    #[error("function `{0}` does not exist")]
    NotFound(FunctionKey),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else inside the platform.
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl DeployError {
    /// The error class (and so the HTTP status).
    pub fn class(&self) -> ErrorClass {
        match self {
            DeployError::Spec(_) | DeployError::Artifact(_) | DeployError::Grant(_) => ErrorClass::InvalidInput,
            DeployError::UnknownArtifact(_) | DeployError::UnknownFile { .. } | DeployError::NotFound(_) => {
                ErrorClass::NotFound
            }
            DeployError::TooLarge { .. } | DeployError::FilesTooLarge(_) => ErrorClass::PayloadTooLarge,
            DeployError::RouteConflict(_) => ErrorClass::Conflict,
            DeployError::Store(StoreError::Conflict { .. }) => ErrorClass::Conflict,
            DeployError::Store(StoreError::InvalidKey(_)) => ErrorClass::InvalidInput,
            DeployError::Store(_) | DeployError::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// An uploaded artifact.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArtifactInfo {
    /// Its digest.
    pub sha256: String,
    /// Its size.
    pub size: usize,
    /// `component`, `module` or `file`.
    pub kind: &'static str,
    /// Whether identical bytes were already stored.
    pub existed: bool,
}

/// What an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Code: a component or core module (checked to be WebAssembly).
    Code,
    /// A file a function mounts (any bytes, at most [`wisp_core::files::DEFAULT_MAX_FILE_BYTES`]).
    File,
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployChange {
    /// A new function.
    Created,
    /// A new revision of an existing function.
    Updated,
    /// Same revision, different routes or scaling.
    ConfigChanged,
    /// Identical to what serves: nothing was done.
    Unchanged,
}

/// The result of a deploy.
pub struct Deployed {
    /// What changed.
    pub change: DeployChange,
    /// The function record now stored.
    pub record: FunctionRecord,
    /// The loaded code to activate (`None` when unchanged).
    pub code: Option<Code>,
    /// Time spent validating + compiling (`None` when served from the compiled cache).
    pub compile: Option<Duration>,
    /// What pre-initialisation did, when this deploy compiled a WAGI module with an init export.
    pub preinit: Option<wisp_wasm_host::Preinit>,
}

/// The deploy pipeline.
pub struct Registry {
    store: Store,
    host: Host,
    compiled_dir: PathBuf,
    max_artifact_bytes: usize,
    /// Serialises changes; guards the route index (every stored route → its function), built from the
    /// store on first use and kept in step with every change, so a deploy checks routes without reading
    /// every record.
    deploy_lock: Mutex<Option<HashMap<RoutePattern, FunctionKey>>>,
    /// Code loaded on this node, by kind and artifact: functions deploying the same artifact share one
    /// loaded module (its mapped native code and `InstancePre`), so 10,000 functions of one artifact cost
    /// one load. Kept for the node's life, like the artifacts themselves.
    loaded: std::sync::Mutex<HashMap<(FunctionKind, String), Code>>,
    /// Functions' files materialised on this node.
    files: files::Files,
}

use wisp_store::now_ms;

impl Registry {
    /// A registry over `store`, compiling with `host`, caching native code under `cache_dir/<engine key>/`
    /// and functions' files in `files/` beside `cache_dir`.
    pub fn new(store: Store, host: Host, cache_dir: PathBuf, max_artifact_bytes: usize) -> Self {
        let compiled_dir = cache_dir.join(host.engine_key());
        let files = files::Files::new(cache_dir.parent().unwrap_or(&cache_dir).join("files"));
        Registry {
            store,
            host,
            compiled_dir,
            max_artifact_bytes,
            deploy_lock: Mutex::new(None),
            loaded: Default::default(),
            files,
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Stores an artifact by digest. Rejects oversize uploads, and code that is not WebAssembly.
    pub async fn put_artifact(&self, bytes: Bytes, upload: Upload) -> Result<ArtifactInfo, DeployError> {
        let limit = match upload {
            Upload::Code => self.max_artifact_bytes,
            Upload::File => self.max_artifact_bytes.min(wisp_core::files::DEFAULT_MAX_FILE_BYTES as usize),
        };
        if bytes.len() > limit {
            return Err(DeployError::TooLarge { size: bytes.len(), limit });
        }
        let kind = match (upload, artifact_kind(&bytes)) {
            (Upload::File, _) => "file",
            (Upload::Code, Some(wisp_wasm_host::ArtifactKind::Component)) => "component",
            (Upload::Code, Some(wisp_wasm_host::ArtifactKind::CoreModule)) => "module",
            (Upload::Code, None) => return Err(ArtifactError::NotWasm.into()),
        };
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len();
        let existed = self.store.blobs.exists(ARTIFACTS, &sha256).await?;
        if !existed {
            self.store.blobs.put(ARTIFACTS, &sha256, bytes).await?;
        }
        Ok(ArtifactInfo { sha256, size, kind, existed })
    }

    /// Whether an artifact is stored.
    pub async fn has_artifact(&self, sha256: &str) -> Result<bool, DeployError> {
        Ok(wisp_core::spec::is_sha256_hex(sha256) && self.store.blobs.exists(ARTIFACTS, sha256).await?)
    }

    /// Deploys `spec` as `key`. See the crate docs for the steps and guarantees. `check` runs on the spec
    /// while the deploy lock is held, before anything is written (the node's capacity checks); `commit`
    /// runs after the function record is stored, still under the lock, so what serves follows the store in
    /// the order the store changed.
    /// `keep_scaling`: the spec named no scaling, so an existing function keeps its stored settings, its
    /// scaling and event delivery (a routine redeploy never drops `min_instances` or a reservation).
    pub async fn deploy(
        &self,
        key: &FunctionKey,
        mut spec: FunctionSpec,
        keep_scaling: bool,
        check: impl FnOnce(&FunctionSpec) -> Result<(), DeployError>,
        commit: impl FnOnce(&Deployed, u64),
    ) -> Result<Deployed, DeployError> {
        spec.validate()?;
        self.host.check_limits(&spec.limits)?;
        if !self.store.blobs.exists(ARTIFACTS, &spec.artifact).await? {
            return Err(DeployError::UnknownArtifact(spec.artifact.clone()));
        }
        // Compiling is idempotent (the cache is content-addressed), so it happens before the lock: a long
        // compile or Wizer init does not hold up other functions' deploys and scaling changes.
        let (code, compiled) = self.ensure_compiled(spec.kind, &spec.artifact).await?;
        wisp_wasm_host::caps::check_grants(&code.imports(), &spec, wisp_wasm_host::caps::CAPABILITIES)
            .map_err(DeployError::Grant)?;
        // Files: every one uploaded, the tree materialised on this node (once; before the lock, like code).
        for (path, sha) in &spec.files {
            if !self.store.blobs.exists(ARTIFACTS, sha).await? {
                return Err(DeployError::UnknownFile { path: path.clone(), sha: sha.clone() });
            }
        }
        let code = match spec.files.is_empty() {
            true => code,
            false => code.with_files(self.files.root(&*self.store.blobs, &spec.files).await?),
        };
        let (compile, preinit) = compiled.map_or((None, None), |(t, p)| (Some(t), p));

        let mut guard = self.deploy_lock.lock().await;
        let routes = self.route_index(&mut guard).await?;
        let current = match self.store.kv.get(FUNCTIONS, &key.store_key()).await? {
            Some(e) => Some((from_json::<FunctionRecord>(&e.value)?, e.revision)),
            None => None,
        };
        if keep_scaling && let Some((cur, _)) = &current {
            spec.scaling = cur.scaling;
            spec.events = cur.events.clone();
            spec.triggers = cur.triggers.clone();
        }
        check_routes(routes, key, &spec)?;
        check(&spec)?;

        let revision_id = spec.revision_id();
        if let Some((cur, _)) = &current
            && cur.revision.id == revision_id
            && cur.routes == spec.routes
            && cur.app == spec.app
            && cur.scaling == spec.scaling
            && cur.events == spec.events
            && cur.triggers == spec.triggers
        {
            return Ok(Deployed {
                change: DeployChange::Unchanged,
                record: cur.clone(),
                code: None,
                compile: None,
                preinit: None,
            });
        }
        let now = now_ms();
        let new_revision = !matches!(&current, Some((cur, _)) if cur.revision.id == revision_id);
        let revision = match &current {
            Some((cur, _)) if !new_revision => cur.revision.clone(),
            _ => RevisionRecord {
                v: wisp_core::spec::SCHEMA_VERSION,
                id: revision_id,
                function: key.clone(),
                kind: spec.kind,
                artifact: spec.artifact.clone(),
                env: spec.env.clone(),
                limits: spec.limits,
                allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
                key_value_stores: spec.key_value_stores.clone(),
                sqlite_databases: spec.sqlite_databases.clone(),
                secrets: spec.secrets.clone(),
                publish_topics: spec.publish_topics.clone(),
                config: spec.config.clone(),
                spin_headers: spec.spin_headers,
                files: spec.files.clone(),
                created_at_ms: now,
            },
        };
        let change = match &current {
            None => DeployChange::Created,
            Some(_) if !new_revision => DeployChange::ConfigChanged,
            Some(_) => DeployChange::Updated,
        };
        let record = FunctionRecord {
            v: wisp_core::spec::SCHEMA_VERSION,
            key: key.clone(),
            app: spec.app.clone(),
            routes: spec.routes.clone(),
            scaling: spec.scaling,
            events: spec.events.clone(),
            triggers: spec.triggers.clone(),
            revision: revision.clone(),
            deployed_at_ms: now,
            generation: current.as_ref().map_or(1, |(c, _)| c.generation + u64::from(change == DeployChange::Updated)),
        };
        // Revision first, then the function record with compare-and-swap: a crash in between leaves the
        // previous state serving; a failed swap removes the revision it wrote (no orphans).
        let rev_key = format!("{}/{}", key.store_key(), revision.id);
        if new_revision {
            self.store.kv.put(REVISIONS, &rev_key, to_json(&revision), Expect::Any).await?;
        }
        let expect = current.as_ref().map_or(Expect::Absent, |(_, rev)| Expect::Revision(*rev));
        let stored = match self.store.kv.put(FUNCTIONS, &key.store_key(), to_json(&record), expect).await {
            Ok(rev) => rev,
            Err(e) => {
                if new_revision && let Err(cleanup) = self.store.kv.delete(REVISIONS, &rev_key, Expect::Any).await {
                    tracing::warn!(function = %key, error = %cleanup, "cannot remove the revision of a failed deploy");
                }
                return Err(e.into());
            }
        };
        tracing::info!(function = %key, revision = %wisp_core::spec::short_id(&revision.id), ?change, "deployed");
        // The index changes by this function's own routes only.
        if let Some((cur, _)) = &current {
            for r in cur.served_routes() {
                if routes.get(&r) == Some(key) {
                    routes.remove(&r);
                }
            }
        }
        routes.extend(record.served_routes().into_iter().map(|r| (r, key.clone())));
        let deployed = Deployed { change, record, code: Some(code), compile, preinit };
        commit(&deployed, stored);
        Ok(deployed)
    }

    /// Changes a function's scaling settings without a redeploy: `patch` holds the keys to change (the
    /// others keep their stored values, so concurrent changes of different keys both land). `check` and
    /// `commit` run under the deploy lock, as for [`Registry::deploy`]. Returns the updated record.
    pub async fn patch_scaling(
        &self,
        key: &FunctionKey,
        patch: serde_json::Map<String, serde_json::Value>,
        check: impl FnOnce(&wisp_core::Scaling) -> Result<(), DeployError>,
        commit: impl FnOnce(&FunctionRecord, u64),
    ) -> Result<FunctionRecord, DeployError> {
        let _guard = self.deploy_lock.lock().await;
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        let mut record: FunctionRecord = from_json(&entry.value)?;
        let mut merged = match serde_json::to_value(record.scaling).expect("scaling serialises") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("scaling is a struct"),
        };
        merged.extend(patch);
        let scaling: wisp_core::Scaling = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| SpecError::Scaling(format!("scaling: {e}")))?;
        scaling.validate().map_err(SpecError::Scaling)?;
        check(&scaling)?;
        record.scaling = scaling;
        let stored =
            self.store.kv.put(FUNCTIONS, &key.store_key(), to_json(&record), Expect::Revision(entry.revision)).await?;
        tracing::info!(function = %key, ?scaling, "scaling changed");
        commit(&record, stored);
        Ok(record)
    }

    /// Removes a function (its revisions go too; artifacts stay, shared by digest). `commit` runs under the
    /// deploy lock once the record is gone.
    pub async fn remove(&self, key: &FunctionKey, commit: impl FnOnce(&FunctionKey)) -> Result<(), DeployError> {
        let mut guard = self.deploy_lock.lock().await;
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        // A record this build cannot read can still be removed: it is not parsed.
        self.store.kv.delete(FUNCTIONS, &key.store_key(), Expect::Revision(entry.revision)).await?;
        if let Some(routes) = guard.as_mut() {
            routes.retain(|_, k| k != key);
        }
        commit(key);
        for rev in self.store.kv.list(REVISIONS, &format!("{}/", key.store_key())).await? {
            self.store.kv.delete(REVISIONS, &rev.key, Expect::Any).await?;
        }
        tracing::info!(function = %key, "removed");
        Ok(())
    }

    /// The route index, built from the store the first time.
    async fn route_index<'a>(
        &self,
        guard: &'a mut Option<HashMap<RoutePattern, FunctionKey>>,
    ) -> Result<&'a mut HashMap<RoutePattern, FunctionKey>, DeployError> {
        if guard.is_none() {
            *guard = Some(index_routes(&self.list(None).await?));
        }
        Ok(guard.as_mut().expect("built above"))
    }

    /// One function's record.
    pub async fn get(&self, key: &FunctionKey) -> Result<FunctionRecord, DeployError> {
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        from_json(&entry.value)
    }

    /// Every function record (with its KV revision), optionally in one namespace only. A record that does
    /// not parse, or was written by a newer schema, is logged and skipped: one bad row never stops start-up
    /// or deploys of other functions.
    pub async fn list(&self, namespace: Option<&str>) -> Result<Vec<(FunctionRecord, u64)>, DeployError> {
        let prefix = namespace.map(|n| format!("{n}/")).unwrap_or_default();
        let mut out = Vec::new();
        for e in self.store.kv.list(FUNCTIONS, &prefix).await? {
            match from_json::<FunctionRecord>(&e.value) {
                Ok(r) => out.push((r, e.revision)),
                Err(err) => tracing::error!(bucket = FUNCTIONS, key = %e.key, error = %err, "skipping a stored record"),
            }
        }
        Ok(out)
    }

    /// The revisions recorded for a function, oldest first (unreadable ones logged and skipped).
    pub async fn revisions(&self, key: &FunctionKey) -> Result<Vec<RevisionRecord>, DeployError> {
        let mut out: Vec<RevisionRecord> = Vec::new();
        for e in self.store.kv.list(REVISIONS, &format!("{}/", key.store_key())).await? {
            match from_json::<RevisionRecord>(&e.value) {
                Ok(r) => out.push(r),
                Err(err) => tracing::error!(bucket = REVISIONS, key = %e.key, error = %err, "skipping a stored record"),
            }
        }
        out.sort_by_key(|r| r.created_at_ms);
        Ok(out)
    }

    /// Loads every stored function for serving (start-up). A function that fails to load is logged and
    /// skipped, never deleted.
    pub async fn load_all(&self) -> Result<Vec<(FunctionRecord, u64, Code)>, DeployError> {
        let mut out = Vec::new();
        let all = self.list(None).await?;
        // The route index comes from the same listing, so the first deploy need not read every record again.
        *self.deploy_lock.lock().await = Some(index_routes(&all));
        self.files.clean();
        for (record, stored) in all {
            let loaded = match self.ensure_compiled(record.revision.kind, &record.revision.artifact).await {
                Ok((code, compiled)) if !record.revision.files.is_empty() => {
                    match self.files.root(&*self.store.blobs, &record.revision.files).await {
                        Ok(files) => Ok((code.with_files(files), compiled)),
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            match loaded {
                Ok((code, compiled)) => {
                    if let Some((t, _)) = compiled {
                        tracing::warn!(function = %record.key, ms = t.as_millis() as u64, "compiled cache miss: recompiled at start-up");
                    }
                    out.push((record, stored, code));
                }
                Err(e) => {
                    tracing::error!(function = %record.key, error = %e, "cannot load function; it will not serve")
                }
            }
        }
        Ok(out)
    }

    /// Loads `artifact` from the compiled cache, compiling (and validating) it first if needed.
    async fn ensure_compiled(
        &self,
        kind: FunctionKind,
        artifact: &str,
    ) -> Result<(Code, Option<(Duration, Option<wisp_wasm_host::Preinit>)>), DeployError> {
        let cached = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&(kind, artifact.to_string())).cloned();
        if let Some(code) = cached {
            return Ok((code, None));
        }
        let (code, compiled) = self.load_or_compile(kind, artifact).await?;
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert((kind, artifact.to_string()), code.clone());
        Ok((code, compiled))
    }

    async fn load_or_compile(
        &self,
        kind: FunctionKind,
        artifact: &str,
    ) -> Result<(Code, Option<(Duration, Option<wisp_wasm_host::Preinit>)>), DeployError> {
        let path = self.compiled_dir.join(format!("{artifact}.{kind}.cwasm"));
        if path.exists() {
            let host = self.host.clone();
            let p = path.clone();
            match tokio::task::spawn_blocking(move || host.load(kind, &p)).await.map_err(anyhow::Error::from)? {
                Ok(code) => return Ok((code, None)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "compiled cache entry unusable; recompiling")
                }
            }
        }
        let bytes = self
            .store
            .blobs
            .get(ARTIFACTS, artifact)
            .await?
            .ok_or_else(|| DeployError::UnknownArtifact(artifact.to_string()))?;
        let host = self.host.clone();
        let t0 = Instant::now();
        let compiled =
            tokio::task::spawn_blocking(move || host.compile(kind, &bytes)).await.map_err(anyhow::Error::from)??;
        let elapsed = t0.elapsed();
        let preinit = compiled.preinit.clone();
        if let Some(p) = &preinit {
            tracing::info!(artifact, preinit = ?p, "pre-initialisation");
        }
        let p = path.clone();
        tokio::task::spawn_blocking(move || wisp_store::embedded::write_atomically(&p, &compiled.bytes))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| anyhow::anyhow!("writing compiled cache {}: {e}", path.display()))?;
        let host = self.host.clone();
        let code = tokio::task::spawn_blocking(move || host.load(kind, &path)).await.map_err(anyhow::Error::from)??;
        Ok((code, Some((elapsed, preinit))))
    }
}

/// Every stored route → its function.
fn index_routes(all: &[(FunctionRecord, u64)]) -> HashMap<RoutePattern, FunctionKey> {
    all.iter().flat_map(|(r, _)| r.served_routes().into_iter().map(|p| (p, r.key.clone()))).collect()
}

/// Rejects a route another function serves, naming both.
fn check_routes(
    routes: &HashMap<RoutePattern, FunctionKey>,
    key: &FunctionKey,
    spec: &FunctionSpec,
) -> Result<(), DeployError> {
    for r in spec.routes.iter().chain(wisp_core::trigger::webhook_routes(&spec.triggers)) {
        if let Some(other) = routes.get(r).filter(|k| *k != key) {
            let c = RouteConflict { route: r.clone(), existing: other.to_string(), claimant: key.to_string() };
            return Err(DeployError::RouteConflict(c.to_string()));
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

/// A stored record of this build's schema (or an older one).
fn from_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, DeployError> {
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(default)]
        v: Option<u32>,
    }
    if let Ok(Version { v: Some(v) }) = serde_json::from_slice::<Version>(b)
        && v > wisp_core::spec::SCHEMA_VERSION
    {
        return Err(DeployError::Internal(anyhow::anyhow!(
            "record of schema version {v}, written by a newer wisp (this one reads up to {})",
            wisp_core::spec::SCHEMA_VERSION
        )));
    }
    serde_json::from_slice(b).map_err(|e| DeployError::Internal(anyhow::anyhow!("corrupt record in store: {e}")))
}
