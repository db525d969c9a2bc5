//! The AI bot through a real server: the built-in backend end to end, and the OpenAI-compatible
//! backend against a small Chat Completions server (HTTP/1.1 + SSE) started here on 127.0.0.1.

use crate::support::*;
use chatroom_protocol::client::Client;
use chatroom_protocol::{
    ErrorCode, Event, Message, MessageKind, PresenceStatus, RoomId, Visibility,
};
use chatroom_server::config::AiBackendKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

const KEY: &str = "sk-test-SECRET-4f7a9c";

/// The next message from the bot (text or notice), skipping everything else.
async fn bot_message(client: &mut Client, room: RoomId) -> Message {
    expect_event(client, |e| match e {
        Event::Message(m) if m.room == room && m.sender_name == "ai" => Some(m),
        _ => None,
    })
    .await
}

/// What the bot said about one question, as seen by a member: the drafts, the stored message,
/// and the end of the draft.
#[derive(Debug)]
struct Answer {
    drafts: Vec<String>,
    message: Message,
    ended: Option<Option<u64>>,
}

/// What the bot (named "ai") has stored in `room` among its newest `latest` messages, oldest
/// first, as (kind, text).
async fn bot_stored(client: &Client, room: RoomId, latest: u32) -> Vec<(MessageKind, String)> {
    client
        .history(room, chatroom_protocol::HistoryAnchor::Latest, latest)
        .await
        .expect("history")
        .messages
        .into_iter()
        .filter(|m| m.sender_name == "ai")
        .map(|m| (m.kind, m.text))
        .collect()
}

/// The texts of `stored`, of the kinds `keep` picks.
fn texts_where(stored: &[(MessageKind, String)], keep: impl Fn(&MessageKind) -> bool) -> Vec<&str> {
    stored
        .iter()
        .filter(|(kind, _)| keep(kind))
        .map(|(_, text)| text.as_str())
        .collect()
}

