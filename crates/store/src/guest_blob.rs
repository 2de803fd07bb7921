//! Guests' blobs (the blob capability's backend): containers of named objects, written and read as streams,
//! under a container's scope (`<ns>/app/<app>/<label>/`, [`wisp_core::kv::scope`]). Apart from
//! [`crate::BlobStore`] (the platform's artifacts) so tenant data never shares a file or a name space with
//! control state.
//!
//! The trait is shaped for both backends (DESIGN §2): the embedded one ([`crate::fs_blobs::FsBlobs`]: files
//! under `<data-dir>/blobs`, a SQLite index) and a NATS JetStream object store (one bucket per owner, object
//! names `<label>/<name>`, chunked puts, `max_bytes` as the quota). An object is written through an
//! [`Upload`] (a byte sink; nothing is visible until [`Upload::commit`], which replaces the object at once)
//! and read through a [`Download`] (a byte source); neither holds a whole object in memory.
//!
//! Object names are data ([`wisp_core::blob::check_name`]): no backend turns one into a path.
//!
//! Quotas ([`BlobLimits`]): an object's size, and the total of an owner's objects (every container of one app,
//! or of one function deployed on its own — the scope without its label, [`wisp_core::blob::owner`]).

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// The largest object by default, MiB (`[blobstore] max_object_mb`).
pub const DEFAULT_MAX_OBJECT_MB: u64 = 1024;
/// The most all of an app's objects may take by default, MiB (`[blobstore] max_app_mb`).
pub const DEFAULT_MAX_APP_MB: u64 = 10 * 1024;

/// Size limits of guests' blobs (the node config's `[blobstore]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLimits {
    /// Largest object, bytes.
    pub max_object_bytes: u64,
    /// Most bytes all objects of one owner (app, or function deployed on its own) may take.
    pub max_app_bytes: u64,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits { max_object_bytes: DEFAULT_MAX_OBJECT_MB << 20, max_app_bytes: DEFAULT_MAX_APP_MB << 20 }
    }
}

impl BlobLimits {
    /// The error of an object that grew past [`BlobLimits::max_object_bytes`].
    pub fn object_too_large(&self) -> BlobError {
        BlobError::TooLarge(format!(
            "the object is larger than this node's limit of {} per object (blobstore.max_object_mb)",
            mib(self.max_object_bytes)
        ))
    }
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) { format!("{} MiB", bytes >> 20) } else { format!("{bytes} bytes") }
}

/// The error of an owner whose objects would take more than `max_app_bytes`.
pub(crate) fn app_full(would_take: u64, max_app_bytes: u64) -> BlobError {
    BlobError::TooLarge(format!(
        "the app's objects would take {would_take} bytes, over this node's limit of {} per app (blobstore.max_app_mb); delete objects to make room",
        mib(max_app_bytes)
    ))
}

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name.
    pub name: String,
    /// Its size, bytes.
    pub size: u64,
    /// When it was written, unix milliseconds.
    pub created_at_ms: u64,
}

/// A container's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerInfo {
    /// When it was created, unix milliseconds.
    pub created_at_ms: u64,
}

/// Why a blob operation failed. Messages name the container by its label, never by its scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The container does not exist (its label).
    #[error("container {0:?} does not exist; create it first")]
    NoContainer(String),
    /// No object of that name (the name).
    #[error("no object {0:?} in this container")]
    NotFound(String),
    /// A size limit (its message names the limit and its node config key).
    #[error("{0}")]
    TooLarge(String),
    /// A name or range the backend refuses.
    #[error("{0}")]
    Invalid(String),
    /// The backend failed.
    #[error("the blob store failed: {0}")]
    Backend(String),
}

impl BlobError {
    /// The error behind an I/O error of an [`Upload`] or [`Download`] (a limit it enforces comes back as
    /// itself).
    pub fn from_io(e: std::io::Error) -> BlobError {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<BlobError>()) {
            Some(b) => b.clone(),
            None => BlobError::Backend(e.to_string()),
        }
    }
}

