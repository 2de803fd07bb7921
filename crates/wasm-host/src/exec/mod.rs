//! One executor per guest world. Each takes an invocation's input, runs it in an instance with the
//! invocation's limits and reports it once; [`crate::code::Code`] picks the executor for the revision's
//! world. Events reach either world as a CloudEvents binary-mode POST ([`event`]).

pub(crate) mod event;
pub(crate) mod http;
pub(crate) mod wagi;
