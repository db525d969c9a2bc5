//! The async client (feature `client`): what bots, the terminal client and the benchmark tool are
//! written against.
//!
//! [`Client::connect`] opens a TCP connection and does the `Hello`/`Welcome` handshake. Two tasks
//! then own the socket: a reader that routes each response to the request waiting for it, answers
//! pings, and queues events; and a writer that drains a bounded queue of outgoing frames, several
//! frames per write. Each request method sends one [`Request`] and waits (with a timeout) for its
//! matching [`Response`].
//!
//! ```no_run
//! # async fn bot() -> Result<(), chatroom_protocol::client::ClientError> {
//! use chatroom_protocol::{client::Client, Event};
//! let mut client = Client::connect("127.0.0.1:8888", "my-bot").await?;
//! client.login("bot", "correct horse battery").await?;
//! let room = client.join_room("public").await?;
//! while let Some(event) = client.next_event().await {
//!     if let Event::Message(m) = event {
//!         if m.text.contains("@bot") {
//!             client.send_message(room.id, format!("hello, {}", m.sender_name)).await?;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

use crate::codec::{
    ClientCodec, CodecError, DEFAULT_MAX_FRAME_BYTES, decode_payload, encode_frame,
    encode_frame_into, peek_message,
};
use crate::frames::*;
use crate::ids::{FileId, RoomId, Seq, UploadId};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long a request waits for its response by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many events may wait unread before the client stops reading the socket (and, if it stays
/// that way, the server drops the connection as too slow).
pub const EVENT_QUEUE: usize = 4096;
const OUTBOUND_QUEUE: usize = 1024;
const READ_BUFFER: usize = 64 * 1024;
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The server refused the request.
    #[error("server error: {0}")]
    Server(ErrorBody),
    /// No response arrived in time.
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection is closed; the server's reason, when it gave one.
    #[error("connection closed{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Closed(Option<ErrorBody>),
    /// The server broke the protocol (wrong handshake answer, wrong response type).
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The server's error code, when the server refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(body) => Some(body.code),
            ClientError::Closed(Some(body)) => Some(body.code),
            _ => None,
        }
    }
}

type Pending = HashMap<u32, oneshot::Sender<Result<Response, ErrorBody>>>;

struct Shared {
    /// Encoded frames for the writer task.
    outbound: mpsc::Sender<Bytes>,
    max_frame_bytes: u32,
    /// Requests waiting for their response; `None` once the connection is closed, so that a
    /// request made after that fails at once instead of waiting for its timeout.
    pending: Mutex<Option<Pending>>,
    next_id: AtomicU32,
    request_timeout: Duration,
    /// Why the connection ended, once it has.
    close_reason: Mutex<Option<ErrorBody>>,
}

/// A cloneable handle that sends requests; many tasks may use one connection at once. The
/// connection closes when the [`Client`] and every handle are dropped, or on [`ClientHandle::close`].
#[derive(Clone)]
pub struct ClientHandle {
    shared: Arc<Shared>,
    _alive: Arc<DropGuard>,
    closing: CancellationToken,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").finish_non_exhaustive()
    }
}

/// A request on its way: await [`PendingResponse::response`] for the answer. Dropping it
/// forgets the request (its answer is discarded when it arrives).
#[derive(Debug)]
pub struct PendingResponse {
    handle: ClientHandle,
    id: u32,
    rx: oneshot::Receiver<Result<Response, ErrorBody>>,
}

impl PendingResponse {
    /// Waits (with the client's request timeout) for the answer.
    pub async fn response(self) -> Result<Response, ClientError> {
        let timeout = self.handle.shared.request_timeout;
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(error))) => Err(ClientError::Server(error)),
            Ok(Err(_)) => Err(self.handle.closed()),
            Err(_) => {
                self.handle.forget(self.id);
                Err(ClientError::Timeout(timeout))
            }
        }
    }
}

/// A connection to a Chat-Room server: request methods (through [`ClientHandle`], which it
/// dereferences to) and the stream of [`Event`]s.
#[derive(Debug)]
pub struct Client {
    handle: ClientHandle,
    events: mpsc::Receiver<Event>,
    welcome: Welcome,
}

