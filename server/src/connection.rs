//! One client connection: the handshake, the reader loop, and the writer task.
//!
//! The task that accepted the socket becomes the reader: it decodes frames, answers pings,
//! enforces the heartbeat and hands requests to [`crate::requests`]. A second task, the writer,
//! drains the connection's bounded queue of already-encoded frames and writes whatever is queued
//! in one go (many frames per syscall). Anything that wants to talk to this client — its own
//! responses, room fan-out, presence — pushes `Bytes` onto that queue; nothing ever waits on a
//! slow client's socket except its own writer.
//!
//! Closing: the reader ends on EOF, a protocol violation (answered with an error frame first),
//! idle timeout, or server shutdown (after queueing `ServerShutdown`); the writer then flushes
//! what is queued and shuts the socket. Closing the connection's [`crate::outbox::Outlet`] ends it
//! from outside (too slow, session revoked): the writer stops at once and sends the reason as its
//! last frame.

use bytes::BytesMut;
use chatroom_protocol::codec::{CodecError, ServerCodec, encode_frame};
use chatroom_protocol::{
    ClientFrame, ErrorBody, ErrorCode, Event, PROTOCOL_VERSION, ServerFrame, Welcome,
};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::limits::ConnectionSlot;
use crate::outbox::{Drain, Taken, outbox};
use crate::requests::Conn;

/// Most bytes the writer gathers into one write.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// A write that makes no progress for this long means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the last words (an error or shutdown notice) may take to write.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);
/// Initial read buffer; it grows for large frames. Small, because idle connections are many.
const READ_BUFFER: usize = 512;

/// Serves one accepted socket until it closes or the server shuts down.
pub(crate) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
    _slot: ConnectionSlot,
) {
    let conn_id = shared.next_conn_id();
    let span = tracing::info_span!("conn", id = conn_id, %peer, user = tracing::field::Empty);
    async move {
        let _open = shared.metrics.connection_open();
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let (read, write) = socket.into_split();
        let limits = &shared.config.limits;
        let (outlet, drain) = outbox(limits.outbound_queue_frames.max(16) as usize);
        let writer = tracker.spawn(
            write_loop(write, drain, Arc::clone(&shared)).instrument(tracing::Span::current()),
        );
        let mut conn = Conn::new(conn_id, peer, Arc::clone(&shared), outlet);
        read_loop(read, &mut conn, &shutdown).await;
        conn.end_session();
        drop(conn);
        // The writer ends once the queue is drained and every handle to it is gone.
        let _ = writer.await;
        tracing::debug!("closed");
    }
    .instrument(span)
    .await;
}

enum ReadOutcome {
    Frame(ClientFrame),
    Eof,
    Error(ErrorBody),
}

async fn next_frame(
    read: &mut OwnedReadHalf,
    codec: &mut ServerCodec,
    buf: &mut BytesMut,
) -> ReadOutcome {
    loop {
        match codec.decode(buf) {
            Ok(Some(frame)) => return ReadOutcome::Frame(frame),
            Ok(None) => {}
            Err(CodecError::FrameTooLarge { len, max }) => {
                return ReadOutcome::Error(ErrorBody::new(
                    ErrorCode::FrameTooLarge,
                    format!("frame of {len} bytes exceeds the limit of {max} bytes"),
                ));
            }
            Err(CodecError::Io(_)) => return ReadOutcome::Eof,
            Err(e) => {
                return ReadOutcome::Error(ErrorBody::new(
                    ErrorCode::MalformedFrame,
                    e.to_string(),
                ));
            }
        }
        if buf.capacity() - buf.len() < 256 {
            buf.reserve(READ_BUFFER.max(buf.len()));
        }
        match read.read_buf(buf).await {
            Ok(0) => {
                if !buf.is_empty() {
                    tracing::debug!(bytes = buf.len(), "peer closed mid-frame");
                }
                return ReadOutcome::Eof;
            }
            Ok(_) => {}
            Err(_) => return ReadOutcome::Eof,
        }
    }
}