async fn answer(client: &mut Client, room: RoomId) -> Answer {
    let mut drafts = Vec::new();
    let mut message = None;
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next_event().await.expect("connection open") {
                Event::DraftUpdated(d) if d.room == room => drafts.push(d.text),
                Event::Message(m) if m.room == room && m.sender_name == "ai" => {
                    if m.kind == MessageKind::System {
                        return Answer {
                            drafts,
                            message: m,
                            ended: None,
                        };
                    }
                    message = Some(m);
                }
                Event::DraftEnded { room: r, seq, .. } if r == room => {
                    if let Some(m) = message.take() {
                        return Answer {
                            drafts,
                            message: m,
                            ended: Some(seq),
                        };
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the bot answers in time")
}

// ---- the built-in backend ----

#[tokio::test]
async fn builtin_answers_mentions_and_direct_messages_and_nothing_else() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;

    // The bot is a member of public, online, and its name is taken.
    let users = alice.list_users().await.expect("users");
    let bot = users
        .iter()
        .find(|u| u.user.username == "ai")
        .expect("the bot is listed");
    assert_eq!(bot.status, PresenceStatus::Online);
    let other = server.connect().await;
    assert_eq!(
        code_of(other.register("AI", PASSWORD).await),
        ErrorCode::UsernameTaken
    );
    assert_eq!(
        code_of(other.login("ai", "anything at all").await),
        ErrorCode::InvalidCredentials
    );

    // Not triggers: a word containing "ai", an address, a question mark, a longer name.
    for text in [
        "email me the plan",
        "I said it before, ai is hard",
        "write to ai@example.com?",
        "@aide are you there?",
    ] {
        alice.send_message(public, text).await.expect("send");
    }
    alice.send_message(public, "@ai who").await.expect("send");
    let reply = answer(&mut alice, public).await;
    assert!(
        reply.message.text.starts_with("Online here"),
        "the first thing the bot says answers the mention: {:?}",
        reply.message.text
    );
    assert!(reply.message.text.contains("alice"));
    assert_eq!(reply.message.kind, MessageKind::Text);
    assert_eq!(reply.ended, Some(Some(reply.message.seq)));
    assert_eq!(
        bot_stored(&alice, public, 50).await.len(),
        1,
        "stored once; the non-triggers got nothing"
    );

    // A direct chat: every message is for the bot.
    let dm = alice.open_direct("ai").await.expect("open direct");
    alice.send_message(dm.id, "stats").await.expect("send");
    let reply = bot_message(&mut alice, dm.id).await;
    assert!(
        reply.text.starts_with("This chat: 1 message"),
        "{}",
        reply.text
    );
    alice
        .send_message(dm.id, "what is the capital of France?")
        .await
        .expect("send");
    let reply = bot_message(&mut alice, dm.id).await;
    assert!(
        reply.text.contains("--ai-backend openai"),
        "an honest answer: {}",
        reply.text
    );
    server.stop().await;
}

#[tokio::test]
async fn clients_learn_the_bots_name_from_the_server_and_a_renamed_bot_answers_to_it() {
    let server = TestServer::start_with(|c| c.ai.name = "Hal".into()).await;
    let anonymous = server.connect().await;
    let info = anonymous
        .server_info()
        .await
        .expect("server info before login");
    assert_eq!(info.ai_bot.as_deref(), Some("Hal"));

    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "@Hal help").await.expect("send");
    let reply = expect_event(&mut alice, |e| match e {
        Event::Message(m) if m.room == public && m.sender_name == "Hal" => Some(m),
        _ => None,
    })
    .await;
    assert!(
        reply.text.contains("Hal"),
        "the help names the bot: {}",
        reply.text
    );
    server.stop().await;

    let server = TestServer::start_with(|c| c.ai.backend = AiBackendKind::Off).await;
    let client = server.connect().await;
    let info = client.server_info().await.expect("server info");
    assert_eq!(info.ai_bot, None, "no bot, no name");
    server.stop().await;
}

#[tokio::test]
async fn the_bot_can_be_invited_and_kicked_and_clear_persists() {
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let dev = alice
        .create_room("dev", Visibility::Private)
        .await
        .expect("create");
    alice.send_message(dev.id, "@ai who").await.expect("send");
    alice.invite(dev.id, "ai").await.expect("invite the bot");
    alice
        .send_message(dev.id, "alpha release notes")
        .await
        .expect("send");
    alice.send_message(dev.id, "@ai clear").await.expect("send");
    let cleared = bot_message(&mut alice, dev.id).await;
    assert!(
        cleared.text.starts_with("Context cleared"),
        "{}",
        cleared.text
    );
    alice
        .send_message(dev.id, "gamma deploy friday")
        .await
        .expect("send");

    // The clear point survives a restart.
    let server = server.restart().await;
    let (mut alice, _) = server.login("alice").await;
    alice
        .send_message(dev.id, "@ai summary")
        .await
        .expect("send");
    let summary = bot_message(&mut alice, dev.id).await;
    assert!(
        summary.text.starts_with("Summary of the last 1 message:"),
        "only what came after the clear: {}",
        summary.text
    );
    assert!(summary.text.contains("gamma deploy friday"));
    let history = alice
        .history(dev.id, chatroom_protocol::HistoryAnchor::Latest, 50)
        .await
        .expect("history");
    assert!(
        !history
            .messages
            .iter()
            .any(|m| m.sender_name == "ai" && m.text.starts_with("Online")),
        "the mention before the bot was invited was not answered"
    );

    alice
        .kick(dev.id, "ai", Some("quiet please".into()))
        .await
        .expect("an owner can remove the bot");
    let info = alice.room_info(dev.id).await.expect("info");
    assert!(!info.members.iter().any(|m| m.user.username == "ai"));
    server.stop().await;
}

// ---- a Chat Completions server for the tests ----

/// A tiny OpenAI-compatible server. What it does depends on the question (the last message):
/// `#500`, `#malformed`, `#stall` (one token, then nothing), `#keepalive` (one token, then
/// only keep-alive comments and empty deltas), `#silent` (headers, then
/// nothing), `#trickle` (a token every 50 ms forever), `#gate` (waits for the test to open
/// the gate), `#leak` (an error body that quotes the key), `#ansi` (terminal control
/// sequences and a bell around "hi"), `#finish` (the last words and the finish reason in one
/// chunk, then the connection closes without `[DONE]`), `#long` ([`LONG_REPLY`]: its first
/// 100 characters five at a time, the rest in one piece), `#longfail` (the first 130
/// characters of it, five at a time, then a malformed chunk), `#fenced` ([`FENCED_REPLY`] five
/// characters at a time, waiting for the gate after the first 65); anything else streams
/// "The answer is 42." in four pieces.
#[derive(Clone)]
pub(crate) struct FakeModel {
    pub(crate) endpoint: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

#[derive(Clone, Debug)]
struct Recorded {
    authorization: Option<String>,
    body: serde_json::Value,
}

impl FakeModel {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let model = Self {
            endpoint: format!("http://{addr}/v1"),
            requests: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        };
        let server = model.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let now = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    server.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    let _ = server.serve(socket).await;
                    server.in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        model
    }

    pub(crate) fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    async fn serve(&self, mut socket: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let header_end = loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        assert!(
            head.starts_with("POST /v1/chat/completions HTTP/1.1"),
            "{head}"
        );
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        while buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: serde_json::Value =
            serde_json::from_slice(&buf[header_end..header_end + length]).expect("JSON body");
        let question = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        self.requests.lock().expect("lock").push(Recorded {
            authorization: header("authorization"),
            body,
        });

        let sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
        let delta = |text: &str| {
            format!(
                "data: {}\n\n",
                serde_json::json!({"choices":[{"index":0,"delta":{"content":text}}]})
            )
        };
        if question.contains("#500") {
            let body = "{\"error\":{\"message\":\"boom\"}}";
            let reply = format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await?;
        } else if question.contains("#leak") {
            let body =
                format!("{{\"error\":{{\"message\":\"Incorrect API key provided: {KEY}\"}}}}");
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await?;
        } else if question.contains("#malformed") {
            socket.write_all(sse_head.as_bytes()).await?;
            socket
                .write_all(b"data: {\"choices\": [ this is not json\n\n")
                .await?;
        } else if question.contains("#stall") {
            socket.write_all(sse_head.as_bytes()).await?;
            socket.write_all(delta("I was about to").as_bytes()).await?;
            std::future::pending::<()>().await;
        } else if question.contains("#keepalive") {
            socket.write_all(sse_head.as_bytes()).await?;
            socket.write_all(delta("I was about to").as_bytes()).await?;
            loop {
                socket.write_all(b": keep-alive\n\n").await?;
                socket.write_all(delta("").as_bytes()).await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else if question.contains("#silent") {
            socket.write_all(sse_head.as_bytes()).await?;
            std::future::pending::<()>().await;
        } else if question.contains("#ansi") {
            socket.write_all(sse_head.as_bytes()).await?;
            // "\u{1b}[2J hi\u{7}", the escape sequence split across two deltas.
            for piece in ["\u{1b}[2", "J hi\u{7}"] {
                socket.write_all(delta(piece).as_bytes()).await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            socket
                .write_all(
                    b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                )
                .await?;
        } else if question.contains("#finish") {
            socket.write_all(sse_head.as_bytes()).await?;
            socket.write_all(delta("The answer ").as_bytes()).await?;
            socket.flush().await?;
            let last = serde_json::json!(
                {"choices":[{"index":0,"delta":{"content":"is 42."},"finish_reason":"stop"}]}
            );
            socket
                .write_all(format!("data: {last}\n\n").as_bytes())
                .await?;
        } else if question.contains("#long") {
            socket.write_all(sse_head.as_bytes()).await?;
            let chars: Vec<char> = LONG_REPLY.chars().collect();
            let fail = question.contains("#longfail");
            let (small, big) = chars.split_at(if fail { 130 } else { 100 });
            for piece in small.chunks(5) {
                socket
                    .write_all(delta(&piece.iter().collect::<String>()).as_bytes())
                    .await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if fail {
                socket.write_all(b"data: {\"choices\": [ oops\n\n").await?;
            } else {
                let rest: String = big.iter().collect();
                socket.write_all(delta(&rest).as_bytes()).await?;
                socket
                    .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
                    .await?;
            }
        } else if question.contains("#fenced") {
            socket.write_all(sse_head.as_bytes()).await?;
            let chars: Vec<char> = FENCED_REPLY.chars().collect();
            for (i, piece) in chars.chunks(5).enumerate() {
                if i == 13 {
                    self.gate.acquire().await.expect("gate").forget();
                }
                socket
                    .write_all(delta(&piece.iter().collect::<String>()).as_bytes())
                    .await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
                .await?;
        } else if question.contains("#trickle") {
            socket.write_all(sse_head.as_bytes()).await?;
            loop {
                socket.write_all(delta("more ").as_bytes()).await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            if question.contains("#gate") {
                self.gate.acquire().await.expect("gate").forget();
            }
            socket.write_all(sse_head.as_bytes()).await?;
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n")
                .await?;
            for piece in ["The ", "answer ", "is ", "42."] {
                socket.write_all(delta(piece).as_bytes()).await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            socket
                .write_all(
                    b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                )
                .await?;
        }
        socket.shutdown().await
    }
}

async fn openai_server(
    model: &FakeModel,
    adjust: impl FnOnce(&mut chatroom_server::Config),
) -> TestServer {
    let endpoint = model.endpoint.clone();
    TestServer::start_with(move |c| {
        c.ai.backend = AiBackendKind::Openai;
        c.ai.endpoint = endpoint;
        c.ai.model = "test-model".into();
        c.ai.api_key = chatroom_ai::openai::ApiKey::new(KEY);
        c.ai.connect_timeout_ms = 2_000;
        c.ai.first_token_timeout_ms = 500;
        c.ai.total_timeout_ms = 3_000;
        c.ai.draft_interval_ms = 10;
        c.ai.user_per_minute = 0;
        c.ai.room_per_minute = 0;
        c.ai.breaker_failures = 100;
        c.limits.message_burst = 200;
        adjust(c);
    })
    .await
}

const ANSWER: &str = "The answer is 42.";

#[tokio::test]
async fn a_streamed_answer_arrives_whole_and_in_order() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |_| {}).await;
    let (mut alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let public = public_room(&alice).await;
    bob.send_message(public, "the deploy is at 5")
        .await
        .expect("send");
    alice
        .send_message(public, "@ai when is the deploy?")
        .await
        .expect("send");
    let reply = answer(&mut alice, public).await;
    assert_eq!(reply.message.text, ANSWER);
    assert_eq!(reply.message.kind, MessageKind::Text);
    assert_eq!(reply.ended, Some(Some(reply.message.seq)));
    assert!(!reply.drafts.is_empty(), "the answer streamed as drafts");
    for pair in reply.drafts.windows(2) {
        assert!(
            pair[1].starts_with(&pair[0]),
            "drafts grow: {:?}",
            reply.drafts
        );
    }
    assert!(ANSWER.starts_with(reply.drafts.last().expect("a draft").as_str()));

    let requests = model.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["model"], "test-model");
    let contents: Vec<&str> = sent.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        contents.contains(&"bob: the deploy is at 5"),
        "{contents:?}"
    );
    assert_eq!(contents.last(), Some(&"alice: when is the deploy?"));

    let stored = bot_stored(&alice, public, 10).await;
    assert_eq!(texts_where(&stored, |_| true), [ANSWER], "stored once");
    server.stop().await;
}

#[tokio::test]
async fn failures_give_a_notice_and_free_the_slot() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| c.ai.max_concurrent = 1).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    for (question, expected) in [
        ("#500", "HTTP 500"),
        ("#malformed", "not a chat completion"),
        ("#stall", "stopped answering midway"),
        ("#keepalive", "stopped answering midway"),
        ("#silent", "did not start answering in time"),
        ("#trickle", "took too long"),
    ] {
        alice
            .send_message(public, format!("@ai {question}"))
            .await
            .expect("send");
        let reply = answer(&mut alice, public).await;
        assert_eq!(reply.message.kind, MessageKind::System, "{question}");
        assert!(
            reply.message.text.contains(expected),
            "{question}: {}",
            reply.message.text
        );
        assert!(reply.message.text.contains("alice"));
    }
    // The one slot is free again: a good question gets its answer.
    alice.send_message(public, "@ai hello").await.expect("send");
    let reply = answer(&mut alice, public).await;
    assert_eq!(reply.message.text, ANSWER);
    server.stop().await;
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_closes_after_the_cooldown() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| {
        c.ai.breaker_failures = 2;
        c.ai.breaker_cooldown_ms = 1_500;
    })
    .await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "@ai #500").await.expect("send");
    let first = bot_message(&mut alice, public).await;
    assert!(!first.text.contains("Pausing"), "{}", first.text);
    alice.send_message(public, "@ai #500").await.expect("send");
    let second = bot_message(&mut alice, public).await;
    assert!(second.text.contains("Pausing the AI"), "{}", second.text);
    let calls = model.request_count();
    assert_eq!(calls, 2);

    // Open: the model is not called, and the room is told — once per user, however often
    // they ask.
    alice.send_message(public, "@ai hello").await.expect("send");
    let refused = bot_message(&mut alice, public).await;
    assert!(refused.text.contains("unavailable"), "{}", refused.text);
    for _ in 0..3 {
        alice.send_message(public, "@ai hello").await.expect("send");
    }
    alice
        .send_message(public, "@ai status")
        .await
        .expect("send");
    let status = bot_message(&mut alice, public).await;
    assert!(
        status.text.contains("unavailable after 2 failures"),
        "said once, then silence until the status: {}",
        status.text
    );
    assert_eq!(model.request_count(), calls, "no call while open");

    // After the cool-down (status says so) a probe goes through, and its success closes the
    // breaker.
    let mut cooled = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        alice
            .send_message(public, "@ai status")
            .await
            .expect("send");
        if bot_message(&mut alice, public)
            .await
            .text
            .contains("next try in 0 s")
        {
            cooled = true;
            break;
        }
    }
    assert!(cooled, "the cool-down ends");
    alice.send_message(public, "@ai hello").await.expect("send");
    let reply = answer(&mut alice, public).await;
    assert_eq!(reply.message.text, ANSWER);
    alice
        .send_message(public, "@ai status")
        .await
        .expect("send");
    let status = bot_message(&mut alice, public).await;
    assert!(status.text.contains("healthy"), "{}", status.text);
    server.stop().await;
}

