//! A client that stays connected (feature `client`): what a bot is written against when it must
//! outlive server restarts and network drops without being restarted itself.
//!
//! [`ReconnectingClient::connect`] connects and logs in like [`Client`]; its first connect and
//! login return their error directly (a wrong password must not loop). A room of
//! [`ReconnectOptions::join`] the server refuses (banned, no such room) is not fatal: it comes
//! out first, as [`ReconnectEvent::JoinRefused`]. A join refused for a while only (too fast,
//! [`ErrorCode::RateLimited`], or the server failing, [`ErrorCode::Internal`]) is not given up
//! on: it is asked again after the retry delays, up to [`JOIN_RETRIES`] times, and reported
//! only if still refused. After that,
//! when the connection ends, it
//!
//! - reconnects with backoff: 1 s doubling to a minute, plus jitter; for the first minute after
//!   the server said it was shutting down (most often a restart), every 1–1.5 s instead;
//! - logs in again with the session token (`Resume`), and with the password only when the token
//!   is refused (revoked or expired). It never registers on a reconnect: an account deleted
//!   while the bot was away stays deleted;
//! - catches up: for each room it knows, the messages it missed are fetched with
//!   `History { anchor: After(last seq seen) }` and delivered as ordinary
//!   [`Event::Message`]s, in order, before any live event of the new connection, each message
//!   once (live copies of caught-up messages are dropped by seq). A room I was added to while
//!   disconnected (a new direct chat, an invitation) is caught up from my read marker: a
//!   direct chat from its first message, a named room from when I was added. No
//!   [`Event::RoomUpdated`] announces such a room (one comes only for a room added while
//!   connected): a bot that keeps something per room, such as which rooms are direct chats,
//!   looks up a room it does not know ([`ReconnectingHandle::room_info`]) or lists its rooms
//!   again ([`ReconnectingHandle::my_rooms`]) on [`ReconnectEvent::Reconnected`];
//! - stops for good, with [`ReconnectEvent::Stopped`], when the password login is refused for a
//!   reason that would only repeat (the password was changed, the account deleted or
//!   suspended: [`ErrorCode::Forbidden`]), and when the server ends the session itself
//!   ([`ErrorCode::SessionRevoked`]: a logout elsewhere, a password change, an admin signing
//!   the account out or suspending it), which a password login would undo.
//!
//! Requests go through a [`ReconnectingHandle`]: it has methods for what bots do in rooms
//! (post, join, read history, mark read, moderate: kick, ban, mute, delete messages, set the
//! topic), and [`connection`](ReconnectingHandle::connection) for the rest. Each uses the
//! current connection, waits (for a bounded time, then [`ReconnectError::NotConnected`])
//! while there is none, fails with [`ReconnectError::Stopped`] once the client has stopped,
//! and never sends a request twice: a request in flight when the connection drops fails with
//! the connection's error, and one whose answer does not come in time with
//! [`ClientError::Timeout`]. Either way what happened is unknown: a `SendMessage` may or may
//! not have been stored. A stored one comes back (in the catch-up, or live) as a message from
//! the bot itself; resend only after checking for it, or accept a duplicate.
//!
//! Every message of the bot's rooms comes as an [`Event::Message`]: its own (live, from any of
//! its sessions, and caught up) and the server's notices
//! ([`MessageKind::System`](crate::MessageKind::System): joins, topic changes) included. A bot
//! that answers messages checks `sender` and `kind` first, or it answers itself (in a direct
//! chat, for ever). Nor does a message say what kind of room it came from:
//! [`Event::RoomUpdated`], [`ReconnectingHandle::my_rooms`] and
//! [`ReconnectingHandle::room_info`] do.
//!
//! What a catch-up does not replay: events other than messages (presence, typing, edits and
//! deletions of messages already seen, `PROTOCOL.md` §3); more than
//! [`ReconnectOptions::catch_up_limit`] messages per room ([`DEFAULT_CATCH_UP_LIMIT`]; the
//! older missed messages are reported as [`ReconnectEvent::MessagesSkipped`]). Room joins are
//! not repeated after a reconnect: the server keeps memberships, and a kick while the bot was
//! away stands (the room is listed in [`Reconnected::rooms_gone`]). A new run of the bot's
//! process joins its [`ReconnectOptions::join`] rooms again, those it was kicked from
//! included; a ban holds.
//!
//! # Across runs of the bot
//!
//! By default the first connect starts from now: what was posted while the bot's process was
//! not running (stopped, deployed, crashed) is not delivered. With
//! [`ReconnectOptions::catch_up_from_read_markers`] the first connect catches up each room
//! from my read marker, which the server keeps, ending with
//! [`ReconnectEvent::CaughtUpOnStart`]. The bot moves the marker with
//! [`ReconnectingHandle::mark_read`]:
//!
//! - marking a message *after* handling it gives **at least once**: a crash between the two
//!   hands the message over again on the next run;
//! - marking it *before* handling it gives **at most once**: a crash between the two loses it.
//!
//! Sending a message moves my marker to it (the server does that), past whatever came before
//! it in the room: a bot that answers from several tasks at once may thereby mark messages it
//! has not handled yet.
//!
//! Whether a bot should catch up across runs depends on whether an old message still asks
//! for something: a bot that must answer every mention should (the repository's
//! `examples/echo_bot.rs`, which marks in batches, one request per room when no event
//! waits); a bot for which an old message is no longer a reason to act should not (a flood
//! guard would mute people now for a burst long past, `examples/flood_guard.rs`).
//!
//! ```no_run
//! # async fn bot() {
//! use chatroom_protocol::reconnecting::{ReconnectEvent, ReconnectOptions, ReconnectingClient};
//! use chatroom_protocol::{Event, mentions::mentions_user};
//! let options = ReconnectOptions::new("127.0.0.1:8888", "bot", "correct horse battery")
//!     .client_name("my-bot")
//!     .register_if_missing()
//!     .join("public");
//! let mut client = match ReconnectingClient::connect(options).await {
//!     Ok(client) => client,
//!     Err(why) => {
//!         eprintln!("cannot start: {why}");
//!         std::process::exit(1);
//!     }
//! };
//! while let Some(event) = client.next_event().await {
//!     match event {
//!         ReconnectEvent::Event(Event::Message(m)) if mentions_user(&m.text, "bot") => {
//!             // A refused reply (too fast, muted, kicked) is no reason to stop the bot.
//!             if let Err(e) = client.send_message(m.room, format!("hello, {}", m.sender_name)).await {
//!                 eprintln!("cannot answer: {e}");
//!             }
//!         }
//!         // Refused for good (the password changed, say): exit with the reason.
//!         ReconnectEvent::Stopped(why) => {
//!             eprintln!("stopped: {why}");
//!             std::process::exit(1);
//!         }
//!         other => {
//!             if let Some(note) = other.connection_note() {
//!                 eprintln!("{note}");
//!             }
//!         }
//!     }
//! }
//! # }
//! ```

