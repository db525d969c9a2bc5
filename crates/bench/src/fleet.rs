//! Many client connections at once: naming, connecting with bounded concurrency, and one event
//! reader per connection that times every benchmark message it receives.

use crate::stats::{micros_at, new_histogram, record};
use anyhow::{Context, Result, anyhow};
use chatroom_protocol::Event;
use chatroom_protocol::client::{Client, ClientHandle, ClientOptions, MessageHook};
use hdrhistogram::Histogram;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The password of every account the tool creates.
pub const PASSWORD: &str = "bench-password-1";
/// The client name sent in `Hello`.
pub const CLIENT_NAME: &str = "chatroom-bench";
/// How long a TCP connect plus handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may wait for its response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Events taken from the queue at a time by a reader.
const EVENT_BATCH: usize = 256;

/// The prefix that marks a timed benchmark message: `b:<sender>:<n>:<micros>`.
pub const STAMP_PREFIX: &str = "b:";

/// The text of a timed message: sender index, sequence number, send time (tool clock).
pub fn stamped_text(sender: usize, n: u64, micros: u64) -> String {
    format!("{STAMP_PREFIX}{sender}:{n}:{micros}")
}

/// The send time embedded in a timed message, if `text` is one.
pub fn parse_stamp(text: &str) -> Option<u64> {
    // By hand from the end: this runs for every delivery the tool counts.
    let body = text.strip_prefix(STAMP_PREFIX)?.as_bytes();
    let colon = body.iter().rposition(|b| *b == b':')?;
    let digits = &body[colon + 1..];
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// What one run shares: the server address, a unique name prefix, the server pid.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The server.
    pub addr: SocketAddr,
    /// Starts every user and room name of this run, so runs can repeat against one server.
    pub prefix: String,
    /// The server's process id, for /proc readings.
    pub server_pid: Option<u32>,
}

impl Ctx {
    /// A context with a fresh random-ish prefix.
    pub fn new(addr: SocketAddr, server_pid: Option<u32>) -> Ctx {
        Ctx {
            addr,
            prefix: run_prefix(),
            server_pid,
        }
    }

    /// The `i`th user name of this run (at most 32 characters, as the server requires).
    pub fn user_name(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// A room name of this run.
    pub fn room_name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

/// `b` and 9 base-36 characters from the clock, the pid and the std hasher's random keys.
fn run_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    let mut v = h.finish();
    let mut s = String::from("b");
    for _ in 0..9 {
        let d = (v % 36) as u32;
        v /= 36;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
    }
    s
}

/// Prints a progress line on stderr.
pub fn note(msg: impl std::fmt::Display) {
    eprintln!("[chatroom-bench] {msg}");
}

/// What a connection's reader has counted so far (read by the driver while it runs).
#[derive(Debug, Default)]
pub struct RecvCounters {
    /// Timed messages received.
    pub received: AtomicU64,
    /// Tool-clock time of the last one.
    pub last_micros: AtomicU64,
}

/// One connection: its request handle and its event reader.
#[derive(Debug)]
pub struct Peer {
    /// Sends requests.
    pub handle: ClientHandle,
    /// The user it is logged in as (empty until it is).
    pub name: String,
    /// The server's page limit for history requests.
    pub max_history_page: u32,
    counters: Arc<RecvCounters>,
    reader: JoinHandle<()>,
}

impl Peer {
    /// Connects and does the handshake; a reader task starts draining events at once (a client
    /// that stops reading is dropped by the server as too slow). Timed messages are counted,
    /// and with `latencies` their send→receive times are added to that histogram.
    pub async fn connect(
        addr: SocketAddr,
        stop: &CancellationToken,
        latencies: Option<&Arc<Mutex<Histogram<u64>>>>,
    ) -> Result<Peer> {
        let counters = Arc::new(RecvCounters::default());
        let timing = Arc::new(Mutex::new(Timing::new(latencies)));
        let mut options = ClientOptions::new(CLIENT_NAME);
        options.request_timeout = REQUEST_TIMEOUT;
        // Timed messages are read in place on the connection's reader (no decode into an
        // owned event, no queue): the tool should cost the machine as little as it can.
        options.on_message = Some(MessageHook::new({
            let (counters, timing) = (Arc::clone(&counters), Arc::clone(&timing));
            move |m, read_at| {
                let Some(sent) = parse_stamp(m.text) else {
                    return;
                };
                let Ok(mut timing) = timing.lock() else {
                    return;
                };
                let now = timing.micros_at(read_at);
                timing.record(now.saturating_sub(sent));
                counters.received.fetch_add(1, Ordering::Relaxed);
                counters.last_micros.store(now, Ordering::Relaxed);
            }
        }));
        let client = tokio::time::timeout(CONNECT_TIMEOUT, Client::connect_with(addr, options))
            .await
            .map_err(|_| anyhow!("connecting to {addr} took longer than {CONNECT_TIMEOUT:?}"))?
            .with_context(|| format!("connecting to {addr}"))?;
        let max_history_page = client.welcome().limits.max_history_page;
        let (handle, events) = client.into_parts();
        let reader = tokio::spawn(drain_events(events, stop.clone(), timing));
        Ok(Peer {
            handle,
            name: String::new(),
            max_history_page,
            counters,
            reader,
        })
    }

