//! The records database (`<data-dir>/store/records.sqlite3`, its own file, WAL): one row per invocation with
//! its record as JSON beside the columns queries filter on, and hourly usage aggregates per namespace and
//! function, updated in the same transaction as the rows they sum. Retention deletes the oldest rows (by age,
//! then beyond a count); aggregates outlive them (they are the bill).

use crate::{Filter, Row, UsageBy};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use wisp_core::record::InvocationRecord;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS invocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    trigger TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    cold INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (namespace, function, seq);
CREATE INDEX IF NOT EXISTS invocations_by_time ON invocations (at_ms);
CREATE INDEX IF NOT EXISTS invocations_by_id ON invocations (id);
CREATE TABLE IF NOT EXISTS usage_hourly (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    mib_ms INTEGER NOT NULL,
    cpu_us INTEGER NOT NULL,
    wall_us INTEGER NOT NULL,
    egress_bytes INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, hour_ms)
) WITHOUT ROWID;
";

const HOUR_MS: u64 = 3_600_000;

/// Opens (creating) the database at `path`.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Records are metering data, not acknowledged promises: a crash may lose the last batch, never corrupt.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Whether a record counts as an error: the platform or the guest failed, or the answer was a 5xx.
pub(crate) fn failed(r: &InvocationRecord) -> bool {
    r.error.is_some() || r.status >= 500
}

/// Writes `rows` and their usage in one transaction, then applies retention (`now_ms`, oldest allowed age,
/// most rows kept). Returns how many rows retention deleted.
pub(crate) fn write(
    conn: &mut Connection,
    rows: &[Row],
    now_ms: u64,
    retention_ms: u64,
    max_records: u64,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO invocations (id, namespace, function, trigger, at_ms, status, failed, cold, duration_us, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut add = tx.prepare_cached(
            "INSERT INTO usage_hourly VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (namespace, function, hour_ms) DO UPDATE SET
               requests = requests + excluded.requests, errors = errors + excluded.errors,
               cold_starts = cold_starts + excluded.cold_starts, mib_ms = mib_ms + excluded.mib_ms,
               cpu_us = cpu_us + excluded.cpu_us, wall_us = wall_us + excluded.wall_us,
               egress_bytes = egress_bytes + excluded.egress_bytes,
               bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
        )?;
        // One upsert per function and hour of the batch, not per record.
        let mut hours: std::collections::HashMap<(&str, &str, u64), [i64; 9]> = std::collections::HashMap::new();
        for row in rows {
            let r = &row.record;
            let json = serde_json::to_string(&**r).expect("records serialise");
            let failed = failed(r);
            insert.execute(params![
                r.id,
                row.namespace,
                row.function,
                r.trigger.as_ref(),
                r.at_ms as i64,
                r.status,
                failed,
                r.cold,
                r.duration_us as i64,
                json
            ])?;
            let wall = std::time::Duration::from_micros(r.wall_us);
            let mib_ms = (r.memory_limit_bytes >> 20) * wisp_core::usage::billed_ms(wall);
            let sums = hours.entry((&row.namespace, &row.function, r.at_ms - r.at_ms % HOUR_MS)).or_default();
            for (sum, v) in sums.iter_mut().zip([
                1,
                failed as u64,
                r.cold as u64,
                mib_ms,
                r.cpu_us,
                r.wall_us,
                r.egress_bytes,
                r.bytes_in,
                r.bytes_out,
            ]) {
                *sum += v as i64;
            }
        }
        for (
            (namespace, function, hour_ms),
            [requests, errors, cold, mib_ms, cpu, wall, egress, bytes_in, bytes_out],
        ) in hours
        {
            add.execute(params![
                namespace,
                function,
                hour_ms as i64,
                requests,
                errors,
                cold,
                mib_ms,
                cpu,
                wall,
                egress,
                bytes_in,
                bytes_out
            ])?;
        }
    }
    let mut deleted = tx
        .prepare_cached("DELETE FROM invocations WHERE at_ms < ?1")?
        .execute([now_ms.saturating_sub(retention_ms) as i64])?;
    // Rows are only ever deleted oldest first, so those kept are the newest `max_records` sequence numbers.
    let last: Option<i64> =
        tx.prepare_cached("SELECT max(seq) FROM invocations")?.query_row([], |r| r.get(0)).optional()?.flatten();
    if let Some(last) = last {
        deleted +=
            tx.prepare_cached("DELETE FROM invocations WHERE seq <= ?1")?.execute([last - max_records as i64])?;
    }
    tx.commit()?;
    Ok(deleted as u64)
}

