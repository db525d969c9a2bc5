//! `chatroom_protocol::reconnecting`: a bot's client that comes back by itself after the server
//! restarts (on the same data directory and address), resumes its session, and catches up.

use crate::support::*;
use bytes::BytesMut;
use chatroom_protocol::client::Client;
use chatroom_protocol::codec::{MAX_FRAME_BYTES_ACCEPTED, decode_payload, encode_frame};
use chatroom_protocol::reconnecting::{
    ReconnectError, ReconnectEvent, ReconnectOptions, Reconnected, ReconnectingClient,
};
use chatroom_protocol::{
    ClientFrame, ErrorBody, ErrorCode, Event, HistoryAnchor, MessageKind, Request, RoomRole,
    ServerFrame, UserId, Visibility,
};
use chatroom_server::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A bot's options: registers, joins `public`, retries quickly (the server is back at once).
fn bot_options(addr: SocketAddr, name: &str) -> ReconnectOptions {
    ReconnectOptions::new(addr.to_string(), name, PASSWORD)
        .client_name("e2e-bot")
        .register_if_missing()
        .join("public")
        .retry_delays(Duration::from_millis(50), Duration::from_millis(500))
}

/// The bot's events up to and including the first one `last` picks.
async fn events_until(
    bot: &mut ReconnectingClient,
    mut last: impl FnMut(&ReconnectEvent) -> bool,
) -> Vec<ReconnectEvent> {
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = bot.next_event().await.expect("the bot is running");
            let done = last(&event);
            seen.push(event);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the event comes in time; seen: {seen:#?}"));
    seen
}

/// The bot's events up to and including the message with `text`.
async fn events_until_message(bot: &mut ReconnectingClient, text: &str) -> Vec<ReconnectEvent> {
    events_until(bot, |e| message_texts(std::slice::from_ref(e)) == [text]).await
}

fn is_disconnected(event: &ReconnectEvent) -> bool {
    matches!(event, ReconnectEvent::Disconnected { .. })
}

fn is_reconnected(event: &ReconnectEvent) -> bool {
    matches!(event, ReconnectEvent::Reconnected(_))
}

/// The texts of the messages among `events`, in order.
fn message_texts(events: &[ReconnectEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ReconnectEvent::Event(Event::Message(m)) => Some(m.text.as_str()),
            _ => None,
        })
        .collect()
}

/// The reconnect report among `events`.
fn reconnected(events: &[ReconnectEvent]) -> &Reconnected {
    events
        .iter()
        .find_map(|e| match e {
            ReconnectEvent::Reconnected(back) => Some(back),
            _ => None,
        })
        .expect("reconnected")
}

/// The sessions the server keeps for an account (read with the server stopped).
fn sessions_of(config: &Config, user: UserId) -> i64 {
    let db = rusqlite::Connection::open(config.database_path()).expect("open the database");
    let user = i64::try_from(user.0).expect("id");
    db.query_row(
        "SELECT count(*) FROM sessions WHERE user_id = ?1",
        [user],
        |row| row.get(0),
    )
    .expect("count sessions")
}

/// Logs `name` in on a fresh connection to `addr`.
async fn login_at(addr: SocketAddr, name: &str) -> Client {
    let client = Client::connect(addr, "e2e-test").await.expect("connect");
    client.login(name, PASSWORD).await.expect("login");
    client
}

#[tokio::test]
async fn messages_posted_while_the_bot_was_away_are_delivered_once_and_in_order() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let mut bot = ReconnectingClient::connect(bot_options(addr, "bot"))
        .await
        .expect("the bot connects");
    alice.send_message(public, "before").await.expect("send");
    events_until_message(&mut bot, "before").await;
    drop(alice);

    let (dir, config) = server.stop().await;
    events_until(&mut bot, is_disconnected).await;
    // Alice posts on the same data, at an address the bot does not know: while it is away.
    let elsewhere = TestServer::start_in(dir, config).await;
    let (alice, _) = elsewhere.login("alice").await;
    for text in ["away 1", "away 2"] {
        alice.send_message(public, text).await.expect("send");
    }
    drop(alice);
    let (dir, config) = elsewhere.stop().await;

    // The server is back where the bot looks.
    let server = TestServer::start_at(addr, dir, config).await;
    let events = events_until(&mut bot, is_reconnected).await;
    assert_eq!(message_texts(&events), ["away 1", "away 2"], "{events:#?}");
    assert_eq!(reconnected(&events).caught_up, 2);

    // Then live messages, and nothing twice.
    let alice = login_at(addr, "alice").await;
    alice.send_message(public, "after").await.expect("send");
    let events = events_until_message(&mut bot, "after").await;
    assert_eq!(message_texts(&events), ["after"], "{events:#?}");
    drop(alice);
    server.stop().await;
}

