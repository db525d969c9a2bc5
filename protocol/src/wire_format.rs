//! The payload encoding: bincode 1.3.3 with explicit options. Every bincode call in the project
//! is in this module, so the payload format could be swapped in one place.
//!
//! Options (documented byte by byte in `PROTOCOL.md`): little-endian, variable-length integers,
//! a byte limit equal to the frame limit, and trailing bytes rejected.

use bincode::Options;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The value needs more bytes than the frame limit allows.
    #[error("payload exceeds the size limit")]
    SizeLimit,
    /// The bytes are not a valid encoding of the expected type (or, when encoding, the value
    /// cannot be represented).
    #[error("{0}")]
    Invalid(String),
}

impl From<bincode::Error> for PayloadError {
    fn from(e: bincode::Error) -> Self {
        match *e {
            bincode::ErrorKind::SizeLimit => PayloadError::SizeLimit,
            other => PayloadError::Invalid(other.to_string()),
        }
    }
}

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_little_endian()
        .with_varint_encoding()
        .reject_trailing_bytes()
        .with_limit(limit)
}

/// Appends the encoding of `value` to `out`; fails if it would exceed `limit` bytes.
pub(crate) fn encode_into<T: Serialize>(
    value: &T,
    limit: u64,
    out: impl std::io::Write,
) -> Result<(), PayloadError> {
    Ok(options(limit).serialize_into(out, value)?)
}

/// Decodes exactly one value that may borrow from `payload` (strings as `&str`).
pub(crate) fn decode_borrowed<'a, T: Deserialize<'a>>(
    payload: &'a [u8],
    limit: u64,
) -> Result<T, PayloadError> {
    Ok(options(limit).deserialize(payload)?)
}

/// Decodes exactly one value from the whole of `payload`.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8], limit: u64) -> Result<T, PayloadError> {
    Ok(options(limit).deserialize(payload)?)
}
