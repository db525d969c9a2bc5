//! Presence, typing and heartbeats.

use crate::support::*;
use chatroom_protocol::{ClientFrame, ErrorCode, Event, MessageKind, PresenceStatus, ServerFrame};

#[tokio::test]
async fn presence_changes_reach_those_who_share_a_room() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let bob_id = bob_session.user.id;
    let status_of_bob = |e: Event| match e {
        Event::Presence(updates) => updates.into_iter().find(|u| u.user == bob_id),
        _ => None,
    };
    assert_eq!(
        expect_event(&mut alice, status_of_bob).await.status,
        PresenceStatus::Online
    );

    bob.set_presence(PresenceStatus::Away, Some("lunch".into()))
        .await
        .expect("away");
    let update = expect_event(&mut alice, status_of_bob).await;
    assert_eq!(
        (update.status, update.status_message.as_deref()),
        (PresenceStatus::Away, Some("lunch"))
    );
    let listed = alice.list_users().await.expect("users");
    let bob_listed = listed
        .iter()
        .find(|u| u.user.id == bob_id)
        .expect("bob listed");
    assert_eq!(bob_listed.status, PresenceStatus::Away);
    assert_eq!(
        code_of(bob.set_presence(PresenceStatus::Offline, None).await),
        ErrorCode::BadRequest
    );

    drop(bob);
    assert_eq!(
        expect_event(&mut alice, status_of_bob).await.status,
        PresenceStatus::Offline
    );
    server.stop().await;
}

/// bob has two connections (a laptop and a desk). He shows away once both are idle, with no
/// status text, and online again when one is not, or when a new one opens; closing the one
/// connection in use, the others idle, makes him away. His own away status holds whatever
/// the connections say.
#[tokio::test]
async fn an_account_is_away_while_all_its_connections_are_idle() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (laptop, bob_session) = server.user("bob").await;
    let (desk, _) = server.login("bob").await;
    let bob_id = bob_session.user.id;
    let bob_is = |status: PresenceStatus| {
        move |e: Event| match e {
            Event::Presence(updates) => updates
                .into_iter()
                .find(|u| u.user == bob_id && u.status == status),
            _ => None,
        }
    };
    let listed = |users: Vec<chatroom_protocol::UserPresence>| {
        users
            .into_iter()
            .find(|u| u.user.id == bob_id)
            .map(|u| (u.status, u.status_message))
    };
    expect_event(&mut alice, bob_is(PresenceStatus::Online)).await;

    desk.set_idle(true).await.expect("idle");
    assert_eq!(
        listed(alice.list_users().await.expect("users")),
        Some((PresenceStatus::Online, None)),
        "the laptop is still in use"
    );
    laptop.set_idle(true).await.expect("idle");
    let away = expect_event(&mut alice, bob_is(PresenceStatus::Away)).await;
    assert_eq!(away.status_message, None);

    laptop.set_idle(false).await.expect("back");
    expect_event(&mut alice, bob_is(PresenceStatus::Online)).await;
    laptop.set_idle(true).await.expect("idle");
    expect_event(&mut alice, bob_is(PresenceStatus::Away)).await;

    // A new connection is in use: online; closing it leaves only idle ones: away.
    let (phone, _) = server.login("bob").await;
    expect_event(&mut alice, bob_is(PresenceStatus::Online)).await;
    drop(phone);
    expect_event(&mut alice, bob_is(PresenceStatus::Away)).await;

    // Away said by bob himself stays when a connection is in use again.
    desk.set_presence(PresenceStatus::Away, Some("lunch".into()))
        .await
        .expect("away");
    desk.set_idle(false).await.expect("back");
    assert_eq!(
        listed(alice.list_users().await.expect("users")),
        Some((PresenceStatus::Away, Some("lunch".into())))
    );
    desk.set_presence(PresenceStatus::Online, None)
        .await
        .expect("back");
    assert_eq!(
        listed(alice.list_users().await.expect("users")),
        Some((PresenceStatus::Online, None)),
        "the desk is in use"
    );
    drop((laptop, desk));
    expect_event(&mut alice, bob_is(PresenceStatus::Offline)).await;
    server.stop().await;
}