use crate::client::{Client, ClientError, ClientHandle, ClientOptions, DEFAULT_REQUEST_TIMEOUT};
use crate::frames::{
    BanInfo, ErrorCode, Event, HistoryAnchor, HistoryPage, Message, MuteInfo, RoomInfo,
    RoomSummary, SentMessage, Session, Visibility, Welcome,
};
use crate::ids::{RoomId, Seq};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How many events wait unread in a [`ReconnectingClient`] before it stops reading the
/// connection (and, as with [`Client`], responses then wait behind them).
pub const EVENT_QUEUE: usize = 1024;
/// How many missed messages per room a catch-up delivers at most unless
/// [`ReconnectOptions::catch_up_limit`] says otherwise.
pub const DEFAULT_CATCH_UP_LIMIT: usize = 1000;
/// The highest [`ReconnectOptions::catch_up_limit`]: a catch-up holds back live events, so it
/// must end.
pub const MAX_CATCH_UP_LIMIT: usize = 100_000;
/// A catch-up asks for history pages of this many messages (fewer when the server's
/// `max_history_page` is lower).
pub const CATCH_UP_PAGE: u32 = 100;
/// The client name sent in `Hello` unless [`ReconnectOptions::client_name`] sets one.
pub const DEFAULT_CLIENT_NAME: &str = "chatroom-bot";
/// Live events kept aside while a catch-up runs; when full, the connection is not read until
/// the catch-up ends.
const HELD_EVENTS: usize = 4096;
/// Rooms followed for catch-up at most (a server cannot grow the table without end).
const MAX_TRACKED_ROOMS: usize = 4096;
/// How often a room join at start refused for a while only (see [`refused_for_now`]) is asked
/// again, after the retry delays ([`ReconnectOptions::retry_delays`]: 1 s, 2 s, 4 s by
/// default), before it is reported as [`ReconnectEvent::JoinRefused`].
pub const JOIN_RETRIES: u32 = 3;
/// How often a history page refused for a while only is asked again before the room is
/// skipped.
const PAGE_RETRIES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// After a shutdown announcement retries come this often (plus jitter) for
/// [`RESTART_WINDOW`]: everyone is back a moment after the server, not a minute later.
const RESTART_RETRY: Duration = Duration::from_secs(1);
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// How to connect, log in, and reconnect. The password is kept in memory for the fallback
/// login when the session token is refused; `Debug` does not show it.
#[derive(Clone)]
pub struct ReconnectOptions {
    server: String,
    client_name: String,
    username: String,
    password: String,
    register: bool,
    rooms: Vec<String>,
    catch_up_from_read_markers: bool,
    catch_up_limit: usize,
    first_retry: Duration,
    longest_retry: Duration,
    connection_wait: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for ReconnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectOptions")
            .field("server", &self.server)
            .field("client_name", &self.client_name)
            .field("username", &self.username)
            .field("password", &"…")
            .field("register", &self.register)
            .field("rooms", &self.rooms)
            .field(
                "catch_up_from_read_markers",
                &self.catch_up_from_read_markers,
            )
            .field("catch_up_limit", &self.catch_up_limit)
            .field("first_retry", &self.first_retry)
            .field("longest_retry", &self.longest_retry)
            .field("connection_wait", &self.connection_wait)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ReconnectOptions {
    /// Connect to `server` (`host:port`, the port required as for [`Client::connect`];
    /// resolved again on every attempt) and log in as `username`. No registration, no rooms
    /// joined, client name [`DEFAULT_CLIENT_NAME`]; the first connect delivers nothing from
    /// before it; a catch-up delivers at most [`DEFAULT_CATCH_UP_LIMIT`] messages per room;
    /// retries 1 s doubling to 60 s; requests wait up to 30 s for a connection.
    pub fn new(
        server: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            server: server.into(),
            client_name: DEFAULT_CLIENT_NAME.to_string(),
            username: username.into(),
            password: password.into(),
            register: false,
            rooms: Vec::new(),
            catch_up_from_read_markers: false,
            catch_up_limit: DEFAULT_CATCH_UP_LIMIT,
            first_retry: Duration::from_secs(1),
            longest_retry: Duration::from_secs(60),
            connection_wait: Duration::from_secs(30),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// On the first connect, register the account if its name is free
    /// ([`ClientHandle::login_or_register`]). Reconnects never register.
    pub fn register_if_missing(mut self) -> Self {
        self.register = true;
        self
    }

    /// The client name sent in `Hello` (the server keeps 64 characters of it, for its logs).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// On the first connect, join this public room (by name). Call once per room. A join the
    /// server refuses (banned, no such room) does not stop the connect: it is reported as
    /// [`ReconnectEvent::JoinRefused`]. One refused for a while only (too fast, or the server
    /// failing: see [`refused_for_now`]) is asked again after the
    /// [retry delays](Self::retry_delays), up to [`JOIN_RETRIES`] times, before it is
    /// reported.
    pub fn join(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// On the first connect, deliver each room's messages after my read marker (what was
    /// posted while the bot was not running) before anything live, as a reconnect does, then
    /// [`ReconnectEvent::CaughtUpOnStart`]. The markers are kept by the server, so they
    /// outlive the bot's process; move them with [`ReconnectingHandle::mark_read`] (see the
    /// [module](self) docs for when). Without this the first connect starts from now.
    pub fn catch_up_from_read_markers(mut self) -> Self {
        self.catch_up_from_read_markers = true;
        self
    }

    /// How many missed messages per room a catch-up delivers at most (the newest ones; older
    /// ones are reported as [`ReconnectEvent::MessagesSkipped`]); at most
    /// [`MAX_CATCH_UP_LIMIT`], 0 for none. Default [`DEFAULT_CATCH_UP_LIMIT`].
    pub fn catch_up_limit(mut self, messages: usize) -> Self {
        self.catch_up_limit = messages.min(MAX_CATCH_UP_LIMIT);
        self
    }

    /// The first retry comes after `first` (plus jitter), each next one after twice as long,
    /// up to `longest`.
    pub fn retry_delays(mut self, first: Duration, longest: Duration) -> Self {
        self.first_retry = first;
        self.longest_retry = longest.max(first);
        self
    }

    /// How long a request made while disconnected waits for the connection to come back
    /// before failing with [`ReconnectError::NotConnected`].
    pub fn connection_wait(mut self, wait: Duration) -> Self {
        self.connection_wait = wait;
        self
    }

    /// How long a request waits for its response ([`ClientOptions::request_timeout`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn client_options(&self) -> ClientOptions {
        let mut options = ClientOptions::new(self.client_name.clone());
        options.request_timeout = self.request_timeout;
        options
    }
}

/// What a [`ReconnectingClient`] delivers: the server's events, and what happened to the
/// connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReconnectEvent {
    /// An event from the server, live or (for [`Event::Message`]) caught up after a reconnect.
    Event(Event),
    /// The server refused to join a room of [`ReconnectOptions::join`] on the first connect
    /// (banned, no such room, a private one; or still too fast, or the server still failing,
    /// after [`JOIN_RETRIES`] more tries): the client runs without it. These come
    /// first.
    JoinRefused {
        /// The room's name, as given to [`ReconnectOptions::join`].
        room: String,
        /// The server's refusal.
        error: ClientError,
    },
    /// The catch-up of the first connect ([`ReconnectOptions::catch_up_from_read_markers`]) is
    /// delivered: the messages before this event were after my read markers when the client
    /// started. Live events follow.
    CaughtUpOnStart {
        /// How many messages were delivered before this event.
        caught_up: usize,
    },
    /// The connection ended; the first retry comes after `retry_in`.
    Disconnected {
        /// Why it ended ([`ClientHandle::close_error`]).
        error: ClientError,
        /// When the next attempt is made.
        retry_in: Duration,
    },
    /// An attempt to reconnect failed; the next one comes after `retry_in`.
    RetryFailed {
        /// Why.
        error: ClientError,
        /// When the next attempt is made.
        retry_in: Duration,
    },
    /// Messages of a room missed while disconnected that are not delivered: seqs
    /// `first..=last` (more than a catch-up fetches, or the server refused the history).
    MessagesSkipped {
        /// The room.
        room: RoomId,
        /// The first seq not delivered.
        first: Seq,
        /// The last seq not delivered.
        last: Seq,
    },
    /// Connected and logged in again, and the catch-up is delivered: the messages between
    /// [`Disconnected`](Self::Disconnected) and this event are the ones missed. Live events of
    /// the new connection follow.
    Reconnected(Reconnected),
    /// Stopped for good, with the reason: the login was refused for a reason that would only
    /// repeat, the server ended the session ([`ErrorCode::SessionRevoked`]), or
    /// [`ReconnectingHandle::close`] was called (the reason is then
    /// [`ClientError::Closed(None)`](ClientError::Closed), and the event comes only if the
    /// event queue has room for it). The last event: [`ReconnectingClient::next_event`]
    /// returns `None` after it, or after a close when it did not come.
    Stopped(Arc<ClientError>),
}

impl ReconnectEvent {
    /// A line for a log about the connection (everything but [`Event`](Self::Event)).
    pub fn connection_note(&self) -> Option<String> {
        Some(match self {
            ReconnectEvent::Event(_) => return None,
            ReconnectEvent::JoinRefused { room, error } => {
                format!("cannot join room {room:?}: {error}; running without it")
            }
            ReconnectEvent::CaughtUpOnStart { caught_up } => {
                format!(
                    "started, caught up on {} after my read markers",
                    count_of(*caught_up, "message")
                )
            }
            ReconnectEvent::Disconnected { error, retry_in } => {
                format!("disconnected: {error}; trying again in {retry_in:.1?}")
            }
            ReconnectEvent::RetryFailed { error, retry_in } => {
                format!("cannot reconnect: {error}; trying again in {retry_in:.1?}")
            }
            ReconnectEvent::MessagesSkipped { room, first, last } => format!(
                "missed messages {first}..={last} of room {} were not fetched",
                room.0
            ),
            ReconnectEvent::Reconnected(back) => {
                let mut note = format!(
                    "reconnected ({}), caught up on {}",
                    if back.resumed {
                        "session resumed"
                    } else {
                        "logged in again with the password"
                    },
                    count_of(back.caught_up, "missed message")
                );
                if !back.rooms_gone.is_empty() {
                    let gone: Vec<String> = back
                        .rooms_gone
                        .iter()
                        .map(|room| room.0.to_string())
                        .collect();
                    note.push_str(&format!(
                        "; no longer in room{} {} (kicked, left or deleted while away): not followed any more",
                        if gone.len() == 1 { "" } else { "s" },
                        gone.join(", ")
                    ));
                }
                note
            }
            ReconnectEvent::Stopped(error) => format!("stopped for good: {error}"),
        })
    }
}

/// "1 missed message", "2 missed messages".
fn count_of(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

/// How a reconnect went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconnected {
    /// The session was resumed with its token; `false`: the token was refused and the client
    /// logged in with the password (a new session, a new token).
    pub resumed: bool,
    /// How many missed messages were delivered before this event.
    pub caught_up: usize,
    /// Rooms followed before the drop that the account is no longer in (kicked, left from
    /// another session, deleted): no longer caught up.
    pub rooms_gone: Vec<RoomId>,
}

/// Why a [`ReconnectingHandle`] request failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconnectError {
    /// The request failed on the connection (see [`ClientError`]). If the connection ended
    /// meanwhile, or no answer came in time ([`ClientError::Timeout`]), the request may or may
    /// not have taken effect; it is not sent again.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// There was no connection, and none came back within the wait
    /// ([`ReconnectOptions::connection_wait`]).
    #[error("not connected: no connection came back within {0:?}")]
    NotConnected(Duration),
    /// The client has stopped for good, for this reason.
    #[error("stopped for good: {0}")]
    Stopped(Arc<ClientError>),
}

