//! Outbound databases and brokers: Spin's `fermyon:spin/{postgres,mysql,redis,mqtt}@2.0.0` and
//! `spin:postgres/postgres@3.0.0`/`@4.0.0` over the node's connection pools ([`wisp_outbound_db::Pools`]).
//!
//! A guest opens a connection by address. The address is parsed (`wisp_outbound_db`), every host and port
//! it names must be allowed by the function's `allowed_outbound_hosts` for its scheme (`postgres://`,
//! `mysql://`, `redis://`, `mqtt://`), and passes the same resolve-and-check as outbound HTTP
//! ([`super::net::check`]); the pools connect only to a checked address. A refusal is noted in the
//! invocation's record and answered with the interface's error. Connections are pooled per owner
//! (namespace + app) and address; a handle the guest drops goes back, reset, to the pool; every call is
//! bounded by the invocation's deadline and counted on its meter (`databases`: one operation per query,
//! statement, command or publish; bytes of parameters, results, values and payloads).
//!
//! Spin SDKs import these interfaces whether the app uses them or not, so none needs a grant at deploy:
//! without one, every `open` is refused at run time.

mod mqtt;
mod mysql;
mod pg;
mod redis;

use super::net::Refusal;
use crate::caps::outbound::OutboundHttp;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wisp_core::outbound::Scheme;
use wisp_core::usage::Service;
use wisp_outbound_db::{DbError, Pools};

pub use mqtt::MqttHandle;
pub use mysql::MysqlHandle;
pub use pg::PgHandle;
pub use redis::RedisHandle;

mod v2 {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-db; world db {
            import fermyon:spin/postgres@2.0.0;
            import fermyon:spin/mysql@2.0.0;
            import fermyon:spin/redis@2.0.0;
            import fermyon:spin/mqtt@2.0.0;
        }",
        path: "../../wit/spin-2.0.0",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/postgres.connection": super::PgHandle,
            "fermyon:spin/mysql.connection": super::MysqlHandle,
            "fermyon:spin/redis.connection": super::RedisHandle,
            "fermyon:spin/mqtt.connection": super::MqttHandle,
        },
    });
}

mod v3 {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-pg3; world db { import spin:postgres/postgres@3.0.0; }",
        path: "../../wit/spin-postgres-3.0.0",
        imports: { default: async | trappable },
        with: { "spin:postgres/postgres.connection": super::PgHandle },
    });
}

mod v4 {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-pg4; world db { import spin:postgres/postgres@4.0.0; }",
        path: "../../wit/spin-postgres-4.0.0",
        imports: { default: async | trappable },
        with: { "spin:postgres/postgres.connection": super::PgHandle },
    });
}

/// The interfaces served, with version.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/rdbms-types@2.0.0",
    "fermyon:spin/postgres@2.0.0",
    "fermyon:spin/mysql@2.0.0",
    "fermyon:spin/redis@2.0.0",
    "fermyon:spin/mqtt@2.0.0",
    "spin:postgres/postgres@3.0.0",
    "spin:postgres/postgres@4.0.0",
];

/// An instance's slice of the capability: who owns its connections and the node's pools (the grant, the
/// current invocation and record notes are outbound HTTP's, [`OutboundHttp`]).
pub(crate) struct OutboundDb {
    pub(crate) owner: Arc<str>,
    pub(crate) pools: Option<Arc<Pools>>,
}

/// What the generated host traits are implemented on.
pub(crate) struct DbView<'a> {
    db: &'a OutboundDb,
    net: &'a OutboundHttp,
    table: &'a mut ResourceTable,
}

impl<'a> DbView<'a> {
    /// The view of an instance's state.
    pub(crate) fn new(db: &'a OutboundDb, net: &'a OutboundHttp, table: &'a mut ResourceTable) -> Self {
        DbView { db, net, table }
    }
}

struct HasDb;

impl HasData for HasDb {
    type Data<'a> = DbView<'a>;
}