/// Result alias.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// An object being written: bytes written to it go to the backend's staging (never to memory beyond a
/// small buffer), counted against [`BlobLimits::max_object_bytes`] (past it a write fails with
/// [`BlobError::TooLarge`] inside the I/O error, see [`BlobError::from_io`]). Dropped without
/// [`Upload::commit`], it leaves nothing behind.
#[async_trait]
pub trait Upload: AsyncWrite + Send + Unpin {
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Makes what was written the object `name` of the container at `scope`, replacing any object of that
    /// name in one step (readers see the old bytes or the new, never a mix), once it is durable.
    async fn commit(self: Box<Self>, scope: &str, name: &str) -> Result<ObjectInfo>;
}

/// A byte range of an object being read: `len` bytes from `reader`. The bytes stay readable until it is
/// dropped, even if the object is replaced or deleted meanwhile.
pub struct Download {
    /// The object.
    pub info: ObjectInfo,
    /// Bytes the reader yields.
    pub len: u64,
    /// The bytes.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("info", &self.info).field("len", &self.len).finish_non_exhaustive()
    }
}

/// Guests' blobs. `scope` is a container's scope; names are any text [`wisp_core::blob::check_name`] allows.
#[async_trait]
pub trait BlobBackend: Send + Sync {
    /// The limits it enforces.
    fn limits(&self) -> BlobLimits;
    /// Creates the container if it does not exist; answers its metadata either way.
    async fn create_container(&self, scope: &str) -> Result<ContainerInfo>;
    /// The container's metadata, if it exists.
    async fn container(&self, scope: &str) -> Result<Option<ContainerInfo>>;
    /// Deletes the container and every object in it; whether it existed.
    async fn delete_container(&self, scope: &str) -> Result<bool>;
    /// Deletes every object in the container (which must exist).
    async fn clear(&self, scope: &str) -> Result<()>;
    /// Starts writing an object.
    async fn upload(&self) -> Result<Box<dyn Upload>>;
    /// Reads `len` bytes (all, if `None`; fewer if the object ends first) of an object from `offset`;
    /// `None` if there is no such object (an error if there is no such container).
    async fn download(&self, scope: &str, name: &str, offset: u64, len: Option<u64>) -> Result<Option<Download>>;
    /// An object's metadata, if it exists.
    async fn stat(&self, scope: &str, name: &str) -> Result<Option<ObjectInfo>>;
    /// Up to `limit` objects whose names start with `prefix` and sort after `after`, in name order (bytewise).
    async fn list(&self, scope: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<ObjectInfo>>;
    /// Deletes an object; whether it existed.
    async fn delete(&self, scope: &str, name: &str) -> Result<bool>;
    /// Copies an object (to the same or another container, which must exist), replacing the target.
    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<()>;
    /// Moves (renames) an object, replacing the target.
    async fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<()>;
}

/// Objects per page of a listing over the API.
pub const PAGE_OBJECTS: usize = 1000;

/// The smallest string above every string that starts with `prefix` (bytewise, which is code point order for
/// UTF-8), or `None` if there is none (an empty prefix, or one of only `char::MAX`).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        for s in ["ab", "ab/c", "ab\u{10FFFF}"] {
            assert!(s.as_bytes() < prefix_end("ab").unwrap().as_bytes(), "{s}");
        }
    }

    #[test]
    fn limit_messages_name_the_config_key() {
        let l = BlobLimits { max_object_bytes: 1 << 20, max_app_bytes: 3 << 20 };
        assert_eq!(
            l.object_too_large().to_string(),
            "the object is larger than this node's limit of 1 MiB per object (blobstore.max_object_mb)"
        );
        assert!(app_full(5, 3 << 20).to_string().contains("limit of 3 MiB per app (blobstore.max_app_mb)"));
        let io = std::io::Error::other(l.object_too_large());
        assert_eq!(BlobError::from_io(io), l.object_too_large());
    }
}
