//! Activation: what serves for a function — its record, code, warm pool, admission gate and the context every
//! invocation of it shares (grants scoped to its namespace and app, configuration with its secrets) — built
//! when a revision is activated, changed in place for a new record of the same revision or a changed secret.

use crate::records::{self, Records};
use crate::{Active, Scaler, Scheduler, SecretSource, admission};
use parking_lot::Mutex;
use std::sync::Arc;
use wisp_core::{FunctionKey, FunctionRecord};
use wisp_wasm_host::{Code, InvocationCtx, PoolConfig};

/// The context every invocation of `record`'s revision shares; `dispatch` fills in the id, the matched
/// route and the deadline.
pub(crate) fn context(
    record: &FunctionRecord,
    code: &Code,
    config: Arc<wisp_wasm_host::ConfigVariables>,
) -> InvocationCtx {
    let revision = &record.revision;
    // Validated at deploy; a stored grant that no longer parses grants nothing.
    let outbound: Arc<[wisp_core::outbound::HostPattern]> =
        wisp_core::outbound::parse_all(&revision.allowed_outbound_hosts)
            .unwrap_or_else(|e| {
                tracing::error!(function = %record.key, error = %e, "unusable outbound grant; outbound HTTP denied");
                Vec::new()
            })
            .into();
    let (namespace, app, name) =
        (record.key.namespace.as_str(), record.app.as_ref().map(|a| a.as_str()), record.key.name.as_str());
    let grant = |labels: &[String]| Arc::new(wisp_wasm_host::caps::Grant::new(namespace, app, name, labels));
    InvocationCtx {
        id: Arc::from(""),
        function: Arc::from(name),
        env: revision.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>().into(),
        limits: revision.limits,
        route_prefix: Arc::from("/"),
        deadline: std::time::Instant::now(),
        outbound,
        kv: grant(&revision.key_value_stores),
        sql: grant(&revision.sqlite_databases),
        blobs: grant(&revision.blob_containers),
        owner: Arc::from(wisp_core::kv::owner(namespace, app, name)),
        topics: Arc::new(wisp_wasm_host::caps::messaging::TopicGrant::new(namespace, name, &revision.publish_topics)),
        config,
        files: code.files().cloned(),
    }
}

impl Scheduler {
    /// Makes `record` (stored at store revision `stored`) serve with `code`, replacing any previous revision
    /// of the same function in one atomic swap (in-flight requests finish on the code they started with). A
    /// record older than the one serving is ignored: what serves follows the store.
    pub fn activate(&self, record: FunctionRecord, stored: u64, code: Code) {
        let key = record.key.clone();
        self.update(&key, |functions| {
            let key = record.key.clone();
            let prev = functions.get(&key);
            if prev.is_some_and(|p| p.stored > stored) {
                tracing::warn!(function = %key, stored, "ignoring an activation older than what serves");
                return;
            }
            let gate = self.gate_for(prev, &record);
            let (records, counters, scaler) = match prev {
                Some(prev) => {
                    prev.scaler.lock().autoscaler.set_config(record.scaling.autoscaler());
                    (prev.records.clone(), prev.counters.clone(), prev.scaler.clone())
                }
                None => (
                    Arc::new(Records::new(self.budget.clone(), self.ring_size, records::DEFAULT_FUNCTION_RECORD_BYTES)),
                    Default::default(),
                    Arc::new(Mutex::new(Scaler::new(&record.scaling))),
                ),
            };
            let namespace = Arc::from(record.key.namespace.as_str());
            let pool = code.new_pool(PoolConfig::new(&record.scaling, record.revision.kind));
            let ctx = context(&record, &code, self.config_of(&record));
            let active = Active { record, stored, code, namespace, ctx, records, counters, pool, gate, scaler };
            functions.insert(key, Arc::new(active));
        });
    }

    /// The admission gate for `record`: the function's existing one, adjusted in place to the new settings
    /// (its in-flight count, queue, meter and reservation carry over; no second reservation), or a new one.
    fn gate_for(&self, prev: Option<&Arc<Active>>, record: &FunctionRecord) -> Arc<admission::Gate> {
        match prev {
            Some(prev) => {
                if prev.record.scaling != record.scaling {
                    prev.gate.reconfigure(&record.scaling);
                }
                prev.gate.clone()
            }
            None => Arc::new(admission::Gate::new(self.node.clone(), &record.scaling)),
        }
    }

