//! The error a request handler returns: a protocol error code and a message for the user.
//!
//! Internal failures (SQLite, a dead task) are logged with their detail on the server and reach
//! the client only as [`ErrorCode::Internal`] — the peer learns nothing about the server's files.
//! When the cause is the storage failing (a full disk, a read-only database), the client is told
//! that, in words without paths, so that users know to try again later rather than report a bug.

use chatroom_protocol::{ErrorBody, ErrorCode};

/// A request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The client's fault or a rule of the product, said to the client as is.
    #[error("{}", .0.message)]
    Refused(ErrorBody),
    /// The server's fault; detail is logged, the client hears "internal error".
    #[error("internal error: {0}")]
    Internal(String),
    /// The storage failed (see [`crate::storage::StorageError::is_storage_failure`]); the
    /// writer thread has logged the detail, the client hears [`STORAGE_FAILING`].
    #[error("storage failing: {0}")]
    StorageFailing(String),
}

/// What a client is told when a write failed because the server's storage is failing.
pub const STORAGE_FAILING: &str =
    "the server could not save this: its storage is failing; try again later";

impl RequestError {
    /// A refusal with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RequestError::Refused(ErrorBody::new(code, message))
    }

    /// What the client is told.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            RequestError::Refused(body) => body.clone(),
            RequestError::Internal(_) => {
                ErrorBody::new(ErrorCode::Internal, "internal server error")
            }
            RequestError::StorageFailing(_) => ErrorBody::new(ErrorCode::Internal, STORAGE_FAILING),
        }
    }
}

impl From<crate::storage::StorageError> for RequestError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Refused(body) => RequestError::Refused(body),
            other if other.is_storage_failure() => RequestError::StorageFailing(other.to_string()),
            other => RequestError::Internal(other.to_string()),
        }
    }
}

/// Shorthand for handler results.
pub type RequestResult<T> = Result<T, RequestError>;