#[tokio::test]
async fn a_valid_token_resumes_the_session_and_a_revoked_one_falls_back_to_the_password() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let mut bot = ReconnectingClient::connect(bot_options(addr, "bot"))
        .await
        .expect("the bot connects");
    let first = bot.session();

    let (dir, config) = server.stop().await;
    events_until(&mut bot, is_disconnected).await;
    let server = TestServer::start_at(addr, dir, config).await;
    let events = events_until(&mut bot, is_reconnected).await;
    assert!(reconnected(&events).resumed, "{events:#?}");
    assert_eq!(bot.session().token, first.token, "the same session");
    let (dir, config) = server.stop().await;
    assert_eq!(
        sessions_of(&config, first.user.id),
        1,
        "a resume makes no new session on the server"
    );

    // The token is revoked while the server is down: the bot logs in with its password.
    events_until(&mut bot, is_disconnected).await;
    let db = rusqlite::Connection::open(config.database_path()).expect("open the database");
    db.execute("DELETE FROM sessions", []).expect("revoke");
    drop(db);
    let server = TestServer::start_at(addr, dir, config).await;
    let events = events_until(&mut bot, is_reconnected).await;
    assert!(!reconnected(&events).resumed, "{events:#?}");
    let second = bot.session();
    assert_ne!(second.token, first.token, "a new session");
    assert_eq!(second.user.id, first.user.id);
    bot.my_rooms().await.expect("requests work on it");
    // The directory lives as long as `_dir`.
    let (_dir, config) = server.stop().await;
    assert_eq!(sessions_of(&config, first.user.id), 1, "the new one");
}

/// The session a bot holds follows its account's admin standing as it changes, without a
/// reconnect.
#[tokio::test]
async fn the_session_follows_a_promotion_and_a_demotion() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let mut bot = ReconnectingClient::connect(bot_options(server.addr, "bot"))
        .await
        .expect("the bot connects");
    assert!(!bot.session().user.is_admin);
    let changed_to = |admin: bool| move |e: &ReconnectEvent| matches!(e, ReconnectEvent::Event(Event::AdminChanged { admin: a, .. }) if *a == admin);

    server.user("carol").await;
    admin
        .set_server_admin("carol", true)
        .await
        .expect("promote");
    events_until(&mut bot, changed_to(true)).await;
    assert!(
        !bot.session().user.is_admin,
        "carol's promotion, not the bot's"
    );

    admin.set_server_admin("bot", true).await.expect("promote");
    events_until(&mut bot, changed_to(true)).await;
    assert!(bot.session().user.is_admin);
    assert!(bot.handle().session().user.is_admin, "every handle");
    admin.set_server_admin("bot", false).await.expect("demote");
    events_until(&mut bot, changed_to(false)).await;
    assert!(!bot.session().user.is_admin);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_first_login_is_returned_and_not_retried() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let options = ReconnectOptions::new(server.addr.to_string(), "alice", "not her password");
    let refused = tokio::time::timeout(PATIENCE, ReconnectingClient::connect(options))
        .await
        .expect("it answers at once, without retrying")
        .expect_err("refused");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidCredentials));
    server.stop().await;
}