impl std::ops::Deref for Client {
    type Target = ClientHandle;
    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Sent in `Hello`.
    pub client_name: String,
    /// How long a request waits for its response.
    pub request_timeout: Duration,
    /// When set, every message event is shown to this hook as a borrowed [`MessageView`]
    /// instead of being decoded into an [`Event`] and queued: no allocation per message, for
    /// programs that see very many (the load generator). Other events are queued as usual. The
    /// hook also gets the moment the socket read that completed the message returned: one
    /// clock reading per read, however many messages it brought.
    pub on_message: Option<MessageHook>,
}

/// A function that sees message events without their being decoded (see
/// [`ClientOptions::on_message`]). It runs on the connection's reader task: keep it short.
#[derive(Clone)]
pub struct MessageHook(Arc<MessageHookFn>);

/// What a [`MessageHook`] calls: the message, and when the read that completed it returned.
type MessageHookFn = dyn Fn(&MessageView<'_>, Instant) + Send + Sync;

impl MessageHook {
    /// A hook calling `f` with each message and when it was read.
    pub fn new(f: impl Fn(&MessageView<'_>, Instant) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for MessageHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageHook(..)")
    }
}

impl ClientOptions {
    /// Defaults with the given client name.
    pub fn new(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            on_message: None,
        }
    }
}

impl Client {
    /// Connects to `addr` and does the handshake.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        client_name: impl Into<String>,
    ) -> Result<Client, ClientError> {
        Self::connect_with(addr, ClientOptions::new(client_name)).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::handshake(stream, options).await
    }

    /// Does the handshake on an already connected stream.
    pub async fn handshake(
        stream: TcpStream,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let (mut read, mut write) = stream.into_split();
        let hello = ClientFrame::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: options.client_name.clone(),
        });
        let mut out = BytesMut::new();
        encode_frame_into(&hello, DEFAULT_MAX_FRAME_BYTES, &mut out)?;
        write.write_all(&out).await?;

        let mut codec = ClientCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        let first = tokio::time::timeout(
            options.request_timeout,
            read_frame(&mut read, &mut codec, &mut buf),
        )
        .await
        .map_err(|_| ClientError::Timeout(options.request_timeout))??;
        let welcome = match first {
            Some(ServerFrame::Welcome(w)) => w,
            Some(ServerFrame::Error(e)) => return Err(ClientError::Server(e)),
            Some(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected Welcome, got {other:?}"
                )));
            }
            None => return Err(ClientError::Closed(None)),
        };

        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let max = welcome.limits.max_frame_bytes;
        let shared = Arc::new(Shared {
            outbound: outbound_tx,
            max_frame_bytes: max,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU32::new(1),
            request_timeout: options.request_timeout,
            close_reason: Mutex::new(None),
        });
        let closing = CancellationToken::new();
        tokio::spawn(write_loop(write, outbound_rx, closing.clone()));
        tokio::spawn(read_loop(
            read,
            buf,
            ClientCodec::new(max),
            Arc::clone(&shared),
            events_tx,
            options.on_message.clone(),
            closing.clone(),
            silence_limit(&welcome.limits),
        ));
        Ok(Client {
            handle: ClientHandle {
                shared,
                _alive: Arc::new(closing.clone().drop_guard()),
                closing,
            },
            events: events_rx,
            welcome,
        })
    }

    /// What the server said in its `Welcome`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// A cloneable handle for sending requests from other tasks.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// The next event, or `None` once the connection is closed and every event has been read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is already waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Splits into the request handle and the event receiver, for programs that read events in
    /// one task and send in others.
    pub fn into_parts(self) -> (ClientHandle, mpsc::Receiver<Event>) {
        (self.handle, self.events)
    }
}

async fn read_frame(
    read: &mut OwnedReadHalf,
    codec: &mut ClientCodec,
    buf: &mut BytesMut,
) -> Result<Option<ServerFrame>, ClientError> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUFFER);
        }
        if read.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// How long the server may be silent before the connection is taken for dead. It pings a quiet
