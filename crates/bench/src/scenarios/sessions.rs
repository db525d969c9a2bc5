//! Sessions: `connect` (argon2 registrations and logins), `resume` (token resumes), `idle`
//! (server memory per idle logged-in connection).

use super::traffic::REGISTER_CONCURRENCY;
use crate::cli::{ConnectArgs, IdleArgs, ResumeArgs};
use crate::fleet::{Ctx, Fleet, PASSWORD, Peer, bounded, note, register_user};
use crate::procfs::{Meter, Proc, sample};
use crate::report::{Errors, IdleMemory, Ops, Report};
use crate::stats::{Latency, new_histogram, per_sec, record_duration, round3};
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn params<T: serde::Serialize>(args: &T) -> serde_json::Value {
    serde_json::to_value(args).unwrap_or(serde_json::Value::Null)
}

/// Tallies a phase of timed operations into an [`Ops`] entry.
fn ops_of(
    name: &'static str,
    results: Vec<Result<Duration>>,
    secs: f64,
    errors: &mut Errors,
) -> Ops {
    let mut hist = new_histogram();
    let (mut ok, mut failed) = (0u64, 0u64);
    for r in results {
        match r {
            Ok(d) => {
                ok += 1;
                record_duration(&mut hist, d);
            }
            Err(e) => {
                failed += 1;
                errors.add(format!("{name}: {e:#}"));
            }
        }
    }
    Ops {
        name,
        count: ok,
        failed,
        secs: round3(secs),
        per_sec: per_sec(ok, secs),
        latency: Some(Latency::of(&hist)),
    }
}

/// Connects, runs `op` on the handle, closes; returns the time from connect to the answer.
async fn connect_and<F, Fut>(ctx: &Ctx, stop: &CancellationToken, op: F) -> Result<Duration>
where
    F: FnOnce(chatroom_protocol::client::ClientHandle) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let t0 = Instant::now();
    let peer = Peer::connect(ctx.addr, stop, None).await?;
    op(peer.handle.clone()).await?;
    let took = t0.elapsed();
    peer.finish().await;
    Ok(took)
}

