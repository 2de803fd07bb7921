//! PostgreSQL's wire formats for [`crate::pg_values`]: results decoded from the server's binary format, and
//! parameters encoded for the type the server inferred for each `$n`.
//!
//! Parameters go in PostgreSQL's *text* format, as libpq sends them by default: the server parses each one
//! as its parameter's type, so a value the interface names loosely (an `int64` for an `integer` column, a
//! `str` for a `uuid` or `numeric` one) works and a wrong one fails with the server's own message. Binary
//! values, and intervals for `interval` parameters, go in binary format. Results come in binary format and
//! are decoded here; a type without a mapping is `unsupported` (with its raw bytes in v4).

use crate::pg_values::{PgParam, PgValue, Range, RangeBound};
use std::fmt::Write as _;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

// ------------------------------------------------------------------ calendar ---

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0 = 1 BC).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `z` days after 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn valid_date(y: i32, m: u8, d: u8) -> bool {
    (1..=12).contains(&m)
        && d >= 1
        && civil_from_days(days_from_civil(y.into(), m.into(), d.into())) == (y.into(), m.into(), d.into())
}

fn date_text(out: &mut String, (y, m, d): (i32, u8, u8)) -> Result<(), String> {
    if !valid_date(y, m, d) {
        return Err(format!("({y}, {m}, {d}) is not a date"));
    }
    if y <= 0 {
        write!(out, "{:04}-{m:02}-{d:02} BC", 1 - i64::from(y)).ok();
    } else {
        write!(out, "{y:04}-{m:02}-{d:02}").ok();
    }
    Ok(())
}

fn time_text(out: &mut String, (h, mi, s, ns): (u8, u8, u8, u32)) -> Result<(), String> {
    if h > 23 || mi > 59 || s > 59 || ns > 999_999_999 {
        return Err(format!("({h}, {mi}, {s}, {ns}) is not a time of day"));
    }
    write!(out, "{h:02}:{mi:02}:{s:02}.{ns:09}").ok();
    Ok(())
}

// ------------------------------------------------------------------ decoding ---

fn be<const N: usize>(raw: &[u8], at: usize, what: &str) -> Result<[u8; N], String> {
    raw.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("the server sent a malformed {what} value ({} bytes)", raw.len()))
}

fn exact<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    if raw.len() != N {
        return Err(format!("the server sent a malformed {what} value ({} bytes)", raw.len()));
    }
    be::<N>(raw, 0, what)
}

fn utf8(raw: &[u8]) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|_| "the server sent text that is not UTF-8".to_string())
}