impl ReconnectError {
    /// The server's error code, if the server gave one (see [`ClientError::code`]).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ReconnectError::Client(e) => e.code(),
            ReconnectError::Stopped(e) => e.code(),
            ReconnectError::NotConnected(_) => None,
        }
    }
}

impl From<Arc<ClientError>> for ReconnectError {
    fn from(why: Arc<ClientError>) -> Self {
        ReconnectError::Stopped(why)
    }
}

/// The connection requests go through.
enum Link {
    Up(ClientHandle),
    Down,
    Stopped(Arc<ClientError>),
}

struct Shared {
    link: watch::Sender<Link>,
    session: Mutex<Session>,
    welcome: Mutex<Welcome>,
    rooms: Mutex<RoomTracker>,
    connection_wait: Duration,
}

/// A poisoned lock only means another thread panicked while holding it; the data is plain.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A cloneable handle for requests that outlives reconnects. The client stops (and closes its
/// connection) when the [`ReconnectingClient`] and every handle are dropped, or on
/// [`close`](Self::close).
#[derive(Clone)]
pub struct ReconnectingHandle {
    shared: Arc<Shared>,
    _alive: Arc<DropGuard>,
    stop: CancellationToken,
}

impl std::fmt::Debug for ReconnectingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingHandle").finish_non_exhaustive()
    }
}

impl ReconnectingHandle {
    /// The current connection, for requests this handle has no method for (files, search,
    /// edits, ...): at once when connected, else once it is back (waiting at most
    /// [`ReconnectOptions::connection_wait`]). A request on it is not resent if the connection
    /// drops; and a room entered through it is followed from its first message, or from my
    /// read marker at the next reconnect (see the [module](self) docs). A file transfer is
    /// many requests: one cut by a drop fails, and is started again on a new `connection()`
    /// ([`transfer`](crate::transfer)'s uploads and downloads then go on where they stopped).
    pub async fn connection(&self) -> Result<ClientHandle, ReconnectError> {
        let wait = self.shared.connection_wait;
        let mut link = self.shared.link.subscribe();
        let ready = tokio::time::timeout(wait, link.wait_for(|l| !matches!(l, Link::Down))).await;
        match ready {
            Err(_) => Err(ReconnectError::NotConnected(wait)),
            Ok(Err(_)) => Err(ReconnectError::Stopped(Arc::new(ClientError::Closed(None)))),
            Ok(Ok(link)) => match &*link {
                Link::Up(handle) => Ok(handle.clone()),
                Link::Stopped(why) => Err(ReconnectError::Stopped(Arc::clone(why))),
                Link::Down => Err(ReconnectError::NotConnected(wait)),
            },
        }
    }