/// connection every heartbeat interval and answers every request, so hearing nothing for its
/// whole idle timeout (and at least two heartbeats) means the path is gone — a NAT that forgot
/// the connection, a laptop that changed networks — which TCP alone notices only after many
/// minutes, and only if something is sent. `None` when the server advertises no heartbeat.
fn silence_limit(limits: &Limits) -> Option<Duration> {
    let ms = limits
        .idle_timeout_ms
        .max(limits.heartbeat_interval_ms.saturating_mul(2));
    (limits.heartbeat_interval_ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

/// What the reader woke up for.
enum Woken {
    Read(std::io::Result<usize>),
    Closing,
    SilenceCheck,
}

#[allow(clippy::too_many_arguments)] // One call site, each argument a different part.
async fn read_loop(
    mut read: OwnedReadHalf,
    mut buf: BytesMut,
    mut codec: ClientCodec,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    on_message: Option<MessageHook>,
    closing: CancellationToken,
    silence: Option<Duration>,
) {
    let max_frame = codec.max_frame_bytes();
    let mut read_at = Instant::now();
    // One timer for the connection's life, re-armed only when it fires: a busy connection pays
    // nothing per read for it.
    let mut silence_timer = silence.map(|limit| Box::pin(tokio::time::sleep(limit)));
    let reason = 'connection: loop {
        // Handle every frame already buffered before waiting on the socket again: a busy
        // connection then costs one decode and one queue push per event, not a `select!`.
        loop {
            // A message event for the hook is read where it lies in the buffer: no split, no
            // copy, no decode into an owned event.
            if let Some(hook) = &on_message
                && let Ok(Some((payload, used))) = codec.peek_raw(&buf)
                && let Some(view) = peek_message(payload)
            {
                (hook.0)(&view, read_at);
                buf.advance(used);
                continue;
            }
            let payload = match codec.decode_raw(&mut buf) {
                Ok(Some(payload)) => payload,
                Ok(None) => break,
                Err(e) => {
                    break 'connection Some(ErrorBody::new(ErrorCode::Internal, e.to_string()));
                }
            };
            // A message split across reads arrives here, once `decode_raw` has it whole.
            if let Some(hook) = &on_message
                && let Some(view) = peek_message(&payload)
            {
                (hook.0)(&view, read_at);
                continue;
            }
            let frame = match decode_payload::<ServerFrame>(&payload, max_frame) {
                Ok(frame) => frame,
                // A frame from a newer server (an event variant this build does not know): the
                // length prefix keeps the stream in step, so skip it and carry on.
                Err(CodecError::Malformed(_)) => continue,
                Err(e) => {
                    break 'connection Some(ErrorBody::new(ErrorCode::Internal, e.to_string()));
                }
            };
            if let Some(reason) = handle_frame(frame, &shared, &events, &closing).await {
                break 'connection reason;
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUFFER);
        }
        let woken = tokio::select! {
            _ = closing.cancelled() => Woken::Closing,
            _ = async {
                match silence_timer.as_mut() {
                    Some(timer) => timer.as_mut().await,
                    None => std::future::pending().await,
                }
            } => Woken::SilenceCheck,
            read = read.read_buf(&mut buf) => Woken::Read(read),
        };
        match woken {
            Woken::Closing => break None,
            Woken::SilenceCheck => {
                let (Some(limit), Some(timer)) = (silence, silence_timer.as_mut()) else {
                    continue;
                };
                let quiet = read_at.elapsed();
                if quiet >= limit {
                    break Some(ErrorBody::new(
                        ErrorCode::IdleTimeout,
                        format!(
                            "nothing heard from the server for {} s; the connection is taken \
                             for dead",
                            quiet.as_secs()
                        ),
                    ));
                }
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + (limit - quiet));
            }
            Woken::Read(Ok(0)) => break None,
            Woken::Read(Ok(_)) => read_at = Instant::now(),
            Woken::Read(Err(e)) => break Some(ErrorBody::new(ErrorCode::Internal, e.to_string())),
        }
    };
    if let Ok(mut slot) = shared.close_reason.lock() {
        *slot = reason;
    }
    // Dropping the waiters wakes every pending request with `Closed`.
    if let Ok(mut pending) = shared.pending.lock() {
        *pending = None;
    }
    closing.cancel();
}

