//! # chatroom-protocol
//!
//! The Chat-Room wire protocol as a library, shared by the server, the terminal client and bots.
//!
//! - [`frames`]: the message types — [`ClientFrame`], [`ServerFrame`], requests, responses,
//!   events and error codes.
//! - [`mentions`]: `@name` mentions in message text, found as the server finds them.
//! - [`codec`]: the sans-IO frame codec (a `u32` big-endian length prefix, then a bincode
//!   payload), for use with any transport.
//! - [`client`] (feature `client`, on by default): an async tokio client that bots are written
//!   against; see `examples/` in the repository.
//! - [`reconnecting`] (feature `client`): a client on top of it that reconnects by itself,
//!   resumes its session and catches up on the messages missed meanwhile; what the examples
//!   use.
//! - [`transfer`] (feature `client`): resumable, verified file uploads and downloads with
//!   progress and cancellation, on top of the client.
//!
//! The exact byte encoding, with golden vectors, is specified in `PROTOCOL.md` next to this
//! crate's manifest.

#![deny(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
pub mod codec;
pub mod frames;
pub mod ids;
pub mod mentions;
#[cfg(feature = "client")]
pub mod reconnecting;
#[cfg(feature = "client")]
pub mod transfer;
mod wire_format;

pub use codec::{CodecError, FrameCodec};
pub use frames::*;
pub use ids::*;
pub use wire_format::PayloadError;