/// PostgreSQL's binary `numeric` as base-10 text.
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let n = i16::from_be_bytes(be(raw, 0, "numeric")?);
    let weight = i16::from_be_bytes(be(raw, 2, "numeric")?) as i32;
    let sign = u16::from_be_bytes(be(raw, 4, "numeric")?);
    let dscale = u16::from_be_bytes(be(raw, 6, "numeric")?) as usize;
    let n = usize::try_from(n).map_err(|_| "the server sent a malformed numeric value".to_string())?;
    if raw.len() != 8 + 2 * n {
        return Err("the server sent a malformed numeric value".into());
    }
    let digit = |j: i32| -> u16 {
        if j >= 0 && (j as usize) < n {
            u16::from_be_bytes([raw[8 + 2 * j as usize], raw[9 + 2 * j as usize]])
        } else {
            0
        }
    };
    let mut s = String::new();
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x4000 => s.push('-'),
        0x0000 => {}
        _ => return Err("the server sent a malformed numeric value".into()),
    }
    if weight < 0 {
        s.push('0');
    } else {
        for j in 0..=weight {
            if j == 0 {
                write!(s, "{}", digit(j)).ok();
            } else {
                write!(s, "{:04}", digit(j)).ok();
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut j = weight + 1;
        while frac.len() < dscale {
            write!(frac, "{:04}", digit(j)).ok();
            j += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

fn range<T>(raw: &[u8], elem: impl Fn(&[u8]) -> Result<T, String>) -> Result<Range<T>, String> {
    let flags = *raw.first().ok_or("the server sent an empty range value")?;
    const EMPTY: u8 = 0x01;
    const LB_INC: u8 = 0x02;
    const UB_INC: u8 = 0x04;
    const LB_INF: u8 = 0x08;
    const UB_INF: u8 = 0x10;
    if flags & EMPTY != 0 {
        return Ok((None, None));
    }
    let mut at = 1;
    let mut bound = |inf: u8, inc: u8| -> Result<Option<(T, RangeBound)>, String> {
        if flags & inf != 0 {
            return Ok(None);
        }
        let len = i32::from_be_bytes(be(raw, at, "range")?) as usize;
        let v = raw.get(at + 4..at + 4 + len).ok_or("the server sent a malformed range value")?;
        at += 4 + len;
        let kind = if flags & inc != 0 { RangeBound::Inclusive } else { RangeBound::Exclusive };
        Ok(Some((elem(v)?, kind)))
    };
    let lower = bound(LB_INF, LB_INC)?;
    let upper = bound(UB_INF, UB_INC)?;
    Ok((lower, upper))
}

/// A one-dimensional array's elements; `None` for a multi-dimensional one.
fn array<T>(raw: &[u8], elem: impl Fn(&[u8]) -> Result<T, String>) -> Result<Option<Vec<Option<T>>>, String> {
    let ndim = i32::from_be_bytes(be(raw, 0, "array")?);
    if ndim == 0 {
        return Ok(Some(Vec::new()));
    }
    if ndim != 1 {
        return Ok(None);
    }
    let len = i32::from_be_bytes(be(raw, 12, "array")?);
    let mut at = 20;
    let mut out = Vec::with_capacity(len.max(0) as usize);
    for _ in 0..len {
        let n = i32::from_be_bytes(be(raw, at, "array")?);
        at += 4;
        if n < 0 {
            out.push(None);
            continue;
        }
        let v = raw.get(at..at + n as usize).ok_or("the server sent a malformed array value")?;
        at += n as usize;
        out.push(Some(elem(v)?));
    }
    Ok(Some(out))
}

fn i32_of(raw: &[u8]) -> Result<i32, String> {
    Ok(i32::from_be_bytes(exact(raw, "integer")?))
}

fn i64_of(raw: &[u8]) -> Result<i64, String> {
    Ok(i64::from_be_bytes(exact(raw, "bigint")?))
}

fn datetime_of(micros: i64) -> (i32, u8, u8, u8, u8, u8, u32) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days + PG_EPOCH_DAYS);
    let (h, mi, s, ns) = time_of(of_day);
    (y as i32, m as u8, d as u8, h, mi, s, ns)
}

fn time_of(micros: i64) -> (u8, u8, u8, u32) {
    let secs = micros / 1_000_000;
    ((secs / 3600) as u8, (secs / 60 % 60) as u8, (secs % 60) as u8, (micros % 1_000_000) as u32 * 1000)
}

/// Decodes one result value of type `ty` from PostgreSQL's binary format (`None`: SQL `NULL`).
pub(crate) fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<PgValue, String> {
    let Some(raw) = raw else { return Ok(PgValue::DbNull) };
    Ok(match *ty {
        Type::BOOL => PgValue::Boolean(exact::<1>(raw, "bool")?[0] != 0),
        Type::INT2 => PgValue::Int16(i16::from_be_bytes(exact(raw, "smallint")?)),
        Type::INT4 => PgValue::Int32(i32_of(raw)?),
        Type::INT8 => PgValue::Int64(i64_of(raw)?),
        Type::FLOAT4 => PgValue::Floating32(f32::from_be_bytes(exact(raw, "real")?)),
        Type::FLOAT8 => PgValue::Floating64(f64::from_be_bytes(exact(raw, "double precision")?)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => PgValue::Str(utf8(raw)?),
        Type::BYTEA => PgValue::Binary(raw.to_vec()),
        Type::DATE => {
            let days = i32::from_be_bytes(exact(raw, "date")?);
            if days == i32::MAX || days == i32::MIN {
                return Ok(PgValue::Unsupported(raw.to_vec())); // ±infinity
            }
            let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
            PgValue::Date((y as i32, m as u8, d as u8))
        }
        Type::TIME => PgValue::Time(time_of(i64::from_be_bytes(exact(raw, "time")?))),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(exact(raw, "timestamp")?);
            if micros == i64::MAX || micros == i64::MIN {
                return Ok(PgValue::Unsupported(raw.to_vec())); // ±infinity
            }
            PgValue::Datetime(datetime_of(micros))
        }
        Type::UUID => {
            let b: [u8; 16] = exact(raw, "uuid")?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            PgValue::Uuid(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
        }
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => PgValue::Jsonb(json.to_vec()),
            _ => return Err("the server sent a jsonb value of an unknown version".into()),
        },
        Type::JSON => PgValue::Jsonb(raw.to_vec()),
        Type::NUMERIC => PgValue::Decimal(numeric_text(raw)?),
        Type::INT4_RANGE => PgValue::RangeInt32(range(raw, i32_of)?),
        Type::INT8_RANGE => PgValue::RangeInt64(range(raw, i64_of)?),
        Type::NUM_RANGE => PgValue::RangeDecimal(range(raw, numeric_text)?),
        Type::INT4_ARRAY => array(raw, i32_of)?.map_or_else(|| PgValue::Unsupported(raw.to_vec()), PgValue::ArrayInt32),
        Type::INT8_ARRAY => array(raw, i64_of)?.map_or_else(|| PgValue::Unsupported(raw.to_vec()), PgValue::ArrayInt64),
        Type::NUMERIC_ARRAY => {
            array(raw, numeric_text)?.map_or_else(|| PgValue::Unsupported(raw.to_vec()), PgValue::ArrayDecimal)
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            array(raw, utf8)?.map_or_else(|| PgValue::Unsupported(raw.to_vec()), PgValue::ArrayStr)
        }
        Type::INTERVAL => PgValue::Interval {
            micros: i64::from_be_bytes(be(raw, 0, "interval")?),
            days: i32::from_be_bytes(be(raw, 8, "interval")?),
            months: i32::from_be_bytes(exact::<16>(raw, "interval").map(|b| [b[12], b[13], b[14], b[15]])?),
        },
        _ => PgValue::Unsupported(raw.to_vec()),
    })
}

// ------------------------------------------------------------------ encoding ---

/// A parameter ready to send: its format and bytes (`None`: `NULL`).
#[derive(Debug)]
pub(crate) struct Encoded {
    format: Format,
    bytes: Option<Vec<u8>>,
}

fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn range_text<T>(r: &Range<T>, show: impl Fn(&mut String, &T)) -> String {
    let mut s = String::new();
    let (lower, upper) = r;
    s.push(if matches!(lower, Some((_, RangeBound::Inclusive))) { '[' } else { '(' });
    if let Some((v, _)) = lower {
        show(&mut s, v);
    }
    s.push(',');
    if let Some((v, _)) = upper {
        show(&mut s, v);
    }
    s.push(if matches!(upper, Some((_, RangeBound::Inclusive))) { ']' } else { ')' });
    s
}

fn array_text<T>(items: &[Option<T>], show: impl Fn(&mut String, &T)) -> String {
    let mut s = String::from("{");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        match item {
            Some(v) => show(&mut s, v),
            None => s.push_str("NULL"),
        }
    }
    s.push('}');
    s
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        f.to_string()
    }
}

