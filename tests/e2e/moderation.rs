//! Moderation: bans remove a member and keep them out until unbanned; mutes keep a member from
//! posting; who may do either to whom.

use crate::support::*;
use chatroom_protocol::{ErrorCode, Event, LeaveReason, RoomRole, Visibility};

#[tokio::test]
async fn a_ban_removes_the_member_and_keeps_them_out_until_it_is_lifted() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, bob_session) = server.user("bob").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");

    alice
        .ban(dev.id, "bob", Some("spam\nspam".into()))
        .await
        .expect("ban");
    let told = expect_event(&mut bob, |e| match e {
        Event::Banned {
            room, by, reason, ..
        } if room == dev.id => Some((by, reason)),
        _ => None,
    })
    .await;
    assert_eq!(told, ("alice".into(), Some("spam spam".into())));
    let seen = expect_event(&mut alice, |e| match e {
        Event::MemberLeft {
            room, user, reason, ..
        } if room == dev.id => Some((user, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        seen,
        (
            bob_session.user.id,
            LeaveReason::Banned {
                by: "alice".into(),
                reason: Some("spam spam".into())
            }
        )
    );
    assert_eq!(
        code_of(bob.send_message(dev.id, "let me back").await),
        ErrorCode::NotMember
    );
    let refused = bob.join_room("dev").await.expect_err("banned");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(refused.to_string().contains("banned"), "{refused}");
    assert_eq!(
        code_of(alice.invite(dev.id, "bob").await),
        ErrorCode::Forbidden
    );

    let bans = alice.bans(dev.id).await.expect("bans");
    assert_eq!(
        bans.iter()
            .map(|b| (b.username.as_str(), b.by.as_str(), b.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("bob", "alice", Some("spam spam"))]
    );

    // The ban outlives a restart; lifting it lets bob back in.
    drop((alice, bob));
    let server = server.restart().await;
    let (alice, _) = server.login("alice").await;
    let (bob, _) = server.login("bob").await;
    assert_eq!(code_of(bob.join_room("dev").await), ErrorCode::Forbidden);
    alice.unban(dev.id, "bob").await.expect("unban");
    assert_eq!(alice.bans(dev.id).await.expect("bans"), []);
    assert_eq!(
        code_of(alice.unban(dev.id, "bob").await),
        ErrorCode::BadRequest,
        "nothing left to lift"
    );
    bob.join_room("dev").await.expect("joins again");
    server.stop().await;
}

#[tokio::test]
async fn only_moderators_ban_and_only_those_below_them() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mike, _) = server.user("mike").await;
    let (carol, _) = server.user("carol").await;
    let (dave, _) = server.user("dave").await;
    server.user("troll").await;
    let ops = alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    for member in [&mike, &carol, &dave] {
        member.join_room("ops").await.expect("join");
    }
    alice
        .set_role(ops.id, "mike", RoomRole::Moderator)
        .await
        .expect("mod");

    // A member may neither ban nor see the bans.
    assert_eq!(
        code_of(carol.ban(ops.id, "dave", None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(code_of(carol.bans(ops.id).await), ErrorCode::Forbidden);
    assert_eq!(
        code_of(carol.unban(ops.id, "dave").await),
        ErrorCode::Forbidden
    );
    // A moderator bans members, not the owner, not themself.
    assert_eq!(
        code_of(mike.ban(ops.id, "alice", None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(mike.ban(ops.id, "mike", None).await),
        ErrorCode::BadRequest
    );
    mike.ban(ops.id, "dave", None).await.expect("mod bans");
    // Someone who was never in the room can be banned before they arrive.
    mike.ban(ops.id, "troll", Some("known spammer".into()))
        .await
        .expect("ban ahead");
    let (troll, _) = server.login("troll").await;
    assert_eq!(code_of(troll.join_room("ops").await), ErrorCode::Forbidden);
    assert_eq!(
        code_of(mike.ban(ops.id, "nobody", None).await),
        ErrorCode::UserNotFound
    );
    // The owner may ban a moderator.
    alice.ban(ops.id, "mike", None).await.expect("owner bans");
    assert_eq!(
        alice
            .bans(ops.id)
            .await
            .expect("bans")
            .iter()
            .map(|b| b.username.as_str())
            .collect::<Vec<_>>()
            .len(),
        3
    );
    // No bans in a direct chat.
    let direct = alice.open_direct("carol").await.expect("direct");
    assert_eq!(
        code_of(alice.ban(direct.id, "carol", None).await),
        ErrorCode::Forbidden
    );
    server.stop().await;
}

#[tokio::test]
async fn a_mute_stops_posting_but_not_reading_until_it_is_lifted() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, bob_session) = server.user("bob").await;
    let (mut carol, _) = server.user("carol").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");
    carol.join_room("dev").await.expect("join");
    let typo = bob.send_message(dev.id, "hello").await.expect("send");

    let before = chatroom_protocol::now_millis();
    alice
        .mute(dev.id, "bob", Some(3600), Some("calm\ndown".into()))
        .await
        .expect("mute");
    for client in [&mut bob, &mut carol] {
        let heard = expect_event(client, |e| match e {
            Event::Muted {
                room,
                user,
                username,
                by,
                reason,
                until,
            } if room == dev.id => Some((user, username, by, reason, until)),
            _ => None,
        })
        .await;
        assert_eq!(
            (
                heard.0,
                heard.1.as_str(),
                heard.2.as_str(),
                heard.3.as_deref()
            ),
            (bob_session.user.id, "bob", "alice", Some("calm down"))
        );
        let until = heard.4.expect("an hour");
        assert!(
            (before + 3_600_000..before + 3_700_000).contains(&until),
            "{until}"
        );
    }

    // Every way of posting is refused, saying for how long; reading goes on.
    let refused = bob.send_message(dev.id, "but").await.expect_err("muted");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(
        refused.to_string().contains("muted in #dev for 1 h"),
        "{refused}"
    );
    assert_eq!(
        code_of(bob.edit_message(dev.id, typo.seq, "hullo").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.offer_upload(dev.id, "a.txt", 1, [0; 32]).await),
        ErrorCode::Forbidden
    );
    carol
        .send_message(dev.id, "still here?")
        .await
        .expect("send");
    expect_message(&mut bob, "still here?").await;
    bob.delete_message(dev.id, typo.seq)
        .await
        .expect("deleting one's own is not posting");
    let listed = carol.mutes(dev.id).await.expect("any member may look");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.username.as_str(), m.by.as_str(), m.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("bob", "alice", Some("calm down"))]
    );

    // Leaving and coming back, or a restart, does not end it.
    bob.leave_room(dev.id).await.expect("leave");
    bob.join_room("dev").await.expect("join again");
    assert_eq!(
        code_of(bob.send_message(dev.id, "now?").await),
        ErrorCode::Forbidden
    );
    drop((alice, bob, carol));
    let server = server.restart().await;
    let (alice, _) = server.login("alice").await;
    let (mut bob, _) = server.login("bob").await;
    assert_eq!(
        code_of(bob.send_message(dev.id, "after a restart?").await),
        ErrorCode::Forbidden
    );

    alice.unmute(dev.id, "bob").await.expect("unmute");
    let by = expect_event(&mut bob, |e| match e {
        Event::Unmuted { room, by, .. } if room == dev.id => Some(by),
        _ => None,
    })
    .await;
    assert_eq!(by, "alice");
    bob.send_message(dev.id, "thanks")
        .await
        .expect("may post again");
    assert_eq!(alice.mutes(dev.id).await.expect("mutes"), []);
    assert_eq!(
        code_of(alice.unmute(dev.id, "bob").await),
        ErrorCode::BadRequest,
        "nothing left to lift"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_mute_for_a_while_ends_by_itself() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");
    alice
        .mute(dev.id, "bob", Some(1), None)
        .await
        .expect("mute");
    assert_eq!(
        code_of(bob.send_message(dev.id, "soon").await),
        ErrorCode::Forbidden
    );
    let started = std::time::Instant::now();
    loop {
        match bob.send_message(dev.id, "free").await {
            Ok(_) => break,
            Err(e) if started.elapsed() < PATIENCE => {
                assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("still muted: {e}"),
        }
    }
    assert_eq!(alice.mutes(dev.id).await.expect("mutes"), [], "run out");
    server.stop().await;
}

#[tokio::test]
async fn a_mute_is_lifted_only_from_above_or_by_an_owner_who_inherited_it() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mike, _) = server.user("mike").await;
    let (carol, _) = server.user("carol").await;
    let (dave, _) = server.user("dave").await;
    let ops = alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    for member in [&mike, &carol, &dave] {
        member.join_room("ops").await.expect("join");
    }
    for moderator in ["mike", "carol"] {
        alice
            .set_role(ops.id, moderator, RoomRole::Moderator)
            .await
            .expect("mod");
    }
    alice.mute(ops.id, "mike", None, None).await.expect("mute");
    assert_eq!(
        code_of(mike.unmute(ops.id, "mike").await),
        ErrorCode::BadRequest,
        "a muted moderator does not lift their own mute"
    );
    assert_eq!(
        code_of(carol.unmute(ops.id, "mike").await),
        ErrorCode::Forbidden,
        "nor does a fellow moderator"
    );
    assert_eq!(
        code_of(mike.send_message(ops.id, "still muted?").await),
        ErrorCode::Forbidden
    );

    // Someone who left stays muted; whoever may mute lifts it.
    carol.mute(ops.id, "dave", None, None).await.expect("mute");
    dave.leave_room(ops.id).await.expect("leave");
    carol
        .unmute(ops.id, "dave")
        .await
        .expect("lifted after leaving");
    dave.join_room("ops").await.expect("back");
    dave.send_message(ops.id, "hello again")
        .await
        .expect("not muted");

    // The owner leaves; the room passes to mike, the longest-serving moderator, muted: as
    // its owner he may lift it, nobody above him being left to.
    alice.leave_room(ops.id).await.expect("leave");
    let info = mike.room_info(ops.id).await.expect("info");
    let owner = info
        .members
        .iter()
        .find(|m| m.role == RoomRole::Owner)
        .map(|m| m.user.username.clone());
    assert_eq!(owner.as_deref(), Some("mike"));
    mike.unmute(ops.id, "mike")
        .await
        .expect("the owner lifts it");
    mike.send_message(ops.id, "my room now")
        .await
        .expect("posts");
    server.stop().await;
}

#[tokio::test]
async fn only_moderators_mute_and_only_those_below_them() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mike, _) = server.user("mike").await;
    let (carol, _) = server.user("carol").await;
    let (dave, _) = server.user("dave").await;
    server.user("outsider").await;
    let ops = alice
        .create_room("ops", Visibility::Public)
        .await
        .expect("create");
    for member in [&mike, &carol, &dave] {
        member.join_room("ops").await.expect("join");
    }
    alice
        .set_role(ops.id, "mike", RoomRole::Moderator)
        .await
        .expect("mod");

    assert_eq!(
        code_of(carol.mute(ops.id, "dave", None, None).await),
        ErrorCode::Forbidden,
        "a member may not mute"
    );
    assert_eq!(
        code_of(carol.unmute(ops.id, "dave").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(mike.mute(ops.id, "alice", None, None).await),
        ErrorCode::Forbidden,
        "nor a moderator the owner"
    );
    assert_eq!(
        code_of(mike.mute(ops.id, "mike", None, None).await),
        ErrorCode::BadRequest
    );
    alice
        .set_role(ops.id, "carol", RoomRole::Moderator)
        .await
        .expect("a second mod");
    assert_eq!(
        code_of(mike.mute(ops.id, "carol", None, None).await),
        ErrorCode::Forbidden,
        "nor a moderator another"
    );
    assert_eq!(
        code_of(mike.mute(ops.id, "outsider", None, None).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code_of(mike.mute(ops.id, "nobody", None, None).await),
        ErrorCode::UserNotFound
    );
    for secs in [0, chatroom_protocol::MAX_MUTE_SECS + 1] {
        assert_eq!(
            code_of(mike.mute(ops.id, "dave", Some(secs), None).await),
            ErrorCode::BadRequest,
            "{secs} s"
        );
    }
    let bot = alice
        .server_info()
        .await
        .expect("info")
        .ai_bot
        .expect("a bot");
    assert_eq!(
        code_of(
            carol
                .mute(public_room(&carol).await, &bot, None, None)
                .await
        ),
        ErrorCode::Forbidden,
        "public has no owner, and carol is not a server admin"
    );
    alice.invite(ops.id, &bot).await.expect("invite the bot");
    let refused = alice
        .mute(ops.id, &bot, None, None)
        .await
        .expect_err("the bot");
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest));
    assert!(refused.to_string().contains("kick"), "{refused}");

    mike.mute(ops.id, "dave", None, None)
        .await
        .expect("until unmuted");
    let listed = alice.mutes(ops.id).await.expect("mutes");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.username.as_str(), m.until))
            .collect::<Vec<_>>(),
        [("dave", None)]
    );
    let refused = dave.send_message(ops.id, "hm").await.expect_err("muted");
    assert!(
        refused
            .to_string()
            .contains("until a moderator unmutes you"),
        "{refused}"
    );
    // The owner may mute a moderator.
    alice
        .mute(ops.id, "mike", Some(60), None)
        .await
        .expect("owner mutes a moderator");
    // No mutes in a direct chat.
    let direct = alice.open_direct("carol").await.expect("direct");
    assert_eq!(
        code_of(alice.mute(direct.id, "carol", None, None).await),
        ErrorCode::Forbidden
    );
    server.stop().await;
}

