//! One executor per guest world. Each takes an invocation's input, runs it in an instance with the
//! invocation's limits and reports it once; [`crate::code::Code`] picks the executor for the revision's
//! world. (The events issue adds `event.rs`, the `wisp:events/handler` world.)

pub(crate) mod http;
pub(crate) mod wagi;