    /// Whether a connection is up and logged in now.
    pub fn is_connected(&self) -> bool {
        matches!(&*self.shared.link.borrow(), Link::Up(h) if !h.is_closed())
    }

    /// The session of the current (or last) connection: the same token after a resume, a new
    /// one after a password login. Its `user.is_admin` follows [`Event::AdminChanged`].
    pub fn session(&self) -> Session {
        lock(&self.shared.session).clone()
    }

    /// What the server said in the `Welcome` of the current (or last) connection.
    pub fn welcome(&self) -> Welcome {
        lock(&self.shared.welcome).clone()
    }

    /// Stops for good: closes the connection now (requests not yet written are dropped, as
    /// with [`ClientHandle::close`]) and ends reconnecting, whichever handles are still alive.
    /// The last event is [`ReconnectEvent::Stopped`] with
    /// [`ClientError::Closed(None)`](ClientError::Closed) if the event queue has room for it;
    /// either way [`ReconnectingClient::next_event`] then returns `None`. To stop a bot on
    /// Ctrl-C, wait for `tokio::signal::ctrl_c()` (tokio's `signal` feature) next to
    /// [`ReconnectingClient::next_event`] in a `tokio::select!`, then `close()` and return: the
    /// repository's `examples/standup_bot.rs` does.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Sends one request on the current connection, waiting for one as
    /// [`connection`](Self::connection) does: every request method goes through here, so that
    /// they all wait, and fail, the same way.
    async fn on_connection<T, Answer>(
        &self,
        request: impl FnOnce(ClientHandle) -> Answer,
    ) -> Result<T, ReconnectError>
    where
        Answer: Future<Output = Result<T, ClientError>>,
    {
        let connection = self.connection().await?;
        Ok(request(connection).await?)
    }

    /// Follows a room I entered from its newest message on: caught up after reconnects.
    fn follow(&self, room: RoomSummary) -> RoomSummary {
        lock(&self.shared.rooms).track(room.id, room.latest_seq);
        room
    }

    /// Posts a message ([`ClientHandle::send_message`]). If it fails because the connection
    /// dropped or the answer timed out ([`ClientError::Timeout`]), it may or may not have been
    /// stored, and it is not sent again: a stored one is delivered (by the catch-up after a
    /// drop, live after a timeout) as a message from me.
    pub async fn send_message(
        &self,
        room: RoomId,
        text: impl Into<String>,
    ) -> Result<SentMessage, ReconnectError> {
        let text = text.into();
        self.on_connection(|c| async move { c.send_message(room, text).await })
            .await
    }

    /// Joins a public room by name; it is caught up after reconnects from now on.
    pub async fn join_room(&self, name: &str) -> Result<RoomSummary, ReconnectError> {
        let room = self
            .on_connection(|c| async move { c.join_room(name).await })
            .await?;
        Ok(self.follow(room))
    }

    /// Creates a room; it is caught up after reconnects from now on.
    pub async fn create_room(
        &self,
        name: &str,
        visibility: Visibility,
    ) -> Result<RoomSummary, ReconnectError> {
        let room = self
            .on_connection(|c| async move { c.create_room(name, visibility).await })
            .await?;
        Ok(self.follow(room))
    }

    /// Opens (creating if needed) the direct chat with a user; it is caught up after
    /// reconnects from now on.
    pub async fn open_direct(&self, username: &str) -> Result<RoomSummary, ReconnectError> {
        let room = self
            .on_connection(|c| async move { c.open_direct(username).await })
            .await?;
        Ok(self.follow(room))
    }

    /// Moves my read marker in `room` up to `seq` ([`ClientHandle::mark_read`]; it never moves
    /// back). The server keeps it: with [`ReconnectOptions::catch_up_from_read_markers`] the
    /// next run of the bot starts after it (see the [module](self) docs for when to mark).
    pub async fn mark_read(&self, room: RoomId, seq: Seq) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.mark_read(room, seq).await })
            .await
    }

    /// Leaves a room; it is no longer caught up.
    pub async fn leave_room(&self, room: RoomId) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.leave_room(room).await })
            .await?;
        lock(&self.shared.rooms).forget(room);
        Ok(())
    }

    /// The rooms and direct chats I am in ([`ClientHandle::my_rooms`]).
    pub async fn my_rooms(&self) -> Result<Vec<RoomSummary>, ReconnectError> {
        self.on_connection(|c| async move { c.my_rooms().await })
            .await
    }

    /// Every public room ([`ClientHandle::public_rooms`]): for a bot that joins them all.
    pub async fn public_rooms(&self) -> Result<Vec<RoomSummary>, ReconnectError> {
        self.on_connection(|c| async move { c.public_rooms().await })
            .await
    }

    /// A room with its members ([`ClientHandle::room_info`]).
    pub async fn room_info(&self, room: RoomId) -> Result<RoomInfo, ReconnectError> {
        self.on_connection(|c| async move { c.room_info(room).await })
            .await
    }

    /// A page of a room's stored messages ([`ClientHandle::history`], which says how to page
    /// back): for a bot that archives or looks back. What it returns is not delivered as
    /// events, and does not change what a catch-up delivers.
    pub async fn history(
        &self,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> Result<HistoryPage, ReconnectError> {
        self.on_connection(|c| async move { c.history(room, anchor, limit).await })
            .await
    }

    /// Sets a room's topic ([`ClientHandle::set_topic`]).
    pub async fn set_topic(&self, room: RoomId, topic: &str) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.set_topic(room, topic).await })
            .await
    }

    /// Deletes a message, mine or (as the room's owner or a moderator) anyone's
    /// ([`ClientHandle::delete_message`]).
    pub async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.delete_message(room, seq).await })
            .await
    }

    /// Deletes what `username` posted in `room` over the last `within`, as the room's owner or
    /// a moderator ([`ClientHandle::delete_messages_by`]: at most
    /// [`MAX_DELETED_AT_ONCE`](crate::MAX_DELETED_AT_ONCE) at once); how many went.
    pub async fn delete_messages_by(
        &self,
        room: RoomId,
        username: &str,
        within: Duration,
    ) -> Result<u32, ReconnectError> {
        self.on_connection(|c| async move { c.delete_messages_by(room, username, within).await })
            .await
    }

    /// Removes a member from a room ([`ClientHandle::kick`]); they may join again.
    pub async fn kick(
        &self,
        room: RoomId,
        username: &str,
        reason: Option<String>,
    ) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.kick(room, username, reason).await })
            .await
    }

    /// Bans a user from a room, removing them if they are in it ([`ClientHandle::ban`]).
    pub async fn ban(
        &self,
        room: RoomId,
        username: &str,
        reason: Option<String>,
    ) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.ban(room, username, reason).await })
            .await
    }

    /// Lifts a user's ban from a room ([`ClientHandle::unban`]).
    pub async fn unban(&self, room: RoomId, username: &str) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.unban(room, username).await })
            .await
    }

    /// A room's bans, newest first ([`ClientHandle::bans`]; owner and moderators only).
    pub async fn bans(&self, room: RoomId) -> Result<Vec<BanInfo>, ReconnectError> {
        self.on_connection(|c| async move { c.bans(room).await })
            .await
    }

    /// Mutes a member of a room for `secs` seconds, or until unmuted when `None`
    /// ([`ClientHandle::mute`]).
    pub async fn mute(
        &self,
        room: RoomId,
        username: &str,
        secs: Option<u64>,
        reason: Option<String>,
    ) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.mute(room, username, secs, reason).await })
            .await
    }

    /// Lifts a member's mute ([`ClientHandle::unmute`]).
    pub async fn unmute(&self, room: RoomId, username: &str) -> Result<(), ReconnectError> {
        self.on_connection(|c| async move { c.unmute(room, username).await })
            .await
    }

    /// The mutes in force in a room, newest first ([`ClientHandle::mutes`]).
    pub async fn mutes(&self, room: RoomId) -> Result<Vec<MuteInfo>, ReconnectError> {
        self.on_connection(|c| async move { c.mutes(room).await })
            .await
    }
}