/// The password changed while the bot was away: its token and then its password are refused,
/// which would repeat forever. The bot stops for good, and says why.
#[tokio::test]
async fn a_login_refused_after_a_drop_stops_the_client_for_good() {
    let server = TestServer::start().await;
    let (proxy, _, _) = Proxy::start(server.addr).await;
    let mut bot = ReconnectingClient::connect(bot_options(proxy.addr, "bot"))
        .await
        .expect("the bot connects");
    let public = public_room(&bot.connection().await.expect("connected")).await;
    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    let (other, _) = server.login("bot").await;
    other
        .change_password(PASSWORD, "a brand new password")
        .await
        .expect("change the password");
    proxy.come_up(false);

    let events = events_until(&mut bot, |e| matches!(e, ReconnectEvent::Stopped(_))).await;
    let Some(ReconnectEvent::Stopped(why)) = events.last() else {
        unreachable!("picked above")
    };
    assert_eq!(
        why.code(),
        Some(ErrorCode::InvalidCredentials),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(is_reconnected),
        "never back: {events:#?}"
    );
    let ended = tokio::time::timeout(PATIENCE, bot.next_event()).await;
    assert!(matches!(ended, Ok(None)), "the last event");
    let refused = bot.send_message(public, "still here?").await;
    assert!(
        matches!(&refused, Err(ReconnectError::Stopped(_))),
        "{refused:?}"
    );
    drop(proxy);
    server.stop().await;
}

/// An account suspended while the bot was away: its token is gone and its password is refused
/// with `Forbidden` until an admin lifts the suspension. The bot stops for good rather than
/// knock on the door every minute.
#[tokio::test]
async fn a_bot_suspended_while_away_stops_for_good() {
    let server = TestServer::start().await;
    let (admin, _) = server.user("alice").await;
    let (proxy, _, _) = Proxy::start(server.addr).await;
    let mut bot = ReconnectingClient::connect(bot_options(proxy.addr, "bot"))
        .await
        .expect("the bot connects");
    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    admin
        .suspend_user("bot", Some("misbehaving"))
        .await
        .expect("suspended");
    proxy.come_up(false);

    let events = events_until(&mut bot, |e| matches!(e, ReconnectEvent::Stopped(_))).await;
    let Some(ReconnectEvent::Stopped(why)) = events.last() else {
        unreachable!("picked above")
    };
    assert_eq!(why.code(), Some(ErrorCode::Forbidden), "{events:#?}");
    assert!(why.to_string().contains("misbehaving"), "{why}");
    assert!(
        !events.iter().any(is_reconnected),
        "never back: {events:#?}"
    );
    drop(proxy);
    server.stop().await;
}

/// A session the server ends on purpose (here by a password change from another session) is
/// not taken back with the password: the bot stops, with the server's reason.
#[tokio::test]
async fn a_session_ended_by_the_server_is_not_logged_back_in() {
    let server = TestServer::start().await;
    let mut bot = ReconnectingClient::connect(bot_options(server.addr, "bot"))
        .await
        .expect("the bot connects");
    let (other, _) = server.login("bot").await;
    other
        .change_password(PASSWORD, "a brand new password")
        .await
        .expect("change the password");
    let events = events_until(&mut bot, |e| matches!(e, ReconnectEvent::Stopped(_))).await;
    let Some(ReconnectEvent::Stopped(why)) = events.last() else {
        unreachable!("picked above")
    };
    assert_eq!(why.code(), Some(ErrorCode::SessionRevoked), "{events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ReconnectEvent::RetryFailed { .. })),
        "no attempt to come back: {events:#?}"
    );
    server.stop().await;
}

/// A TCP proxy in front of a server that can cut the connection, refuse new ones, hold back a
/// client's first `History` request (to make a live message arrive while a catch-up waits for
/// its page, every time), and answer `JoinRoom` requests itself as too fast.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    state: Arc<ProxyState>,
    task: JoinHandle<()>,
}

struct ProxyState {
    /// Whether new connections are let through.
    up: AtomicBool,
    /// Cancelled to cut the connections of now; replaced by a fresh one.
    connections: std::sync::Mutex<CancellationToken>,
    /// Whether to hold the next `History` request, and who to tell when one is held.
    hold_history: AtomicBool,
    history_held: mpsc::Sender<()>,
    release: Notify,
    /// The texts of the message events that went through to the client.
    messages_passed: mpsc::Sender<String>,
    /// How many more `JoinRoom` requests to answer with `join_refusal` instead of passing on.
    joins_to_refuse: AtomicU32,
    join_refusal: std::sync::Mutex<ErrorBody>,
    /// How many were answered so.
    joins_refused: AtomicU32,
}

