//! Boundary tests for the frame codec, driven by hand on `BytesMut` buffers (no sockets).

use bytes::{BufMut, BytesMut};
use chatroom_protocol::codec::{
    ClientCodec, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, ServerCodec, encode_frame, encode_frame_into,
};
use chatroom_protocol::{
    ClientFrame, CodecError, ErrorBody, ErrorCode, Hello, Message, MessageId, MessageKind, Request,
    RoomId, ServerFrame, UserId,
};
use tokio_util::codec::{Decoder, Encoder};

const MAX: u32 = DEFAULT_MAX_FRAME_BYTES;

fn hello(name: &str) -> ClientFrame {
    ClientFrame::Hello(Hello {
        protocol_version: 1,
        client_name: name.to_owned(),
    })
}

fn send_message() -> ClientFrame {
    ClientFrame::Request {
        id: 300,
        body: Request::SendMessage {
            room: RoomId(7),
            text: "héllo 你好".to_owned(),
        },
    }
}

fn message_event() -> ServerFrame {
    ServerFrame::Event(chatroom_protocol::Event::Message(Message {
        id: MessageId(1_000_000),
        room: RoomId(7),
        seq: 42,
        sender: UserId(3),
        sender_name: "alice".to_owned(),
        ts: 1_700_000_000_000,
        kind: MessageKind::Text,
        text: "a message long enough to be split in many places".to_owned(),
    }))
}

/// The payload length (length prefix excluded) of `frame`.
fn payload_len<T: serde::Serialize>(frame: &T) -> u32 {
    let bytes = encode_frame(frame, MAX).expect("encodes");
    u32::try_from(bytes.len() - HEADER_LEN).expect("fits")
}

/// Feeds `bytes` to `codec` one byte at a time; every call before the last byte must return
/// `Ok(None)`, the call after the last byte must return the frame.
fn feed_bytewise<D>(codec: &mut D, bytes: &[u8]) -> D::Item
where
    D: Decoder<Error = CodecError>,
    D::Item: std::fmt::Debug,
{
    let mut buf = BytesMut::new();
    let (last, init) = bytes.split_last().expect("not empty");
    for (i, byte) in init.iter().enumerate() {
        buf.put_u8(*byte);
        match codec.decode(&mut buf) {
            Ok(None) => {}
            other => panic!("after {} of {} bytes: {other:?}", i + 1, bytes.len()),
        }
    }
    buf.put_u8(*last);
    let frame = codec
        .decode(&mut buf)
        .expect("decodes")
        .expect("a whole frame");
    assert!(buf.is_empty(), "the frame was consumed");
    assert!(codec.decode(&mut buf).expect("no error").is_none());
    frame
}

#[test]
fn frame_split_across_many_reads_decodes_at_the_last_byte() {
    let frame = send_message();
    let bytes = encode_frame(&frame, MAX).expect("encodes");
    assert_eq!(feed_bytewise(&mut ServerCodec::new(MAX), &bytes), frame);

    let event = message_event();
    let bytes = encode_frame(&event, MAX).expect("encodes");
    assert_eq!(feed_bytewise(&mut ClientCodec::new(MAX), &bytes), event);
}

#[test]
fn header_then_body_in_a_second_read_decodes() {
    // The everyday TCP case: a large frame's header and the start of its body arrive in one
    // read, the rest in the next.
    let frame = send_message();
    let bytes = encode_frame(&frame, MAX).expect("encodes");
    let mut codec = ServerCodec::new(MAX);
    let mut buf = BytesMut::from(&bytes[..HEADER_LEN + 1]);
    assert!(codec.decode(&mut buf).expect("no error").is_none());
    buf.extend_from_slice(&bytes[HEADER_LEN + 1..]);
    assert_eq!(codec.decode(&mut buf).expect("decodes"), Some(frame));
}

#[test]
fn hello_split_across_many_reads_decodes_at_the_last_byte() {
    // Hello is variant 0 and its second byte (protocol_version 1) is small, so the bug above
    // does not trigger: this is the byte-at-a-time path that works today.
    let frame = hello("a client name that spans several reads");
    let bytes = encode_frame(&frame, MAX).expect("encodes");
    assert_eq!(feed_bytewise(&mut ServerCodec::new(MAX), &bytes), frame);
}

