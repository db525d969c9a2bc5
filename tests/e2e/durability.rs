//! Restarts: everything survives, and clients are told when the server shuts down.

use crate::support::*;
use chatroom_protocol::{Event, HistoryAnchor, Visibility};

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
    bob.mark_read(dev.id, 3).await.expect("mark read");
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
        ("the dev room", 5, 3, 2)
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
    assert_eq!(next.seq, 6);
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
}
