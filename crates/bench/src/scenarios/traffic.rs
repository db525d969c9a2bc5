//! Message traffic: `fanout`, `rooms`, `max` and `ingest` share one driver. Senders send stamped
//! messages (paced by a timer, or as fast as acks come back within a window); every member's
//! reader times each delivery; afterwards the driver waits for the deliveries still in flight and
//! checks the rooms' history against the acks.

use crate::cli::{FanoutArgs, IngestArgs, MaxArgs, RoomsArgs};
use crate::fleet::{Ctx, Fleet, STAMP_PREFIX, bounded, note, stamped_text};
use crate::procfs::Meter;
use crate::report::{Errors, Report, StoredCheck, Traffic};
use crate::stats::{Latency, merge, new_histogram, now_micros, per_sec, record, round3};
use anyhow::{Context, Result, bail};
use chatroom_protocol::client::ClientHandle;
use chatroom_protocol::{HistoryAnchor, RoomId, Seq, Visibility};
use hdrhistogram::Histogram;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

/// Registrations in flight at once (argon2 on the server's blocking pool).
pub(crate) const REGISTER_CONCURRENCY: usize = 16;
/// Joins and other cheap setup requests in flight at once.
pub(crate) const SETUP_CONCURRENCY: usize = 64;
/// A paced sender never has more than this many unacknowledged messages.
const PACED_MAX_IN_FLIGHT: usize = 1024;
/// Most time to wait for the last deliveries after the last ack.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
/// Stop waiting earlier when no delivery arrived for this long.
const DRAIN_STALL: Duration = Duration::from_secs(3);
/// Pause after setup so join and presence events are drained before the clock starts.
pub(crate) const SETTLE: Duration = Duration::from_millis(500);
/// Most (send time, ack latency) samples a sender keeps for the per-second timeline.
const TIMELINE_SAMPLES: usize = 1 << 20;

/// A room of the run and which peers are in it.
#[derive(Debug, Clone)]
pub(crate) struct RoomPlan {
    pub id: RoomId,
    /// Peer indices of the members (the owner first).
    pub members: Vec<usize>,
}

/// A sender: which peer, into which room (an index into the rooms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderPlan {
    pub peer: usize,
    pub room: usize,
}

/// How senders send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Each sender at this many messages per second, on a timer.
    Rate(f64),
    /// Each sender as fast as acks come back, at most this many unacknowledged.
    Window(usize),
}

/// What the driver measured.
pub(crate) struct Outcome {
    pub traffic: Traffic,
    pub ack_hist: Histogram<u64>,
    /// p99 ack latency (ms) of the messages sent in each second of the phase.
    pub ack_p99_by_second: Vec<f64>,
    pub stored: StoredCheck,
    pub meter: crate::procfs::Measured,
    pub errors: Errors,
}

struct SenderResult {
    room: usize,
    sent: u64,
    acked: u64,
    failed: u64,
    hist: Histogram<u64>,
    /// (send time, ack latency) in tool-clock microseconds.
    timeline: Vec<(u64, u64)>,
    errors: Errors,
}

impl SenderResult {
    fn new(room: usize) -> Self {
        SenderResult {
            room,
            sent: 0,
            acked: 0,
            failed: 0,
            hist: new_histogram(),
            timeline: Vec::new(),
            errors: Errors::default(),
        }
    }

    fn tally(&mut self, joined: Result<SendOutcome, tokio::task::JoinError>) {
        match joined {
            Ok((Ok(()), sent_at, micros)) => {
                self.acked += 1;
                record(&mut self.hist, micros);
                if self.timeline.len() < TIMELINE_SAMPLES {
                    self.timeline.push((sent_at, micros));
                }
            }
            Ok((Err(e), _, _)) => {
                self.failed += 1;
                self.errors.add(format!("send: {e}"));
            }
            Err(e) => {
                self.failed += 1;
                self.errors.add(format!("send task: {e}"));
            }
        }
    }
}

/// What became of one send: the result, when it was sent, how long the ack took (µs).
type SendOutcome = (Result<(), String>, u64, u64);

