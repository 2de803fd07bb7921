//! The node's connection pools: idle connections per (owner, address), connection permits per owner and
//! per node, eviction of idle connections when a permit is needed, and the sweep of expired ones.

use crate::{DbError, left};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Node-wide settings of outbound databases and brokers (`[outbound_db]` in `wisp up --config`).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections the node keeps open (in use and idle) to guests' databases and brokers.
    pub max_connections: usize,
    /// Most connections one owner (an app, or a function deployed on its own) keeps open.
    pub max_connections_per_app: usize,
    /// How long an unused pooled connection is kept.
    pub max_idle: Duration,
    /// Longest connect, including the protocol's handshake (never past the invocation's deadline); also
    /// the longest wait for a connection permit when the owner or node is at its limit.
    pub connect_timeout: Duration,
    /// Largest query result handed to a guest, bytes.
    pub max_result_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: crate::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_app: crate::DEFAULT_MAX_CONNECTIONS_PER_APP,
            max_idle: Duration::from_secs(crate::DEFAULT_MAX_IDLE_SECONDS),
            connect_timeout: Duration::from_millis(crate::DEFAULT_CONNECT_TIMEOUT_MS),
            max_result_bytes: crate::DEFAULT_MAX_RESULT_MB << 20,
        }
    }
}

/// A connection kind the pools keep.
pub trait Pooled: Send + 'static {
    /// Makes the connection as new for its next user; false: it cannot be, close it.
    fn reset(&mut self) -> impl Future<Output = bool> + Send;
    /// Whether the connection is known to be broken.
    fn is_closed(&self) -> bool;
}

/// Owner (namespace + app) and the address as the guest gave it.
pub(crate) type Key = (Arc<str>, Arc<str>);

/// The right to hold one open connection: one of its owner's and one of the node's.
pub(crate) struct Permit {
    _app: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
}

struct Idle<C> {
    conn: C,
    peer: SocketAddr,
    since: Instant,
    permit: Permit,
}

/// The idle connections of one kind.
pub(crate) struct Pool<C> {
    idle: Mutex<HashMap<Key, Vec<Idle<C>>>>,
}

impl<C: Pooled> Pool<C> {
    fn new() -> Arc<Self> {
        Arc::new(Pool { idle: Mutex::new(HashMap::new()) })
    }

    /// The most recently used idle connection of `key` to one of `addrs` that has not expired; expired ones
    /// met on the way are closed.
    fn take(&self, key: &Key, addrs: &[SocketAddr], max_idle: Duration) -> Option<Idle<C>> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        list.retain(|i| now.duration_since(i.since) < max_idle && !i.conn.is_closed());
        let found = list.iter().rposition(|i| addrs.contains(&i.peer)).map(|at| list.remove(at));
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    fn put(&self, key: Key, idle: Idle<C>) {
        self.idle.lock().entry(key).or_default().push(idle);
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().values().map(Vec::len).sum()
    }
}

/// What the pools know of each kind to evict and sweep it.
pub(crate) trait Evict: Send + Sync {
    /// When the oldest idle connection (of `owner`, or any) was last used.
    fn oldest(&self, owner: Option<&str>) -> Option<Instant>;
    /// Closes that connection; false if there was none.
    fn evict_oldest(&self, owner: Option<&str>) -> bool;
    /// Closes every connection idle for `max_idle` or more.
    fn sweep(&self, now: Instant, max_idle: Duration);
}

impl<C: Pooled> Evict for Pool<C> {
    fn oldest(&self, owner: Option<&str>) -> Option<Instant> {
        let idle = self.idle.lock();
        idle.iter()
            .filter(|((o, _), _)| owner.is_none_or(|w| &**o == w))
            .flat_map(|(_, list)| list.iter().map(|i| i.since))
            .min()
    }

    fn evict_oldest(&self, owner: Option<&str>) -> bool {
        let closed = {
            let mut idle = self.idle.lock();
            let oldest = idle
                .iter()
                .filter(|((o, _), _)| owner.is_none_or(|w| &**o == w))
                .flat_map(|(k, list)| list.iter().enumerate().map(move |(n, i)| (i.since, k.clone(), n)))
                .min_by_key(|(since, _, _)| *since);
            oldest.map(|(_, key, n)| {
                let list = idle.get_mut(&key).expect("found above");
                let gone = list.remove(n);
                if list.is_empty() {
                    idle.remove(&key);
                }
                gone
            })
        };
        closed.is_some() // dropped here, outside the lock: the connection closes, its permits return
    }

