//! Chaos: a seeded, bounded random walk of a few users through the real server — messages,
//! edits, deletions, rooms public and private, invitations, moderation, direct chats, history,
//! read markers, search, presence, logouts, dropped connections and a restart — checked against
//! a small model of what the README ("What users get") and PROTOCOL.md promise:
//!
//! - every request is answered, in time, and no connection dies unasked;
//! - a room's history is gapless from seq 1, holds every acknowledged message once at its seq
//!   with its current text (or as deleted), and nothing but those and room notices;
//! - every connection open while a message was sent to a room its user was in gets it once,
//!   each room's messages in seq order, and no one outside the room at the time ever does;
//! - the members, owner, bans and mutes the server lists are those the model expects;
//! - unread counts are the others' live messages after the read marker, as history shows;
//! - search finds a message by its current words, for members only, and a deleted one never;
//! - all of it survives a restart, and the server still serves a new client at the end.
//!
//! A refusal the rules allow (not a member, banned, muted, not the owner…) is fine and counted;
//! a success they forbid, or a refusal with the wrong code, fails. A failure names the seed and
//! prints the tail of the operation log; each seed is its own test, so `cargo test --test e2e
//! chaos::seed_3` replays it.

use crate::support::*;
use chatroom_protocol::client::{Client, ClientError, ClientHandle};
use chatroom_protocol::{
    ErrorCode, Event, HistoryAnchor, HistoryPage, Message, MessageId, MessageKind, PresenceStatus,
    RoomId, RoomKind, RoomRole, SentMessage, Seq, UserId, Visibility,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The people who act. The first account of a server is its admin, who moderates every room
/// it is in; `ADMIN` takes that place and never acts, so roles stay those of the rooms.
const USERS: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];
const ADMIN: &str = "root";
/// Operations per seed; the server restarts halfway.
const OPS: usize = 600;
/// Full consistency checks, besides the ones after the restart and at the end.
const CHECK_EVERY: usize = 150;
/// Named rooms created at most (besides `public`).
const MAX_ROOMS: usize = 6;
/// Operations printed when a seed fails.
const LOG_TAIL: usize = 40;
/// History pages read for one room at most (rooms hold a few hundred messages at most).
const MAX_PAGES: usize = 50;

macro_rules! seeds {
    ($($name:ident = $seed:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                Chaos::run($seed).await;
            }
        )*
    };
}

seeds! {
    seed_1 = 0x5eed_0001;
    seed_2 = 0xc0ff_ee42;
    seed_3 = 0x0bad_cafe;
    seed_4 = 0x1234_5678_9abc;
    seed_5 = 0xdead_beef_0005;
    seed_6 = 0x7777_0006;
}

/// Other seeds, to explore or replay: `CHAOS_SEEDS=7,0x2a,100..164 cargo test --test e2e
/// chaos::chosen_seeds -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "runs the seeds named in CHAOS_SEEDS"]
async fn chosen_seeds() {
    let wanted = std::env::var("CHAOS_SEEDS").unwrap_or_default();
    let parse = |s: &str| match s.trim().strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.trim().parse(),
    };
    for part in wanted.split(',').filter(|p| !p.trim().is_empty()) {
        let (first, last) = match part.split_once("..") {
            Some((a, b)) => (parse(a), parse(b).map(|b| b.saturating_sub(1))),
            None => (parse(part), parse(part)),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            panic!("CHAOS_SEEDS: {part:?} is not a seed or a range a..b");
        };
        for seed in first..=last {
            Chaos::run(seed).await;
        }
    }
}

/// SplitMix64: small, seeded, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// What the model allows a request to answer.
struct Verdict {
    may_succeed: bool,
    codes: Vec<ErrorCode>,
    /// The docs say nothing about the outcome: any answer will do.
    anything: bool,
}

impl Verdict {
    fn ok() -> Self {
        Self {
            may_succeed: true,
            codes: Vec::new(),
            anything: false,
        }
    }

    /// Must be refused, with one of `codes` (or a code of another refusal that applies).
    fn refuse(&mut self, codes: &[ErrorCode]) {
        self.may_succeed = false;
        self.codes.extend_from_slice(codes);
    }

    /// May be refused with one of `codes`.
    fn maybe(&mut self, codes: &[ErrorCode]) {
        self.codes.extend_from_slice(codes);
    }
}

/// Who owns a named room, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Owner {
    Nobody,
    User(usize),
    /// The owner left and nobody who could ask was online: the next room list says.
    Unknown,
}

/// A mute the model knows of. A kick or ban of a muted member leaves it unsure: the docs only
/// say that leaving and joining again keeps a mute.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mute {
    Yes,
    Maybe,
}

struct RoomModel {
    id: RoomId,
    name: String,
    kind: RoomKind,
    /// The built-in `public`: everyone is in it, it has no owner, it cannot be left.
    builtin: bool,
    members: BTreeSet<usize>,
    owner: Owner,
    banned: BTreeSet<usize>,
    muted: BTreeMap<usize, Mute>,
}

struct MessageModel {
    id: MessageId,
    sender: usize,
    /// The text as sent, which the `Message` event carries.
    sent: String,
    /// The search token of each text it had, the current one last.
    tokens: Vec<String>,
    text: String,
    edited: bool,
    deleted: bool,
    /// Users not in the room when it was sent: they must never get its event.
    outsiders: BTreeSet<usize>,
}

/// One logged-in connection and the events it has received.
struct Conn {
    user: usize,
    handle: ClientHandle,
    token: String,
    events: Arc<Mutex<Vec<Event>>>,
    /// Messages it must receive: sent to a room its user was in while it was open.
    owed: Vec<(RoomId, Seq)>,
}

struct Chaos {
    seed: u64,
    rng: Rng,
    server: Option<TestServer>,
    /// `USERS`, then `ADMIN`.
    names: Vec<String>,
    ids: Vec<UserId>,
    conns: Vec<Conn>,
    /// Tokens of sessions whose connection was closed without logging out, per user.
    parked: Vec<Vec<String>>,
    rooms: Vec<RoomModel>,
    messages: BTreeMap<(RoomId, Seq), MessageModel>,
    next_token: u64,
    op: usize,
    log: VecDeque<String>,
    /// Answers by kind of request, for the summary a passing seed prints.
    done: BTreeMap<String, usize>,
    refusals: BTreeMap<String, usize>,
}

impl Chaos {
    async fn run(seed: u64) {
        let server = TestServer::start_with(|c| {
            c.limits.messages_per_second = 100_000;
            c.limits.message_burst = 100_000;
            // No bot: its answers would be messages nobody in the model sent.
            c.ai.backend = chatroom_server::config::AiBackendKind::Off;
        })
        .await;
        let mut chaos = Chaos {
            seed,
            rng: Rng(seed),
            server: Some(server),
            names: USERS
                .iter()
                .chain([&ADMIN])
                .map(|n| n.to_string())
                .collect(),
            ids: Vec::new(),
            conns: Vec::new(),
            parked: vec![Vec::new(); USERS.len()],
            rooms: Vec::new(),
            messages: BTreeMap::new(),
            next_token: 0,
            op: 0,
            log: VecDeque::new(),
            done: BTreeMap::new(),
            refusals: BTreeMap::new(),
        };
        chaos.set_up().await;
        let started = std::time::Instant::now();
        while chaos.op < OPS {
            chaos.op += 1;
            if chaos.op == OPS / 2 {
                chaos.restart().await;
                chaos.check_everything().await;
            } else if chaos.op.is_multiple_of(CHECK_EVERY) {
                chaos.check_everything().await;
            } else {
                chaos.step().await;
            }
        }
        chaos.check_everything().await;
        chaos.fresh_client_is_served().await;
        eprintln!(
            "chaos seed {seed:#x}: {OPS} operations, {} messages, {} rooms in {:?}\n  \
             done: {:?}\n  refused: {:?}",
            chaos.messages.len(),
            chaos.rooms.len(),
            started.elapsed(),
            chaos.done,
            chaos.refusals
        );
        if let Some(server) = chaos.server.take() {
            server.stop().await;
        }
    }