async fn send_one(handle: ClientHandle, room: RoomId, sender: usize, n: u64) -> SendOutcome {
    let t0 = now_micros();
    let result = handle
        .send_message(room, stamped_text(sender, n, t0))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    (result, t0, now_micros().saturating_sub(t0))
}

async fn send_paced(
    mut res: SenderResult,
    handle: ClientHandle,
    room: RoomId,
    sender: usize,
    period: Duration,
    first_tick: Instant,
    deadline: Instant,
) -> SenderResult {
    let mut ticker = tokio::time::interval_at(first_tick, period);
    // Catch up after a late tick, so the aggregate rate is the one asked for.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut in_flight = JoinSet::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if Instant::now() >= deadline || handle.is_closed() {
            break;
        }
        while let Some(done) = in_flight.try_join_next() {
            res.tally(done);
        }
        if in_flight.len() >= PACED_MAX_IN_FLIGHT
            && let Some(done) = in_flight.join_next().await
        {
            res.tally(done);
        }
        in_flight.spawn(send_one(handle.clone(), room, sender, n));
        res.sent += 1;
        n += 1;
    }
    while let Some(done) = in_flight.join_next().await {
        res.tally(done);
    }
    res
}

async fn send_windowed(
    mut res: SenderResult,
    handle: ClientHandle,
    room: RoomId,
    sender: usize,
    window: usize,
    deadline: Instant,
) -> SenderResult {
    let mut in_flight = JoinSet::new();
    let mut n = 0u64;
    loop {
        while in_flight.len() < window && Instant::now() < deadline && !handle.is_closed() {
            in_flight.spawn(send_one(handle.clone(), room, sender, n));
            res.sent += 1;
            n += 1;
        }
        match in_flight.join_next().await {
            Some(done) => res.tally(done),
            None => break,
        }
    }
    res
}

/// The newest seq of each room, as its owner sees it.
async fn latest_seqs(fleet: &Fleet, rooms: &[RoomPlan]) -> Result<Vec<Seq>> {
    let lookups = bounded(rooms.len(), SETUP_CONCURRENCY, |i| {
        let handle = fleet.peers[rooms[i].members[0]].handle.clone();
        let id = rooms[i].id;
        async move {
            let mine = handle.my_rooms().await.context("listing rooms")?;
            mine.iter()
                .find(|r| r.id == id)
                .map(|r| r.latest_seq)
                .with_context(|| format!("room {id} missing from its owner's list"))
        }
    })
    .await;
    lookups.into_iter().collect()
}

/// Counts the stamped messages in `room` after `after`, paging forward; also whether seqs are
/// gapless from `after` on.
pub(crate) async fn count_stored(
    handle: ClientHandle,
    room: RoomId,
    after: Seq,
    page: u32,
    prefix: &'static str,
) -> Result<(u64, bool)> {
    let mut anchor = after;
    let mut found = 0u64;
    let mut gapless = true;
    loop {
        let page = handle
            .history(room, HistoryAnchor::After(anchor), page)
            .await
            .with_context(|| format!("history of room {room}"))?;
        for m in &page.messages {
            if m.seq != anchor + 1 {
                gapless = false;
            }
            anchor = m.seq;
            if m.text.starts_with(prefix) {
                found += 1;
            }
        }
        if !page.has_more || page.messages.is_empty() {
            break;
        }
    }
    Ok((found, gapless))
}

