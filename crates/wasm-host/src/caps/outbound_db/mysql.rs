//! MySQL and MariaDB: `fermyon:spin/mysql@2.0.0` over `wisp_outbound_db::mysql`.

use super::{DbView, Denied, v2};
use v2::fermyon::spin::mysql as m;
use v2::fermyon::spin::rdbms_types::{Column, DbDataType as T, DbValue as V, ParameterValue as P, RowSet};
use wasmtime::component::Resource;
use wisp_core::outbound::Scheme;
use wisp_outbound_db::DbError;
use wisp_outbound_db::mysql::{MyLease, MyParam, MyRowSet, MyType, MyValue, Target};

/// A guest's MySQL connection.
pub struct MysqlHandle {
    lease: Option<MyLease>,
}

fn err(e: Denied) -> m::Error {
    match e {
        Denied::Policy(msg) => m::Error::ConnectionFailed(msg),
        Denied::Db(e) => db_err(e),
    }
}

fn db_err(e: DbError) -> m::Error {
    match e {
        DbError::InvalidAddress(s) | DbError::ConnectionFailed(s) | DbError::TooManyConnections(s) => {
            m::Error::ConnectionFailed(s)
        }
        DbError::BadParameter(s) => m::Error::BadParameter(s),
        DbError::QueryFailed { message, .. } => m::Error::QueryFailed(message),
        DbError::ValueConversion(s) => m::Error::ValueConversionFailed(s),
        DbError::TypeError(s) | DbError::Other(s) => m::Error::Other(s),
    }
}

fn param(p: P) -> MyParam {
    match p {
        P::Boolean(b) => MyParam::Boolean(b),
        P::Int8(i) => MyParam::Int(i.into()),
        P::Int16(i) => MyParam::Int(i.into()),
        P::Int32(i) => MyParam::Int(i.into()),
        P::Int64(i) => MyParam::Int(i),
        P::Uint8(u) => MyParam::Uint(u.into()),
        P::Uint16(u) => MyParam::Uint(u.into()),
        P::Uint32(u) => MyParam::Uint(u.into()),
        P::Uint64(u) => MyParam::Uint(u),
        P::Floating32(f) => MyParam::Floating32(f),
        P::Floating64(f) => MyParam::Floating64(f),
        P::Str(s) => MyParam::Str(s),
        P::Binary(b) => MyParam::Binary(b),
        P::DbNull => MyParam::DbNull,
    }
}

fn rows(r: MyRowSet) -> RowSet {
    let ty = |t: MyType| match t {
        MyType::Boolean => T::Boolean,
        MyType::Int8 => T::Int8,
        MyType::Int16 => T::Int16,
        MyType::Int32 => T::Int32,
        MyType::Int64 => T::Int64,
        MyType::Uint8 => T::Uint8,
        MyType::Uint16 => T::Uint16,
        MyType::Uint32 => T::Uint32,
        MyType::Uint64 => T::Uint64,
        MyType::Floating32 => T::Floating32,
        MyType::Floating64 => T::Floating64,
        MyType::Str => T::Str,
        MyType::Binary => T::Binary,
        MyType::Other => T::Other,
    };
    let value = |v: MyValue| match v {
        MyValue::Boolean(b) => V::Boolean(b),
        MyValue::Int8(i) => V::Int8(i),
        MyValue::Int16(i) => V::Int16(i),
        MyValue::Int32(i) => V::Int32(i),
        MyValue::Int64(i) => V::Int64(i),
        MyValue::Uint8(u) => V::Uint8(u),
        MyValue::Uint16(u) => V::Uint16(u),
        MyValue::Uint32(u) => V::Uint32(u),
        MyValue::Uint64(u) => V::Uint64(u),
        MyValue::Floating32(f) => V::Floating32(f),
        MyValue::Floating64(f) => V::Floating64(f),
        MyValue::Str(s) => V::Str(s),
        MyValue::Binary(b) => V::Binary(b),
        MyValue::DbNull => V::DbNull,
        MyValue::Unsupported => V::Unsupported,
    };
    RowSet {
        columns: r.columns.into_iter().map(|c| Column { name: c.name, data_type: ty(c.ty) }).collect(),
        rows: r.rows.into_iter().map(|row| row.into_iter().map(value).collect()).collect(),
    }
}

impl DbView<'_> {
    fn my_take(&mut self, conn: &Resource<MysqlHandle>) -> wasmtime::Result<Result<MyLease, DbError>> {
        let h = self.table.get_mut(conn)?;
        Ok(h.lease.take().ok_or_else(|| DbError::ConnectionFailed("the connection is in use by another call".into())))
    }
}

impl m::Host for DbView<'_> {}

impl m::HostConnection for DbView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<MysqlHandle>, m::Error>> {
        let o = self.opening();
        let opened = async {
            let pools = o.pools()?;
            let target = Target::parse(&address)?;
            let (host, port) = target.endpoint();
            let addrs = o.checked(Scheme::Mysql, &address, &[(host.to_string(), port)]).await?;
            Ok::<_, Denied>(pools.mysql(&o.owner, &address, &target, &addrs, o.deadline).await?)
        }
        .await;
        Ok(match opened {
            Ok(lease) => Ok(self.table.push(MysqlHandle { lease: Some(lease) })?),
            Err(e) => Err(err(e)),
        })
    }

    async fn query(
        &mut self,
        conn: Resource<MysqlHandle>,
        statement: String,
        params: Vec<P>,
    ) -> wasmtime::Result<Result<RowSet, m::Error>> {
        let params: Vec<MyParam> = params.into_iter().map(param).collect();
        let mut lease = match self.my_take(&conn)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(db_err(e))),
        };
        let max = self.max_result_bytes();
        let deadline = self.deadline();
        let out =
            crate::trace::host_call("mysql", "mysql query", lease.query(&statement, &params, deadline, max)).await;
        self.table.get_mut(&conn)?.lease = Some(lease);
        let sent: usize = params.iter().map(MyParam::payload_len).sum();
        self.count(sent + out.as_ref().map_or(0, MyRowSet::payload_len));
        Ok(out.map(rows).map_err(db_err))
    }

    async fn execute(
        &mut self,
        conn: Resource<MysqlHandle>,
        statement: String,
        params: Vec<P>,
    ) -> wasmtime::Result<Result<(), m::Error>> {
        let params: Vec<MyParam> = params.into_iter().map(param).collect();
        let mut lease = match self.my_take(&conn)? {
            Ok(l) => l,
            Err(e) => return Ok(Err(db_err(e))),
        };
        let deadline = self.deadline();
        let out = crate::trace::host_call("mysql", "mysql execute", lease.execute(&statement, &params, deadline)).await;
        self.table.get_mut(&conn)?.lease = Some(lease);
        self.count(params.iter().map(MyParam::payload_len).sum());
        Ok(out.map_err(db_err))
    }

    async fn drop(&mut self, conn: Resource<MysqlHandle>) -> wasmtime::Result<()> {
        let handle = self.table.delete(conn)?;
        if let Some(lease) = handle.lease {
            let deadline = self.deadline();
            lease.release(deadline).await;
        }
        Ok(())
    }
}
