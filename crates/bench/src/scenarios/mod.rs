//! The scenarios, one module per family.

mod files;
mod history;
mod irc;
mod search;
mod sessions;
mod traffic;

pub(crate) use files::files;
pub(crate) use history::history;
pub(crate) use irc::irc_fanout;
pub(crate) use search::search;
pub(crate) use sessions::{connect, idle, resume};
pub(crate) use traffic::{fanout, ingest, max, rooms};
