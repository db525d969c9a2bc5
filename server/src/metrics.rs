//! The health and metrics endpoint: a small HTTP/1.1 listener beside the chat port, off unless
//! `--metrics-listen ADDR` (`metrics_listen` in the TOML file, `CHATROOM_METRICS_LISTEN`) names
//! an address. Bind it to loopback or a management network: it needs no login.
//!
//! - `GET /health`: `200` and `{"status":"ok","version":"…","uptime_secs":N}` when storage
//!   answers and stores — a small real write committed through the storage writer thread and a
//!   `SELECT 1` on the read pool, each within [`HEALTH_TIMEOUT`]; otherwise `503` with
//!   `"status":"unhealthy"` and a `"reason"` (a dead writer thread shows as "storage is shut
//!   down", a full disk or read-only database as "storage writes are failing: …"). It turns
//!   `200` again by itself once writes are stored again. For load balancers and
//!   `systemd`/container health checks.
//! - `GET /metrics`: the Prometheus text exposition format 0.0.4, every series named
//!   `chatroom_…`: uptime, connections (open, accepted, refused), logged-in sessions, users
//!   online and accounts, rooms by kind, messages stored since start, writes waiting for the
//!   storage thread, storage batches that failed, requests handled, frames and bytes sent, and the AI bot's questions and
//!   answers in progress.
//! - `HEAD` of either gives the same status and headers without a body; any other path is `404`,
//!   any other method on these paths `405`. Every response says `Connection: close` and the
//!   connection is closed after it: one request per connection, no keep-alive.
//!
//! Bounded, as everything facing the network is: at most [`MAX_CONNECTIONS`] connections at
//! once (more are closed at once), a request head of at most [`MAX_HEAD_BYTES`] (`431`
//! beyond), [`HEAD_TIMEOUT`] to send it (`408` after), nothing read of a request body. The
//! parsing is a few lines by hand and never panics on any input.
//!
//! The counters behind it (`Metrics`) are relaxed atomics bumped where things happen: one
//! `fetch_add` per accepted connection, per request, and per socket write of a connection's
//! writer (which covers many frames) — nothing on the fan-out path itself, which only queues
//! already-encoded frames. The rest (users online, rooms, messages stored) is read when scraped,
//! from the hub and the read pool.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Shared;
use crate::storage::{Storage, StorageError, WriteOp};

/// HTTP connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request head (request line and headers) read; a longer one gets `431`.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client has to send its request head; a slower one gets `408`.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/health` waits for each storage round trip.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a response may take to write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, how long the rest of a request (a body nobody asked for) is read and
/// dropped, so that closing does not reset the connection under the response.
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes read and dropped after answering.
const LINGER_BYTES: usize = 64 * 1024;
/// The server's version, as in `Welcome`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The server's counters. Relaxed atomics: each is read on its own, and a scrape that sees one
/// counter a moment ahead of another is fine.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_open: AtomicU64,
    sessions: AtomicU64,
    requests: AtomicU64,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    /// The highest message id when the server started (read only when the endpoint is on).
    first_message_id: OnceLock<u64>,
    /// The most messages stored since start seen by a scrape, so the counter never goes back.
    messages_stored: AtomicU64,
}