/// Links every version; `view` projects an instance's state onto its [`DbView`].
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> DbView<'_>) -> anyhow::Result<()> {
    v2::fermyon::spin::rdbms_types::add_to_linker::<T, HasDb>(linker, view)?;
    v2::fermyon::spin::postgres::add_to_linker::<T, HasDb>(linker, view)?;
    v2::fermyon::spin::mysql::add_to_linker::<T, HasDb>(linker, view)?;
    v2::fermyon::spin::redis::add_to_linker::<T, HasDb>(linker, view)?;
    v2::fermyon::spin::mqtt::add_to_linker::<T, HasDb>(linker, view)?;
    v3::spin::postgres::postgres::add_to_linker::<T, HasDb>(linker, view)?;
    v4::spin::postgres::postgres::add_to_linker::<T, HasDb>(linker, view)?;
    Ok(())
}

impl v2::fermyon::spin::rdbms_types::Host for DbView<'_> {}

/// Why an open was refused before any connection: policy (noted in the record) or the address.
#[derive(Debug)]
enum Denied {
    /// Not allowed, or only to restricted addresses.
    Policy(String),
    /// Anything else.
    Db(DbError),
}

impl From<DbError> for Denied {
    fn from(e: DbError) -> Self {
        Denied::Db(e)
    }
}

/// What an `open` needs, owned, so that no borrow of the instance's state lives across its awaits.
struct Opening {
    grant: Arc<[wisp_core::outbound::HostPattern]>,
    node: Arc<crate::caps::outbound::Outbound>,
    logs: crate::logs::LogPipe,
    deadline: Instant,
    owner: Arc<str>,
    pools: Option<Arc<Pools>>,
}

impl Opening {
    fn pools(&self) -> Result<Arc<Pools>, DbError> {
        self.pools.clone().ok_or_else(|| DbError::Other("this node has no outbound database pools".into()))
    }

    /// The checked addresses of every endpoint of `address` (in order); a refusal is noted in the record.
    async fn checked(
        &self,
        scheme: Scheme,
        address: &str,
        endpoints: &[(String, u16)],
    ) -> Result<Vec<SocketAddr>, Denied> {
        let node = &self.node.config;
        let mut addrs = Vec::new();
        for (host, port) in endpoints {
            let timeout = node.timeout.min(self.deadline.saturating_duration_since(Instant::now()));
            match super::net::check(&self.grant, scheme, host, *port, &node.own_addresses, timeout).await {
                Ok(a) => addrs.extend(a),
                Err(r) => {
                    let why =
                        format!("denied outbound {scheme} connection to {}: {r}", wisp_outbound_db::redact(address));
                    self.logs.note(&why);
                    return Err(match r {
                        Refusal::NotAllowed(_) | Refusal::Prohibited(_) => Denied::Policy(why),
                        Refusal::DnsTimeout | Refusal::Dns(_) => Denied::Db(DbError::ConnectionFailed(why)),
                    });
                }
            }
        }
        Ok(addrs)
    }
}

impl DbView<'_> {
    /// The deadline of the invocation the instance serves now.
    fn deadline(&self) -> Instant {
        self.net.current.deadline
    }

    /// Counts one call that reached a server, moving `bytes` of payload (parameters, results, values,
    /// messages), on the current invocation's meter.
    fn count(&self, bytes: usize) {
        self.net.current.meter.count(Service::Databases, 1, bytes as u64);
    }

    fn max_result_bytes(&self) -> usize {
        self.db.pools.as_ref().map_or(usize::MAX, |p| p.config().max_result_bytes)
    }

    /// Notes a line in the invocation's record.
    fn note(&self, line: &str) {
        self.net.logs.note(line);
    }

    fn opening(&self) -> Opening {
        Opening {
            grant: self.net.grant.clone(),
            node: self.net.node.clone(),
            logs: self.net.logs.clone(),
            deadline: self.net.current.deadline,
            owner: self.db.owner.clone(),
            pools: self.db.pools.clone(),
        }
    }
}