/// One page of records, newest first, and the cursor of the next (older) page.
pub(crate) fn query(conn: &Connection, f: &Filter) -> rusqlite::Result<(Vec<crate::Listed>, Option<i64>)> {
    let mut sql = String::from("SELECT seq, namespace, function, record FROM invocations WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(ns) = &f.namespace {
        arg(&mut sql, " AND namespace = ?", ns.clone().into());
    }
    if let Some(name) = &f.function {
        arg(&mut sql, " AND function = ?", name.clone().into());
    }
    if let Some(t) = f.since_ms {
        arg(&mut sql, " AND at_ms >= ?", (t as i64).into());
    }
    if let Some(t) = f.until_ms {
        arg(&mut sql, " AND at_ms < ?", (t as i64).into());
    }
    if let Some(t) = &f.trigger {
        arg(&mut sql, " AND trigger = ?", t.clone().into());
    }
    if let Some(id) = &f.id {
        arg(&mut sql, " AND id = ?", id.clone().into());
    }
    match f.status {
        Some(crate::StatusFilter::Error) => sql.push_str(" AND failed = 1"),
        Some(crate::StatusFilter::Ok) => sql.push_str(" AND failed = 0"),
        Some(crate::StatusFilter::Code(c)) => arg(&mut sql, " AND status = ?", i64::from(c).into()),
        None => {}
    }
    if let Some(before) = f.before {
        arg(&mut sql, " AND seq < ?", before.into());
    }
    arg(&mut sql, " ORDER BY seq DESC LIMIT ?", ((f.limit + 1) as i64).into());
    let mut stmt = conn.prepare(&sql)?;
    let mut rows: Vec<crate::Listed> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .filter_map(|row| match row {
            Ok((seq, namespace, function, json)) => match serde_json::from_str::<InvocationRecord>(&json) {
                Ok(record) => Some(Ok(crate::Listed { seq, namespace, function, record })),
                Err(e) => {
                    tracing::warn!(seq, error = %e, "skipping an unreadable invocation record");
                    None
                }
            },
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<_>>()?;
    let next = (rows.len() > f.limit).then(|| {
        rows.truncate(f.limit);
        rows.last().map(|l| l.seq)
    });
    Ok((rows, next.flatten()))
}

/// One row of usage sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub namespace: String,
    pub function: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub mib_ms: u64,
    pub cpu_us: u64,
    pub wall_us: u64,
    pub egress_bytes: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Usage summed over the hours in `[since_ms, until_ms)` (whole hours: an hour counts if it starts in the
/// range), per function or per namespace.
pub(crate) fn usage(
    conn: &Connection,
    namespace: Option<&str>,
    since_ms: u64,
    until_ms: u64,
    by: UsageBy,
) -> rusqlite::Result<Vec<Sums>> {
    let (key, group) = match by {
        UsageBy::Function => ("namespace, function", "GROUP BY namespace, function ORDER BY namespace, function"),
        UsageBy::Namespace => ("namespace, NULL", "GROUP BY namespace ORDER BY namespace"),
    };
    let sql = format!(
        "SELECT {key}, sum(requests), sum(errors), sum(cold_starts), sum(mib_ms), sum(cpu_us), sum(wall_us),
                sum(egress_bytes), sum(bytes_in), sum(bytes_out)
         FROM usage_hourly WHERE hour_ms >= ?1 AND hour_ms < ?2 AND (?3 IS NULL OR namespace = ?3) {group}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let since = (since_ms - since_ms % HOUR_MS) as i64;
    stmt.query_map(params![since, until_ms as i64, namespace], |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
        Ok(Sums {
            namespace: r.get(0)?,
            function: r.get(1)?,
            requests: n(2)?,
            errors: n(3)?,
            cold_starts: n(4)?,
            mib_ms: n(5)?,
            cpu_us: n(6)?,
            wall_us: n(7)?,
            egress_bytes: n(8)?,
            bytes_in: n(9)?,
            bytes_out: n(10)?,
        })
    })?
    .collect()
}

/// Usage per hour and function over `[since_ms, until_ms)`, oldest first.
pub(crate) fn hourly(
    conn: &Connection,
    namespace: Option<&str>,
    function: Option<&str>,
    since_ms: u64,
    until_ms: u64,
) -> rusqlite::Result<Vec<(u64, Sums)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT hour_ms, namespace, function, requests, errors, cold_starts, mib_ms, cpu_us, wall_us, egress_bytes,
                bytes_in, bytes_out
         FROM usage_hourly WHERE hour_ms >= ?1 AND hour_ms < ?2 AND (?3 IS NULL OR namespace = ?3)
           AND (?4 IS NULL OR function = ?4)
         ORDER BY hour_ms, namespace, function",
    )?;
    let since = (since_ms - since_ms % HOUR_MS) as i64;
    stmt.query_map(params![since, until_ms as i64, namespace, function], |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
        Ok((
            n(0)?,
            Sums {
                namespace: r.get(1)?,
                function: Some(r.get(2)?),
                requests: n(3)?,
                errors: n(4)?,
                cold_starts: n(5)?,
                mib_ms: n(6)?,
                cpu_us: n(7)?,
                wall_us: n(8)?,
                egress_bytes: n(9)?,
                bytes_in: n(10)?,
                bytes_out: n(11)?,
            },
        ))
    })?
    .collect()
}

