//! Accounts and sessions.

use crate::support::*;
use chatroom_protocol::ErrorCode;
use chatroom_server::config::RegistrationPolicy;

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
    server.login("eve").await;
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
