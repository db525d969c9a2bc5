//! The example bots in `examples/`, run against a real server: each example's `run` is compiled
//! into this test from the example's own file, so what is tested is what users copy.

use crate::ai::FakeModel;
use crate::support::*;
use chatroom_protocol::{Event, Message, MessageKind, RoomId, Seq};
use std::sync::Arc;
use tokio::task::JoinHandle;

// Only `run` is used here; each file's `main` is the example's own entry point.
#[allow(dead_code)]
#[path = "../../examples/echo_bot.rs"]
mod echo_bot;

// As above: `run` is used, `main` is not.
#[allow(dead_code)]
#[path = "../../examples/ask_bot.rs"]
mod ask_bot;

// The example's `main` is dead code here (only `run` and `Rule` are used), and it must stay
// in the file for `cargo run --example flood_guard`.
#[allow(dead_code)]
#[path = "../../examples/flood_guard.rs"]
mod flood_guard;

// As above: `run` is used, `main` is not.
#[allow(dead_code)]
#[path = "../../examples/standup_bot.rs"]
mod standup_bot;

/// Waits until `name` is online, as seen by `client`.
async fn until_online(client: &chatroom_protocol::client::ClientHandle, name: &str) {
    until_presence(client, name, true).await;
}

/// Waits until `name` is online (or offline), as seen by `client`.
async fn until_presence(
    client: &chatroom_protocol::client::ClientHandle,
    name: &str,
    online: bool,
) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let users = client.list_users().await.expect("users");
            let now_online = users.iter().any(|u| {
                u.user.username == name && u.status != chatroom_protocol::PresenceStatus::Offline
            });
            if now_online == online {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} online: {online}, in time"));
}

/// The next message `sender` posts, as `client` sees it.
async fn message_from(client: &mut chatroom_protocol::client::Client, sender: &str) -> Message {
    expect_event(client, |e| match e {
        // Not the room's notice that the bot joined.
        Event::Message(m) if m.sender_name == sender && m.kind != MessageKind::System => Some(m),
        _ => None,
    })
    .await
}

/// Runs the echo bot as `echo-bot` in `public`, against `addr`.
fn spawn_echo_bot(addr: std::net::SocketAddr) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        echo_bot::run(&addr.to_string(), "echo-bot", "public", "echo-bot-password").await
    })
}

/// Alice posts `text` in `room`, and the echo bot's next message is its echo.
async fn mention_answered(alice: &mut chatroom_protocol::client::Client, room: RoomId, text: &str) {
    alice.send_message(room, text).await.expect("send");
    let reply = message_from(alice, "echo-bot").await;
    assert_eq!(reply.text, format!("alice said: {text}"));
}

/// Ends the test: the bot is still running (a bot returns only when refused for good), and is
/// stopped with the server. Surviving a restart is `reconnecting.rs`'s subject.
async fn stop_with(server: TestServer, bot: JoinHandle<anyhow::Result<()>>) {
    assert!(!bot.is_finished(), "the bot is still running");
    bot.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_echo_bot_registers_and_answers_its_mentions() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let bot = spawn_echo_bot(server.addr);
    until_online(&alice, "echo-bot").await;

    for not_for_it in ["no mention, no answer", "@echo-bot2 is someone else"] {
        alice.send_message(public, not_for_it).await.expect("send");
    }
    mention_answered(&mut alice, public, "hello @Echo-Bot").await;

    stop_with(server, bot).await;
}

