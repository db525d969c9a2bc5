//! Search: words across my rooms and direct chats, never other people's rooms, paging, deleted
//! messages, refused queries, and an index that survives a restart.

use crate::support::*;
use chatroom_protocol::{ErrorCode, Visibility};

#[tokio::test]
async fn words_are_found_in_my_rooms_and_direct_chats_but_not_in_others() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let public = public_room(&alice).await;
    let secret = carol
        .create_room("secret", Visibility::Private)
        .await
        .expect("create");
    let direct = bob.open_direct("alice").await.expect("direct");

    alice
        .send_message(public, "Deploy on Friday at the Café")
        .await
        .expect("send");
    carol
        .send_message(secret.id, "deploy secrets: hunter2")
        .await
        .expect("send");
    bob.send_message(direct.id, "can you deploy my branch?")
        .await
        .expect("send");

    let found = search_until(&alice, "DEPLOY", None, 2).await;
    assert_eq!(
        texts(&found),
        ["can you deploy my branch?", "Deploy on Friday at the Café"],
        "newest first, case ignored, carol's private room not searched"
    );
    assert_eq!(
        (found[0].room, found[1].room),
        (direct.id, public),
        "each hit says its room"
    );
    // Accents, prefixes and phrases.
    assert_eq!(texts(&search_until(&alice, "cafe", None, 1).await).len(), 1);
    assert_eq!(texts(&search_until(&alice, "fri*", None, 1).await).len(), 1);
    assert_eq!(
        alice
            .search("\"friday deploy\"", None, None, 10)
            .await
            .expect("phrase in the wrong order")
            .messages,
        []
    );
    // One room only; a room I am not in is refused, not silently empty (a private one as if it
    // did not exist, as everywhere else).
    assert_eq!(
        texts(&search_until(&alice, "deploy", Some(public), 1).await),
        ["Deploy on Friday at the Café"]
    );
    assert_eq!(
        code_of(alice.search("deploy", Some(secret.id), None, 10).await),
        ErrorCode::RoomNotFound
    );
    assert_eq!(search_until(&carol, "deploy", None, 2).await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn leaving_a_room_or_deleting_a_message_takes_it_out_of_my_results() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    bob.join_room("dev").await.expect("join");
    let public = public_room(&alice).await;
    alice
        .send_message(dev.id, "the build is green")
        .await
        .expect("send");
    let oops = alice
        .send_message(public, "the build password is swordfish")
        .await
        .expect("send");
    assert_eq!(search_until(&bob, "build", None, 2).await.len(), 2);

    alice
        .delete_message(public, oops.seq)
        .await
        .expect("delete");
    assert_eq!(
        texts(&search_until(&bob, "build", None, 1).await),
        ["the build is green"]
    );
    assert_eq!(search_until(&bob, "swordfish", None, 0).await, []);

    bob.leave_room(dev.id).await.expect("leave");
    assert_eq!(search_until(&bob, "build", None, 0).await, []);
    assert_eq!(search_until(&alice, "green", None, 1).await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn pages_go_back_through_older_results_and_the_limit_is_capped() {
    let server = TestServer::start_with(|c| {
        c.limits.message_burst = 100;
        c.limits.max_history_page = 10;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    // Seq 1 is the room's notice that alice joined.
    for i in 2..=26 {
        alice
            .send_message(public, format!("standup note {i}"))
            .await
            .expect("send");
    }
    search_until(&alice, "standup", None, 10).await;
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        // Asks for 100: the server gives at most its page size.
        let page = alice
            .search("standup", None, before, 100)
            .await
            .expect("page");
        assert!(page.messages.len() <= 10);
        seen.extend(page.messages.iter().map(|m| m.seq));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (2..=26).rev().collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn a_query_without_words_or_too_long_is_refused_with_a_reason() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    for query in ["", "  \"\" * -- ", &"w".repeat(257)] {
        let error = alice
            .search(query, None, None, 10)
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Some(ErrorCode::BadRequest), "{query:?}");
        assert!(
            error.to_string().contains("search"),
            "{query:?} is explained: {error}"
        );
    }
    // The connection is still usable.
    alice.ping().await.expect("ping");
    server.stop().await;
}

#[tokio::test]
async fn the_index_survives_a_restart_and_keeps_up_after_it() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice
        .send_message(public, "before the restart")
        .await
        .expect("send");
    // Stopped at once, most likely before the message was indexed: the restarted server
    // indexes what the last run left over.
    drop(alice);
    let server = server.restart().await;
    let (alice, _) = server.login("alice").await;
    alice
        .send_message(public, "after the restart")
        .await
        .expect("send");
    assert_eq!(
        texts(&search_until(&alice, "restart", None, 2).await),
        ["after the restart", "before the restart"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_is_found_by_a_search_sent_right_after_its_acknowledgement() {
    let server = TestServer::start_with(|c| c.limits.message_burst = 100).await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    // Each round: send, and search at once once the server says it is stored. The writer is
    // idle between rounds, as after a `chatroom send` on a quiet server.
    for round in 0..20 {
        let word = format!("checkpoint{round}");
        alice
            .send_message(public, format!("reached {word} today"))
            .await
            .expect("send");
        let found = alice.search(&word, None, None, 10).await.expect("search");
        assert_eq!(
            texts(&found.messages),
            [format!("reached {word} today")],
            "round {round}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn chinese_japanese_and_korean_words_are_found_inside_longer_text() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let release = alice
        .send_message(public, "我们明天发布新版本")
        .await
        .expect("send");
    for text in ["你好世界", "한국어를 공부해요", "東京でミーティング"] {
        alice.send_message(public, text).await.expect("send");
    }
    for (query, found) in [
        ("我们", "我们明天发布新版本"),
        ("明天", "我们明天发布新版本"),
        ("发布", "我们明天发布新版本"),
        ("版本", "我们明天发布新版本"),
        ("我们*", "我们明天发布新版本"),
        ("我们明天发布新版本", "我们明天发布新版本"),
        ("你好", "你好世界"),
        ("한국", "한국어를 공부해요"),
        ("ミーティング", "東京でミーティング"),
    ] {
        assert_eq!(
            texts(&search_until(&alice, query, None, 1).await),
            [found],
            "{query:?}"
        );
    }
    assert_eq!(search_until(&alice, "天明", None, 0).await, [], "in order");

    // An edit takes the old words out and makes the new ones searchable.
    alice
        .edit_message(public, release.seq, "后天再发布")
        .await
        .expect("edit");
    assert_eq!(search_until(&alice, "明天", None, 0).await, []);
    assert_eq!(
        texts(&search_until(&alice, "后天", None, 1).await),
        ["后天再发布"]
    );
    server.stop().await;
}
