//! `irc-fanout`: the `fanout` load against an IRC server, so issue 5's reference (InspIRCd) can
//! be measured by this same tool, on the same machine, in the same hour as Chat-Room.
//!
//! Plain IRC over TCP: each client registers (`NICK`/`USER`, waits for `001`), joins one
//! channel (waits for `366`), and the senders send stamped `PRIVMSG` lines on the same timer
//! as `fanout`. Every reader times the stamped lines it receives exactly as a Chat-Room reader
//! does (one clock reading per socket read, the same batched histogram). IRC acknowledges and
//! stores nothing, so the report has no acks and no stored check, and a sender does not get
//! its own line back: expected deliveries are sent × (members − 1).

use crate::cli::FanoutArgs;
use crate::fleet::{Ctx, RecvCounters, Timing, bounded, note, parse_stamp, stamped_text};
use crate::procfs::Meter;
use crate::report::{Errors, Report, Traffic};
use crate::scenarios::traffic::{SETTLE, SETUP_CONCURRENCY, await_deliveries, params};
use crate::stats::{Latency, new_histogram, now_micros, per_sec, round3};
use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How long registering or joining may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest line the tool accepts (IRC allows 512 bytes; servers with tags send more).
const MAX_LINE: usize = 8192;
/// Bytes read per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// A shared write half: the sender writes `PRIVMSG`s, the reader answers `PING`s.
type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// One registered IRC connection.
struct IrcPeer {
    writer: Writer,
    counters: Arc<RecvCounters>,
    reader: JoinHandle<()>,
}

/// The parts of one IRC line this tool looks at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The command or numeric (`PRIVMSG`, `001`, `PING`).
    pub command: &'a str,
    /// The middle parameters (before the trailing one).
    pub params: Vec<&'a str>,
    /// The trailing parameter (after ` :`), if any.
    pub trailing: Option<&'a str>,
}

/// Splits `raw` (without its line ending) into command and parameters; skips message tags and
/// the prefix. None for an empty line.
pub(crate) fn parse_line(raw: &str) -> Option<Line<'_>> {
    let mut rest = raw;
    if rest.starts_with('@') {
        rest = rest.split_once(' ')?.1;
    }
    if rest.starts_with(':') {
        rest = rest.split_once(' ')?.1;
    }
    let (head, trailing) = match rest.split_once(" :") {
        Some((head, trailing)) => (head, Some(trailing)),
        None => (rest, None),
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let command = words.next()?;
    Some(Line {
        command,
        params: words.collect(),
        trailing,
    })
}

/// The send time in a stamped `PRIVMSG` line, found without allocating: this runs for every
/// delivery, and the tool should cost the machine as little here as in `fanout`.
fn privmsg_stamp(line: &[u8]) -> Option<u64> {
    const PRIVMSG: &[u8] = b" PRIVMSG ";
    let at = line.windows(PRIVMSG.len()).position(|w| w == PRIVMSG)?;
    let rest = &line[at + PRIVMSG.len()..];
    let colon = rest.windows(2).position(|w| w == b" :")?;
    parse_stamp(std::str::from_utf8(&rest[colon + 2..]).ok()?)
}

/// Complete lines at the front of `buf`: calls `each` on every one and removes them. Fails on a
/// line longer than [`MAX_LINE`].
fn take_lines(buf: &mut Vec<u8>, mut each: impl FnMut(&[u8])) -> Result<()> {
    let mut start = 0;
    while let Some(end) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + end];
        each(line.strip_suffix(b"\r").unwrap_or(line));
        start += end + 1;
    }
    buf.drain(..start);
    if buf.len() > MAX_LINE {
        bail!("a line longer than {MAX_LINE} bytes");
    }
    Ok(())
}