/// One long message must not stop the bot: its echo would pass the server's limit, so it is cut
/// (visibly), and the bot goes on answering.
#[tokio::test]
async fn the_echo_bot_survives_a_mention_too_long_to_echo() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let max_chars = alice.welcome().limits.max_message_chars as usize;
    let bot = spawn_echo_bot(server.addr);
    until_online(&alice, "echo-bot").await;

    let long = format!("@echo-bot {}", "x".repeat(3990));
    assert!(long.chars().count() <= max_chars, "alice may post it");
    alice.send_message(public, long).await.expect("send");
    let reply = message_from(&mut alice, "echo-bot").await;
    assert_eq!(reply.text.chars().count(), max_chars, "cut to the limit");
    assert!(
        reply.text.starts_with("alice said: @echo-bot xxx") && reply.text.ends_with("x…"),
        "cut visibly: {}…",
        reply.text.chars().take(40).collect::<String>()
    );

    mention_answered(&mut alice, public, "still there, @echo-bot?").await;
    assert!(!bot.is_finished(), "the bot is still running");

    stop_with(server, bot).await;
}

/// What the reconnecting client is for: the bot comes back by itself after a drop and answers
/// the mention it missed meanwhile.
#[tokio::test]
async fn the_echo_bot_answers_a_mention_made_while_it_was_away() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let (proxy, _, _) = crate::reconnecting::Proxy::start(server.addr).await;
    let bot = spawn_echo_bot(proxy.addr);
    until_online(&alice, "echo-bot").await;
    // Online is not yet listening (the bot may still be joining its room): an answer is.
    mention_answered(&mut alice, public, "ready, @echo-bot?").await;

    proxy.go_down();
    // Gone for the server too: the mention cannot reach it live.
    until_presence(&alice, "echo-bot", false).await;
    alice
        .send_message(public, "are you there, @echo-bot?")
        .await
        .expect("send");
    proxy.come_up(false);
    let reply = message_from(&mut alice, "echo-bot").await;
    assert_eq!(reply.text, "alice said: are you there, @echo-bot?");

    drop(proxy);
    stop_with(server, bot).await;
}

