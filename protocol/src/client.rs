//! The async client (feature `client`): what bots, the terminal client and the benchmark tool are
//! written against.
//!
//! [`Client::connect`] opens a TCP connection and does the `Hello`/`Welcome` handshake. Two tasks
//! then own the socket: a reader that routes each response to the request waiting for it, answers
//! pings, and queues events; and a writer that drains a bounded queue of outgoing frames, several
//! frames per write. Each request method sends one [`Request`] and waits (with a timeout) for its
//! matching [`Response`].
//!
//! **Read the events.** The reader queues up to [`EVENT_QUEUE`] events; when the queue is full it
//! stops reading the socket until the program takes one — and responses then stop arriving too,
//! because they come through the same socket behind those events. So a loop that awaits a request
//! while nobody else drains [`Client::next_event`] can stall on a busy connection until the
//! request times out (and the server drops a client that stays behind). Read events in their own
//! task ([`Client::into_parts`]) when requests are awaited in the event loop for long, or keep
//! the loop draining as below, where each await is short. Dropping the event receiver is fine
//! when a program wants no events: they are then discarded as they arrive.
//!
//! ```no_run
//! # async fn bot() -> Result<(), chatroom_protocol::client::ClientError> {
//! use chatroom_protocol::{client::Client, mentions::mentions_user, Event};
//! let mut client = Client::connect("127.0.0.1:8888", "my-bot").await?;
//! // Registers the account on the first run; a wrong password fails as a login.
//! client.login_or_register("bot", "correct horse battery").await?;
//! client.join_room("public").await?;
//! // Every event is taken as it comes; the one request awaited in the loop is answered
//! // promptly (a reply awaited while events pile up unread could time out, see above).
//! while let Some(event) = client.next_event().await {
//!     if let Event::Message(m) = event {
//!         if mentions_user(&m.text, "bot") {
//!             // Into the room the message came from. A refused reply (too fast, muted,
//!             // kicked) is no reason to stop the bot: log it and carry on.
//!             let reply = format!("hello, {}", m.sender_name);
//!             if let Err(e) = client.send_message(m.room, reply).await {
//!                 eprintln!("cannot answer: {e}");
//!             }
//!         }
//!     }
//! }
//! // `None`: the connection is over (the server restarted, say); `close_error` says why.
//! // Connect again after a pause, or exit with an error so a supervisor restarts the bot.
//! eprintln!("disconnected: {:?}", client.close_error());
//! # Ok(()) }
//! ```

use crate::codec::{
    ClientCodec, CodecError, DEFAULT_MAX_FRAME_BYTES, decode_payload, encode_frame,
    encode_frame_into, peek_message,
};
use crate::frames::*;
use crate::ids::{FileId, MessageId, RoomId, Seq, UploadId};
use crate::wire_format::Reader;
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
/// that way, the server drops the connection as too slow). While it is stopped no response is
/// read either: a request awaited by the only code that reads events then waits until it times
/// out.
pub const EVENT_QUEUE: usize = 4096;
pub use crate::codec::MAX_FRAME_BYTES_ACCEPTED;
const OUTBOUND_QUEUE: usize = 1024;
const READ_BUFFER: usize = 64 * 1024;
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// What can go wrong talking to a server.
///
/// Every variant's message includes its cause, and none reports a [`source`] separately, so
/// printing an error — alone or as a chain, like `anyhow`'s `{:#}` — says each thing once.
///
/// When the connection ends, every request waiting on it and every later one fails with the
/// same error, which [`ClientHandle::close_error`] also returns: [`Closed`](Self::Closed) when
/// either side closed it (with the server's reason, if it gave one), [`Io`](Self::Io) when the
/// socket failed, [`Codec`](Self::Codec) when the server sent a frame too large to read, and
/// [`Undecodable`](Self::Undecodable) when its closing error could not be decoded.
///
/// [`source`]: std::error::Error::source
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the socket failed (a local failure: the server said nothing).
    #[error("connection error: {0}")]
    Io(std::io::Error),
    /// A frame could not be encoded, or the server sent one larger than the limit (a local
    /// failure: the server said nothing).
    #[error(transparent)]
    Codec(CodecError),
    /// The server refused the request.
    #[error("server error: {0}")]
    Server(ErrorBody),
    /// No response arrived in time.
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection is closed; the server's reason, when it gave one (an error frame, or
    /// [`ErrorCode::ShuttingDown`] after [`Event::ServerShutdown`]) — or
    /// [`ErrorCode::IdleTimeout`] when the client took a server it heard nothing from for too
    /// long for dead (`PROTOCOL.md` §4).
    #[error("connection closed{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Closed(Option<ErrorBody>),
    /// The server broke the protocol (wrong handshake answer, wrong response type).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server's answer could not be decoded: most likely a newer server using a response
    /// type or an error code added since this build (enums are append-only, `PROTOCOL.md` §10).
    /// As the answer to a request only that request fails and the connection stays up; as the
    /// server's closing error it ends the connection. Holds what could be read (an unknown
    /// error code with the server's message) or why decoding failed.
    #[error("unreadable answer from the server (is it newer than this client?): {0}")]
    Undecodable(String),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> Self {
        ClientError::Codec(e)
    }
}

