//! Messages: delivery, history, offline delivery with unread and mention counts, limits.

use crate::support::*;
use chatroom_protocol::{ErrorCode, Event, HistoryAnchor, MessageKind};

async fn public_id(client: &chatroom_protocol::client::Client) -> chatroom_protocol::RoomId {
    client.my_rooms().await.expect("rooms")[0].id
}

#[tokio::test]
async fn two_clients_chat_in_public() {
    let server = TestServer::start().await;
    let (mut alice, alice_session) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let public = public_id(&alice).await;

    let ack = alice.send_message(public, "hi bob 👋").await.expect("send");
    // After the room's notices of the two registrations.
    assert_eq!(ack.seq, 3);
    let got = expect_message(&mut bob, "hi bob 👋").await;
    assert_eq!(
        (got.seq, got.id, got.sender, got.kind),
        (3, ack.id, alice_session.user.id, MessageKind::Text)
    );
    // The sender's own sessions get the message too.
    expect_message(&mut alice, "hi bob 👋").await;

    let reply = bob
        .send_message(public, "hello alice, 你好")
        .await
        .expect("send");
    assert_eq!(reply.seq, 4, "seqs are gapless per room");
    expect_message(&mut alice, "hello alice, 你好").await;
    server.stop().await;
}

#[tokio::test]
async fn every_session_of_a_user_receives() {
    let server = TestServer::start().await;
    let (sender, _) = server.user("sender").await;
    server.user("multi").await;
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(server.login("multi").await.0);
    }
    let public = public_id(&sender).await;
    sender
        .send_message(public, "to every device")
        .await
        .expect("send");
    for device in &mut devices {
        expect_message(device, "to every device").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn history_pages_by_seq() {
    let server = TestServer::start_with(|c| c.limits.message_burst = 100).await;
    let (alice, _) = server.user("alice").await;
    let public = public_id(&alice).await;
    // Seq 1 is the room's notice that alice joined; message i gets seq i.
    for i in 2..=25 {
        alice
            .send_message(public, format!("message {i}"))
            .await
            .expect("send");
    }
    let seqs = |page: &chatroom_protocol::HistoryPage| {
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>()
    };

    let latest = alice
        .history(public, HistoryAnchor::Latest, 10)
        .await
        .expect("latest");
    assert_eq!(seqs(&latest), (16..=25).collect::<Vec<_>>());
    assert!(latest.has_more);
    let older = alice
        .history(public, HistoryAnchor::Before(16), 10)
        .await
        .expect("before");
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    let oldest = alice
        .history(public, HistoryAnchor::Before(6), 10)
        .await
        .expect("before");
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert!(!oldest.has_more);
    assert_eq!(
        (
            oldest.messages[0].kind.clone(),
            oldest.messages[0].text.as_str()
        ),
        (MessageKind::System, "alice joined")
    );
    let after = alice
        .history(public, HistoryAnchor::After(20), 10)
        .await
        .expect("after");
    assert_eq!(seqs(&after), (21..=25).collect::<Vec<_>>());
    assert!(!after.has_more);
    assert_eq!(after.messages[0].text, "message 21");
    // The page limit is capped by the server.
    let capped = alice
        .history(public, HistoryAnchor::After(0), 100_000)
        .await
        .expect("capped");
    assert_eq!(capped.messages.len(), 25);
    server.stop().await;
}

#[tokio::test]
async fn an_offline_user_gets_unread_and_mention_counts_and_every_missed_message() {
    let server = TestServer::start_with(|c| c.limits.message_burst = 100).await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let public = public_id(&alice).await;
    bob.send_message(public, "before I leave")
        .await
        .expect("send");
    let seen = bob
        .history(public, HistoryAnchor::Latest, 1)
        .await
        .expect("history")
        .messages[0]
        .seq;
    bob.mark_read(public, seen).await.expect("mark read");
    drop(bob);

    for i in 0..7 {
        alice
            .send_message(public, format!("while you were away {i}"))
            .await
            .expect("send");
    }
    alice
        .send_message(public, "@bob please review")
        .await
        .expect("send");
    alice
        .send_message(public, "thanks @Bob.")
        .await
        .expect("send");
    alice
        .send_message(public, "mail bob@example.com is not a mention")
        .await
        .expect("send");

    let (bob, _) = server.login("bob").await;
    let room = bob
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == public)
        .expect("public");
    assert_eq!(room.unread, 10);
    assert_eq!(room.mentions, 2);
    assert_eq!(room.last_read_seq, seen);

    let missed = bob
        .history(public, HistoryAnchor::After(room.last_read_seq), 200)
        .await
        .expect("missed");
    assert_eq!(missed.messages.len(), 10);
    let seqs: Vec<u64> = missed.messages.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        ((seen + 1)..=(seen + 10)).collect::<Vec<_>>(),
        "nothing lost, no gaps"
    );

    bob.mark_read(public, room.latest_seq)
        .await
        .expect("mark read");
    let room = bob
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == public)
        .expect("public");
    assert_eq!((room.unread, room.mentions), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn read_markers_follow_the_user_across_devices() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (phone, _) = server.user("bob").await;
    let (mut laptop, _) = server.login("bob").await;
    let public = public_id(&alice).await;
    let ack = alice.send_message(public, "read me").await.expect("send");
    phone.mark_read(public, ack.seq).await.expect("mark");
    let seq = expect_event(&mut laptop, |e| match e {
        Event::ReadMarker { room, seq } if room == public => Some(seq),
        _ => None,
    })
    .await;
    assert_eq!(seq, ack.seq);
    server.stop().await;
}