#[tokio::test]
async fn typing_reaches_the_room_but_is_rate_limited_and_not_stored() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let public = alice.my_rooms().await.expect("rooms")[0].id;
    for _ in 0..5 {
        alice.typing(public).await.expect("typing");
    }
    let marker = alice
        .send_message(public, "done typing")
        .await
        .expect("send");
    let mut typing_events = 0;
    loop {
        match expect_event(&mut bob, Some).await {
            Event::Typing { username, .. } => {
                assert_eq!(username, "alice");
                typing_events += 1;
            }
            Event::Message(m) if m.seq == marker.seq => break,
            _ => {}
        }
    }
    assert_eq!(
        typing_events, 1,
        "bursts of typing notices are forwarded once"
    );
    let history = bob
        .history(public, chatroom_protocol::HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    // The marker, after the room's notices of the two registrations.
    let kinds: Vec<_> = history.messages.iter().map(|m| m.kind.clone()).collect();
    assert_eq!(
        kinds,
        [MessageKind::System, MessageKind::System, MessageKind::Text],
        "typing is never stored"
    );
    server.stop().await;
}

#[tokio::test]
async fn quiet_connections_are_pinged_and_dead_ones_dropped() {
    let server = TestServer::start_with(|c| {
        c.limits.heartbeat_interval_secs = 1;
        c.limits.idle_timeout_secs = 3;
    })
    .await;
    // A client that answers pings stays connected past the idle timeout.
    let (alive, _) = server.user("alive").await;

    let mut silent = RawConn::handshaken(server.addr).await;
    let mut pings = 0;
    let mut closing_error = None;
    while let Some(frame) = silent.recv().await {
        match frame {
            ServerFrame::Ping { .. } => pings += 1,
            ServerFrame::Error(e) => closing_error = Some(e.code),
            _ => {}
        }
    }
    assert!(pings >= 1, "the server pinged before giving up");
    assert_eq!(closing_error, Some(ErrorCode::IdleTimeout));
    alive
        .ping()
        .await
        .expect("the answering client is still connected");

    // Any frame counts as a sign of life, including a Pong.
    let mut responsive = RawConn::handshaken(server.addr).await;
    for _ in 0..4 {
        match responsive.recv().await {
            Some(ServerFrame::Ping { nonce }) => {
                responsive.send(&ClientFrame::Pong { nonce }).await
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_logins_is_coalesced_into_few_presence_events() {
    const USERS: usize = 40;
    let server = TestServer::start().await;
    let (mut observer, _) = server.user("observer").await;
    let mut tokens = Vec::new();
    for i in 0..USERS {
        let (client, session) = server.user(&format!("user{i}")).await;
        tokens.push(session.token);
        drop(client);
    }
    // Let the registrations' presence changes settle, then start counting.
    let marker = observer.my_rooms().await.expect("rooms")[0].id;
    let (writer, _) = server.user("marker").await;
    writer.send_message(marker, "start").await.expect("send");
    expect_message(&mut observer, "start").await;

    // Everyone comes back at once (resuming costs no password hashing).
    let mut resumed = Vec::new();
    for token in &tokens {
        let client = server.connect().await;
        client.resume(token).await.expect("resume");
        resumed.push(client);
    }
    let mut online = std::collections::HashSet::new();
    let mut events = 0;
    while online.len() < USERS {
        let updates = expect_event(&mut observer, |e| match e {
            Event::Presence(updates) => Some(updates),
            _ => None,
        })
        .await;
        events += 1;
        for u in updates {
            if u.status == PresenceStatus::Online && u.username.starts_with("user") {
                online.insert(u.user);
            }
        }
    }
    assert!(
        events < USERS / 2,
        "{USERS} logins reached the observer in {events} presence events"
    );
    server.stop().await;
}