impl ClientError {
    /// The server's error code, when the server refused the request or said why it closed the
    /// connection. `None` for local failures and for codes this build does not know
    /// ([`Undecodable`](Self::Undecodable)).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(body) => Some(body.code),
            ClientError::Closed(Some(body)) => Some(body.code),
            _ => None,
        }
    }

    /// The same error again, for the many requests that fail for one reason (an
    /// [`io::Error`](std::io::Error) is copied as its kind and message).
    fn duplicate(&self) -> ClientError {
        match self {
            ClientError::Io(e) => ClientError::Io(copy_io_error(e)),
            ClientError::Codec(e) => ClientError::Codec(match e {
                CodecError::Io(e) => CodecError::Io(copy_io_error(e)),
                CodecError::FrameTooLarge { len, max } => CodecError::FrameTooLarge {
                    len: *len,
                    max: *max,
                },
                CodecError::Malformed(e) => CodecError::Malformed(copy_payload_error(e)),
                CodecError::Encode(e) => CodecError::Encode(copy_payload_error(e)),
            }),
            ClientError::Server(body) => ClientError::Server(body.clone()),
            ClientError::Timeout(after) => ClientError::Timeout(*after),
            ClientError::Closed(reason) => ClientError::Closed(reason.clone()),
            ClientError::Protocol(what) => ClientError::Protocol(what.clone()),
            ClientError::Undecodable(what) => ClientError::Undecodable(what.clone()),
        }
    }
}

fn copy_io_error(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

fn copy_payload_error(e: &crate::PayloadError) -> crate::PayloadError {
    match e {
        crate::PayloadError::SizeLimit => crate::PayloadError::SizeLimit,
        crate::PayloadError::Invalid(what) => crate::PayloadError::Invalid(what.clone()),
    }
}

type Answer = Result<Response, ClientError>;
type Pending = HashMap<u32, oneshot::Sender<Answer>>;

struct Shared {
    /// Encoded frames for the writer task.
    outbound: mpsc::Sender<Bytes>,
    max_frame_bytes: u32,
    /// Requests waiting for their response; `None` once the connection is closed, so that a
    /// request made after that fails at once instead of waiting for its timeout.
    pending: Mutex<Option<Pending>>,
    next_id: AtomicU32,
    request_timeout: Duration,
    /// Why the connection ended, once it has: what requests fail with from then on.
    ended: Mutex<Option<ClientError>>,
}

/// A cloneable handle that sends requests; many tasks may use one connection at once. The
/// connection closes when the [`Client`] and every handle are dropped, or on [`ClientHandle::close`].
///
/// Responses arrive through the same socket as events, behind them: see [`Client`] on keeping
/// the event queue drained.
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
    rx: oneshot::Receiver<Answer>,
}