impl ProxyState {
    /// Whether to refuse this `JoinRoom` (counting it if so).
    fn refuse_join(&self) -> bool {
        let refuse = self
            .joins_to_refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            self.joins_refused.fetch_add(1, Ordering::SeqCst);
        }
        refuse
    }
}

impl Proxy {
    /// A proxy to `target`; with it, a receiver told when a `History` request is held, and
    /// one of the texts of the message events passed on to clients.
    pub(crate) async fn start(
        target: SocketAddr,
    ) -> (Self, mpsc::Receiver<()>, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (history_held, held) = mpsc::channel(4);
        let (messages_passed, passed) = mpsc::channel(1024);
        let state = Arc::new(ProxyState {
            up: AtomicBool::new(true),
            connections: std::sync::Mutex::new(CancellationToken::new()),
            hold_history: AtomicBool::new(false),
            history_held,
            release: Notify::new(),
            messages_passed,
            joins_to_refuse: AtomicU32::new(0),
            join_refusal: std::sync::Mutex::new(ErrorBody::new(ErrorCode::RateLimited, "")),
            joins_refused: AtomicU32::new(0),
        });
        let task = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !state.up.load(Ordering::SeqCst) {
                        continue; // dropped: closed at once
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let cut = state.connections.lock().expect("lock").clone();
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    // Both directions write to the client: whole frames, one at a time.
                    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
                    let ended = CancellationToken::new();
                    let directions = [
                        Direction::ToServer(client_read, server_write, Arc::clone(&client_write)),
                        Direction::ToClient(server_read, client_write),
                    ];
                    for direction in directions {
                        let (state, cut, ended) = (Arc::clone(&state), cut.clone(), ended.clone());
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = cut.cancelled() => {}
                                _ = ended.cancelled() => {}
                                _ = direction.pump(&state) => {}
                            }
                            // One direction over: the connection is.
                            ended.cancel();
                        });
                    }
                }
            }
        });
        (Self { addr, state, task }, held, passed)
    }

    /// Cuts every connection and refuses new ones.
    pub(crate) fn go_down(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        let mut connections = self.state.connections.lock().expect("lock");
        connections.cancel();
        *connections = CancellationToken::new();
    }

    /// Lets connections through again; when `hold_history`, holding back the first `History`
    /// request until [`release_history`](Self::release_history).
    pub(crate) fn come_up(&self, hold_history: bool) {
        self.state
            .hold_history
            .store(hold_history, Ordering::SeqCst);
        self.state.up.store(true, Ordering::SeqCst);
    }

    fn release_history(&self) {
        self.state.release.notify_one();
    }

    /// Answers the next `count` `JoinRoom` requests with `RateLimited` itself.
    fn refuse_joins(&self, count: u32) {
        self.refuse_joins_with(
            count,
            ErrorCode::RateLimited,
            "too many requests; slow down",
        );
    }

    /// Answers the next `count` `JoinRoom` requests with `code` itself.
    fn refuse_joins_with(&self, count: u32, code: ErrorCode, message: &str) {
        *self.state.join_refusal.lock().expect("lock") = ErrorBody::new(code, message);
        self.state.joins_to_refuse.store(count, Ordering::SeqCst);
    }

    /// How many `JoinRoom` requests it refused.
    fn joins_refused(&self) -> u32 {
        self.state.joins_refused.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.go_down();
    }
}

type ClientWriter = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// One direction of a proxied connection.
enum Direction {
    /// From the client to the server; a refused join is answered to the client from here.
    ToServer(OwnedReadHalf, OwnedWriteHalf, ClientWriter),
    ToClient(OwnedReadHalf, ClientWriter),
}

