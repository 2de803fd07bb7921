//! PostgreSQL: `fermyon:spin/postgres@2.0.0`, `spin:postgres/postgres@3.0.0` and `@4.0.0`, one
//! implementation (`wisp_outbound_db::pg`) whose richest value model is v4's; older versions map down
//! (a value they cannot name is `unsupported`), as Spin does.

use super::{DbView, Denied, v2, v3, v4};
use wasmtime::component::Resource;
use wisp_core::outbound::Scheme;
use wisp_outbound_db::pg::{PgLease, Target};
use wisp_outbound_db::{DbError, PgColumn, PgParam, PgRowSet, PgType, PgValue, RangeBound};

/// A guest's PostgreSQL connection (of any version).
pub struct PgHandle {
    lease: Option<PgLease>,
}

impl DbView<'_> {
    async fn pg_open(&mut self, address: String) -> wasmtime::Result<Result<Resource<PgHandle>, Denied>> {
        let o = self.opening();
        let opened = async {
            let pools = o.pools()?;
            let target = Target::parse(&address)?;
            let addrs = o.checked(Scheme::Postgres, &address, target.endpoints()).await?;
            Ok::<_, Denied>(pools.postgres(&o.owner, &address, &target, &addrs, o.deadline).await?)
        }
        .await;
        Ok(match opened {
            Ok(lease) => Ok(self.table.push(PgHandle { lease: Some(lease) })?),
            Err(e) => Err(e),
        })
    }

    /// Takes a connection's lease out of the table for a call (the table must not stay borrowed across
    /// the await), to be put back after.
    fn pg_take(&mut self, conn: &Resource<PgHandle>) -> wasmtime::Result<Result<PgLease, DbError>> {
        let h = self.table.get_mut(conn)?;
        Ok(h.lease.take().ok_or_else(|| DbError::ConnectionFailed("the connection is in use by another call".into())))
    }

    async fn pg_query(
        &mut self,
        conn: &Resource<PgHandle>,
        statement: String,
        params: Result<Vec<PgParam>, DbError>,
    ) -> wasmtime::Result<Result<PgRowSet, DbError>> {
        let params = match params {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let mut lease = match self.pg_take(conn)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let max = self.max_result_bytes();
        let deadline = self.deadline();
        let out =
            crate::trace::host_call("postgres", "postgres query", lease.query(&statement, &params, deadline, max))
                .await;
        self.table.get_mut(conn)?.lease = Some(lease);
        let sent: usize = params.iter().map(PgParam::payload_len).sum();
        self.count(sent + out.as_ref().map_or(0, PgRowSet::payload_len));
        Ok(out)
    }

    async fn pg_execute(
        &mut self,
        conn: &Resource<PgHandle>,
        statement: String,
        params: Result<Vec<PgParam>, DbError>,
    ) -> wasmtime::Result<Result<u64, DbError>> {
        let params = match params {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let mut lease = match self.pg_take(conn)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let deadline = self.deadline();
        let out =
            crate::trace::host_call("postgres", "postgres execute", lease.execute(&statement, &params, deadline)).await;
        self.table.get_mut(conn)?.lease = Some(lease);
        self.count(params.iter().map(PgParam::payload_len).sum());
        Ok(out)
    }

    /// The guest dropped its handle: the connection goes back, reset, to the pool.
    async fn pg_drop(&mut self, conn: Resource<PgHandle>) -> wasmtime::Result<()> {
        let handle = self.table.delete(conn)?;
        if let Some(lease) = handle.lease {
            let deadline = self.deadline();
            lease.release(deadline).await;
        }
        Ok(())
    }
}

fn bound(b: RangeBound) -> v4::spin::postgres::postgres::RangeBoundKind {
    match b {
        RangeBound::Inclusive => v4::spin::postgres::postgres::RangeBoundKind::Inclusive,
        RangeBound::Exclusive => v4::spin::postgres::postgres::RangeBoundKind::Exclusive,
    }
}

fn unbound(b: v4::spin::postgres::postgres::RangeBoundKind) -> RangeBound {
    match b {
        v4::spin::postgres::postgres::RangeBoundKind::Inclusive => RangeBound::Inclusive,
        v4::spin::postgres::postgres::RangeBoundKind::Exclusive => RangeBound::Exclusive,
    }
}

// ------------------------------------------------------------------------------------------ v2 ---

mod two {
    pub use super::v2::fermyon::spin::postgres::*;
    pub use super::v2::fermyon::spin::rdbms_types::{Column, DbDataType, DbValue, ParameterValue, RowSet};
}

fn v2_err(e: Denied) -> two::Error {
    match e {
        Denied::Policy(m) => two::Error::ConnectionFailed(m),
        Denied::Db(e) => v2_db_err(e),
    }
}

fn v2_db_err(e: DbError) -> two::Error {
    match e {
        DbError::InvalidAddress(m) | DbError::ConnectionFailed(m) | DbError::TooManyConnections(m) => {
            two::Error::ConnectionFailed(m)
        }
        DbError::BadParameter(m) => two::Error::BadParameter(m),
        DbError::QueryFailed { message, .. } => two::Error::QueryFailed(message),
        DbError::ValueConversion(m) => two::Error::ValueConversionFailed(m),
        DbError::TypeError(m) | DbError::Other(m) => two::Error::Other(m),
    }
}

fn v2_param(p: two::ParameterValue) -> PgParam {
    use two::ParameterValue as P;
    match p {
        P::Boolean(b) => PgParam::Boolean(b),
        P::Int8(i) => PgParam::Int(i.into()),
        P::Int16(i) => PgParam::Int(i.into()),
        P::Int32(i) => PgParam::Int(i.into()),
        P::Int64(i) => PgParam::Int(i),
        P::Uint8(u) => PgParam::Int(u.into()),
        P::Uint16(u) => PgParam::Int(u.into()),
        P::Uint32(u) => PgParam::Int(u.into()),
        P::Uint64(u) => PgParam::Uint64(u),
        P::Floating32(f) => PgParam::Floating32(f),
        P::Floating64(f) => PgParam::Floating64(f),
        P::Str(s) => PgParam::Str(s),
        P::Binary(b) => PgParam::Binary(b),
        P::DbNull => PgParam::DbNull,
    }
}

fn v2_rows(r: PgRowSet) -> two::RowSet {
    use two::{DbDataType as T, DbValue as V};
    let ty = |t: PgType| match t {
        PgType::Boolean => T::Boolean,
        PgType::Int8 => T::Int8,
        PgType::Int16 => T::Int16,
        PgType::Int32 => T::Int32,
        PgType::Int64 => T::Int64,
        PgType::Floating32 => T::Floating32,
        PgType::Floating64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        _ => T::Other,
    };
    let value = |v: PgValue| match v {
        PgValue::Boolean(b) => V::Boolean(b),
        PgValue::Int8(i) => V::Int8(i),
        PgValue::Int16(i) => V::Int16(i),
        PgValue::Int32(i) => V::Int32(i),
        PgValue::Int64(i) => V::Int64(i),
        PgValue::Floating32(f) => V::Floating32(f),
        PgValue::Floating64(f) => V::Floating64(f),
        PgValue::Str(s) => V::Str(s),
        PgValue::Binary(b) => V::Binary(b),
        PgValue::DbNull => V::DbNull,
        _ => V::Unsupported,
    };
    two::RowSet {
        columns: r.columns.into_iter().map(|PgColumn { name, ty: t }| two::Column { name, data_type: ty(t) }).collect(),
        rows: r.rows.into_iter().map(|row| row.into_iter().map(value).collect()).collect(),
    }
}

impl two::Host for DbView<'_> {}

impl two::HostConnection for DbView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<PgHandle>, two::Error>> {
        Ok(self.pg_open(address).await?.map_err(v2_err))
    }

    async fn query(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<two::ParameterValue>,
    ) -> wasmtime::Result<Result<two::RowSet, two::Error>> {
        let params = Ok(params.into_iter().map(v2_param).collect());
        Ok(self.pg_query(&conn, statement, params).await?.map(v2_rows).map_err(v2_db_err))
    }

    async fn execute(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<two::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, two::Error>> {
        let params = Ok(params.into_iter().map(v2_param).collect());
        Ok(self.pg_execute(&conn, statement, params).await?.map_err(v2_db_err))
    }

    async fn drop(&mut self, conn: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.pg_drop(conn).await
    }
}

// ------------------------------------------------------------------------------------------ v3 ---

mod three {
    pub use super::v3::spin::postgres::postgres::*;
}

fn v3_err(e: Denied) -> three::Error {
    match e {
        Denied::Policy(m) => three::Error::ConnectionFailed(m),
        Denied::Db(e) => v3_db_err(e),
    }
}

fn v3_db_err(e: DbError) -> three::Error {
    match e {
        DbError::InvalidAddress(m) | DbError::ConnectionFailed(m) | DbError::TooManyConnections(m) => {
            three::Error::ConnectionFailed(m)
        }
        DbError::BadParameter(m) => three::Error::BadParameter(m),
        DbError::QueryFailed { message, .. } => three::Error::QueryFailed(message),
        DbError::ValueConversion(m) => three::Error::ValueConversionFailed(m),
        DbError::TypeError(m) | DbError::Other(m) => three::Error::Other(m),
    }
}

fn v3_param(p: three::ParameterValue) -> PgParam {
    use three::ParameterValue as P;
    match p {
        P::Boolean(b) => PgParam::Boolean(b),
        P::Int8(i) => PgParam::Int(i.into()),
        P::Int16(i) => PgParam::Int(i.into()),
        P::Int32(i) => PgParam::Int(i.into()),
        P::Int64(i) => PgParam::Int(i),
        P::Floating32(f) => PgParam::Floating32(f),
        P::Floating64(f) => PgParam::Floating64(f),
        P::Str(s) => PgParam::Str(s),
        P::Binary(b) => PgParam::Binary(b),
        P::Date(d) => PgParam::Date(d),
        P::Time(t) => PgParam::Time(t),
        P::Datetime(d) => PgParam::Datetime(d),
        P::Timestamp(s) => PgParam::Timestamp(s),
        P::DbNull => PgParam::DbNull,
    }
}

fn v3_rows(r: PgRowSet) -> three::RowSet {
    use three::{DbDataType as T, DbValue as V};
    let ty = |t: PgType| match t {
        PgType::Boolean => T::Boolean,
        PgType::Int8 => T::Int8,
        PgType::Int16 => T::Int16,
        PgType::Int32 => T::Int32,
        PgType::Int64 => T::Int64,
        PgType::Floating32 => T::Floating32,
        PgType::Floating64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        PgType::Date => T::Date,
        PgType::Time => T::Time,
        PgType::Datetime => T::Datetime,
        PgType::Timestamp => T::Timestamp,
        _ => T::Other,
    };
    let value = |v: PgValue| match v {
        PgValue::Boolean(b) => V::Boolean(b),
        PgValue::Int8(i) => V::Int8(i),
        PgValue::Int16(i) => V::Int16(i),
        PgValue::Int32(i) => V::Int32(i),
        PgValue::Int64(i) => V::Int64(i),
        PgValue::Floating32(f) => V::Floating32(f),
        PgValue::Floating64(f) => V::Floating64(f),
        PgValue::Str(s) => V::Str(s),
        PgValue::Binary(b) => V::Binary(b),
        PgValue::Date(d) => V::Date(d),
        PgValue::Time(t) => V::Time(t),
        PgValue::Datetime(d) => V::Datetime(d),
        PgValue::DbNull => V::DbNull,
        _ => V::Unsupported,
    };
    three::RowSet {
        columns: r
            .columns
            .into_iter()
            .map(|PgColumn { name, ty: t }| three::Column { name, data_type: ty(t) })
            .collect(),
        rows: r.rows.into_iter().map(|row| row.into_iter().map(value).collect()).collect(),
    }
}

impl three::Host for DbView<'_> {}

impl three::HostConnection for DbView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<PgHandle>, three::Error>> {
        Ok(self.pg_open(address).await?.map_err(v3_err))
    }

    async fn query(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<three::ParameterValue>,
    ) -> wasmtime::Result<Result<three::RowSet, three::Error>> {
        let params = Ok(params.into_iter().map(v3_param).collect());
        Ok(self.pg_query(&conn, statement, params).await?.map(v3_rows).map_err(v3_db_err))
    }

    async fn execute(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<three::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, three::Error>> {
        let params = Ok(params.into_iter().map(v3_param).collect());
        Ok(self.pg_execute(&conn, statement, params).await?.map_err(v3_db_err))
    }

    async fn drop(&mut self, conn: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.pg_drop(conn).await
    }
}

// ------------------------------------------------------------------------------------------ v4 ---

mod four {
    pub use super::v4::spin::postgres::postgres::*;
}

fn v4_err(e: Denied) -> four::Error {
    match e {
        Denied::Policy(m) => four::Error::ConnectionFailed(m),
        Denied::Db(e) => v4_db_err(e),
    }
}

fn v4_db_err(e: DbError) -> four::Error {
    match e {
        DbError::InvalidAddress(m) | DbError::ConnectionFailed(m) | DbError::TooManyConnections(m) => {
            four::Error::ConnectionFailed(m)
        }
        DbError::BadParameter(m) => four::Error::BadParameter(m),
        DbError::QueryFailed { message, db: None } => four::Error::QueryFailed(four::QueryError::Text(message)),
        DbError::QueryFailed { db: Some(db), .. } => {
            four::Error::QueryFailed(four::QueryError::DbError(four::DbError {
                as_text: db.as_text,
                severity: db.severity,
                code: db.code,
                message: db.message,
                detail: db.detail,
                extras: db.extras,
            }))
        }
        DbError::ValueConversion(m) => four::Error::ValueConversionFailed(m),
        DbError::TypeError(m) | DbError::Other(m) => four::Error::Other(m),
    }
}

type WitRange<T> = (Option<(T, four::RangeBoundKind)>, Option<(T, four::RangeBoundKind)>);

fn range_in<T>((l, u): WitRange<T>) -> wisp_outbound_db::PgRange<T> {
    (l.map(|(v, b)| (v, unbound(b))), u.map(|(v, b)| (v, unbound(b))))
}

fn range_out<T>((l, u): wisp_outbound_db::PgRange<T>) -> WitRange<T> {
    (l.map(|(v, b)| (v, bound(b))), u.map(|(v, b)| (v, bound(b))))
}

fn v4_param(p: four::ParameterValue) -> PgParam {
    use four::ParameterValue as P;
    match p {
        P::Boolean(b) => PgParam::Boolean(b),
        P::Int8(i) => PgParam::Int(i.into()),
        P::Int16(i) => PgParam::Int(i.into()),
        P::Int32(i) => PgParam::Int(i.into()),
        P::Int64(i) => PgParam::Int(i),
        P::Floating32(f) => PgParam::Floating32(f),
        P::Floating64(f) => PgParam::Floating64(f),
        P::Str(s) => PgParam::Str(s),
        P::Binary(b) => PgParam::Binary(b),
        P::Date(d) => PgParam::Date(d),
        P::Time(t) => PgParam::Time(t),
        P::Datetime(d) => PgParam::Datetime(d),
        P::Timestamp(s) => PgParam::Timestamp(s),
        P::Uuid(s) => PgParam::Uuid(s),
        P::Jsonb(j) => PgParam::Jsonb(j),
        P::Decimal(s) => PgParam::Decimal(s),
        P::RangeInt32(r) => PgParam::RangeInt32(range_in(r)),
        P::RangeInt64(r) => PgParam::RangeInt64(range_in(r)),
        P::RangeDecimal(r) => PgParam::RangeDecimal(range_in(r)),
        P::ArrayInt32(a) => PgParam::ArrayInt32(a),
        P::ArrayInt64(a) => PgParam::ArrayInt64(a),
        P::ArrayDecimal(a) => PgParam::ArrayDecimal(a),
        P::ArrayStr(a) => PgParam::ArrayStr(a),
        P::Interval(i) => PgParam::Interval { micros: i.micros, days: i.days, months: i.months },
        P::DbNull => PgParam::DbNull,
    }
}

fn v4_rows(r: PgRowSet) -> four::RowSet {
    use four::{DbDataType as T, DbValue as V};
    let ty = |t: PgType| match t {
        PgType::Boolean => T::Boolean,
        PgType::Int8 => T::Int8,
        PgType::Int16 => T::Int16,
        PgType::Int32 => T::Int32,
        PgType::Int64 => T::Int64,
        PgType::Floating32 => T::Floating32,
        PgType::Floating64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        PgType::Date => T::Date,
        PgType::Time => T::Time,
        PgType::Datetime => T::Datetime,
        PgType::Timestamp => T::Timestamp,
        PgType::Uuid => T::Uuid,
        PgType::Jsonb => T::Jsonb,
        PgType::Decimal => T::Decimal,
        PgType::RangeInt32 => T::RangeInt32,
        PgType::RangeInt64 => T::RangeInt64,
        PgType::RangeDecimal => T::RangeDecimal,
        PgType::ArrayInt32 => T::ArrayInt32,
        PgType::ArrayInt64 => T::ArrayInt64,
        PgType::ArrayDecimal => T::ArrayDecimal,
        PgType::ArrayStr => T::ArrayStr,
        PgType::Interval => T::Interval,
        PgType::Other(name) => T::Other(name),
    };
    let value = |v: PgValue| match v {
        PgValue::Boolean(b) => V::Boolean(b),
        PgValue::Int8(i) => V::Int8(i),
        PgValue::Int16(i) => V::Int16(i),
        PgValue::Int32(i) => V::Int32(i),
        PgValue::Int64(i) => V::Int64(i),
        PgValue::Floating32(f) => V::Floating32(f),
        PgValue::Floating64(f) => V::Floating64(f),
        PgValue::Str(s) => V::Str(s),
        PgValue::Binary(b) => V::Binary(b),
        PgValue::Date(d) => V::Date(d),
        PgValue::Time(t) => V::Time(t),
        PgValue::Datetime(d) => V::Datetime(d),
        PgValue::Uuid(s) => V::Uuid(s),
        PgValue::Jsonb(j) => V::Jsonb(j),
        PgValue::Decimal(s) => V::Decimal(s),
        PgValue::RangeInt32(r) => V::RangeInt32(range_out(r)),
        PgValue::RangeInt64(r) => V::RangeInt64(range_out(r)),
        PgValue::RangeDecimal(r) => V::RangeDecimal(range_out(r)),
        PgValue::ArrayInt32(a) => V::ArrayInt32(a),
        PgValue::ArrayInt64(a) => V::ArrayInt64(a),
        PgValue::ArrayDecimal(a) => V::ArrayDecimal(a),
        PgValue::ArrayStr(a) => V::ArrayStr(a),
        PgValue::Interval { micros, days, months } => V::Interval(four::Interval { micros, days, months }),
        PgValue::DbNull => V::DbNull,
        PgValue::Unsupported(b) => V::Unsupported(b),
    };
    four::RowSet {
        columns: r
            .columns
            .into_iter()
            .map(|PgColumn { name, ty: t }| four::Column { name, data_type: ty(t) })
            .collect(),
        rows: r.rows.into_iter().map(|row| row.into_iter().map(value).collect()).collect(),
    }
}

impl four::Host for DbView<'_> {}

impl four::HostConnection for DbView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<PgHandle>, four::Error>> {
        Ok(self.pg_open(address).await?.map_err(v4_err))
    }

    async fn query(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<four::ParameterValue>,
    ) -> wasmtime::Result<Result<four::RowSet, four::Error>> {
        let params = Ok(params.into_iter().map(v4_param).collect());
        Ok(self.pg_query(&conn, statement, params).await?.map(v4_rows).map_err(v4_db_err))
    }

    async fn execute(
        &mut self,
        conn: Resource<PgHandle>,
        statement: String,
        params: Vec<four::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, four::Error>> {
        let params = Ok(params.into_iter().map(v4_param).collect());
        Ok(self.pg_execute(&conn, statement, params).await?.map_err(v4_db_err))
    }

    async fn drop(&mut self, conn: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.pg_drop(conn).await
    }
}
