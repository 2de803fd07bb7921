//! PostgreSQL values as Spin's interfaces see them (the richest, `spin:postgres@4.0.0`; older versions map
//! down): column types, result values, parameters, the server's structured error. How they travel is
//! [`crate::pg_codec`]'s.

use tokio_postgres::types::Type;

/// A column's type as the interfaces name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// `bool`.
    Boolean,
    /// A one-byte integer (PostgreSQL has none; never produced).
    Int8,
    /// `smallint`.
    Int16,
    /// `integer`.
    Int32,
    /// `bigint`.
    Int64,
    /// `real`.
    Floating32,
    /// `double precision`.
    Floating64,
    /// `text`, `varchar`, `char(n)`, `name`.
    Str,
    /// `bytea`.
    Binary,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timestamp`, `timestamptz` (as UTC).
    Datetime,
    /// Unix seconds (parameters only).
    Timestamp,
    /// `uuid`.
    Uuid,
    /// `jsonb`, `json`.
    Jsonb,
    /// `numeric`.
    Decimal,
    /// `int4range`.
    RangeInt32,
    /// `int8range`.
    RangeInt64,
    /// `numrange`.
    RangeDecimal,
    /// `integer[]`.
    ArrayInt32,
    /// `bigint[]`.
    ArrayInt64,
    /// `numeric[]`.
    ArrayDecimal,
    /// `text[]`, `varchar[]`, `char(n)[]`.
    ArrayStr,
    /// `interval`.
    Interval,
    /// Anything else, by its PostgreSQL name.
    Other(String),
}

impl PgType {
    /// The interface's name for a PostgreSQL type.
    pub fn of(ty: &Type) -> PgType {
        match *ty {
            Type::BOOL => PgType::Boolean,
            Type::INT2 => PgType::Int16,
            Type::INT4 => PgType::Int32,
            Type::INT8 => PgType::Int64,
            Type::FLOAT4 => PgType::Floating32,
            Type::FLOAT8 => PgType::Floating64,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => PgType::Str,
            Type::BYTEA => PgType::Binary,
            Type::DATE => PgType::Date,
            Type::TIME => PgType::Time,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => PgType::Datetime,
            Type::UUID => PgType::Uuid,
            Type::JSONB | Type::JSON => PgType::Jsonb,
            Type::NUMERIC => PgType::Decimal,
            Type::INT4_RANGE => PgType::RangeInt32,
            Type::INT8_RANGE => PgType::RangeInt64,
            Type::NUM_RANGE => PgType::RangeDecimal,
            Type::INT4_ARRAY => PgType::ArrayInt32,
            Type::INT8_ARRAY => PgType::ArrayInt64,
            Type::NUMERIC_ARRAY => PgType::ArrayDecimal,
            Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => PgType::ArrayStr,
            Type::INTERVAL => PgType::Interval,
            _ => PgType::Other(ty.name().to_string()),
        }
    }
}

/// Whether a range bound includes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeBound {
    /// `[` or `]`.
    Inclusive,
    /// `(` or `)`.
    Exclusive,
}

/// A range: lower and upper bound, each absent when unbounded.
pub type Range<T> = (Option<(T, RangeBound)>, Option<(T, RangeBound)>);

/// A value a query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// `bool`.
    Boolean(bool),
    /// Never produced (no one-byte integer in PostgreSQL).
    Int8(i8),
    /// `smallint`.
    Int16(i16),
    /// `integer`.
    Int32(i32),
    /// `bigint`.
    Int64(i64),
    /// `real`.
    Floating32(f32),
    /// `double precision`.
    Floating64(f64),
    /// Text types.
    Str(String),
    /// `bytea`.
    Binary(Vec<u8>),
    /// `date`: year, month, day.
    Date((i32, u8, u8)),
    /// `time`: hour, minute, second, nanosecond.
    Time((u8, u8, u8, u32)),
    /// `timestamp[tz]` as UTC: year, month, day, hour, minute, second, nanosecond.
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    /// `uuid`, hyphenated lowercase.
    Uuid(String),
    /// `jsonb` / `json`: the JSON text.
    Jsonb(Vec<u8>),
    /// `numeric`, in base 10 (`NaN`, `Infinity` as PostgreSQL writes them).
    Decimal(String),
    /// `int4range`.
    RangeInt32(Range<i32>),
    /// `int8range`.
    RangeInt64(Range<i64>),
    /// `numrange`.
    RangeDecimal(Range<String>),
    /// `integer[]` (one dimension).
    ArrayInt32(Vec<Option<i32>>),
    /// `bigint[]`.
    ArrayInt64(Vec<Option<i64>>),
    /// `numeric[]`.
    ArrayDecimal(Vec<Option<String>>),
    /// `text[]` and friends.
    ArrayStr(Vec<Option<String>>),
    /// `interval`.
    Interval {
        /// Microseconds.
        micros: i64,
        /// Days.
        days: i32,
        /// Months.
        months: i32,
    },
    /// SQL `NULL`.
    DbNull,
    /// A value without a mapping (infinite dates, multi-dimensional arrays, other types): its raw bytes
    /// in PostgreSQL's binary format.
    Unsupported(Vec<u8>),
}

/// A parameter value (`$1`, `$2`, …).
#[derive(Debug, Clone, PartialEq)]
pub enum PgParam {
    /// `bool`.
    Boolean(bool),
    /// Integers of every width (signed and, from `rdbms-types`, unsigned).
    Int(i64),
    /// An unsigned 64-bit integer.
    Uint64(u64),
    /// `real`.
    Floating32(f32),
    /// `double precision`.
    Floating64(f64),
    /// Text.
    Str(String),
    /// `bytea` (sent in binary format).
    Binary(Vec<u8>),
    /// Year, month, day.
    Date((i32, u8, u8)),
    /// Hour, minute, second, nanosecond.
    Time((u8, u8, u8, u32)),
    /// A UTC date and time.
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    /// Unix seconds.
    Timestamp(i64),
    /// A UUID in text form.
    Uuid(String),
    /// JSON text.
    Jsonb(Vec<u8>),
    /// A base-10 number.
    Decimal(String),
    /// `int4range`.
    RangeInt32(Range<i32>),
    /// `int8range`.
    RangeInt64(Range<i64>),
    /// `numrange`.
    RangeDecimal(Range<String>),
    /// `integer[]`.
    ArrayInt32(Vec<Option<i32>>),
    /// `bigint[]`.
    ArrayInt64(Vec<Option<i64>>),
    /// `numeric[]`.
    ArrayDecimal(Vec<Option<String>>),
    /// `text[]`.
    ArrayStr(Vec<Option<String>>),
    /// `interval`.
    Interval {
        /// Microseconds.
        micros: i64,
        /// Days.
        days: i32,
        /// Months.
        months: i32,
    },
    /// SQL `NULL`.
    DbNull,
}

/// PostgreSQL's structured error (`spin:postgres@4.0.0`'s `db-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgDbError {
    /// The whole error as text.
    pub as_text: String,
    /// `ERROR`, `FATAL`, …
    pub severity: String,
    /// The SQLSTATE code.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// The detail, if any.
    pub detail: Option<String>,
    /// Other fields the server sent (hint, table, column, constraint, …).
    pub extras: Vec<(String, String)>,
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: PgType,
}