    fn sweep(&self, now: Instant, max_idle: Duration) {
        let mut expired = Vec::new();
        {
            let mut idle = self.idle.lock();
            idle.retain(|_, list| {
                let (old, keep): (Vec<_>, Vec<_>) =
                    list.drain(..).partition(|i| now.duration_since(i.since) >= max_idle);
                expired.extend(old);
                *list = keep;
                !list.is_empty()
            });
        }
        drop(expired);
    }
}

/// A pooled connection in a guest's hands. Dropped, it is closed; [`Lease::release`] resets it and gives it
/// back to its pool.
pub struct Lease<C: Pooled> {
    conn: Option<C>,
    key: Key,
    peer: SocketAddr,
    permit: Option<Permit>,
    pool: Arc<Pool<C>>,
    reused: bool,
}

impl<C: Pooled> Lease<C> {
    /// The connection, unless an earlier failure closed it.
    pub(crate) fn conn(&mut self) -> Result<&mut C, DbError> {
        self.conn.as_mut().ok_or_else(|| {
            DbError::ConnectionFailed(
                "the connection was closed after an earlier call was cut short; open a new one".into(),
            )
        })
    }

    /// Ends a call that ran into its deadline: the connection is closed (its state is unknown).
    pub(crate) fn cut_short(&mut self, what: &str) -> DbError {
        self.conn = None;
        DbError::Other(format!("{what} was stopped at the invocation's deadline (limits.timeout_ms)"))
    }

    /// Whether this connection served an earlier invocation (it came from the pool).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The address the connection goes to (one that was checked).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Resets the connection (bounded by `deadline` and one second) and returns it to its pool; one that
    /// cannot be reset is closed.
    pub async fn release(mut self, deadline: Instant) {
        let Some(mut conn) = self.conn.take() else { return };
        if conn.is_closed() {
            return;
        }
        let budget = left(deadline, Duration::from_secs(1));
        if !matches!(tokio::time::timeout(budget, conn.reset()).await, Ok(true)) {
            return;
        }
        let permit = self.permit.take().expect("a lease holds its permit until released");
        let idle = Idle { conn, peer: self.peer, since: Instant::now(), permit };
        self.pool.put(self.key.clone(), idle);
    }
}

/// The node's pools of guests' connections to databases and brokers.
pub struct Pools {
    pub(crate) config: PoolConfig,
    node: Arc<Semaphore>,
    owners: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
    pub(crate) pg: Arc<Pool<crate::pg::PgConn>>,
    pub(crate) mysql: Arc<Pool<crate::mysql::MyConn>>,
    pub(crate) redis: Arc<Pool<crate::redis::RedisConn>>,
    pub(crate) mqtt: Arc<crate::mqtt::Brokers>,
}

