//! Accounts and sessions.

use crate::support::*;
use chatroom_protocol::client::{Client, ClientError, ClientHandle};
use chatroom_protocol::{
    ErrorCode, Event, HistoryAnchor, LeaveReason, PresenceStatus, RoomKind, RoomRole, UserId,
    Visibility,
};
use chatroom_server::config::RegistrationPolicy;
use std::time::Duration;

#[tokio::test]
async fn register_login_resume_logout_and_change_password() {
    let server = TestServer::start().await;
    let (first, session) = server.user("alice").await;
    assert_eq!(session.user.username, "alice");
    assert!(session.user.is_admin, "the first account is an admin");
    assert_eq!(session.token.len(), 64);

    // A second device logs in with the password, a third resumes with the token.
    let (_second, login) = server.login("ALICE").await;
    assert_eq!(login.user.id, session.user.id, "names are case-insensitive");
    assert_ne!(login.token, session.token, "each login is its own session");
    let third = server.connect().await;
    let resumed = third.resume(&session.token).await.expect("resume");
    assert_eq!(resumed.user.id, session.user.id);

    // Logging out ends that session: its token no longer resumes.
    first.logout().await.expect("logout");
    assert_eq!(code_of(first.my_rooms().await), ErrorCode::NotAuthenticated);
    let again = server.connect().await;
    assert_eq!(
        code_of(again.resume(&session.token).await),
        ErrorCode::InvalidToken
    );

    // Changing the password revokes the other sessions, keeps this one, and the new password works.
    let (changer, changer_session) = server.login("alice").await;
    changer
        .change_password(PASSWORD, "a whole new password")
        .await
        .expect("change password");
    changer
        .my_rooms()
        .await
        .expect("the changing session stays logged in");
    let revoked = server.connect().await;
    assert_eq!(
        code_of(revoked.resume(&login.token).await),
        ErrorCode::InvalidToken
    );
    assert_eq!(
        code_of(third.my_rooms().await),
        ErrorCode::SessionRevoked,
        "a connected session of the account is closed"
    );
    let fresh = server.connect().await;
    assert_eq!(
        code_of(fresh.login("alice", PASSWORD).await),
        ErrorCode::InvalidCredentials
    );
    fresh
        .login("alice", "a whole new password")
        .await
        .expect("new password works");
    let resumed = server.connect().await;
    resumed
        .resume(&changer_session.token)
        .await
        .expect("the changer's token still works");

    let (_bob, bob) = server.user("bob").await;
    assert!(!bob.user.is_admin, "only the first account is an admin");
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start().await;
    server.user("carol").await;
    let client = server.connect().await;
    let wrong = client
        .login("carol", "not the password")
        .await
        .expect_err("wrong password");
    let unknown = client
        .login("nobody", PASSWORD)
        .await
        .expect_err("unknown user");
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    assert_eq!(unknown.code(), Some(ErrorCode::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    server.stop().await;
}

#[tokio::test]
async fn names_are_unique_ignoring_case_and_follow_the_rules() {
    let server = TestServer::start().await;
    server.user("Dave").await;
    let client = server.connect().await;
    assert_eq!(
        code_of(client.register("dAVE", PASSWORD).await),
        ErrorCode::UsernameTaken
    );
    assert_eq!(
        code_of(client.register("has space", PASSWORD).await),
        ErrorCode::InvalidUsername
    );
    assert_eq!(
        code_of(client.register("", PASSWORD).await),
        ErrorCode::InvalidUsername
    );
    assert_eq!(
        code_of(client.register("shortpw", "short").await),
        ErrorCode::WeakPassword
    );
    let session = client
        .register("张伟", PASSWORD)
        .await
        .expect("Chinese names work");
    assert_eq!(session.user.username, "张伟");
    server.stop().await;
}

#[tokio::test]
async fn closed_registration_admits_only_admins() {
    let server = TestServer::start_with(|c| c.registration = RegistrationPolicy::Closed).await;
    let client = server.connect().await;
    assert!(!client.welcome().registration_open);
    assert_eq!(
        code_of(client.register("eve", PASSWORD).await),
        ErrorCode::RegistrationClosed
    );

    // An admin created offline may register accounts over the network.
    let (dir, config) = server.stop().await;
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, PASSWORD).expect("write");
    let mut admin = chatroom_server::admin::Admin::open(dir.path()).expect("open");
    admin.add_user("root", PASSWORD, true).expect("add admin");
    // Offline too, a look-alike of a taken name is refused.
    let refused = admin
        .add_user("r\u{43e}ot", PASSWORD, false)
        .expect_err("a Cyrillic o");
    assert!(
        refused
            .to_string()
            .contains("looks like the account \"root\""),
        "{refused}"
    );
    drop(admin);
    let server = TestServer::start_with(|c| *c = config.clone()).await;
    assert!(
        server
            .connect()
            .await
            .register("eve", PASSWORD)
            .await
            .is_err()
    );
    let (root, _) = server.login("root").await;
    root.create_account("eve", PASSWORD)
        .await
        .expect("an admin registers eve");
    let (eve, _) = server.login("eve").await;
    // A logged-in member who is not an admin is told how to register another account.
    let refused = eve
        .create_account("mallory", PASSWORD)
        .await
        .expect_err("only admins create accounts while logged in");
    assert!(
        refused
            .to_string()
            .contains("already logged in as eve; log out to register"),
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let server = TestServer::start_with(|c| c.limits.login_failures_per_account = 3).await;
    server.user("frank").await;
    let client = server.connect().await;
    for _ in 0..3 {
        assert_eq!(
            code_of(client.login("frank", "wrong wrong").await),
            ErrorCode::InvalidCredentials
        );
    }
    assert_eq!(
        code_of(client.login("frank", PASSWORD).await),
        ErrorCode::RateLimited,
        "even the right password is refused while the account is locked"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_session_unused_for_the_expiry_stops_resuming_and_a_held_one_does_not() {
    let server = TestServer::start_with(|c| c.limits.session_expiry_secs = 1).await;
    let (holder, session) = server.user("erin").await;

    // Held by a connection for longer than the expiry: being connected is use.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = server.connect().await;
    second
        .resume(&session.token)
        .await
        .expect("a session held by a connection does not expire");

    // Nobody holds it for longer than the expiry: the token no longer resumes.
    holder.close();
    second.close();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = server.connect().await;
    let refused = late.resume(&session.token).await.expect_err("expired");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidToken));
    assert!(
        refused.to_string().contains("expired"),
        "the message says why: {refused}"
    );
    late.login("erin", PASSWORD)
        .await
        .expect("the password still logs in");
    server.stop().await;
}

#[tokio::test]
async fn sessions_that_expired_while_the_server_was_down_are_deleted_at_start() {
    let server = TestServer::start().await;
    let (stale_client, stale) = server.user("olga").await;
    let (fresh_client, fresh) = server.user("rita").await;
    stale_client.close();
    fresh_client.close();
    let (dir, config) = server.stop().await;

    // Olga's session was last used 31 days ago (written into the file while the server is down).
    let stale_hash = chatroom_server::auth::token_hash(&stale.token);
    let fresh_hash = chatroom_server::auth::token_hash(&fresh.token);
    let db_path = config.database_path();
    let last_used = |hash: &[u8]| -> Option<i64> {
        let db = rusqlite::Connection::open(&db_path).expect("open the database");
        db.query_row(
            "SELECT last_used_at FROM sessions WHERE token_hash = ?1",
            [hash],
            |r| r.get(0),
        )
        .ok()
    };
    let fresh_before = last_used(&fresh_hash).expect("rita's session is stored");
    let month_ago = fresh_before - 31 * 24 * 3600 * 1000;
    rusqlite::Connection::open(&db_path)
        .expect("open the database")
        .execute(
            "UPDATE sessions SET last_used_at = ?1 WHERE token_hash = ?2",
            rusqlite::params![month_ago, stale_hash],
        )
        .expect("age olga's session");

    // Started and stopped again without anyone resuming: the start-up upkeep deleted the row.
    let server = TestServer::start_in(dir, config).await;
    let (dir, config) = server.stop().await;
    assert_eq!(
        last_used(&stale_hash),
        None,
        "the expired session is deleted"
    );
    assert_eq!(last_used(&fresh_hash), Some(fresh_before));

    // The other session still resumes, and that use is written down by the time the server stops.
    let server = TestServer::start_in(dir, config).await;
    let client = server.connect().await;
    assert_eq!(
        code_of(client.resume(&stale.token).await),
        ErrorCode::InvalidToken
    );
    client.resume(&fresh.token).await.expect("rita resumes");
    let (_dir, _config) = server.stop().await;
    assert!(
        last_used(&fresh_hash).is_some_and(|t| t > fresh_before),
        "the resume is recorded as a use"
    );
}

/// Waits until `name` has no connection left, as `watcher` sees it: the server has let go of
/// every session it held.
async fn until_offline(watcher: &ClientHandle, name: &str) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let users = watcher.list_users().await.expect("users");
            let online = users
                .iter()
                .any(|u| u.user.username == name && u.status != PresenceStatus::Offline);
            if !online {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} goes offline in time"));
}

/// `name`'s rows in the `sessions` table of a stopped server's database.
fn stored_sessions(config: &chatroom_server::config::Config, user: UserId) -> i64 {
    rusqlite::Connection::open(config.database_path())
        .expect("open the database")
        .query_row(
            "SELECT COUNT(*) FROM sessions WHERE user_id = ?1",
            [user.0 as i64],
            |r| r.get(0),
        )
        .expect("count sessions")
}

#[tokio::test]
async fn logins_beyond_the_session_limit_end_the_least_recently_used_unconnected_one() {
    let server = TestServer::start_with(|c| c.limits.max_sessions_per_account = 2).await;
    let (watcher, _) = server.user("alice").await;
    let (client, first) = server.user("bot").await;
    let bot = first.user.id;
    client.close();
    until_offline(&watcher, "bot").await;
    let (client, second) = server.login("bot").await;
    client.close();
    until_offline(&watcher, "bot").await;

    // A third login, nothing connected: the least recently used session ends, and its client
    // hears why when it comes back.
    let (client, third) = server.login("bot").await;
    client.close();
    until_offline(&watcher, "bot").await;
    let said = resume_refusal(&server, &first.token).await;
    assert!(
        said.contains(
            "the account had more than 2 sessions (logins not logged out) and this one was \
             the least recently used; log in again"
        ),
        "{said}"
    );

    // Both kept sessions held by connections: a fourth login ends neither, and the account
    // is over the limit with connected sessions only.
    let held_second = server.connect().await;
    held_second.resume(&second.token).await.expect("kept");
    let held_third = server.connect().await;
    held_third.resume(&third.token).await.expect("kept");
    let (_fourth_client, fourth) = server.login("bot").await;
    for session in [&second, &third, &fourth] {
        server
            .connect()
            .await
            .resume(&session.token)
            .await
            .expect("a connected session is never ended for the limit");
    }

    // Down with three stored; at the next start, with nobody connected, the least recently
    // used one goes, and logins keep to the limit from the rows.
    let (dir, config) = server.stop().await;
    assert_eq!(stored_sessions(&config, bot), 3);
    let server = TestServer::start_in(dir, config).await;
    let (dir, config) = server.stop().await;
    assert_eq!(stored_sessions(&config, bot), 2, "trimmed at start-up");
    let server = TestServer::start_in(dir, config).await;
    let (_, fifth) = server.login("bot").await;
    let (dir, config) = server.stop().await;
    assert_eq!(stored_sessions(&config, bot), 2, "a login after a restart");
    let server = TestServer::start_in(dir, config).await;
    let mut ended = 0;
    for session in [&second, &third, &fourth] {
        if let Err(e) = server.connect().await.resume(&session.token).await {
            assert!(e.to_string().contains("least recently used"), "{e}");
            ended += 1;
        }
    }
    assert_eq!(
        ended, 2,
        "one ended at the start, one at the login, both with the reason"
    );
    server
        .connect()
        .await
        .resume(&fifth.token)
        .await
        .expect("the newest stays");
    server.stop().await;
}

#[tokio::test]
async fn an_account_remembers_only_its_latest_thousand_ended_sessions() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (_, bob) = server.user("bob").await;

    // A thousand recent ends of bob's already (a bot logging in again and again, say).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut side =
        rusqlite::Connection::open(server.config.database_path()).expect("side connection");
    side.busy_timeout(PATIENCE).expect("busy timeout");
    let batch = side.transaction().expect("transaction");
    for i in 0..1000 {
        batch
            .execute(
                "INSERT INTO ended_sessions (token_hash, user_id, why, ended_at) \
                 VALUES (?1, ?2, 'earlier', ?3)",
                rusqlite::params![
                    chatroom_server::auth::token_hash(&format!("old token {i}")),
                    bob.user.id.0 as i64,
                    now - 1000 + i,
                ],
            )
            .expect("an earlier end");
    }
    batch.commit().expect("commit");

    admin.log_out_user("bob").await.expect("logged out");
    let said = resume_refusal(&server, &bob.token).await;
    assert!(
        said.contains("logged this account out everywhere"),
        "{said}"
    );
    let kept: i64 = side
        .query_row(
            "SELECT COUNT(*) FROM ended_sessions WHERE user_id = ?1",
            [bob.user.id.0 as i64],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(kept, 1000, "the oldest end is forgotten");
    assert!(
        resume_refusal(&server, "old token 0")
            .await
            .contains("no such session")
    );
    assert!(
        resume_refusal(&server, "old token 1")
            .await
            .contains("earlier")
    );
    server.stop().await;
}

#[tokio::test]
async fn registrations_from_one_address_are_limited_per_hour_but_not_for_admins() {
    let server = TestServer::start_with(|c| c.limits.registrations_per_ip_per_hour = 2).await;
    let (admin, _) = server.user("gina").await;
    server.user("hank").await;
    let client = server.connect().await;
    let refused = client
        .register("ivan", PASSWORD)
        .await
        .expect_err("a third account from 127.0.0.1 within the hour");
    assert_eq!(refused.code(), Some(ErrorCode::RateLimited));
    assert!(refused.to_string().contains("ask an admin"), "{refused}");
    admin
        .create_account("ivan", PASSWORD)
        .await
        .expect("an admin still creates accounts");
    server.login("ivan").await;
    server.stop().await;
}

/// The names of `who`'s direct chats, sorted.
async fn direct_chats(who: &chatroom_protocol::client::ClientHandle) -> Vec<String> {
    let mut names: Vec<String> = who
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .filter(|r| r.kind == RoomKind::Direct)
        .map(|r| r.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_deleted_accounts_id_is_never_given_to_the_next_one() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let public = public_room(&alice).await;
    let dm = alice.send_direct("bob", "hi bob").await.expect("dm");
    bob.send_message(dm.room, "hi alice").await.expect("reply");
    let bobs = bob
        .send_message(public, "bob was here")
        .await
        .expect("send");
    drop((alice, bob));

    // Bob, the newest account, is deleted offline.
    let (dir, config) = server.stop().await;
    let mut admin = chatroom_server::admin::Admin::open(dir.path()).expect("open");
    admin.delete_user("bob").expect("delete bob");
    drop(admin);
    let server = TestServer::start_in(dir, config).await;

    // Bob's saved session no longer resumes, and the refusal names the deletion as a cause.
    let refused = server
        .connect()
        .await
        .resume(&bob_session.token)
        .await
        .expect_err("a deleted account's session");
    assert!(
        refused.to_string().contains("its account was deleted"),
        "{refused}"
    );

    let (carol, carol_session) = server.user("carol").await;
    assert_ne!(
        carol_session.user.id, bob_session.user.id,
        "carol does not get bob's id"
    );
    // Bob's messages are not hers to delete.
    assert_eq!(
        code_of(carol.delete_message(public, bobs.seq).await),
        ErrorCode::Forbidden
    );
    // Alice's chat with bob keeps his name, and a chat with herself has hers.
    let (mut alice, _) = server.login("alice").await;
    alice
        .send_direct("alice", "a note to self")
        .await
        .expect("a chat with oneself");
    assert_eq!(direct_chats(&alice).await, ["alice", "bob (deleted)"]);
    // Nobody is left to read what would be posted to bob's old chat.
    let refused = alice
        .send_message(dm.room, "are you there?")
        .await
        .expect_err("posting to a deleted account's chat");
    assert!(
        refused.to_string().contains("bob's account was deleted"),
        "{refused}"
    );
    // A new bob is someone else: a new chat, beside the old one.
    let (_new_bob, _) = server.user("bob").await;
    let to_new_bob = alice
        .send_direct("bob", "are you the new bob?")
        .await
        .expect("a chat with the new bob");
    assert_ne!(to_new_bob.room, dm.room, "not the old chat");
    assert_eq!(
        direct_chats(&alice).await,
        ["alice", "bob", "bob (deleted)"]
    );
    // A direct chat with alice is a new one, and it works both ways.
    let mut carol = carol;
    let sent = carol
        .send_direct("alice", "hi alice, carol here")
        .await
        .expect("carol writes to alice");
    assert_ne!(sent.room, dm.room, "not bob's old direct chat");
    expect_message(&mut alice, "hi alice, carol here").await;
    alice
        .send_direct("carol", "hi carol")
        .await
        .expect("alice answers");
    expect_message(&mut carol, "hi carol").await;
    server.stop().await;
}

/// What a bot does on every start: register the first time, log in after, and a wrong
/// password is said to be one (not "the name is taken").
#[tokio::test]
async fn login_or_register_registers_only_a_free_name() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let first = server
        .connect()
        .await
        .login_or_register("bot", PASSWORD)
        .await
        .expect("registers a free name");
    assert!(!first.user.is_admin, "alice was first");
    let again = server
        .connect()
        .await
        .login_or_register("BOT", PASSWORD)
        .await
        .expect("logs in after");
    assert_eq!(again.user.id, first.user.id);
    assert_eq!(
        code_of(
            server
                .connect()
                .await
                .login_or_register("bot", "not the password")
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    // Too short to register: the registration says so before it looks at the name, and the
    // login's answer is the one that fits.
    assert_eq!(
        code_of(
            server
                .connect()
                .await
                .login_or_register("bot", "short")
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    server.stop().await;
}

/// A bot whose account an admin made, on a server closed to registration, started with a typo
/// in its password: it hears that the password is wrong (and that registering was refused),
/// not only that registration is closed.
#[tokio::test]
async fn login_or_register_on_a_closed_server_says_the_password_is_wrong() {
    let server = TestServer::start_with(|c| c.registration = RegistrationPolicy::Closed).await;
    let (dir, config) = server.stop().await;
    let mut admin = chatroom_server::admin::Admin::open(dir.path()).expect("open");
    admin
        .add_user("standup", PASSWORD, false)
        .expect("add the bot");
    drop(admin);
    let server = TestServer::start_in(dir, config).await;
    let refused = server
        .connect()
        .await
        .login_or_register("standup", "a typo in it")
        .await
        .expect_err("a wrong password");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidCredentials));
    let said = refused.to_string();
    assert!(
        said.contains("wrong user name or password") && said.contains("registration is closed"),
        "{said}"
    );
    server
        .connect()
        .await
        .login_or_register("standup", PASSWORD)
        .await
        .expect("the right password logs in");
    server.stop().await;
}

/// A name that looks like a taken one (another script's letters, full-width forms) would let
/// someone pass for its owner: it is refused as taken, and so is a look-alike room.
#[tokio::test]
async fn look_alike_names_are_refused_as_taken() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    for look_alike in ["\u{430}lice", "ａｌｉｃｅ", "ΑLICE"] {
        let refused = server
            .connect()
            .await
            .register(look_alike, PASSWORD)
            .await
            .expect_err("a look-alike of alice");
        assert_eq!(
            refused.code(),
            Some(ErrorCode::UsernameTaken),
            "{look_alike:?}"
        );
        assert!(
            refused
                .to_string()
                .contains("looks like the account \"alice\""),
            "{refused}"
        );
    }
    server.user("alice2").await;
    let full = alice
        .create_room("FULL", chatroom_protocol::Visibility::Public)
        .await
        .expect("create");
    assert_eq!(
        code_of(
            alice
                .create_room("ＦＵＬＬ", chatroom_protocol::Visibility::Public)
                .await
        ),
        ErrorCode::RoomNameTaken
    );
    let dev = alice
        .create_room("dev", chatroom_protocol::Visibility::Public)
        .await
        .expect("create");
    assert_eq!(
        code_of(alice.rename_room(dev.id, "ｆｕｌｌ").await),
        ErrorCode::RoomNameTaken,
        "nor may a room be renamed to look like another"
    );
    // A room may take a look-alike of its own name, and free the old one.
    alice
        .rename_room(full.id, "Full")
        .await
        .expect("its own name");
    alice.rename_room(full.id, "empty").await.expect("renamed");
    alice
        .create_room("ＦＵＬＬ", chatroom_protocol::Visibility::Public)
        .await
        .expect("the look is free again");
    server.stop().await;
}

/// A database from before look-alikes were refused may hold two names that look alike. When
/// the one the server remembered for that look goes (an account deleted, a room renamed), the
/// other still guards it: a third look-alike is refused in its name.
#[tokio::test]
async fn a_legacy_look_alike_still_guards_the_look_when_its_twin_goes() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    server.user("bob").await;
    for room in ["dev", "ops"] {
        admin
            .create_room(room, chatroom_protocol::Visibility::Public)
            .await
            .expect("create");
    }
    let (dir, config) = server.stop().await;
    // bob and ops become look-alikes of alice and dev, as an older server let them be. Their
    // rows come after their twins', so they are the ones remembered for the look.
    let db = rusqlite::Connection::open(config.database_path()).expect("open the database");
    let (cyrillic_alice, cyrillic_dev) = ("\u{430}lice", "d\u{435}v");
    db.execute(
        "UPDATE users SET name = ?1, name_key = ?1 WHERE name = 'bob'",
        [cyrillic_alice],
    )
    .expect("rename bob");
    db.execute(
        "UPDATE rooms SET name = ?1, name_key = ?1 WHERE name = 'ops'",
        [cyrillic_dev],
    )
    .expect("rename ops");
    drop(db);

    let server = TestServer::start_in(dir, config).await;
    let (admin, _) = server.login("alice").await;
    admin
        .delete_account(cyrillic_alice)
        .await
        .expect("the legacy twin deleted");
    let refused = server
        .connect()
        .await
        .register("ａｌｉｃｅ", PASSWORD)
        .await
        .expect_err("alice still holds the look");
    assert!(
        refused
            .to_string()
            .contains("looks like the account \"alice\""),
        "{refused}"
    );

    let rooms = admin.my_rooms().await.expect("rooms");
    let twin = rooms
        .iter()
        .find(|r| r.name == cyrillic_dev)
        .expect("the legacy room");
    admin.rename_room(twin.id, "ops").await.expect("renamed");
    assert_eq!(
        code_of(
            admin
                .create_room("ｄｅｖ", chatroom_protocol::Visibility::Public)
                .await
        ),
        ErrorCode::RoomNameTaken,
        "dev still holds the look"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_admin_sets_a_new_password_for_someone_and_their_sessions_end() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;

    admin
        .reset_password("BOB", "a password from the admin")
        .await
        .expect("an admin resets bob's password");
    assert_eq!(
        code_of(bob.my_rooms().await),
        ErrorCode::SessionRevoked,
        "bob's connection is closed"
    );
    let resumer = server.connect().await;
    assert_eq!(
        code_of(resumer.resume(&bob_session.token).await),
        ErrorCode::InvalidToken,
        "bob's token no longer resumes"
    );
    let fresh = server.connect().await;
    assert_eq!(
        code_of(fresh.login("bob", PASSWORD).await),
        ErrorCode::InvalidCredentials
    );
    fresh
        .login("bob", "a password from the admin")
        .await
        .expect("the admin's password works");
    admin.my_rooms().await.expect("the admin stays logged in");
}

#[tokio::test]
async fn an_admin_logs_someone_out_everywhere_and_their_password_still_works() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let (bob_again, _) = server.login("bob").await;

    admin
        .log_out_user("bob")
        .await
        .expect("an admin logs bob out");
    for connection in [&bob, &bob_again] {
        assert_eq!(
            code_of(connection.my_rooms().await),
            ErrorCode::SessionRevoked
        );
    }
    let resumer = server.connect().await;
    assert_eq!(
        code_of(resumer.resume(&bob_session.token).await),
        ErrorCode::InvalidToken
    );
    server.login("bob").await;
}

#[tokio::test]
async fn only_an_admin_resets_or_logs_out_and_only_someone_else() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (_carol, _) = server.user("carol").await;

    assert_eq!(
        code_of(bob.reset_password("carol", "a new password").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.log_out_user("carol").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(admin.reset_password("alice", "a new password").await),
        ErrorCode::BadRequest,
        "one's own password is changed with the old one"
    );
    assert_eq!(
        code_of(admin.log_out_user("alice").await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code_of(admin.log_out_user("nobody").await),
        ErrorCode::UserNotFound
    );
    assert_eq!(
        code_of(admin.reset_password("carol", "short").await),
        ErrorCode::WeakPassword
    );
    server.login("carol").await;
}

#[tokio::test]
async fn an_admin_suspends_someone_until_it_is_lifted_even_across_a_restart() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let (bob_again, _) = server.login("bob").await;
    let (carol, _) = server.user("carol").await;

    admin
        .suspend_user("Bob", Some("spam\nbursts"))
        .await
        .expect("an admin suspends bob");
    for connection in [&bob, &bob_again] {
        let closed = connection.my_rooms().await.expect_err("closed");
        assert_eq!(closed.code(), Some(ErrorCode::SessionRevoked));
        assert!(
            closed
                .to_string()
                .contains("alice suspended this account: spam bursts"),
            "{closed}"
        );
    }
    let resumer = server.connect().await;
    assert_eq!(
        code_of(resumer.resume(&bob_session.token).await),
        ErrorCode::Forbidden,
        "the session ended, and logging in again would not help yet"
    );
    let refused = server
        .connect()
        .await
        .login("bob", PASSWORD)
        .await
        .expect_err("the right password is refused");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(
        refused
            .to_string()
            .contains("suspended (by alice: spam bursts)"),
        "{refused}"
    );
    assert_eq!(
        code_of(
            server
                .connect()
                .await
                .login("bob", "a wrong password")
                .await
        ),
        ErrorCode::InvalidCredentials,
        "a wrong password learns nothing of the suspension"
    );
    let listed = admin.suspensions().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.username.as_str(), s.by.as_str(), s.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("bob", "alice", Some("spam bursts"))]
    );
    carol
        .send_direct("bob", "for when you are back")
        .await
        .expect("others may still write to bob");

    let server = server.restart().await;
    assert_eq!(
        code_of(server.connect().await.login("bob", PASSWORD).await),
        ErrorCode::Forbidden,
        "still suspended after a restart"
    );
    assert_eq!(
        code_of(server.connect().await.resume(&bob_session.token).await),
        ErrorCode::Forbidden,
        "the same for a session it ended"
    );
    let (admin, _) = server.login("alice").await;
    admin.unsuspend_user("bob").await.expect("lifted");
    assert_eq!(
        code_of(server.connect().await.resume(&bob_session.token).await),
        ErrorCode::InvalidToken,
        "lifted, the sessions it ended stay ended"
    );
    assert!(admin.suspensions().await.expect("list").is_empty());
    assert_eq!(
        code_of(admin.unsuspend_user("bob").await),
        ErrorCode::BadRequest,
        "bob is not suspended any more"
    );
    let (bob, _) = server.login("bob").await;
    let rooms = bob.my_rooms().await.expect("rooms");
    assert!(
        rooms.iter().any(|r| r.name == "public")
            && rooms
                .iter()
                .any(|r| r.kind == RoomKind::Direct && r.name == "carol" && r.unread == 1),
        "bob keeps his rooms, and carol's message waits for him: {rooms:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_an_admin_suspends_and_only_someone_else_who_is_not_the_bot() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    server.user("carol").await;

    assert_eq!(
        code_of(bob.suspend_user("carol", None).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.unsuspend_user("carol").await),
        ErrorCode::Forbidden
    );
    assert_eq!(code_of(bob.suspensions().await), ErrorCode::Forbidden);
    assert_eq!(
        code_of(admin.suspend_user("alice", None).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code_of(admin.suspend_user(&server.config.ai.name, None).await),
        ErrorCode::BadRequest,
        "the AI bot is kicked from rooms or turned off, not suspended"
    );
    assert_eq!(
        code_of(admin.suspend_user("nobody", None).await),
        ErrorCode::UserNotFound
    );
    assert!(admin.suspensions().await.expect("list").is_empty());
    server.login("carol").await;
    server.stop().await;
}

/// Logins of bob's under way while he is suspended either fail or are closed: none of them
/// keeps a session. (The interleaving is up to the scheduler; what is asserted holds for
/// every one.)
#[tokio::test]
async fn no_login_under_way_survives_a_suspension() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    server.user("bob").await;
    let mut logins = Vec::new();
    for _ in 0..8 {
        let client = server.connect().await;
        logins.push(tokio::spawn(async move {
            let outcome = client.login("bob", PASSWORD).await;
            (client, outcome)
        }));
    }
    admin.suspend_user("bob", None).await.expect("suspended");
    for login in logins {
        let (client, outcome) = login.await.expect("login task");
        if outcome.is_ok() {
            let after = client.my_rooms().await;
            assert!(
                matches!(
                    after.as_ref().map_err(ClientError::code),
                    Err(Some(ErrorCode::SessionRevoked))
                ),
                "a login made before the suspension is closed by it: {after:?}"
            );
        } else {
            let code = outcome.as_ref().map_err(ClientError::code).err().flatten();
            assert!(
                matches!(code, Some(ErrorCode::Forbidden | ErrorCode::InvalidToken)),
                "{outcome:?}"
            );
        }
    }
    server.stop().await;
}

