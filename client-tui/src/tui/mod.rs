//! The interactive terminal client.
//!
//! - [`app`]: the state, changed by events, producing actions.
//! - [`admin`]: `/user …`, a server admin's commands for other accounts.
//! - [`keys`]: key bindings.
//! - [`arrivals`]: rooms that show up through a live message before I know of them.
//! - [`editor`]: the input line editor.
//! - [`commands`]: slash commands, `/help`, completion.
//! - [`confirms`]: what waits for `y` before it deletes (`/delete`, `/purge`, `/user delete`).
//! - [`deletes`]: `/delete` of my message or someone else's, once confirmed.
//! - [`edits`]: `/edit` of my own messages, and edits from others.
//! - [`idle`]: away by itself after some minutes without input.
//! - [`mutes`]: `/mute`, `/unmute`, `/mutes` and the notices they cause.
//! - [`purges`]: `/purge`, once confirmed, deleting what someone posted lately (`chatroom purge`
//!   too, without asking).
//! - [`search`]: `/search` and its results view.
//! - [`transfers`]: file transfers as the transfers panel shows them.
//! - [`ui`]: rendering from `&App`.
//! - [`runtime`]: terminal, input thread, network tasks, reconnects.

pub mod admin;
pub mod app;
pub mod arrivals;
pub mod commands;
pub mod confirms;
pub mod deletes;
pub mod editor;
pub mod edits;
pub mod idle;
pub mod keys;
pub mod mutes;
pub mod purges;
pub mod runtime;
pub mod search;
#[cfg(test)]
mod test_support;
pub mod transfers;
pub mod ui;