/// A query's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgRowSet {
    /// The columns (also when there are no rows).
    pub columns: Vec<PgColumn>,
    /// The rows.
    pub rows: Vec<Vec<PgValue>>,
}

/// Payload bytes of a range or array: its values (numbers 8 bytes each).
fn range_len<T>(r: &Range<T>, len: impl Fn(&T) -> usize) -> usize {
    r.0.as_ref().map_or(0, |b| len(&b.0)) + r.1.as_ref().map_or(0, |b| len(&b.0))
}

fn array_len<T>(a: &[Option<T>], len: impl Fn(&T) -> usize) -> usize {
    a.iter().flatten().map(len).sum()
}

impl PgParam {
    /// Payload bytes, for metering: text and binary by length, numbers and dates 8, `NULL` 0.
    pub fn payload_len(&self) -> usize {
        match self {
            PgParam::Str(s) | PgParam::Uuid(s) | PgParam::Decimal(s) => s.len(),
            PgParam::Binary(b) | PgParam::Jsonb(b) => b.len(),
            PgParam::RangeInt32(r) => range_len(r, |_| 8),
            PgParam::RangeInt64(r) => range_len(r, |_| 8),
            PgParam::RangeDecimal(r) => range_len(r, String::len),
            PgParam::ArrayInt32(a) => array_len(a, |_| 8),
            PgParam::ArrayInt64(a) => array_len(a, |_| 8),
            PgParam::ArrayDecimal(a) | PgParam::ArrayStr(a) => array_len(a, String::len),
            PgParam::Interval { .. } => 16,
            PgParam::DbNull => 0,
            _ => 8,
        }
    }
}

impl PgRowSet {
    /// Payload bytes of every value, for metering.
    pub fn payload_len(&self) -> usize {
        self.rows.iter().flatten().map(PgValue::payload_len).sum()
    }
}

impl PgValue {
    /// Payload bytes, for metering: text and binary by length, numbers and dates 8, `NULL` 0.
    pub fn payload_len(&self) -> usize {
        match self {
            PgValue::Str(s) | PgValue::Uuid(s) | PgValue::Decimal(s) => s.len(),
            PgValue::Binary(b) | PgValue::Jsonb(b) | PgValue::Unsupported(b) => b.len(),
            PgValue::RangeInt32(r) => range_len(r, |_| 8),
            PgValue::RangeInt64(r) => range_len(r, |_| 8),
            PgValue::RangeDecimal(r) => range_len(r, String::len),
            PgValue::ArrayInt32(a) => array_len(a, |_| 8),
            PgValue::ArrayInt64(a) => array_len(a, |_| 8),
            PgValue::ArrayDecimal(a) | PgValue::ArrayStr(a) => array_len(a, String::len),
            PgValue::Interval { .. } => 16,
            PgValue::DbNull => 0,
            _ => 8,
        }
    }

    /// Roughly how many bytes the value takes, for the result cap.
    pub fn size(&self) -> usize {
        let heap = match self {
            PgValue::Str(s) | PgValue::Uuid(s) | PgValue::Decimal(s) => s.len(),
            PgValue::Binary(b) | PgValue::Jsonb(b) | PgValue::Unsupported(b) => b.len(),
            PgValue::RangeDecimal((l, u)) => l.as_ref().map_or(0, |b| b.0.len()) + u.as_ref().map_or(0, |b| b.0.len()),
            PgValue::ArrayInt32(v) => v.len() * 8,
            PgValue::ArrayInt64(v) => v.len() * 16,
            PgValue::ArrayDecimal(v) | PgValue::ArrayStr(v) => {
                v.iter().map(|s| 24 + s.as_ref().map_or(0, String::len)).sum()
            }
            _ => 0,
        };
        std::mem::size_of::<PgValue>() + heap
    }
}