    /// Timed messages received so far.
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// Closes the connection; its reader adds the latencies it still holds to the histogram.
    pub async fn finish(self) {
        self.handle.close();
        let _ = self.reader.await;
    }
}

/// Latencies a connection holds before adding them to the shared histogram.
const LATENCY_BATCH: usize = 256;

/// What a connection's reader keeps between timed messages: the latencies not yet added to the
/// shared histogram, and the time of the last socket read.
pub(crate) struct Timing {
    /// Receive latencies (µs) not yet in `sink`. They go in [`LATENCY_BATCH`] at a time: a
    /// delivery then costs a push onto a short vector, and the one shared histogram stays in
    /// cache. (A histogram per connection — 139 KiB each, 70 MB for 500 connections — made
    /// recording 11 % of the tool's CPU in `fanout`, nearly all of it cache misses.)
    pending: Vec<u64>,
    /// The histogram the latencies go to (none: only count).
    sink: Option<Arc<Mutex<Histogram<u64>>>>,
    /// The last socket read's time, on the `Instant` clock and in the tool's microseconds:
    /// every message of one read shares it, so it is converted once per read.
    read: Option<(Instant, u64)>,
}

impl Timing {
    /// Latencies go to `sink` (none: only count).
    pub(crate) fn new(sink: Option<&Arc<Mutex<Histogram<u64>>>>) -> Timing {
        Timing {
            pending: Vec::with_capacity(LATENCY_BATCH),
            read: None,
            sink: sink.map(Arc::clone),
        }
    }

    /// Adds one send→receive latency (µs).
    pub(crate) fn record(&mut self, micros: u64) {
        if self.sink.is_some() {
            self.pending.push(micros);
            if self.pending.len() >= LATENCY_BATCH {
                self.flush();
            }
        }
    }

    /// Adds the latencies held back to the shared histogram.
    pub(crate) fn flush(&mut self) {
        if let Some(Ok(mut hist)) = self.sink.as_ref().map(|s| s.lock()) {
            for micros in self.pending.drain(..) {
                record(&mut hist, micros);
            }
        }
        self.pending.clear();
    }

    /// `read_at` on the tool's clock, converted once per socket read.
    pub(crate) fn micros_at(&mut self, read_at: Instant) -> u64 {
        match self.read {
            Some((at, micros)) if at == read_at => micros,
            _ => {
                let micros = micros_at(read_at);
                self.read = Some((read_at, micros));
                micros
            }
        }
    }
}

/// Drains a connection's other events (presence, joins) until `stop` or the connection ends,
/// then adds the latencies the message hook still holds to the histogram. Takes events in
/// batches so a busy reader wakes once per batch.
async fn drain_events(
    mut events: mpsc::Receiver<Event>,
    stop: CancellationToken,
    timing: Arc<Mutex<Timing>>,
) {
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        batch.clear();
        let got = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = events.recv_many(&mut batch, EVENT_BATCH) => n,
        };
        if got == 0 {
            break;
        }
    }
    if let Ok(mut timing) = timing.lock() {
        timing.flush();
    }
}

/// A set of connections sharing one stop signal.
#[derive(Debug)]
pub struct Fleet {
    /// The connections, in the order they were asked for.
    pub peers: Vec<Peer>,
    stop: CancellationToken,
    /// Every connection's send→receive latencies (allocated before any clock starts).
    latencies: Arc<Mutex<Histogram<u64>>>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Fleet {
        Fleet {
            peers: Vec::new(),
            stop: CancellationToken::new(),
            latencies: Arc::new(Mutex::new(new_histogram())),
        }
    }

    /// The stop signal readers watch.
    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Connects `n` clients (at most `concurrency` at once) and registers each as a new user
    /// named `ctx.user_name(first + i)`. Fails if any of them fails.
    pub async fn register(
        &mut self,
        ctx: &Ctx,
        first: usize,
        n: usize,
        concurrency: usize,
    ) -> Result<()> {
        let addr = ctx.addr;
        let stop = self.stop.clone();
        let latencies = Arc::clone(&self.latencies);
        let names: Vec<String> = (first..first + n).map(|i| ctx.user_name(i)).collect();
        let results = bounded(n, concurrency, |i| {
            let stop = stop.clone();
            let name = names[i].clone();
            let latencies = Arc::clone(&latencies);
            async move {
                let mut peer = Peer::connect(addr, &stop, Some(&latencies)).await?;
                register_user(&peer.handle, &name).await?;
                peer.name = name;
                Ok(peer)
            }
        })
        .await;
        for r in results {
            self.peers.push(r?);
        }
        Ok(())
    }

