//! The state an instance's store holds — one constructor per guest world, so every capability's per-instance
//! state is built in one place: the WASI context (captured stdout/stderr, env, sockets denied and noted, no
//! directories of its own — the linker's [`crate::caps::filesystem`] hands out the function's files or the node's
//! empty root), the
//! capped resource table, the outbound HTTP capability and the memory limiter.

use crate::InvocationCtx;
use crate::caps::blobstore::{BlobView, Blobs};
use crate::caps::keyvalue::{Kv, KvView};
use crate::caps::messaging::{Messaging, MessagingView};
use crate::caps::outbound::{Outbound, OutboundHttp};
use crate::caps::outbound_db::{DbView, OutboundDb};
use crate::caps::sqlite::{Sql, SqlView};
use crate::limits::{FIELD_SIZE_LIMIT, Limiter, resource_table_cap};
use crate::logs::LogPipe;
use crate::meter::Current;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Store state of a wasi:http invocation.
pub(crate) struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) hooks: OutboundHttp,
    kv: Kv,
    sql: Sql,
    blobs: Blobs,
    db: OutboundDb,
    msg: Messaging,
    config: Arc<crate::ConfigVariables>,
    /// The function's files (see [`crate::caps::filesystem`]).
    pub(crate) files: Option<crate::FilesRoot>,
    pub(crate) limiter: Limiter,
}

impl InstanceState {
    /// A store for one wasi:http instance: WASI context, capped resource table and header fields, denied
    /// outbound HTTP, and the memory limiter. The one constructor for requests and prewarm alike.
    pub(crate) fn store(
        engine: &wasmtime::Engine,
        outbound: &Arc<Outbound>,
        services: &crate::Services,
        ctx: &InvocationCtx,
        logs: &LogPipe,
        current: &Arc<Current>,
    ) -> Store<InstanceState> {
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        let mut table = ResourceTable::new();
        table.set_max_capacity(resource_table_cap(ctx.limits.memory_mb));
        let state = InstanceState {
            wasi: wasi_ctx(ctx, logs).build(),
            http,
            table,
            hooks: OutboundHttp {
                grant: ctx.outbound.clone(),
                node: outbound.clone(),
                logs: logs.clone(),
                current: current.clone(),
            },
            db: OutboundDb { owner: ctx.owner.clone(), pools: services.outbound_db.clone() },
            kv: Kv { grant: ctx.kv.clone(), backend: services.kv.clone(), current: current.clone() },
            sql: Sql { grant: ctx.sql.clone(), dbs: services.sql.clone(), current: current.clone() },
            blobs: Blobs {
                grant: ctx.blobs.clone(),
                backend: services.blobs.clone(),
                current: current.clone(),
                open: Default::default(),
                logs: logs.clone(),
            },
            msg: Messaging { grant: ctx.topics.clone(), topics: services.topics.clone(), current: current.clone() },
            config: ctx.config.clone(),
            files: ctx.files.clone(),
            limiter: Limiter::new(ctx.limits.memory_bytes()),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }
}

impl InstanceState {
    /// Starts an invocation on this instance (a warm one serves many): every capability now works for it —
    /// its deadline, its meter.
    pub(crate) fn begin(&mut self, current: &Arc<Current>) {
        self.hooks.current = current.clone();
        self.kv.current = current.clone();
        self.sql.current = current.clone();
        self.blobs.current = current.clone();
        self.msg.current = current.clone();
    }

    /// The key-value capability's view of this instance (its grant, the node's backend, the table).
    pub(crate) fn kv_view(&mut self) -> KvView<'_> {
        KvView::new(&self.kv, &mut self.table)
    }

    /// The SQL capability's view of this instance.
    pub(crate) fn sql_view(&mut self) -> SqlView<'_> {
        SqlView::new(&self.sql, &mut self.table)
    }

    /// The blob capability's view of this instance.
    pub(crate) fn blob_view(&mut self) -> BlobView<'_> {
        BlobView::new(&self.blobs, &mut self.table)
    }

    /// The outbound databases' view of this instance (its grant, notes and current invocation are
    /// outbound HTTP's).
    pub(crate) fn db_view(&mut self) -> DbView<'_> {
        DbView::new(&self.db, &self.hooks, &mut self.table)
    }

    /// Puts a message into the table, for the host to hand to a messaging handler.
    pub(crate) fn push_message(
        &mut self,
        m: crate::caps::messaging::Message,
    ) -> wasmtime::Result<wasmtime::component::Resource<crate::caps::messaging::Message>> {
        Ok(self.table.push(m)?)
    }

    /// The messaging capability's view.
    pub(crate) fn messaging_view(&mut self) -> MessagingView<'_> {
        MessagingView::new(&self.msg, &mut self.table)
    }

    /// The configuration capability's view: the revision's configuration.
    pub(crate) fn config_view(&mut self) -> crate::caps::config::ConfigView<'_> {
        crate::caps::config::ConfigView(&self.config)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The WASI context of an instance: captured stdout/stderr, the function's env, no preopens (the linker's
/// [`crate::caps::filesystem`] hands out the directories; WAGI's executor preopens the function's files),
/// and every socket address denied (and noted in the captured output).
pub(crate) fn wasi_ctx(ctx: &InvocationCtx, logs: &LogPipe) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.stdout(logs.clone()).stderr(logs.clone());
    // TCP sockets may be created, so that a connect or bind reaches the address check, which denies every
    // address and notes it: the record then says what the guest tried. UDP stays off.
    b.allow_tcp(true).allow_udp(false);
    let noted = logs.clone();
    b.socket_addr_check(move |addr, usage| {
        noted.note(&format!("denied wasi:sockets {usage:?} {addr}: this node grants functions no sockets"));
        Box::pin(async { false })
    });
    for (k, v) in ctx.env.iter() {
        b.env(k, v);
    }
    b
}

/// Store state of a WAGI invocation.
pub(crate) struct WagiState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
}

impl WagiState {
    /// A store for one WAGI instance: `wasi` (built by the executor: CGI env, stdin, stdout) and the limiter.
    pub(crate) fn store(engine: &wasmtime::Engine, wasi: WasiP1Ctx, memory_bytes: usize) -> Store<WagiState> {
        let mut store = Store::new(engine, WagiState { wasi, limiter: Limiter::new(memory_bytes) });
        store.limiter(|s| &mut s.limiter);
        store
    }
}
