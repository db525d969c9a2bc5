//! Bad peers: garbage, oversize and truncated frames, protocol violations, slow readers, and
//! too many connections — each answered or closed cleanly while others keep chatting.

use crate::support::*;
use chatroom_protocol::client::Client;
use chatroom_protocol::{ClientFrame, ErrorCode, Hello, Request, RoomId, ServerFrame};

/// Two users chatting in `public`, to show the server keeps serving others.
struct Bystanders {
    alice: Client,
    bob: Client,
    public: RoomId,
}

impl Bystanders {
    async fn new(server: &TestServer) -> Self {
        let (alice, _) = server.user("alice").await;
        let (bob, _) = server.user("bob").await;
        let public = alice.my_rooms().await.expect("rooms")[0].id;
        Self { alice, bob, public }
    }

    async fn still_chatting(&mut self, text: &str) {
        self.alice
            .send_message(self.public, text)
            .await
            .expect("send");
        expect_message(&mut self.bob, text).await;
    }
}

#[tokio::test]
async fn garbage_bytes_close_that_connection_only() {
    let server = TestServer::start().await;
    let mut others = Bystanders::new(&server).await;

    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send_bytes(&[0, 0, 0, 6, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff])
        .await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::MalformedFrame)
    );
    others.still_chatting("after garbage").await;

    // Garbage instead of a handshake.
    let mut raw = RawConn::connect(server.addr).await;
    raw.send_bytes(b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n")
        .await;
    let error = raw
        .until_closed()
        .await
        .expect("an error frame before closing");
    assert!(matches!(
        error.code,
        ErrorCode::FrameTooLarge | ErrorCode::MalformedFrame
    ));
    others.still_chatting("after an HTTP request").await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_length_prefix_is_refused_before_the_body() {
    let server = TestServer::start().await;
    let mut others = Bystanders::new(&server).await;
    let mut raw = RawConn::handshaken(server.addr).await;
    // Announces 4 GiB and sends nothing more: the server must not wait for (or allocate) it.
    raw.send_bytes(&u32::MAX.to_be_bytes()).await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::FrameTooLarge)
    );
    others.still_chatting("after an oversize prefix").await;
    server.stop().await;
}

#[tokio::test]
async fn a_truncated_frame_then_hangup_is_harmless() {
    let server = TestServer::start().await;
    let mut others = Bystanders::new(&server).await;
    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send_bytes(&[0, 0, 0, 200, 1, 2, 3]).await;
    drop(raw);
    others.still_chatting("after a truncated frame").await;
    server.stop().await;
}

#[tokio::test]
async fn handshake_violations_are_answered_then_closed() {
    let server = TestServer::start().await;
    let mut others = Bystanders::new(&server).await;

    // A request before Hello.
    let mut raw = RawConn::connect(server.addr).await;
    raw.send(&ClientFrame::Request {
        id: 1,
        body: Request::Ping,
    })
    .await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::HandshakeRequired)
    );

    // Another protocol version.
    let mut raw = RawConn::connect(server.addr).await;
    raw.send(&ClientFrame::Hello(Hello {
        protocol_version: 999,
        client_name: "future".into(),
    }))
    .await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::UnsupportedVersion)
    );

    // A second Hello.
    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send(&ClientFrame::Hello(Hello {
        protocol_version: 1,
        client_name: "again".into(),
    }))
    .await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::HandshakeRequired)
    );

    // An unknown variant (index 99) is malformed.
    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send_bytes(&[0, 0, 0, 1, 99]).await;
    assert_eq!(
        raw.until_closed().await.map(|e| e.code),
        Some(ErrorCode::MalformedFrame)
    );

    others.still_chatting("after handshake violations").await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_before_login_is_refused_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send(&ClientFrame::Request {
        id: 7,
        body: Request::MyRooms,
    })
    .await;
    match raw.recv().await {
        Some(ServerFrame::Response {
            id: 7,
            result: Err(e),
        }) => assert_eq!(e.code, ErrorCode::NotAuthenticated),
        other => panic!("expected NotAuthenticated, got {other:?}"),
    }
    raw.send(&ClientFrame::Request {
        id: 8,
        body: Request::Ping,
    })
    .await;
    assert!(matches!(
        raw.recv().await,
        Some(ServerFrame::Response {
            id: 8,
            result: Ok(_)
        })
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_while_others_get_everything() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue_frames = 64;
        c.limits.messages_per_second = 100_000;
        c.limits.message_burst = 100_000;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let public = alice.my_rooms().await.expect("rooms")[0].id;
    // The sender ignores its own echoes: with the receiver gone the client discards events.
    let (alice, alice_events) = alice.into_parts();
    drop(alice_events);

    // The slow client logs in and then never reads again.
    let mut slow = RawConn::handshaken(server.addr).await;
    slow.send(&ClientFrame::Request {
        id: 1,
        body: Request::Register {
            username: "slow".into(),
            password: PASSWORD.into(),
        },
    })
    .await;
    assert!(matches!(
        slow.recv().await,
        Some(ServerFrame::Response {
            id: 1,
            result: Ok(_)
        })
    ));

    // Enough to fill the slow client's socket buffers and its queue many times over.
    let (bob_handle, mut bob_events) = bob.into_parts();
    // After the room's notices of the three registrations.
    let start = bob_handle.my_rooms().await.expect("rooms")[0].latest_seq;
    let text = "x".repeat(3000);
    let count: u64 = 4000;
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        let mut last_seq = start;
        while received < count {
            match tokio::time::timeout(PATIENCE, bob_events.recv()).await {
                Ok(Some(chatroom_protocol::Event::Message(m))) if m.seq <= start => {}
                Ok(Some(chatroom_protocol::Event::Message(m))) => {
                    assert_eq!(m.seq, last_seq + 1, "bob sees every message in order");
                    last_seq = m.seq;
                    received += 1;
                }
                Ok(Some(_)) => {}
                other => panic!("bob stopped receiving after {received}: {other:?}"),
            }
        }
        received
    });
    let mut in_flight = Vec::new();
    for _ in 0..count {
        let alice = alice.clone();
        let text = text.clone();
        in_flight.push(tokio::spawn(async move {
            alice.send_message(public, text).await
        }));
        // Acks and echoes of the window must fit the sender's own 64-frame queue.
        if in_flight.len() >= 16 {
            for task in in_flight.drain(..) {
                task.await.expect("task").expect("send");
            }
        }
    }
    for task in in_flight {
        task.await.expect("task").expect("send");
    }
    assert_eq!(reader.await.expect("reader"), count);
    drop(bob_handle);

    // The slow client was cut off: the server closed it before sending everything. It reads
    // what was buffered for it; the reason, if it could still be written, says why.
    let mut delivered = 0u64;
    let mut reason = None;
    while let Some(frame) = slow.recv().await {
        match frame {
            ServerFrame::Event(chatroom_protocol::Event::Message(_)) => delivered += 1,
            ServerFrame::Error(e) => reason = Some(e.code),
            _ => {}
        }
    }
    assert!(
        delivered < count,
        "the slow client was dropped, not served all {count}"
    );
    assert!(
        matches!(reason, None | Some(ErrorCode::TooSlow)),
        "{reason:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_a_reason() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    match Client::connect(server.addr, "third").await {
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::TooManyConnections)),
        Ok(_) => panic!("a third connection was accepted"),
    }
    drop(_a);
    // The place is freed once the first connection is gone.
    let mut accepted = false;
    for _ in 0..50 {
        if Client::connect(server.addr, "retry").await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(accepted, "a freed place is given to the next connection");
    server.stop().await;
}