/// Waits for the deliveries still on their way after the last send: until `received()` reaches
/// `expected`, nothing arrived for [`DRAIN_STALL`], or [`DRAIN_LIMIT`] passed.
pub(crate) async fn await_deliveries(expected: u64, received: impl Fn() -> u64) {
    let drain_deadline = Instant::now() + DRAIN_LIMIT;
    let mut last_progress = (received(), Instant::now());
    loop {
        let now_received = received();
        if now_received >= expected || Instant::now() >= drain_deadline {
            break;
        }
        if now_received != last_progress.0 {
            last_progress = (now_received, Instant::now());
        } else if last_progress.1.elapsed() >= DRAIN_STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends for `secs`, waits for the deliveries, checks storage.
pub(crate) async fn drive(
    ctx: &Ctx,
    fleet: &Fleet,
    rooms: &[RoomPlan],
    senders: &[SenderPlan],
    pace: Pace,
    secs: u32,
) -> Result<Outcome> {
    tokio::time::sleep(SETTLE).await;
    let baseline = latest_seqs(fleet, rooms).await?;
    let already = fleet.received();
    if already != 0 {
        bail!("{already} timed messages arrived before the run started");
    }

    note(format!(
        "sending for {secs} s: {} senders into {} rooms, {pace:?}",
        senders.len(),
        rooms.len()
    ));
    // Allocated before the clock starts.
    let mut prepared: Vec<SenderResult> = senders
        .iter()
        .map(|plan| {
            let mut r = SenderResult::new(plan.room);
            r.timeline.reserve(match pace {
                Pace::Rate(per_sender) => (per_sender * f64::from(secs)) as usize + 16,
                Pace::Window(_) => 4096,
            });
            r
        })
        .collect();
    let meter = Meter::start(ctx.server_pid)?;
    let start = Instant::now();
    let start_micros = now_micros();
    let deadline = start + Duration::from_secs(u64::from(secs));
    let mut tasks = JoinSet::new();
    let count = senders.len();
    for (i, (plan, res)) in senders.iter().copied().zip(prepared.drain(..)).enumerate() {
        let handle = fleet.peers[plan.peer].handle.clone();
        let room = rooms[plan.room].id;
        match pace {
            Pace::Rate(per_sender) => {
                let period = Duration::from_secs_f64(1.0 / per_sender.max(1e-3));
                // Spread the senders' ticks over one period.
                let offset = period.mul_f64(i as f64 / count as f64);
                tasks.spawn(send_paced(
                    res,
                    handle,
                    room,
                    i,
                    period,
                    start + offset,
                    deadline,
                ));
            }
            Pace::Window(w) => {
                tasks.spawn(send_windowed(res, handle, room, i, w, deadline));
            }
        }
    }

    let mut acked_per_room = vec![0u64; rooms.len()];
    let (mut sent, mut acked, mut failed) = (0u64, 0u64, 0u64);
    let mut ack_hist = new_histogram();
    let mut by_second: Vec<Histogram<u64>> = Vec::new();
    let mut errors = Errors::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => {
                sent += r.sent;
                acked += r.acked;
                failed += r.failed;
                acked_per_room[r.room] += r.acked;
                merge(&mut ack_hist, &r.hist);
                for (sent_at, micros) in r.timeline {
                    let second = (sent_at.saturating_sub(start_micros) / 1_000_000) as usize;
                    if second > secs as usize {
                        continue;
                    }
                    while by_second.len() <= second {
                        by_second.push(new_histogram());
                    }
                    record(&mut by_second[second], micros);
                }
                errors.extend(r.errors);
            }
            Err(e) => errors.add(format!("sender task: {e}")),
        }
    }
    let send_secs = start.elapsed().as_secs_f64();

    let expected: u64 = rooms
        .iter()
        .zip(&acked_per_room)
        .map(|(room, acked)| acked * room.members.len() as u64)
        .sum();
    await_deliveries(expected, || fleet.received()).await;
    let measured = meter.finish();
    let received = fleet.received();
    let disconnected = fleet.disconnected() as u64;
    let last = fleet.last_delivery_micros();
    let delivery_secs = if last > start_micros {
        (last - start_micros) as f64 / 1e6
    } else {
        send_secs
    };

    note("checking the rooms' history against the acks");
    let checks = bounded(rooms.len(), 8, |i| {
        let peer = &fleet.peers[rooms[i].members[0]];
        let handle = peer.handle.clone();
        let page = peer.max_history_page;
        let (id, after) = (rooms[i].id, baseline[i]);
        async move { count_stored(handle, id, after, page, STAMP_PREFIX).await }
    })
    .await;
    let mut stored = StoredCheck {
        rooms: rooms.len() as u64,
        acked,
        stored: 0,
        gapless: true,
        ok: true,
    };
    for (i, check) in checks.into_iter().enumerate() {
        match check {
            Ok((found, gapless)) => {
                stored.stored += found;
                stored.gapless &= gapless;
                stored.ok &= found == acked_per_room[i] && gapless;
            }
            Err(e) => {
                stored.ok = false;
                errors.add(format!("stored check: {e:#}"));
            }
        }
    }

    let traffic = Traffic {
        clients: fleet.peers.len() as u64,
        rooms: rooms.len() as u64,
        senders: senders.len() as u64,
        send_secs: round3(send_secs),
        sent,
        acked,
        failed,
        acked_per_sec: per_sec(acked, send_secs),
        expected_deliveries: expected,
        received_deliveries: received,
        delivery_ratio: if expected > 0 {
            received as f64 / expected as f64
        } else {
            0.0
        },
        delivery_secs: round3(delivery_secs),
        deliveries_per_sec: per_sec(received, delivery_secs),
        disconnected,
    };
    Ok(Outcome {
        traffic,
        ack_hist,
        ack_p99_by_second: by_second.iter().map(|h| Latency::of(h).p99_ms).collect(),
        stored,
        meter: measured,
        errors,
    })
}