#[tokio::test]
async fn empty_and_oversize_messages_are_refused_not_truncated() {
    let server = TestServer::start_with(|c| c.limits.max_message_chars = 100).await;
    let (alice, _) = server.user("alice").await;
    let public = public_id(&alice).await;
    assert_eq!(
        code_of(alice.send_message(public, "").await),
        ErrorCode::MessageEmpty
    );
    assert_eq!(
        code_of(alice.send_message(public, "  \n ").await),
        ErrorCode::MessageEmpty
    );
    assert_eq!(
        code_of(alice.send_message(public, "字".repeat(101)).await),
        ErrorCode::MessageTooLong
    );
    let ok = alice
        .send_message(public, "字".repeat(100))
        .await
        .expect("exactly the limit is fine");
    let page = alice
        .history(public, HistoryAnchor::Latest, 1)
        .await
        .expect("history");
    assert_eq!(page.messages[0].seq, ok.seq);
    assert_eq!(page.messages[0].text.chars().count(), 100);
    server.stop().await;
}

#[tokio::test]
async fn the_message_rate_limit_fires() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 1;
        c.limits.message_burst = 5;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let public = public_id(&alice).await;
    let mut limited = 0;
    for i in 0..10 {
        match alice.send_message(public, format!("spam {i}")).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::RateLimited));
                limited += 1;
            }
        }
    }
    assert!(
        limited >= 4,
        "a burst of 5 at 1/s lets at most 6 of 10 through, {limited} refused"
    );
    // The connection stays usable.
    alice.ping().await.expect("still connected");
    server.stop().await;
}

#[tokio::test]
async fn control_characters_other_than_newline_and_tab_are_refused() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_id(&alice).await;
    for text in [
        "\u{1b}[2Jcleared",
        "title\u{1b}]0;pwned\u{7}",
        "cr\rlf",
        "c1\u{9b}2J",
    ] {
        let refused = alice.send_message(public, text).await;
        assert_eq!(code_of(refused), ErrorCode::BadRequest, "{text:?}");
    }
    let ok = alice
        .send_message(public, "line one\n\tindented")
        .await
        .expect("newline and tab are text");
    let page = alice
        .history(public, HistoryAnchor::Latest, 5)
        .await
        .expect("history");
    // The accepted one, after the room's notice that alice joined.
    assert_eq!(page.messages.len(), 2, "only the accepted one is stored");
    assert_eq!(page.messages[0].kind, MessageKind::System);
    assert_eq!(page.messages[1].seq, ok.seq);
    assert_eq!(page.messages[1].text, "line one\n\tindented");
    server.stop().await;
}
