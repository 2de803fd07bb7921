//! The pools against the machine's servers (PostgreSQL 127.0.0.1:5432 user postgres db test, Redis 6379,
//! Mosquitto 1883): reuse, limits per owner with eviction of idle connections, expiry, and a call cut short by
//! its deadline closing its connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wisp_outbound_db::{DbError, PgValue, PoolConfig, Pools, mqtt, pg, redis};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn pg_addr() -> Vec<SocketAddr> {
    vec!["127.0.0.1:5432".parse().unwrap()]
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

async fn pid(lease: &mut pg::PgLease) -> i32 {
    let rows = lease.query("SELECT pg_backend_pid()", &[], later(), 1 << 20).await.unwrap();
    match rows.rows[0][0] {
        PgValue::Int32(pid) => pid,
        ref v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn a_released_connection_is_reused_by_its_owner_and_closed_once_idle_too_long() {
    let pools = Pools::new(PoolConfig::default());
    let target = pg::Target::parse(PG).unwrap();
    let mut first = pools.postgres("ns/app/a", PG, &target, &pg_addr(), later()).await.unwrap();
    assert!(!first.reused());
    let pid1 = pid(&mut first).await;
    first.release(later()).await;
    assert_eq!(pools.counts(), (1, 1));
    // Another owner, same address: a connection of its own.
    let other = pools.postgres("ns/app/b", PG, &target, &pg_addr(), later()).await.unwrap();
    assert!(!other.reused());
    drop(other); // dropped without a release: closed, not pooled
    let mut again = pools.postgres("ns/app/a", PG, &target, &pg_addr(), later()).await.unwrap();
    assert!(again.reused());
    assert_eq!(pid(&mut again).await, pid1);
    again.release(later()).await;
    // Unused for max_idle: closed by the sweep.
    pools.sweep(Instant::now() + PoolConfig::default().max_idle);
    assert_eq!(pools.counts(), (0, 0));
}

#[tokio::test]
async fn an_owner_at_its_limit_closes_its_idle_connections_then_waits_then_is_refused() {
    let config =
        PoolConfig { max_connections_per_app: 1, connect_timeout: Duration::from_millis(300), ..Default::default() };
    let pools = Pools::new(config);
    let target = pg::Target::parse(PG).unwrap();
    let held = pools.postgres("ns/app/a", PG, &target, &pg_addr(), later()).await.unwrap();
    // Its one connection is in use: a second waits for it (the connect timeout), then is refused.
    let Err(DbError::TooManyConnections(why)) = pools.postgres("ns/app/a", PG, &target, &pg_addr(), later()).await
    else {
        panic!("a second connection for an owner at its limit")
    };
    assert!(why.contains("max_connections_per_app"), "{why}");
    // Another owner is not affected.
    let b = pools.postgres("ns/app/b", PG, &target, &pg_addr(), later()).await.unwrap();
    b.release(later()).await;
    // Released, the owner's connection is idle; a connection of another kind closes it to make room.
    held.release(later()).await;
    assert_eq!(pools.counts(), (2, 2));
    let target = redis::Target::parse("redis://127.0.0.1:6379").unwrap();
    let addrs = vec!["127.0.0.1:6379".parse().unwrap()];
    let mut r = pools.redis("ns/app/a", "redis://127.0.0.1:6379", &target, &addrs, later()).await.unwrap();
    assert_eq!(pools.counts(), (2, 1), "the owner's idle PostgreSQL connection was closed");
    r.set("wisp:pools:test", b"1", later()).await.unwrap();
    assert_eq!(r.del(&["wisp:pools:test".to_string()], later()).await.unwrap(), 1);
    r.release(later()).await;
}

#[tokio::test]
async fn a_call_cut_short_by_the_deadline_closes_its_connection() {
    let pools = Pools::new(PoolConfig::default());
    let target = pg::Target::parse(PG).unwrap();
    let mut lease = pools.postgres("ns/app/a", PG, &target, &pg_addr(), later()).await.unwrap();
    let soon = Instant::now() + Duration::from_millis(200);
    let Err(DbError::Other(why)) = lease.query("SELECT pg_sleep(10)", &[], soon, 1 << 20).await else {
        panic!("the query outlived its deadline")
    };
    assert!(why.contains("stopped at the invocation's deadline"), "{why}");
    let Err(DbError::ConnectionFailed(why)) = lease.execute("SELECT 1", &[], later()).await else {
        panic!("the connection was used again")
    };
    assert!(why.contains("cut short"), "{why}");
    lease.release(later()).await;
    assert_eq!(pools.counts(), (0, 0), "nothing pooled, nothing open");
}

#[tokio::test]
async fn an_owners_publishers_share_one_broker_connection() {
    let pools = Pools::new(PoolConfig::default());
    let address = "mqtt://127.0.0.1:1883?client_id=wisp-pools-test";
    let target = mqtt::Target::parse(address).unwrap();
    let addrs = vec!["127.0.0.1:1883".parse().unwrap()];
    let a = pools.mqtt("ns/app/a", address, &target, "", "", 30, &addrs, later()).await.unwrap();
    let b = pools.mqtt("ns/app/a", address, &target, "", "", 30, &addrs, later()).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let (x, y) = tokio::join!(
        a.publish("wisp/pools/test", b"one".to_vec(), mqtt::Qos::AtLeastOnce, later()),
        b.publish("wisp/pools/test", b"two".to_vec(), mqtt::Qos::ExactlyOnce, later()),
    );
    x.unwrap();
    y.unwrap();
    let Err(DbError::Other(why)) = a.publish("wisp/+/test", vec![], mqtt::Qos::AtMostOnce, later()).await else {
        panic!("a wildcard topic was published to")
    };
    assert!(why.contains("wildcard"), "{why}");
    assert_eq!(pools.counts(), (1, 0), "one connection, in use");
    drop((a, b));
    assert_eq!(pools.counts(), (1, 1));
}
