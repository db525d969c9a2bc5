//! Restarts: everything survives, and clients are told when the server shuts down.

use crate::support::*;
use chatroom_protocol::{ErrorCode, Event, HistoryAnchor, MessageKind, Visibility};

#[tokio::test]
async fn a_restart_keeps_accounts_rooms_messages_and_read_markers() {
    let server = TestServer::start().await;
    let (alice, alice_session) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let public = alice.my_rooms().await.expect("rooms")[0].id;
    let dev = alice
        .create_room("dev", Visibility::Private)
        .await
        .expect("create");
    alice.invite(dev.id, "bob").await.expect("invite");
    alice
        .set_topic(dev.id, "the dev room")
        .await
        .expect("topic");
    for i in 1..=5 {
        alice
            .send_message(dev.id, format!("dev {i}"))
            .await
            .expect("send");
    }
    alice
        .send_message(public, "hello @bob")
        .await
        .expect("send");
    let dm = alice.send_direct("bob", "secret").await.expect("dm");
    // Seq 1 and 2 are the room's notices (bob added, the topic set): not unread news.
    bob.mark_read(dev.id, 1).await.expect("mark read");
    drop((alice, bob));

    let server = server.restart().await;

    // The token from before the restart still resumes the session.
    let alice = server.connect().await;
    alice
        .resume(&alice_session.token)
        .await
        .expect("resume after restart");
    let (bob, _) = server.login("bob").await;
    let rooms = bob.my_rooms().await.expect("rooms");
    let names: Vec<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["dev", "public", "alice"]);
    let dev_room = &rooms[0];
    assert_eq!(
        (
            dev_room.topic.as_str(),
            dev_room.latest_seq,
            dev_room.last_read_seq,
            dev_room.unread
        ),
        ("the dev room", 7, 1, 5)
    );
    assert_eq!(rooms[1].mentions, 1);
    let history = bob
        .history(dm.room, HistoryAnchor::Latest, 10)
        .await
        .expect("dm history");
    assert_eq!(history.messages[0].text, "secret");

    // Seqs continue where they left off.
    let next = alice
        .send_message(dev.id, "after restart")
        .await
        .expect("send");
    assert_eq!(next.seq, 8, "after the two notices and five messages");
    server.stop().await;
}

#[tokio::test]
async fn clients_are_told_when_the_server_shuts_down() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let stopping = tokio::spawn(server.stop());
    let reason = expect_event(&mut alice, |e| match e {
        Event::ServerShutdown { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("shutting down"));
    stopping.await.expect("stopped");
    assert!(
        alice.next_event().await.is_none(),
        "then the connection closes"
    );
    // And the client keeps the announcement as the reason it was closed.
    let closed = alice.handle().close_reason().expect("a reason");
    assert_eq!(closed.code, ErrorCode::ShuttingDown);
    assert_eq!(closed.message, reason);
}

/// A write whose failure makes SQLite roll back the whole transaction (a full disk, an I/O
/// error; here a trigger's `RAISE(ROLLBACK)`) in the middle of a group commit: the writes
/// acknowledged are exactly the ones stored, seqs stay gapless, and the room goes on.
#[tokio::test]
async fn a_write_that_rolls_back_its_batch_fails_alone_and_the_room_goes_on() {
    use chatroom_protocol::{ClientFrame, Request, Response, ServerFrame, codec::encode_frame};
    use std::collections::HashMap;

    let server = TestServer::start().await;
    let (alice, session) = server.user("alice").await;
    let public = public_room(&alice).await;
    let side = rusqlite::Connection::open(server.config.database_path()).expect("side connection");
    side.busy_timeout(PATIENCE).expect("busy timeout");
    side.execute_batch(
        "CREATE TRIGGER inject_failure BEFORE INSERT ON messages WHEN NEW.text = 'boom'
         BEGIN SELECT RAISE(ROLLBACK, 'injected'); END;",
    )
    .expect("trigger");

    let mut raw = RawConn::handshaken(server.addr).await;
    raw.send(&ClientFrame::Request {
        id: 1,
        body: Request::Resume {
            token: session.token.clone(),
        },
    })
    .await;
    loop {
        match raw.recv().await {
            Some(ServerFrame::Response { id: 1, result }) => {
                result.expect("resumed");
                break;
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }

    // While the side connection holds the write lock, the writer waits on the first message
    // and the others queue up behind it, so they all share the next batch with the failing one.
    side.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let texts = ["stall", "one", "two", "boom", "three", "four", "five"];
    let frames: Vec<Vec<u8>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let frame = ClientFrame::Request {
                id: 100 + i as u32,
                body: Request::SendMessage {
                    room: public,
                    text: (*text).to_string(),
                },
            };
            encode_frame(&frame, u32::MAX).expect("encode").to_vec()
        })
        .collect();
    raw.send_bytes(&frames[0]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    raw.send_bytes(&frames[1..].concat()).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    side.execute_batch("ROLLBACK").expect("unlock");

    let mut answers = HashMap::new();
    while answers.len() < texts.len() {
        match raw.recv().await {
            Some(ServerFrame::Response { id, result }) if id >= 100 => {
                answers.insert(texts[(id - 100) as usize], result);
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    let mut acked: Vec<(u64, String)> = Vec::new();
    for text in texts {
        match &answers[text] {
            Ok(Response::Sent(sent)) => acked.push((sent.seq, text.to_string())),
            Ok(other) => panic!("{text}: {other:?}"),
            Err(e) => assert_eq!(text, "boom", "only the failing write fails: {e:?}"),
        }
    }
    acked.sort();

    let history = alice
        .history(public, HistoryAnchor::After(0), 100)
        .await
        .expect("history")
        .messages;
    // Besides the room's notice that alice joined.
    let stored: Vec<(u64, String)> = history
        .iter()
        .filter(|m| m.kind != MessageKind::System)
        .map(|m| (m.seq, m.text.clone()))
        .collect();
    assert_eq!(
        stored, acked,
        "exactly the acknowledged messages are stored"
    );
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless");

    // The room keeps taking messages, with the next seqs.
    for i in 1..=5u64 {
        let sent = alice
            .send_message(public, format!("after {i}"))
            .await
            .expect("the room still takes messages");
        assert_eq!(sent.seq, seqs.len() as u64 + i);
    }
    server.stop().await;
}