/// A gauge held up by one: counted down when dropped.
#[derive(Debug)]
pub(crate) struct Held<'a>(&'a AtomicU64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            first_message_id: OnceLock::new(),
            messages_stored: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A chat connection was accepted (whether or not the limits let it in).
    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A chat connection was refused for being over the connection limits.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A chat connection is being served until the result is dropped.
    pub fn connection_open(&self) -> Held<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        Held(&self.connections_open)
    }

    /// A connection logged in (login, registration or resume).
    pub fn session_started(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// A logged-in connection logged out or closed.
    pub fn session_ended(&self) {
        self.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request arrived (answered whichever way).
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection's writer wrote `frames` frames of `bytes` bytes in all.
    pub fn sent(&self, frames: u64, bytes: u64) {
        self.frames_sent.fetch_add(frames, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Notes the highest message id at start, from which "messages stored" counts.
    pub fn set_first_message_id(&self, id: u64) {
        let _ = self.first_message_id.set(id);
    }

    /// Messages stored since start, from the highest message id now. Message rows are never
    /// deleted (a deleted message is blanked), so ids only grow.
    fn messages_stored(&self, highest_id: u64) -> Option<u64> {
        let first = *self.first_message_id.get()?;
        let stored = highest_id.saturating_sub(first);
        Some(
            self.messages_stored
                .fetch_max(stored, Ordering::Relaxed)
                .max(stored),
        )
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The highest message id stored, 0 when there are none.
pub(crate) fn highest_message_id(conn: &rusqlite::Connection) -> Result<u64, StorageError> {
    let id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(id).unwrap_or(0))
}

/// What a scrape reads from the database.
#[derive(Debug, Default)]
struct Stored {
    /// Rooms by kind: public, private, direct.
    rooms: [u64; 3],
    highest_message_id: u64,
}

fn read_stored(conn: &rusqlite::Connection) -> Result<Stored, StorageError> {
    let mut stored = Stored {
        highest_message_id: highest_message_id(conn)?,
        ..Stored::default()
    };
    let mut statement = conn.prepare_cached("SELECT kind, count(*) FROM rooms GROUP BY kind")?;
    let rows = statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (kind, count) = row?;
        let slot = match crate::storage::kind_from_sql(kind) {
            chatroom_protocol::RoomKind::Public => 0,
            chatroom_protocol::RoomKind::Private => 1,
            chatroom_protocol::RoomKind::Direct => 2,
        };
        stored.rooms[slot] += u64::try_from(count).unwrap_or(0);
    }
    Ok(stored)
}

/// Whether storage answers and stores: a small real write through the writer thread
/// ([`WriteOp::HealthProbe`], committed to disk like any other), then a trivial read on the read
/// pool, each within `within`. The reason when it does not — also when the probe went through
/// but a write of the same batch failed for a storage reason (see [`crate::storage::Writer::failing`]).
pub(crate) async fn check_storage(storage: &Storage, within: Duration) -> Result<(), String> {
    match tokio::time::timeout(within, storage.writer.write(WriteOp::HealthProbe)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.is_storage_failure() => {
            return Err(format!("storage writes are failing: {e}"));
        }
        Ok(Err(e)) => return Err(format!("storage writer: {e}")),
        Err(_) => {
            return Err(format!(
                "storage writer: no answer within {} ms",
                within.as_millis()
            ));
        }
    }
    if let Some(reason) = storage.writer.failing() {
        return Err(format!("storage writes are failing: {reason}"));
    }
    let read = storage.reads.run(|conn| {
        conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map_err(StorageError::from)
    });
    match tokio::time::timeout(within, read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("storage reads: {e}")),
        Err(_) => Err(format!(
            "storage reads: no answer within {} ms",
            within.as_millis()
        )),
    }
}

/// Serves the endpoint on `listener` until `shutdown`; each connection is a task on `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving health and metrics");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics connection closed: too many at once");
            drop(socket);
            continue;
        };
        let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = answer(socket, &shared) => {}
            }
            drop(slot);
        });
    }
}

/// Reads one request, writes its response, and closes.
async fn answer(mut socket: TcpStream, shared: &Shared) {
    let response = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut socket)).await {
        Err(_) => Response::text(408, "request head not received in time\n"),
        Ok(Head::Closed) => return,
        Ok(Head::TooLarge) => Response::text(431, "request head too large\n"),
        Ok(Head::Complete(head)) => match parse_request(&head) {
            Err(response) => response,
            Ok(request) => route(&request, shared).await,
        },
    };
    let head_only = response.head_only;
    let mut bytes = response.head();
    if !head_only {
        bytes.extend_from_slice(response.body.as_bytes());
    }
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        // Whatever else the client sent (a body): read and dropped, so that closing with
        // unread data does not reset the connection before the client has the response.
        let _ = tokio::time::timeout(LINGER, async {
            let mut scratch = [0u8; 1024];
            let mut total = 0;
            while total < LINGER_BYTES {
                match socket.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
    }
}

/// A request head as read.
#[derive(Debug)]
enum Head {
    /// The bytes up to and including the blank line.
    Complete(Vec<u8>),
    /// More than [`MAX_HEAD_BYTES`] without a blank line.
    TooLarge,
    /// The peer closed (or the read failed) before the head was complete.
    Closed,
}

async fn read_head(socket: &mut TcpStream) -> Head {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let room = MAX_HEAD_BYTES - head.len();
        if room == 0 {
            return Head::TooLarge;
        }
        let n = match socket.read(&mut chunk[..room.min(1024)]).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => n,
        };
        // Look for the end from just before the new bytes: it may straddle two reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head[from..]) {
            head.truncate(from + end);
            return Head::Complete(head);
        }
    }
}

/// Where the head in `bytes` ends (just past its blank line): `\r\n\r\n`, or `\n\n` from a
/// lenient client.
fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// The methods served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    /// Anything else, answered `405` on a known path.
    Other,
}

#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: Method,
    /// The target's path, without a query.
    path: String,
}

/// The request line of `head`, or the response to a malformed one.
fn parse_request(head: &[u8]) -> Result<Request, Response> {
    let bad = || Response::text(400, "malformed request\n");
    let line_end = head.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| bad())?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") => {
            return Err(Response::text(505, "only HTTP/1.0 and HTTP/1.1\n"));
        }
        _ => return Err(bad()),
    }
    if !target.starts_with('/') {
        return Err(bad());
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok(Request {
        method,
        path: path.to_string(),
    })
}