    /// Sets where granted secrets come from (once, before functions are activated).
    pub fn set_secret_source(&self, source: SecretSource) {
        let _ = self.secrets.set(source);
    }

    /// The configuration `record`'s instances get: the revision's config, plus the values of the secrets it
    /// is granted (a granted secret that is not set is left out, and logged by name).
    fn config_of(&self, record: &FunctionRecord) -> Arc<wisp_wasm_host::ConfigVariables> {
        let mut secrets: Vec<(&str, String)> = Vec::new();
        if let (Some(source), Some(app)) = (self.secrets.get(), &record.app) {
            for name in &record.revision.secrets {
                match source(record.key.namespace.as_str(), app.as_str(), name) {
                    Some(v) => secrets.push((name, v)),
                    None => tracing::warn!(function = %record.key, secret = %name, "granted secret is not set"),
                }
            }
        }
        // Templates naming secret variables (`{{ name }}`, kept in the revision) are resolved from the
        // granted secrets here; a value they do not resolve is served as it is.
        let values: std::collections::BTreeMap<String, String> =
            secrets.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let config: Vec<(&str, std::borrow::Cow<'_, str>)> = record
            .revision
            .config
            .iter()
            .map(|(k, v)| {
                let v = if v.contains("{{") {
                    wisp_core::config::resolve(v, &values).map_or(std::borrow::Cow::Borrowed(v.as_str()), Into::into)
                } else {
                    std::borrow::Cow::Borrowed(v.as_str())
                };
                (k.as_str(), v)
            })
            .collect();
        let config = config.iter().map(|(k, v)| (*k, v.as_ref()));
        Arc::new(config.chain(secrets.iter().map(|(k, v)| (*k, v.as_str()))).collect())
    }

    /// After a secret of `app` in `namespace` changed: every active function of the app granted secrets gets
    /// its configuration rebuilt and a new warm pool (instances made with the old values are dropped as
    /// they finish, never reused). Returns the functions changed, for the caller to prewarm.
    pub fn refresh_secrets(&self, namespace: &str, app: &str) -> Vec<FunctionKey> {
        let affected: Vec<FunctionKey> = self
            .live
            .load()
            .functions
            .values()
            .filter(|a| {
                a.record.key.namespace.as_str() == namespace
                    && a.record.app.as_ref().is_some_and(|x| x.as_str() == app)
                    && !a.record.revision.secrets.is_empty()
            })
            .map(|a| a.record.key.clone())
            .collect();
        for key in &affected {
            self.update(key, |functions| {
                let Some(prev) = functions.get(key) else { return };
                let record = &prev.record;
                let active = Active {
                    ctx: InvocationCtx { config: self.config_of(record), ..prev.ctx.clone() },
                    pool: prev.code.new_pool(PoolConfig::new(&record.scaling, record.revision.kind)),
                    ..(**prev).clone()
                };
                functions.insert(key.clone(), Arc::new(active));
            });
        }
        affected
    }

    /// Applies a changed record of the same revision (scaling, routes) without reloading code; the warm pool
    /// stays (emptied if the mode became `fresh`).
    pub fn update_record(&self, record: FunctionRecord, stored: u64) {
        let key = record.key.clone();
        self.update(&key, |functions| {
            let Some(prev) = functions.get(&record.key) else { return };
            if prev.stored > stored {
                tracing::warn!(function = %record.key, stored, "ignoring a change older than what serves");
                return;
            }
            if prev.record.revision.id != record.revision.id {
                tracing::error!(function = %record.key, "update_record with a different revision; ignored");
                return;
            }
            prev.pool.set_config(PoolConfig::new(&record.scaling, record.revision.kind));
            prev.scaler.lock().autoscaler.set_config(record.scaling.autoscaler());
            let active = Active {
                gate: self.gate_for(Some(prev), &record),
                record: record.clone(),
                stored,
                ctx: context(&record, &prev.code, prev.ctx.config.clone()),
                ..(**prev).clone()
            };
            functions.insert(record.key.clone(), Arc::new(active));
        });
    }
}
