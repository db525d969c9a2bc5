//! `history`: fill a room with M messages, check they are all stored, then have C clients page
//! back through it (newest page first, then `Before` the oldest seen) for T seconds.

use super::traffic::{REGISTER_CONCURRENCY, SETUP_CONCURRENCY, count_stored};
use crate::cli::HistoryArgs;
use crate::fleet::{Ctx, Fleet, note};
use crate::procfs::Meter;
use crate::report::{Errors, Ops, Report, StoredCheck};
use crate::stats::{Latency, merge, new_histogram, per_sec, record_duration, round3};
use anyhow::Result;
use chatroom_protocol::client::ClientHandle;
use chatroom_protocol::{HistoryAnchor, RoomId, RoomSummary};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Prefix of the fill messages (not timed as deliveries).
const FILL_PREFIX: &str = "h:";
/// Unacknowledged fill messages at once.
const FILL_WINDOW: usize = 64;

fn fill_text(n: u32) -> String {
    format!("{FILL_PREFIX}{n} the quick brown fox jumps over the lazy dog")
}

/// Sends `count` messages, `text(n)` for n in 0..count, with [`FILL_WINDOW`] in flight;
/// returns (acked, failed, errors).
pub(super) async fn fill(
    handle: ClientHandle,
    room: RoomId,
    count: u32,
    text: impl Fn(u32) -> String,
) -> (u64, u64, Errors) {
    let mut in_flight = JoinSet::new();
    let (mut acked, mut failed) = (0u64, 0u64);
    let mut errors = Errors::default();
    let mut next = 0u32;
    loop {
        while next < count && in_flight.len() < FILL_WINDOW && !handle.is_closed() {
            let h = handle.clone();
            let text = text(next);
            in_flight.spawn(async move { h.send_message(room, text).await });
            next += 1;
        }
        match in_flight.join_next().await {
            Some(Ok(Ok(_))) => acked += 1,
            Some(Ok(Err(e))) => {
                failed += 1;
                errors.add(format!("fill: {e}"));
            }
            Some(Err(e)) => {
                failed += 1;
                errors.add(format!("fill task: {e}"));
            }
            None => break,
        }
    }
    (acked, failed, errors)
}

/// A room filled by [`Filled::write`]: how it went, and whether the server stored it all.
pub(super) struct Filled {
    /// The `fill` op: messages acknowledged, failed, and how fast.
    pub(super) ops: Ops,
    /// Every acknowledged message of the fill is in the room's history, gapless.
    pub(super) stored: StoredCheck,
    /// What failed, if anything.
    pub(super) errors: Errors,
}

impl Filled {
    /// Has `owner` send `count` messages, `text(n)`, each starting with `prefix`, to `room`,
    /// then counts them in its history (`page` messages at a time).
    pub(super) async fn write(
        owner: &ClientHandle,
        room: &RoomSummary,
        page: u32,
        count: u32,
        prefix: &'static str,
        text: impl Fn(u32) -> String,
    ) -> Result<Filled> {
        note(format!("writing {count} messages"));
        let t0 = Instant::now();
        let (acked, failed, errors) = fill(owner.clone(), room.id, count, text).await;
        let secs = t0.elapsed().as_secs_f64();
        let (stored, gapless) =
            count_stored(owner.clone(), room.id, room.latest_seq, page, prefix).await?;
        Ok(Filled {
            ops: Ops {
                name: "fill",
                count: acked,
                failed,
                secs: round3(secs),
                per_sec: per_sec(acked, secs),
                latency: None,
            },
            stored: StoredCheck {
                rooms: 1,
                acked,
                stored,
                gapless,
                ok: stored == acked && gapless,
            },
            errors,
        })
    }
}

struct PagerResult {
    pages: u64,
    messages: u64,
    failed: u64,
    hist: Histogram<u64>,
    errors: Errors,
}

/// Pages backwards through the room until `deadline`, starting over at the newest page.
async fn page_through(
    handle: ClientHandle,
    room: RoomId,
    page: u32,
    deadline: Instant,
) -> PagerResult {
    let mut r = PagerResult {
        pages: 0,
        messages: 0,
        failed: 0,
        hist: new_histogram(),
        errors: Errors::default(),
    };
    let mut anchor = HistoryAnchor::Latest;
    while Instant::now() < deadline && !handle.is_closed() {
        let t0 = Instant::now();
        match handle.history(room, anchor, page).await {
            Ok(p) => {
                record_duration(&mut r.hist, t0.elapsed());
                r.pages += 1;
                r.messages += p.messages.len() as u64;
                anchor = match (p.has_more, p.messages.first()) {
                    (true, Some(oldest)) => HistoryAnchor::Before(oldest.seq),
                    _ => HistoryAnchor::Latest,
                };
            }
            Err(e) => {
                r.failed += 1;
                r.errors.add(format!("history: {e}"));
                anchor = HistoryAnchor::Latest;
            }
        }
    }
    r
}

/// `history`.
pub(crate) async fn history(ctx: &Ctx, a: &HistoryArgs) -> Result<Report> {
    let params = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
    let mut report = Report::new("history", params, ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let mut errors = Errors::default();

    let mut fleet = Fleet::new();
    note(format!("registering {n} users (argon2 on the server)"));
    fleet.register(ctx, 0, n, REGISTER_CONCURRENCY).await?;
    let room = fleet.shared_room(ctx, "history", SETUP_CONCURRENCY).await?;
    let owner = fleet.peers[0].handle.clone();

    let filled = Filled::write(
        &owner,
        &room,
        fleet.peers[0].max_history_page,
        a.messages,
        FILL_PREFIX,
        fill_text,
    )
    .await?;
    report.stored = Some(filled.stored);
    errors.extend(filled.errors);

    note(format!(
        "{n} clients page through the history for {} s, {} messages a page",
        a.secs, a.page
    ));
    let meter = Meter::start(ctx.server_pid)?;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(u64::from(a.secs));
    let mut pagers = JoinSet::new();
    for peer in &fleet.peers {
        pagers.spawn(page_through(peer.handle.clone(), room.id, a.page, deadline));
    }
    let mut hist = new_histogram();
    let (mut pages, mut messages, mut page_failed) = (0u64, 0u64, 0u64);
    while let Some(joined) = pagers.join_next().await {
        match joined {
            Ok(r) => {
                pages += r.pages;
                messages += r.messages;
                page_failed += r.failed;
                merge(&mut hist, &r.hist);
                errors.extend(r.errors);
            }
            Err(e) => errors.add(format!("pager task: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let measured = meter.finish();
    fleet.shutdown().await;

    report.ops = vec![
        filled.ops,
        Ops {
            name: "page",
            count: pages,
            failed: page_failed,
            secs: round3(secs),
            per_sec: per_sec(pages, secs),
            latency: Some(Latency::of(&hist)),
        },
        Ops {
            name: "paged_messages",
            count: messages,
            failed: 0,
            secs: round3(secs),
            per_sec: per_sec(messages, secs),
            latency: None,
        },
    ];
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}