async fn route(request: &Request, shared: &Shared) -> Response {
    let known = matches!(request.path.as_str(), "/health" | "/metrics");
    if !known {
        return Response::text(404, "not found; try /health or /metrics\n").head_only_if(request);
    }
    if request.method == Method::Other {
        let mut response = Response::text(405, "only GET and HEAD\n");
        response.allow = true;
        return response;
    }
    let response = if request.path == "/health" {
        let result = check_storage(&shared.storage, HEALTH_TIMEOUT).await;
        health_response(result, shared.metrics.uptime())
    } else {
        metrics_response(shared).await
    };
    response.head_only_if(request)
}

/// The `/health` answer for a storage check's result.
fn health_response(storage: Result<(), String>, uptime: Duration) -> Response {
    let uptime = uptime.as_secs();
    match storage {
        Ok(()) => Response::json(
            200,
            format!(r#"{{"status":"ok","version":"{VERSION}","uptime_secs":{uptime}}}"#),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "health check failed");
            Response::json(
                503,
                format!(
                    r#"{{"status":"unhealthy","version":"{VERSION}","uptime_secs":{uptime},"reason":{}}}"#,
                    json_string(&reason)
                ),
            )
        }
    }
}

async fn metrics_response(shared: &Shared) -> Response {
    let stored =
        match tokio::time::timeout(HEALTH_TIMEOUT, shared.storage.reads.run(read_stored)).await {
            Ok(Ok(stored)) => Some(stored),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: cannot read the database");
                None
            }
            Err(_) => {
                tracing::warn!("metrics: the database read timed out");
                None
            }
        };
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: render(shared, stored.as_ref()),
        allow: false,
        head_only: false,
    }
}

/// The exposition text. Series read from the database are left out when it could not be read.
fn render(shared: &Shared, stored: Option<&Stored>) -> String {
    let m = &shared.metrics;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let users = shared.hub.users();
    let online = users
        .iter()
        .filter(|u| u.status != chatroom_protocol::PresenceStatus::Offline)
        .count();
    let mut out = String::with_capacity(4096);
    let mut series = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: u64| [("", v.to_string())];
    series(
        "chatroom_build_info",
        "gauge",
        "The server's version, as a label; always 1.",
        &[(&format!("{{version=\"{VERSION}\"}}"), "1".to_string())],
    );
    series(
        "chatroom_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[("", format!("{:.3}", m.uptime().as_secs_f64()))],
    );
    series(
        "chatroom_connections_open",
        "gauge",
        "Chat connections being served now.",
        &one(load(&m.connections_open)),
    );
    series(
        "chatroom_connections_accepted_total",
        "counter",
        "Chat connections accepted since start, including those then refused.",
        &one(load(&m.connections_accepted)),
    );
    series(
        "chatroom_connections_refused_total",
        "counter",
        "Chat connections refused since start for being over the connection limits.",
        &one(load(&m.connections_refused)),
    );
    series(
        "chatroom_sessions_logged_in",
        "gauge",
        "Connections logged in now (one user may have several).",
        &one(load(&m.sessions)),
    );
    series(
        "chatroom_users_online",
        "gauge",
        "Accounts online or away now, the AI bot included when it is on.",
        &one(online as u64),
    );
    series(
        "chatroom_accounts",
        "gauge",
        "Accounts known to the server.",
        &one(users.len() as u64),
    );
    if let Some(stored) = stored {
        let [public, private, direct] = stored.rooms;
        series(
            "chatroom_rooms",
            "gauge",
            "Rooms known to the server, by kind (direct: direct-message chats).",
            &[
                ("{kind=\"public\"}", public.to_string()),
                ("{kind=\"private\"}", private.to_string()),
                ("{kind=\"direct\"}", direct.to_string()),
            ],
        );
        if let Some(messages) = m.messages_stored(stored.highest_message_id) {
            series(
                "chatroom_messages_stored_total",
                "counter",
                "Messages stored since start: text, files, notices and the AI bot's answers.",
                &one(messages),
            );
        }
    }
    series(
        "chatroom_storage_failed_commits_total",
        "counter",
        "Storage writer batches (one transaction each) in which writes failed because storage \
         did: a full disk, a read-only database file, an I/O error.",
        &one(shared.storage.writer.failed_batches()),
    );
    let (queued, queue_limit) = shared.storage.writer.queued();
    series(
        "chatroom_storage_queue_depth",
        "gauge",
        &format!(
            "Writes waiting for the storage writer thread now; at {queue_limit} clients wait. \
             One that stays high says the disk cannot keep up."
        ),
        &one(queued as u64),
    );
    series(
        "chatroom_requests_total",
        "counter",
        "Requests received from clients since start, answered whichever way.",
        &one(load(&m.requests)),
    );
    series(
        "chatroom_frames_sent_total",
        "counter",
        "Frames written to chat connections since start: responses, events, pings.",
        &one(load(&m.frames_sent)),
    );
    series(
        "chatroom_sent_bytes_total",
        "counter",
        "Bytes of frames written to chat connections since start.",
        &one(load(&m.bytes_sent)),
    );
    let (questions, answering) = shared
        .ai
        .as_ref()
        .map_or((0, 0), |ai| (ai.questions(), ai.answering() as u64));
    series(
        "chatroom_ai_questions_total",
        "counter",
        "Questions handed to the AI bot since start (0 when the bot is off).",
        &one(questions),
    );
    series(
        "chatroom_ai_answers_in_progress",
        "gauge",
        "Answers the AI bot is generating now.",
        &one(answering),
    );
    out
}