    // ---- plumbing ----

    fn note(&mut self, line: String) {
        if self.log.len() == LOG_TAIL {
            self.log.pop_front();
        }
        self.log.push_back(format!("#{} {line}", self.op));
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        let tail: Vec<&str> = self.log.iter().map(String::as_str).collect();
        panic!(
            "chaos seed {:#x} failed at operation {}: {what}\nlast operations:\n  {}",
            self.seed,
            self.op,
            tail.join("\n  ")
        );
    }

    fn check(&self, holds: bool, what: impl FnOnce() -> String) {
        if !holds {
            self.fail(what());
        }
    }

    fn server(&self) -> &TestServer {
        match &self.server {
            Some(server) => server,
            None => self.fail("no server"),
        }
    }

    /// Sends a request and waits for its answer: the server's refusal code, or a failure of
    /// the seed when it does not answer in time or the connection breaks.
    async fn ask<T>(
        &mut self,
        what: String,
        answer: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ErrorCode> {
        match tokio::time::timeout(PATIENCE, answer).await {
            Err(_) => self.fail(format!("{what}: no answer within {PATIENCE:?}")),
            Ok(Ok(value)) => {
                *self.done.entry(verb_of(&what)).or_default() += 1;
                self.note(format!("{what} -> ok"));
                Ok(value)
            }
            Ok(Err(ClientError::Server(body))) => {
                self.note(format!("{what} -> {:?}", body.code));
                let refusal = format!("{} {:?}", verb_of(&what), body.code);
                *self.refusals.entry(refusal).or_default() += 1;
                Err(body.code)
            }
            Ok(Err(e)) => self.fail(format!("{what}: the connection failed: {e}")),
        }
    }

    /// Checks an answer against what the model allows.
    fn judge<T>(&self, what: &str, verdict: &Verdict, answer: &Result<T, ErrorCode>) {
        match answer {
            Ok(_) => self.check(verdict.may_succeed || verdict.anything, || {
                format!(
                    "{what} succeeded; expected a refusal with one of {:?}",
                    verdict.codes
                )
            }),
            Err(code) => self.check(verdict.anything || verdict.codes.contains(code), || {
                format!(
                    "{what} was refused with {code:?}; expected {}{:?}",
                    if verdict.may_succeed {
                        "success or "
                    } else {
                        ""
                    },
                    verdict.codes
                )
            }),
        }
    }

    async fn connect(&mut self) -> Client {
        let addr = self.server().addr;
        match tokio::time::timeout(PATIENCE, Client::connect(addr, "chaos")).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => self.fail(format!("connect: {e}")),
            Err(_) => self.fail("connect: no answer in time"),
        }
    }

    /// Makes a logged-in connection of `user`'s whose events are collected as they come.
    fn adopt(&mut self, user: usize, client: Client, token: String) {
        let (handle, mut events_in) = client.into_parts();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        tokio::spawn(async move {
            while let Some(event) = events_in.recv().await {
                if let Ok(mut sink) = sink.lock() {
                    sink.push(event);
                }
            }
        });
        self.conns.push(Conn {
            user,
            handle,
            token,
            events,
            owed: Vec::new(),
        });
    }

    async fn log_in(&mut self, user: usize) {
        let client = self.connect().await;
        let name = self.names[user].clone();
        let session = self
            .ask(format!("{name}: login"), client.login(&name, PASSWORD))
            .await;
        match session {
            Ok(session) => self.adopt(user, client, session.token),
            Err(code) => self.fail(format!("{name} cannot log in: {code:?}")),
        }
    }

    async fn resume(&mut self, user: usize, token: String) {
        let client = self.connect().await;
        let name = self.names[user].clone();
        let session = self
            .ask(format!("{name}: resume"), client.resume(&token))
            .await;
        match session {
            Ok(session) => {
                self.check(
                    session.user.id == self.ids[user] && session.token == token,
                    || format!("{name} resumed as {:?}", session.user),
                );
                self.adopt(user, client, token);
            }
            Err(code) => self.fail(format!("{name} cannot resume: {code:?}")),
        }
    }

    fn conn_of(&self, user: usize) -> Option<usize> {
        self.conns.iter().position(|c| c.user == user)
    }