impl Direction {
    /// Copies frame by frame, looking at each: a `History` request may be held back and a
    /// `JoinRoom` answered as too fast; message events are reported once passed on.
    async fn pump(self, state: &ProxyState) {
        match self {
            Direction::ToServer(from, mut server, client) => {
                let mut frames = Frames::new(from);
                while let Some(frame) = frames.next().await {
                    let request = match decode_payload::<ClientFrame>(
                        &frame[4..],
                        MAX_FRAME_BYTES_ACCEPTED,
                    ) {
                        Ok(ClientFrame::Request { id, body }) => Some((id, body)),
                        _ => None,
                    };
                    match request {
                        Some((id, Request::JoinRoom { .. })) if state.refuse_join() => {
                            let body = state.join_refusal.lock().expect("lock").clone();
                            let refusal = ServerFrame::Response {
                                id,
                                result: Err(body),
                            };
                            let refusal = encode_frame(&refusal, u32::MAX).expect("encode");
                            if client.lock().await.write_all(&refusal).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        Some((_, Request::History { .. }))
                            if state.hold_history.swap(false, Ordering::SeqCst) =>
                        {
                            let _ = state.history_held.try_send(());
                            state.release.notified().await;
                        }
                        _ => {}
                    }
                    if server.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
            Direction::ToClient(from, client) => {
                let mut frames = Frames::new(from);
                while let Some(frame) = frames.next().await {
                    if client.lock().await.write_all(&frame).await.is_err() {
                        return;
                    }
                    if let Ok(ServerFrame::Event(Event::Message(m))) =
                        decode_payload::<ServerFrame>(&frame[4..], MAX_FRAME_BYTES_ACCEPTED)
                    {
                        let _ = state.messages_passed.try_send(m.text);
                    }
                }
            }
        }
    }
}

/// Whole frames (length prefix included) read from one side of a connection.
struct Frames {
    from: OwnedReadHalf,
    buf: BytesMut,
}

impl Frames {
    fn new(from: OwnedReadHalf) -> Self {
        Self {
            from,
            buf: BytesMut::new(),
        }
    }

    /// The next frame; `None` once the side is closed.
    async fn next(&mut self) -> Option<BytesMut> {
        loop {
            if let Some(frame) = next_frame(&mut self.buf) {
                return Some(frame);
            }
            match self.from.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

/// The next whole frame (length prefix included) at the front of `buf`.
fn next_frame(buf: &mut BytesMut) -> Option<BytesMut> {
    let header: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = 4 + usize::try_from(u32::from_be_bytes(header)).ok()?;
    (buf.len() >= len).then(|| buf.split_to(len))
}

/// A live message that arrives while the catch-up waits for the history page that holds it
/// too is delivered once: by the catch-up, in order. The proxy makes the timing certain: it
/// holds the bot's `History` request until the live copy has gone through to the bot.
#[tokio::test]
async fn a_live_message_during_the_catch_up_is_not_delivered_twice() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let (proxy, mut history_held, mut passed) = Proxy::start(server.addr).await;
    let mut bot = ReconnectingClient::connect(bot_options(proxy.addr, "bot"))
        .await
        .expect("the bot connects");

    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    for text in ["away 1", "away 2"] {
        alice.send_message(public, text).await.expect("send");
    }
    proxy.come_up(true);
    tokio::time::timeout(PATIENCE, history_held.recv())
        .await
        .expect("the catch-up asks for history")
        .expect("the proxy runs");
    // Stored before the page is read, so in it; and sent live to the bot, which gets it
    // before the page.
    alice.send_message(public, "during").await.expect("send");
    tokio::time::timeout(PATIENCE, async {
        while passed.recv().await.expect("the proxy runs") != "during" {}
    })
    .await
    .expect("the live copy goes through");
    proxy.release_history();

    let events = events_until(&mut bot, is_reconnected).await;
    assert_eq!(
        message_texts(&events),
        ["away 1", "away 2", "during"],
        "{events:#?}"
    );
    assert_eq!(reconnected(&events).caught_up, 3);
    alice.send_message(public, "after").await.expect("send");
    let events = events_until_message(&mut bot, "after").await;
    assert_eq!(
        message_texts(&events),
        ["after"],
        "the live copy is dropped"
    );
    drop(proxy);
    server.stop().await;
}

/// A catch-up delivers at most `catch_up_limit` messages per room: the newest missed messages
/// are delivered, and the older ones reported as skipped, by seq.
#[tokio::test]
async fn older_missed_messages_beyond_the_catch_up_limit_are_reported_skipped() {
    // Pages of one message: ten messages take ten pages.
    let server = TestServer::start_with(|c| c.limits.max_history_page = 1).await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let (proxy, _, _) = Proxy::start(server.addr).await;
    let options = bot_options(proxy.addr, "bot").catch_up_limit(10);
    let mut bot = ReconnectingClient::connect(options)
        .await
        .expect("the bot connects");

    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    let mut seqs = Vec::new();
    for n in 1..=13 {
        let sent = alice
            .send_message(public, format!("away {n}"))
            .await
            .expect("send");
        seqs.push(sent.seq);
    }
    proxy.come_up(false);
    let events = events_until(&mut bot, is_reconnected).await;
    let skipped: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ReconnectEvent::MessagesSkipped { room, first, last } => Some((*room, *first, *last)),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, [(public, seqs[0], seqs[2])], "{events:#?}");
    let newest: Vec<String> = (4..=13).map(|n| format!("away {n}")).collect();
    assert_eq!(message_texts(&events), newest, "{events:#?}");
    assert_eq!(reconnected(&events).caught_up, 10);
    drop(proxy);
    server.stop().await;
}

/// A direct chat someone opened while the bot was away is caught up from its first message,
/// and a room the bot was added to from when it was added: nothing is lost because the room
/// was new to the bot.
#[tokio::test]
async fn rooms_new_while_the_bot_was_away_are_caught_up_from_my_read_marker() {
    let server = TestServer::start().await;
    let (dave, _) = server.user("dave").await;
    let (carol, _) = server.user("carol").await;
    let (proxy, _, _) = Proxy::start(server.addr).await;
    let mut bot = ReconnectingClient::connect(bot_options(proxy.addr, "bot"))
        .await
        .expect("the bot connects");
    let side = carol
        .create_room("side", chatroom_protocol::Visibility::Private)
        .await
        .expect("create");
    carol
        .send_message(side.id, "before the bot came")
        .await
        .expect("send");

    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    // Dave never wrote to the bot: this is seq 1 of a new direct chat.
    let direct = dave.open_direct("bot").await.expect("open");
    for text in ["dm 1", "dm 2"] {
        dave.send_message(direct.id, text).await.expect("send");
    }
    carol.invite(side.id, "bot").await.expect("invite");
    carol
        .send_message(side.id, "after the bot came")
        .await
        .expect("send");
    proxy.come_up(false);

    let events = events_until(&mut bot, is_reconnected).await;
    let texts = message_texts(&events);
    let in_direct: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| t.starts_with("dm"))
        .collect();
    assert_eq!(in_direct, ["dm 1", "dm 2"], "{events:#?}");
    assert!(
        texts.contains(&"after the bot came") && !texts.contains(&"before the bot came"),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ReconnectEvent::MessagesSkipped { .. })),
        "{events:#?}"
    );
    assert_eq!(reconnected(&events).caught_up, texts.len());
    drop(proxy);
    server.stop().await;
}

/// A room of `.join()` the server refuses (a ban, a name that does not exist) does not stop the
/// bot: it connects, says which room and why first, and runs in the others.
#[tokio::test]
async fn a_refused_join_at_start_is_an_event_naming_the_room_not_a_failure() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    server.user("bot").await;
    let dev = alice
        .create_room("dev", chatroom_protocol::Visibility::Public)
        .await
        .expect("create");
    alice.ban(dev.id, "bot", None).await.expect("ban");
    let options = bot_options(server.addr, "bot")
        .join("dev")
        .join("no-such-room");
    let mut bot = ReconnectingClient::connect(options)
        .await
        .expect("the bot connects all the same");

