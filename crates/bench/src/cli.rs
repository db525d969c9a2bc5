//! The command line: global options and one subcommand per scenario.
//!
//! Every scenario is bounded: in clients ([`MAX_CLIENTS`]), in rate ([`MAX_RATE`]) and in
//! seconds ([`MAX_SECS`]); clap refuses values outside the bounds and [`Scenario::validate`]
//! checks the same for callers of the library.

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// Most simultaneous client connections a scenario opens.
pub const MAX_CLIENTS: u32 = 20_000;
/// Longest measured phase, in seconds.
pub const MAX_SECS: u32 = 120;
/// Highest aggregate send rate, in messages per second.
pub const MAX_RATE: u32 = 1_000_000;
/// Most requests in flight per sender.
pub const MAX_WINDOW: u32 = 4096;
/// Most messages the `history` scenario writes before paging.
pub const MAX_HISTORY_MESSAGES: u32 = 200_000;
/// Most messages the `search` scenario writes before searching (about a year of a busy
/// office's messages; ~35 s per million to write on the reference machine).
pub const MAX_SEARCH_MESSAGES: u32 = 5_000_000;
/// Largest file the `files` scenario transfers, in MiB.
pub const MAX_FILE_MIB: u32 = 1024;
/// Most simultaneous transfers in the `files` scenario.
pub const MAX_TRANSFERS: u32 = 64;

const AFTER_HELP: &str = "\
The server must be started with its per-connection limits raised, or it throttles the benchmark
(20 messages/s per connection, 256 connections and 30 registrations per hour per address,
10000 connections in total by default):

  chatroom-server --listen 127.0.0.1:8888 --data-dir /tmp/bench-data \\
      --messages-per-second 1000000 --message-burst 1000000 \\
      --max-connections-per-ip 0 --max-connections 0 --registrations-per-ip-per-hour 0

Large scenarios also need enough file descriptors in both shells (e.g. `ulimit -n 20000`).
Every run registers fresh users (names start with a random prefix), so runs can repeat against
one server. A human summary goes to stderr; one JSON line (`{\"scenario\":...}`) to stdout.
Pass --server-pid to report the server's CPU and memory (read from /proc).";

/// Load generator for a running Chat-Room server.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatroom-bench", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The server to load, e.g. 127.0.0.1:8888.
    #[arg(long, value_name = "ADDR", env = "CHATROOM_BENCH_SERVER")]
    pub server: String,
    /// The server's process id on this machine: its CPU and memory are read from /proc/PID.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// One measurement.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// N members of one fresh room; S of them send at an aggregate R msgs/s.
    Fanout(FanoutArgs),
    /// N clients in N/K rooms of K; an aggregate R msgs/s spread over the rooms.
    Rooms(RoomsArgs),
    /// N members of one room; S senders send as fast as acks come back (a window per sender).
    Max(MaxArgs),
    /// S senders, each alone in its own room, as fast as acks come back: committed msgs/s.
    Ingest(IngestArgs),
    /// Registers N users, then logs each in again: argon2 registrations/s and logins/s.
    Connect(ConnectArgs),
    /// Opens N connections that resume a session token: resumes/s.
    Resume(ResumeArgs),
    /// Server memory before and after N idle logged-in connections (needs --server-pid).
    Idle(IdleArgs),
    /// Fills a room, then clients page through its history: pages/s and latency.
    History(HistoryArgs),
    /// Fills a room with chat-like text, then clients search it (common and rare words, two
    /// words, prefixes, phrases, absent words): searches/s and latency per kind.
    Search(SearchArgs),
    /// C clients each upload a fresh random file of M MiB, then download one: MiB/s, next to a
    /// raw loopback TCP copy of the same bytes measured in the same run.
    Files(FilesArgs),
    /// The `fanout` load against an IRC server (e.g. InspIRCd), for a like-for-like reference:
    /// N clients join one channel, S send stamped PRIVMSGs at an aggregate R lines/s. IRC
    /// acknowledges and stores nothing, so only deliveries and their latency are reported.
    IrcFanout(FanoutArgs),
}

fn clients(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_CLIENTS)
}
fn secs(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_SECS)
}
fn rate(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_RATE)
}
fn window(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_WINDOW)
}
fn hold(s: &str) -> Result<u32, String> {
    bounded(s, 0, 60)
}
fn history_messages(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_HISTORY_MESSAGES)
}
fn search_messages(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_SEARCH_MESSAGES)
}
fn page(s: &str) -> Result<u32, String> {
    bounded(s, 1, 10_000)
}