/// A response to write.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    /// Says `Allow: GET, HEAD` (a `405`).
    allow: bool,
    /// A `HEAD` request: the headers only.
    head_only: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            allow: false,
            head_only: false,
        }
    }

    fn json(status: u16, mut body: String) -> Self {
        body.push('\n');
        Self {
            status,
            content_type: "application/json",
            body,
            allow: false,
            head_only: false,
        }
    }

    fn head_only_if(mut self, request: &Request) -> Self {
        self.head_only = request.method == Method::Head;
        self
    }

    /// The status line and headers, with the blank line.
    fn head(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_lines_are_parsed_strictly() {
        let ok = |line: &str| parse_request(line.as_bytes()).expect("parses");
        assert_eq!(
            ok("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request {
                method: Method::Get,
                path: "/health".into()
            }
        );
        assert_eq!(ok("HEAD /metrics?x=1 HTTP/1.0\n\n").method, Method::Head);
        assert_eq!(ok("HEAD /metrics?x=1 HTTP/1.0\n\n").path, "/metrics");
        assert_eq!(ok("POST /health HTTP/1.1\r\n\r\n").method, Method::Other);
        let status = |line: &[u8]| parse_request(line).map(|_| ()).unwrap_err().status;
        assert_eq!(status(b"GET /health HTTP/2.0\r\n\r\n"), 505);
        for bad in [
            &b"GET /health\r\n\r\n"[..],
            b"GET  /health HTTP/1.1\r\n\r\n",
            b"GET health HTTP/1.1\r\n\r\n",
            b"G\xffT /health HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/1.1 extra\r\n\r\n",
            b"\r\n\r\n",
            b"no newline at all",
        ] {
            assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
    }

    #[test]
    fn reasons_are_valid_json_strings() {
        assert_eq!(
            json_string("a \"b\" \\ c\n\u{1}é"),
            r#""a \"b\" \\ c\n\u0001é""#
        );
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = head_end(&bytes);
            let _ = parse_request(&bytes);
        }

        #[test]
        fn no_request_line_of_printable_words_makes_it_panic(line in "[ -~]{0,200}") {
            let _ = parse_request(format!("{line}\r\n\r\n").as_bytes());
        }
    }

    /// A storage writer thread that died makes `/health` say 503 with the reason.
    #[tokio::test]
    async fn a_dead_storage_writer_is_unhealthy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = crate::Config::with_data_dir(dir.path());
        let (storage, _snapshot, thread) = crate::storage::open(&config).expect("open");
        check_storage(&storage, HEALTH_TIMEOUT)
            .await
            .expect("a live writer is healthy");
        let healthy = health_response(Ok(()), Duration::from_secs(3));
        assert_eq!(healthy.status, 200);
        assert!(
            healthy.body.contains(r#""status":"ok""#),
            "{}",
            healthy.body
        );
        assert!(
            healthy.body.contains(r#""uptime_secs":3"#),
            "{}",
            healthy.body
        );

        storage.writer.panic_for_test().await;
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join");
        assert!(joined.is_err(), "the writer thread died");

        let reason = check_storage(&storage, HEALTH_TIMEOUT)
            .await
            .expect_err("a dead writer is unhealthy");
        assert!(reason.contains("storage is shut down"), "{reason}");
        let response = health_response(Err(reason), Duration::from_secs(3));
        assert_eq!(response.status, 503);
        assert!(
            response.body.contains(r#""status":"unhealthy""#)
                && response
                    .body
                    .contains(r#""reason":"storage writer: storage is shut down""#),
            "{}",
            response.body
        );
        assert!(
            response
                .head()
                .starts_with(b"HTTP/1.1 503 Service Unavailable\r\n")
        );
    }
}
