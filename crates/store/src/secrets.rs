//! App secrets (DESIGN §8): values set with `wisp secret set APP NAME`, stored encrypted in the platform's
//! [`KvStore`] (bucket `secrets`, key `<ns>/<app>/<name>`) with ChaCha20-Poly1305 under a 256-bit key kept in
//! the data directory (`secrets.key`, mode 0600, made on first start). Each value's associated data is its
//! own key, so a stored value moved to another name or app fails to decrypt instead of leaking there.
//!
//! Nothing here returns a value except [`Secrets::reveal`], which the scheduler calls to hand granted secrets
//! to a function's instances; listing gives names and times only. Values are kept encrypted in memory too
//! (the node's copy of the bucket), decrypted per activation.

use crate::{Expect, KvStore, Result, StoreError};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

const BUCKET: &str = "secrets";
/// Largest secret value, bytes (a secret is served as a config value).
pub const MAX_SECRET_BYTES: usize = wisp_core::config::MAX_VALUE_BYTES;

/// A secret's name and when it was last set (what listing shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// Its name.
    pub name: String,
    /// Last set, unix milliseconds.
    pub updated_at_ms: u64,
}

/// The node's secrets.
pub struct Secrets {
    key: LessSafeKey,
    rng: SystemRandom,
    kv: Arc<dyn KvStore>,
    /// `<ns>/<app>/<name>` → (sealed value, updated at).
    sealed: RwLock<BTreeMap<String, (Vec<u8>, u64)>>,
}

fn backend(what: &str) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{what}: {e}"))
}

/// Reads the key file at `path`, or makes one (32 random bytes, 0600, created exclusively).
fn load_or_create_key(path: &Path, rng: &SystemRandom) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(bytes) => {
            return Err(StoreError::Backend(format!(
                "{} holds {} bytes, not a 32-byte key: restore it from a backup (without it the stored secrets cannot be read)",
                path.display(),
                bytes.len()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(backend("read the secrets key")(e)),
    }
    rng.fill(&mut key).map_err(|_| StoreError::Backend("no randomness for the secrets key".into()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(backend("create the secrets key"))?;
    std::io::Write::write_all(&mut f, &key).map_err(backend("write the secrets key"))?;
    f.sync_all().map_err(backend("sync the secrets key"))?;
    Ok(key)
}

fn id(ns: &str, app: &str, name: &str) -> String {
    format!("{ns}/{app}/{name}")
}

impl Secrets {
    /// Opens the secrets of `kv` with the key file `key_path` (created when missing).
    pub async fn open(key_path: &Path, kv: Arc<dyn KvStore>) -> Result<Secrets> {
        let rng = SystemRandom::new();
        let raw = load_or_create_key(key_path, &rng)?;
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &raw).expect("a 32-byte key"));
        let mut sealed = BTreeMap::new();
        for e in kv.list(BUCKET, "").await? {
            let (updated, value) = split_stamp(&e.value)
                .ok_or_else(|| StoreError::Backend(format!("secret {} is not a sealed value", e.key)))?;
            sealed.insert(e.key, (value.to_vec(), updated));
        }
        Ok(Secrets { key, rng, kv, sealed: RwLock::new(sealed) })
    }

    /// Checks a secret's name: as a config key (the guest reads it under that name).
    pub fn check_name(name: &str) -> std::result::Result<(), String> {
        wisp_core::config::check_key(name).map_err(|e| e.replace("config key", "secret name"))
    }

    /// Sets (or replaces) a secret.
    pub async fn set(&self, ns: &str, app: &str, name: &str, value: &str) -> Result<()> {
        let id = id(ns, app, name);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Backend("no randomness for a nonce".into()))?;
        let mut sealed = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut sealed)
            .map_err(|_| StoreError::Backend("sealing the secret failed".into()))?;
        let mut value = nonce.to_vec();
        value.append(&mut sealed);
        let now = crate::now_ms();
        let mut stored = now.to_be_bytes().to_vec();
        stored.extend_from_slice(&value);
        self.kv.put(BUCKET, &id, stored, Expect::Any).await?;
        self.sealed.write().unwrap_or_else(|p| p.into_inner()).insert(id, (value, now));
        Ok(())
    }

    /// Removes a secret; whether it existed.
    pub async fn remove(&self, ns: &str, app: &str, name: &str) -> Result<bool> {
        let id = id(ns, app, name);
        self.kv.delete(BUCKET, &id, Expect::Any).await?;
        Ok(self.sealed.write().unwrap_or_else(|p| p.into_inner()).remove(&id).is_some())
    }

    /// The app's secrets: names and times, never values.
    pub fn list(&self, ns: &str, app: &str) -> Vec<SecretInfo> {
        let prefix = format!("{ns}/{app}/");
        let sealed = self.sealed.read().unwrap_or_else(|p| p.into_inner());
        sealed
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, (_, at))| SecretInfo { name: k[prefix.len()..].to_string(), updated_at_ms: *at })
            .collect()
    }

    /// Whether the app has a secret `name`.
    pub fn exists(&self, ns: &str, app: &str, name: &str) -> bool {
        self.sealed.read().unwrap_or_else(|p| p.into_inner()).contains_key(&id(ns, app, name))
    }

    /// A secret's value, for handing to the functions granted it. None if unset or unreadable (logged).
    pub fn reveal(&self, ns: &str, app: &str, name: &str) -> Option<String> {
        let id = id(ns, app, name);
        let mut value = self.sealed.read().unwrap_or_else(|p| p.into_inner()).get(&id)?.0.clone();
        if value.len() < NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&value[..NONCE_LEN]).ok()?;
        let opened = match self.key.open_within(nonce, Aad::from(id.as_bytes()), &mut value, NONCE_LEN..) {
            Ok(plain) => plain.to_vec(),
            Err(_) => {
                tracing::error!(secret = %id, "a stored secret does not decrypt with this node's secrets.key");
                return None;
            }
        };
        String::from_utf8(opened).ok()
    }
}