impl PendingResponse {
    /// Waits (with the client's request timeout) for the answer.
    pub async fn response(mut self) -> Result<Response, ClientError> {
        let timeout = self.handle.shared.request_timeout;
        match tokio::time::timeout(timeout, &mut self.rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.handle.closed()),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }
}

impl Drop for PendingResponse {
    fn drop(&mut self) {
        // Answered, timed out or abandoned: either way nobody waits for this id any more.
        self.handle.forget(self.id);
    }
}

/// A connection to a Chat-Room server: request methods (through [`ClientHandle`], which it
/// dereferences to) and the stream of [`Event`]s.
///
/// Events wait in a queue of [`EVENT_QUEUE`]. **When it is full the client stops reading the
/// socket**, and since responses come through the same socket, a request then gets no answer
/// until events are taken — a program that awaits a request in the only loop that reads events
/// can see it time out on a busy connection (and the server eventually drops a client that
/// stays behind). Keep [`next_event`](Self::next_event) drained, or read events in a task of
/// their own ([`into_parts`](Self::into_parts)). Events are discarded, and never stop the
/// reading, once the receiver is dropped.
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
    /// Connects to `addr` and does the handshake. `addr` needs its port: a `"host:port"`
    /// string, or a socket address (unlike the `chatroom` command's `--server`, 8888 is not
    /// assumed; `"localhost"` alone fails as `ClientError::Io`, "invalid socket address").
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
        .map_err(|_| ClientError::Timeout(options.request_timeout))?
        .map_err(|e| match e {
            // Bytes that are not a frame at all: another kind of server on that port (an HTTP
            // server's "HTTP" reads as a length of over a gigabyte).
            ClientError::Codec(e) => ClientError::Protocol(format!(
                "the server did not answer like a Chat-Room server ({e}); is the address right?"
            )),
            other => other,
        })?;
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
        let max = welcome.limits.max_frame_bytes.min(MAX_FRAME_BYTES_ACCEPTED);
        let shared = Arc::new(Shared {
            outbound: outbound_tx,
            max_frame_bytes: max,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU32::new(1),
            request_timeout: options.request_timeout,
            ended: Mutex::new(None),
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

    /// The next event, or `None` once the connection is closed and every event has been read
    /// ([`close_error`](ClientHandle::close_error) then says why).
    ///
    /// Call it often: while [`EVENT_QUEUE`] events wait unread the client reads nothing from
    /// the socket, responses included, so a request awaited meanwhile may time out.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is already waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Splits into the request handle and the event receiver, for programs that read events in
    /// one task and send in others.
    ///
    /// Keep receiving: once [`EVENT_QUEUE`] events wait in the receiver the client stops
    /// reading the socket, and responses wait with the events. Dropping the receiver is the
    /// way to say no events are wanted: they are discarded from then on (those already queued
    /// are lost) and responses keep flowing.
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
    // A shutting-down server says why in an event, then closes without an error frame: that
    // event is the close's reason.
    let mut announced: Option<ErrorBody> = None;
    let ended = 'connection: loop {
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
                // A frame over the limit: the stream cannot be followed any further.
                Err(e) => break 'connection ClientError::Codec(e),
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
                // Most likely a frame from a newer server, with a variant this build does not
                // know (`PROTOCOL.md` §10). The length prefix keeps the stream in step.
                Err(e) => match undecodable(&payload, &e) {
                    Undecodable::Skip => continue,
                    Undecodable::Answer { id, what } => {
                        answer(&shared, id, Err(ClientError::Undecodable(what)));
                        continue;
                    }
                    Undecodable::Closing(what) => {
                        break 'connection ClientError::Undecodable(what);
                    }
                },
            };
            if let ServerFrame::Event(Event::ServerShutdown { reason }) = &frame {
                announced = Some(ErrorBody::new(ErrorCode::ShuttingDown, reason.clone()));
            }
            if let Some(ended) = handle_frame(frame, &shared, &events, &closing).await {
                break 'connection ended;
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
            Woken::Closing => break ClientError::Closed(None),
            Woken::SilenceCheck => {
                let (Some(limit), Some(timer)) = (silence, silence_timer.as_mut()) else {
                    continue;
                };
                let quiet = read_at.elapsed();
                if quiet >= limit {
                    // A local verdict, but the code `PROTOCOL.md` §4 promises for it.
                    break ClientError::Closed(Some(ErrorBody::new(
                        ErrorCode::IdleTimeout,
                        format!(
                            "nothing heard from the server for {} s; the connection is taken \
                             for dead",
                            quiet.as_secs()
                        ),
                    )));
                }
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + (limit - quiet));
            }
            Woken::Read(Ok(0)) => break ClientError::Closed(announced),
            Woken::Read(Ok(_)) => read_at = Instant::now(),
            // A reset after the announcement is still the shutdown.
            Woken::Read(Err(_)) if announced.is_some() => break ClientError::Closed(announced),
            Woken::Read(Err(e)) => break ClientError::Io(e),
        }
    };
    if let Ok(mut slot) = shared.ended.lock() {
        *slot = Some(ended);
    }
    // Dropping the waiters wakes every pending request, to fail with `ended`.
    if let Ok(mut pending) = shared.pending.lock() {
        *pending = None;
    }
    closing.cancel();
}

