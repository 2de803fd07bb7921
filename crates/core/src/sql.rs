//! The SQL capability's domain (DESIGN §8): grants, values, migrations. A function names the databases it
//! may open (`sqlite_databases = ["default"]`); a database is a label inside the function's namespace and app
//! (the same scoping as key-value stores, [`crate::kv::scope`]), one SQLite file each.

use serde::{Deserialize, Serialize};

/// The database a grant of `["default"]` opens, and the one an app's `migrations/*.sql` apply to.
pub const DEFAULT_DATABASE: &str = "default";

/// Checks a `sqlite_databases` grant (labels as for key-value stores).
pub fn check_grant(databases: &[String]) -> Result<(), String> {
    crate::kv::check_labels("sqlite_databases", databases)
}

/// A value bound to a statement's parameter or read from a result column (Spin's `value` variant). In JSON
/// (the API and `wisp sql`): integers and reals are numbers, text a string, null null, and a blob
/// `{"blob": "<hex>"}`.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// A 64-bit signed integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// NULL.
    Null,
}

impl SqlValue {
    /// Its payload size in bytes, as metering counts it: 8 for numbers, the length of text and blobs.
    pub fn payload_len(&self) -> usize {
        match self {
            SqlValue::Integer(_) | SqlValue::Real(_) => 8,
            SqlValue::Text(t) => t.len(),
            SqlValue::Blob(b) => b.len(),
            SqlValue::Null => 0,
        }
    }
}

impl Serialize for SqlValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SqlValue::Integer(i) => s.serialize_i64(*i),
            SqlValue::Real(f) => s.serialize_f64(*f),
            SqlValue::Text(t) => s.serialize_str(t),
            SqlValue::Blob(b) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("blob", &hex::encode(b))?;
                m.end()
            }
            SqlValue::Null => s.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for SqlValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        SqlValue::from_json(&v).map_err(D::Error::custom)
    }
}

impl SqlValue {
    /// The value a JSON parameter stands for (see the type's documentation).
    pub fn from_json(v: &serde_json::Value) -> Result<SqlValue, String> {
        use serde_json::Value as J;
        Ok(match v {
            J::Null => SqlValue::Null,
            J::Bool(b) => SqlValue::Integer(i64::from(*b)),
            J::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().ok_or_else(|| format!("{n} is not a 64-bit integer or double"))?),
            },
            J::String(s) => SqlValue::Text(s.clone()),
            J::Object(m) if m.len() == 1 && m.contains_key("blob") => {
                let hex = m["blob"].as_str().ok_or("a blob is {\"blob\": \"<hex>\"}")?;
                SqlValue::Blob(hex::decode(hex).map_err(|e| format!("blob {hex:?} is not hex: {e}"))?)
            }
            other => {
                return Err(format!(
                    "{other} is not a SQL value: use a number, a string, null or {{\"blob\": \"<hex>\"}}"
                ));
            }
        })
    }
}

/// What a statement answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<SqlValue>>,
}

impl QueryResult {
    /// The payload size of its cells (see [`SqlValue::payload_len`]).
    pub fn payload_len(&self) -> usize {
        self.rows.iter().flatten().map(SqlValue::payload_len).sum()
    }
}

/// One migration: a `.sql` file of the app's `migrations/` folder (or `migrations/<database>/`), applied
/// once, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// The file name, e.g. `001_create_todos.sql`.
    pub name: String,
    /// Its statements.
    pub sql: String,
}

/// Checks a list of migrations: names are file names ending in `.sql` (at most 255 bytes, no `/`), unique,
/// and the list is in name order.
pub fn check_migrations(migrations: &[Migration]) -> Result<(), String> {
    for (i, m) in migrations.iter().enumerate() {
        if !m.name.ends_with(".sql") || m.name.len() > 255 || m.name.contains(['/', '\\', '\0']) || m.name == ".sql" {
            return Err(format!(
                "migration name {:?} is not a file name ending in .sql (e.g. \"001_init.sql\")",
                m.name
            ));
        }
        if i > 0 && migrations[i - 1].name >= m.name {
            return Err(format!(
                "migrations must be listed in name order without repeats: {:?} comes after {:?}",
                m.name,
                migrations[i - 1].name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_json() {
        let vals = vec![
            SqlValue::Integer(-3),
            SqlValue::Real(1.5),
            SqlValue::Text("hi".into()),
            SqlValue::Blob(vec![0, 255]),
            SqlValue::Null,
        ];
        let json = serde_json::to_string(&vals).unwrap();
        assert_eq!(json, r#"[-3,1.5,"hi",{"blob":"00ff"},null]"#);
        let back: Vec<SqlValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vals);
        assert!(serde_json::from_str::<SqlValue>(r#"{"x": 1}"#).unwrap_err().to_string().contains("not a SQL value"));
        assert!(serde_json::from_str::<SqlValue>(r#"{"blob": "zz"}"#).unwrap_err().to_string().contains("not hex"));
    }

    #[test]
    fn migration_lists() {
        let m = |n: &str| Migration { name: n.into(), sql: String::new() };
        assert!(check_migrations(&[m("001_a.sql"), m("002_b.sql")]).is_ok());
        assert!(check_migrations(&[m("002_b.sql"), m("001_a.sql")]).unwrap_err().contains("name order"));
        assert!(check_migrations(&[m("a.txt")]).unwrap_err().contains("ending in .sql"));
        assert!(check_migrations(&[m("../x.sql")]).is_err());
        assert!(check_grant(&["default".into()]).is_ok());
        assert!(check_grant(&["No".into()]).unwrap_err().starts_with("sqlite_databases entry"));
    }
}
