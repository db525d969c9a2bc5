//! A connection's outbound queue: the encoded frames waiting for its writer task, and how the
//! connection is closed from outside.
//!
//! Anything may push — storage completions on the writer thread, fan-out, the connection's own
//! request handling — through an [`Outlet`]; the connection's writer task takes everything queued
//! at once through the [`Drain`] and writes it. One mutex guards the frames, the writer's waker
//! and the closed state, so a push is a short lock, a `push_back`, and a wake-up only when the
//! writer is parked on an empty queue: frames pushed before the writer runs ride along in the
//! same write without waking anything.
//!
//! It replaced a tokio mpsc channel beside a cancellation token. With 500 members in a room every
//! commit pushes 500 frames, and that channel's per-frame semaphore and the writer's per-wait
//! cancellation registration were about a tenth of the server's CPU in the `fanout` benchmark
//! (see BENCHMARKS.md).
//!
//! Bounded: at most `capacity` frames wait. A push onto a full queue closes the connection as
//! too slow; the client resumes from its last seq when it reconnects.

use bytes::Bytes;
use chatroom_protocol::{ErrorBody, ErrorCode};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct Outbox {
    state: Mutex<State>,
    /// Cancelled on close, for the connection's reader, which waits on its socket, not here.
    closing: CancellationToken,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// The writer task, when it is parked waiting for frames or for a close.
    writer: Option<Waker>,
    /// Closed from outside: the writer stops taking frames.
    closed: bool,
    /// Why, if a reason was given; the first one wins.
    reason: Option<ErrorBody>,
    /// Live [`Outlet`]s. At zero nothing more can be queued, and the writer ends once it has
    /// written what is.
    outlets: usize,
}

impl Outbox {
    // A poisoned lock means a panic elsewhere mid-push; the queue itself is still consistent
    // (every change to it is a single call), and refusing to write would lose frames.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, reason: Option<ErrorBody>) {
        let (writer, unsent) = {
            let mut state = self.lock();
            if state.reason.is_none() {
                state.reason = reason;
            }
            state.closed = true;
            (state.writer.take(), std::mem::take(&mut state.frames))
        };
        // The writer takes nothing after a close, so queued frames would otherwise live as long
        // as the last outlet. Some own resources (a download slot), which a handler waiting for
        // them must get back; drop them outside the lock.
        drop(unsent);
        if let Some(writer) = writer {
            writer.wake();
        }
        self.closing.cancel();
    }
}

/// Creates a connection's queue, holding at most `capacity` frames: the pushing end and the
/// writer's end.
pub fn outbox(capacity: usize) -> (Outlet, Drain) {
    let outbox = Arc::new(Outbox {
        state: Mutex::new(State {
            outlets: 1,
            ..State::default()
        }),
        closing: CancellationToken::new(),
        capacity: capacity.max(1),
    });
    (
        Outlet {
            outbox: Arc::clone(&outbox),
        },
        Drain { outbox },
    )
}

/// Where a connection's outgoing frames go; clone it freely.
#[derive(Debug)]
pub struct Outlet {
    outbox: Arc<Outbox>,
}