    fn room_index(&self, id: RoomId) -> usize {
        match self.rooms.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => self.fail(format!("room {id:?} is not in the model")),
        }
    }

    fn token(&mut self) -> String {
        self.next_token += 1;
        format!("q{}", self.next_token)
    }

    /// A message text around a token of its own, for search.
    fn text(&mut self, token: &str) -> String {
        const SHAPES: [&str; 6] = [
            "hello {}",
            "héllo {} 你好",
            "two\nlines {}",
            "{}\tand a tab",
            "👋 {} wave",
            "我们明天发布 {} 新版本",
        ];
        let shape = SHAPES[self.rng.below(SHAPES.len())];
        shape.replace("{}", token)
    }

    // ---- set-up, restart, the end ----

    async fn set_up(&mut self) {
        let (admin, admin_session) = self.server().user(ADMIN).await;
        let public = public_room(&admin).await;
        drop(admin);
        let mut ids = Vec::new();
        for user in 0..USERS.len() {
            let client = self.connect().await;
            let name = self.names[user].clone();
            match self
                .ask(
                    format!("{name}: register"),
                    client.register(&name, PASSWORD),
                )
                .await
            {
                Ok(session) => {
                    ids.push(session.user.id);
                    self.adopt(user, client, session.token);
                }
                Err(code) => self.fail(format!("{name} cannot register: {code:?}")),
            }
        }
        ids.push(admin_session.user.id);
        self.ids = ids;
        self.rooms.push(RoomModel {
            id: public,
            name: "public".into(),
            kind: RoomKind::Public,
            builtin: true,
            members: (0..=USERS.len()).collect(),
            owner: Owner::Nobody,
            banned: BTreeSet::new(),
            muted: BTreeMap::new(),
        });
    }

    async fn restart(&mut self) {
        self.note("restart".into());
        self.settle_all().await;
        for conn in std::mem::take(&mut self.conns) {
            self.parked[conn.user].push(conn.token.clone());
        }
        let Some(server) = self.server.take() else {
            self.fail("no server to restart");
        };
        self.server = Some(server.restart().await);
        for user in 0..USERS.len() {
            for token in std::mem::take(&mut self.parked[user]) {
                self.resume(user, token).await;
            }
        }
    }

    async fn fresh_client_is_served(&mut self) {
        let client = self.connect().await;
        let session = self
            .ask(
                "newcomer: register".into(),
                client.register("zed", PASSWORD),
            )
            .await;
        if let Err(code) = session {
            self.fail(format!("a new account is refused: {code:?}"));
        }
        let rooms = self.ask("newcomer: rooms".into(), client.my_rooms()).await;
        let public = self.rooms[0].id;
        self.check(
            rooms.is_ok_and(|rooms| rooms.iter().any(|r| r.id == public)),
            || "a new account is not in public".into(),
        );
        let pong = self.ask("newcomer: ping".into(), client.ping()).await;
        self.check(pong.is_ok(), || "the server does not answer a ping".into());
    }

    // ---- events ----

    /// Waits (boundedly) until `conn` has every message it is owed, then checks its events.
    async fn settle(&mut self, conn: usize) {
        if let Some(why) = self.conns[conn].handle.close_error() {
            let name = &self.names[self.conns[conn].user];
            self.fail(format!("the server closed a connection of {name}: {why}"));
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let missing = {
                let c = &self.conns[conn];
                let seen = received(&c.events);
                c.owed
                    .iter()
                    .filter(|key| !seen.contains(key))
                    .copied()
                    .collect::<Vec<_>>()
            };
            if missing.is_empty() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let name = &self.names[self.conns[conn].user];
                self.fail(format!(
                    "a connection of {name} never got the messages {missing:?} of rooms it was in"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.check_events(conn);
    }

    async fn settle_all(&mut self) {
        for conn in 0..self.conns.len() {
            self.settle(conn).await;
        }
    }

    /// Each message once, each room's in seq order, as sent, and only to members.
    fn check_events(&self, conn: usize) {
        let c = &self.conns[conn];
        let name = &self.names[c.user];
        let events = match c.events.lock() {
            Ok(events) => events.clone(),
            Err(_) => self.fail("event log poisoned"),
        };
        let mut newest: BTreeMap<RoomId, Seq> = BTreeMap::new();
        for event in &events {
            let Event::Message(m) = event else { continue };
            if let Some(&before) = newest.get(&m.room) {
                self.check(m.seq > before, || {
                    format!(
                        "{name} got seq {} of room {:?} after seq {before} (again or out of order)",
                        m.seq, m.room
                    )
                });
            }
            newest.insert(m.room, m.seq);
            if let Some(model) = self.messages.get(&(m.room, m.seq)) {
                self.check(
                    m.id == model.id && m.text == model.sent && m.kind == MessageKind::Text,
                    || format!("{name} got {m:?} for the message sent as {:?}", model.sent),
                );
                self.check(!model.outsiders.contains(&c.user), || {
                    format!("{name} got {m:?} of a room they were not in when it was sent",)
                });
            }
        }
    }

    /// Closes `conn`, after it got what it was owed; its token goes to `parked` unless logged out.
    async fn close(&mut self, conn: usize, park: bool) {
        self.settle(conn).await;
        let c = self.conns.remove(conn);
        c.handle.close();
        if park {
            self.parked[c.user].push(c.token);
        }
    }

    // ---- the random walk ----

    async fn step(&mut self) {
        let user = self.rng.below(USERS.len());
        let Some(conn) = self.conn_of(user) else {
            if self.rng.chance(60) {
                self.come_back(user).await;
            }
            return;
        };
        match self.rng.below(100) {
            0..=23 => self.send(conn).await,
            24..=27 => self.burst(conn).await,
            28..=33 => self.direct(conn).await,
            34..=41 => self.edit(conn).await,
            42..=46 => self.delete(conn).await,
            47..=50 => self.create(conn).await,
            51..=57 => self.join(conn).await,
            58..=61 => self.leave(conn).await,
            62..=66 => self.invite(conn).await,
            67..=76 => self.moderate(conn).await,
            77..=80 => self.history(conn).await,
            81..=84 => self.mark_read(conn).await,
            85..=88 => self.search(conn).await,
            89..=91 => self.presence(conn).await,
            92..=93 => self.relogin(conn).await,
            94..=96 => self.reconnect(conn).await,
            97..=98 => self.go_offline(user).await,
            _ => self.second_device(user).await,
        }
    }

    /// A room for `user` to act in: mostly one they are in, sometimes any.
    fn pick_room(&mut self, user: usize, named_only: bool) -> usize {
        let fits = |r: &RoomModel| !named_only || r.kind != RoomKind::Direct;
        let mine: Vec<usize> = (0..self.rooms.len())
            .filter(|&i| self.rooms[i].members.contains(&user) && fits(&self.rooms[i]))
            .collect();
        let all: Vec<usize> = (0..self.rooms.len())
            .filter(|&i| fits(&self.rooms[i]))
            .collect();
        let from = if !mine.is_empty() && self.rng.chance(80) {
            mine
        } else {
            all
        };
        self.rng.pick(&from).unwrap_or(0)
    }

    fn pick_other(&mut self, user: usize) -> usize {
        (user + 1 + self.rng.below(USERS.len() - 1)) % USERS.len()
    }

    /// Refusals of a request that needs membership.
    fn membership(&self, user: usize, room: usize) -> Verdict {
        let mut verdict = Verdict::ok();
        if !self.rooms[room].members.contains(&user) {
            verdict.refuse(&[ErrorCode::NotMember, ErrorCode::RoomNotFound]);
        }
        verdict
    }

    /// Refusals of a request that posts.
    fn posting(&self, user: usize, room: usize) -> Verdict {
        let mut verdict = self.membership(user, room);
        match self.rooms[room].muted.get(&user) {
            Some(Mute::Yes) => verdict.refuse(&[ErrorCode::Forbidden]),
            Some(Mute::Maybe) => verdict.maybe(&[ErrorCode::Forbidden]),
            None => {}
        }
        verdict
    }

    /// Refusals of a request for the room's owner (no one here is a moderator).
    fn owning(&self, user: usize, room: usize, verdict: &mut Verdict) {
        let r = &self.rooms[room];
        if r.builtin || r.kind == RoomKind::Direct {
            verdict.refuse(&[ErrorCode::Forbidden]);
            return;
        }
        match r.owner {
            Owner::User(owner) if owner == user => {}
            Owner::Unknown => verdict.maybe(&[ErrorCode::Forbidden]),
            _ => verdict.refuse(&[ErrorCode::Forbidden]),
        }
    }

    /// A mute the model was unsure of shows in what a post by `user` answered.
    fn learn_mute(&mut self, user: usize, room: usize, answer_ok: bool) {
        let r = &mut self.rooms[room];
        if r.muted.get(&user) == Some(&Mute::Maybe) && r.members.contains(&user) {
            if answer_ok {
                r.muted.remove(&user);
            } else {
                r.muted.insert(user, Mute::Yes);
            }
        }
    }

    async fn send(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let room = self.pick_room(user, false);
        let token = self.token();
        let text = self.text(&token);
        self.post(conn, room, token, text).await;
    }

    async fn post(&mut self, conn: usize, room: usize, token: String, text: String) {
        let user = self.conns[conn].user;
        let (id, what) = (
            self.rooms[room].id,
            format!(
                "{}: send {token} to {}",
                self.names[user], self.rooms[room].name
            ),
        );
        let handle = self.conns[conn].handle.clone();
        let answer = self
            .ask(what.clone(), handle.send_message(id, text.clone()))
            .await;
        self.posted(user, room, &what, answer, token, text);
    }

    /// Judges the answer to a post by `user` and, if it was stored, records the message and
    /// owes it to every connection of the room's members.
    fn posted(
        &mut self,
        user: usize,
        room: usize,
        what: &str,
        answer: Result<SentMessage, ErrorCode>,
        token: String,
        text: String,
    ) {
        let id = self.rooms[room].id;
        let verdict = self.posting(user, room);
        self.judge(what, &verdict, &answer);
        self.learn_mute(user, room, answer.is_ok());
        let Ok(ack) = answer else { return };
        self.check(ack.room == id, || {
            format!("{what}: acknowledged in {:?}", ack.room)
        });
        self.check(!self.messages.contains_key(&(id, ack.seq)), || {
            format!(
                "{what}: acknowledged with seq {}, which another message has",
                ack.seq
            )
        });
        let members = self.rooms[room].members.clone();
        for c in &mut self.conns {
            if members.contains(&c.user) {
                c.owed.push((id, ack.seq));
            }
        }
        self.messages.insert(
            (id, ack.seq),
            MessageModel {
                id: ack.id,
                sender: user,
                sent: text.clone(),
                tokens: vec![token],
                text,
                edited: false,
                deleted: false,
                outsiders: (0..USERS.len()).filter(|u| !members.contains(u)).collect(),
            },
        );
    }

    /// Several members post to one room at once, from their own connections: the acks and
    /// the events must still agree on one gapless order.
    async fn burst(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let room = self.pick_room(user, false);
        let members = &self.rooms[room].members;
        let senders: Vec<usize> = (0..self.conns.len())
            .filter(|&c| members.contains(&self.conns[c].user))
            .collect();
        let id = self.rooms[room].id;
        let mut planned = Vec::new();
        let mut answers = tokio::task::JoinSet::new();
        for i in 0..2 + self.rng.below(7) {
            let Some(sender) = self.rng.pick(&senders) else {
                return;
            };
            let token = self.token();
            let text = self.text(&token);
            let handle = self.conns[sender].handle.clone();
            let sending = text.clone();
            answers.spawn(async move {
                let answer = tokio::time::timeout(PATIENCE, handle.send_message(id, sending));
                (i, answer.await)
            });
            planned.push((self.conns[sender].user, token, text));
        }
        let mut results = Vec::new();
        while let Some(joined) = answers.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(e) => self.fail(format!("a burst sender failed: {e}")),
            }
        }
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            let (sender, token, text) = planned[i].clone();
            let what = format!(
                "{}: burst {token} to {}",
                self.names[sender], self.rooms[room].name
            );
            let answer = match result {
                Err(_) => self.fail(format!("{what}: no answer within {PATIENCE:?}")),
                Ok(Ok(ack)) => Ok(ack),
                Ok(Err(ClientError::Server(body))) => Err(body.code),
                Ok(Err(e)) => self.fail(format!("{what}: the connection failed: {e}")),
            };
            self.note(format!("{what} -> {:?}", answer.as_ref().map(|a| a.seq)));
            self.posted(sender, room, &what, answer, token, text);
        }
    }

    async fn direct(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let other = self.pick_other(user);
        let what = format!(
            "{}: open a direct chat with {}",
            self.names[user], self.names[other]
        );
        let handle = self.conns[conn].handle.clone();
        let name = self.names[other].clone();
        let summary = match self.ask(what.clone(), handle.open_direct(&name)).await {
            Ok(summary) => summary,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        self.check(
            summary.kind == RoomKind::Direct && summary.name == name,
            || format!("{what}: got {summary:?}"),
        );
        let pair: BTreeSet<usize> = [user, other].into();
        let known = self
            .rooms
            .iter()
            .position(|r| r.kind == RoomKind::Direct && r.members == pair);
        let room = match known {
            Some(i) => {
                self.check(self.rooms[i].id == summary.id, || {
                    format!("{what}: a second chat {:?} for the same two", summary.id)
                });
                i
            }
            None => {
                self.rooms.push(RoomModel {
                    id: summary.id,
                    name: format!("{}+{}", self.names[user], name),
                    kind: RoomKind::Direct,
                    builtin: false,
                    members: pair,
                    owner: Owner::Nobody,
                    banned: BTreeSet::new(),
                    muted: BTreeMap::new(),
                });
                self.rooms.len() - 1
            }
        };
        let token = self.token();
        let text = self.text(&token);
        self.post(conn, room, token, text).await;
    }

    /// A message of the model, mostly one `user` sent.
    fn pick_message(&mut self, user: usize) -> Option<(RoomId, Seq)> {
        let keys: Vec<(RoomId, Seq)> = self.messages.keys().copied().collect();
        let own: Vec<(RoomId, Seq)> = keys
            .iter()
            .copied()
            .filter(|k| self.messages[k].sender == user)
            .collect();
        if !own.is_empty() && self.rng.chance(75) {
            self.rng.pick(&own)
        } else {
            self.rng.pick(&keys)
        }
    }

    async fn edit(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let Some(key) = self.pick_message(user) else {
            return;
        };
        let room = self.room_index(key.0);
        let token = self.token();
        let text = format!("edited: {}", self.text(&token));
        let what = format!("{}: edit {:?} to {token}", self.names[user], key);
        let mut verdict = self.posting(user, room);
        let model = &self.messages[&key];
        if model.sender != user {
            verdict.refuse(&[ErrorCode::Forbidden]);
        }
        if model.deleted {
            verdict.refuse(&[ErrorCode::BadRequest]);
        }
        let handle = self.conns[conn].handle.clone();
        let answer = self
            .ask(
                what.clone(),
                handle.edit_message(key.0, key.1, text.clone()),
            )
            .await;
        self.judge(&what, &verdict, &answer);
        if self.messages[&key].sender == user && !self.messages[&key].deleted {
            self.learn_mute(user, room, answer.is_ok());
        }
        if answer.is_ok()
            && let Some(model) = self.messages.get_mut(&key)
        {
            model.text = text;
            model.tokens.push(token);
            model.edited = true;
        }
    }

    async fn delete(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let Some(key) = self.pick_message(user) else {
            return;
        };
        let room = self.room_index(key.0);
        let what = format!("{}: delete {key:?}", self.names[user]);
        let mut verdict = self.membership(user, room);
        let model = &self.messages[&key];
        if model.sender != user {
            self.owning(user, room, &mut verdict);
        }
        // Deleting what is deleted already: the docs do not say.
        verdict.anything = model.deleted && verdict.may_succeed;
        let handle = self.conns[conn].handle.clone();
        let answer = self
            .ask(what.clone(), handle.delete_message(key.0, key.1))
            .await;
        self.judge(&what, &verdict, &answer);
        if answer.is_ok() {
            self.learn_owner(user, room, self.messages[&key].sender != user);
            if let Some(model) = self.messages.get_mut(&key) {
                model.deleted = true;
            }
        }
    }

    /// Only the owner may do what `user` just did to someone else's: so they own the room.
    fn learn_owner(&mut self, user: usize, room: usize, owners_only: bool) {
        let r = &mut self.rooms[room];
        if owners_only && r.owner == Owner::Unknown {
            r.owner = Owner::User(user);
        }
    }

    async fn create(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let named = self
            .rooms
            .iter()
            .filter(|r| r.kind != RoomKind::Direct)
            .count();
        let handle = self.conns[conn].handle.clone();
        if named > 1 && self.rng.chance(15) {
            // A taken name in other letters.
            let names: Vec<usize> = (0..self.rooms.len())
                .filter(|&i| self.rooms[i].kind != RoomKind::Direct)
                .collect();
            let Some(taken) = self.rng.pick(&names) else {
                return;
            };
            let name = self.rooms[taken].name.to_uppercase();
            let what = format!("{}: create {name}", self.names[user]);
            let answer = self
                .ask(what.clone(), handle.create_room(&name, Visibility::Public))
                .await;
            let mut verdict = Verdict::ok();
            verdict.refuse(&[ErrorCode::RoomNameTaken]);
            self.judge(&what, &verdict, &answer);
            return;
        }
        if named > MAX_ROOMS {
            return;
        }
        let private = self.rng.chance(40);
        let name = format!("r{}", self.next_token);
        self.next_token += 1;
        let visibility = if private {
            Visibility::Private
        } else {
            Visibility::Public
        };
        let what = format!("{}: create {name} {visibility:?}", self.names[user]);
        let summary = match self
            .ask(what.clone(), handle.create_room(&name, visibility))
            .await
        {
            Ok(summary) => summary,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        let kind = if private {
            RoomKind::Private
        } else {
            RoomKind::Public
        };
        self.check(
            summary.kind == kind
                && summary.my_role == Some(RoomRole::Owner)
                && summary.member_count == 1,
            || format!("{what}: got {summary:?}"),
        );
        self.rooms.push(RoomModel {
            id: summary.id,
            name,
            kind,
            builtin: false,
            members: [user].into(),
            owner: Owner::User(user),
            banned: BTreeSet::new(),
            muted: BTreeMap::new(),
        });
    }

    async fn join(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let room = self.pick_room(user, true);
        let r = &self.rooms[room];
        let name = if self.rng.chance(30) {
            r.name.to_uppercase()
        } else {
            r.name.clone()
        };
        let member = r.members.contains(&user);
        let mut verdict = Verdict::ok();
        if !member {
            if r.kind == RoomKind::Private {
                verdict.refuse(&[ErrorCode::RoomNotFound, ErrorCode::Forbidden]);
            } else if r.banned.contains(&user) {
                verdict.refuse(&[ErrorCode::Forbidden]);
            }
        }
        let what = format!("{}: join {name}", self.names[user]);
        let handle = self.conns[conn].handle.clone();
        let answer = self.ask(what.clone(), handle.join_room(&name)).await;
        self.judge(&what, &verdict, &answer);
        let Ok(summary) = answer else { return };
        self.check(summary.id == self.rooms[room].id, || {
            format!("{what}: joined {summary:?}")
        });
        let r = &mut self.rooms[room];
        if !member {
            r.members.insert(user);
            if r.owner == Owner::Nobody {
                r.owner = Owner::User(user);
            }
        }
        let role = match r.owner {
            Owner::User(owner) if owner == user => Some(RoomRole::Owner),
            Owner::Unknown => summary.my_role,
            _ => Some(RoomRole::Member),
        };
        if r.owner == Owner::Unknown && summary.my_role == Some(RoomRole::Owner) {
            r.owner = Owner::User(user);
        }
        self.check(summary.my_role == role, || {
            format!(
                "{what}: my role is {:?}, expected {role:?}",
                summary.my_role
            )
        });
    }

    async fn leave(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        // Mostly a room that can be left.
        let leavable: Vec<usize> = (0..self.rooms.len())
            .filter(|&i| {
                let r = &self.rooms[i];
                !r.builtin && r.kind != RoomKind::Direct && r.members.contains(&user)
            })
            .collect();
        let room = match self.rng.pick(&leavable) {
            Some(room) if self.rng.chance(70) => room,
            _ => self.pick_room(user, false),
        };
        let mut verdict = self.membership(user, room);
        let r = &self.rooms[room];
        if r.builtin || r.kind == RoomKind::Direct {
            verdict.refuse(&[ErrorCode::Forbidden]);
        }
        let what = format!("{}: leave {}", self.names[user], r.name);
        let id = r.id;
        let handle = self.conns[conn].handle.clone();
        let answer = self.ask(what.clone(), handle.leave_room(id)).await;
        self.judge(&what, &verdict, &answer);
        if answer.is_ok() {
            self.remove_member(room, user, true).await;
        }
    }

    /// `user` is no longer in `room`; if they owned it, it passed to someone left in it. A
    /// mute outlasts leaving (`left`); after a kick or ban the docs do not say.
    async fn remove_member(&mut self, room: usize, user: usize, left: bool) {
        let r = &mut self.rooms[room];
        r.members.remove(&user);
        if let Some(mute) = r.muted.get_mut(&user)
            && !left
        {
            *mute = Mute::Maybe;
        }
        if r.owner != Owner::User(user) {
            return;
        }
        r.owner = if r.members.is_empty() {
            Owner::Nobody
        } else {
            Owner::Unknown
        };
        if r.owner == Owner::Unknown {
            self.find_owner(room).await;
        }
    }

    /// Asks the server who owns `room` now, if anyone online may see it.
    async fn find_owner(&mut self, room: usize) {
        let r = &self.rooms[room];
        let (id, public) = (r.id, r.kind == RoomKind::Public);
        let Some(conn) = self
            .conns
            .iter()
            .position(|c| public || r.members.contains(&c.user))
        else {
            return;
        };
        let handle = self.conns[conn].handle.clone();
        let what = format!("who owns {}", r.name);
        let info = match self.ask(what.clone(), handle.room_info(id)).await {
            Ok(info) => info,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        let owners: Vec<usize> = info
            .members
            .iter()
            .filter(|m| m.role == RoomRole::Owner)
            .filter_map(|m| self.ids.iter().position(|id| *id == m.user.id))
            .collect();
        let r = &self.rooms[room];
        self.check(owners.len() == 1 && r.members.contains(&owners[0]), || {
            format!(
                "{what}: the owner left and the room passed to {owners:?}, not to one member of {:?}",
                r.members
            )
        });
        self.rooms[room].owner = Owner::User(owners[0]);
    }

    async fn invite(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let room = self.pick_room(user, true);
        let target = self.pick_other(user);
        let mut verdict = self.membership(user, room);
        let r = &self.rooms[room];
        let private = r.kind == RoomKind::Private;
        if private {
            self.owning(user, room, &mut verdict);
        }
        if r.banned.contains(&target) {
            verdict.refuse(&[ErrorCode::Forbidden]);
        }
        if r.members.contains(&target) {
            verdict.refuse(&[ErrorCode::AlreadyMember]);
        }
        let what = format!(
            "{}: invite {} to {}",
            self.names[user], self.names[target], r.name
        );
        let (id, name) = (r.id, self.names[target].clone());
        let handle = self.conns[conn].handle.clone();
        let answer = self.ask(what.clone(), handle.invite(id, &name)).await;
        self.judge(&what, &verdict, &answer);
        if answer.is_ok() {
            self.learn_owner(user, room, private);
            self.rooms[room].members.insert(target);
        }
    }

    async fn moderate(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        // Mostly a room they own, where it can work.
        let owned: Vec<usize> = (0..self.rooms.len())
            .filter(|&i| self.rooms[i].owner == Owner::User(user))
            .collect();
        let room = match self.rng.pick(&owned) {
            Some(room) if self.rng.chance(75) => room,
            _ => self.pick_room(user, true),
        };
        let action = self.rng.below(5);
        // Mostly someone it can be done to: a member, the banned, the muted.
        let r = &self.rooms[room];
        let fitting: Vec<usize> = match action {
            2 => r.banned.iter().copied().collect(),
            4 => r.muted.keys().copied().collect(),
            _ => r.members.iter().copied().filter(|&u| u != user).collect(),
        };
        let fitting: Vec<usize> = fitting.into_iter().filter(|&u| u < USERS.len()).collect();
        let target = match self.rng.pick(&fitting) {
            Some(target) if self.rng.chance(70) => target,
            _ if self.rng.chance(10) => user,
            _ => self.pick_other(user),
        };
        let mut verdict = self.membership(user, room);
        self.owning(user, room, &mut verdict);
        let r = &self.rooms[room];
        let member = r.members.contains(&target);
        match action {
            0 => {
                if target == user {
                    verdict.refuse(&[ErrorCode::Forbidden]);
                }
                if !member {
                    verdict.refuse(&[ErrorCode::NotMember]);
                }
            }
            1 => {
                if target == user {
                    verdict.refuse(&[ErrorCode::BadRequest, ErrorCode::Forbidden]);
                }
            }
            2 => {
                if !r.banned.contains(&target) {
                    verdict.refuse(&[ErrorCode::BadRequest]);
                }
            }
            3 => {
                if target == user {
                    verdict.refuse(&[ErrorCode::BadRequest, ErrorCode::Forbidden]);
                }
                if !member {
                    verdict.refuse(&[ErrorCode::NotMember]);
                }
            }
            _ => {
                match r.muted.get(&target) {
                    None => verdict.refuse(&[ErrorCode::BadRequest]),
                    Some(Mute::Maybe) => verdict.maybe(&[ErrorCode::BadRequest]),
                    Some(Mute::Yes) => {}
                }
                // Only the owner acts here, so everyone else is below them; an owner lifts
                // their own mute (a room passes to a muted member), and a mute outlasts
                // leaving, so one of someone gone is lifted too (PROTOCOL.md, "Mutes").
            }
        }
        let verb = ["kick", "ban", "unban", "mute", "unmute"][action];
        let what = format!(
            "{}: {verb} {} in {}",
            self.names[user], self.names[target], r.name
        );
        let (id, name) = (r.id, self.names[target].clone());
        let handle = self.conns[conn].handle.clone();
        let answer = match action {
            0 => self.ask(what.clone(), handle.kick(id, &name, None)).await,
            1 => {
                let reason = Some("chaos".to_string());
                self.ask(what.clone(), handle.ban(id, &name, reason)).await
            }
            2 => self.ask(what.clone(), handle.unban(id, &name)).await,
            3 => {
                self.ask(what.clone(), handle.mute(id, &name, None, None))
                    .await
            }
            _ => self.ask(what.clone(), handle.unmute(id, &name)).await,
        };
        self.judge(&what, &verdict, &answer);
        if answer.is_err() {
            return;
        }
        self.learn_owner(user, room, true);
        match action {
            0 => self.remove_member(room, target, false).await,
            1 => {
                self.rooms[room].banned.insert(target);
                if member {
                    self.remove_member(room, target, false).await;
                }
            }
            2 => {
                self.rooms[room].banned.remove(&target);
            }
            3 => {
                self.rooms[room].muted.insert(target, Mute::Yes);
            }
            _ => {
                self.rooms[room].muted.remove(&target);
            }
        }
    }

    async fn history(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let room = self.pick_room(user, false);
        let id = self.rooms[room].id;
        let newest = self
            .messages
            .keys()
            .filter(|(r, _)| *r == id)
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(0);
        let anchor = match self.rng.below(3) {
            0 => HistoryAnchor::Latest,
            1 => HistoryAnchor::Before(self.rng.below(newest as usize + 3) as Seq),
            _ => HistoryAnchor::After(self.rng.below(newest as usize + 3) as Seq),
        };
        let limit = 1 + self.rng.below(30) as u32;
        let what = format!(
            "{}: history of {} {anchor:?} {limit}",
            self.names[user], self.rooms[room].name
        );
        let verdict = self.membership(user, room);
        let handle = self.conns[conn].handle.clone();
        let answer = self
            .ask(what.clone(), handle.history(id, anchor, limit))
            .await;
        self.judge(&what, &verdict, &answer);
        let Ok(page) = answer else { return };
        self.check(
            page.room == id && page.messages.len() <= limit as usize,
            || {
                format!(
                    "{what}: got a page of {} messages of {:?}",
                    page.messages.len(),
                    page.room
                )
            },
        );
        let seqs: Vec<Seq> = page.messages.iter().map(|m| m.seq).collect();
        self.check(seqs.windows(2).all(|w| w[1] == w[0] + 1), || {
            format!("{what}: seqs {seqs:?} are not consecutive")
        });
        match anchor {
            HistoryAnchor::Before(s) => {
                self.check(seqs.iter().all(|&q| q < s), || {
                    format!("{what}: got {seqs:?}")
                });
            }
            HistoryAnchor::After(s) => self
                .check(seqs.first().is_none_or(|&first| first == s + 1), || {
                    format!("{what}: got {seqs:?}")
                }),
            HistoryAnchor::Latest => {}
        }
        for m in &page.messages {
            self.check_stored(&what, m);
        }
    }

    /// A stored message is what the model says: an acknowledged one as it is now, or a notice.
    fn check_stored(&self, what: &str, m: &Message) {
        let Some(model) = self.messages.get(&(m.room, m.seq)) else {
            self.check(m.kind == MessageKind::System, || {
                format!("{what}: {m:?} is stored but was never acknowledged")
            });
            return;
        };
        let kind_ok = if model.deleted {
            m.kind == MessageKind::Deleted && m.text.is_empty()
        } else if model.edited {
            matches!(m.kind, MessageKind::Edited { .. }) && m.text == model.text
        } else {
            m.kind == MessageKind::Text && m.text == model.text
        };
        self.check(
            kind_ok && m.id == model.id && m.sender == self.ids[model.sender],
            || {
                format!(
                    "{what}: stored as {m:?}, expected {:?} by {} (edited {}, deleted {})",
                    model.text, self.names[model.sender], model.edited, model.deleted
                )
            },
        );
    }

    /// The whole history of a room, gapless from seq 1, through `conn`.
    async fn full_history(&mut self, conn: usize, room: usize) -> Vec<Message> {
        let id = self.rooms[room].id;
        let handle = self.conns[conn].handle.clone();
        let what = format!("full history of {}", self.rooms[room].name);
        let mut all: Vec<Message> = Vec::new();
        for _ in 0..MAX_PAGES {
            let after = all.last().map_or(0, |m| m.seq);
            let page: HistoryPage = match self
                .ask(
                    what.clone(),
                    handle.history(id, HistoryAnchor::After(after), 200),
                )
                .await
            {
                Ok(page) => page,
                Err(code) => self.fail(format!("{what}: refused with {code:?}")),
            };
            let more = page.has_more && !page.messages.is_empty();
            all.extend(page.messages);
            if !more {
                let seqs: Vec<Seq> = all.iter().map(|m| m.seq).collect();
                let gapless = seqs.iter().enumerate().all(|(i, &s)| s == i as Seq + 1);
                self.check(gapless, || {
                    format!("{what}: seqs {seqs:?} are not 1, 2, 3…")
                });
                for m in &all {
                    self.check_stored(&what, m);
                }
                let stored = all.len() as Seq;
                let lost: Vec<Seq> = self
                    .messages
                    .keys()
                    .filter(|(r, seq)| *r == id && *seq > stored)
                    .map(|(_, seq)| *seq)
                    .collect();
                self.check(lost.is_empty(), || {
                    format!("{what}: acknowledged messages {lost:?} are missing")
                });
                return all;
            }
        }
        self.fail(format!("{what}: more than {MAX_PAGES} pages"))
    }

    /// Others' live messages after `marker`: what `unread` counts.
    fn unread_in(&self, user: usize, history: &[Message], marker: Seq) -> u32 {
        history
            .iter()
            .filter(|m| m.seq > marker && m.sender != self.ids[user])
            .filter(|m| {
                matches!(
                    m.kind,
                    MessageKind::Text | MessageKind::Edited { .. } | MessageKind::File(_)
                )
            })
            .count() as u32
    }

    async fn mark_read(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let mine: Vec<usize> = (0..self.rooms.len())
            .filter(|&i| self.rooms[i].members.contains(&user))
            .collect();
        let Some(room) = self.rng.pick(&mine) else {
            return;
        };
        let history = self.full_history(conn, room).await;
        let newest = history.len() as Seq;
        let mark = self.rng.below(newest as usize + 3) as Seq;
        let id = self.rooms[room].id;
        let what = format!(
            "{}: mark {} read to {mark}",
            self.names[user], self.rooms[room].name
        );
        let handle = self.conns[conn].handle.clone();
        let answer = self.ask(what.clone(), handle.mark_read(id, mark)).await;
        self.judge(&what, &Verdict::ok(), &answer);
        let rooms = match self.ask(what.clone(), handle.my_rooms()).await {
            Ok(rooms) => rooms,
            Err(code) => self.fail(format!("{what}: my rooms refused with {code:?}")),
        };
        let Some(summary) = rooms.into_iter().find(|r| r.id == id) else {
            self.fail(format!("{what}: the room is not in my list"));
        };
        self.check(summary.last_read_seq >= mark.min(newest), || {
            format!("{what}: the marker is at {}", summary.last_read_seq)
        });
        if mark >= newest {
            self.check(
                summary.last_read_seq == newest && summary.unread == 0,
                || format!("{what}: everything read, yet {summary:?}"),
            );
        }
        let unread = self.unread_in(user, &history, summary.last_read_seq);
        self.check(summary.unread == unread, || {
            format!("{what}: {} unread, history says {unread}", summary.unread)
        });
    }

    async fn search(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let keys: Vec<(RoomId, Seq)> = self.messages.keys().copied().collect();
        let Some(key) = self.rng.pick(&keys) else {
            return;
        };
        let model = &self.messages[&key];
        let current = self.rng.chance(75);
        let token = if current {
            model.tokens[model.tokens.len() - 1].clone()
        } else {
            model.tokens[0].clone()
        };
        let findable = !model.deleted && (current || model.tokens.len() == 1);
        let room = self.room_index(key.0);
        let expect = usize::from(findable && self.rooms[room].members.contains(&user));
        let what = format!("{}: search {token}", self.names[user]);
        let handle = self.conns[conn].handle.clone();
        let page = match self
            .ask(what.clone(), handle.search(&token, None, None, 50))
            .await
        {
            Ok(page) => page,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        let ids: Vec<MessageId> = page.messages.iter().map(|m| m.id).collect();
        let id = self.messages[&key].id;
        self.check(
            ids.len() == expect && ids.iter().all(|found| *found == id),
            || format!("{what}: found {ids:?}, expected {expect} of {id:?}"),
        );
        for m in &page.messages {
            self.check_stored(&what, m);
        }
    }

    async fn presence(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let handle = self.conns[conn].handle.clone();
        let name = &self.names[user];
        let answer = match self.rng.below(4) {
            0 => {
                let what = format!("{name}: away");
                let away = handle.set_presence(PresenceStatus::Away, Some("lunch".into()));
                self.ask(what, away).await
            }
            1 => {
                let what = format!("{name}: online");
                self.ask(what, handle.set_presence(PresenceStatus::Online, None))
                    .await
            }
            idle => {
                let what = format!("{name}: idle {}", idle == 2);
                self.ask(what, handle.set_idle(idle == 2)).await
            }
        };
        self.check(answer.is_ok(), || format!("presence refused: {answer:?}"));
        let users = match self.ask("list users".into(), handle.list_users()).await {
            Ok(users) => users,
            Err(code) => self.fail(format!("list users refused: {code:?}")),
        };
        for c in &self.conns {
            let id = self.ids[c.user];
            let status = users.iter().find(|u| u.user.id == id).map(|u| u.status);
            self.check(
                matches!(status, Some(PresenceStatus::Online | PresenceStatus::Away)),
                || {
                    format!(
                        "{} is connected but listed as {status:?}",
                        self.names[c.user]
                    )
                },
            );
        }
    }

    async fn relogin(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let name = self.names[user].clone();
        let handle = self.conns[conn].handle.clone();
        let token = self.conns[conn].token.clone();
        // What it is owed comes before the logout, which may stop its events.
        self.settle(conn).await;
        let answer = self.ask(format!("{name}: logout"), handle.logout()).await;
        self.check(answer.is_ok(), || format!("logout refused: {answer:?}"));
        self.close(conn, false).await;
        let client = self.connect().await;
        let stale = self
            .ask(
                format!("{name}: resume after logout"),
                client.resume(&token),
            )
            .await;
        self.check(
            stale.as_ref().err() == Some(&ErrorCode::InvalidToken),
            || format!("a logged-out token resumed: {:?}", stale.map(|s| s.user)),
        );
        let session = self
            .ask(format!("{name}: login"), client.login(&name, PASSWORD))
            .await;
        match session {
            Ok(session) => self.adopt(user, client, session.token),
            Err(code) => self.fail(format!("{name} cannot log in again: {code:?}")),
        }
    }

    async fn reconnect(&mut self, conn: usize) {
        let user = self.conns[conn].user;
        let token = self.conns[conn].token.clone();
        self.note(format!("{}: drop the connection", self.names[user]));
        self.close(conn, false).await;
        self.resume(user, token).await;
    }

    async fn go_offline(&mut self, user: usize) {
        self.note(format!("{}: goes offline", self.names[user]));
        while let Some(conn) = self.conn_of(user) {
            self.close(conn, true).await;
        }
    }

    async fn come_back(&mut self, user: usize) {
        match self.parked[user].pop() {
            Some(token) => self.resume(user, token).await,
            None => self.log_in(user).await,
        }
    }

    async fn second_device(&mut self, user: usize) {
        if self.conns.iter().filter(|c| c.user == user).count() < 2 {
            self.log_in(user).await;
        }
    }

    // ---- the full check ----

    /// Everyone online, then every room's history, members, owner, bans and mutes, and every
    /// user's room list with its unread counts, against the model.
    async fn check_everything(&mut self) {
        self.note("check everything".into());
        for user in 0..USERS.len() {
            if self.conn_of(user).is_none() {
                self.come_back(user).await;
            }
        }
        self.settle_all().await;
        let mut histories: BTreeMap<RoomId, Vec<Message>> = BTreeMap::new();
        for room in 0..self.rooms.len() {
            let r = &self.rooms[room];
            let reader = self
                .conns
                .iter()
                .position(|c| r.members.contains(&c.user) || r.kind == RoomKind::Public);
            let Some(reader) = reader else {
                // A private room everyone left: nobody may look into it any more.
                continue;
            };
            if r.members.contains(&self.conns[reader].user) {
                let history = self.full_history(reader, room).await;
                histories.insert(self.rooms[room].id, history);
            }
            self.check_members(reader, room).await;
        }
        for user in 0..USERS.len() {
            let Some(conn) = self.conn_of(user) else {
                self.fail("everyone is online for the check");
            };
            self.check_room_list(conn, &histories).await;
        }
    }

    async fn check_members(&mut self, conn: usize, room: usize) {
        let r = &self.rooms[room];
        let (id, what) = (r.id, format!("members of {}", r.name));
        let handle = self.conns[conn].handle.clone();
        let info = match self.ask(what.clone(), handle.room_info(id)).await {
            Ok(info) => info,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        let listed: BTreeSet<&str> = info
            .members
            .iter()
            .map(|m| m.user.username.as_str())
            .collect();
        let r = &self.rooms[room];
        let expected: BTreeSet<&str> = r.members.iter().map(|&u| self.names[u].as_str()).collect();
        self.check(listed == expected, || {
            format!("{what}: the server lists {listed:?}, the model has {expected:?}")
        });
        let owners: Vec<usize> = info
            .members
            .iter()
            .filter(|m| m.role == RoomRole::Owner)
            .filter_map(|m| self.ids.iter().position(|id| *id == m.user.id))
            .collect();
        let moderators = info
            .members
            .iter()
            .filter(|m| m.role == RoomRole::Moderator)
            .count();
        let expected_owners = match r.owner {
            Owner::User(owner) => vec![owner],
            Owner::Nobody => Vec::new(),
            Owner::Unknown => owners.clone(),
        };
        self.check(
            owners == expected_owners
                && moderators == 0
                && (r.owner != Owner::Unknown || owners.len() == 1),
            || {
                format!(
                    "{what}: owners {owners:?} and {moderators} moderators; the model says {:?}",
                    r.owner
                )
            },
        );
        if r.owner == Owner::Unknown {
            self.rooms[room].owner = Owner::User(owners[0]);
        }
        // The owner sees the bans; any member the mutes.
        let r = &self.rooms[room];
        let Owner::User(owner) = r.owner else { return };
        let Some(owner_conn) = self.conn_of(owner) else {
            return;
        };
        let handle = self.conns[owner_conn].handle.clone();
        let bans = match self
            .ask(format!("bans of {}", r.name), handle.bans(id))
            .await
        {
            Ok(bans) => bans,
            Err(code) => self.fail(format!("bans of room {id:?} refused: {code:?}")),
        };
        let r = &self.rooms[room];
        let listed: BTreeSet<&str> = bans.iter().map(|b| b.username.as_str()).collect();
        let expected: BTreeSet<&str> = r.banned.iter().map(|&u| self.names[u].as_str()).collect();
        self.check(listed == expected, || {
            format!(
                "bans of {}: the server lists {listed:?}, the model has {expected:?}",
                r.name
            )
        });
        let mutes = match self
            .ask(format!("mutes of {}", r.name), handle.mutes(id))
            .await
        {
            Ok(mutes) => mutes,
            Err(code) => self.fail(format!("mutes of room {id:?} refused: {code:?}")),
        };
        let listed: BTreeSet<usize> = mutes
            .iter()
            .filter_map(|m| self.names.iter().position(|n| *n == m.username))
            .collect();
        let r = &mut self.rooms[room];
        let sure: BTreeSet<usize> = r
            .muted
            .iter()
            .filter(|(_, m)| **m == Mute::Yes)
            .map(|(u, _)| *u)
            .collect();
        let possible: BTreeSet<usize> = r.muted.keys().copied().collect();
        let fits = sure.is_subset(&listed) && listed.is_subset(&possible);
        let name = r.name.clone();
        r.muted = listed.iter().map(|&u| (u, Mute::Yes)).collect();
        self.check(fits, || {
            format!("mutes of {name}: the server lists {listed:?}, the model has {sure:?} and maybe {possible:?}")
        });
    }

    async fn check_room_list(&mut self, conn: usize, histories: &BTreeMap<RoomId, Vec<Message>>) {
        let user = self.conns[conn].user;
        let what = format!("{}: my rooms", self.names[user]);
        let handle = self.conns[conn].handle.clone();
        let rooms = match self.ask(what.clone(), handle.my_rooms()).await {
            Ok(rooms) => rooms,
            Err(code) => self.fail(format!("{what}: refused with {code:?}")),
        };
        let listed: BTreeSet<RoomId> = rooms.iter().map(|r| r.id).collect();
        let expected: BTreeSet<RoomId> = self
            .rooms
            .iter()
            .filter(|r| r.members.contains(&user))
            .map(|r| r.id)
            .collect();
        self.check(listed == expected, || {
            format!("{what}: the server lists {listed:?}, the model has {expected:?}")
        });
        for summary in &rooms {
            let r = &self.rooms[self.room_index(summary.id)];
            let role = match r.owner {
                Owner::User(owner) if owner == user => RoomRole::Owner,
                _ => RoomRole::Member,
            };
            self.check(
                summary.member_count as usize == r.members.len() && summary.my_role == Some(role),
                || {
                    format!(
                        "{what}: {summary:?}; the model has {:?} with owner {:?}",
                        r.members, r.owner
                    )
                },
            );
            let Some(history) = histories.get(&summary.id) else {
                continue;
            };
            let unread = self.unread_in(user, history, summary.last_read_seq);
            self.check(
                summary.latest_seq == history.len() as Seq && summary.unread == unread,
                || {
                    format!(
                        "{what}: {summary:?}; history has {} messages, {unread} unread after the marker",
                        history.len()
                    )
                },
            );
        }
    }
}

/// The request in a log line: "ann: send q3 to public" is a "send".
fn verb_of(what: &str) -> String {
    let after_name = what.split_once(": ").map_or(what, |(_, rest)| rest);
    after_name
        .split_whitespace()
        .next()
        .unwrap_or(after_name)
        .to_string()
}

/// The (room, seq) of every message event a connection has received.
fn received(events: &Mutex<Vec<Event>>) -> BTreeSet<(RoomId, Seq)> {
    match events.lock() {
        Ok(events) => events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some((m.room, m.seq)),
                _ => None,
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}
