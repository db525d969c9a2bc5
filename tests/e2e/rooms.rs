//! Rooms, invitations, roles, direct chats and their privacy.

use crate::support::*;
use chatroom_protocol::client::{Client, ClientHandle};
use chatroom_protocol::{
    ErrorCode, Event, HistoryAnchor, LeaveReason, PresenceStatus, RoomId, RoomKind, RoomRole,
    Visibility,
};

#[tokio::test]
async fn everyone_is_in_public_and_rooms_can_be_created_joined_and_left() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let joined = expect_event(&mut alice, |e| match e {
        Event::MemberJoined { member, .. } => Some(member.user.username),
        _ => None,
    })
    .await;
    assert_eq!(joined, "bob", "a new account joining public is announced");

    let rooms = alice.my_rooms().await.expect("rooms");
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].name, "public");
    assert_eq!(
        rooms[0].member_count, 3,
        "alice, bob and the AI bot, which is in public from the start"
    );

    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    assert_eq!(dev.my_role, Some(RoomRole::Owner));
    assert_eq!(
        code_of(alice.create_room("DEV", Visibility::Public).await),
        ErrorCode::RoomNameTaken
    );
    assert_eq!(
        code_of(alice.create_room(" bad", Visibility::Public).await),
        ErrorCode::InvalidRoomName
    );
    // A name a client could not type after `/join` or `--room #`, or in quotes.
    for untypable in ["dev ops", "#dev", "@dev", "\"dev", "dev\"ops"] {
        assert_eq!(
            code_of(alice.create_room(untypable, Visibility::Public).await),
            ErrorCode::InvalidRoomName,
            "{untypable:?}"
        );
    }
    // A twin that looks like "dev" but is another name.
    for twin in ["dev\u{200b}", "d\u{202e}ev", "\u{feff}dev"] {
        assert_eq!(
            code_of(alice.create_room(twin, Visibility::Public).await),
            ErrorCode::InvalidRoomName,
            "{twin:?}"
        );
    }
    assert_eq!(
        code_of(alice.set_topic(dev.id, "see \u{202e}fdp.exe").await),
        ErrorCode::BadRequest
    );

    let public: Vec<String> = bob
        .public_rooms()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(public, ["dev", "public"]);
    let joined = bob
        .join_room("Dev")
        .await
        .expect("join by name in any case");
    assert_eq!(joined.id, dev.id);
    assert_eq!(joined.my_role, Some(RoomRole::Member));

    let info = alice.room_info(dev.id).await.expect("info");
    let members: Vec<(&str, RoomRole, PresenceStatus)> = info
        .members
        .iter()
        .map(|m| (m.user.username.as_str(), m.role, m.status))
        .collect();
    assert_eq!(
        members,
        [
            ("alice", RoomRole::Owner, PresenceStatus::Online),
            ("bob", RoomRole::Member, PresenceStatus::Online)
        ]
    );

    alice
        .set_topic(dev.id, "shipping 1.0")
        .await
        .expect("owner sets topic");
    expect_event(&mut bob, |e| match e {
        Event::TopicChanged { room, topic, by } if room == dev.id => Some((topic, by)),
        _ => None,
    })
    .await;
    assert_eq!(
        code_of(bob.set_topic(dev.id, "mine now").await),
        ErrorCode::Forbidden
    );

    bob.leave_room(dev.id).await.expect("leave");
    assert_eq!(
        code_of(bob.send_message(dev.id, "hello?").await),
        ErrorCode::NotMember
    );
    assert_eq!(bob.my_rooms().await.expect("rooms").len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn private_rooms_are_invisible_to_outsiders_until_invited() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;

    let secret = alice
        .create_room("secret", Visibility::Private)
        .await
        .expect("create");
    alice
        .send_message(secret.id, "the plan")
        .await
        .expect("send");

    assert!(
        carol
            .public_rooms()
            .await
            .expect("list")
            .iter()
            .all(|r| r.name != "secret")
    );
    assert_eq!(
        code_of(carol.join_room("secret").await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code_of(carol.history(secret.id, HistoryAnchor::Latest, 50).await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code_of(carol.room_info(secret.id).await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code_of(carol.invite(secret.id, "carol").await),
        ErrorCode::RoomNotFound
    );

    alice.invite(secret.id, "bob").await.expect("owner invites");
    let added = expect_event(&mut bob, |e| match e {
        Event::RoomUpdated(r) if r.id == secret.id => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(added.kind, RoomKind::Private);
    assert_eq!(
        added.unread, 0,
        "what was said before the invitation is there to read, not news"
    );
    let page = bob
        .history(secret.id, HistoryAnchor::Latest, 50)
        .await
        .expect("member reads");
    assert_eq!(page.messages[0].text, "the plan");
    assert_eq!(
        code_of(bob.invite(secret.id, "carol").await),
        ErrorCode::Forbidden,
        "a plain member may not invite to a private room"
    );
    server.stop().await;
}

#[tokio::test]
async fn direct_messages_are_private_and_listed_for_both() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;

    let sent = alice.send_direct("bob", "psst, bob").await.expect("dm");
    let got = expect_message(&mut bob, "psst, bob").await;
    assert_eq!(got.room, sent.room);
    assert_eq!(got.sender_name, "alice");

    let alice_dm = alice
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == sent.room)
        .expect("listed for alice");
    assert_eq!(
        (alice_dm.kind, alice_dm.name.as_str()),
        (RoomKind::Direct, "bob")
    );
    let bob_dm = bob
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == sent.room)
        .expect("listed for bob");
    assert_eq!((bob_dm.name.as_str(), bob_dm.unread), ("alice", 1));

    // The same pair always gets the same chat.
    assert_eq!(bob.open_direct("ALICE").await.expect("open").id, sent.room);

    assert_eq!(
        code_of(carol.history(sent.room, HistoryAnchor::Latest, 50).await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code_of(carol.send_message(sent.room, "me too").await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code_of(alice.invite(sent.room, "carol").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(alice.leave_room(sent.room).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(alice.open_direct("nobody").await),
        ErrorCode::UserNotFound
    );
    server.stop().await;
}

#[tokio::test]
async fn moderators_can_kick_and_the_kicked_are_told() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, bob_session) = server.user("bob").await;
    let room = alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("ops").await.expect("join");
    assert_eq!(
        code_of(bob.kick(room.id, "alice", None).await),
        ErrorCode::Forbidden
    );
    alice
        .kick(room.id, "bob", Some("spam\u{1b}[2J\nagain".into()))
        .await
        .expect("kick");
    let (by, reason) = expect_event(&mut bob, |e| match e {
        Event::Kicked {
            room: r,
            by,
            reason,
            ..
        } if r == room.id => Some((by, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (by.as_str(), reason.as_deref()),
        ("alice", Some("spam [2J again")),
        "control characters in the reason become spaces"
    );
    let left = expect_event(&mut bob, |e| match e {
        Event::MemberLeft {
            room: r,
            user,
            reason,
            ..
        } if r == room.id => Some((user, reason)),
        _ => None,
    })
    .await;
    assert_eq!(left.0, bob_session.user.id);
    assert!(matches!(left.1, LeaveReason::Kicked { .. }));
    assert_eq!(
        code_of(bob.send_message(room.id, "still here?").await),
        ErrorCode::NotMember
    );
    server.stop().await;
}

#[tokio::test]
async fn a_kick_that_cannot_be_stored_tells_nobody() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, bob_session) = server.user("bob").await;
    let room = alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("ops").await.expect("join");
    // The database refuses to remove bob, as a full disk would.
    let side = rusqlite::Connection::open(server.config.database_path()).expect("side connection");
    side.busy_timeout(PATIENCE).expect("busy timeout");
    side.execute_batch(&format!(
        "CREATE TRIGGER keep_bob BEFORE DELETE ON members WHEN OLD.user_id = {}
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        bob_session.user.id.0
    ))
    .expect("trigger");
    alice
        .kick(room.id, "bob", Some("spam".into()))
        .await
        .expect_err("the removal failed");
    alice
        .send_message(room.id, "after the failed kick")
        .await
        .expect("send");
    expect_event(&mut bob, |e| match e {
        Event::Kicked { .. } => panic!("told of a kick that did not happen"),
        Event::Message(m) if m.text == "after the failed kick" => Some(()),
        _ => None,
    })
    .await;

    side.execute_batch("DROP TRIGGER keep_bob")
        .expect("drop trigger");
    alice.kick(room.id, "bob", None).await.expect("kick");
    expect_event(&mut bob, |e| match e {
        Event::Kicked { room: r, .. } if r == room.id => Some(()),
        _ => None,
    })
    .await;
    expect_event(&mut bob, |e| match e {
        Event::MemberLeft { room: r, user, .. } if r == room.id => Some(user),
        _ => None,
    })
    .await;
    server.stop().await;
}

/// The role `name` has in `room`, as `client` sees it in the room's member list.
async fn role_of(client: &ClientHandle, room: RoomId, name: &str) -> Option<RoomRole> {
    let info = client.room_info(room).await.expect("room info");
    info.members
        .into_iter()
        .find(|m| m.user.username == name)
        .map(|m| m.role)
}

/// Waits for a role change in `room`: `(username, role, by)`.
async fn expect_role_change(
    client: &mut Client,
    room: RoomId,
) -> (String, RoomRole, Option<String>) {
    expect_event(client, |e| match e {
        Event::RoleChanged {
            room: r,
            username,
            role,
            by,
            ..
        } if r == room => Some((username, role, by)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn the_owner_appoints_moderators_and_can_hand_the_room_over() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (mut carol, _) = server.user("carol").await;
    let room = alice
        .create_room("ops", Visibility::Private)
        .await
        .expect("create")
        .id;
    alice.invite(room, "bob").await.expect("invite bob");
    alice.invite(room, "carol").await.expect("invite carol");
    assert_eq!(
        code_of(bob.invite(room, "dave").await),
        ErrorCode::Forbidden,
        "a member may not invite to a private room"
    );
    assert_eq!(
        code_of(bob.set_role(room, "carol", RoomRole::Moderator).await),
        ErrorCode::Forbidden,
        "only the owner changes roles"
    );

    alice
        .set_role(room, "bob", RoomRole::Moderator)
        .await
        .expect("make bob a moderator");
    assert_eq!(
        expect_role_change(&mut carol, room).await,
        ("bob".into(), RoomRole::Moderator, Some("alice".into())),
        "the room hears of it"
    );
    assert_eq!(
        role_of(&carol, room, "bob").await,
        Some(RoomRole::Moderator)
    );
    let (_dave, _) = server.user("dave").await;
    bob.invite(room, "dave")
        .await
        .expect("a moderator may invite");
    assert_eq!(
        code_of(bob.set_role(room, "dave", RoomRole::Moderator).await),
        ErrorCode::Forbidden,
        "a moderator does not appoint moderators"
    );
    assert_eq!(
        code_of(alice.set_role(room, "alice", RoomRole::Member).await),
        ErrorCode::BadRequest,
        "the owner cannot step down without naming someone"
    );
    assert_eq!(
        code_of(alice.set_role(room, "nobody", RoomRole::Member).await),
        ErrorCode::UserNotFound
    );
    let (_erin, _) = server.user("erin").await;
    assert_eq!(
        code_of(alice.set_role(room, "erin", RoomRole::Moderator).await),
        ErrorCode::NotMember
    );

    alice
        .set_role(room, "carol", RoomRole::Owner)
        .await
        .expect("hand the room to carol");
    let mut changes = vec![
        expect_role_change(&mut carol, room).await,
        expect_role_change(&mut carol, room).await,
    ];
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changes,
        vec![
            ("alice".into(), RoomRole::Moderator, Some("alice".into())),
            ("carol".into(), RoomRole::Owner, Some("alice".into())),
        ]
    );
    assert_eq!(
        code_of(alice.set_role(room, "bob", RoomRole::Member).await),
        ErrorCode::Forbidden,
        "the old owner is a moderator now"
    );
    carol
        .set_role(room, "bob", RoomRole::Member)
        .await
        .expect("the new owner demotes bob");

    let server = server.restart().await;
    let (carol, _) = server.login("carol").await;
    let roles = [
        role_of(&carol, room, "alice").await,
        role_of(&carol, room, "bob").await,
        role_of(&carol, room, "carol").await,
    ];
    assert_eq!(
        roles,
        [
            Some(RoomRole::Moderator),
            Some(RoomRole::Member),
            Some(RoomRole::Owner)
        ],
        "roles survive a restart"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_owner_who_leaves_passes_the_room_on() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (mut carol, _) = server.user("carol").await;
    let room = alice
        .create_room("ops", Visibility::Private)
        .await
        .expect("create")
        .id;
    // The AI bot has been here longest, then carol, then bob, who is a moderator.
    alice.invite(room, "ai").await.expect("invite the bot");
    alice.invite(room, "carol").await.expect("invite carol");
    alice.invite(room, "bob").await.expect("invite bob");
    alice
        .set_role(room, "bob", RoomRole::Moderator)
        .await
        .expect("moderator");
    expect_role_change(&mut carol, room).await;

    alice.leave_room(room).await.expect("alice leaves");
    assert_eq!(
        expect_role_change(&mut carol, room).await,
        ("bob".into(), RoomRole::Owner, None),
        "a moderator comes before longer-standing members"
    );
    bob.leave_room(room).await.expect("bob leaves");
    assert_eq!(
        expect_role_change(&mut carol, room).await,
        ("carol".into(), RoomRole::Owner, None),
        "then the longest-standing person; never the bot"
    );
    assert_eq!(role_of(&carol, room, "ai").await, Some(RoomRole::Member));
    carol
        .invite(room, "alice")
        .await
        .expect("the new owner can let people back in");

    // A public room its last person left goes to whoever comes next.
    let lobby = bob
        .create_room("lobby", Visibility::Public)
        .await
        .expect("create")
        .id;
    bob.leave_room(lobby).await.expect("the only member leaves");
    let joined = carol.join_room("lobby").await.expect("join");
    assert_eq!(joined.my_role, Some(RoomRole::Owner));
    bob.join_room("lobby").await.expect("bob comes back");
    assert_eq!(role_of(&bob, lobby, "bob").await, Some(RoomRole::Member));
    // `public` belongs to nobody.
    let public = public_room(&bob).await;
    assert_eq!(role_of(&bob, public, "alice").await, Some(RoomRole::Member));
    server.stop().await;
}

/// The room's notices of `page`, oldest first.
fn notices(page: &chatroom_protocol::HistoryPage) -> Vec<&str> {
    page.messages
        .iter()
        .filter(|m| m.kind == chatroom_protocol::MessageKind::System)
        .map(|m| m.text.as_str())
        .collect()
}

#[tokio::test]
async fn what_happens_to_a_room_is_in_its_history_for_those_who_were_away() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let (mut dave, _) = server.user("dave").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    dave.join_room("dev").await.expect("dave joins");
    // Dave stays online and sees the log as it is written; carol will read it later.
    alice.invite(dev.id, "carol").await.expect("invite");
    carol
        .mark_read(dev.id, 2)
        .await
        .expect("carol has read up to here");
    drop(carol);
    alice
        .set_topic(dev.id, "release friday")
        .await
        .expect("topic");
    bob.join_room("dev").await.expect("bob joins");
    alice
        .set_role(dev.id, "dave", RoomRole::Moderator)
        .await
        .expect("promote");
    dave.mute(dev.id, "bob", Some(600), Some("calm down".into()))
        .await
        .expect("mute");
    dave.unmute(dev.id, "bob").await.expect("unmute");
    dave.kick(dev.id, "bob", Some("off topic".into()))
        .await
        .expect("kick");
    dave.ban(dev.id, "bob", None).await.expect("ban");
    dave.unban(dev.id, "bob").await.expect("unban");
    alice.send_message(dev.id, "ship it").await.expect("send");
    alice.leave_room(dev.id).await.expect("the owner leaves");

    let expected = [
        "dave joined",
        "alice added carol",
        "alice set the topic: release friday",
        "bob joined",
        "alice made dave a moderator",
        "dave muted bob for 10 min: calm down",
        "dave unmuted bob",
        "dave removed bob: off topic",
        "dave banned bob",
        "dave lifted the ban on bob",
        "alice left; dave is now the owner",
    ];
    // Live, as messages in seq order with everything else: the ten after dave's own join, and
    // alice's message.
    let mut live = Vec::new();
    while live.len() < expected.len() {
        let m = expect_event(&mut dave, |e| match e {
            Event::Message(m) if m.room == dev.id => Some(m),
            _ => None,
        })
        .await;
        live.push(m);
    }
    let seqs: Vec<u64> = live.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (2..=12).collect::<Vec<_>>(), "after dave's own join");
    let live_notices: Vec<&str> = live
        .iter()
        .filter(|m| m.kind == chatroom_protocol::MessageKind::System)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(live_notices, expected[1..]);
    let kick = &live[6];
    assert_eq!(
        (kick.sender_name.as_str(), kick.text.as_str()),
        ("dave", "dave removed bob: off topic"),
        "a notice is sent in the name of who acted"
    );

    // Stored: carol, who was away, reads it all, and none of it is unread news to her.
    let (carol, _) = server.login("carol").await;
    let page = carol
        .history(dev.id, HistoryAnchor::After(0), 50)
        .await
        .expect("history");
    assert_eq!(notices(&page), expected);
    let mine = carol.my_rooms().await.expect("rooms");
    let dev_for_carol = mine.iter().find(|r| r.id == dev.id).expect("dev");
    assert_eq!(
        (dev_for_carol.latest_seq, dev_for_carol.unread),
        (12, 1),
        "only alice's message is unread"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_new_account_joining_public_is_in_its_history_and_nobody_s_unread() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    server.user("bob").await;
    let page = alice
        .history(public, HistoryAnchor::After(0), 10)
        .await
        .expect("history");
    assert_eq!(notices(&page), ["alice joined", "bob joined"]);
    let rooms = alice.my_rooms().await.expect("rooms");
    assert_eq!((rooms[0].latest_seq, rooms[0].unread), (2, 0));
    server.stop().await;
}

#[tokio::test]
async fn the_owner_renames_a_room_and_its_members_hear_of_it() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");

    assert_eq!(
        code_of(bob.rename_room(dev.id, "bobs").await),
        ErrorCode::Forbidden,
        "a member may not"
    );
    assert_eq!(
        code_of(alice.rename_room(dev.id, "OPS").await),
        ErrorCode::RoomNameTaken
    );
    assert_eq!(
        code_of(alice.rename_room(dev.id, "back end").await),
        ErrorCode::InvalidRoomName
    );
    let public = public_room(&alice).await;
    assert_eq!(
        code_of(alice.rename_room(public, "lobby").await),
        ErrorCode::Forbidden,
        "public is where everyone lands"
    );

    alice.rename_room(dev.id, "backend").await.expect("rename");
    let (name, by) = expect_event(&mut bob, |e| match e {
        Event::RoomRenamed { room, name, by } if room == dev.id => Some((name, by)),
        _ => None,
    })
    .await;
    assert_eq!((name.as_str(), by.as_str()), ("backend", "alice"));
    let page = bob
        .history(dev.id, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    assert_eq!(
        notices(&page).last(),
        Some(&"alice renamed the room from dev to backend")
    );
    // The new name is the room's; the old one is free.
    let (carol, _) = server.user("carol").await;
    assert_eq!(carol.join_room("backend").await.expect("join").id, dev.id);
    assert_eq!(
        code_of(carol.join_room("dev").await),
        ErrorCode::RoomNotFound
    );
    let again = carol
        .create_room("dev", Visibility::Public)
        .await
        .expect("the old name is free");
    assert_ne!(again.id, dev.id);
    // Only the case changes: still the same room's name.
    alice.rename_room(dev.id, "Backend").await.expect("recase");

    let server = server.restart().await;
    let (bob, _) = server.login("bob").await;
    let names: Vec<String> = bob
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(names.contains(&"Backend".to_string()), "{names:?}");
    assert_eq!(
        bob.join_room("backend").await.expect("by its name").id,
        dev.id,
        "after a restart too"
    );
    server.stop().await;
}

/// `who`'s counts in `room`: (unread, mentions).
async fn counts(who: &ClientHandle, room: RoomId) -> (u32, u32) {
    let summary = who
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == room)
        .expect("a member");
    (summary.unread, summary.mentions)
}

#[tokio::test]
async fn unread_counts_what_is_left_to_read_since_joining() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    for n in 0..3 {
        alice
            .send_message(public, &format!("before bob {n}"))
            .await
            .expect("send");
    }
    // A new account starts with public's past read: it is there to scroll back to.
    let (bob, _) = server.user("bob").await;
    assert_eq!(counts(&bob, public).await, (0, 0));
    let history = bob
        .history(public, HistoryAnchor::Latest, 50)
        .await
        .expect("history");
    assert!(texts(&history.messages).contains(&"before bob 2"));

    // So does a member who joins a room later, or leaves and comes back.
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    alice.send_message(dev.id, "early").await.expect("send");
    bob.join_room("dev").await.expect("join");
    assert_eq!(counts(&bob, dev.id).await, (0, 0));
    alice.send_message(dev.id, "news").await.expect("send");
    let ping = alice.send_message(dev.id, "@bob look").await.expect("send");
    assert_eq!(counts(&bob, dev.id).await, (2, 1));

    // A deleted message is nothing left to read, nor a mention.
    alice
        .delete_message(dev.id, ping.seq)
        .await
        .expect("delete");
    assert_eq!(counts(&bob, dev.id).await, (1, 0));

    bob.leave_room(dev.id).await.expect("leave");
    alice
        .send_message(dev.id, "while away")
        .await
        .expect("send");
    bob.join_room("dev").await.expect("rejoin");
    assert_eq!(counts(&bob, dev.id).await, (0, 0));
    server.stop().await;
}

/// The first thing a new member hears of a room is the room itself. Messages keep being
/// committed while they join (or are invited); none may reach them before their
/// `RoomUpdated`, which is pushed in the same step that makes them a member. A client that got
/// a message first would have nowhere to put it.
#[tokio::test]
async fn a_new_member_hears_of_the_room_before_anything_said_in_it() {
    let server = TestServer::start_unthrottled().await;
    let (bob, _) = server.user("bob").await;
    // Another connection of bob's talks: one connection's requests are answered in turn, so
    // the one that invites could not talk meanwhile.
    let (talking_bob, _) = server.login("bob").await;
    let (mut alice, _) = server.user("alice").await;
    for round in 0..8 {
        let invited = round % 2 == 1;
        let visibility = if invited {
            Visibility::Private
        } else {
            Visibility::Public
        };
        let room = bob
            .create_room(&format!("busy{round}"), visibility)
            .await
            .expect("create")
            .id;
        // Bob talks in four streams without a pause while alice comes in.
        let talkers: Vec<_> = (0..4)
            .map(|stream| {
                let bob = talking_bob.handle();
                tokio::spawn(async move {
                    for i in 0..40 {
                        bob.send_message(room, format!("{stream}.{i}"))
                            .await
                            .expect("send");
                    }
                })
            })
            .collect();
        if invited {
            bob.invite(room, "alice").await.expect("invite");
        } else {
            alice
                .join_room(&format!("busy{round}"))
                .await
                .expect("join");
        }
        let first = expect_event(&mut alice, |e| match e {
            Event::RoomUpdated(summary) if summary.id == room => Some("the room".to_string()),
            Event::Message(m) if m.room == room => Some(format!("message {:?}", m.text)),
            _ => None,
        })
        .await;
        assert_eq!(first, "the room", "round {round}, invited: {invited}");
        for talker in talkers {
            talker.await.expect("bob's stream");
        }
    }
    server.stop().await;
}