fn file_mib(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_FILE_MIB)
}
fn transfers(s: &str) -> Result<u32, String> {
    bounded(s, 1, MAX_TRANSFERS)
}

fn bounded(s: &str, min: u32, max: u32) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if v < min || v > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(v)
}

/// `fanout`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Members of the room (each one connection).
    #[arg(long, default_value_t = 500, value_parser = clients)]
    pub clients: u32,
    /// How many of the members send.
    #[arg(long, default_value_t = 50, value_parser = clients)]
    pub senders: u32,
    /// Aggregate messages per second over all senders.
    #[arg(long, default_value_t = 1000, value_parser = rate)]
    pub rate: u32,
    /// Length of the sending phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
}

/// `rooms`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RoomsArgs {
    /// Clients in total (each one connection).
    #[arg(long, default_value_t = 1000, value_parser = clients)]
    pub clients: u32,
    /// Members per room.
    #[arg(long, default_value_t = 10, value_parser = clients)]
    pub room_size: u32,
    /// How many clients send (spread round-robin over the rooms); default: every client.
    #[arg(long, value_parser = clients)]
    pub senders: Option<u32>,
    /// Aggregate messages per second over all senders.
    #[arg(long, default_value_t = 1000, value_parser = rate)]
    pub rate: u32,
    /// Length of the sending phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
}

/// `max`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct MaxArgs {
    /// Members of the room.
    #[arg(long, default_value_t = 100, value_parser = clients)]
    pub clients: u32,
    /// How many of the members send.
    #[arg(long, default_value_t = 10, value_parser = clients)]
    pub senders: u32,
    /// Length of the sending phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
    /// Most unacknowledged messages per sender.
    #[arg(long, default_value_t = 32, value_parser = window)]
    pub window: u32,
}

/// `ingest`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct IngestArgs {
    /// Senders, each in a room of its own.
    #[arg(long, default_value_t = 100, value_parser = clients)]
    pub senders: u32,
    /// Length of the sending phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
    /// Most unacknowledged messages per sender.
    #[arg(long, default_value_t = 32, value_parser = window)]
    pub window: u32,
}

/// `connect`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnectArgs {
    /// Users to register and then log in.
    #[arg(long, default_value_t = 200, value_parser = clients)]
    pub clients: u32,
    /// Registrations or logins in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clients)]
    pub concurrency: u32,
}

/// `resume`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ResumeArgs {
    /// Connections that resume a session.
    #[arg(long, default_value_t = 2000, value_parser = clients)]
    pub clients: u32,
    /// Accounts whose tokens the connections share (several devices per user), registered
    /// first; default min(clients, 50). Fewer accounts = less argon2 before the measurement.
    #[arg(long, value_parser = clients)]
    pub accounts: Option<u32>,
    /// Connects + resumes in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clients)]
    pub concurrency: u32,
}

/// `idle`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct IdleArgs {
    /// Idle logged-in connections to open.
    #[arg(long, default_value_t = 10_000, value_parser = clients)]
    pub clients: u32,
    /// Accounts whose tokens the connections share; default min(clients, 100).
    #[arg(long, value_parser = clients)]
    pub accounts: Option<u32>,
    /// Connects + resumes in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clients)]
    pub concurrency: u32,
    /// Seconds to hold the connections open before measuring.
    #[arg(long, default_value_t = 2, value_parser = hold)]
    pub hold_secs: u32,
}

/// `history`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct HistoryArgs {
    /// Clients paging at once.
    #[arg(long, default_value_t = 4, value_parser = clients)]
    pub clients: u32,
    /// Messages written to the room before paging.
    #[arg(long, default_value_t = 5000, value_parser = history_messages)]
    pub messages: u32,
    /// Messages per page.
    #[arg(long, default_value_t = 100, value_parser = page)]
    pub page: u32,
    /// Length of the paging phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
}