/// Turns an outcome and the merged delivery histogram into the report.
async fn finish(
    ctx: &Ctx,
    mut report: Report,
    fleet: Fleet,
    outcome: Outcome,
    with_deliveries: bool,
) -> Report {
    let deliveries = fleet.shutdown().await;
    report.prefix = ctx.prefix.clone();
    report.traffic = Some(outcome.traffic);
    if with_deliveries {
        report.delivery_latency = Some(Latency::of(&deliveries));
    }
    report.ack_latency = Some(Latency::of(&outcome.ack_hist));
    report.ack_p99_ms_by_second = outcome.ack_p99_by_second;
    report.stored = Some(outcome.stored);
    report.set_usage(&outcome.meter);
    report.errors = outcome.errors.into_vec();
    report
}

/// Registers `clients` users, and puts them in one fresh room (the first creates it).
async fn one_room(ctx: &Ctx, clients: usize) -> Result<(Fleet, Vec<RoomPlan>)> {
    let mut fleet = Fleet::new();
    note(format!(
        "registering {clients} users (argon2 on the server)"
    ));
    fleet
        .register(ctx, 0, clients, REGISTER_CONCURRENCY)
        .await?;
    let rooms = make_rooms(ctx, &fleet, &[(0..clients).collect()]).await?;
    Ok((fleet, rooms))
}

/// Creates one room per member list (its first member creates it) and has the others join.
async fn make_rooms(ctx: &Ctx, fleet: &Fleet, groups: &[Vec<usize>]) -> Result<Vec<RoomPlan>> {
    note(format!("creating {} rooms", groups.len()));
    let created = bounded(groups.len(), SETUP_CONCURRENCY, |i| {
        let handle = fleet.peers[groups[i][0]].handle.clone();
        let name = ctx.room_name(&format!("r{i}"));
        async move {
            let room = handle
                .create_room(&name, Visibility::Public)
                .await
                .with_context(|| format!("creating room {name}"))?;
            Ok((room.id, name))
        }
    })
    .await;
    let mut rooms = Vec::with_capacity(groups.len());
    let mut joins = Vec::new();
    for (group, created) in groups.iter().zip(created) {
        let (id, name) = created?;
        for &member in &group[1..] {
            joins.push((member, name.clone()));
        }
        rooms.push(RoomPlan {
            id,
            members: group.clone(),
        });
    }
    note(format!("{} joins", joins.len()));
    let joined = bounded(joins.len(), SETUP_CONCURRENCY, |i| {
        let handle = fleet.peers[joins[i].0].handle.clone();
        let name = joins[i].1.clone();
        async move {
            handle
                .join_room(&name)
                .await
                .with_context(|| format!("joining {name}"))?;
            Ok(())
        }
    })
    .await;
    for j in joined {
        j?;
    }
    Ok(rooms)
}