#[test]
fn frame_split_inside_the_header_decodes_when_the_rest_arrives() {
    let frame = send_message();
    let bytes = encode_frame(&frame, MAX).expect("encodes");
    for split in 1..HEADER_LEN {
        let mut codec = ServerCodec::new(MAX);
        let mut buf = BytesMut::from(&bytes[..split]);
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        buf.extend_from_slice(&bytes[split..]);
        assert_eq!(
            codec.decode(&mut buf).expect("decodes"),
            Some(frame.clone())
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn partial_header_yields_none_and_consumes_nothing() {
    let bytes = encode_frame(&send_message(), MAX).expect("encodes");
    for n in 1..HEADER_LEN {
        let mut codec = ServerCodec::new(MAX);
        let mut buf = BytesMut::from(&bytes[..n]);
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert_eq!(
            &buf[..],
            &bytes[..n],
            "{n} header bytes must stay in the buffer"
        );
        // Asking again changes nothing either.
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert_eq!(&buf[..], &bytes[..n]);
    }
    // An empty buffer is not an error either.
    let mut buf = BytesMut::new();
    assert!(
        ServerCodec::new(MAX)
            .decode(&mut buf)
            .expect("no error")
            .is_none()
    );
}

#[test]
fn payload_of_exactly_the_max_is_accepted_and_one_byte_over_is_rejected() {
    let frame = hello(&"é".repeat(1000));
    let max = payload_len(&frame);
    assert!(max > 2000);
    let bytes = encode_frame(&frame, max).expect("a frame of exactly max bytes encodes");
    assert_eq!(bytes.len(), HEADER_LEN + max as usize);

    // Exactly the max: accepted.
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = ServerCodec::new(max).decode(&mut buf).expect("accepted");
    assert_eq!(decoded, Some(frame.clone()));
    assert!(buf.is_empty());

    // The same frame against a max one byte smaller: rejected at the header.
    let mut buf = BytesMut::from(&bytes[..]);
    match ServerCodec::new(max - 1).decode(&mut buf) {
        Err(CodecError::FrameTooLarge { len, max: limit }) => {
            assert_eq!(len, u64::from(max));
            assert_eq!(limit, max - 1);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }

    // A frame one byte longer than the max: rejected.
    let longer = hello(&format!("{}x", "é".repeat(1000)));
    assert_eq!(payload_len(&longer), max + 1);
    let bytes = encode_frame(&longer, MAX).expect("encodes under the default limit");
    let mut buf = BytesMut::from(&bytes[..]);
    match ServerCodec::new(max).decode(&mut buf) {
        Err(CodecError::FrameTooLarge { len, max: limit }) => {
            assert_eq!(len, u64::from(max) + 1);
            assert_eq!(limit, max);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }

    // Encoding a frame well over the max: refused, naming its real size (not max + 1).
    let bigger = hello(&format!("{}{}", "é".repeat(1000), "x".repeat(500)));
    match encode_frame(&bigger, max) {
        Err(CodecError::FrameTooLarge { len, max: limit }) => {
            assert_eq!(len, u64::from(payload_len(&bigger)));
            assert_eq!(len, u64::from(max) + 500);
            assert_eq!(limit, max);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[test]
fn oversized_length_prefix_is_rejected_at_the_header_without_reserving() {
    let mut codec = ServerCodec::new(MAX);
    let mut buf = BytesMut::with_capacity(HEADER_LEN);
    let capacity = buf.capacity();
    let header = 0xFFFF_FFFFu32.to_be_bytes();
    for byte in &header[..HEADER_LEN - 1] {
        buf.put_u8(*byte);
        assert!(codec.decode(&mut buf).expect("no error yet").is_none());
    }
    buf.put_u8(header[HEADER_LEN - 1]);
    assert_eq!(buf.capacity(), capacity);
    match codec.decode(&mut buf) {
        Err(CodecError::FrameTooLarge { len, max }) => {
            assert_eq!(len, u64::from(u32::MAX));
            assert_eq!(max, MAX);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(
        buf.capacity(),
        capacity,
        "no buffer may be reserved for a rejected frame"
    );

    // Just one over the limit behaves the same.
    let mut buf = BytesMut::with_capacity(HEADER_LEN);
    let capacity = buf.capacity();
    buf.put_u32(MAX + 1);
    assert!(matches!(
        ClientCodec::new(MAX).decode(&mut buf),
        Err(CodecError::FrameTooLarge { len, max }) if len == u64::from(MAX) + 1 && max == MAX
    ));
    assert_eq!(buf.capacity(), capacity);
}

#[test]
fn zero_length_frame_is_malformed() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert!(matches!(
        ServerCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert!(matches!(
        ClientCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn garbage_payload_is_malformed() {
    // Variant index 200 names no ClientFrame / ServerFrame variant.
    let mut buf = BytesMut::from(&[0u8, 0, 0, 1, 200][..]);
    assert!(matches!(
        ServerCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 1, 200][..]);
    assert!(matches!(
        ClientCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
    // A valid tag with a truncated body: Request { id: 1, body: <missing> }.
    let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 1, 1][..]);
    assert!(matches!(
        ServerCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
    // A string that is not UTF-8: Hello { 1, [0xff] }.
    let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 0, 1, 1, 0xff][..]);
    assert!(matches!(
        ServerCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn trailing_bytes_inside_a_frame_are_malformed() {
    let ping = encode_frame(&ServerFrame::Ping { nonce: 42 }, MAX).expect("encodes");
    let payload = &ping[HEADER_LEN..];
    let mut buf = BytesMut::new();
    buf.put_u32(u32::try_from(payload.len() + 1).expect("small"));
    buf.extend_from_slice(payload);
    buf.put_u8(0);
    assert!(matches!(
        ClientCodec::new(MAX).decode(&mut buf),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn encoding_over_the_limit_fails_and_leaves_the_buffer_unchanged() {
    let frame = hello(&"x".repeat(100));
    let len = payload_len(&frame);

    let mut out = BytesMut::from(&b"earlier frames"[..]);
    match encode_frame_into(&frame, len - 1, &mut out) {
        Err(CodecError::FrameTooLarge { max, .. }) => assert_eq!(max, len - 1),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(&out[..], b"earlier frames");

    assert!(matches!(
        encode_frame(&frame, len - 1),
        Err(CodecError::FrameTooLarge { .. })
    ));

    // Through the Encoder impl too.
    let mut out = BytesMut::new();
    let mut codec = ClientCodec::new(len - 1);
    assert!(matches!(
        codec.encode(&frame, &mut out),
        Err(CodecError::FrameTooLarge { .. })
    ));
    assert!(out.is_empty());

    // And exactly at the limit it appends after what was there.
    let mut out = BytesMut::from(&b"x"[..]);
    encode_frame_into(&frame, len, &mut out).expect("fits exactly");
    assert_eq!(out.len(), 1 + HEADER_LEN + len as usize);
    assert_eq!(&out[1..5], &len.to_be_bytes());
}

#[test]
fn two_frames_back_to_back_decode_in_order() {
    let first = hello("bot");
    let second = send_message();
    let mut buf = BytesMut::new();
    let mut encoder = ClientCodec::new(MAX);
    encoder.encode(&first, &mut buf).expect("encodes");
    encoder.encode(second.clone(), &mut buf).expect("encodes");

    let mut codec = ServerCodec::new(MAX);
    assert_eq!(codec.decode(&mut buf).expect("decodes"), Some(first));
    assert_eq!(codec.decode(&mut buf).expect("decodes"), Some(second));
    assert!(buf.is_empty());
    assert!(codec.decode(&mut buf).expect("no error").is_none());
}

#[test]
fn an_error_frame_decodes_on_the_client() {
    let frame = ServerFrame::Error(ErrorBody::new(ErrorCode::TooSlow, "too slow"));
    let mut buf = BytesMut::from(&encode_frame(&frame, MAX).expect("encodes")[..]);
    assert_eq!(
        ClientCodec::new(MAX).decode(&mut buf).expect("decodes"),
        Some(frame)
    );
}

#[test]
fn peek_raw_borrows_the_next_whole_payload_without_consuming_it() {
    let bytes = encode_frame(&send_message(), MAX).expect("encodes");
    let codec = ServerCodec::new(MAX);
    for cut in 0..bytes.len() {
        assert_eq!(
            codec.peek_raw(&bytes[..cut]).expect("no error"),
            None,
            "cut {cut}"
        );
    }
    let mut two = bytes.to_vec();
    two.extend_from_slice(&bytes);
    let (payload, used) = codec.peek_raw(&two).expect("no error").expect("whole");
    assert_eq!(payload, &bytes[HEADER_LEN..]);
    assert_eq!(used, bytes.len());
}

#[test]
fn peek_raw_refuses_an_oversized_header_and_waits_while_decode_raw_holds_a_header() {
    let codec = ServerCodec::new(16);
    assert!(matches!(
        codec.peek_raw(&17u32.to_be_bytes()),
        Err(CodecError::FrameTooLarge { len: 17, max: 16 })
    ));

    // decode_raw consumes the header of a frame whose body is not all there yet; from then
    // on only decode_raw can finish that frame.
    let bytes = encode_frame(&send_message(), MAX).expect("encodes");
    let mut codec = ServerCodec::new(MAX);
    let mut buf = BytesMut::from(&bytes[..HEADER_LEN + 1]);
    assert_eq!(codec.decode_raw(&mut buf).expect("no error"), None);
    buf.extend_from_slice(&bytes[HEADER_LEN + 1..]);
    assert_eq!(codec.peek_raw(&buf).expect("no error"), None);
    let payload = codec
        .decode_raw(&mut buf)
        .expect("no error")
        .expect("whole");
    assert_eq!(&payload[..], &bytes[HEADER_LEN..]);
    assert!(buf.is_empty());
}