/// `search`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SearchArgs {
    /// Clients searching at once.
    #[arg(long, default_value_t = 4, value_parser = clients)]
    pub clients: u32,
    /// Messages written to the room before searching.
    #[arg(long, default_value_t = 100_000, value_parser = search_messages)]
    pub messages: u32,
    /// Results asked for per search (the server caps it at its history page).
    #[arg(long, default_value_t = 50, value_parser = page)]
    pub page: u32,
    /// Length of the searching phase.
    #[arg(long, default_value_t = 10, value_parser = secs)]
    pub secs: u32,
    /// Seed of the text and the queries: the same seed writes and asks the same things.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `files`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FilesArgs {
    /// Clients transferring at once (each uploads one file, then downloads one).
    #[arg(long, default_value_t = 2, value_parser = transfers)]
    pub clients: u32,
    /// Size of each file in MiB.
    #[arg(long, default_value_t = 64, value_parser = file_mib)]
    pub mib: u32,
}

fn check(what: &str, v: u32, min: u32, max: u32) -> Result<()> {
    if v < min || v > max {
        bail!("{what} must be between {min} and {max}, not {v}");
    }
    Ok(())
}

impl Scenario {
    /// The scenario's name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Fanout(_) => "fanout",
            Scenario::Rooms(_) => "rooms",
            Scenario::Max(_) => "max",
            Scenario::Ingest(_) => "ingest",
            Scenario::Connect(_) => "connect",
            Scenario::Resume(_) => "resume",
            Scenario::Idle(_) => "idle",
            Scenario::History(_) => "history",
            Scenario::Search(_) => "search",
            Scenario::Files(_) => "files",
            Scenario::IrcFanout(_) => "irc-fanout",
        }
    }

    /// Checks every bound (clap does too, but the library can be called directly).
    pub fn validate(&self) -> Result<()> {
        match self {
            Scenario::Fanout(a) | Scenario::IrcFanout(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--senders", a.senders, 1, a.clients)?;
                check("--rate", a.rate, 1, MAX_RATE)?;
                check("--secs", a.secs, 1, MAX_SECS)
            }
            Scenario::Rooms(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--room-size", a.room_size, 1, a.clients)?;
                if let Some(s) = a.senders {
                    check("--senders", s, 1, a.clients)?;
                }
                check("--rate", a.rate, 1, MAX_RATE)?;
                check("--secs", a.secs, 1, MAX_SECS)
            }
            Scenario::Max(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--senders", a.senders, 1, a.clients)?;
                check("--secs", a.secs, 1, MAX_SECS)?;
                check("--window", a.window, 1, MAX_WINDOW)
            }
            Scenario::Ingest(a) => {
                check("--senders", a.senders, 1, MAX_CLIENTS)?;
                check("--secs", a.secs, 1, MAX_SECS)?;
                check("--window", a.window, 1, MAX_WINDOW)
            }
            Scenario::Connect(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--concurrency", a.concurrency, 1, MAX_CLIENTS)
            }
            Scenario::Resume(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                if let Some(n) = a.accounts {
                    check("--accounts", n, 1, a.clients)?;
                }
                check("--concurrency", a.concurrency, 1, MAX_CLIENTS)
            }
            Scenario::Idle(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                if let Some(n) = a.accounts {
                    check("--accounts", n, 1, a.clients)?;
                }
                check("--concurrency", a.concurrency, 1, MAX_CLIENTS)?;
                check("--hold-secs", a.hold_secs, 0, 60)
            }
            Scenario::History(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--messages", a.messages, 1, MAX_HISTORY_MESSAGES)?;
                check("--page", a.page, 1, 10_000)?;
                check("--secs", a.secs, 1, MAX_SECS)
            }
            Scenario::Search(a) => {
                check("--clients", a.clients, 1, MAX_CLIENTS)?;
                check("--messages", a.messages, 1, MAX_SEARCH_MESSAGES)?;
                check("--page", a.page, 1, 10_000)?;
                check("--secs", a.secs, 1, MAX_SECS)
            }
            Scenario::Files(a) => {
                check("--clients", a.clients, 1, MAX_TRANSFERS)?;
                check("--mib", a.mib, 1, MAX_FILE_MIB)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(Cli::try_parse_from(["b", "--server", "x:1", "fanout", "--secs", "121"]).is_err());
        assert!(
            Cli::try_parse_from(["b", "--server", "x:1", "idle", "--clients", "20001"]).is_err()
        );
        let ok = Cli::try_parse_from(["b", "--server", "x:1", "max", "--window", "8"]).unwrap();
        assert!(ok.scenario.validate().is_ok());
        let bad = Scenario::Fanout(FanoutArgs {
            clients: 2,
            senders: 3,
            rate: 1,
            secs: 1,
        });
        assert!(bad.validate().is_err());
    }
}