/// Waits until `name`'s read marker in `room` is at `seq` at least, as the server keeps it.
async fn until_marked(server: &TestServer, name: &str, password: &str, room: RoomId, seq: Seq) {
    let observer = chatroom_protocol::client::Client::connect(server.addr, "e2e-test")
        .await
        .expect("connect");
    observer.login(name, password).await.expect("login");
    tokio::time::timeout(PATIENCE, async {
        loop {
            let rooms = observer.my_rooms().await.expect("rooms");
            if rooms.iter().any(|r| r.id == room && r.last_read_seq >= seq) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} marks {seq} read in time"));
}

/// Across runs of the bot's process: the echo bot starts from its read markers, so a mention
/// made while it was not running is answered by the next run, and what the last run handled
/// (answered, or marked read) is not gone through again.
#[tokio::test]
async fn the_echo_bot_answers_a_mention_made_while_it_was_not_running() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let bot = spawn_echo_bot(server.addr);
    until_online(&alice, "echo-bot").await;
    mention_answered(&mut alice, public, "ready, @echo-bot?").await;
    // Not for the bot, but handled: marked read.
    let chatter = alice
        .send_message(public, "just chatting")
        .await
        .expect("send");
    until_marked(
        &server,
        "echo-bot",
        "echo-bot-password",
        public,
        chatter.seq,
    )
    .await;

    bot.abort();
    until_presence(&alice, "echo-bot", false).await;
    alice
        .send_message(public, "while you were out, @echo-bot")
        .await
        .expect("send");
    let bot = spawn_echo_bot(server.addr);
    // The first thing the new run says: not "ready" again.
    let reply = message_from(&mut alice, "echo-bot").await;
    assert_eq!(reply.text, "alice said: while you were out, @echo-bot");
    mention_answered(&mut alice, public, "and now, @echo-bot?").await;

    stop_with(server, bot).await;
}

#[tokio::test]
async fn the_ask_bot_relays_questions_to_the_endpoint_and_posts_the_answer() {
    let model = FakeModel::start().await;
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;

    let config = chatroom_ai::openai::OpenAiConfig::new(model.endpoint.clone(), "test-model");
    let backend = Arc::new(chatroom_ai::Backend::OpenAi(Box::new(
        chatroom_ai::openai::OpenAi::new(config).expect("backend"),
    )));
    let addr = server.addr.to_string();
    let bot =
        tokio::spawn(
            async move { ask_bot::run(&addr, "ask-bot", "ask-bot-password", backend).await },
        );
    until_online(&alice, "ask-bot").await;

    alice
        .send_message(public, "!ask what is six times seven?")
        .await
        .expect("send");
    let reply = message_from(&mut alice, "ask-bot").await;
    assert_eq!(reply.text, "The answer is 42.");
    assert_eq!(model.request_count(), 1, "one question, one request");

    stop_with(server, bot).await;
}

/// A room `dev` owned by alice, with bob and carol in it, watched by the flood guard (running
/// on `rule`) as a moderator.
struct GuardedRoom {
    alice: chatroom_protocol::client::Client,
    bob: chatroom_protocol::client::Client,
    bob_session: chatroom_protocol::Session,
    carol: chatroom_protocol::client::Client,
    dev: chatroom_protocol::RoomSummary,
    bot: JoinHandle<anyhow::Result<()>>,
}

async fn guarded_room(server: &TestServer, rule: flood_guard::Rule) -> GuardedRoom {
    let (alice, _) = server.user("alice").await;
    let (bob, bob_session) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let dev = alice
        .create_room("dev", chatroom_protocol::Visibility::Public)
        .await
        .expect("create");
    for member in [&bob, &carol] {
        member.join_room("dev").await.expect("join");
    }
    let addr = server.addr.to_string();
    let bot = tokio::spawn(async move {
        flood_guard::run(&addr, "flood-guard", "dev", "flood-guard-password", rule).await
    });
    until_online(&alice, "flood-guard").await;
    // It joins on its own; the owner makes it a moderator so that its mutes count.
    tokio::time::timeout(PATIENCE, async {
        while alice
            .set_role(
                dev.id,
                "flood-guard",
                chatroom_protocol::RoomRole::Moderator,
            )
            .await
            .is_err()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the bot is in the room");
    GuardedRoom {
        alice,
        bob,
        bob_session,
        carol,
        dev,
        bot,
    }
}

/// The next mute in `room`, as `client` sees it: who, by whom, until when.
async fn muted_in(
    client: &mut chatroom_protocol::client::Client,
    room: RoomId,
) -> (
    chatroom_protocol::UserId,
    String,
    Option<chatroom_protocol::UnixMillis>,
) {
    expect_event(client, |e| match e {
        Event::Muted {
            room: muted_in,
            user,
            by,
            until,
            ..
        } if muted_in == room => Some((user, by, until)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn the_flood_guard_mutes_a_flooder_and_leaves_the_others_alone() {
    let server = TestServer::start().await;
    let rule = flood_guard::Rule {
        max_messages: 3,
        window_secs: 60,
        mute_secs: 600,
        delete_burst: false,
    };
    let GuardedRoom {
        alice,
        mut bob,
        bob_session,
        carol,
        dev,
        bot,
    } = guarded_room(&server, rule).await;

    for n in 1..=3 {
        carol
            .send_message(dev.id, format!("carol {n}"))
            .await
            .expect("three is not a flood");
    }
    for n in 1..=4 {
        bob.send_message(dev.id, format!("bob {n}"))
            .await
            .expect("sent before the mute");
    }
    let (user, by, until) = muted_in(&mut bob, dev.id).await;
    assert_eq!((user, by.as_str()), (bob_session.user.id, "flood-guard"));
    assert!(until.is_some(), "for a while");
    assert_eq!(
        code_of(bob.send_message(dev.id, "bob 5").await),
        chatroom_protocol::ErrorCode::Forbidden
    );
    let mutes = alice.mutes(dev.id).await.expect("mutes");
    assert_eq!(
        mutes
            .iter()
            .map(|m| (m.username.as_str(), m.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("bob", Some("more than 3 messages in 60 s"))],
        "carol, at the limit, is not muted"
    );
    stop_with(server, bot).await;
}

#[tokio::test]
async fn the_flood_guard_with_delete_burst_deletes_the_flood_it_mutes() {
    let server = TestServer::start().await;
    let rule = flood_guard::Rule {
        max_messages: 3,
        window_secs: 60,
        mute_secs: 600,
        delete_burst: true,
    };
    let GuardedRoom {
        mut alice,
        bob,
        bob_session,
        carol,
        dev,
        bot,
    } = guarded_room(&server, rule).await;

    let (dave, dave_session) = server.user("dave").await;
    dave.join_room("dev").await.expect("join");

    let mut carols = Vec::new();
    let mut bobs = Vec::new();
    // Interleaved, so that the burst's seqs are not one run of the room's.
    for n in 1..=4 {
        if n <= 3 {
            let text = format!("carol {n}");
            let sent = carol.send_message(dev.id, text.clone()).await;
            carols.push((sent.expect("three is not a flood").seq, text));
        }
        let sent = bob.send_message(dev.id, format!("bob {n}")).await;
        bobs.push(sent.expect("sent before the mute").seq);
    }
    // Alice, a member, sees the mute and then each of the burst's messages deleted.
    let (user, by, _) = muted_in(&mut alice, dev.id).await;
    assert_eq!((user, by.as_str()), (bob_session.user.id, "flood-guard"));
    let mut deleted = Vec::new();
    for _ in &bobs {
        deleted.push(
            expect_event(&mut alice, |e| match e {
                Event::MessageDeleted { room, seq, by } if room == dev.id => Some((seq, by)),
                _ => None,
            })
            .await,
        );
    }
    deleted.sort();
    let by_the_bot: Vec<_> = bobs
        .iter()
        .map(|&seq| (seq, "flood-guard".to_string()))
        .collect();
    assert_eq!(deleted, by_the_bot, "bob's four, by the bot");

    // The bot handles one message at a time: once it has muted dave, flooding next, it is done
    // with bob's burst, and whatever else it would have deleted is gone by now.
    for n in 1..=4 {
        dave.send_message(dev.id, format!("dave {n}"))
            .await
            .expect("sent before the mute");
    }
    let (user, ..) = muted_in(&mut alice, dev.id).await;
    assert_eq!(user, dave_session.user.id);

    // The room's history shows bob's burst deleted, carol's messages as she wrote them. (Dave's
    // burst may still be going.)
    let page = alice
        .history(dev.id, chatroom_protocol::HistoryAnchor::Latest, 50)
        .await
        .expect("history");
    let posted: Vec<_> = page
        .messages
        .iter()
        .filter(|m| m.kind != MessageKind::System && m.sender != dave_session.user.id)
        .map(|m| (m.seq, m.kind.clone(), m.text.clone()))
        .collect();
    let mut expected: Vec<_> = carols
        .into_iter()
        .map(|(seq, text)| (seq, MessageKind::Text, text))
        .chain(
            bobs.iter()
                .map(|&seq| (seq, MessageKind::Deleted, String::new())),
        )
        .collect();
    expected.sort_by_key(|&(seq, ..)| seq);
    assert_eq!(posted, expected);
    stop_with(server, bot).await;
}

/// A bot whose password is wrong would be refused on every attempt: it gives up at once, with
/// the refusal, instead of retrying forever.
#[tokio::test]
async fn a_bot_with_a_wrong_password_gives_up_at_once() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let addr = server.addr.to_string();
    let bot = echo_bot::run(&addr, "alice", "public", "not alice's password");
    let ended = tokio::time::timeout(PATIENCE, bot)
        .await
        .expect("no retries");
    let why = ended.expect_err("refused");
    let code = why.chain().find_map(|e| {
        e.downcast_ref::<chatroom_protocol::client::ClientError>()?
            .code()
    });
    assert_eq!(
        code,
        Some(chatroom_protocol::ErrorCode::InvalidCredentials),
        "{why:#}"
    );
    server.stop().await;
}

/// Runs the standup bot as `standup-bot` in `public`, against `addr`, until `stop` is sent.
fn spawn_standup_bot(
    addr: std::net::SocketAddr,
) -> (
    JoinHandle<anyhow::Result<()>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = tokio::spawn(async move {
        let stopped = async {
            // A dropped sender stops the bot too.
            let _ = stopped.await;
        };
        standup_bot::run(
            &addr.to_string(),
            "standup-bot",
            "public",
            "standup-bot-password",
            stopped,
        )
        .await
    });
    (bot, stop)
}

/// The next message `sender` posts in `room`, as `client` sees it.
async fn reply_in(
    client: &mut chatroom_protocol::client::Client,
    room: RoomId,
    sender: &str,
) -> Message {
    expect_event(client, |e| match e {
        Event::Message(m) if m.room == room && m.sender_name == sender => Some(m),
        _ => None,
    })
    .await
}

/// `!standup` lists who posted (not who only joined, nor the bot), read back over several
/// pages of history; a direct message is answered with how to use it; and a stop asked for
/// ends the bot with `Ok`, offline.
#[tokio::test]
async fn the_standup_bot_lists_who_posted_answers_directly_and_stops_on_request() {
    // Pages of two: carol's message is three pages back.
    let server = TestServer::start_with(|c| c.limits.max_history_page = 2).await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let public = public_room(&alice).await;
    let (bot, stop) = spawn_standup_bot(server.addr);
    until_online(&alice, "standup-bot").await;

    carol.send_message(public, "early").await.expect("send");
    // Joins `public` (a notice in it) and posts nothing.
    server.user("dave").await;
    bob.send_message(public, "morning").await.expect("send");
    alice.send_message(public, "!standup").await.expect("send");
    let reply = message_from(&mut alice, "standup-bot").await;
    assert_eq!(reply.text, "posted in the last 24 hours: carol, bob, alice");

    let asked = bob
        .send_direct("standup-bot", "what do you do?")
        .await
        .expect("send");
    let reply = reply_in(&mut bob, asked.room, "standup-bot").await;
    assert!(
        reply.text.starts_with("hi bob: say !standup"),
        "{}",
        reply.text
    );

    stop.send(()).expect("the bot is running");
    let ended = tokio::time::timeout(PATIENCE, bot)
        .await
        .expect("stops in time")
        .expect("no panic");
    assert!(ended.is_ok(), "{ended:?}");
    until_presence(&alice, "standup-bot", false).await;
    server.stop().await;
}

/// A direct chat opened while the bot was disconnected comes with no `RoomUpdated`, only its
/// caught-up message: the bot still knows it for a direct chat, and answers.
#[tokio::test]
async fn the_standup_bot_answers_a_direct_chat_opened_while_it_was_away() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let (proxy, _, _) = crate::reconnecting::Proxy::start(server.addr).await;
    let (bot, _stop) = spawn_standup_bot(proxy.addr);
    // Online is not yet running: the bot joins its room after logging in, and a connection
    // cut before that fails its start. An answer in `public` says it is past that.
    until_online(&alice, "standup-bot").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "!standup").await.expect("send");
    message_from(&mut alice, "standup-bot").await;

    proxy.go_down();
    until_presence(&alice, "standup-bot", false).await;
    let asked = bob
        .send_direct("standup-bot", "are you there?")
        .await
        .expect("send");
    proxy.come_up(false);
    let reply = reply_in(&mut bob, asked.room, "standup-bot").await;
    assert!(
        reply.text.starts_with("hi bob: say !standup"),
        "{}",
        reply.text
    );

    drop(proxy);
    stop_with(server, bot).await;
}