    let mut refused = Vec::new();
    for _ in 0..2 {
        let first = tokio::time::timeout(PATIENCE, bot.next_event())
            .await
            .expect("in time")
            .expect("running");
        let note = first.connection_note();
        match first {
            ReconnectEvent::JoinRefused { room, error } => {
                let note = note.expect("a note");
                assert!(note.contains(&room), "{note}");
                refused.push((room, error.code()));
            }
            other => panic!("the refusals come first: {other:?}"),
        }
    }
    assert_eq!(
        refused,
        [
            ("dev".to_string(), Some(ErrorCode::Forbidden)),
            ("no-such-room".to_string(), Some(ErrorCode::RoomNotFound)),
        ]
    );
    let public = public_room(&alice).await;
    alice
        .send_message(public, "still here")
        .await
        .expect("send");
    let events = events_until_message(&mut bot, "still here").await;
    assert_eq!(message_texts(&events), ["still here"], "{events:#?}");
    server.stop().await;
}

/// Across runs of the bot's process: what it marked read is not delivered again, what was
/// posted (or not marked) while it was not running is, once, before anything live.
#[tokio::test]
async fn a_new_run_catches_up_from_the_read_markers_the_last_one_moved() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let options = bot_options(server.addr, "bot").catch_up_from_read_markers();
    let mut bot = ReconnectingClient::connect(options.clone())
        .await
        .expect("the bot connects");
    events_until(&mut bot, |e| {
        matches!(e, ReconnectEvent::CaughtUpOnStart { .. })
    })
    .await;
    let mut sent = Vec::new();
    for text in ["one", "two"] {
        sent.push(alice.send_message(public, text).await.expect("send").seq);
    }
    events_until_message(&mut bot, "two").await;
    // "one" handled and marked; "two" handled, and the bot stops before marking it.
    bot.mark_read(public, sent[0]).await.expect("mark");
    drop(bot);
    alice.send_message(public, "three").await.expect("send");

    let mut bot = ReconnectingClient::connect(options)
        .await
        .expect("the bot connects again");
    let events = events_until(&mut bot, |e| {
        matches!(e, ReconnectEvent::CaughtUpOnStart { .. })
    })
    .await;
    assert_eq!(message_texts(&events), ["two", "three"], "{events:#?}");
    assert!(
        matches!(
            events.last(),
            Some(ReconnectEvent::CaughtUpOnStart { caught_up: 2 })
        ),
        "{events:#?}"
    );
    alice.send_message(public, "four").await.expect("send");
    let events = events_until_message(&mut bot, "four").await;
    assert_eq!(message_texts(&events), ["four"], "each once: {events:#?}");
    server.stop().await;
}