async fn read_loop(mut read: OwnedReadHalf, conn: &mut Conn, shutdown: &CancellationToken) {
    let limits = conn.shared.config.limits.clone();
    let mut codec = ServerCodec::new(limits.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);

    // Handshake: the first frame must be a Hello of our version, in time.
    let first = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout(limits.handshake_timeout(), next_frame(&mut read, &mut codec, &mut buf)) => r,
    };
    match first {
        Ok(ReadOutcome::Frame(ClientFrame::Hello(hello))) => {
            if hello.protocol_version != PROTOCOL_VERSION {
                conn.send_error(ErrorBody::new(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, the client {}",
                        hello.protocol_version
                    ),
                ));
                return;
            }
            conn.client_name = hello.client_name.chars().take(64).collect();
            let shared = &conn.shared;
            conn.send_frame(&ServerFrame::Welcome(Welcome {
                protocol_version: PROTOCOL_VERSION,
                server_name: shared.config.server_name.clone(),
                server_version: env!("CARGO_PKG_VERSION").to_string(),
                limits: limits.advertised(),
                registration_open: shared.config.registration
                    == crate::config::RegistrationPolicy::Open,
            }));
        }
        Ok(ReadOutcome::Frame(_)) => {
            conn.send_error(ErrorBody::new(
                ErrorCode::HandshakeRequired,
                "the first frame must be Hello",
            ));
            return;
        }
        Ok(ReadOutcome::Eof) => return,
        Ok(ReadOutcome::Error(e)) => {
            conn.send_error(e);
            return;
        }
        Err(_) => {
            conn.send_error(ErrorBody::new(
                ErrorCode::HandshakeRequired,
                "no Hello within the handshake timeout",
            ));
            return;
        }
    }

    let heartbeat = limits.heartbeat_interval();
    let idle_timeout = limits.idle_timeout();
    let mut last_heard = Instant::now();
    let mut ping_nonce = 0u64;
    let closing = conn.outlet.closing();
    loop {
        let outcome = tokio::select! {
            // A closed connection must not handle the requests still buffered behind the close
            // (a revoked session's next message would be stored): look at the close first.
            biased;
            _ = shutdown.cancelled() => {
                if let Some(frame) = conn.shared.hub.encode_event(&Event::ServerShutdown {
                    reason: "the server is shutting down".into(),
                }) {
                    conn.outlet.push(frame);
                }
                return;
            }
            _ = closing.cancelled() => return,
            r = tokio::time::timeout(heartbeat, next_frame(&mut read, &mut codec, &mut buf)) => r,
        };
        match outcome {
            Err(_quiet) => {
                if last_heard.elapsed() >= idle_timeout {
                    conn.send_error(ErrorBody::new(
                        ErrorCode::IdleTimeout,
                        "nothing received for too long",
                    ));
                    return;
                }
                ping_nonce += 1;
                conn.send_frame(&ServerFrame::Ping { nonce: ping_nonce });
            }
            Ok(ReadOutcome::Eof) => return,
            Ok(ReadOutcome::Error(e)) => {
                tracing::info!(code = ?e.code, "closing on a bad frame");
                conn.send_error(e);
                return;
            }
            Ok(ReadOutcome::Frame(frame)) => {
                last_heard = Instant::now();
                match frame {
                    ClientFrame::Request { id, body } => conn.handle(id, body).await,
                    ClientFrame::Pong { .. } => {}
                    ClientFrame::Hello(_) => {
                        conn.send_error(ErrorBody::new(
                            ErrorCode::HandshakeRequired,
                            "Hello may be sent only once",
                        ));
                        return;
                    }
                }
            }
        }
        // Give back memory after a large frame; idle connections should stay small.
        if buf.is_empty() && buf.capacity() > 64 * 1024 {
            buf = BytesMut::with_capacity(READ_BUFFER);
        }
    }
}

async fn write_loop(mut write: OwnedWriteHalf, drain: Drain, shared: Arc<Shared>) {
    let mut frames = VecDeque::new();
    let mut batch = BytesMut::new();
    // Whether the stream ends on a frame boundary, so that a farewell frame can follow.
    let mut on_boundary = true;
    'taking: while drain.take_all(&mut frames).await == Taken::Frames {
        while let Some(first) = frames.pop_front() {
            // Frames and bytes in this write, for the metrics.
            let mut written = (1, first.len());
            let outcome = if frames.is_empty() || first.len() >= WRITE_BATCH_BYTES {
                write_bounded(&mut write, &first, &drain).await
            } else {
                batch.clear();
                batch.extend_from_slice(&first);
                while batch.len() < WRITE_BATCH_BYTES {
                    match frames.pop_front() {
                        Some(frame) => {
                            batch.extend_from_slice(&frame);
                            written.0 += 1;
                        }
                        None => break,
                    }
                }
                written.1 = batch.len();
                let outcome = write_bounded(&mut write, &batch, &drain).await;
                if batch.capacity() > 4 * WRITE_BATCH_BYTES {
                    batch = BytesMut::new();
                }
                outcome
            };
            if !matches!(outcome, WriteOutcome::Interrupted) {
                shared.metrics.sent(written.0, written.1 as u64);
            }
            match outcome {
                WriteOutcome::Written if frames.is_empty() || !drain.is_closed() => {}
                WriteOutcome::Written | WriteOutcome::WrittenThenClosed => break 'taking,
                WriteOutcome::Interrupted => {
                    on_boundary = false;
                    drain.abort();
                    break 'taking;
                }
            }
        }
        // Idle connections are many: don't keep a burst's worth of slots.
        if frames.capacity() > 64 {
            frames = VecDeque::new();
        }
    }
    if let Some(reason) = drain.reason() {
        tracing::info!(code = ?reason.code, "closing: {}", reason.message);
        if on_boundary && let Ok(frame) = encode_frame(&ServerFrame::Error(reason), u32::MAX) {
            let _ = tokio::time::timeout(FAREWELL_TIMEOUT, write.write_all(&frame)).await;
        }
    }
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, write.shutdown()).await;
}

enum WriteOutcome {
    /// All bytes written.
    Written,
    /// All bytes written, and the connection is closing.
    WrittenThenClosed,
    /// The write failed or stalled; the stream may end mid-frame.
    Interrupted,
}

/// Writes `bytes`, giving up if the peer makes no progress for [`WRITE_TIMEOUT`]. If the
/// connection is closed meanwhile, the write gets [`FAREWELL_TIMEOUT`] more to finish its
/// frames, so that the reason for closing can follow on a frame boundary.
async fn write_bounded(write: &mut OwnedWriteHalf, bytes: &[u8], drain: &Drain) -> WriteOutcome {
    let mut pending = std::pin::pin!(write.write_all(bytes));
    let written = |r: std::io::Result<()>| match r {
        Ok(()) => WriteOutcome::Written,
        Err(_) => WriteOutcome::Interrupted,
    };
    // Almost every write completes at once: try it before arming the close and timeout arms.
    if let Poll::Ready(r) = poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await {
        return written(r);
    }
    tokio::select! {
        biased;
        r = &mut pending => return written(r),
        _ = drain.closed() => {}
        _ = tokio::time::sleep(WRITE_TIMEOUT) => return WriteOutcome::Interrupted,
    }
    match tokio::time::timeout(FAREWELL_TIMEOUT, pending).await {
        Ok(Ok(())) => WriteOutcome::WrittenThenClosed,
        _ => WriteOutcome::Interrupted,
    }
}