#[tokio::test]
async fn parallel_registrations_cannot_exceed_the_hourly_limit() {
    let server = TestServer::start_with(|c| c.limits.registrations_per_ip_per_hour = 3).await;
    let taken = server.connect().await;
    // Name checks come after the reservation; a refused registration gives its place back.
    server.user("used").await;
    let refused = taken.register("used", PASSWORD).await;
    assert_eq!(code_of(refused), ErrorCode::UsernameTaken);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.connect().await);
    }
    // All eight are in flight at once: each one's password hashing takes longer than the
    // others need to reach the limit check.
    let mut attempts = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        attempts.spawn(async move { client.register(&format!("racer{i}"), PASSWORD).await });
    }
    let outcomes: Vec<_> = attempts.join_all().await;
    let created = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 2, "3 per hour, one used by \"used\": {outcomes:?}");
    for outcome in outcomes.into_iter().filter(|r| r.is_err()) {
        assert_eq!(code_of(outcome), ErrorCode::RateLimited);
    }
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_with_names_no_account_can_have_still_count_against_the_address() {
    let server = TestServer::start_with(|c| c.limits.login_failures_per_ip = 3).await;
    server.user("alice").await;
    let client = server.connect().await;
    let huge = "x".repeat(100_000);
    for _ in 0..3 {
        let refused = client.login(&huge, PASSWORD).await;
        assert_eq!(code_of(refused), ErrorCode::InvalidCredentials);
    }
    let refused = client.login("alice", PASSWORD).await;
    assert_eq!(
        code_of(refused),
        ErrorCode::RateLimited,
        "the address used up its failures"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_user_name_of_any_length_gets_an_answer() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let huge = "z".repeat(900_000);
    let refused = alice.open_direct(&huge).await;
    let error = refused.expect_err("nobody has that name");
    assert_eq!(error.code(), Some(ErrorCode::UserNotFound));
    assert!(error.to_string().len() < 200, "the name is cut: {error}");
    server.stop().await;
}

#[tokio::test]
async fn a_response_too_large_for_a_frame_is_answered_with_an_error() {
    let server = TestServer::start_with(|c| c.limits.max_frame_bytes = 4096).await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    for i in 0..10 {
        let room = alice
            .create_room(&format!("room{i}"), chatroom_protocol::Visibility::Public)
            .await
            .expect("create");
        alice
            .set_topic(room.id, &"t".repeat(500))
            .await
            .expect("topic");
    }
    let refused = alice.my_rooms().await;
    assert_eq!(code_of(refused), ErrorCode::FrameTooLarge);
    alice
        .send_message(public, "still here")
        .await
        .expect("the connection stays");
    server.stop().await;
}
