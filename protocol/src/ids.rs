//! Identifier newtypes and time.
//!
//! Every id is a `u64` assigned by the server. On the wire a newtype is encoded exactly as the
//! `u64` it wraps (see `PROTOCOL.md`), so the wrappers cost nothing and only keep a `RoomId` from
//! being passed where a `UserId` was meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }
    };
}

id_newtype!(
    /// A user account.
    UserId
);
id_newtype!(
    /// A room: a named room or a direct-message conversation.
    RoomId
);
id_newtype!(
    /// A stored message, unique across the server.
    MessageId
);
id_newtype!(
    /// An uploaded file.
    FileId
);
id_newtype!(
    /// An upload in progress.
    UploadId
);

/// A room's gapless message sequence number, assigned by the server at commit (first message is 1).
///
/// History paging, read markers, unread counts and resume-after-reconnect are all expressed in
/// `Seq`: a client that has seen `seq = n` in a room has seen every message of that room up to `n`.
pub type Seq = u64;

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMillis = u64;

/// The current time as [`UnixMillis`]. A clock before 1970 reads as 0.
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