/// Whether `client`'s account may act as a server admin right now, asked with a request only
/// an admin may make.
async fn acts_as_admin(client: &ClientHandle) -> bool {
    match client.suspensions().await {
        Ok(_) => true,
        Err(e) if e.code() == Some(ErrorCode::Forbidden) => false,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_admin_promotes_and_demotes_someone_on_the_connections_they_have_open() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    server.user("carol").await;
    assert!(!acts_as_admin(&bob).await);
    assert_eq!(
        code_of(bob.create_account("dave", PASSWORD).await),
        ErrorCode::AlreadyAuthenticated
    );

    admin.set_server_admin("Bob", true).await.expect("promote");
    assert!(acts_as_admin(&bob).await, "at once, on the open connection");
    bob.create_account("dave", PASSWORD)
        .await
        .expect("and he creates accounts while logged in");
    let users = admin.list_users().await.expect("users");
    let listed = |name: &str| {
        users
            .iter()
            .find(|u| u.user.username == name)
            .map(|u| u.user.is_admin)
    };
    assert_eq!((listed("bob"), listed("carol")), (Some(true), Some(false)));
    admin
        .set_server_admin("bob", true)
        .await
        .expect("asking again for what holds is fine");

    let server = server.restart().await;
    let (bob, bob_session) = server.login("bob").await;
    assert!(bob_session.user.is_admin, "stored");
    let (admin, _) = server.login("alice").await;
    admin.set_server_admin("bob", false).await.expect("demote");
    assert!(
        !acts_as_admin(&bob).await,
        "at once, on the open connection"
    );
    assert_eq!(
        code_of(bob.log_out_user("carol").await),
        ErrorCode::Forbidden
    );
    let (_, bob_session) = server.login("bob").await;
    assert!(!bob_session.user.is_admin);
    server.stop().await;
}

/// The admin standing `client` hears of next: (account, name, admin, by whom).
async fn next_admin_change(client: &mut Client) -> (UserId, String, bool, String) {
    expect_event(client, |e| match e {
        Event::AdminChanged {
            user,
            username,
            admin,
            by,
        } => Some((user, username, admin, by)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn everyone_online_hears_of_a_promotion_the_account_itself_included() {
    let server = TestServer::start().await;
    let (mut admin, _) = server.user("alice").await;
    let (mut bob, bob_session) = server.user("bob").await;
    let (mut carol, _) = server.user("carol").await;
    let bob_id = bob_session.user.id;

    admin.set_server_admin("Bob", true).await.expect("promote");
    let promoted = (bob_id, "bob".to_string(), true, "alice".to_string());
    assert_eq!(next_admin_change(&mut bob).await, promoted, "bob himself");
    assert_eq!(
        next_admin_change(&mut carol).await,
        promoted,
        "someone else"
    );
    assert_eq!(next_admin_change(&mut admin).await, promoted, "who acted");

    // Asking for what already holds changes nothing, and nobody hears of it: the next change
    // anyone hears of is the demotion.
    admin
        .set_server_admin("bob", true)
        .await
        .expect("promote again");
    admin.set_server_admin("bob", false).await.expect("demote");
    let demoted = (bob_id, "bob".to_string(), false, "alice".to_string());
    assert_eq!(next_admin_change(&mut carol).await, demoted);
    assert_eq!(next_admin_change(&mut bob).await, demoted);
    server.stop().await;
}

#[tokio::test]
async fn only_an_admin_promotes_or_deletes_and_only_someone_else_who_is_not_the_bot() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    server.user("carol").await;
    let bot = server.config.ai.name.clone();

    assert_eq!(
        code_of(bob.set_server_admin("bob", true).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.set_server_admin("carol", true).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code_of(bob.delete_account("carol").await),
        ErrorCode::Forbidden
    );
    let own = admin
        .set_server_admin("alice", false)
        .await
        .expect_err("an admin cannot demote themselves: the server keeps an admin");
    assert_eq!(own.code(), Some(ErrorCode::BadRequest));
    assert!(
        own.to_string()
            .contains("that is your own account: another server admin must do that"),
        "{own}"
    );
    assert_eq!(
        code_of(admin.delete_account("alice").await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code_of(admin.set_server_admin(&bot, true).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code_of(admin.delete_account(&bot).await),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code_of(admin.set_server_admin("nobody", true).await),
        ErrorCode::UserNotFound
    );
    assert_eq!(
        code_of(admin.delete_account("nobody").await),
        ErrorCode::UserNotFound
    );
    assert!(!acts_as_admin(&bob).await);
    server.login("carol").await;
    server.stop().await;
}

#[tokio::test]
async fn an_admin_deletes_an_account_that_is_logged_in() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let (mut carol, carol_session) = server.user("carol").await;
    let room = bob
        .create_room("bobs-room", Visibility::Public)
        .await
        .expect("room");
    carol.join_room("bobs-room").await.expect("join");
    bob.send_direct("carol", "hello from bob")
        .await
        .expect("direct");
    bob.send_message(room.id, "bob was here")
        .await
        .expect("message");
    let direct = carol
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.kind == RoomKind::Direct)
        .expect("carol's direct chat with bob");

    admin.delete_account("bob").await.expect("deleted");

    let closed = bob.my_rooms().await.expect_err("closed");
    assert_eq!(closed.code(), Some(ErrorCode::SessionRevoked));
    assert!(
        closed.to_string().contains("alice deleted this account"),
        "{closed}"
    );
    assert_eq!(
        code_of(server.connect().await.resume(&bob_session.token).await),
        ErrorCode::InvalidToken
    );
    // In the room bob owned: the notice, then he leaves, then carol owns it.
    let mut seen = Vec::new();
    expect_event(&mut carol, |e| match e {
        Event::Message(m) if m.room == room.id && m.text.contains("deleted") => {
            seen.push(format!("notice: {}", m.text));
            None
        }
        Event::MemberLeft {
            room: r,
            username,
            reason,
            ..
        } if r == room.id => {
            seen.push(format!("left: {username} {reason:?}"));
            None
        }
        Event::RoleChanged {
            room: r,
            username,
            role,
            ..
        } if r == room.id => {
            seen.push(format!("role: {username} {role:?}"));
            Some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        seen,
        [
            "notice: bob's account was deleted; carol is now the owner",
            "left: bob AccountDeleted",
            "role: carol Owner",
        ]
    );
    let direct_left = expect_event(&mut carol, |e| match e {
        Event::MemberLeft {
            room: r, reason, ..
        } if r == direct.id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(direct_left, LeaveReason::AccountDeleted);
    // Without reconnecting, carol sees bob go offline and their chat renamed for what it is.
    expect_event(&mut carol, |e| match e {
        Event::Presence(updates) => updates
            .iter()
            .any(|p| p.user == bob_session.user.id && p.status == PresenceStatus::Offline)
            .then_some(()),
        _ => None,
    })
    .await;
    let renamed = expect_event(&mut carol, |e| match e {
        Event::RoomUpdated(summary) if summary.id == direct.id => Some(summary),
        _ => None,
    })
    .await;
    assert_eq!(renamed.name, "bob (deleted)");
    let info = carol.room_info(room.id).await.expect("info");
    assert_eq!(
        info.members
            .iter()
            .map(|m| (m.user.username.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("carol", RoomRole::Owner)]
    );
    assert!(
        !carol
            .list_users()
            .await
            .expect("users")
            .iter()
            .any(|u| u.user.username == "bob")
    );

    // The name is free again; the new bob inherits nothing of the old one.
    let (new_bob, new_session) = server.user("bob").await;
    assert_ne!(new_session.user.id, bob_session.user.id);
    let names: Vec<String> = new_bob
        .my_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["public"]);
    assert_eq!(
        code_of(server.connect().await.register("ｂｏｂ", PASSWORD).await),
        ErrorCode::UsernameTaken,
        "and a look-alike of the new bob's name is refused, as for any name"
    );

    let server = server.restart().await;
    let (carol, _) = server.login("carol").await;
    let rooms = carol.my_rooms().await.expect("rooms");
    let kept = rooms
        .iter()
        .find(|r| r.id == direct.id)
        .expect("carol keeps the direct chat");
    assert_eq!(
        kept.name, "bob (deleted)",
        "not to be taken for the new bob"
    );
    let page = carol
        .history(direct.id, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    assert_eq!(texts(&page.messages), ["hello from bob"]);
    let page = carol
        .history(room.id, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    let kept = page
        .messages
        .iter()
        .find(|m| m.text == "bob was here")
        .expect("bob's message stays");
    assert_eq!(kept.sender_name, "bob");
    assert_eq!(
        carol.room_info(room.id).await.expect("info").members.len(),
        1,
        "as it was before the restart"
    );
    assert_ne!(carol_session.user.id, new_session.user.id);
    server.stop().await;
}

/// What the server says to a resume of `token`, which it refuses.
async fn resume_refusal(server: &TestServer, token: &str) -> String {
    let refused = server
        .connect()
        .await
        .resume(token)
        .await
        .expect_err("the token no longer resumes");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidToken), "{refused}");
    refused.to_string()
}

#[tokio::test]
async fn a_session_someone_else_ended_says_why_when_its_client_comes_back() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (bob, bob_here) = server.user("bob").await;
    let (_, bob_there) = server.login("bob").await;
    let (_, carol) = server.user("carol").await;
    let (_, dave) = server.user("dave").await;
    let (_, eve) = server.user("eve").await;

    bob.change_password(PASSWORD, "bob's new password")
        .await
        .expect("changed");
    admin.log_out_user("carol").await.expect("logged out");
    admin
        .reset_password("dave", "dave's new password")
        .await
        .expect("reset");
    admin
        .suspend_user("eve", Some("spam"))
        .await
        .expect("suspended");
    bob.logout().await.expect("bob logs himself out");

    let why = [
        (&bob_there, "the password was changed; log in again"),
        (
            &carol,
            "a server admin logged this account out everywhere; log in again",
        ),
        (
            &dave,
            "a server admin set a new password for this account; log in again",
        ),
    ];
    for (session, told) in why {
        let said = resume_refusal(&server, &session.token).await;
        assert!(said.contains(told), "{said}");
    }
    let own_logout = resume_refusal(&server, &bob_here.token).await;
    assert!(
        own_logout.contains("no such session"),
        "a session its own client ended needs no story: {own_logout}"
    );

    // A suspension that still holds is told as a login would be: logging in again would not
    // work yet.
    let suspended = server
        .connect()
        .await
        .resume(&eve.token)
        .await
        .expect_err("suspended");
    assert_eq!(suspended.code(), Some(ErrorCode::Forbidden), "{suspended}");
    assert!(
        suspended
            .to_string()
            .contains("this account is suspended (by alice: spam); ask a server admin"),
        "{suspended}"
    );

    let server = server.restart().await;
    for (session, told) in why {
        let said = resume_refusal(&server, &session.token).await;
        assert!(said.contains(told), "kept across a restart: {said}");
    }
    let (admin, _) = server.login("alice").await;
    admin.unsuspend_user("eve").await.expect("lifted");
    let said = resume_refusal(&server, &eve.token).await;
    assert!(
        said.contains("alice suspended this account: spam; log in again"),
        "once lifted: {said}"
    );

    // Ends older than the memory's span are forgotten the next time sessions end.
    let side = rusqlite::Connection::open(server.config.database_path()).expect("side connection");
    side.busy_timeout(PATIENCE).expect("busy timeout");
    side.execute(
        "INSERT INTO ended_sessions (token_hash, user_id, why, ended_at) VALUES (?1, ?2, 'long ago', 1)",
        rusqlite::params![
            chatroom_server::auth::token_hash("an old token"),
            carol.user.id.0 as i64
        ],
    )
    .expect("an old end");
    assert!(
        resume_refusal(&server, "an old token")
            .await
            .contains("long ago")
    );
    let (admin, _) = server.login("alice").await;
    server.login("carol").await;
    admin.log_out_user("carol").await.expect("logged out");
    assert!(
        resume_refusal(&server, "an old token")
            .await
            .contains("no such session")
    );
    server.stop().await;
}
