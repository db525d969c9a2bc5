//! The frame codec: a `u32` big-endian length prefix followed by that many bytes of payload.
//!
//! Decoding uses `tokio_util`'s [`LengthDelimitedCodec`] with the maximum frame length as a
//! parameter; the header is checked against that maximum before the codec reserves any buffer
//! for the body, so a hostile length prefix costs the receiver nothing. Encoding writes the same
//! framing directly into the output buffer (one pass, no intermediate copy).
//!
//! The codec is sans-IO: it works on [`BytesMut`] buffers and is driven by whatever reads the
//! socket (the server's reader task, the client, `FramedRead`, or a test feeding bytes by hand).

use crate::wire_format::{self, PayloadError};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// The default maximum payload size: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 1024 * 1024;
/// The largest frame limit a client accepts from a server: a `Welcome` advertising more is
/// taken to say this much, so that one length prefix from a hostile or broken server cannot
/// make a client reserve gigabytes. A larger frame from the server ends the connection with
/// [`CodecError::FrameTooLarge`]. (Here rather than in `client` so that a server built without
/// the client feature can refuse a larger setting.)
pub const MAX_FRAME_BYTES_ACCEPTED: u32 = 16 * 1024 * 1024;

/// What can go wrong reading or writing frames.
///
/// Each message includes its cause and no variant reports a separate
/// [`source`](std::error::Error::source), so a printed chain says each thing once.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// A length prefix announced more than the maximum, or a frame to encode needs more.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced length, or when encoding, the frame's whole length.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A payload did not decode as the expected frame type.
    #[error("malformed frame: {0}")]
    Malformed(PayloadError),
    /// A value could not be encoded (only when it exceeds the frame limit or a string is not
    /// serializable).
    #[error("cannot encode frame: {0}")]
    Encode(PayloadError),
}

impl From<std::io::Error> for CodecError {
    fn from(e: std::io::Error) -> Self {
        CodecError::Io(e)
    }
}

/// Encodes `frame` with its length prefix into a fresh [`Bytes`], ready to be written to any
/// number of sockets (the server encodes a room event once and shares these bytes).
pub fn encode_frame<T: Serialize>(frame: &T, max_frame_bytes: u32) -> Result<Bytes, CodecError> {
    let mut out = BytesMut::with_capacity(64);
    encode_frame_into(frame, max_frame_bytes, &mut out)?;
    Ok(out.freeze())
}

/// Appends `frame` with its length prefix to `out`. On error `out` is left as it was.
pub fn encode_frame_into<T: Serialize>(
    frame: &T,
    max_frame_bytes: u32,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let start = out.len();
    out.put_u32(0);
    let mut writer = out.writer();
    let encoded = wire_format::encode_into(frame, u64::from(max_frame_bytes), &mut writer);
    let out = writer.into_inner();
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(match e {
            // Encoding stopped at the limit; measuring the whole frame costs a second pass,
            // on this error path only, so that the error says how big it really was.
            PayloadError::SizeLimit => CodecError::FrameTooLarge {
                len: wire_format::encoded_len(frame).unwrap_or(u64::from(max_frame_bytes) + 1),
                max: max_frame_bytes,
            },
            other => CodecError::Encode(other),
        });
    }
    let len = out.len() - start - HEADER_LEN;
    // The bincode limit guarantees len <= max_frame_bytes <= u32::MAX.
    let len = u32::try_from(len).map_err(|_| CodecError::FrameTooLarge {
        len: len as u64,
        max: max_frame_bytes,
    })?;
    out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Decodes one payload (without its length prefix) as a frame of type `T`.
pub fn decode_payload<T: DeserializeOwned>(
    payload: &[u8],
    max_frame_bytes: u32,
) -> Result<T, CodecError> {
    wire_format::decode(payload, u64::from(max_frame_bytes)).map_err(CodecError::Malformed)
}

