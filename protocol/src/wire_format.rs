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

/// How many bytes `value` encodes to, whatever the limit; `None` if it cannot be encoded.
pub(crate) fn encoded_len<T: Serialize>(value: &T) -> Option<u64> {
    options(u64::MAX).serialized_size(value).ok()
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

/// Reads the body of a message event (what follows its two tag bytes) by hand, for the common
/// kinds — text, system, deleted — and through bincode otherwise. Both paths accept exactly the
/// same bytes (a property test holds them to it): the hand path exists because a load
/// generator reads millions of these a second, and serde's generic path costs more than the
/// rest of its work per message.
pub(crate) fn decode_message_view(body: &[u8]) -> Option<crate::MessageView<'_>> {
    read_simple_message_view(body).or_else(|| decode_borrowed(body, body.len() as u64).ok())
}

/// The hand path of [`decode_message_view`]: `None` for a file message, a bad tag or any
/// malformed or trailing byte (bincode then decides).
fn read_simple_message_view(body: &[u8]) -> Option<crate::MessageView<'_>> {
    let mut r = Reader { rest: body };
    let id = r.varint()?;
    let room = r.varint()?;
    let seq = r.varint()?;
    let sender = r.varint()?;
    let sender_name = r.str()?;
    let ts = r.varint()?;
    let kind = match r.varint()? {
        0 => crate::MessageKind::Text,
        1 => crate::MessageKind::System,
        3 => crate::MessageKind::Deleted,
        // A file message carries its `FileRef`; leave it (and any bad tag) to bincode.
        _ => return None,
    };
    let text = r.str()?;
    r.rest.is_empty().then_some(crate::MessageView {
        id: crate::MessageId(id),
        room: crate::RoomId(room),
        seq,
        sender: crate::UserId(sender),
        sender_name,
        ts,
        kind,
        text,
    })
}

/// A cursor over payload bytes that reads bincode's varints and strings (`PROTOCOL.md` §6):
/// for the hand-read message views here and the client's reading of frames it cannot decode.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let (&tag, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(match tag {
            0..=250 => u64::from(tag),
            251 => u64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?)),
            252 => u64::from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            253 => u64::from_le_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        })
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}