impl Clone for Outlet {
    fn clone(&self) -> Self {
        self.outbox.lock().outlets += 1;
        Self {
            outbox: Arc::clone(&self.outbox),
        }
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        let writer = {
            let mut state = self.outbox.lock();
            state.outlets = state.outlets.saturating_sub(1);
            if state.outlets == 0 {
                state.writer.take()
            } else {
                None
            }
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

impl Outlet {
    /// Queues `frame`; a full queue closes the connection as too slow. Frames pushed after a
    /// close are dropped: the writer no longer takes any.
    pub fn push(&self, frame: Bytes) {
        let writer = {
            let mut state = self.outbox.lock();
            if state.closed {
                return;
            }
            if state.frames.len() >= self.outbox.capacity {
                drop(state);
                self.close(ErrorBody::new(
                    ErrorCode::TooSlow,
                    "the connection could not keep up with its events; reconnect and resume",
                ));
                return;
            }
            state.frames.push_back(frame);
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Asks the connection to close, telling the peer `reason` (the first reason wins). The
    /// writer stops at once, sends the reason as its last frame, and the reader ends.
    pub fn close(&self, reason: ErrorBody) {
        self.outbox.close(Some(reason));
    }

    /// Whether the connection was closed.
    pub fn is_closed(&self) -> bool {
        self.outbox.lock().closed
    }

    /// A token cancelled when the connection is closed, for the reader's `select!`.
    pub fn closing(&self) -> CancellationToken {
        self.outbox.closing.clone()
    }
}

/// The writer task's end of the queue.
#[derive(Debug)]
pub struct Drain {
    outbox: Arc<Outbox>,
}

/// What [`Drain::take_all`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Frames were moved out; write them.
    Frames,
    /// The connection was closed from outside.
    Closed,
    /// Every [`Outlet`] is gone and everything queued was taken.
    Finished,
}

impl Drain {
    /// Waits until there is something to do, then moves every queued frame into `into` (which
    /// should be empty; its allocation is reused).
    pub async fn take_all(&self, into: &mut VecDeque<Bytes>) -> Taken {
        poll_fn(|cx| {
            let mut state = self.outbox.lock();
            if state.closed {
                return Poll::Ready(Taken::Closed);
            }
            if !state.frames.is_empty() {
                std::mem::swap(&mut state.frames, into);
                return Poll::Ready(Taken::Frames);
            }
            if state.outlets == 0 {
                return Poll::Ready(Taken::Finished);
            }
            register(&mut state.writer, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Resolves once the connection is closed from outside.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            let mut state = self.outbox.lock();
            if state.closed {
                return Poll::Ready(());
            }
            register(&mut state.writer, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Whether the connection was closed from outside.
    pub fn is_closed(&self) -> bool {
        self.outbox.lock().closed
    }

    /// Closes without a reason (the peer is gone already).
    pub fn abort(&self) {
        self.outbox.close(None);
    }

    /// The reason the connection was closed with, if any.
    pub fn reason(&self) -> Option<ErrorBody> {
        self.outbox.lock().reason.clone()
    }
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(current) if current.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 3])
    }

    /// Threads that each push `each` frames tagged with their number and a sequence.
    fn spawn_pushers(outlet: &Outlet, pushers: u8, each: u32) -> Vec<std::thread::JoinHandle<()>> {
        (0..pushers)
            .map(|p| {
                let outlet = outlet.clone();
                std::thread::spawn(move || {
                    for seq in 0..each {
                        let mut frame = vec![p];
                        frame.extend_from_slice(&seq.to_le_bytes());
                        outlet.push(Bytes::from(frame));
                    }
                })
            })
            .collect()
    }

    /// Checks that a tagged frame is the next of its pusher's sequence, and counts it.
    fn expect_next(next: &mut [u32], frame: &Bytes) {
        let pusher = usize::from(frame[0]);
        let seq = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]);
        assert_eq!(seq, next[pusher], "pusher {pusher} out of order");
        next[pusher] += 1;
    }

    #[tokio::test]
    async fn frames_come_out_in_order_all_at_once() {
        let (outlet, drain) = outbox(8);
        outlet.push(frame(1));
        outlet.push(frame(2));
        let mut taken = VecDeque::new();
        assert_eq!(drain.take_all(&mut taken).await, Taken::Frames);
        assert_eq!(taken, [frame(1), frame(2)]);
    }

    #[tokio::test]
    async fn a_parked_writer_is_woken_by_a_push_from_another_thread() {
        let (outlet, drain) = outbox(8);
        let writer = tokio::spawn(async move {
            let mut taken = VecDeque::new();
            let first = drain.take_all(&mut taken).await;
            (first, taken)
        });
        tokio::task::yield_now().await;
        // The test keeps an outlet alive: the last one's drop would wake the writer too.
        let pusher = outlet.clone();
        std::thread::spawn(move || pusher.push(frame(7)))
            .join()
            .expect("pusher thread");
        let (first, taken) = tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("woken by the push")
            .expect("writer task");
        assert_eq!(first, Taken::Frames);
        assert_eq!(taken, [frame(7)]);
        drop(outlet);
    }

    #[tokio::test]
    async fn the_writer_finishes_after_the_last_outlet_is_dropped_and_the_queue_is_drained() {
        let (outlet, drain) = outbox(8);
        let second = outlet.clone();
        outlet.push(frame(1));
        drop(outlet);
        let mut taken = VecDeque::new();
        assert_eq!(drain.take_all(&mut taken).await, Taken::Frames);
        taken.clear();
        let waiting = tokio::spawn(async move {
            let mut taken = VecDeque::new();
            drain.take_all(&mut taken).await
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a clone is still alive");
        drop(second);
        let finished = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await;
        assert_eq!(
            finished
                .expect("woken by the last drop")
                .expect("writer task"),
            Taken::Finished
        );
    }

    #[tokio::test]
    async fn a_full_queue_closes_the_connection_as_too_slow() {
        let (outlet, drain) = outbox(2);
        let closing = outlet.closing();
        outlet.push(frame(1));
        outlet.push(frame(2));
        assert!(!outlet.is_closed());
        outlet.push(frame(3));
        assert!(outlet.is_closed() && drain.is_closed() && closing.is_cancelled());
        assert_eq!(
            drain.reason().map(|r| r.code),
            Some(ErrorCode::TooSlow),
            "the reason is the last thing the client hears"
        );
        let mut taken = VecDeque::new();
        assert_eq!(drain.take_all(&mut taken).await, Taken::Closed);
        assert!(taken.is_empty(), "a closed queue hands out nothing more");
        outlet.push(frame(4));
        assert_eq!(drain.take_all(&mut taken).await, Taken::Closed);
    }

    #[tokio::test]
    async fn the_first_reason_wins_and_wakes_a_writer_waiting_for_a_close() {
        let (outlet, drain) = outbox(8);
        let drain = Arc::new(drain);
        let waiting = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.closed().await }
        });
        tokio::task::yield_now().await;
        outlet.close(ErrorBody::new(ErrorCode::SessionRevoked, "first"));
        outlet.close(ErrorBody::new(ErrorCode::TooSlow, "second"));
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("woken by the close")
            .expect("waiting task");
        assert_eq!(drain.reason().map(|r| r.message), Some("first".to_string()));
    }

    /// Pushers on their own threads, each dropping its outlet when done; the writer on a
    /// multi-thread runtime. Every frame arrives once, each pusher's in order, and the writer
    /// ends by itself once the last outlet is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushers_lose_nothing_and_the_writer_ends() {
        const PUSHERS: u8 = 4;
        const EACH: u32 = 20_000;
        let (outlet, drain) = outbox(PUSHERS as usize * EACH as usize);
        let writer = tokio::spawn(async move {
            let mut next = [0u32; PUSHERS as usize];
            let mut taken = VecDeque::new();
            let mut wakes = 0u32;
            while drain.take_all(&mut taken).await == Taken::Frames {
                wakes += 1;
                for frame in taken.drain(..) {
                    expect_next(&mut next, &frame);
                }
            }
            (next, wakes)
        });
        let pushers = spawn_pushers(&outlet, PUSHERS, EACH);
        drop(outlet);
        for pusher in pushers {
            pusher.join().expect("pusher thread");
        }
        let (next, wakes) = tokio::time::timeout(std::time::Duration::from_secs(30), writer)
            .await
            .expect("the writer ended once every outlet was gone")
            .expect("writer task");
        assert_eq!(next, [EACH; PUSHERS as usize]);
        assert!(wakes >= 1);
    }

    /// A close racing with pushers: the writer stops with `Closed`, what it took before is
    /// each pusher's frames in order without gaps, and pushes after the close are dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_close_racing_with_pushers_stops_the_writer_cleanly() {
        let (outlet, drain) = outbox(1 << 20);
        let writer = tokio::spawn(async move {
            let mut next = [0u32; 2];
            let mut taken = VecDeque::new();
            let end = loop {
                match drain.take_all(&mut taken).await {
                    Taken::Frames => {}
                    end => break end,
                }
                for frame in taken.drain(..) {
                    expect_next(&mut next, &frame);
                }
            };
            (end, drain.reason().map(|r| r.code))
        });
        let pushers = spawn_pushers(&outlet, 2, 50_000);
        std::thread::sleep(std::time::Duration::from_millis(2));
        outlet.close(ErrorBody::new(
            ErrorCode::SessionRevoked,
            "logged out elsewhere",
        ));
        for pusher in pushers {
            pusher.join().expect("pusher thread");
        }
        let (end, reason) = tokio::time::timeout(std::time::Duration::from_secs(30), writer)
            .await
            .expect("the writer stopped")
            .expect("writer task");
        assert_eq!(end, Taken::Closed);
        assert_eq!(reason, Some(ErrorCode::SessionRevoked));
    }

    /// A frame that owns a resource until it is dropped, as a download chunk owns its slot.
    #[tokio::test]
    async fn a_close_drops_the_unsent_frames_and_what_they_own() {
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let (outlet, drain) = outbox(8);
        for _ in 0..2 {
            let slot = Arc::clone(&slots).try_acquire_owned().expect("a free slot");
            outlet.push(Bytes::from_owner(Owning {
                bytes: vec![1, 2, 3],
                _slot: slot,
            }));
        }
        assert_eq!(slots.available_permits(), 0);
        let waiting = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.acquire_owned().await.is_ok() }
        });
        outlet.close(ErrorBody::new(ErrorCode::TooSlow, "stalled"));
        assert_eq!(
            slots.available_permits(),
            2,
            "the queued frames were dropped"
        );
        assert!(
            waiting.await.expect("the waiter ran"),
            "the waiter got a slot"
        );
        let mut taken = VecDeque::new();
        assert_eq!(drain.take_all(&mut taken).await, Taken::Closed);
        assert!(taken.is_empty());
    }

    struct Owning {
        bytes: Vec<u8>,
        _slot: tokio::sync::OwnedSemaphorePermit,
    }

    impl AsRef<[u8]> for Owning {
        fn as_ref(&self) -> &[u8] {
            &self.bytes
        }
    }

    #[tokio::test]
    async fn abort_closes_without_a_reason() {
        let (outlet, drain) = outbox(8);
        drain.abort();
        assert!(outlet.is_closed());
        assert_eq!(drain.reason(), None);
    }
}