/// A connection to a Chat-Room server that comes back by itself: request methods (through
/// [`ReconnectingHandle`], which it dereferences to) and a stream of [`ReconnectEvent`]s. See
/// the [module](self) docs.
///
/// Keep reading events: while [`EVENT_QUEUE`] of them wait unread nothing more is read from the
/// connection, responses included (as with [`Client`]), and a server drops a client that stays
/// behind (it then reconnects and catches up).
#[derive(Debug)]
pub struct ReconnectingClient {
    handle: ReconnectingHandle,
    events: mpsc::Receiver<ReconnectEvent>,
}

impl std::ops::Deref for ReconnectingClient {
    type Target = ReconnectingHandle;
    fn deref(&self) -> &ReconnectingHandle {
        &self.handle
    }
}

impl ReconnectingClient {
    /// Connects, logs in (registering first if asked and the name is free), and joins the
    /// rooms of `options`. A failure to connect or log in is returned as it came, without
    /// retrying: a wrong address or password is not something waiting fixes. A room join the
    /// server refuses is not fatal: it comes out as [`ReconnectEvent::JoinRefused`], first
    /// (one refused as too fast is asked again first, see [`ReconnectOptions::join`]).
    /// From then on the client reconnects by itself.
    pub async fn connect(options: ReconnectOptions) -> Result<Self, ClientError> {
        let client =
            Client::connect_with(options.server.as_str(), options.client_options()).await?;
        let session = if options.register {
            client
                .login_or_register(&options.username, &options.password)
                .await?
        } else {
            client.login(&options.username, &options.password).await?
        };
        let mut first_events = Vec::new();
        for room in &options.rooms {
            match join_at_start(&client, room, &options).await {
                Ok(_) => {}
                // Refused (banned, a typo, still too fast): one room is no reason to take the
                // bot down.
                Err(error @ ClientError::Server(_)) => {
                    first_events.push(ReconnectEvent::JoinRefused {
                        room: room.clone(),
                        error,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        // Where each room stands now: a later catch-up starts there at the latest (or at my
        // read marker, when asked to deliver what came while the bot was not running).
        let mut rooms = RoomTracker::default();
        for room in client.my_rooms().await? {
            let from = if options.catch_up_from_read_markers {
                room.last_read_seq.min(room.latest_seq)
            } else {
                room.latest_seq
            };
            rooms.track(room.id, from);
        }
        let welcome = client.welcome().clone();
        let (handle, events) = client.into_parts();
        let (link, _) = watch::channel(Link::Up(handle.clone()));
        let shared = Arc::new(Shared {
            link,
            session: Mutex::new(session),
            welcome: Mutex::new(welcome),
            rooms: Mutex::new(rooms),
            connection_wait: options.connection_wait,
        });
        let stop = CancellationToken::new();
        let (out, received) = mpsc::channel(EVENT_QUEUE);
        let driver = Driver {
            options,
            shared: Arc::clone(&shared),
            out,
            stop: stop.clone(),
        };
        tokio::spawn(driver.run(handle, events, first_events));
        Ok(Self {
            handle: ReconnectingHandle {
                shared,
                _alive: Arc::new(stop.clone().drop_guard()),
                stop,
            },
            events: received,
        })
    }

    /// The next event; `None` after [`ReconnectEvent::Stopped`].
    pub async fn next_event(&mut self) -> Option<ReconnectEvent> {
        self.events.recv().await
    }

    /// A cloneable handle for requests from other tasks.
    pub fn handle(&self) -> ReconnectingHandle {
        self.handle.clone()
    }

    /// Splits into the request handle and the event receiver. Dropping the receiver discards
    /// events from then on; the client keeps reconnecting while a handle lives.
    pub fn into_parts(self) -> (ReconnectingHandle, mpsc::Receiver<ReconnectEvent>) {
        (self.handle, self.events)
    }
}

/// Joins a room of [`ReconnectOptions::join`] on the first connection. A refusal for now
/// ([`refused_for_now`]) is asked again after the retry delays, up to [`JOIN_RETRIES`] times;
/// any other refusal would repeat, and is returned.
async fn join_at_start(
    client: &Client,
    room: &str,
    options: &ReconnectOptions,
) -> Result<RoomSummary, ClientError> {
    let mut retries = 0;
    loop {
        match client.join_room(room).await {
            Err(e) if refused_for_now(&e) && retries < JOIN_RETRIES => {
                let delay = retry_delay(options.first_retry, options.longest_retry, retries, false);
                tokio::time::sleep(delay).await;
                retries += 1;
            }
            joined => return joined,
        }
    }
}

/// A refusal that may not last: too fast ([`ErrorCode::RateLimited`]), or the server failing
/// ([`ErrorCode::Internal`]: its storage refusing a write for a moment, a disk full until
/// someone clears it). Asked again after a pause, a bounded number of times, rather than
/// given up on at once.
pub fn refused_for_now(e: &ClientError) -> bool {
    matches!(e.code(), Some(ErrorCode::RateLimited | ErrorCode::Internal))
}

/// A login refusal that every later attempt would get too. `Forbidden` is a suspended account:
/// it lasts until an admin lifts it, and a bot retrying its password meanwhile would only fill
/// the server's log.
fn refused_for_good(e: &ClientError) -> bool {
    use ErrorCode::*;
    matches!(
        e.code(),
        Some(InvalidCredentials | RegistrationClosed | InvalidUsername | WeakPassword | Forbidden)
    )
}

/// How long to wait before retry number `attempt` (0 for the first).
fn retry_delay(first: Duration, longest: Duration, attempt: u32, restarting: bool) -> Duration {
    let cap = if restarting {
        RESTART_RETRY.min(longest)
    } else {
        longest
    };
    let base = first.saturating_mul(1 << attempt.min(16)).min(cap);
    base + jitter(base / 2)
}

/// Up to `most`, from the clock's low bits: clients dropped together do not return together.
fn jitter(most: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let most = u64::try_from(most.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(u64::from(nanos) % most.saturating_add(1))
}

/// Where each followed room stands.
#[derive(Debug, Default)]
struct RoomTracker {
    rooms: HashMap<RoomId, RoomMark>,
}

#[derive(Clone, Copy, Debug, Default)]
struct RoomMark {
    /// Where the room stood when it was first followed (or up to where a catch-up gave up):
    /// nothing at or before it is fetched again.
    baseline: Seq,
    /// The newest message delivered; 0 when none was.
    delivered: Seq,
}

impl RoomMark {
    fn resume_after(self) -> Seq {
        self.baseline.max(self.delivered)
    }
}

/// A room to catch up: messages after `after`, up to `latest` at least.
#[derive(Debug, PartialEq, Eq)]
struct Gap {
    room: RoomId,
    after: Seq,
    latest: Seq,
}

#[derive(Debug, PartialEq, Eq)]
struct Plan {
    gaps: Vec<Gap>,
    gone: Vec<RoomId>,
}

impl RoomTracker {
    /// Whether a message is news: a room's messages arrive in seq order on one connection, so
    /// one at or before the newest delivered is a copy (a live one the catch-up delivered
    /// already). Notes it as delivered.
    fn admit(&mut self, room: RoomId, seq: Seq) -> bool {
        if let Some(mark) = self.rooms.get_mut(&room) {
            if seq <= mark.delivered {
                return false;
            }
            mark.delivered = seq;
        } else if self.rooms.len() < MAX_TRACKED_ROOMS {
            self.rooms.insert(
                room,
                RoomMark {
                    baseline: 0,
                    delivered: seq,
                },
            );
        }
        true
    }

    /// Follows a room from `latest` on (nothing changes for one already followed: messages
    /// up to `latest` may still be on their way).
    fn track(&mut self, room: RoomId, latest: Seq) {
        if self.rooms.len() < MAX_TRACKED_ROOMS || self.rooms.contains_key(&room) {
            self.rooms.entry(room).or_insert(RoomMark {
                baseline: latest,
                delivered: 0,
            });
        }
    }

    fn forget(&mut self, room: RoomId) {
        self.rooms.remove(&room);
    }

    /// Gives up on a room's messages up to `seq`.
    fn skip_to(&mut self, room: RoomId, seq: Seq) {
        if let Some(mark) = self.rooms.get_mut(&room) {
            mark.baseline = mark.baseline.max(seq);
        }
    }

    /// What to catch up, given my rooms as they are now: rooms followed before, with news,
    /// and rooms new since, from my read marker (the server puts it at the room's newest seq
    /// when I am added to a named room, and at 0 in a new direct chat: what was said after I
    /// came); rooms gone from the list are forgotten.
    fn plan(&mut self, rooms: &[RoomSummary]) -> Plan {
        let mine: HashSet<RoomId> = rooms.iter().map(|r| r.id).collect();
        let mut gone: Vec<RoomId> = self
            .rooms
            .keys()
            .filter(|room| !mine.contains(room))
            .copied()
            .collect();
        gone.sort_unstable();
        for room in &gone {
            self.rooms.remove(room);
        }
        let mut gaps = Vec::new();
        for summary in rooms {
            if !self.rooms.contains_key(&summary.id) {
                self.track(summary.id, summary.last_read_seq.min(summary.latest_seq));
            }
            // Not followed (the table is full): not caught up.
            let Some(mark) = self.rooms.get(&summary.id) else {
                continue;
            };
            if summary.latest_seq > mark.resume_after() {
                gaps.push(Gap {
                    room: summary.id,
                    after: mark.resume_after(),
                    latest: summary.latest_seq,
                });
            }
        }
        Plan { gaps, gone }
    }
}

/// Live events put aside while a catch-up runs.
#[derive(Default)]
struct Held {
    events: VecDeque<Event>,
    /// Whether the connection's event queue may still yield more.
    open: bool,
}

/// Why a catch-up did not finish.
enum Interrupted {
    Stop,
    Failed(ClientError),
}

/// How an attempt to reconnect ended.
enum Outcome {
    Up(ClientHandle, mpsc::Receiver<Event>),
    Retry(ClientError),
    GiveUp(ClientError),
    Stop,
}

/// The task that owns the connection: forwards events, reconnects, catches up.
struct Driver {
    options: ReconnectOptions,
    shared: Arc<Shared>,
    out: mpsc::Sender<ReconnectEvent>,
    stop: CancellationToken,
}

impl Driver {
    async fn run(
        self,
        mut handle: ClientHandle,
        mut events: mpsc::Receiver<Event>,
        first_events: Vec<ReconnectEvent>,
    ) {
        for event in first_events {
            if !self.emit(event).await {
                return self.finish(ClientError::Closed(None)).await;
            }
        }
        if self.options.catch_up_from_read_markers
            && !self.catch_up_on_start(&handle, &mut events).await
        {
            return self.finish(ClientError::Closed(None)).await;
        }
        loop {
            if !self.forward(&mut events).await {
                return self.finish(ClientError::Closed(None)).await;
            }
            let error = handle.close_error().unwrap_or(ClientError::Closed(None));
            if error.code() == Some(ErrorCode::SessionRevoked) {
                // Ended on purpose (a logout elsewhere, a password change, an admin): coming
                // back with the password would undo it.
                return self.finish(error).await;
            }
            self.shared.link.send_replace(Link::Down);
            match self.come_back(error).await {
                Some((back, more)) => (handle, events) = (back, more),
                None => return,
            }
        }
    }

    /// The first connection's catch-up from my read markers; `false` when stopped. If the
    /// connection fails meanwhile it is closed, and the reconnect's catch-up goes on from
    /// what was delivered.
    async fn catch_up_on_start(
        &self,
        handle: &ClientHandle,
        events: &mut mpsc::Receiver<Event>,
    ) -> bool {
        let server_max = lock(&self.shared.welcome).limits.max_history_page;
        let page = self.page_size(server_max);
        let mut held = Held {
            events: VecDeque::new(),
            open: true,
        };
        match self.catch_up(handle, events, &mut held, page).await {
            Ok((caught_up, _)) => {
                if !self
                    .emit(ReconnectEvent::CaughtUpOnStart { caught_up })
                    .await
                {
                    return false;
                }
                self.release(held).await
            }
            Err(Interrupted::Stop) => false,
            Err(Interrupted::Failed(_)) => {
                // Nothing held was delivered, and what the queue still has must not go out
                // ahead of the messages before it: the reconnect fetches them all again.
                handle.close();
                events.close();
                while events.try_recv().is_ok() {}
                true
            }
        }
    }

    /// Delivers live events held back during a catch-up; `false` when stopped.
    async fn release(&self, held: Held) -> bool {
        for event in held.events {
            if self.take_in(&event) && !self.emit(ReconnectEvent::Event(event)).await {
                return false;
            }
        }
        true
    }

    /// The history page size to ask for, given the server's `max_history_page`.
    fn page_size(&self, server_max: u32) -> u32 {
        server_max.clamp(1, CATCH_UP_PAGE)
    }

    /// Forwards the connection's events until it ends (`true`) or the client is stopped.
    async fn forward(&self, events: &mut mpsc::Receiver<Event>) -> bool {
        loop {
            let event = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return false,
                event = events.recv() => event,
            };
            let Some(event) = event else {
                return true;
            };
            if self.take_in(&event) && !self.emit(ReconnectEvent::Event(event)).await {
                return false;
            }
        }
    }

    /// Whether `event` is news to the program (a message it has had is not), keeping
    /// [`ReconnectingHandle::session`] up to date with the account's admin standing.
    fn take_in(&self, event: &Event) -> bool {
        match event {
            Event::Message(m) => lock(&self.shared.rooms).admit(m.room, m.seq),
            Event::AdminChanged { user, admin, .. } => {
                let mut session = lock(&self.shared.session);
                if session.user.id == *user {
                    session.user.is_admin = *admin;
                }
                true
            }
            _ => true,
        }
    }

    /// Hands an event to the program (waiting while its queue is full); `false` once stopped.
    async fn emit(&self, event: ReconnectEvent) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            // An error: nobody reads events any more; they are discarded.
            _ = self.out.send(event) => true,
        }
    }

    async fn emit_or_stop(&self, event: ReconnectEvent) -> Result<(), Interrupted> {
        if self.emit(event).await {
            Ok(())
        } else {
            Err(Interrupted::Stop)
        }
    }

    /// Stops for good with `error`.
    async fn finish(&self, error: ClientError) {
        let error = Arc::new(error);
        if let Link::Up(handle) = self
            .shared
            .link
            .send_replace(Link::Stopped(Arc::clone(&error)))
        {
            handle.close();
        }
        let last = ReconnectEvent::Stopped(error);
        if self.stop.is_cancelled() {
            // Asked for (or everyone gone): said if there is room, never waited for.
            let _ = self.out.try_send(last);
        } else {
            self.emit(last).await;
        }
    }

    fn retry_delay(&self, attempt: u32, restart_until: Option<Instant>) -> Duration {
        let restarting = restart_until.is_some_and(|until| Instant::now() < until);
        retry_delay(
            self.options.first_retry,
            self.options.longest_retry,
            attempt,
            restarting,
        )
    }

    /// Reconnects after `error` ended the connection: the new connection once caught up, or
    /// `None` when stopped.
    async fn come_back(&self, error: ClientError) -> Option<(ClientHandle, mpsc::Receiver<Event>)> {
        let mut restart_until = None;
        let mut note_shutdown = |error: &ClientError| {
            if error.code() == Some(ErrorCode::ShuttingDown) {
                restart_until = Some(Instant::now() + RESTART_WINDOW);
            }
            restart_until
        };
        let mut attempt = 0u32;
        let mut delay = self.retry_delay(attempt, note_shutdown(&error));
        let mut emitted = self
            .emit(ReconnectEvent::Disconnected {
                error,
                retry_in: delay,
            })
            .await;
        loop {
            let outcome = if emitted {
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => Outcome::Stop,
                    outcome = async {
                        tokio::time::sleep(delay).await;
                        self.attempt().await
                    } => outcome,
                }
            } else {
                Outcome::Stop
            };
            let error = match outcome {
                Outcome::Up(handle, events) => return Some((handle, events)),
                Outcome::Stop => ClientError::Closed(None),
                Outcome::GiveUp(error) => error,
                Outcome::Retry(error) => {
                    attempt = attempt.saturating_add(1);
                    delay = self.retry_delay(attempt, note_shutdown(&error));
                    emitted = self
                        .emit(ReconnectEvent::RetryFailed {
                            error,
                            retry_in: delay,
                        })
                        .await;
                    continue;
                }
            };
            self.finish(error).await;
            return None;
        }
    }

    /// One attempt: connect, log in, catch up, deliver what was held meanwhile.
    async fn attempt(&self) -> Outcome {
        let options = &self.options;
        let client =
            match Client::connect_with(options.server.as_str(), options.client_options()).await {
                Ok(client) => client,
                Err(e) => return Outcome::Retry(e),
            };
        let token = lock(&self.shared.session).token.clone();
        let (session, resumed) = match client.resume(&token).await {
            Ok(session) => (session, true),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                match client.login(&options.username, &options.password).await {
                    Ok(session) => (session, false),
                    Err(e) if refused_for_good(&e) => return Outcome::GiveUp(e),
                    Err(e) => return Outcome::Retry(e),
                }
            }
            // Suspended since: the server says so instead of that the token ended.
            Err(e) if refused_for_good(&e) => return Outcome::GiveUp(e),
            Err(e) => return Outcome::Retry(e),
        };
        let page = self.page_size(client.welcome().limits.max_history_page);
        *lock(&self.shared.session) = session;
        *lock(&self.shared.welcome) = client.welcome().clone();
        let (handle, mut events) = client.into_parts();
        // Requests may go out while the catch-up runs.
        self.shared.link.send_replace(Link::Up(handle.clone()));
        let mut held = Held {
            events: VecDeque::new(),
            open: true,
        };
        let (caught_up, rooms_gone) =
            match self.catch_up(&handle, &mut events, &mut held, page).await {
                Ok(done) => done,
                Err(Interrupted::Stop) => return Outcome::Stop,
                Err(Interrupted::Failed(e)) => {
                    // What was held is fetched again next time: nothing of it was delivered.
                    handle.close();
                    self.shared.link.send_replace(Link::Down);
                    return Outcome::Retry(e);
                }
            };
        let back = Reconnected {
            resumed,
            caught_up,
            rooms_gone,
        };
        if !self.emit(ReconnectEvent::Reconnected(back)).await || !self.release(held).await {
            return Outcome::Stop;
        }
        Outcome::Up(handle, events)
    }

    /// Delivers each followed room's missed messages; returns how many, and the rooms gone.
    async fn catch_up(
        &self,
        handle: &ClientHandle,
        events: &mut mpsc::Receiver<Event>,
        held: &mut Held,
        page: u32,
    ) -> Result<(usize, Vec<RoomId>), Interrupted> {
        let rooms = self.holding(handle.my_rooms(), events, held).await?;
        let plan = lock(&self.shared.rooms).plan(&rooms);
        let mut caught_up = 0;
        for gap in plan.gaps {
            caught_up += self.catch_up_room(handle, events, held, gap, page).await?;
        }
        Ok((caught_up, plan.gone))
    }

    async fn catch_up_room(
        &self,
        handle: &ClientHandle,
        events: &mut mpsc::Receiver<Event>,
        held: &mut Held,
        gap: Gap,
        page: u32,
    ) -> Result<usize, Interrupted> {
        let Gap {
            room,
            mut after,
            latest,
        } = gap;
        let limit = self.options.catch_up_limit;
        let most = u64::try_from(limit).unwrap_or(u64::MAX);
        if latest.saturating_sub(after) > most {
            // The newest are the ones worth having.
            let first = after.saturating_add(1);
            after = latest - most;
            lock(&self.shared.rooms).skip_to(room, after);
            self.emit_or_stop(ReconnectEvent::MessagesSkipped {
                room,
                first,
                last: after,
            })
            .await?;
        }
        let mut delivered = 0;
        // Enough pages for the limit; a page short of messages leaves the rest skipped.
        let most_pages = limit.div_ceil(page as usize);
        let (mut pages, mut refused) = (0, 0);
        let mut complete = after >= latest;
        while !complete && pages < most_pages {
            let asked = handle.history(room, HistoryAnchor::After(after), page);
            let history = match self.holding(asked, events, held).await {
                Ok(history) => history,
                Err(Interrupted::Failed(e)) if refused_for_now(&e) && refused < PAGE_RETRIES => {
                    refused += 1;
                    let pause = async {
                        tokio::time::sleep(RETRY_PAUSE).await;
                        Ok(())
                    };
                    self.holding(pause, events, held).await?;
                    continue;
                }
                // Refused (no longer a member, say): the rest is reported skipped below.
                Err(Interrupted::Failed(e)) if e.code().is_some() => break,
                Err(other) => return Err(other),
            };
            pages += 1;
            // Counted in a row: a long catch-up may meet the limit more than a few times.
            refused = 0;
            for message in history.messages {
                if message.room != room || message.seq <= after {
                    continue;
                }
                after = message.seq;
                if self.deliver(message).await? {
                    delivered += 1;
                }
            }
            complete = !history.has_more || after >= latest;
        }
        if !complete {
            lock(&self.shared.rooms).skip_to(room, latest);
            self.emit_or_stop(ReconnectEvent::MessagesSkipped {
                room,
                first: after.saturating_add(1),
                last: latest,
            })
            .await?;
        }
        Ok(delivered)
    }

    /// Delivers a caught-up message unless it was delivered already; whether it was.
    async fn deliver(&self, message: Message) -> Result<bool, Interrupted> {
        if !lock(&self.shared.rooms).admit(message.room, message.seq) {
            return Ok(false);
        }
        self.emit_or_stop(ReconnectEvent::Event(Event::Message(message)))
            .await?;
        Ok(true)
    }

    /// Awaits `work` while putting live events aside, so that its response is not stuck
    /// behind them.
    async fn holding<T>(
        &self,
        work: impl Future<Output = Result<T, ClientError>>,
        events: &mut mpsc::Receiver<Event>,
        held: &mut Held,
    ) -> Result<T, Interrupted> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Err(Interrupted::Stop),
                done = &mut work => return done.map_err(Interrupted::Failed),
                event = events.recv(), if held.open && held.events.len() < HELD_EVENTS => {
                    match event {
                        Some(event) => held.events.push_back(event),
                        None => held.open = false,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::RoomKind;

    fn summary(id: u64, latest_seq: Seq) -> RoomSummary {
        RoomSummary {
            id: RoomId(id),
            kind: RoomKind::Public,
            name: format!("room{id}"),
            topic: String::new(),
            member_count: 2,
            latest_seq,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            my_role: None,
        }
    }

    /// A live message that arrives while the catch-up runs, and that the catch-up's history
    /// page also holds, is delivered once: by the catch-up, in order; the held live copy after
    /// it is dropped, and the live message after that is delivered.
    #[test]
    fn a_live_copy_of_a_caught_up_message_is_dropped() {
        let room = RoomId(7);
        let mut rooms = RoomTracker::default();
        rooms.track(room, 3);
        assert!(rooms.admit(room, 4), "live before the drop");
        // Reconnected: the room is at 6 now.
        let plan = rooms.plan(&[summary(7, 6)]);
        assert_eq!(
            plan.gaps,
            [Gap {
                room,
                after: 4,
                latest: 6
            }]
        );
        // The history page (fetched after seq 7 was stored) holds 5, 6 and 7.
        let caught: Vec<bool> = [5, 6, 7]
            .iter()
            .map(|&seq| rooms.admit(room, seq))
            .collect();
        assert_eq!(caught, [true, true, true]);
        // Held live copies: 7 (stored during the catch-up) is a copy, 8 is news.
        assert!(!rooms.admit(room, 7), "the live copy of 7");
        assert!(rooms.admit(room, 8));
        assert!(!rooms.admit(room, 8), "each once");
    }

    #[test]
    fn a_plan_starts_after_what_was_seen_and_new_rooms_at_my_read_marker() {
        let mut rooms = RoomTracker::default();
        rooms.track(RoomId(1), 10);
        rooms.track(RoomId(2), 5);
        rooms.track(RoomId(3), 0);
        assert!(rooms.admit(RoomId(1), 11));
        // Room 4, new while away: I was added at 7 (my marker), it is at 9 now.
        let mut new_room = summary(4, 9);
        new_room.last_read_seq = 7;
        let plan = rooms.plan(&[summary(1, 15), summary(2, 5), new_room]);
        assert_eq!(
            plan,
            Plan {
                gaps: vec![
                    Gap {
                        room: RoomId(1),
                        after: 11,
                        latest: 15
                    },
                    Gap {
                        room: RoomId(4),
                        after: 7,
                        latest: 9
                    }
                ],
                gone: vec![RoomId(3)],
            }
        );
        for seq in 8..=9 {
            assert!(rooms.admit(RoomId(4), seq));
        }
        // Room 4 is followed from what was delivered; room 3 is forgotten.
        let plan = rooms.plan(&[summary(1, 11), summary(2, 5), summary(4, 12)]);
        assert_eq!(
            plan.gaps,
            [Gap {
                room: RoomId(4),
                after: 9,
                latest: 12
            }]
        );
        assert!(plan.gone.is_empty());
    }

    #[test]
    fn a_reconnect_note_counts_right_and_names_the_rooms_gone() {
        let back = |caught_up, rooms_gone| {
            ReconnectEvent::Reconnected(Reconnected {
                resumed: true,
                caught_up,
                rooms_gone,
            })
            .connection_note()
            .unwrap_or_default()
        };
        assert_eq!(
            back(1, vec![]),
            "reconnected (session resumed), caught up on 1 missed message"
        );
        assert_eq!(
            back(2, vec![RoomId(4), RoomId(9)]),
            "reconnected (session resumed), caught up on 2 missed messages; no longer in rooms 4, 9 \
             (kicked, left or deleted while away): not followed any more"
        );
    }

    #[test]
    fn the_catch_up_limit_is_bounded() {
        let options = ReconnectOptions::new("127.0.0.1:1", "bot", "password");
        assert_eq!(options.catch_up_limit, DEFAULT_CATCH_UP_LIMIT);
        assert_eq!(
            options.catch_up_limit(usize::MAX).catch_up_limit,
            MAX_CATCH_UP_LIMIT
        );
    }

    #[test]
    fn retries_double_up_to_the_longest_and_come_every_second_after_a_shutdown() {
        let (first, longest) = (Duration::from_secs(1), Duration::from_secs(60));
        for (attempt, base) in [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (40, 60)] {
            let delay = retry_delay(first, longest, attempt, false);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= base + base / 2,
                "attempt {attempt}: {delay:?}"
            );
        }
        let restarting = retry_delay(first, longest, 6, true);
        assert!(
            restarting >= RESTART_RETRY && restarting <= RESTART_RETRY * 3 / 2,
            "{restarting:?}"
        );
    }
}