/// Reads lines from `reader` until `done` says a line ends the wait; answers `PING`s and fails
/// on `ERROR` or on a numeric in `refusals`. What was read after that line stays in `buf`.
async fn read_until(
    reader: &mut OwnedReadHalf,
    writer: &Writer,
    buf: &mut Vec<u8>,
    refusals: &[&str],
    mut done: impl FnMut(&Line<'_>) -> bool,
) -> Result<()> {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let mut found = false;
        let mut pongs = Vec::new();
        let mut failure = None;
        // Lines are handled one at a time so that what follows the awaited one stays buffered.
        while !found && failure.is_none() {
            let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                break;
            };
            let raw: Vec<u8> = buf.drain(..=end).collect();
            let raw = String::from_utf8_lossy(&raw);
            let raw = raw.trim_end_matches(['\r', '\n']);
            let Some(line) = parse_line(raw) else {
                continue;
            };
            if line.command == "PING" {
                pongs.push(format!("PONG :{}\r\n", line.trailing.unwrap_or("")));
            } else if line.command == "ERROR" || refusals.contains(&line.command) {
                failure = Some(raw.to_string());
            } else if done(&line) {
                found = true;
            }
        }
        for pong in pongs {
            writer.lock().await.write_all(pong.as_bytes()).await?;
        }
        if let Some(raw) = failure {
            bail!("the server refused: {raw}");
        }
        if found {
            return Ok(());
        }
        if buf.len() > MAX_LINE {
            bail!("a line longer than {MAX_LINE} bytes");
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connects, registers as `nick` and joins `channel`; then starts the reader that times every
/// stamped line.
async fn connect(
    addr: SocketAddr,
    nick: String,
    channel: String,
    stop: CancellationToken,
    latencies: Arc<Mutex<Histogram<u64>>>,
) -> Result<IrcPeer> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut reader, writer) = stream.into_split();
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(writer));
    let mut buf = Vec::new();
    let setup = async {
        let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
        writer.lock().await.write_all(hello.as_bytes()).await?;
        // 432/433: a bad or taken nick; 465: banned.
        read_until(
            &mut reader,
            &writer,
            &mut buf,
            &["432", "433", "465"],
            |l| l.command == "001",
        )
        .await
        .with_context(|| format!("registering {nick}"))?;
        let join = format!("JOIN {channel}\r\n");
        writer.lock().await.write_all(join.as_bytes()).await?;
        // 403/405/471/473/474/475: the join was refused.
        read_until(
            &mut reader,
            &writer,
            &mut buf,
            &["403", "405", "471", "473", "474", "475"],
            |l| l.command == "366" && l.params.get(1) == Some(&channel.as_str()),
        )
        .await
        .with_context(|| format!("{nick} joining {channel}"))
    };
    tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .map_err(|_| anyhow!("registering and joining took longer than {SETUP_TIMEOUT:?}"))??;
    let counters = Arc::new(RecvCounters::default());
    let timing = Timing::new(Some(&latencies));
    let reader = tokio::spawn(read_timed(
        reader,
        Arc::clone(&writer),
        buf,
        stop,
        Arc::clone(&counters),
        timing,
    ));
    Ok(IrcPeer {
        writer,
        counters,
        reader,
    })
}