#[tokio::test]
async fn the_concurrency_limit_holds_and_the_room_keeps_chatting_while_the_model_is_slow() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| c.ai.max_concurrent = 2).await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let public = public_room(&alice).await;
    // Two questions each: as many as one user may have pending.
    for i in 0..4 {
        let from = if i % 2 == 0 { &alice } else { &bob };
        from.send_message(public, format!("@ai #gate question {i}"))
            .await
            .expect("send");
    }
    // Two requests reach the model and wait there; the others wait in the bot's line.
    tokio::time::timeout(PATIENCE, async {
        while model.in_flight.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("two requests in flight");

    // Meanwhile the room chats as usual: every message arrives.
    for i in 0..20 {
        let (from, to) = if i % 2 == 0 {
            (&alice, &mut bob)
        } else {
            (&bob, &mut alice)
        };
        let text = format!("chat {i} while the model thinks");
        from.send_message(public, text.clone()).await.expect("send");
        expect_message(to, &text).await;
    }
    assert_eq!(
        model.in_flight.load(Ordering::SeqCst),
        2,
        "still only two at the model"
    );
    model.gate.add_permits(4);
    let mut answers = 0;
    while answers < 4 {
        let m = bot_message(&mut alice, public).await;
        assert_eq!(m.text, ANSWER);
        answers += 1;
    }
    assert_eq!(model.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(model.request_count(), 4);
    server.stop().await;
}

/// Collects every log line of this test's thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_appears_in_no_message_and_no_log_line() {
    // A current-thread runtime: the server, the bot and the HTTP client all log on this thread.
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let model = FakeModel::start().await;
    let server = openai_server(&model, |_| {}).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    for question in ["@ai #leak", "@ai #500", "@ai status", "@ai hello"] {
        alice.send_message(public, question).await.expect("send");
        bot_message(&mut alice, public).await;
    }
    let stored = bot_stored(&alice, public, 50).await;
    let bot_said = texts_where(&stored, |_| true);
    assert_eq!(bot_said.len(), 4, "{bot_said:?}");
    assert!(bot_said[0].contains("HTTP 401"), "{}", bot_said[0]);
    assert!(
        bot_said
            .iter()
            .all(|t| !t.contains(KEY) && !t.contains("SECRET"))
    );
    server.stop().await;

    let logs = String::from_utf8_lossy(&logs.0.lock().expect("lock")).to_string();
    assert!(
        logs.contains("the AI could not answer"),
        "the capture works: {} bytes",
        logs.len()
    );
    assert!(!logs.contains(KEY), "the key leaked into the logs");
    assert!(!logs.contains("SECRET"));
}

#[tokio::test]
async fn rate_limits_are_announced_once_per_window() {
    let server = TestServer::start_with(|c| {
        c.ai.user_per_minute = 1;
        c.ai.room_per_minute = 0;
    })
    .await;
    let (mut alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "@ai who").await.expect("send");
    let first = bot_message(&mut alice, public).await;
    assert!(first.text.starts_with("Online here"), "{}", first.text);
    alice.send_message(public, "@ai stats").await.expect("send");
    let limited = bot_message(&mut alice, public).await;
    assert_eq!(limited.kind, MessageKind::System);
    assert!(
        limited.text.contains("alice is asking too often"),
        "{}",
        limited.text
    );
    // Said once: the next refusal is silent, and other users are not limited.
    alice.send_message(public, "@ai stats").await.expect("send");
    bob.send_message(public, "@ai stats").await.expect("send");
    // Bob saw everything the bot said, up to the answer to his own question.
    let mut said = Vec::new();
    loop {
        let m = bot_message(&mut bob, public).await;
        let done = m.text.starts_with("#public:");
        said.push(m.text);
        if done {
            break;
        }
    }
    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(
        said.iter()
            .filter(|t| t.contains("asking too often"))
            .count(),
        1,
        "{said:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn commands_count_against_the_users_limit() {
    let server = TestServer::start_with(|c| {
        c.ai.user_per_minute = 2;
        c.ai.room_per_minute = 0;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let public = public_room(&alice).await;
    for command in [
        "@ai status",
        "@ai help",
        "@ai status",
        "@ai clear",
        "@ai help",
    ] {
        alice.send_message(public, command).await.expect("send");
    }
    bob.send_message(public, "@ai status").await.expect("send");
    // Bob saw everything the bot said, up to the answer to his own command.
    let mut said = Vec::new();
    loop {
        let m = bot_message(&mut bob, public).await;
        let done = m.text.starts_with("Backend") && said.len() >= 2;
        said.push(m.text);
        if done {
            break;
        }
    }
    assert_eq!(
        said.len(),
        4,
        "two answers, one refusal, bob's answer: {said:?}"
    );
    assert!(said[0].starts_with("Backend"), "{said:?}");
    assert!(said[1].starts_with("Ask me"), "{said:?}");
    assert!(said[2].contains("alice is asking too often"), "{said:?}");
    server.stop().await;
}

#[tokio::test]
async fn one_user_cannot_hold_the_bot_and_busy_is_said_once() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| {
        c.ai.max_concurrent = 1;
        c.ai.max_waiting = 2;
        c.ai.first_token_timeout_ms = 600_000;
        c.ai.total_timeout_ms = 600_000;
    })
    .await;
    let (mut alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let public = public_room(&alice).await;
    // Alice: one question at the model, one waiting, two more over her cap.
    alice
        .send_message(public, "@ai #gate a1")
        .await
        .expect("send");
    tokio::time::timeout(PATIENCE, async {
        while model.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first question reaches the model");
    for text in ["@ai #gate a2", "@ai #gate a3", "@ai #gate a4"] {
        alice.send_message(public, text).await.expect("send");
    }
    // Bob: one waiting (the line is full then), two turned away.
    for text in ["@ai #gate b1", "@ai #gate b2", "@ai #gate b3"] {
        bob.send_message(public, text).await.expect("send");
    }
    alice
        .send_message(public, "@ai status")
        .await
        .expect("send");
    let mut said = Vec::new();
    loop {
        let m = bot_message(&mut alice, public).await;
        let done = m.text.starts_with("Backend");
        said.push(m.text);
        if done {
            break;
        }
    }
    assert_eq!(said.len(), 3, "{said:?}");
    assert!(
        said[0].contains("alice already has 2 questions"),
        "{said:?}"
    );
    assert!(said[1].contains("too many questions at once"), "{said:?}");
    assert!(said[2].contains("answering 1 of 1, 2 waiting"), "{said:?}");

    // The three accepted questions are answered, and nothing else reached the model.
    model.gate.add_permits(3);
    for _ in 0..3 {
        assert_eq!(bot_message(&mut alice, public).await.text, ANSWER);
    }
    alice.send_message(public, "@ai hello").await.expect("send");
    assert_eq!(bot_message(&mut alice, public).await.text, ANSWER);
    assert_eq!(model.request_count(), 4);
    server.stop().await;
}

#[tokio::test]
async fn model_text_is_cleaned_and_a_last_chunk_with_a_finish_reason_completes_the_answer() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |_| {}).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let is_clean = |t: &str| !t.chars().any(|c| c.is_control() && c != '\n' && c != '\t');

    alice.send_message(public, "@ai #ansi").await.expect("send");
    let reply = answer(&mut alice, public).await;
    assert_eq!(reply.message.kind, MessageKind::Text);
    assert_eq!(reply.message.text, "hi");
    assert!(
        reply.drafts.iter().all(|d| is_clean(d)),
        "{:?}",
        reply.drafts
    );
    let history = alice
        .history(public, chatroom_protocol::HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    assert!(history.messages.iter().all(|m| is_clean(&m.text)));

    alice
        .send_message(public, "@ai #finish")
        .await
        .expect("send");
    let reply = answer(&mut alice, public).await;
    assert_eq!(
        reply.message.kind,
        MessageKind::Text,
        "{}",
        reply.message.text
    );
    assert_eq!(reply.message.text, ANSWER);
    alice
        .send_message(public, "@ai status")
        .await
        .expect("send");
    let status = bot_message(&mut alice, public).await;
    assert!(
        status.text.contains("healthy ·"),
        "not a failure: {}",
        status.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_kicked_bot_stops_answering_in_the_room() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| {
        c.ai.first_token_timeout_ms = 600_000;
        c.ai.total_timeout_ms = 600_000;
    })
    .await;
    let (mut alice, _) = server.user("alice").await;
    let dev = alice
        .create_room("dev", Visibility::Private)
        .await
        .expect("create");
    alice.invite(dev.id, "ai").await.expect("invite the bot");
    alice
        .send_message(dev.id, "@ai #trickle")
        .await
        .expect("send");
    let draft = expect_event(&mut alice, |e| match e {
        Event::DraftUpdated(d) if d.room == dev.id => Some(d.draft),
        _ => None,
    })
    .await;
    alice.kick(dev.id, "ai", None).await.expect("kick the bot");
    // The draft is withdrawn and the request to the model dropped; nothing is stored.
    let ended = expect_event(&mut alice, |e| match e {
        Event::DraftEnded {
            room,
            draft: d,
            seq,
        } if room == dev.id && d == draft => Some(seq),
        Event::Message(m) if m.room == dev.id && m.sender_name == "ai" => {
            panic!("the bot spoke after it was kicked: {}", m.text)
        }
        _ => None,
    })
    .await;
    assert_eq!(ended, None);
    tokio::time::timeout(PATIENCE, async {
        while model.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the answer stops");
    let history = alice
        .history(dev.id, chatroom_protocol::HistoryAnchor::Latest, 50)
        .await
        .expect("history");
    assert!(!history.messages.iter().any(|m| m.sender_name == "ai"));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_silent_model() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| {
        c.ai.first_token_timeout_ms = 600_000;
        c.ai.total_timeout_ms = 600_000;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice
        .send_message(public, "@ai #silent")
        .await
        .expect("send");
    tokio::time::timeout(PATIENCE, async {
        while model.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the request reaches the model");
    // `stop` fails the test if the server does not finish within its patience.
    server.stop().await;
}

// ---- replies longer than one message ----

/// The longest message in the tests below.
const SMALL_LIMIT: u32 = 60;

/// Four paragraphs, any two of them too long for one message of [`SMALL_LIMIT`] characters.
const PARAGRAPHS: [&str; 4] = [
    "Step one: install the package with the manager.",
    "Step two: edit the config file,\nset the port and the name.",
    "Step three: start the server and watch its log.",
    "Step four: invite the team and say « salut » to all.",
];
const LONG_REPLY: &str = "Step one: install the package with the manager.\n\n\
Step two: edit the config file,\nset the port and the name.\n\n\
Step three: start the server and watch its log.\n\n\
Step four: invite the team and say « salut » to all.";

/// What a member saw of one reply in several messages, in the order it came.
#[derive(Debug, Default)]
struct Parts {
    /// The stored messages, each with the draft it ended.
    messages: Vec<(Message, u64)>,
    /// Every draft update, as (draft, text, messages stored before it).
    drafts: Vec<(u64, String, usize)>,
    /// Drafts withdrawn without a message.
    withdrawn: Vec<u64>,
    /// The bot's notice, if one came.
    notice: Option<Message>,
}

/// Collects the bot's messages, drafts and draft ends in `room` until `messages` messages
/// have ended their drafts, or a notice came.
async fn parts(client: &mut Client, room: RoomId, messages: usize) -> Parts {
    let mut seen = Parts::default();
    let mut stored: Vec<Message> = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.messages.len() < messages && seen.notice.is_none() {
            match client.next_event().await.expect("connection open") {
                Event::DraftUpdated(d) if d.room == room => {
                    assert!(
                        !seen.messages.iter().any(|(_, ended)| *ended == d.draft),
                        "an update after the draft ended"
                    );
                    seen.drafts.push((d.draft, d.text, seen.messages.len()));
                }
                Event::Message(m) if m.room == room && m.sender_name == "ai" => {
                    if m.kind == MessageKind::System {
                        seen.notice = Some(m);
                    } else {
                        stored.push(m);
                    }
                }
                Event::DraftEnded {
                    room: r,
                    draft,
                    seq,
                } if r == room => match seq {
                    Some(seq) => {
                        let at = stored
                            .iter()
                            .position(|m| m.seq == seq)
                            .expect("a draft ends in a message delivered before");
                        seen.messages.push((stored.remove(at), draft));
                    }
                    None => seen.withdrawn.push(draft),
                },
                _ => {}
            }
        }
    })
    .await
    .expect("the bot answers in time");
    seen
}

fn texts_of(parts: &Parts) -> Vec<&str> {
    parts
        .messages
        .iter()
        .map(|(m, _)| m.text.as_str())
        .collect()
}

#[tokio::test]
async fn a_reply_longer_than_a_message_continues_in_the_next_messages() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| c.limits.max_message_chars = SMALL_LIMIT).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "@ai #long").await.expect("send");
    let seen = parts(&mut alice, public, 4).await;

    // Each paragraph its own message, in order, none over the limit: the whole reply.
    assert_eq!(texts_of(&seen), PARAGRAPHS, "{seen:#?}");
    for (message, _) in &seen.messages {
        assert!(message.text.chars().count() <= SMALL_LIMIT as usize);
        assert_eq!(message.kind, MessageKind::Text);
    }
    let seqs: Vec<u64> = seen.messages.iter().map(|(m, _)| m.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seen.withdrawn.is_empty(), "{seen:#?}");
    assert!(seen.notice.is_none(), "{seen:#?}");

    // Each part streamed as a draft of its own, ended by its message, before the next began.
    let ids: Vec<u64> = seen.messages.iter().map(|(_, draft)| *draft).collect();
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct, ids, "a new draft for every part");
    for (draft, text, stored_before) in &seen.drafts {
        let part = ids
            .iter()
            .position(|id| id == draft)
            .expect("every draft became a message");
        // A draft shows the text so far, up to the limit: its part, perhaps the next's start.
        let from_here = PARAGRAPHS[part..].join("\n\n");
        assert!(from_here.starts_with(text.as_str()), "{part}: {text:?}");
        assert!(text.chars().count() <= SMALL_LIMIT as usize, "{text:?}");
        assert_eq!(
            *stored_before, part,
            "part {part}'s draft {text:?} came after exactly the parts before it"
        );
    }

    let stored = bot_stored(&alice, public, 20).await;
    assert_eq!(
        texts_where(&stored, |_| true),
        PARAGRAPHS,
        "stored once each, in order"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_reply_fills_at_most_max_reply_messages_and_the_last_is_cut() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| {
        c.limits.max_message_chars = SMALL_LIMIT;
        c.ai.max_reply_messages = 2;
    })
    .await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice.send_message(public, "@ai #long").await.expect("send");
    let seen = parts(&mut alice, public, 2).await;
    let texts = texts_of(&seen);
    assert_eq!(texts[0], PARAGRAPHS[0]);
    // Cut where a split would have been (after the paragraph), marked.
    assert_eq!(
        texts[1],
        format!("{}…", PARAGRAPHS[1]),
        "the last part is cut, visibly"
    );
    assert!(texts[1].chars().count() <= SMALL_LIMIT as usize);

    // The cut part was the answer's last act: nothing more was stored.
    let stored = bot_stored(&alice, public, 20).await;
    assert_eq!(texts_where(&stored, |_| true), texts);
    server.stop().await;
}

#[tokio::test]
async fn a_failure_midway_keeps_the_parts_stored_and_withdraws_the_draft() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| c.limits.max_message_chars = SMALL_LIMIT).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice
        .send_message(public, "@ai #longfail")
        .await
        .expect("send");
    let seen = parts(&mut alice, public, 4).await;
    assert_eq!(texts_of(&seen), PARAGRAPHS[..2], "{seen:#?}");
    let notice = seen.notice.as_ref().expect("a notice");
    assert!(
        notice
            .text
            .starts_with("ai: the answer for alice stops here"),
        "{}",
        notice.text
    );
    // The third part's draft (shown if the model got that far before the interval) withdrawn.
    let [third] = seen.withdrawn[..] else {
        panic!("one draft withdrawn: {seen:#?}")
    };
    assert!(!seen.messages.iter().any(|(_, d)| *d == third));
    for (draft, text, _) in &seen.drafts {
        if *draft == third {
            assert!(PARAGRAPHS[2].starts_with(text.as_str()), "{text:?}");
        }
    }
    let stored = bot_stored(&alice, public, 20).await;
    assert_eq!(
        texts_where(&stored, |kind| *kind == MessageKind::Text),
        PARAGRAPHS[..2]
    );
    server.stop().await;
}

/// A reply whose code block does not fit in one message of [`SMALL_LIMIT`] characters.
const FENCED_REPLY: &str = "Put this in main.rs:\n\n```rust\nfn main() {\n    let port = 8080;\n    \
println!(\"port {port}\");\n}\n```\n\nThen run cargo run.";

#[tokio::test]
async fn a_code_block_split_across_messages_is_closed_and_reopened() {
    let model = FakeModel::start().await;
    let server = openai_server(&model, |c| c.limits.max_message_chars = SMALL_LIMIT).await;
    let (mut alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    alice
        .send_message(public, "@ai #fenced")
        .await
        .expect("send");

    // The model stops after 65 characters: the first part is stored, and the next one's
    // draft, shown while the model waits, already starts by reopening the block.
    let (first, first_draft) = tokio::time::timeout(PATIENCE, async {
        let mut stored = None;
        loop {
            match alice.next_event().await.expect("connection open") {
                Event::Message(m) if m.room == public && m.sender_name == "ai" => {
                    stored = Some(m.text)
                }
                Event::DraftEnded {
                    room,
                    draft,
                    seq: Some(_),
                } if room == public => {
                    return (stored.expect("the part before its draft's end"), draft);
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the first part in time");
    let next_draft = expect_event(&mut alice, |e| match e {
        Event::DraftUpdated(d) if d.room == public => Some(d),
        _ => None,
    })
    .await;
    assert_ne!(next_draft.draft, first_draft);
    assert_eq!(next_draft.text.trim_end(), "```rust\n    let port = 8080;");
    model.gate.add_permits(1);
    let seen = parts(&mut alice, public, 3).await;

    // Every message valid Markdown on its own: a block cut by a message's end is closed
    // there and opened again, info string and all, where the next begins — between two
    // lines of code rather than inside one.
    let mut texts = vec![first.as_str()];
    texts.extend(texts_of(&seen));
    assert_eq!(
        texts,
        [
            "Put this in main.rs:\n\n```rust\nfn main() {\n```",
            "```rust\n    let port = 8080;\n```",
            "```rust\n    println!(\"port {port}\");\n}\n```",
            "Then run cargo run.",
        ],
        "{seen:#?}"
    );
    for text in &texts {
        assert!(text.chars().count() <= SMALL_LIMIT as usize, "{text:?}");
    }
    // What streamed is what was stored: the reopened parts' drafts open the block too.
    let ids: Vec<u64> = seen.messages.iter().map(|(_, draft)| *draft).collect();
    for (draft, text, _) in &seen.drafts {
        let part = ids
            .iter()
            .position(|id| id == draft)
            .expect("a part's draft");
        if part < 2 {
            assert!(text.starts_with("```rust\n    "), "{part}: {text:?}");
        }
    }
    assert!(
        seen.withdrawn.is_empty() && seen.notice.is_none(),
        "{seen:#?}"
    );
    let stored = bot_stored(&alice, public, 20).await;
    assert_eq!(texts_where(&stored, |_| true), texts, "stored as sent");
    server.stop().await;
}
