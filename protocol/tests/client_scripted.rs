//! The client over a real socket against a scripted peer: the message hook
//! (`ClientOptions::on_message`), which only a script can feed frames several to a read, split
//! mid-header and split mid-body; and the liveness check, which needs a server that goes silent
//! without closing, as one behind a dead network path does.

use bytes::BytesMut;
use chatroom_protocol::client::{Client, ClientOptions, MessageHook};
use chatroom_protocol::codec::{DEFAULT_MAX_FRAME_BYTES, ServerCodec, encode_frame_into};
use chatroom_protocol::{
    ClientFrame, Event, FileId, FileRef, Limits, Message, MessageId, MessageKind, PROTOCOL_VERSION,
    RoomId, ServerFrame, UserId, Welcome,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

const MAX: u32 = DEFAULT_MAX_FRAME_BYTES;
const WAIT: Duration = Duration::from_secs(10);

fn message(seq: u64, kind: MessageKind, text: &str) -> ServerFrame {
    ServerFrame::Event(Event::Message(Message {
        id: MessageId(1000 + seq),
        room: RoomId(7),
        seq,
        sender: UserId(3),
        sender_name: "alice".to_owned(),
        ts: 1_760_000_000_000 + seq,
        kind,
        text: text.to_owned(),
    }))
}

fn typing() -> ServerFrame {
    ServerFrame::Event(Event::Typing {
        room: RoomId(7),
        user: UserId(4),
        username: "bob".to_owned(),
    })
}

fn welcome() -> ServerFrame {
    welcome_with(30_000, 90_000)
}

fn welcome_with(heartbeat_interval_ms: u32, idle_timeout_ms: u32) -> ServerFrame {
    ServerFrame::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name: "scripted".to_owned(),
        server_version: "0".to_owned(),
        limits: Limits {
            max_frame_bytes: MAX,
            max_message_chars: 4000,
            max_history_page: 200,
            messages_per_second: 20,
            message_burst: 50,
            heartbeat_interval_ms,
            idle_timeout_ms,
        },
        registration_open: true,
    })
}

fn encode_all(frames: &[ServerFrame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        encode_frame_into(frame, MAX, &mut out).expect("encodes");
    }
    out
}

/// Reads the client's `Hello`, answers `Welcome`.
async fn greet(socket: &mut TcpStream) {
    greet_with(socket, welcome()).await;
}

async fn greet_with(socket: &mut TcpStream, welcome: ServerFrame) {
    let mut codec = ServerCodec::new(MAX);
    let mut buf = BytesMut::new();
    loop {
        if let Some(frame) = codec.decode(&mut buf).expect("a valid frame") {
            assert!(matches!(frame, ClientFrame::Hello(_)), "got {frame:?}");
            break;
        }
        assert_ne!(socket.read_buf(&mut buf).await.expect("reads"), 0, "closed");
    }
    socket
        .write_all(&encode_all(&[welcome]))
        .await
        .expect("writes");
}

#[tokio::test]
async fn the_hook_sees_every_message_whole_batched_or_split_and_other_events_queue() {
    let file = MessageKind::File(Box::new(FileRef {
        id: FileId(9),
        name: "notes.txt".to_owned(),
        size: 12,
        sha256: [7; 32],
    }));
    // Seqs 1..=3 go out one byte-run at a time, seq 4 is a file (read through the full
    // decode), a typing event sits in the middle, and seqs 5..=7 go out in a single write.
    let split = encode_all(&[
        message(1, MessageKind::Text, "héllo 你好"),
        message(2, MessageKind::System, "bob joined"),
        typing(),
        message(3, MessageKind::Deleted, ""),
        message(4, file, "notes.txt (12 B)"),
    ]);
    let batched = encode_all(&[
        message(5, MessageKind::Text, "five"),
        message(6, MessageKind::Text, &"x".repeat(300)),
        message(7, MessageKind::Text, "seven"),
    ]);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        socket.set_nodelay(true).expect("nodelay");
        greet(&mut socket).await;
        // Seven-byte pieces with a pause between them, so that the client's reads end inside
        // headers and inside bodies.
        for piece in split.chunks(7) {
            socket.write_all(piece).await.expect("writes");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        socket.write_all(&batched).await.expect("writes");
        // Stay open until the client hangs up.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });

    let seen: Arc<Mutex<Vec<(u64, String, bool)>>> = Arc::default();
    let mut options = ClientOptions::new("hook-test");
    options.on_message = Some(MessageHook::new({
        let seen = Arc::clone(&seen);
        move |m, _read_at| {
            let is_file = matches!(m.kind, MessageKind::File(_));
            if let Ok(mut seen) = seen.lock() {
                seen.push((m.seq, m.text.to_owned(), is_file));
            }
        }
    }));
    let mut client = tokio::time::timeout(WAIT, Client::connect_with(addr, options))
        .await
        .expect("connects in time")
        .expect("connects");

    let event = tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("an event in time");
    assert!(
        matches!(&event, Some(Event::Typing { username, .. }) if username == "bob"),
        "the typing event reaches the queue, got {event:?}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.lock().expect("not poisoned").len() < 7 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().expect("not poisoned").clone();
    let expected: Vec<(u64, String, bool)> = vec![
        (1, "héllo 你好".to_owned(), false),
        (2, "bob joined".to_owned(), false),
        (3, String::new(), false),
        (4, "notes.txt (12 B)".to_owned(), true),
        (5, "five".to_owned(), false),
        (6, "x".repeat(300), false),
        (7, "seven".to_owned(), false),
    ];
    assert_eq!(seen, expected);

    drop(client);
    tokio::time::timeout(WAIT, peer)
        .await
        .expect("the peer ends")
        .expect("the peer did not panic");
}

#[tokio::test]
async fn a_server_that_goes_silent_is_taken_for_dead_and_one_that_pings_is_not() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let (silent_tx, silent_rx) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        // Heartbeats every 200 ms and a 1 s idle timeout: the client gives up after 1 s of
        // silence.
        greet_with(&mut socket, welcome_with(200, 1_000)).await;
        // Pings for 2.5 s, each well inside the limit...
        for nonce in 0..25 {
            let ping = encode_all(&[ServerFrame::Ping { nonce }]);
            socket.write_all(&ping).await.expect("writes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = silent_tx.send(());
        // ...then nothing, with the connection still open, as behind a dead network path.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    let mut client = tokio::time::timeout(WAIT, Client::connect(addr, "liveness-test"))
        .await
        .expect("connects in time")
        .expect("connects");
    silent_rx.await.expect("the peer pinged");
    assert!(
        !client.handle().is_closed(),
        "2.5 s of pings keep the connection up"
    );
    let end = tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("the client gives up in time");
    assert!(end.is_none(), "no events, then the end: {end:?}");
    let reason = client.handle().close_reason().expect("a reason");
    assert_eq!(
        reason.code,
        chatroom_protocol::ErrorCode::IdleTimeout,
        "{reason:?}"
    );
    drop(client);
    tokio::time::timeout(WAIT, peer)
        .await
        .expect("the peer ends")
        .expect("the peer did not panic");
}
