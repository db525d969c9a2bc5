//! # chatroom-bench
//!
//! The Chat-Room load generator, written on the protocol crate's async client. It drives an
//! already running server (registering its own users under a fresh name prefix, so runs can
//! repeat against one server) and reports throughput, latency percentiles (hdrhistogram), the
//! server's CPU and memory from `/proc`, and whether the server stored every acknowledged
//! message.
//!
//! The binary is a thin wrapper: parse a [`Cli`], call [`run`], print the [`Report`] as a human
//! summary (stderr) and one JSON line (stdout). Tests call [`run`] directly.
//!
//! Scenarios (see [`Scenario`]): `fanout`, `rooms`, `max`, `ingest`, `connect`, `resume`,
//! `idle`, `history`, `search`, `files`, and `irc-fanout` (the `fanout` load against an IRC server, to
//! measure the reference of issue 5 with the same tool). Every one is bounded in clients, rate and seconds (`files`: in
//! clients and file size).

#![deny(missing_docs)]

pub mod cli;
pub mod fleet;
pub mod procfs;
pub mod report;
mod scenarios;
pub mod stats;

pub use cli::{Cli, Scenario};
pub use report::Report;

use anyhow::{Context, Result, anyhow};

/// Runs one scenario against the server named in `cli` and returns what it measured.
pub async fn run(cli: &Cli) -> Result<Report> {
    cli.scenario.validate()?;
    let addr = tokio::net::lookup_host(&cli.server)
        .await
        .with_context(|| format!("resolving {}", cli.server))?
        .next()
        .ok_or_else(|| anyhow!("{} resolves to no address", cli.server))?;
    let ctx = fleet::Ctx::new(addr, cli.server_pid);
    fleet::note(format!(
        "{} against {addr}, user names {}-*",
        cli.scenario.name(),
        ctx.prefix
    ));
    // Start the tool's clock before any message is stamped.
    let _ = stats::now_micros();
    let mut report = match &cli.scenario {
        Scenario::Fanout(a) => scenarios::fanout(&ctx, a).await?,
        Scenario::Rooms(a) => scenarios::rooms(&ctx, a).await?,
        Scenario::Max(a) => scenarios::max(&ctx, a).await?,
        Scenario::Ingest(a) => scenarios::ingest(&ctx, a).await?,
        Scenario::Connect(a) => scenarios::connect(&ctx, a).await?,
        Scenario::Resume(a) => scenarios::resume(&ctx, a).await?,
        Scenario::Idle(a) => scenarios::idle(&ctx, a).await?,
        Scenario::History(a) => scenarios::history(&ctx, a).await?,
        Scenario::Search(a) => scenarios::search(&ctx, a).await?,
        Scenario::Files(a) => scenarios::files(&ctx, a).await?,
        Scenario::IrcFanout(a) => scenarios::irc_fanout(&ctx, a).await?,
    };
    report.server = cli.server.clone();
    Ok(report)
}