/// Options that join `dev` only (the proxies here refuse the first joins they see).
fn joining_dev(addr: SocketAddr) -> ReconnectOptions {
    ReconnectOptions::new(addr.to_string(), "bot", PASSWORD)
        .register_if_missing()
        .join("dev")
        .retry_delays(Duration::from_millis(50), Duration::from_millis(500))
}

/// A rate limit passes: a join at start refused as too fast is asked again, after the retry
/// delays, and the bot is in the room without a refusal reported.
#[tokio::test]
async fn a_join_refused_as_too_fast_at_start_is_asked_again() {
    join_asked_again_after(2, ErrorCode::RateLimited, "too many requests; slow down").await;
}

/// A server failing for a moment (its storage refusing the write) is not taken for a refusal
/// for good: the join is asked again, and the bot is in the room.
#[tokio::test]
async fn a_join_refused_by_a_failing_server_at_start_is_asked_again() {
    join_asked_again_after(1, ErrorCode::Internal, "internal server error").await;
}

/// The bot's join of `dev` at start is refused `refusals` times with `code`, then let through:
/// it is in the room and gets its messages, with no refusal reported.
async fn join_asked_again_after(refusals: u32, code: ErrorCode, message: &str) {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    let (proxy, _, _) = Proxy::start(server.addr).await;
    proxy.refuse_joins_with(refusals, code, message);
    let mut bot = tokio::time::timeout(
        PATIENCE,
        ReconnectingClient::connect(joining_dev(proxy.addr)),
    )
    .await
    .expect("in time")
    .expect("the bot connects");
    assert_eq!(proxy.joins_refused(), refusals);
    let rooms = bot.my_rooms().await.expect("rooms");
    assert!(rooms.iter().any(|r| r.id == dev.id), "{rooms:#?}");

    alice.send_message(dev.id, "in dev").await.expect("send");
    let events = events_until_message(&mut bot, "in dev").await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ReconnectEvent::JoinRefused { .. })),
        "{events:#?}"
    );
    drop(proxy);
    server.stop().await;
}

