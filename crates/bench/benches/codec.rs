//! The frame codec: encode and decode time per frame, and bytes per frame, for the two frames
//! that dominate chat traffic — a client's `Request::SendMessage` and the server's
//! `Event::Message` that fans out to every member.
//!
//! `cargo bench -p chatroom-bench --bench codec`

use bytes::BytesMut;
use chatroom_protocol::codec::{
    ClientCodec, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, ServerCodec, decode_payload, encode_frame,
    encode_frame_into, peek_message,
};
use chatroom_protocol::{
    ClientFrame, Event, Message, MessageId, MessageKind, Request, RoomId, ServerFrame, UserId,
};
use divan::Bencher;
use divan::counter::BytesCount;
use std::hint::black_box;
use tokio_util::codec::Decoder;

/// A typical chat line (64 characters).
const TEXT: &str = "did anyone look at the build failure on main? looks like a flake";

fn event_message() -> ServerFrame {
    ServerFrame::Event(Event::Message(Message {
        id: MessageId(1_234_567),
        room: RoomId(42),
        seq: 98_765,
        sender: UserId(1_017),
        sender_name: "alice".to_string(),
        ts: 1_760_000_000_000,
        kind: MessageKind::Text,
        text: TEXT.to_string(),
    }))
}

fn send_message() -> ClientFrame {
    ClientFrame::Request {
        id: 77_001,
        body: Request::SendMessage {
            room: RoomId(42),
            text: TEXT.to_string(),
        },
    }
}

fn frame_len<T: serde::Serialize>(frame: &T) -> usize {
    encode_frame(frame, DEFAULT_MAX_FRAME_BYTES)
        .map(|b| b.len())
        .unwrap_or(0)
}

fn main() {
    println!(
        "bytes per frame (length prefix included): Event::Message {} B, Request::SendMessage {} B (text {} B)",
        frame_len(&event_message()),
        frame_len(&send_message()),
        TEXT.len()
    );
    divan::main();
}

/// Encoding into a fresh `Bytes` (what the server does once per fan-out).
#[divan::bench]
fn encode_event_message(bencher: Bencher) {
    let frame = event_message();
    bencher
        .counter(BytesCount::new(frame_len(&frame)))
        .bench(|| encode_frame(black_box(&frame), DEFAULT_MAX_FRAME_BYTES));
}

/// Encoding into a reused buffer.
#[divan::bench]
fn encode_event_message_into(bencher: Bencher) {
    let frame = event_message();
    let mut out = BytesMut::with_capacity(4096);
    bencher
        .counter(BytesCount::new(frame_len(&frame)))
        .bench_local(|| {
            out.clear();
            encode_frame_into(black_box(&frame), DEFAULT_MAX_FRAME_BYTES, &mut out)
        });
}

/// Decoding a whole frame from a buffer, header included (what every client does per event).
#[divan::bench]
fn decode_event_message(bencher: Bencher) {
    let bytes = encode_frame(&event_message(), DEFAULT_MAX_FRAME_BYTES).expect("encodes");
    let mut codec = ClientCodec::new(DEFAULT_MAX_FRAME_BYTES);
    bencher
        .counter(BytesCount::new(bytes.len()))
        .with_inputs(|| BytesMut::from(&bytes[..]))
        .bench_local_refs(|buf| codec.decode(buf));
}

/// Decoding only the payload (no framing).
#[divan::bench]
fn decode_event_message_payload(bencher: Bencher) {
    let bytes = encode_frame(&event_message(), DEFAULT_MAX_FRAME_BYTES).expect("encodes");
    let payload = &bytes[HEADER_LEN..];
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench(|| decode_payload::<ServerFrame>(black_box(payload), DEFAULT_MAX_FRAME_BYTES));
}

/// Reading a message event in place as a borrowed `MessageView`, payload only (what the load
/// generator's message hook does per delivery).
#[divan::bench]
fn peek_event_message(bencher: Bencher) {
    let bytes = encode_frame(&event_message(), DEFAULT_MAX_FRAME_BYTES).expect("encodes");
    let payload = &bytes[HEADER_LEN..];
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench(|| peek_message(black_box(payload)).map(|view| view.seq));
}

/// Encoding a client's send request.
#[divan::bench]
fn encode_send_message(bencher: Bencher) {
    let frame = send_message();
    bencher
        .counter(BytesCount::new(frame_len(&frame)))
        .bench(|| encode_frame(black_box(&frame), DEFAULT_MAX_FRAME_BYTES));
}

/// Decoding a client's send request, header included (what the server does per message).
#[divan::bench]
fn decode_send_message(bencher: Bencher) {
    let bytes = encode_frame(&send_message(), DEFAULT_MAX_FRAME_BYTES).expect("encodes");
    let mut codec = ServerCodec::new(DEFAULT_MAX_FRAME_BYTES);
    bencher
        .counter(BytesCount::new(bytes.len()))
        .with_inputs(|| BytesMut::from(&bytes[..]))
        .bench_local_refs(|buf| codec.decode(buf));
}
