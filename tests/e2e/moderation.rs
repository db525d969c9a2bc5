//! Bans: a banned member is removed and kept out until unbanned; who may ban whom.

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
        Event::Kicked {
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