/// The tags that start a `ServerFrame::Event(Event::Message(..))` payload: `ServerFrame`
/// variant 2, `Event` variant 0 (one byte each; see `PROTOCOL.md`).
const MESSAGE_EVENT_TAGS: [u8; 2] = [2, 0];

/// Reads a server frame's payload as a message event without allocating, or `None` when it
/// is another frame (or not a valid one). The fields borrow from `payload`.
pub fn peek_message(payload: &[u8]) -> Option<crate::MessageView<'_>> {
    wire_format::decode_message_view(payload.strip_prefix(&MESSAGE_EVENT_TAGS)?)
}

/// A [`Decoder`] of `In` frames and [`Encoder`] of `Out` frames.
///
/// The server uses `FrameCodec<ClientFrame, ServerFrame>`, a client the reverse; see
/// [`ServerCodec`] and [`ClientCodec`].
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    lengths: LengthDelimitedCodec,
    max_frame_bytes: u32,
    /// The inner codec has consumed a header and waits for the body: the next bytes are
    /// payload, not a length.
    in_body: bool,
    _frames: PhantomData<fn(Out) -> In>,
}

/// The codec a server uses: decodes client frames, encodes server frames.
pub type ServerCodec = FrameCodec<crate::ClientFrame, crate::ServerFrame>;
/// The codec a client uses: decodes server frames, encodes client frames.
pub type ClientCodec = FrameCodec<crate::ServerFrame, crate::ClientFrame>;

impl<In, Out> FrameCodec<In, Out> {
    /// A codec that accepts payloads of at most `max_frame_bytes` bytes.
    pub fn new(max_frame_bytes: u32) -> Self {
        let lengths = LengthDelimitedCodec::builder()
            .length_field_length(HEADER_LEN)
            .big_endian()
            .max_frame_length(max_frame_bytes as usize)
            .new_codec();
        Self {
            lengths,
            max_frame_bytes,
            in_body: false,
            _frames: PhantomData,
        }
    }

    /// The payload limit in force.
    pub fn max_frame_bytes(&self) -> u32 {
        self.max_frame_bytes
    }

    /// The payload length in the header at the front of `src`, checked against the limit;
    /// `None` until the whole header is buffered.
    fn header(&self, src: &[u8]) -> Result<Option<usize>, CodecError> {
        let Some(header) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len > self.max_frame_bytes {
            return Err(CodecError::FrameTooLarge {
                len: u64::from(len),
                max: self.max_frame_bytes,
            });
        }
        Ok(Some(len as usize))
    }

    /// The next whole payload at the front of `src`, borrowed and not consumed, with the
    /// number of bytes it takes there (header included), so that the caller can read it in
    /// place and then advance `src` past it. `None` until it is all buffered — and while
    /// [`decode_raw`](Self::decode_raw) is part-way through a frame, whose header it has
    /// already consumed.
    pub fn peek_raw<'a>(&self, src: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, CodecError> {
        if self.in_body {
            return Ok(None);
        }
        let Some(len) = self.header(src)? else {
            return Ok(None);
        };
        let end = HEADER_LEN + len;
        Ok(src.get(HEADER_LEN..end).map(|payload| (payload, end)))
    }

    /// Splits the next whole payload off `src`, without decoding it.
    pub fn decode_raw(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, CodecError> {
        if !self.in_body && self.header(src)?.is_none() {
            return Ok(None);
        }
        // With a whole header present the inner codec consumes it; if the body is not all
        // there yet, it keeps the length and waits for more bytes.
        match self.lengths.decode(src)? {
            Some(payload) => {
                self.in_body = false;
                Ok(Some(payload))
            }
            None => {
                self.in_body = true;
                Ok(None)
            }
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.decode_raw(src)? {
            Some(payload) => decode_payload(&payload, self.max_frame_bytes).map(Some),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, frame: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame_into(&frame, self.max_frame_bytes, dst)
    }
}

impl<In, Out: Serialize> Encoder<&Out> for FrameCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, frame: &Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame_into(frame, self.max_frame_bytes, dst)
    }
}