    /// Creates a public room named after `what` with the first connection as owner, and has
    /// every other connection join it.
    pub async fn shared_room(
        &self,
        ctx: &Ctx,
        what: &str,
        concurrency: usize,
    ) -> Result<chatroom_protocol::RoomSummary> {
        let name = ctx.room_name(what);
        let owner = self
            .peers
            .first()
            .ok_or_else(|| anyhow!("no connections"))?;
        let room = owner
            .handle
            .create_room(&name, chatroom_protocol::Visibility::Public)
            .await
            .context("creating the room")?;
        let joined = bounded(self.peers.len() - 1, concurrency, |i| {
            let (h, name) = (self.peers[i + 1].handle.clone(), name.clone());
            async move {
                h.join_room(&name).await.context("joining")?;
                Ok(())
            }
        })
        .await;
        for j in joined {
            j?;
        }
        Ok(room)
    }

    /// Timed messages received by every connection so far.
    pub fn received(&self) -> u64 {
        self.peers.iter().map(Peer::received).sum()
    }

    /// Tool-clock time of the last timed message any connection received.
    pub fn last_delivery_micros(&self) -> u64 {
        self.peers
            .iter()
            .map(|p| p.counters.last_micros.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Connections that are closed (the server dropped them, e.g. as too slow).
    pub fn disconnected(&self) -> usize {
        self.peers.iter().filter(|p| p.handle.is_closed()).count()
    }

    /// Stops every reader, closes every connection, and returns every latency they measured.
    pub async fn shutdown(self) -> Histogram<u64> {
        self.stop.cancel();
        for peer in self.peers {
            peer.finish().await;
        }
        match self.latencies.lock() {
            Ok(mut all) => std::mem::replace(&mut *all, new_histogram()),
            Err(_) => new_histogram(),
        }
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

/// Runs `f(0..n)` with at most `concurrency` running at once; results in index order.
pub async fn bounded<T, F, Fut>(n: usize, concurrency: usize, f: F) -> Vec<Result<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let concurrency = concurrency.max(1);
    let mut set = JoinSet::new();
    let mut out: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < concurrency {
            let fut = f(next);
            let i = next;
            set.spawn(async move { (i, fut.await) });
            next += 1;
        }
        match set.join_next().await {
            Some(Ok((i, r))) => out[i] = Some(r),
            Some(Err(e)) => {
                // A panicked task leaves its slot empty; reported below.
                note(format!("a task failed: {e}"));
            }
            None => break,
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow!("the task panicked or was cancelled"))))
        .collect()
}

/// Registers `name` with the bench password, naming the server flag to raise when the server's
/// per-address registration limit refuses it.
pub(crate) async fn register_user(
    handle: &ClientHandle,
    name: &str,
) -> Result<chatroom_protocol::Session> {
    handle.register(name, PASSWORD).await.map_err(|e| {
        let hint = if e.code() == Some(chatroom_protocol::ErrorCode::RateLimited) {
            " (start the server with --registrations-per-ip-per-hour 0)"
        } else {
            ""
        };
        anyhow!(e).context(format!("registering {name}{hint}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let t = stamped_text(7, 42, 123_456_789);
        assert_eq!(t, "b:7:42:123456789");
        assert_eq!(parse_stamp(&t), Some(123_456_789));
        assert_eq!(parse_stamp("hello"), None);
        assert_eq!(parse_stamp("b:x:y:z"), None);
        assert_eq!(parse_stamp("b:1:2:"), None);
        assert_eq!(parse_stamp("b:1:2:12a"), None);
        assert_eq!(parse_stamp("b:1:2:99999999999999999999"), None);
        assert_eq!(parse_stamp("b:1:2:0"), Some(0));
    }

    #[test]
    fn names_fit_the_server_rules() {
        let ctx = Ctx::new("127.0.0.1:1".parse().unwrap(), None);
        let name = ctx.user_name(19_999);
        assert!(name.len() <= 32, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(Ctx::new(ctx.addr, None).prefix, ctx.prefix);
    }

    #[tokio::test]
    async fn bounded_keeps_order_and_limit() {
        let running = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let r = bounded(20, 3, |i| {
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 2)
            }
        })
        .await;
        let values: Vec<usize> = r.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(values, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }
}