/// Encodes `p` for a parameter the server typed `ty`.
pub(crate) fn encode(p: &PgParam, ty: &Type) -> Result<Encoded, String> {
    let text = |s: String| Ok(Encoded { format: Format::Text, bytes: Some(s.into_bytes()) });
    let zoned = *ty == Type::TIMESTAMPTZ;
    match p {
        PgParam::DbNull => Ok(Encoded { format: Format::Text, bytes: None }),
        PgParam::Binary(b) => Ok(Encoded { format: Format::Binary, bytes: Some(b.clone()) }),
        PgParam::Boolean(b) => text(b.to_string()),
        PgParam::Int(i) => text(i.to_string()),
        PgParam::Uint64(u) => text(u.to_string()),
        PgParam::Floating32(f) => text(if f.is_finite() { f.to_string() } else { float_text(f64::from(*f)) }),
        PgParam::Floating64(f) => text(float_text(*f)),
        PgParam::Str(s) | PgParam::Uuid(s) | PgParam::Decimal(s) => text(s.clone()),
        PgParam::Jsonb(j) => match std::str::from_utf8(j) {
            Ok(s) => text(s.to_string()),
            Err(_) => Err("a jsonb parameter is not UTF-8 text".into()),
        },
        PgParam::Date(d) => {
            let mut s = String::new();
            date_text(&mut s, *d)?;
            text(s)
        }
        PgParam::Time(t) => {
            let mut s = String::new();
            time_text(&mut s, *t)?;
            text(s)
        }
        PgParam::Datetime((y, mo, d, h, mi, sec, ns)) => {
            let mut s = String::new();
            date_text(&mut s, (*y, *mo, *d))?;
            // BC dates put the era last: insert the time before it.
            let bc = s.ends_with(" BC");
            if bc {
                s.truncate(s.len() - 3);
            }
            s.push(' ');
            time_text(&mut s, (*h, *mi, *sec, *ns))?;
            if zoned {
                s.push_str("+00");
            }
            if bc {
                s.push_str(" BC");
            }
            text(s)
        }
        PgParam::Timestamp(secs) => {
            let days = secs.div_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let of_day = secs.rem_euclid(86_400);
            let y = i32::try_from(y).map_err(|_| format!("timestamp {secs} is out of range"))?;
            let mut s = String::new();
            date_text(&mut s, (y, m as u8, d as u8))?;
            let bc = s.ends_with(" BC");
            if bc {
                s.truncate(s.len() - 3);
            }
            write!(s, " {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60).ok();
            if zoned {
                s.push_str("+00");
            }
            if bc {
                s.push_str(" BC");
            }
            text(s)
        }
        PgParam::Interval { micros, days, months } => {
            if *ty == Type::INTERVAL {
                let mut b = Vec::with_capacity(16);
                b.extend_from_slice(&micros.to_be_bytes());
                b.extend_from_slice(&days.to_be_bytes());
                b.extend_from_slice(&months.to_be_bytes());
                Ok(Encoded { format: Format::Binary, bytes: Some(b) })
            } else {
                text(format!("{months} mons {days} days {micros} microseconds"))
            }
        }
        PgParam::RangeInt32(r) => text(range_text(r, |s, v| write!(s, "{v}").unwrap_or(()))),
        PgParam::RangeInt64(r) => text(range_text(r, |s, v| write!(s, "{v}").unwrap_or(()))),
        PgParam::RangeDecimal(r) => text(range_text(r, |s, v| quoted(s, v))),
        PgParam::ArrayInt32(a) => text(array_text(a, |s, v| write!(s, "{v}").unwrap_or(()))),
        PgParam::ArrayInt64(a) => text(array_text(a, |s, v| write!(s, "{v}").unwrap_or(()))),
        PgParam::ArrayDecimal(a) | PgParam::ArrayStr(a) => text(array_text(a, |s, v| quoted(s, v))),
    }
}

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.bytes {
            None => Ok(IsNull::Yes),
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        self.format
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (PG_EPOCH_DAYS, (2000, 1, 1)),
            (-1, (1969, 12, 31)),
            (19_782, (2024, 2, 29)),
            (-719_528, (0, 1, 1)),
            (2_932_896, (9999, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days, "{date:?}");
        }
        assert!(
            valid_date(2024, 2, 29) && !valid_date(2023, 2, 29) && !valid_date(2024, 13, 1) && !valid_date(2024, 4, 31)
        );
    }

    #[test]
    fn numerics_decode_exactly() {
        let enc = |weight: i16, sign: u16, dscale: u16, digits: &[u16]| {
            let mut b = Vec::new();
            b.extend_from_slice(&(digits.len() as i16).to_be_bytes());
            b.extend_from_slice(&weight.to_be_bytes());
            b.extend_from_slice(&sign.to_be_bytes());
            b.extend_from_slice(&dscale.to_be_bytes());
            for d in digits {
                b.extend_from_slice(&d.to_be_bytes());
            }
            b
        };
        for (raw, text) in [
            (enc(0, 0, 0, &[]), "0"),
            (enc(0, 0, 2, &[12, 3400]), "12.34"),
            (enc(1, 0x4000, 0, &[1, 2345]), "-12345"),
            (enc(-1, 0, 4, &[5]), "0.0005"),
            (enc(-2, 0, 8, &[12]), "0.00000012"),
            (enc(-2, 0, 6, &[1200]), "0.000012"),
            (enc(2, 0, 0, &[1]), "100000000"),
            (enc(4, 0, 9, &[1234, 5678, 9012, 3456, 7890, 1234, 5678]), "12345678901234567890.123456780"),
            (enc(0, 0xC000, 0, &[]), "NaN"),
            (enc(0, 0xD000, 0, &[]), "Infinity"),
        ] {
            assert_eq!(numeric_text(&raw).unwrap(), text);
        }
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn binary_values_decode() {
        let micros = |days: i64, of_day: i64| ((days * MICROS_PER_DAY) + of_day).to_be_bytes().to_vec();
        assert_eq!(
            decode(&Type::TIMESTAMP, Some(&micros(0, 3_723_000_456))).unwrap(),
            PgValue::Datetime((2000, 1, 1, 1, 2, 3, 456_000))
        );
        assert_eq!(
            decode(&Type::TIMESTAMPTZ, Some(&micros(-1, 0))).unwrap(),
            PgValue::Datetime((1999, 12, 31, 0, 0, 0, 0))
        );
        assert_eq!(decode(&Type::DATE, Some(&366i32.to_be_bytes())).unwrap(), PgValue::Date((2001, 1, 1)));
        assert!(matches!(decode(&Type::DATE, Some(&i32::MAX.to_be_bytes())).unwrap(), PgValue::Unsupported(_)));
        assert_eq!(
            decode(&Type::TIME, Some(&(45_296_000_001i64).to_be_bytes())).unwrap(),
            PgValue::Time((12, 34, 56, 1000))
        );
        let uuid: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            decode(&Type::UUID, Some(&uuid)).unwrap(),
            PgValue::Uuid("00010203-0405-0607-0809-0a0b0c0d0e0f".into())
        );
        assert_eq!(decode(&Type::JSONB, Some(b"\x01{\"a\":1}")).unwrap(), PgValue::Jsonb(b"{\"a\":1}".to_vec()));
        // [1,10) as int4range.
        let mut r = vec![0x02];
        for v in [1i32, 10] {
            r.extend_from_slice(&4i32.to_be_bytes());
            r.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            decode(&Type::INT4_RANGE, Some(&r)).unwrap(),
            PgValue::RangeInt32((Some((1, RangeBound::Inclusive)), Some((10, RangeBound::Exclusive))))
        );
        assert_eq!(decode(&Type::INT4_RANGE, Some(&[0x01])).unwrap(), PgValue::RangeInt32((None, None)));
        assert_eq!(decode(&Type::INT8_RANGE, Some(&[0x08 | 0x10])).unwrap(), PgValue::RangeInt64((None, None)));
        // {7,NULL} as int4[].
        let mut a = Vec::new();
        for v in [1i32, 1, 23, 2, 1, 4, 7, -1] {
            a.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(decode(&Type::INT4_ARRAY, Some(&a)).unwrap(), PgValue::ArrayInt32(vec![Some(7), None]));
        let empty = [0u8; 12];
        assert_eq!(decode(&Type::TEXT_ARRAY, Some(&empty)).unwrap(), PgValue::ArrayStr(vec![]));
        let mut iv = Vec::new();
        iv.extend_from_slice(&5i64.to_be_bytes());
        iv.extend_from_slice(&3i32.to_be_bytes());
        iv.extend_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(decode(&Type::INTERVAL, Some(&iv)).unwrap(), PgValue::Interval { micros: 5, days: 3, months: -2 });
        assert_eq!(decode(&Type::INET, Some(&[1, 2])).unwrap(), PgValue::Unsupported(vec![1, 2]));
        assert_eq!(decode(&Type::INT4, None).unwrap(), PgValue::DbNull);
        assert!(decode(&Type::INT4, Some(&[1, 2])).is_err());
        assert_eq!(crate::PgType::of(&Type::INET), crate::PgType::Other("inet".into()));
    }

    #[test]
    fn parameters_encode_as_the_server_parses_them() {
        let t = |p: PgParam, ty: &Type| {
            let e = encode(&p, ty).unwrap();
            assert!(matches!(e.format, Format::Text), "{p:?}");
            String::from_utf8(e.bytes.unwrap()).unwrap()
        };
        assert_eq!(t(PgParam::Int(-5), &Type::INT4), "-5");
        assert_eq!(t(PgParam::Floating64(f64::NEG_INFINITY), &Type::FLOAT8), "-Infinity");
        assert_eq!(t(PgParam::Floating32(0.1), &Type::FLOAT4), "0.1");
        assert_eq!(t(PgParam::Date((2024, 2, 29)), &Type::DATE), "2024-02-29");
        assert_eq!(t(PgParam::Date((0, 3, 1)), &Type::DATE), "0001-03-01 BC");
        assert_eq!(t(PgParam::Time((23, 59, 58, 5)), &Type::TIME), "23:59:58.000000005");
        assert_eq!(
            t(PgParam::Datetime((2024, 1, 2, 3, 4, 5, 600_000_000)), &Type::TIMESTAMPTZ),
            "2024-01-02 03:04:05.600000000+00"
        );
        assert_eq!(t(PgParam::Datetime((2024, 1, 2, 3, 4, 5, 0)), &Type::TIMESTAMP), "2024-01-02 03:04:05.000000000");
        assert_eq!(t(PgParam::Timestamp(86_400 + 61), &Type::TIMESTAMPTZ), "1970-01-02 00:01:01+00");
        assert_eq!(t(PgParam::Timestamp(-1), &Type::TIMESTAMP), "1969-12-31 23:59:59");
        assert_eq!(t(PgParam::RangeInt64((Some((1, RangeBound::Exclusive)), None)), &Type::INT8_RANGE), "(1,)");
        assert_eq!(
            t(PgParam::RangeDecimal((None, Some(("2.5".into(), RangeBound::Inclusive)))), &Type::NUM_RANGE),
            "(,\"2.5\"]"
        );
        assert_eq!(t(PgParam::ArrayInt32(vec![Some(1), None]), &Type::INT4_ARRAY), "{1,NULL}");
        assert_eq!(
            t(PgParam::ArrayStr(vec![Some("a\"b\\c".into()), Some("NULL".into())]), &Type::TEXT_ARRAY),
            "{\"a\\\"b\\\\c\",\"NULL\"}"
        );
        assert_eq!(t(PgParam::Interval { micros: 1, days: 2, months: 3 }, &Type::TEXT), "3 mons 2 days 1 microseconds");
        let iv = encode(&PgParam::Interval { micros: 1, days: 2, months: 3 }, &Type::INTERVAL).unwrap();
        assert!(matches!(iv.format, Format::Binary));
        assert_eq!(iv.bytes.unwrap().len(), 16);
        assert!(encode(&PgParam::DbNull, &Type::INT4).unwrap().bytes.is_none());
        assert_eq!(encode(&PgParam::Date((2023, 2, 29)), &Type::DATE).unwrap_err(), "(2023, 2, 29) is not a date");
        assert!(encode(&PgParam::Time((24, 0, 0, 0)), &Type::TIME).is_err());
        assert!(encode(&PgParam::Jsonb(vec![0xff]), &Type::JSONB).is_err());
    }
}