#[tokio::test]
async fn a_server_admin_keeps_order_in_public_and_in_the_rooms_they_are_in() {
    let server = TestServer::start().await;
    // The first account is the server admin.
    let (alice, alice_session) = server.user("alice").await;
    assert!(alice_session.user.is_admin);
    let (mut bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let public = public_room(&alice).await;

    // Nobody owns `public`, and a member cannot moderate it...
    assert_eq!(
        code_of(carol.mute(public, "bob", Some(60), None).await),
        ErrorCode::Forbidden
    );
    // ...but the admin can: mute, topic, delete anyone's message, ban.
    alice
        .mute(public, "bob", Some(60), Some("calm down".into()))
        .await
        .expect("the admin mutes in public");
    assert_eq!(
        code_of(bob.send_message(public, "spam").await),
        ErrorCode::Forbidden
    );
    alice.unmute(public, "bob").await.expect("unmute");
    let spam = bob.send_message(public, "spam").await.expect("unmuted");
    alice
        .delete_message(public, spam.seq)
        .await
        .expect("the admin deletes anyone's message in public");
    alice
        .set_topic(public, "be nice")
        .await
        .expect("the admin sets public's topic");

    // Public's moderators are the admin's to appoint, and nobody is made its owner.
    assert_eq!(
        code_of(carol.set_role(public, "bob", RoomRole::Moderator).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(alice.set_role(public, "bob", RoomRole::Owner).await),
        ErrorCode::Forbidden
    );
    alice
        .set_role(public, "bob", RoomRole::Moderator)
        .await
        .expect("the admin appoints a moderator of public");
    bob.kick(public, "carol", Some("off topic".into()))
        .await
        .expect("public's new moderator kicks");
    // ...but not the admin who appointed him: nobody below them locks them out of public.
    assert_eq!(
        code_of(bob.kick(public, "alice", None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.ban(public, "alice", None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.mute(public, "alice", Some(60), None).await),
        ErrorCode::Forbidden
    );
    // Nor from a room she has yet to join.
    let quiet = bob
        .create_room("quiet", Visibility::Public)
        .await
        .expect("create");
    assert_eq!(
        code_of(bob.ban(quiet.id, "alice", None).await),
        ErrorCode::Forbidden
    );
    carol.join_room("public").await.expect("back in");
    alice
        .ban(public, "carol", None)
        .await
        .expect("the admin bans from public");
    let told = expect_event(&mut bob, |e| match e {
        Event::MemberLeft {
            room,
            username,
            reason: LeaveReason::Banned { by, .. },
            ..
        } if room == public => Some((username, by)),
        _ => None,
    })
    .await;
    assert_eq!(told, ("carol".into(), "alice".into()));

    // Nobody leaves public by themselves.
    let refused = bob.leave_room(public).await.expect_err("leave public");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(
        refused.to_string().contains("everyone is in public"),
        "{refused}"
    );

    // In someone else's room the admin is a moderator there, not its owner.
    let dev = bob
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    alice.join_room("dev").await.expect("join");
    let (dave, _) = server.user("dave").await;
    dave.join_room("dev").await.expect("join");
    alice
        .mute(dev.id, "dave", None, None)
        .await
        .expect("the admin mutes a member of bob's room");
    assert_eq!(
        code_of(alice.kick(dev.id, "bob", None).await),
        ErrorCode::Forbidden,
        "not the owner"
    );
    assert_eq!(
        code_of(alice.rename_room(dev.id, "alices").await),
        ErrorCode::Forbidden
    );
    // Nothing of this reaches into direct chats.
    let dm = bob.send_direct("dave", "psst").await.expect("dm");
    assert_eq!(
        code_of(alice.delete_message(dm.room, dm.seq).await),
        ErrorCode::RoomNotFound
    );
    server.stop().await;
}

/// The messages of a room's history that `who` sent, as (seq, kind is Deleted).
async fn sent_by(
    reader: &chatroom_protocol::client::ClientHandle,
    room: chatroom_protocol::RoomId,
    who: &str,
) -> Vec<(u64, bool)> {
    let page = reader
        .history(room, chatroom_protocol::HistoryAnchor::Latest, 1000)
        .await
        .expect("history");
    page.messages
        .iter()
        .filter(|m| m.sender_name == who && m.kind != chatroom_protocol::MessageKind::System)
        .map(|m| (m.seq, m.kind == chatroom_protocol::MessageKind::Deleted))
        .collect()
}

#[tokio::test]
async fn a_moderator_deletes_what_a_spammer_posted_lately_in_one_go() {
    let server = TestServer::start_unthrottled().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let (mut dave, _) = server.user("dave").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create")
        .id;
    for who in [&bob, &carol, &dave] {
        who.join_room("dev").await.expect("join");
    }
    alice
        .set_role(dev, "bob", RoomRole::Moderator)
        .await
        .expect("bob moderates");
    let early = carol
        .send_message(dev, "said long ago")
        .await
        .expect("send");
    // Older than the two seconds deleted below, whatever the machine's speed.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut spam = Vec::new();
    for i in 0..5 {
        spam.push(
            carol
                .send_message(dev, format!("buy now {i}"))
                .await
                .expect("send")
                .seq,
        );
    }
    dave.send_message(dev, "is this real?").await.expect("send");

    // Only moderators, only in named rooms, only below their role, and not for no time.
    assert_eq!(
        code_of(
            dave.delete_messages_by(dev, "carol", std::time::Duration::from_secs(60))
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(
            bob.delete_messages_by(dev, "alice", std::time::Duration::from_secs(60))
                .await
        ),
        ErrorCode::Forbidden,
        "the owner is above a moderator"
    );
    assert_eq!(
        code_of(
            bob.delete_messages_by(dev, "nobody", std::time::Duration::from_secs(60))
                .await
        ),
        ErrorCode::UserNotFound
    );
    let zero = bob
        .handle()
        .request(chatroom_protocol::Request::DeleteMessagesBy {
            room: dev,
            username: "carol".into(),
            within_secs: 0,
        })
        .await;
    assert_eq!(code_of(zero), ErrorCode::BadRequest);
    let direct = carol.open_direct("bob").await.expect("direct").id;
    assert_eq!(
        code_of(
            bob.delete_messages_by(direct, "carol", std::time::Duration::from_secs(60))
                .await
        ),
        ErrorCode::Forbidden,
        "a direct chat has no moderators"
    );

    // Carol leaves; what she posted in the last two seconds goes, the older message stays.
    carol.leave_room(dev).await.expect("leave");
    let count = bob
        .delete_messages_by(dev, "carol", std::time::Duration::from_secs(2))
        .await
        .expect("deleted");
    assert_eq!(count, 5);
    let mut told = Vec::new();
    while told.len() < 5 {
        told.push(
            expect_event(&mut dave, |e| match e {
                Event::MessageDeleted { room, seq, by } if room == dev && by == "bob" => Some(seq),
                _ => None,
            })
            .await,
        );
    }
    told.sort_unstable();
    assert_eq!(told, spam, "the room hears of each");
    let carols = sent_by(&dave, dev, "carol").await;
    assert_eq!(
        carols,
        std::iter::once((early.seq, false))
            .chain(spam.iter().map(|&seq| (seq, true)))
            .collect::<Vec<_>>()
    );
    assert_eq!(sent_by(&dave, dev, "dave").await.len(), 1, "dave's stays");
    assert_eq!(
        bob.delete_messages_by(dev, "carol", std::time::Duration::from_secs(2))
            .await
            .expect("again"),
        0,
        "nothing left to delete"
    );
    assert_eq!(
        bob.delete_messages_by(dev, "carol", std::time::Duration::from_secs(60))
            .await
            .expect("further back"),
        1,
        "a minute back takes the older one too"
    );
    server.stop().await;
}

#[tokio::test]
async fn deleting_someones_messages_goes_newest_first_and_at_most_500_at_a_time() {
    let server = TestServer::start_unthrottled().await;
    let (alice, _) = server.user("alice").await;
    let (carol, _) = server.user("carol").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create")
        .id;
    carol.join_room("dev").await.expect("join");
    let total = chatroom_protocol::MAX_DELETED_AT_ONCE as usize + 3;
    for i in 0..total {
        carol.send_message(dev, format!("{i}")).await.expect("send");
    }
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(
        alice
            .delete_messages_by(dev, "carol", hour)
            .await
            .expect("first"),
        chatroom_protocol::MAX_DELETED_AT_ONCE
    );
    let carols = sent_by(&alice, dev, "carol").await;
    let left: Vec<bool> = carols.iter().map(|&(_, deleted)| deleted).collect();
    assert_eq!(
        left,
        [vec![false; 3], vec![true; total - 3]].concat(),
        "the newest went first"
    );
    assert_eq!(
        alice
            .delete_messages_by(dev, "carol", hour)
            .await
            .expect("second"),
        3
    );
    server.stop().await;
}