/// Routes one frame. `Some(reason)` ends the connection (`None` inside: closed locally).
async fn handle_frame(
    frame: ServerFrame,
    shared: &Shared,
    events: &mpsc::Sender<Event>,
    closing: &CancellationToken,
) -> Option<Option<ErrorBody>> {
    match frame {
        ServerFrame::Response { id, result } => {
            let waiter = shared
                .pending
                .lock()
                .ok()
                .and_then(|mut p| p.as_mut().and_then(|p| p.remove(&id)));
            if let Some(waiter) = waiter {
                // The requester may have timed out and gone; nothing to do then.
                let _ = waiter.send(result);
            }
        }
        ServerFrame::Event(event) => match events.try_send(event) {
            // If nobody reads events at all the receiver is gone and events are discarded,
            // while responses keep flowing.
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            // A full queue: wait (back-pressure up to the server, which drops a client that
            // stays behind).
            Err(mpsc::error::TrySendError::Full(event)) => {
                tokio::select! {
                    _ = closing.cancelled() => return Some(None),
                    _ = events.send(event) => {}
                }
            }
        },
        ServerFrame::Ping { nonce } => {
            // A full queue means frames are going out anyway, and any frame counts as
            // liveness; the pong may be skipped then.
            if let Ok(pong) = encode_frame(&ClientFrame::Pong { nonce }, shared.max_frame_bytes) {
                let _ = shared.outbound.try_send(pong);
            }
        }
        ServerFrame::Error(e) => return Some(Some(e)),
        ServerFrame::Welcome(_) => {
            return Some(Some(ErrorBody::new(
                ErrorCode::BadRequest,
                "server sent a second Welcome",
            )));
        }
    }
    None
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Bytes>,
    closing: CancellationToken,
) {
    let mut batch = BytesMut::with_capacity(WRITE_BATCH_BYTES);
    loop {
        let first = tokio::select! {
            biased;
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
            _ = closing.cancelled() => break,
        };
        let written = if frames.is_empty() {
            write.write_all(&first).await
        } else {
            batch.clear();
            batch.extend_from_slice(&first);
            while batch.len() < WRITE_BATCH_BYTES {
                match frames.try_recv() {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(_) => break,
                }
            }
            write.write_all(&batch).await
        };
        if written.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

macro_rules! expect_response {
    ($response:expr, $pattern:pat => $value:expr) => {
        match $response {
            $pattern => Ok($value),
            other => Err(ClientError::Protocol(format!(
                "unexpected response: {other:?}"
            ))),
        }
    };
}

impl ClientHandle {
    /// Closes the connection now; pending and later requests fail with [`ClientError::Closed`].
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Why the server closed the connection, once it has (and if it said).
    pub fn close_reason(&self) -> Option<ErrorBody> {
        self.shared.close_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Whether the connection is closed (by either side).
    pub fn is_closed(&self) -> bool {
        self.closing.is_cancelled()
            || self
                .shared
                .pending
                .lock()
                .map(|p| p.is_none())
                .unwrap_or(true)
    }

    /// Sends any request and waits for its response.
    pub async fn request(&self, body: Request) -> Result<Response, ClientError> {
        self.send_request(body).await?.response().await
    }

    /// Queues a request for sending and returns without waiting for the answer: for pipelining.
    /// Requests leave in the order their `send_request` calls complete, so calling it in a loop
    /// and awaiting the [`PendingResponse`]s later keeps them in order on the wire (which the
    /// chunks of an upload need).
    pub async fn send_request(&self, body: Request) -> Result<PendingResponse, ClientError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.shared.pending.lock().as_deref_mut() {
            Ok(Some(pending)) => {
                pending.insert(id, tx);
            }
            Ok(None) | Err(_) => return Err(self.closed()),
        }
        let frame = match encode_frame(
            &ClientFrame::Request { id, body },
            self.shared.max_frame_bytes,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                self.forget(id);
                return Err(e.into());
            }
        };
        let sent = self.shared.outbound.send(frame).await;
        if sent.is_err() {
            self.forget(id);
            return Err(self.closed());
        }
        Ok(PendingResponse {
            handle: self.clone(),
            id,
            rx,
        })
    }

    fn forget(&self, id: u32) {
        if let Ok(Some(pending)) = self.shared.pending.lock().as_deref_mut() {
            pending.remove(&id);
        }
    }

    fn closed(&self) -> ClientError {
        let reason = self.shared.close_reason.lock().ok().and_then(|r| r.clone());
        ClientError::Closed(reason)
    }

    async fn done(&self, body: Request) -> Result<(), ClientError> {
        expect_response!(self.request(body).await?, Response::Done => ())
    }

    async fn session(&self, body: Request) -> Result<Session, ClientError> {
        expect_response!(self.request(body).await?, Response::Session(s) => s)
    }

    async fn room(&self, body: Request) -> Result<RoomSummary, ClientError> {
        expect_response!(self.request(body).await?, Response::Room(r) => r)
    }

    async fn rooms(&self, body: Request) -> Result<Vec<RoomSummary>, ClientError> {
        expect_response!(self.request(body).await?, Response::Rooms(r) => r)
    }

    /// Creates an account and logs in as it.
    pub async fn register(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        self.session(Request::Register {
            username: username.into(),
            password: password.into(),
        })
        .await
    }

    /// As a logged-in admin, creates an account for someone else (this connection stays logged
    /// in as itself). The way to add users on a server with closed registration.
    pub async fn create_account(&self, username: &str, password: &str) -> Result<(), ClientError> {
        self.done(Request::Register {
            username: username.into(),
            password: password.into(),
        })
        .await
    }

    /// Logs in with a password.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        self.session(Request::Login {
            username: username.into(),
            password: password.into(),
        })
        .await
    }

    /// Logs in with a session token.
    pub async fn resume(&self, token: &str) -> Result<Session, ClientError> {
        self.session(Request::Resume {
            token: token.into(),
        })
        .await
    }

    /// Ends this session; its token stops working.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.done(Request::Logout).await
    }

    /// Changes the password; other sessions of the account are revoked.
    pub async fn change_password(&self, old: &str, new: &str) -> Result<(), ClientError> {
        self.done(Request::ChangePassword {
            old_password: old.into(),
            new_password: new.into(),
        })
        .await
    }

    /// The rooms and direct chats I am in, with unread counts.
    pub async fn my_rooms(&self) -> Result<Vec<RoomSummary>, ClientError> {
        self.rooms(Request::MyRooms).await
    }

    /// Every public room.
    pub async fn public_rooms(&self) -> Result<Vec<RoomSummary>, ClientError> {
        self.rooms(Request::PublicRooms).await
    }

    /// Creates a room and makes me its owner.
    pub async fn create_room(
        &self,
        name: &str,
        visibility: Visibility,
    ) -> Result<RoomSummary, ClientError> {
        self.room(Request::CreateRoom {
            name: name.into(),
            visibility,
        })
        .await
    }

    /// Joins a public room by name.
    pub async fn join_room(&self, name: &str) -> Result<RoomSummary, ClientError> {
        self.room(Request::JoinRoom { name: name.into() }).await
    }

    /// Leaves a room.
    pub async fn leave_room(&self, room: RoomId) -> Result<(), ClientError> {
        self.done(Request::LeaveRoom { room }).await
    }

    /// Adds a user to a room.
    pub async fn invite(&self, room: RoomId, username: &str) -> Result<(), ClientError> {
        self.done(Request::Invite {
            room,
            username: username.into(),
        })
        .await
    }

    /// A room with its members.
    pub async fn room_info(&self, room: RoomId) -> Result<RoomInfo, ClientError> {
        expect_response!(self.request(Request::RoomInfo { room }).await?, Response::RoomInfo(i) => i)
    }

    /// Sets a room's topic.
    pub async fn set_topic(&self, room: RoomId, topic: &str) -> Result<(), ClientError> {
        self.done(Request::SetTopic {
            room,
            topic: topic.into(),
        })
        .await
    }

    /// Opens (creating if needed) the direct chat with a user.
    pub async fn open_direct(&self, username: &str) -> Result<RoomSummary, ClientError> {
        self.room(Request::OpenDirect {
            username: username.into(),
        })
        .await
    }

    /// Posts a message; returns once the server has stored it.
    pub async fn send_message(
        &self,
        room: RoomId,
        text: impl Into<String>,
    ) -> Result<SentMessage, ClientError> {
        let request = Request::SendMessage {
            room,
            text: text.into(),
        };
        expect_response!(self.request(request).await?, Response::Sent(s) => s)
    }

    /// Sends a direct message to a user (opening the chat if needed).
    pub async fn send_direct(
        &self,
        username: &str,
        text: impl Into<String>,
    ) -> Result<SentMessage, ClientError> {
        let room = self.open_direct(username).await?;
        self.send_message(room.id, text).await
    }

    /// A page of history.
    pub async fn history(
        &self,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let request = Request::History {
            room,
            anchor,
            limit,
        };
        expect_response!(self.request(request).await?, Response::History(h) => h)
    }

    /// Marks a room read up to `seq`.
    pub async fn mark_read(&self, room: RoomId, seq: Seq) -> Result<(), ClientError> {
        self.done(Request::MarkRead { room, seq }).await
    }

    /// Sets my presence (online or away) and status text.
    pub async fn set_presence(
        &self,
        status: PresenceStatus,
        message: Option<String>,
    ) -> Result<(), ClientError> {
        self.done(Request::SetPresence { status, message }).await
    }

    /// Tells a room I am typing.
    pub async fn typing(&self, room: RoomId) -> Result<(), ClientError> {
        self.done(Request::Typing { room }).await
    }

    /// A round trip to the server.
    pub async fn ping(&self) -> Result<(), ClientError> {
        expect_response!(self.request(Request::Ping).await?, Response::Pong => ())
    }

    /// What the server offers beyond the `Welcome`: the AI bot's name, if it has one. Servers
    /// older than this request close the connection instead of answering.
    pub async fn server_info(&self) -> Result<ServerInfo, ClientError> {
        expect_response!(self.request(Request::ServerInfo).await?, Response::ServerInfo(i) => i)
    }

    /// Every account with presence.
    pub async fn list_users(&self) -> Result<Vec<UserPresence>, ClientError> {
        expect_response!(self.request(Request::ListUsers).await?, Response::Users(u) => u)
    }

    /// Removes a member from a room.
    pub async fn kick(
        &self,
        room: RoomId,
        username: &str,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        self.done(Request::Kick {
            room,
            username: username.into(),
            reason,
        })
        .await
    }
    /// Changes a member's role in a room (as its owner). [`RoomRole::Owner`] hands the room
    /// over to them and makes me a moderator.
    pub async fn set_role(
        &self,
        room: RoomId,
        username: &str,
        role: RoomRole,
    ) -> Result<(), ClientError> {
        self.done(Request::SetRole {
            room,
            username: username.into(),
            role,
        })
        .await
    }

    /// Offers a file for upload to a room; the answer says where to start sending.
    pub async fn offer_upload(
        &self,
        room: RoomId,
        name: &str,
        size: u64,
        sha256: [u8; 32],
    ) -> Result<UploadReady, ClientError> {
        let request = Request::OfferUpload {
            room,
            name: name.into(),
            size,
            sha256,
        };
        expect_response!(self.request(request).await?, Response::UploadReady(r) => r)
    }

    /// Sends one chunk of an upload; returns how many bytes the server now has.
    pub async fn upload_chunk(
        &self,
        upload: UploadId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, ClientError> {
        let request = Request::UploadChunk {
            upload,
            offset,
            data,
        };
        expect_response!(
            self.request(request).await?,
            Response::ChunkStored { received, .. } => received
        )
    }

    /// Finishes an upload: the server verifies the hash and posts the file to the room.
    pub async fn finish_upload(&self, upload: UploadId) -> Result<FileInfo, ClientError> {
        let request = Request::FinishUpload { upload };
        expect_response!(self.request(request).await?, Response::File(f) => f)
    }

    /// Abandons an upload; the server discards its bytes.
    pub async fn cancel_upload(&self, upload: UploadId) -> Result<(), ClientError> {
        self.done(Request::CancelUpload { upload }).await
    }

    /// A stored file's details.
    pub async fn file_info(&self, file: FileId) -> Result<FileInfo, ClientError> {
        let request = Request::FileInfo { file };
        expect_response!(self.request(request).await?, Response::File(f) => f)
    }

    /// Up to `len` bytes of a stored file from `offset` (empty at or past the end).
    pub async fn read_file(
        &self,
        file: FileId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ClientError> {
        let request = Request::ReadFile { file, offset, len };
        expect_response!(self.request(request).await?, Response::FileChunk { data, .. } => data)
    }

    /// The files posted in a room, newest first.
    pub async fn list_files(&self, room: RoomId) -> Result<Vec<FileInfo>, ClientError> {
        let request = Request::ListFiles { room };
        expect_response!(self.request(request).await?, Response::Files(f) => f)
    }

    /// Deletes a message (mine, or any as the room's owner or a moderator).
    pub async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<(), ClientError> {
        self.done(Request::DeleteMessage { room, seq }).await
    }
}