/// A stored entry: 8 bytes of update time (big-endian ms), then nonce + ciphertext + tag.
fn split_stamp(stored: &[u8]) -> Option<(u64, &[u8])> {
    if stored.len() < 8 + NONCE_LEN {
        return None;
    }
    let (at, rest) = stored.split_at(8);
    Some((u64::from_be_bytes(at.try_into().ok()?), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sealed_at_rest_bound_to_their_name_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::embedded::EmbeddedStore::open(&dir.path().join("store")).unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(store);
        let key = dir.path().join("secrets.key");
        let s = Secrets::open(&key, kv.clone()).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        s.set("ns", "shop", "db_password", "hunter2-very-secret").await.unwrap();
        assert_eq!(s.reveal("ns", "shop", "db_password").as_deref(), Some("hunter2-very-secret"));
        assert_eq!(s.reveal("ns", "other", "db_password"), None);
        let stored = kv.get(BUCKET, "ns/shop/db_password").await.unwrap().unwrap().value;
        assert!(!stored.windows(7).any(|w| w == b"hunter2"), "stored in the clear");
        // Moved to another app's name, the sealed value does not open there.
        kv.put(BUCKET, "ns/evil/db_password", stored, Expect::Any).await.unwrap();
        let s = Secrets::open(&key, kv.clone()).await.unwrap();
        assert_eq!(s.reveal("ns", "shop", "db_password").as_deref(), Some("hunter2-very-secret"));
        assert_eq!(s.reveal("ns", "evil", "db_password"), None);
        assert_eq!(s.list("ns", "shop").iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["db_password"]);
        assert!(s.remove("ns", "shop", "db_password").await.unwrap());
        assert!(!s.exists("ns", "shop", "db_password"));
        // Another key cannot read what this one sealed.
        std::fs::write(&key, [7u8; 32]).unwrap();
        let s = Secrets::open(&key, kv).await.unwrap();
        assert_eq!(s.reveal("ns", "evil", "db_password"), None);
        assert!(Secrets::check_name("Bad Name").unwrap_err().starts_with("secret name"));
    }
}
