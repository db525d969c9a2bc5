//! # chatroom-tui
//!
//! The `chatroom` client: with no subcommand an interactive terminal UI ([`tui`]); with one, a
//! headless command that prints plain text or JSON lines and exits non-zero with one clear line
//! on failure.
//!
//! - [`cli`]: the command line and the subcommands.
//! - [`cli_rooms`]: the subcommands that manage rooms and moderate them (join, create, invite,
//!   topic, edit, delete, kick, ban, mute and their lists).
//! - [`settings`]: server and user from flags, `CHATROOM_*` variables or
//!   `~/.config/chatroom/config.toml`.
//! - [`login`]: connecting, resuming a saved session, or logging in with a password from a
//!   file, the environment or a prompt.
//! - [`session_store`]: session tokens (and the terminal UI's last user per server) kept in the
//!   user's data dir with 0600 permissions.
//! - [`output`]: plain and JSON renderings of messages, rooms, users and files.
//! - [`progress`]: the progress bar of `upload` and `download` on a terminal.
//! - [`tui`]: the terminal UI.

#![deny(missing_docs)]

pub mod cli;
pub mod cli_rooms;
pub mod login;
pub mod output;
pub mod progress;
pub mod session_store;
pub mod settings;
pub mod tui;