impl Pools {
    /// Empty pools; within a tokio runtime, a task closes expired idle connections until the pools are
    /// dropped.
    pub fn new(config: PoolConfig) -> Arc<Pools> {
        let pools = Arc::new(Pools {
            node: Arc::new(Semaphore::new(config.max_connections)),
            owners: Mutex::new(HashMap::new()),
            pg: Pool::new(),
            mysql: Pool::new(),
            redis: Pool::new(),
            mqtt: Arc::new(crate::mqtt::Brokers::default()),
            config,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&pools);
            let every = (pools.config.max_idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(pools) = weak.upgrade() else { break };
                    pools.sweep(Instant::now());
                }
            });
        }
        pools
    }

    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    fn kinds(&self) -> [&dyn Evict; 4] {
        [&*self.pg, &*self.mysql, &*self.redis, &*self.mqtt]
    }

    /// Closes every idle connection unused since `now - max_idle`.
    pub fn sweep(&self, now: Instant) {
        for kind in self.kinds() {
            kind.sweep(now, self.config.max_idle);
        }
    }

    /// Connections open now (in use and idle), and of those, idle in a pool.
    pub fn counts(&self) -> (usize, usize) {
        let open = self.config.max_connections - self.node.available_permits();
        let idle = self.pg.idle_count() + self.mysql.idle_count() + self.redis.idle_count() + self.mqtt.idle_count();
        (open, idle)
    }

    /// Closes the oldest idle connection (of `owner`, or of anyone); false if there is none.
    fn evict_oldest(&self, owner: Option<&str>) -> bool {
        let oldest =
            self.kinds().into_iter().filter_map(|k| k.oldest(owner).map(|at| (at, k))).min_by_key(|(at, _)| *at);
        oldest.is_some_and(|(_, k)| k.evict_oldest(owner))
    }

    async fn acquire(
        &self,
        sem: &Arc<Semaphore>,
        owner: Option<&str>,
        deadline: Instant,
    ) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(p) = sem.clone().try_acquire_owned() {
                return Some(p);
            }
            if !self.evict_oldest(owner) {
                break;
            }
        }
        let wait = left(deadline, self.config.connect_timeout);
        tokio::time::timeout(wait, sem.clone().acquire_owned()).await.ok()?.ok()
    }

    /// A permit for one more connection of `owner`: free ones first, then by closing idle connections
    /// (the owner's own for its limit, anyone's for the node's), then by waiting (at most the connect
    /// timeout, never past `deadline`).
    pub(crate) async fn permit(&self, owner: &Arc<str>, deadline: Instant) -> Result<Permit, DbError> {
        let per_owner = self
            .owners
            .lock()
            .entry(owner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_connections_per_app)))
            .clone();
        let app = self.acquire(&per_owner, Some(owner), deadline).await.ok_or_else(|| {
            DbError::TooManyConnections(format!(
                "`{owner}` has {} connections to databases and brokers open, its limit ([outbound_db] max_connections_per_app); close connections it no longer uses (drop them, or use `with` blocks in the SDK)",
                self.config.max_connections_per_app
            ))
        })?;
        let node = self.acquire(&self.node, None, deadline).await.ok_or_else(|| {
            DbError::TooManyConnections(format!(
                "this node has {} connections to guests' databases and brokers open, its limit ([outbound_db] max_connections)",
                self.config.max_connections
            ))
        })?;
        Ok(Permit { _app: app, _node: node })
    }

    /// A connection of `owner` to `address` (one of `addrs`, the checked socket addresses in order of
    /// preference): an idle one from the pool, else a new one made by `connect` (each address tried in
    /// turn, each attempt bounded by the connect timeout and `deadline`).
    pub(crate) async fn lease<C, Fut>(
        &self,
        pool: &Arc<Pool<C>>,
        owner: &str,
        address: &str,
        addrs: &[SocketAddr],
        deadline: Instant,
        connect: impl Fn(SocketAddr) -> Fut,
    ) -> Result<Lease<C>, DbError>
    where
        C: Pooled,
        Fut: Future<Output = Result<C, DbError>>,
    {
        let key: Key = (Arc::from(owner), Arc::from(address));
        if let Some(idle) = pool.take(&key, addrs, self.config.max_idle) {
            return Ok(Lease {
                conn: Some(idle.conn),
                key,
                peer: idle.peer,
                permit: Some(idle.permit),
                pool: pool.clone(),
                reused: true,
            });
        }
        let permit = self.permit(&key.0, deadline).await?;
        let mut failure = DbError::ConnectionFailed("no address to connect to".into());
        for &peer in addrs {
            let budget = left(deadline, self.config.connect_timeout);
            match tokio::time::timeout(budget, connect(peer)).await {
                Ok(Ok(conn)) => {
                    return Ok(Lease {
                        conn: Some(conn),
                        key,
                        peer,
                        permit: Some(permit),
                        pool: pool.clone(),
                        reused: false,
                    });
                }
                Ok(Err(e)) => failure = e,
                Err(_) => {
                    failure = DbError::ConnectionFailed(format!(
                        "connecting to {peer} timed out after {} ms ([outbound_db] connect_timeout_ms, or the invocation's deadline)",
                        budget.as_millis()
                    ))
                }
            }
        }
        Err(failure)
    }
}

/// Connects TCP to `peer`, with a message that says what happened.
pub(crate) async fn tcp(peer: SocketAddr) -> Result<tokio::net::TcpStream, DbError> {
    match tokio::net::TcpStream::connect(peer).await {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(DbError::ConnectionFailed(format!("connection to {peer} refused: is the server running on that port?")))
        }
        Err(e) => Err(DbError::ConnectionFailed(format!("cannot connect to {peer}: {e}"))),
    }
}