/// A rate limit that does not pass is not waited out forever: after the bounded retries the
/// join is reported refused, with the server's code, and the bot runs without the room.
#[tokio::test]
async fn a_join_still_too_fast_after_the_retries_is_reported_refused() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    let (proxy, _, _) = Proxy::start(server.addr).await;
    proxy.refuse_joins(u32::MAX);
    let mut bot = tokio::time::timeout(
        PATIENCE,
        ReconnectingClient::connect(joining_dev(proxy.addr)),
    )
    .await
    .expect("the retries end")
    .expect("the bot connects all the same");
    assert_eq!(
        proxy.joins_refused(),
        1 + chatroom_protocol::reconnecting::JOIN_RETRIES
    );
    let first = tokio::time::timeout(PATIENCE, bot.next_event())
        .await
        .expect("in time")
        .expect("running");
    match first {
        ReconnectEvent::JoinRefused { room, error } => {
            assert_eq!(
                (room.as_str(), error.code()),
                ("dev", Some(ErrorCode::RateLimited))
            );
        }
        other => panic!("the refusal comes first: {other:?}"),
    }
    drop(proxy);
    server.stop().await;
}

/// What a moderator bot does goes through the reconnecting handle: requests made while the
/// connection is down wait for it to come back (like `send_message`) and then take effect,
/// and once the client has stopped they fail as stopped.
#[tokio::test]
async fn moderation_requests_made_while_disconnected_wait_for_the_connection() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let (dave, _) = server.user("dave").await;
    let dev = alice
        .create_room("dev", Visibility::Public)
        .await
        .expect("create");
    for member in [&bob, &carol, &dave] {
        member.join_room("dev").await.expect("join");
    }
    let spam = bob.send_message(dev.id, "spam").await.expect("send");
    let (proxy, _, _) = Proxy::start(server.addr).await;
    let mut bot = ReconnectingClient::connect(bot_options(proxy.addr, "mod-bot").join("dev"))
        .await
        .expect("the bot connects");
    alice
        .set_role(dev.id, "mod-bot", RoomRole::Moderator)
        .await
        .expect("make it a moderator");

    proxy.go_down();
    events_until(&mut bot, is_disconnected).await;
    // One poll of `join!` starts them all while the link is down (the test's runtime has one
    // thread: the bot cannot reconnect in between); the proxy comes up in the same poll.
    let (kicked, banned, muted, deleted, topic, ()) = tokio::join!(
        bot.kick(dev.id, "bob", Some("spam".into())),
        bot.ban(dev.id, "carol", None),
        bot.mute(dev.id, "dave", None, None),
        bot.delete_message(dev.id, spam.seq),
        bot.set_topic(dev.id, "no spam"),
        async { proxy.come_up(false) },
    );
    let results = [kicked, banned, muted, deleted, topic];
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let info = bot.room_info(dev.id).await.expect("room info");
    assert_eq!(info.room.topic, "no spam");
    let members: Vec<&str> = info
        .members
        .iter()
        .map(|m| m.user.username.as_str())
        .collect();
    assert!(
        !members.contains(&"bob") && !members.contains(&"carol") && members.contains(&"dave"),
        "{members:?}"
    );
    let bans = bot.bans(dev.id).await.expect("bans");
    assert_eq!(
        bans.iter().map(|b| b.username.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    let mutes = bot.mutes(dev.id).await.expect("mutes");
    assert_eq!(
        mutes
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["dave"]
    );
    let page = bot
        .history(dev.id, HistoryAnchor::After(spam.seq - 1), 1)
        .await
        .expect("history");
    let kinds: Vec<_> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.kind.clone()))
        .collect();
    assert_eq!(kinds, [(spam.seq, MessageKind::Deleted)]);

    bot.unban(dev.id, "carol").await.expect("unban");
    bot.unmute(dev.id, "dave").await.expect("unmute");
    assert!(alice.bans(dev.id).await.expect("bans").is_empty());
    assert!(alice.mutes(dev.id).await.expect("mutes").is_empty());
    carol.join_room("dev").await.expect("carol may come back");
    for text in ["dave 1", "dave 2"] {
        dave.send_message(dev.id, text)
            .await
            .expect("unmuted: sent");
    }
    let deleted = bot
        .delete_messages_by(dev.id, "dave", Duration::from_secs(3600))
        .await
        .expect("delete dave's messages");
    assert_eq!(deleted, 2);

    bot.close();
    events_until(&mut bot, |e| matches!(e, ReconnectEvent::Stopped(_))).await;
    let refused = bot.kick(dev.id, "dave", None).await;
    assert!(
        matches!(&refused, Err(ReconnectError::Stopped(_))),
        "{refused:?}"
    );
    drop(proxy);
    server.stop().await;
}