/// Hands the answer to request `id` to whoever waits for it.
fn answer(shared: &Shared, id: u32, answer: Answer) {
    let waiter = shared
        .pending
        .lock()
        .ok()
        .and_then(|mut p| p.as_mut().and_then(|p| p.remove(&id)));
    if let Some(waiter) = waiter {
        // The requester may have timed out and gone; nothing to do then.
        let _ = waiter.send(answer);
    }
}

/// What to do with a frame that did not decode.
#[derive(Debug, PartialEq)]
enum Undecodable {
    /// Not a response or an error (an event, most likely): nobody waits for it.
    Skip,
    /// The answer to request `id`, which fails.
    Answer { id: u32, what: String },
    /// The server's closing error.
    Closing(String),
}

/// Reads what it can of a payload that did not decode as a [`ServerFrame`]: the frame's type,
/// a response's id, and — in an error with a code this build does not know — the code and the
/// server's message (an [`ErrorBody`]'s fields are fixed within a protocol version; only the
/// code's enum grows).
fn undecodable(payload: &[u8], error: &CodecError) -> Undecodable {
    const RESPONSE: u64 = 1;
    const ERROR: u64 = 4;
    const RESULT_ERR: u64 = 1;
    let mut r = Reader { rest: payload };
    match r.varint() {
        Some(RESPONSE) => {
            let Some(id) = r.varint().and_then(|id| u32::try_from(id).ok()) else {
                return Undecodable::Skip;
            };
            let what = match r.varint() {
                Some(RESULT_ERR) => error_body(&mut r),
                _ => None,
            };
            Undecodable::Answer {
                id,
                what: what.unwrap_or_else(|| error.to_string()),
            }
        }
        Some(ERROR) => {
            Undecodable::Closing(error_body(&mut r).unwrap_or_else(|| error.to_string()))
        }
        _ => Undecodable::Skip,
    }
}

/// An [`ErrorBody`] with any code, as the rest of the payload, described.
fn error_body(r: &mut Reader<'_>) -> Option<String> {
    let code = r.varint()?;
    let message = r.str()?;
    r.rest
        .is_empty()
        .then(|| format!("error code {code}, unknown to this client: {message}"))
}

