//! One file per subcommand.

pub mod blob;
pub mod deploy;
pub mod events;
pub mod invoke;
pub mod kv;
pub mod logs;
pub mod ls;
pub mod records;
pub mod rm;
pub mod scale;
pub mod secret;
pub mod sql;
pub mod status;
pub mod up;
