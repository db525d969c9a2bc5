//! The scenarios, one module per family.

mod history;
mod sessions;
mod traffic;

pub(crate) use history::history;
pub(crate) use sessions::{connect, idle, resume};
pub(crate) use traffic::{fanout, ingest, max, rooms};