/// Reads until `stop` or the end of the connection, timing every stamped `PRIVMSG`.
async fn read_timed(
    mut reader: OwnedReadHalf,
    writer: Writer,
    mut buf: Vec<u8>,
    stop: CancellationToken,
    counters: Arc<RecvCounters>,
    mut timing: Timing,
) {
    let mut chunk = vec![0u8; READ_CHUNK];
    // Lines already buffered during setup arrived before the clock started: not timed.
    let mut read_at = None;
    loop {
        let mut pongs = Vec::new();
        let taken = take_lines(&mut buf, |raw| {
            if let Some(sent) = privmsg_stamp(raw) {
                if let Some(at) = read_at {
                    let now = timing.micros_at(at);
                    timing.record(now.saturating_sub(sent));
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    counters.last_micros.store(now, Ordering::Relaxed);
                }
                return;
            }
            let raw = String::from_utf8_lossy(raw);
            if let Some(line) = parse_line(&raw)
                && line.command == "PING"
            {
                pongs.push(format!("PONG :{}\r\n", line.trailing.unwrap_or("")));
            }
        });
        if taken.is_err() {
            break;
        }
        for pong in pongs {
            if writer
                .lock()
                .await
                .write_all(pong.as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        let n = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = reader.read(&mut chunk) => n,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                read_at = Some(std::time::Instant::now());
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    timing.flush();
}

/// One sender: a stamped line to `channel` every `period` until `deadline`. Returns how many
/// lines it wrote and the first write error, if any.
async fn send_paced(
    writer: Writer,
    channel: String,
    sender: usize,
    period: Duration,
    first_tick: Instant,
    deadline: Instant,
) -> (u64, Option<String>) {
    let mut ticker = tokio::time::interval_at(first_tick, period);
    // Catch up after a late tick, as `fanout` does, so the aggregate rate is the one asked for.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if Instant::now() >= deadline {
            break;
        }
        let line = format!(
            "PRIVMSG {channel} :{}\r\n",
            stamped_text(sender, sent, now_micros())
        );
        if let Err(e) = writer.lock().await.write_all(line.as_bytes()).await {
            return (sent, Some(format!("send: {e}")));
        }
        sent += 1;
    }
    (sent, None)
}

/// `irc-fanout`: N members of one channel, S of them sending at an aggregate R lines/s.
pub(crate) async fn irc_fanout(ctx: &Ctx, a: &FanoutArgs) -> Result<Report> {
    let mut report = Report::new("irc-fanout", params(a), ctx.addr.to_string());
    let n = a.clients as usize;
    let channel = format!("#{}", ctx.room_name("irc"));
    let stop = CancellationToken::new();
    let latencies = Arc::new(Mutex::new(new_histogram()));
    note(format!("connecting {n} IRC clients to {channel}"));
    let connected = bounded(n, SETUP_CONCURRENCY, |i| {
        connect(
            ctx.addr,
            ctx.user_name(i),
            channel.clone(),
            stop.clone(),
            Arc::clone(&latencies),
        )
    })
    .await;
    let mut peers = Vec::with_capacity(n);
    for c in connected {
        peers.push(c?);
    }
    tokio::time::sleep(SETTLE).await;
    let received = |peers: &[IrcPeer]| -> u64 {
        peers
            .iter()
            .map(|p| p.counters.received.load(Ordering::Relaxed))
            .sum()
    };

    note(format!(
        "sending for {} s: {} senders at {} lines/s in all",
        a.secs, a.senders, a.rate
    ));
    let meter = Meter::start(ctx.server_pid)?;
    let start = Instant::now();
    let start_micros = now_micros();
    let deadline = start + Duration::from_secs(u64::from(a.secs));
    let period = Duration::from_secs_f64(f64::from(a.senders) / f64::from(a.rate));
    let mut tasks = JoinSet::new();
    for (i, peer) in peers.iter().take(a.senders as usize).enumerate() {
        // Spread the senders' ticks over one period.
        let offset = period.mul_f64(i as f64 / f64::from(a.senders));
        tasks.spawn(send_paced(
            Arc::clone(&peer.writer),
            channel.clone(),
            i,
            period,
            start + offset,
            deadline,
        ));
    }
    let mut sent = 0u64;
    let mut errors = Errors::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((count, error)) => {
                sent += count;
                if let Some(e) = error {
                    errors.add(e);
                }
            }
            Err(e) => errors.add(format!("sender task: {e}")),
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    let expected = sent * (n as u64 - 1);
    await_deliveries(expected, || received(&peers)).await;
    let measured = meter.finish();
    let got = received(&peers);
    let last = peers
        .iter()
        .map(|p| p.counters.last_micros.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let delivery_secs = if last > start_micros {
        (last - start_micros) as f64 / 1e6
    } else {
        send_secs
    };
    let disconnected = peers.iter().filter(|p| p.reader.is_finished()).count() as u64;

    stop.cancel();
    for peer in peers {
        let _ = peer.reader.await;
    }
    let deliveries = match latencies.lock() {
        Ok(mut all) => std::mem::replace(&mut *all, new_histogram()),
        Err(_) => new_histogram(),
    };
    report.prefix = ctx.prefix.clone();
    report.traffic = Some(Traffic {
        clients: n as u64,
        rooms: 1,
        senders: u64::from(a.senders),
        send_secs: round3(send_secs),
        sent,
        acked: 0,
        failed: 0,
        acked_per_sec: 0.0,
        expected_deliveries: expected,
        received_deliveries: got,
        delivery_ratio: if expected > 0 {
            got as f64 / expected as f64
        } else {
            0.0
        },
        delivery_secs: round3(delivery_secs),
        deliveries_per_sec: per_sec(got, delivery_secs),
        disconnected,
    });
    report.delivery_latency = Some(Latency::of(&deliveries));
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_into_command_and_parameters() {
        let l = parse_line(":a!a@h PRIVMSG #c :b:1:2:345").unwrap();
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params, vec!["#c"]);
        assert_eq!(l.trailing, Some("b:1:2:345"));
        let l = parse_line("@time=x :srv 366 me #c :End of /NAMES list.").unwrap();
        assert_eq!((l.command, l.params), ("366", vec!["me", "#c"]));
        let l = parse_line("PING :irc.local").unwrap();
        assert_eq!((l.command, l.trailing), ("PING", Some("irc.local")));
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line(":prefix-only"), None);
    }

    #[test]
    fn stamps_are_found_in_privmsg_lines_only() {
        assert_eq!(privmsg_stamp(b":a!a@h PRIVMSG #c :b:1:2:345"), Some(345));
        assert_eq!(privmsg_stamp(b":a!a@h NOTICE #c :b:1:2:345"), None);
        assert_eq!(privmsg_stamp(b":a!a@h PRIVMSG #c :hello"), None);
        assert_eq!(privmsg_stamp(b"PING :b:1:2:345"), None);
    }

    #[test]
    fn take_lines_keeps_a_partial_line_and_refuses_an_endless_one() {
        let mut buf = b"one\r\ntwo\nthr".to_vec();
        let mut seen = Vec::new();
        take_lines(&mut buf, |l| {
            seen.push(String::from_utf8_lossy(l).into_owned())
        })
        .unwrap();
        assert_eq!(seen, ["one", "two"]);
        assert_eq!(buf, b"thr");
        let mut long = vec![b'x'; MAX_LINE + 1];
        assert!(take_lines(&mut long, |_| {}).is_err());
    }
}
