//! The registry turns uploads and specs into servable code:
//!
//! 1. [`Registry::put_artifact`] stores bytes by sha256 (idempotent) after a header check.
//! 2. [`Registry::deploy`] validates the spec, checks route conflicts against every other function, makes
//!    sure the artifact is validated and precompiled for this engine (the compiled cache, keyed by engine
//!    build + config + artifact digest), records an immutable revision, then switches the function record
//!    with compare-and-swap. The caller activates the returned [`Code`] in the scheduler. Any failure leaves
//!    the stored state — and so what serves — unchanged.
//! 3. [`Registry::load_all`] (start-up) loads every function from the compiled cache; nothing is compiled
//!    unless the cache is missing or was made by another engine.

#![warn(missing_docs)]

use bytes::Bytes;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use wisp_core::spec::{SpecError, sha256_hex};
use wisp_core::{ErrorClass, FunctionKey, FunctionKind, FunctionRecord, FunctionSpec, RevisionRecord};
use wisp_router::RouteTable;
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
    /// The artifact is too large.
    #[error("the artifact is {size} bytes, over this node's limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
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
            DeployError::Spec(_) | DeployError::Artifact(_) => ErrorClass::InvalidInput,
            DeployError::UnknownArtifact(_) | DeployError::NotFound(_) => ErrorClass::NotFound,
            DeployError::TooLarge { .. } => ErrorClass::PayloadTooLarge,
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
    /// `component` or `module`.
    pub kind: &'static str,
    /// Whether identical bytes were already stored.
    pub existed: bool,
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
    deploy_lock: Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Registry {
    /// A registry over `store`, compiling with `host`, caching native code under `cache_dir/<engine key>/`.
    pub fn new(store: Store, host: Host, cache_dir: PathBuf, max_artifact_bytes: usize) -> Self {
        let compiled_dir = cache_dir.join(host.engine_key());
        Registry { store, host, compiled_dir, max_artifact_bytes, deploy_lock: Mutex::new(()) }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Stores an artifact by digest. Rejects non-WebAssembly and oversize uploads.
    pub async fn put_artifact(&self, bytes: Bytes) -> Result<ArtifactInfo, DeployError> {
        if bytes.len() > self.max_artifact_bytes {
            return Err(DeployError::TooLarge { size: bytes.len(), limit: self.max_artifact_bytes });
        }
        let kind = match artifact_kind(&bytes) {
            Some(wisp_wasm_host::ArtifactKind::Component) => "component",
            Some(wisp_wasm_host::ArtifactKind::CoreModule) => "module",
            None => return Err(ArtifactError::NotWasm.into()),
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

    /// Deploys `spec` as `key`. See the crate docs for the steps and guarantees.
    pub async fn deploy(&self, key: &FunctionKey, spec: FunctionSpec) -> Result<Deployed, DeployError> {
        spec.validate()?;
        self.host.check_limits(&spec.limits)?;
        if !self.store.blobs.exists(ARTIFACTS, &spec.artifact).await? {
            return Err(DeployError::UnknownArtifact(spec.artifact.clone()));
        }
        let _guard = self.deploy_lock.lock().await;
        let all = self.list(None).await?;
        let current = all.iter().find(|(r, _)| &r.key == key).cloned();
        check_routes(&all, key, &spec)?;

        let revision_id = spec.revision_id();
        if let Some((cur, _)) = &current
            && cur.revision.id == revision_id
            && cur.routes == spec.routes
            && cur.app == spec.app
            && cur.scaling == spec.scaling
        {
            return Ok(Deployed {
                change: DeployChange::Unchanged,
                record: cur.clone(),
                code: None,
                compile: None,
                preinit: None,
            });
        }
        let (code, compiled) = self.ensure_compiled(spec.kind, &spec.artifact).await?;
        let (compile, preinit) = compiled.map_or((None, None), |(t, p)| (Some(t), p));
        let now = now_ms();
        let revision = match &current {
            Some((cur, _)) if cur.revision.id == revision_id => cur.revision.clone(),
            _ => RevisionRecord {
                id: revision_id,
                function: key.clone(),
                kind: spec.kind,
                artifact: spec.artifact.clone(),
                env: spec.env.clone(),
                limits: spec.limits,
                created_at_ms: now,
            },
        };
        let change = match &current {
            None => DeployChange::Created,
            Some((cur, _)) if cur.revision.id == revision.id => DeployChange::ConfigChanged,
            Some(_) => DeployChange::Updated,
        };
        let record = FunctionRecord {
            key: key.clone(),
            app: spec.app.clone(),
            routes: spec.routes.clone(),
            scaling: spec.scaling,
            revision: revision.clone(),
            deployed_at_ms: now,
            generation: current.as_ref().map_or(1, |(c, _)| c.generation + u64::from(change == DeployChange::Updated)),
        };
        let rev_key = format!("{}/{}", key.store_key(), revision.id);
        self.store.kv.put(REVISIONS, &rev_key, to_json(&revision), Expect::Any).await?;
        let expect = current.as_ref().map_or(Expect::Absent, |(_, rev)| Expect::Revision(*rev));
        self.store.kv.put(FUNCTIONS, &key.store_key(), to_json(&record), expect).await?;
        tracing::info!(function = %key, revision = %wisp_core::spec::short_id(&revision.id), ?change, "deployed");
        Ok(Deployed { change, record, code: Some(code), compile, preinit })
    }

    /// Changes a function's scaling settings without a redeploy; returns the updated record.
    pub async fn set_scaling(
        &self,
        key: &FunctionKey,
        scaling: wisp_core::Scaling,
    ) -> Result<FunctionRecord, DeployError> {
        scaling.validate().map_err(SpecError::Scaling)?;
        let _guard = self.deploy_lock.lock().await;
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        let mut record: FunctionRecord = from_json(&entry.value)?;
        record.scaling = scaling;
        self.store.kv.put(FUNCTIONS, &key.store_key(), to_json(&record), Expect::Revision(entry.revision)).await?;
        tracing::info!(function = %key, ?scaling, "scaling changed");
        Ok(record)
    }

    /// Removes a function (its revisions go too; artifacts stay, shared by digest).
    pub async fn remove(&self, key: &FunctionKey) -> Result<FunctionRecord, DeployError> {
        let _guard = self.deploy_lock.lock().await;
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        let record: FunctionRecord = from_json(&entry.value)?;
        self.store.kv.delete(FUNCTIONS, &key.store_key(), Expect::Revision(entry.revision)).await?;
        for rev in self.store.kv.list(REVISIONS, &format!("{}/", key.store_key())).await? {
            self.store.kv.delete(REVISIONS, &rev.key, Expect::Any).await?;
        }
        tracing::info!(function = %key, "removed");
        Ok(record)
    }

    /// One function's record.
    pub async fn get(&self, key: &FunctionKey) -> Result<FunctionRecord, DeployError> {
        let entry =
            self.store.kv.get(FUNCTIONS, &key.store_key()).await?.ok_or_else(|| DeployError::NotFound(key.clone()))?;
        from_json(&entry.value)
    }

    /// Every function record (with its KV revision), optionally in one namespace only.
    pub async fn list(&self, namespace: Option<&str>) -> Result<Vec<(FunctionRecord, u64)>, DeployError> {
        let prefix = namespace.map(|n| format!("{n}/")).unwrap_or_default();
        let mut out = Vec::new();
        for e in self.store.kv.list(FUNCTIONS, &prefix).await? {
            out.push((from_json(&e.value)?, e.revision));
        }
        Ok(out)
    }

    /// The revisions recorded for a function, oldest first.
    pub async fn revisions(&self, key: &FunctionKey) -> Result<Vec<RevisionRecord>, DeployError> {
        let mut out: Vec<RevisionRecord> = Vec::new();
        for e in self.store.kv.list(REVISIONS, &format!("{}/", key.store_key())).await? {
            out.push(from_json(&e.value)?);
        }
        out.sort_by_key(|r| r.created_at_ms);
        Ok(out)
    }

    /// Loads every stored function for serving (start-up). A function that fails to load is logged and
    /// skipped, never deleted.
    pub async fn load_all(&self) -> Result<Vec<(FunctionRecord, Code)>, DeployError> {
        let mut out = Vec::new();
        for (record, _) in self.list(None).await? {
            match self.ensure_compiled(record.revision.kind, &record.revision.artifact).await {
                Ok((code, compiled)) => {
                    if let Some((t, _)) = compiled {
                        tracing::warn!(function = %record.key, ms = t.as_millis() as u64, "compiled cache miss: recompiled at start-up");
                    }
                    out.push((record, code));
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

fn check_routes(all: &[(FunctionRecord, u64)], key: &FunctionKey, spec: &FunctionSpec) -> Result<(), DeployError> {
    let others = all
        .iter()
        .filter(|(r, _)| &r.key != key)
        .flat_map(|(r, _)| r.routes.iter().map(|p| (p.clone(), r.key.to_string())));
    let mine = spec.routes.iter().map(|p| (p.clone(), key.to_string()));
    RouteTable::build(others.chain(mine)).map(|_| ()).map_err(|c| DeployError::RouteConflict(c.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, DeployError> {
    serde_json::from_slice(b).map_err(|e| DeployError::Internal(anyhow::anyhow!("corrupt record in store: {e}")))
}
