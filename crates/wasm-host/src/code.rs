//! Loaded code (a revision ready to instantiate) and the dispatch to its world's executor.

use crate::body::BoxError;
use crate::caps::messaging::bindings::MessagingCorePre;
use crate::compile::{http_pre, messaging_pre, wagi_pre};
use crate::engine::Shared;
use crate::exec::wagi::WagiCode;
use crate::pool::Pool;
use crate::state::InstanceState as HttpState;
use crate::{Input, InvocationCtx, InvokeError, Outcome, ReportSink};
use anyhow::Context as _;
use bytes::Bytes;
use http_body::Body;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Module;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wisp_core::FunctionKind;

/// Loaded code: an `InstancePre` ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Code {
    pub(crate) shared: Arc<Shared>,
    pub(crate) inner: CodeInner,
    load_time: Duration,
    files: Option<crate::FilesRoot>,
}

impl Code {
    /// The component's imports (`ns:pkg/iface@ver`); a WAGI module's are all WASI preview1: none listed.
    pub fn imports(&self) -> Vec<String> {
        match &self.inner {
            CodeInner::Http(pre) => self.component_imports(pre.instance_pre().component()),
            CodeInner::Messaging(pre) => self.component_imports(pre.instance_pre().component()),
            CodeInner::Wagi(_) => Vec::new(),
        }
    }

    fn component_imports(&self, component: &Component) -> Vec<String> {
        component.component_type().imports(&self.shared.engine).map(|(n, _)| n.to_string()).collect()
    }

    /// A warm pool for this revision, known to the node's eviction (see [`Pool`]).
    pub fn new_pool(&self, config: crate::pool::PoolConfig) -> std::sync::Arc<crate::pool::Pool> {
        let pool = std::sync::Arc::new(crate::pool::Pool::new(config));
        let mut pools = self.shared.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(std::sync::Arc::downgrade(&pool));
        pool
    }

    /// The node's tracked background tasks.
    pub fn tasks(&self) -> &crate::Tasks {
        &self.shared.tasks
    }

    /// This code with a function's files: its instances see them read-only at `/` (the code itself is
    /// shared, not copied).
    pub fn with_files(&self, files: crate::FilesRoot) -> Code {
        Code { files: Some(files), ..self.clone() }
    }

    /// The files this code's instances see, if any: what the scheduler puts in each [`InvocationCtx`].
    pub fn files(&self) -> Option<&crate::FilesRoot> {
        self.files.as_ref()
    }

    /// How long loading took: mapping the precompiled artifact and resolving its imports (`InstancePre`).
    /// Paid once per revision at deploy or start, never per request.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

#[derive(Clone)]
pub(crate) enum CodeInner {
    Http(ProxyPre<HttpState>),
    Wagi(WagiCode),
    Messaging(MessagingCorePre<HttpState>),
}

pub(crate) fn load(shared: &Arc<Shared>, kind: FunctionKind, cwasm: &Path) -> anyhow::Result<Code> {
    let started = std::time::Instant::now();
    let engine = &shared.engine;
    let inner = match kind {
        FunctionKind::Http | FunctionKind::Messaging => {
            // SAFETY: the file is wisp's own compiled cache, written by `compile` into the data directory,
            // which only the wisp process writes; wasmtime additionally checks the engine compatibility.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize_file(engine, cwasm) }
                .map_err(anyhow::Error::from)
                .with_context(|| format!("loading precompiled component {}", cwasm.display()))?;
            match kind {
                FunctionKind::Messaging => CodeInner::Messaging(messaging_pre(shared, &component)?),
                _ => CodeInner::Http(http_pre(shared, &component)?),
            }
        }
        FunctionKind::Wagi => {
            // SAFETY: as above, our own compiled cache.
            #[allow(unsafe_code)]
            let module = unsafe { Module::deserialize_file(engine, cwasm) }
                .map_err(anyhow::Error::from)
                .with_context(|| format!("loading precompiled module {}", cwasm.display()))?;
            CodeInner::Wagi(WagiCode::new(wagi_pre(shared, &module)?, &module))
        }
    };
    Ok(Code { shared: shared.clone(), inner, load_time: started.elapsed(), files: None })
}

impl Code {
    /// Runs one invocation. Returns the response (its body may still be streaming from the guest) or the
    /// classified failure; `report` is called once the guest is done. `pool` holds this revision's warm
    /// instances (used when its mode is `reuse`).
    pub async fn run<B>(
        &self,
        input: Input<B>,
        ctx: InvocationCtx,
        report: ReportSink,
        pool: &Arc<Pool>,
    ) -> Result<Outcome, InvokeError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let mut input = input;
        // When spans are exported, the guest sees the invocation's span as its caller (`traceparent`), so what
        // it propagates itself continues the trace below wisp's spans.
        if let Input::Http { request, .. } = &mut input
            && let Some(cx) = crate::trace::current()
        {
            crate::trace::set_headers(request.headers_mut(), &cx);
        }
        match (&self.inner, input) {
            (CodeInner::Http(pre), Input::Http { request, .. }) => {
                crate::exec::http::handle(&self.shared, pre, request, ctx, report, pool).await.map(Outcome::Http)
            }
            (CodeInner::Wagi(wagi), Input::Http { request, .. }) => {
                crate::exec::wagi::handle(&self.shared, wagi, request, ctx, report).await.map(Outcome::Http)
            }
            (CodeInner::Messaging(_), Input::Http { .. }) => crate::exec::messaging::refuse_http(&ctx, report),
            (CodeInner::Messaging(pre), Input::Event(delivery)) => {
                crate::exec::messaging::handle(&self.shared, pre, &delivery, ctx, report).await
            }
            (CodeInner::Http(pre), Input::Event(delivery)) => {
                let req = crate::exec::event::request(&delivery, &ctx.id);
                let resp = crate::exec::http::handle(&self.shared, pre, req, ctx, report, pool).await?;
                Ok(crate::exec::event::outcome(resp).await)
            }
            (CodeInner::Wagi(wagi), Input::Event(delivery)) => {
                let req = crate::exec::event::request(&delivery, &ctx.id);
                let resp = crate::exec::wagi::handle(&self.shared, wagi, req, ctx, report).await?;
                Ok(crate::exec::event::outcome(resp).await)
            }
        }
    }

    /// The guest world this code serves.
    pub fn world(&self) -> &'static str {
        match &self.inner {
            CodeInner::Http(_) => "wasi:http/proxy",
            CodeInner::Wagi(_) => "WAGI",
            CodeInner::Messaging(_) => "wasi:messaging/messaging-core",
        }
    }

    /// Creates warm instances until `pool` holds its provisioned minimum (reuse mode, http functions):
    /// instantiation and guest initialisation happen now instead of on a request. Returns how many were made.
    pub async fn prewarm(&self, pool: &Arc<Pool>, ctx: &InvocationCtx) -> Result<usize, InvokeError> {
        match &self.inner {
            CodeInner::Http(pre) => crate::exec::http::prewarm(&self.shared, pre, pool, ctx).await,
            CodeInner::Wagi(_) | CodeInner::Messaging(_) => Ok(0),
        }
    }
}