/// `connect`: registers N users, then logs each in again on a new connection.
pub(crate) async fn connect(ctx: &Ctx, a: &ConnectArgs) -> Result<Report> {
    let mut report = Report::new("connect", params(a), ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let c = a.concurrency as usize;
    let stop = CancellationToken::new();
    let mut errors = Errors::default();
    let meter = Meter::start(ctx.server_pid)?;

    note(format!("registering {n} users, {c} at a time"));
    let t0 = Instant::now();
    let registered = bounded(n, c, |i| {
        let (ctx, stop, name) = (ctx.clone(), stop.clone(), ctx.user_name(i));
        async move {
            connect_and(&ctx, &stop, |h| async move {
                register_user(&h, &name).await?;
                Ok(())
            })
            .await
        }
    })
    .await;
    let register = ops_of(
        "register",
        registered,
        t0.elapsed().as_secs_f64(),
        &mut errors,
    );

    note(format!("logging {n} users in, {c} at a time"));
    let t0 = Instant::now();
    let logged_in = bounded(n, c, |i| {
        let (ctx, stop, name) = (ctx.clone(), stop.clone(), ctx.user_name(i));
        async move {
            connect_and(&ctx, &stop, |h| async move {
                h.login(&name, PASSWORD)
                    .await
                    .with_context(|| format!("logging in {name}"))?;
                Ok(())
            })
            .await
        }
    })
    .await;
    let login = ops_of("login", logged_in, t0.elapsed().as_secs_f64(), &mut errors);
    let measured = meter.finish();
    stop.cancel();

    report.ops = vec![register, login];
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}

/// Registers `accounts` users and returns their session tokens (the registering connections
/// are closed again).
async fn tokens(ctx: &Ctx, accounts: usize) -> Result<Vec<String>> {
    note(format!(
        "registering {accounts} accounts whose tokens the connections share"
    ));
    let stop = CancellationToken::new();
    let results = bounded(accounts, REGISTER_CONCURRENCY, |i| {
        let (addr, stop, name) = (ctx.addr, stop.clone(), ctx.user_name(i));
        async move {
            let peer = Peer::connect(addr, &stop, None).await?;
            let session = register_user(&peer.handle, &name).await?;
            peer.finish().await;
            Ok(session.token)
        }
    })
    .await;
    stop.cancel();
    results.into_iter().collect()
}

/// Opens `n` connections that each resume one of `tokens` (round-robin), `c` at a time.
/// Returns the fleet (connections left open), the per-resume results and the phase time.
async fn resume_many(
    ctx: &Ctx,
    tokens: Arc<Vec<String>>,
    n: usize,
    c: usize,
) -> (Fleet, Vec<Result<Duration>>, f64) {
    let mut fleet = Fleet::new();
    let stop = fleet.stop_token().clone();
    let t0 = Instant::now();
    let results = bounded(n, c, |i| {
        let (addr, stop, tokens) = (ctx.addr, stop.clone(), Arc::clone(&tokens));
        async move {
            let t0 = Instant::now();
            let mut peer = Peer::connect(addr, &stop, None).await?;
            let token = &tokens[i % tokens.len()];
            let session = peer.handle.resume(token).await.context("resuming")?;
            peer.name = session.user.username;
            Ok((peer, t0.elapsed()))
        }
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let mut timings = Vec::with_capacity(n);
    for r in results {
        match r {
            Ok((peer, took)) => {
                fleet.peers.push(peer);
                timings.push(Ok(took));
            }
            Err(e) => timings.push(Err(e)),
        }
    }
    (fleet, timings, secs)
}

/// `resume`: N connections resume session tokens (no password hashing).
pub(crate) async fn resume(ctx: &Ctx, a: &ResumeArgs) -> Result<Report> {
    let mut report = Report::new("resume", params(a), ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let accounts = a.accounts.unwrap_or(a.clients.min(50)) as usize;
    let tokens = Arc::new(tokens(ctx, accounts).await?);
    let mut errors = Errors::default();

    note(format!(
        "{n} connections resume a session, {} at a time",
        a.concurrency
    ));
    let meter = Meter::start(ctx.server_pid)?;
    let (fleet, timings, secs) = resume_many(ctx, tokens, n, a.concurrency as usize).await;
    let measured = meter.finish();
    report.ops = vec![ops_of("resume", timings, secs, &mut errors)];
    fleet.shutdown().await;

    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}

/// `idle`: server RSS before and after N idle logged-in connections.
pub(crate) async fn idle(ctx: &Ctx, a: &IdleArgs) -> Result<Report> {
    let Some(pid) = ctx.server_pid else {
        bail!("idle needs --server-pid to read the server's memory");
    };
    let mut report = Report::new("idle", params(a), ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let accounts = a.accounts.unwrap_or(a.clients.min(100)) as usize;
    let tokens = Arc::new(tokens(ctx, accounts).await?);
    let mut errors = Errors::default();

    // Let the registrations' connections close and presence settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = sample(Proc::Pid(pid)).with_context(|| format!("reading server pid {pid}"))?;
    note(format!(
        "server RSS {} KiB; opening {n} idle connections",
        before.rss_kib
    ));
    let meter = Meter::start(ctx.server_pid)?;
    let (fleet, timings, secs) = resume_many(ctx, tokens, n, a.concurrency as usize).await;
    let resumed = ops_of("resume", timings, secs, &mut errors);
    note(format!(
        "{} connections open; holding them {} s",
        resumed.count, a.hold_secs
    ));
    tokio::time::sleep(Duration::from_secs(u64::from(a.hold_secs))).await;
    let after = sample(Proc::Pid(pid)).with_context(|| format!("reading server pid {pid}"))?;
    let measured = meter.finish();
    let open = (fleet.peers.len() - fleet.disconnected()) as u64;
    fleet.shutdown().await;

    let grown = after.rss_kib.saturating_sub(before.rss_kib) * 1024;
    report.idle = Some(IdleMemory {
        connections: open,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        bytes_per_connection: if open > 0 {
            round3(grown as f64 / open as f64)
        } else {
            0.0
        },
    });
    report.ops = vec![resumed];
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}