/// Routes one frame. `Some(error)` ends the connection with that error.
async fn handle_frame(
    frame: ServerFrame,
    shared: &Shared,
    events: &mpsc::Sender<Event>,
    closing: &CancellationToken,
) -> Option<ClientError> {
    match frame {
        ServerFrame::Response { id, result } => {
            answer(shared, id, result.map_err(ClientError::Server));
        }
        ServerFrame::Event(event) => match events.try_send(event) {
            // If nobody reads events at all the receiver is gone and events are discarded,
            // while responses keep flowing.
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            // A full queue: wait (back-pressure up to the server, which drops a client that
            // stays behind).
            Err(mpsc::error::TrySendError::Full(event)) => {
                tokio::select! {
                    _ = closing.cancelled() => return Some(ClientError::Closed(None)),
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
        ServerFrame::Error(e) => return Some(ClientError::Closed(Some(e))),
        ServerFrame::Welcome(_) => {
            return Some(ClientError::Protocol(
                "the server sent a second Welcome".to_owned(),
            ));
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
        // Closing first: once the connection is closed nothing more goes out, not even frames
        // already queued (their requests fail with `Closed`, so none may take effect).
        let first = tokio::select! {
            biased;
            _ = closing.cancelled() => break,
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        let bytes = if frames.is_empty() {
            &first
        } else {
            batch.clear();
            batch.extend_from_slice(&first);
            while batch.len() < WRITE_BATCH_BYTES {
                match frames.try_recv() {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(_) => break,
                }
            }
            &batch[..]
        };
        // A write can wait forever on a dead path with a full send buffer: closing cuts it
        // short, so that the task ends and the socket is released.
        let written = tokio::select! {
            biased;
            _ = closing.cancelled() => break,
            written = write.write_all(bytes) => written,
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
    /// Nothing is sent after this call: requests queued but not yet written are dropped (and
    /// fail), so a request that fails with `Closed` after `close` did not reach the server.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Why the server closed the connection, once it has — its [`ServerFrame::Error`],
    /// [`ErrorCode::ShuttingDown`] with the reason of its [`Event::ServerShutdown`], or
    /// [`ErrorCode::IdleTimeout`] when the client heard nothing from it for too long. `None`
    /// while the connection is up, when either side closed it without a word, and when it
    /// failed locally (see [`close_error`](Self::close_error)).
    pub fn close_reason(&self) -> Option<ErrorBody> {
        match self.close_error()? {
            ClientError::Closed(reason) => reason,
            _ => None,
        }
    }

    /// How the connection ended, once it has: the error pending and later requests fail with
    /// (see [`ClientError`]). `None` while it is up.
    pub fn close_error(&self) -> Option<ClientError> {
        let ended = self
            .shared
            .ended
            .lock()
            .ok()
            .and_then(|ended| ended.as_ref().map(ClientError::duplicate));
        // Just after `close`, before the reader has noted it.
        ended.or_else(|| {
            self.closing
                .is_cancelled()
                .then_some(ClientError::Closed(None))
        })
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
    ///
    /// Dropping the returned future before it completes (it waits while the outgoing queue is
    /// full) abandons the request: it may or may not have been queued, and its answer, if any,
    /// is discarded.
    pub async fn send_request(&self, body: Request) -> Result<PendingResponse, ClientError> {
        if self.closing.is_cancelled() {
            return Err(self.closed());
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.shared.pending.lock().as_deref_mut() {
            Ok(Some(pending)) => {
                pending.insert(id, tx);
            }
            Ok(None) | Err(_) => return Err(self.closed()),
        }
        // From here until it is handed over, the `PendingResponse` removes the entry when
        // dropped: on an error below, and when this future is dropped while it waits for room
        // in the queue.
        let pending = PendingResponse {
            handle: self.clone(),
            id,
            rx,
        };
        let frame = encode_frame(
            &ClientFrame::Request { id, body },
            self.shared.max_frame_bytes,
        )?;
        if self.shared.outbound.send(frame).await.is_err() {
            return Err(self.closed());
        }
        Ok(pending)
    }

    fn forget(&self, id: u32) {
        if let Ok(Some(pending)) = self.shared.pending.lock().as_deref_mut() {
            pending.remove(&id);
        }
    }

    /// The error for a request on a connection that has ended (or whose state cannot be read).
    fn closed(&self) -> ClientError {
        self.close_error().unwrap_or(ClientError::Closed(None))
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

    /// Logs in, registering the account first if its name is free: what a bot does on its
    /// first run. Only a free name is registered. With a wrong password for a taken name this
    /// fails as the login did ([`ErrorCode::InvalidCredentials`]), not with the registration's
    /// `UsernameTaken`; any other failure of the login (rate limited, connection lost) is
    /// returned as it came, without trying to register.
    ///
    /// A server refuses some registrations before it looks at the name:
    /// [`ErrorCode::RegistrationClosed`], [`ErrorCode::RateLimited`] (too many accounts
    /// registered from this address lately) and [`ErrorCode::WeakPassword`]. The account may
    /// then well exist with another password, so such a refusal also comes back as
    /// `InvalidCredentials`, its message saying both: "wrong user name or password; registering
    /// the name instead was refused: registration is closed …".
    ///
    /// Note that the first account a server registers is its admin: see
    /// [`UserSummary::is_admin`] in the session.
    pub async fn login_or_register(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Session, ClientError> {
        match self.login(username, password).await {
            Err(login) if login.code() == Some(ErrorCode::InvalidCredentials) => {
                match self.register(username, password).await {
                    Err(taken) if taken.code() == Some(ErrorCode::UsernameTaken) => Err(login),
                    // Refused before the name was looked at: it may be taken, and the
                    // password the mistake.
                    Err(ClientError::Server(refused))
                        if matches!(
                            refused.code,
                            ErrorCode::RegistrationClosed
                                | ErrorCode::RateLimited
                                | ErrorCode::WeakPassword
                        ) =>
                    {
                        let login = match login {
                            ClientError::Server(body) => body.message,
                            other => other.to_string(),
                        };
                        Err(ClientError::Server(ErrorBody::new(
                            ErrorCode::InvalidCredentials,
                            format!(
                                "{login}; registering the name instead was refused: {}",
                                refused.message
                            ),
                        )))
                    }
                    registered => registered,
                }
            }
            logged_in => logged_in,
        }
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

    /// Joins a public room by name. Joining a room I am in already is no error: it answers
    /// the room as well.
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

    /// Posts a message; returns once the server has stored it. A text over
    /// `limits.max_message_chars` is refused by the server (`MessageTooLong`); one so large
    /// that its frame passes the frame limit is refused here, before sending, as
    /// [`ClientError::Codec`] (whose [`code`](ClientError::code) is `None`).
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

    /// A page of a room's history, oldest first. `limit` is capped at the server's
    /// `limits.max_history_page` (see [`welcome`](Client::welcome); 0 counts as 1), so a bigger
    /// one is no error. To go back further, ask again with
    /// [`HistoryAnchor::Before`] the first (oldest) message's `seq` while
    /// [`HistoryPage::has_more`] holds; the pages of a room that goes on posting meanwhile
    /// still join up, since seqs never change.
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

    /// Says whether this connection's user has left it idle (see [`Request::SetIdle`]): the
    /// account shows away while all its connections are.
    pub async fn set_idle(&self, idle: bool) -> Result<(), ClientError> {
        self.done(Request::SetIdle { idle }).await
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
    /// Bans a user from a room (removing them if they are in it); see [`Request::Ban`].
    pub async fn ban(
        &self,
        room: RoomId,
        username: &str,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        self.done(Request::Ban {
            room,
            username: username.into(),
            reason,
        })
        .await
    }

    /// Lifts a user's ban from a room.
    pub async fn unban(&self, room: RoomId, username: &str) -> Result<(), ClientError> {
        self.done(Request::Unban {
            room,
            username: username.into(),
        })
        .await
    }

    /// A room's bans, newest first (owner and moderators only).
    pub async fn bans(&self, room: RoomId) -> Result<Vec<BanInfo>, ClientError> {
        expect_response!(self.request(Request::Bans { room }).await?, Response::Bans(b) => b)
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

    /// Searches the messages of my rooms (or of `room` only), newest first; pass the page's
    /// `next` as `before` for older results. See [`Request::Search`] for the query syntax.
    pub async fn search(
        &self,
        query: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<SearchPage, ClientError> {
        let request = Request::Search {
            query: query.into(),
            room,
            before,
            limit,
        };
        expect_response!(self.request(request).await?, Response::SearchResults(p) => p)
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

    /// Mutes a member of a room for `secs` seconds, or until unmuted when `None`.
    pub async fn mute(
        &self,
        room: RoomId,
        username: &str,
        secs: Option<u64>,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        self.done(Request::Mute {
            room,
            username: username.into(),
            secs,
            reason,
        })
        .await
    }

    /// Renames a room (its owner only).
    pub async fn rename_room(&self, room: RoomId, name: &str) -> Result<(), ClientError> {
        self.done(Request::RenameRoom {
            room,
            name: name.into(),
        })
        .await
    }

    /// Gives another account a new password and ends its sessions (a server admin only).
    pub async fn reset_password(&self, username: &str, password: &str) -> Result<(), ClientError> {
        self.done(Request::ResetPassword {
            username: username.into(),
            password: password.into(),
        })
        .await
    }

    /// Ends every session of another account, keeping its password (a server admin only).
    pub async fn log_out_user(&self, username: &str) -> Result<(), ClientError> {
        self.done(Request::LogOutUser {
            username: username.into(),
        })
        .await
    }

    /// Locks another account out until it is unsuspended: its sessions end and its logins are
    /// refused, with `reason` (a server admin only).
    pub async fn suspend_user(
        &self,
        username: &str,
        reason: Option<&str>,
    ) -> Result<(), ClientError> {
        self.done(Request::SuspendUser {
            username: username.into(),
            reason: reason.map(Into::into),
        })
        .await
    }

    /// Lifts an account's suspension (a server admin only).
    pub async fn unsuspend_user(&self, username: &str) -> Result<(), ClientError> {
        self.done(Request::UnsuspendUser {
            username: username.into(),
        })
        .await
    }

    /// Makes another account a server admin (`admin`), or no longer one (a server admin
    /// only). It holds at once, for the account's connections already logged in too.
    pub async fn set_server_admin(&self, username: &str, admin: bool) -> Result<(), ClientError> {
        self.done(Request::SetServerAdmin {
            username: username.into(),
            admin,
        })
        .await
    }

    /// Deletes another account (a server admin only): its connections close, it leaves every
    /// room, and its messages stay under its name.
    pub async fn delete_account(&self, username: &str) -> Result<(), ClientError> {
        self.done(Request::DeleteAccount {
            username: username.into(),
        })
        .await
    }

    /// The suspended accounts, newest first (a server admin only).
    pub async fn suspensions(&self) -> Result<Vec<BanInfo>, ClientError> {
        expect_response!(self.request(Request::Suspensions).await?, Response::Bans(b) => b)
    }

    /// Deletes what `username` posted in `room` over the last `within` (the room's owner or a
    /// moderator); returns how many messages went. At most
    /// [`MAX_DELETED_AT_ONCE`], the newest, go at once: when that
    /// many went, ask again for the rest.
    pub async fn delete_messages_by(
        &self,
        room: RoomId,
        username: &str,
        within: Duration,
    ) -> Result<u32, ClientError> {
        let request = Request::DeleteMessagesBy {
            room,
            username: username.into(),
            within_secs: within.as_secs().max(1),
        };
        expect_response!(self.request(request).await?, Response::Deleted { count } => count)
    }

    /// Lifts a member's mute.
    pub async fn unmute(&self, room: RoomId, username: &str) -> Result<(), ClientError> {
        self.done(Request::Unmute {
            room,
            username: username.into(),
        })
        .await
    }

    /// The mutes in force in a room, newest first.
    pub async fn mutes(&self, room: RoomId) -> Result<Vec<MuteInfo>, ClientError> {
        expect_response!(self.request(Request::Mutes { room }).await?, Response::Mutes(m) => m)
    }

    /// Replaces the text of a message I sent.
    pub async fn edit_message(
        &self,
        room: RoomId,
        seq: Seq,
        text: impl Into<String>,
    ) -> Result<(), ClientError> {
        let text = text.into();
        self.done(Request::EditMessage { room, seq, text }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    /// An error and its sources as `anyhow` prints them with `{:#}`.
    fn chain(e: &dyn Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }

    #[test]
    fn a_printed_chain_says_each_cause_once() {
        let reset = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(
            chain(&ClientError::from(reset())),
            "connection error: reset"
        );
        assert_eq!(
            chain(&ClientError::from(CodecError::from(reset()))),
            "i/o error: reset"
        );
        let refused = ClientError::Server(ErrorBody::new(ErrorCode::RateLimited, "slow down"));
        assert_eq!(chain(&refused), "server error: slow down (RateLimited)");
        let closed = ClientError::Closed(Some(ErrorBody::new(ErrorCode::TooSlow, "keep up")));
        assert_eq!(chain(&closed), "connection closed: keep up (TooSlow)");
    }

    /// A handle on a queue of one frame that nothing drains.
    fn stalled_handle() -> (ClientHandle, mpsc::Receiver<Bytes>) {
        let (outbound, frames) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            outbound,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU32::new(1),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ended: Mutex::new(None),
        });
        let closing = CancellationToken::new();
        let handle = ClientHandle {
            shared,
            _alive: Arc::new(closing.clone().drop_guard()),
            closing,
        };
        (handle, frames)
    }

    fn pending_ids(handle: &ClientHandle) -> Vec<u32> {
        let pending = handle.shared.pending.lock().expect("not poisoned");
        let mut ids: Vec<u32> = pending.as_ref().expect("open").keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn a_request_abandoned_while_the_queue_is_full_leaves_nothing_pending() {
        let (handle, _frames) = stalled_handle();
        let first = handle.send_request(Request::Ping).await.expect("queued");
        assert_eq!(pending_ids(&handle), [first.id]);
        // The queue is full now: the second request waits for room, and is given up.
        let second = handle.send_request(Request::Ping);
        tokio::select! {
            biased;
            _ = second => panic!("the queue has no room"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(
            pending_ids(&handle),
            [first.id],
            "the abandoned request is forgotten"
        );
        drop(first);
        assert_eq!(
            pending_ids(&handle),
            [] as [u32; 0],
            "so is an abandoned response"
        );
    }

    #[test]
    fn an_undecodable_frame_is_read_as_far_as_it_goes() {
        let error = CodecError::Malformed(crate::PayloadError::Invalid("bad tag".to_owned()));
        // An unknown event: skipped.
        assert_eq!(undecodable(&[2, 250], &error), Undecodable::Skip);
        // A response with an unknown `Ok` variant: its request fails.
        assert_eq!(
            undecodable(&[1, 0xfb, 0x2c, 0x01, 0, 99], &error),
            Undecodable::Answer {
                id: 300,
                what: "malformed frame: bad tag".to_owned()
            }
        );
        // An error with an unknown code: its message is kept.
        assert_eq!(
            undecodable(&[4, 0xfb, 0x00, 0x01, 2, b'h', b'i'], &error),
            Undecodable::Closing("error code 256, unknown to this client: hi".to_owned())
        );
        // A response whose id cannot be read: nobody to tell.
        assert_eq!(undecodable(&[1, 0xfc, 0], &error), Undecodable::Skip);
    }
}
