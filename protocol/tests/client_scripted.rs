//! The client over a real socket against a scripted peer: the message hook
//! (`ClientOptions::on_message`), which only a script can feed frames several to a read, split
//! mid-header and split mid-body; the liveness check, which needs a server that goes silent
//! without closing, as one behind a dead network path does; and what a well-behaved server
//! never sends — answers from a newer protocol revision, oversized frames, resets — or never
//! lets happen, like a peer that stops reading while the client closes.

use bytes::BytesMut;
use chatroom_protocol::client::{
    Client, ClientError, ClientOptions, MAX_FRAME_BYTES_ACCEPTED, MessageHook,
};
use chatroom_protocol::codec::{DEFAULT_MAX_FRAME_BYTES, ServerCodec, encode_frame_into};
use chatroom_protocol::{
    ClientFrame, CodecError, ErrorBody, ErrorCode, Event, FileId, FileRef, Limits, Message,
    MessageId, MessageKind, PROTOCOL_VERSION, Request, Response, RoomId, ServerFrame, UserId,
    Welcome,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
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
    welcome_limits(MAX, heartbeat_interval_ms, idle_timeout_ms)
}

fn welcome_limits(
    max_frame_bytes: u32,
    heartbeat_interval_ms: u32,
    idle_timeout_ms: u32,
) -> ServerFrame {
    ServerFrame::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name: "scripted".to_owned(),
        server_version: "0".to_owned(),
        limits: Limits {
            max_frame_bytes,
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
    join_peer(peer).await;
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
    join_peer(peer).await;
}

/// The client's frames as a scripted server reads them.
struct Incoming {
    codec: ServerCodec,
    buf: BytesMut,
}

impl Incoming {
    fn new() -> Self {
        Self {
            codec: ServerCodec::new(MAX),
            buf: BytesMut::new(),
        }
    }

    /// The next frame other than a heartbeat `Pong`, or `None` when the client hangs up.
    async fn next(&mut self, socket: &mut TcpStream) -> Option<ClientFrame> {
        loop {
            while let Some(frame) = self.codec.decode(&mut self.buf).expect("a valid frame") {
                if !matches!(frame, ClientFrame::Pong { .. }) {
                    return Some(frame);
                }
            }
            match socket.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next request's id and body; panics on anything else.
    async fn request(&mut self, socket: &mut TcpStream) -> (u32, Request) {
        match self.next(socket).await {
            Some(ClientFrame::Request { id, body }) => (id, body),
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// A payload with its length prefix.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// An `ErrorBody` with code tag 256 (`fb 00 01`), which no build knows yet, and a message.
fn unknown_error_body(message: &str) -> Vec<u8> {
    let mut out = vec![0xfb, 0x00, 0x01];
    out.push(u8::try_from(message.len()).expect("a short message"));
    out.extend_from_slice(message.as_bytes());
    out
}

/// `Response { id, result: Err(ErrorBody { code: <tag 256>, message }) }`, as a newer server
/// might send it (`ErrorCode` is append-only).
fn response_with_unknown_code(id: u32, message: &str) -> Vec<u8> {
    let mut payload = vec![1]; // ServerFrame::Response
    payload.push(u8::try_from(id).expect("a small id"));
    payload.push(1); // Err
    payload.extend(unknown_error_body(message));
    framed(&payload)
}

/// Waits for the scripted peer to finish, failing the test if it panicked or hangs.
async fn join_peer(peer: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(WAIT, peer)
        .await
        .expect("the peer ends")
        .expect("the peer did not panic");
}

async fn listen() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    (listener, addr)
}

#[tokio::test]
async fn an_answer_a_newer_server_sends_fails_its_request_at_once_and_the_connection_lives_on() {
    let (listener, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet(&mut socket).await;
        let mut incoming = Incoming::new();
        let (id, body) = incoming.request(&mut socket).await;
        assert_eq!(body, Request::Ping);
        let unknown = response_with_unknown_code(id, "try later");
        socket.write_all(&unknown).await.expect("writes");
        // The next ping gets a normal answer: the unknown one did not break the stream.
        let (id, body) = incoming.request(&mut socket).await;
        assert_eq!(body, Request::Ping);
        let pong = encode_all(&[ServerFrame::Response {
            id,
            result: Ok(Response::Pong),
        }]);
        socket.write_all(&pong).await.expect("writes");
        // Then a closing error with an unknown code, which ends the connection.
        let mut closing = vec![4]; // ServerFrame::Error
        closing.extend(unknown_error_body("going away"));
        socket.write_all(&framed(&closing)).await.expect("writes");
        let _ = incoming.next(&mut socket).await;
    });
    let mut client = tokio::time::timeout(WAIT, Client::connect(addr, "newer-server-test"))
        .await
        .expect("connects in time")
        .expect("connects");

    // Well inside the 30 s request timeout: the answer arrived, it only could not be decoded.
    let refused = tokio::time::timeout(WAIT, client.ping())
        .await
        .expect("the ping fails without waiting for its timeout");
    match refused {
        Err(ClientError::Undecodable(what)) => {
            assert!(what.contains("256") && what.contains("try later"), "{what}");
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
    tokio::time::timeout(WAIT, client.ping())
        .await
        .expect("answered in time")
        .expect("the connection is still up");

    let end = tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("the connection ends in time");
    assert!(end.is_none(), "{end:?}");
    match client.close_error() {
        Some(ClientError::Undecodable(what)) => assert!(what.contains("going away"), "{what}"),
        other => panic!("expected Undecodable, got {other:?}"),
    }
    assert!(matches!(
        client.ping().await,
        Err(ClientError::Undecodable(_))
    ));
    drop(client);
    join_peer(peer).await;
}

#[tokio::test]
async fn nothing_is_sent_after_close() {
    let (listener, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet(&mut socket).await;
        // Everything the client sends until it hangs up.
        let mut incoming = Incoming::new();
        incoming.next(&mut socket).await
    });
    let client = tokio::time::timeout(WAIT, Client::connect(addr, "close-test"))
        .await
        .expect("connects in time")
        .expect("connects");
    let handle = client.handle();
    // Queued just before `close`, and not written yet: this task has not let the connection's
    // tasks run since.
    let before = handle
        .send_request(Request::Ping)
        .await
        .expect("queues before close");
    handle.close();
    // Straight after `close`: refused at once, not queued.
    let after = handle
        .send_request(Request::SendMessage {
            room: RoomId(7),
            text: "must not be posted".to_owned(),
        })
        .await
        .expect_err("refused after close");
    assert!(matches!(after, ClientError::Closed(None)), "{after:?}");
    let before = tokio::time::timeout(WAIT, before.response())
        .await
        .expect("fails in time")
        .expect_err("closed before it was sent");
    assert!(matches!(before, ClientError::Closed(None)), "{before:?}");
    let sent = tokio::time::timeout(WAIT, peer)
        .await
        .expect("the client hangs up in time")
        .expect("the peer did not panic");
    assert!(sent.is_none(), "the server got {sent:?} after close");
}

#[tokio::test]
async fn close_is_not_held_up_by_a_write_to_a_peer_that_stopped_reading() {
    // Small socket buffers, so that the writer soon waits for room that never comes.
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("sets the buffer");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("binds");
    let addr = socket.local_addr().expect("has an address");
    let listener = socket.listen(1).expect("listens");
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet(&mut socket).await;
        // Reads nothing more. Once the client has closed, its socket answers data with a reset;
        // while a writer still holds it open, the data is just buffered.
        closed_rx.await.expect("the client closes");
        let ping = encode_all(&[ServerFrame::Ping { nonce: 1 }]);
        loop {
            if socket.write_all(&ping).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let stream = {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_send_buffer_size(4096).expect("sets the buffer");
        tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .expect("connects in time")
            .expect("connects")
    };
    let client = tokio::time::timeout(
        WAIT,
        Client::handshake(stream, ClientOptions::new("stuck-writer-test")),
    )
    .await
    .expect("handshakes in time")
    .expect("handshakes");
    // About 1.6 MB of requests, far more than both socket buffers hold, queued at once.
    let text = "x".repeat(8 * 1024);
    let mut queued = Vec::new();
    for _ in 0..200 {
        let request = Request::SendMessage {
            room: RoomId(7),
            text: text.clone(),
        };
        queued.push(client.send_request(request).await.expect("queues"));
    }
    // Let the writer fill the buffers and wait inside its write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.close();
    drop(queued);
    let _ = closed_tx.send(());
    tokio::time::timeout(WAIT, peer)
        .await
        .expect("the client's socket is released after close")
        .expect("the peer did not panic");
    drop(client);
}

#[tokio::test]
async fn a_frame_limit_from_the_server_is_capped_and_a_larger_frame_is_a_local_error() {
    let (listener, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet_with(&mut socket, welcome_limits(u32::MAX, 30_000, 90_000)).await;
        // A header announcing 64 MiB, which the advertised limit allows, and a little body.
        let mut frame = (64u32 * 1024 * 1024).to_be_bytes().to_vec();
        frame.extend_from_slice(&[2; 100]);
        socket.write_all(&frame).await.expect("writes");
        let _ = Incoming::new().next(&mut socket).await;
    });
    let mut client = tokio::time::timeout(WAIT, Client::connect(addr, "frame-limit-test"))
        .await
        .expect("connects in time")
        .expect("connects");
    // Uncapped, the client would reserve the 64 MiB and wait for them.
    let end = tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("the client refuses the frame in time");
    assert!(end.is_none(), "{end:?}");
    assert_eq!(client.close_reason(), None, "the server said nothing");
    match client.close_error() {
        Some(ClientError::Codec(CodecError::FrameTooLarge { len, max })) => {
            assert_eq!(len, 64 * 1024 * 1024);
            assert_eq!(max, MAX_FRAME_BYTES_ACCEPTED);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    let refused = client.ping().await.expect_err("the connection is over");
    assert_eq!(refused.code(), None, "{refused:?}");
    drop(client);
    join_peer(peer).await;
}

#[tokio::test]
async fn a_reset_connection_is_a_local_failure_not_a_server_error() {
    let (listener, addr) = listen().await;
    let (asked_tx, asked_rx) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet(&mut socket).await;
        let _ = Incoming::new().request(&mut socket).await;
        let _ = asked_tx.send(());
        // Closing with a zero linger sends a reset instead of a FIN (and does not block: the
        // deprecation is about a non-zero linger).
        #[allow(deprecated)]
        socket
            .set_linger(Some(Duration::ZERO))
            .expect("sets linger");
        drop(socket);
    });
    let client = tokio::time::timeout(WAIT, Client::connect(addr, "reset-test"))
        .await
        .expect("connects in time")
        .expect("connects");
    let pending = client.send_request(Request::Ping).await.expect("queues");
    asked_rx.await.expect("the peer read the request");
    let failed = tokio::time::timeout(WAIT, pending.response())
        .await
        .expect("fails in time")
        .expect_err("the connection was reset");
    assert!(
        matches!(&failed, ClientError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{failed:?}"
    );
    assert_eq!(failed.code(), None);
    assert_eq!(client.close_reason(), None, "the server said nothing");
    assert!(matches!(client.close_error(), Some(ClientError::Io(_))));
    join_peer(peer).await;
}

#[tokio::test]
async fn another_kind_of_server_is_named_as_such() {
    for answer in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        // A frame of a sane size whose bytes are not a Chat-Room frame.
        &[0, 0, 0, 3, 0xff, 0xff, 0xff][..],
    ] {
        let (listener, addr) = listen().await;
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accepts");
            socket.write_all(answer).await.expect("writes");
            // Hold the connection until the client gives up on it.
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
        });
        let refused = tokio::time::timeout(WAIT, Client::connect(addr, "wrong-port"))
            .await
            .expect("answers in time")
            .expect_err("not a Chat-Room server");
        assert!(
            matches!(&refused, ClientError::Protocol(what)
                if what.contains("did not answer like a Chat-Room server")),
            "{refused:?}"
        );
        join_peer(peer).await;
    }
}

#[tokio::test]
async fn a_closing_error_the_client_can_read_is_the_close_reason() {
    let (listener, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        greet(&mut socket).await;
        let bye = ServerFrame::Error(ErrorBody::new(ErrorCode::TooSlow, "keep up"));
        socket.write_all(&encode_all(&[bye])).await.expect("writes");
        let _ = Incoming::new().next(&mut socket).await;
    });
    let mut client = tokio::time::timeout(WAIT, Client::connect(addr, "close-reason-test"))
        .await
        .expect("connects in time")
        .expect("connects");
    let end = tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("the connection ends in time");
    assert!(end.is_none(), "{end:?}");
    let reason = client.close_reason().expect("the server's reason");
    assert_eq!(reason.code, ErrorCode::TooSlow);
    let refused = client.ping().await.expect_err("the connection is over");
    assert_eq!(refused.code(), Some(ErrorCode::TooSlow), "{refused:?}");
    drop(client);
    join_peer(peer).await;
}