/// A function's invocations over `[since_ms, until_ms)` in buckets of `step_ms`: requests, errors, cold
/// starts and latency percentiles (of the whole duration, queue included). Only buckets with invocations.
pub(crate) fn series(
    conn: &Connection,
    namespace: &str,
    function: &str,
    since_ms: u64,
    until_ms: u64,
    step_ms: u64,
) -> rusqlite::Result<Vec<crate::Point>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, duration_us, failed, cold FROM invocations
         WHERE namespace = ?1 AND function = ?2 AND at_ms >= ?3 AND at_ms < ?4 ORDER BY at_ms",
    )?;
    let mut points: Vec<crate::Point> = Vec::new();
    let mut durations: Vec<u64> = Vec::new();
    let finish = |p: &mut crate::Point, d: &mut Vec<u64>| {
        d.sort_unstable();
        let q = |f: f64| d[((d.len() - 1) as f64 * f).round() as usize] as f64 / 1000.0;
        (p.p50_ms, p.p90_ms, p.p99_ms) = (q(0.5), q(0.9), q(0.99));
        d.clear();
    };
    let rows = stmt.query_map(params![namespace, function, since_ms as i64, until_ms as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, bool>(2)?, r.get::<_, bool>(3)?))
    })?;
    for row in rows {
        let (at, duration, failed, cold) = row?;
        let t = since_ms + (at - since_ms) / step_ms * step_ms;
        if points.last().is_none_or(|p| p.t_ms != t) {
            if let Some(p) = points.last_mut() {
                finish(p, &mut durations);
            }
            points.push(crate::Point { t_ms: t, ..Default::default() });
        }
        let p = points.last_mut().expect("pushed");
        p.requests += 1;
        p.errors += u64::from(failed);
        p.cold_starts += u64::from(cold);
        durations.push(duration);
    }
    if let Some(p) = points.last_mut() {
        finish(p, &mut durations);
    }
    Ok(points)
}