pub(crate) fn params<T: serde::Serialize>(args: &T) -> serde_json::Value {
    serde_json::to_value(args).unwrap_or(serde_json::Value::Null)
}

/// `fanout`: N members of one room, S of them sending at an aggregate rate.
pub(crate) async fn fanout(ctx: &Ctx, a: &FanoutArgs) -> Result<Report> {
    let report = Report::new("fanout", params(a), ctx.addr.to_string());
    let (fleet, rooms) = one_room(ctx, a.clients as usize).await?;
    let senders: Vec<SenderPlan> = (0..a.senders as usize)
        .map(|peer| SenderPlan { peer, room: 0 })
        .collect();
    let pace = Pace::Rate(f64::from(a.rate) / f64::from(a.senders));
    let outcome = drive(ctx, &fleet, &rooms, &senders, pace, a.secs).await?;
    Ok(finish(ctx, report, fleet, outcome, true).await)
}

/// `max`: N members of one room, S senders each with a window of unacknowledged messages.
pub(crate) async fn max(ctx: &Ctx, a: &MaxArgs) -> Result<Report> {
    let report = Report::new("max", params(a), ctx.addr.to_string());
    let (fleet, rooms) = one_room(ctx, a.clients as usize).await?;
    let senders: Vec<SenderPlan> = (0..a.senders as usize)
        .map(|peer| SenderPlan { peer, room: 0 })
        .collect();
    let pace = Pace::Window(a.window as usize);
    let outcome = drive(ctx, &fleet, &rooms, &senders, pace, a.secs).await?;
    Ok(finish(ctx, report, fleet, outcome, true).await)
}

/// `rooms`: N clients in rooms of K; senders spread round-robin over the rooms.
pub(crate) async fn rooms(ctx: &Ctx, a: &RoomsArgs) -> Result<Report> {
    let report = Report::new("rooms", params(a), ctx.addr.to_string());
    let n = a.clients as usize;
    let k = a.room_size as usize;
    let mut fleet = Fleet::new();
    note(format!("registering {n} users (argon2 on the server)"));
    fleet.register(ctx, 0, n, REGISTER_CONCURRENCY).await?;
    let groups: Vec<Vec<usize>> = (0..n)
        .step_by(k)
        .map(|first| (first..(first + k).min(n)).collect())
        .collect();
    let rooms = make_rooms(ctx, &fleet, &groups).await?;
    let s = a.senders.unwrap_or(a.clients) as usize;
    let senders: Vec<SenderPlan> = (0..s)
        .map(|i| {
            let room = i % rooms.len();
            let members = &rooms[room].members;
            SenderPlan {
                peer: members[(i / rooms.len()) % members.len()],
                room,
            }
        })
        .collect();
    let pace = Pace::Rate(f64::from(a.rate) / s as f64);
    let outcome = drive(ctx, &fleet, &rooms, &senders, pace, a.secs).await?;
    Ok(finish(ctx, report, fleet, outcome, true).await)
}

/// `ingest`: every sender alone in its own room, as fast as acks come back.
pub(crate) async fn ingest(ctx: &Ctx, a: &IngestArgs) -> Result<Report> {
    let report = Report::new("ingest", params(a), ctx.addr.to_string());
    let n = a.senders as usize;
    let mut fleet = Fleet::new();
    note(format!("registering {n} users (argon2 on the server)"));
    fleet.register(ctx, 0, n, REGISTER_CONCURRENCY).await?;
    let groups: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let rooms = make_rooms(ctx, &fleet, &groups).await?;
    let senders: Vec<SenderPlan> = (0..n).map(|i| SenderPlan { peer: i, room: i }).collect();
    let pace = Pace::Window(a.window as usize);
    let outcome = drive(ctx, &fleet, &rooms, &senders, pace, a.secs).await?;
    Ok(finish(ctx, report, fleet, outcome, true).await)
}
