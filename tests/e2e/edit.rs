//! Edits: a sender changes their message in place; the room, history, search and mention counts
//! follow, and nobody else may edit it.

use crate::support::*;
use chatroom_protocol::{ErrorCode, Event, HistoryAnchor, MessageKind, RoomId, Visibility};

/// My mention count in `room`.
async fn mentions_in(client: &chatroom_protocol::client::ClientHandle, room: RoomId) -> u32 {
    let rooms = client.my_rooms().await.expect("my rooms");
    rooms
        .iter()
        .find(|r| r.id == room)
        .map(|r| r.mentions)
        .expect("a member")
}

#[tokio::test]
async fn an_edit_replaces_the_text_for_the_room_history_search_and_mentions() {
    let server = TestServer::start().await;
    let (alice, alice_session) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;

    let sent = alice
        .send_message(room, "deploy on fryday")
        .await
        .expect("send");
    let original = expect_message(&mut bob, "deploy on fryday").await;
    assert_eq!(mentions_in(&bob, room).await, 0);

    alice
        .edit_message(room, sent.seq, "deploy on friday, @bob")
        .await
        .expect("edit");
    let edited = expect_event(&mut bob, |e| match e {
        Event::MessageEdited(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(
        (edited.id, edited.room, edited.seq, edited.ts, edited.sender),
        (sent.id, room, sent.seq, sent.ts, alice_session.user.id),
        "the same message, first-sent time kept"
    );
    assert_eq!(edited.text, "deploy on friday, @bob");
    let MessageKind::Edited { at } = edited.kind else {
        panic!("kind {:?}", edited.kind);
    };
    assert!(at >= original.ts, "edited at {at}, sent at {}", original.ts);
    assert_eq!(mentions_in(&bob, room).await, 1, "the edit mentions bob");

    // Search finds the new words only, once the index has caught up.
    assert_eq!(
        texts(&search_until(&bob, "friday", Some(room), 1).await),
        ["deploy on friday, @bob"]
    );
    assert_eq!(search_until(&bob, "fryday", Some(room), 0).await, []);

    // A second edit that drops the mention stops it counting; the same text again is a no-op.
    alice
        .edit_message(room, sent.seq, "deploy on friday")
        .await
        .expect("edit again");
    assert_eq!(mentions_in(&bob, room).await, 0, "no longer mentioned");
    alice
        .edit_message(room, sent.seq, "deploy on friday")
        .await
        .expect("an unchanged edit is fine");

    // History keeps the edit across a restart.
    drop((alice, bob));
    let server = server.restart().await;
    let (bob, _) = server.login("bob").await;
    let page = bob
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    let stored = page
        .messages
        .iter()
        .find(|m| m.seq == sent.seq)
        .expect("in history");
    assert_eq!(stored.text, "deploy on friday");
    assert!(
        matches!(stored.kind, MessageKind::Edited { at: stored_at } if stored_at >= at),
        "{:?}",
        stored.kind
    );
    server.stop().await;
}

#[tokio::test]
async fn only_the_sender_may_edit_and_the_text_rules_still_hold() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");
    let bobs = bob.send_message(dev.id, "typo teh").await.expect("send");
    let alices = alice.send_message(dev.id, "mine").await.expect("send");

    // alice owns the room, but owners and moderators delete; they do not put words in mouths.
    let refused = alice
        .edit_message(dev.id, bobs.seq, "the")
        .await
        .expect_err("not hers");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(refused.to_string().contains("sender"), "{refused}");
    assert_eq!(
        code_of(carol.edit_message(dev.id, alices.seq, "x").await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code_of(bob.edit_message(dev.id, bobs.seq, "  \n").await),
        ErrorCode::MessageEmpty
    );
    assert_eq!(
        code_of(bob.edit_message(dev.id, bobs.seq, "bell \u{7}").await),
        ErrorCode::BadRequest
    );
    let long = "x".repeat(server.config.limits.max_message_chars as usize + 1);
    assert_eq!(
        code_of(bob.edit_message(dev.id, bobs.seq, long).await),
        ErrorCode::MessageTooLong
    );
    assert_eq!(
        code_of(bob.edit_message(dev.id, alices.seq + 100, "x").await),
        ErrorCode::BadRequest,
        "no such message"
    );
    bob.delete_message(dev.id, bobs.seq).await.expect("delete");
    let refused = bob
        .edit_message(dev.id, bobs.seq, "back from the dead")
        .await
        .expect_err("deleted");
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    assert!(refused.to_string().contains("deleted"), "{refused}");
    // The room's notice that bob joined is sent in his name, but it is the room's log.
    assert_eq!(
        code_of(bob.edit_message(dev.id, 1, "bob never came").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.delete_message(dev.id, 1).await),
        ErrorCode::Forbidden
    );

    // Nothing refused changed anything.
    let page = alice
        .history(dev.id, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    let kinds: Vec<_> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.kind.clone(), m.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, MessageKind::System, "bob joined"),
            (bobs.seq, MessageKind::Deleted, ""),
            (alices.seq, MessageKind::Text, "mine")
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn edits_share_the_message_rate_limit() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 1;
        c.limits.message_burst = 2;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let sent = alice.send_message(room, "one").await.expect("send");
    alice
        .edit_message(room, sent.seq, "one, edited")
        .await
        .expect("within the burst");
    assert_eq!(
        code_of(alice.edit_message(room, sent.seq, "again").await),
        ErrorCode::RateLimited
    );
    server.stop().await;
}
