//! What a scenario reports: one struct, printed as a human summary and as one JSON line.

use crate::procfs::Usage;
use crate::stats::Latency;
use serde::Serialize;
use std::fmt;

/// Everything a scenario measured. Sections a scenario does not produce are `None` (left out of
/// the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's name; the first key of the JSON line.
    pub scenario: &'static str,
    /// The scenario's options as given.
    pub params: serde_json::Value,
    /// The server address.
    pub server: String,
    /// The prefix of this run's user and room names.
    pub prefix: String,
    /// Message traffic (fanout, rooms, max, ingest, history fill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// Send → receive latency over every delivery (one clock: the tool's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_latency: Option<Latency>,
    /// Send → acknowledgement (stored) latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_latency: Option<Latency>,
    /// p99 ack latency (ms) of the messages sent in each second of the phase: shows whether a
    /// tail comes from one stall (e.g. at the start) or from steady queueing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ack_p99_ms_by_second: Vec<f64>,
    /// Whether the server stored every acknowledged message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredCheck>,
    /// Counted operations: registrations, logins, resumes, history pages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<Ops>,
    /// Server memory per idle connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleMemory>,
    /// File transfer throughput.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileThroughput>,
    /// What the `search` scenario found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchCheck>,
    /// The server's CPU and memory over the measured phase (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_usage: Option<Usage>,
    /// This tool's CPU and memory over the measured phase (it shares the machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench_usage: Option<Usage>,
    /// How busy the whole machine was over the measured phase, percent of all cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_busy_percent: Option<f64>,
    /// CPU stolen by the hypervisor over the phase, percent of all cores (outside noise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_steal_percent: Option<f64>,
    /// The first few errors seen, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Message traffic of a run.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Traffic {
    /// Connections taking part.
    pub clients: u64,
    /// Rooms the traffic went to.
    pub rooms: u64,
    /// Connections that sent.
    pub senders: u64,
    /// Length of the sending phase, seconds.
    pub send_secs: f64,
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged (stored) by the server.
    pub acked: u64,
    /// Sends that failed (error or timeout).
    pub failed: u64,
    /// Acknowledged messages per second of the sending phase.
    pub acked_per_sec: f64,
    /// Σ over rooms of acked × members (every online member, the sender's own echo included).
    pub expected_deliveries: u64,
    /// Timed messages the members received.
    pub received_deliveries: u64,
    /// received / expected (1.0 = every delivery made).
    pub delivery_ratio: f64,
    /// Seconds from the first send to the last delivery.
    pub delivery_secs: f64,
    /// received deliveries / delivery_secs.
    pub deliveries_per_sec: f64,
    /// Connections the server closed during the run (e.g. as too slow).
    pub disconnected: u64,
}

/// The stored-message check: each room's history after the run, compared with the acks.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct StoredCheck {
    /// Rooms checked.
    pub rooms: u64,
    /// Messages acknowledged in them.
    pub acked: u64,
    /// Of this run's messages, how many the rooms' history holds.
    pub stored: u64,
    /// Every room's seq advanced by exactly the number of messages found (no gaps).
    pub gapless: bool,
    /// stored == acked in every room, and gapless.
    pub ok: bool,
}

/// A counted operation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ops {
    /// What was done: "register", "login", "resume", "page", "fill".
    pub name: &'static str,
    /// How many succeeded.
    pub count: u64,
    /// How many failed.
    pub failed: u64,
    /// Wall time of the phase, seconds.
    pub secs: f64,
    /// Successes per second.
    pub per_sec: f64,
    /// Latency of one operation (when each one was timed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// File transfer throughput, all in MiB/s of file content summed over the clients.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct FileThroughput {
    /// Transfers at once.
    pub clients: u64,
    /// Size of each file, bytes.
    pub file_bytes: u64,
    /// Plain TCP over 127.0.0.1 (write, read and discard), the same bytes and parallelism.
    pub loopback_mib_per_sec: f64,
    /// Uploads from the first byte sent to the server's answer to the finish (verified,
    /// stored, posted); hashing the file first is not included.
    pub upload_mib_per_sec: f64,
    /// The client's SHA-256 of the files before uploading.
    pub hash_mib_per_sec: f64,
    /// Downloads into files, SHA-256 verified.
    pub download_mib_per_sec: f64,
    /// Files the room lists afterwards, of `clients` uploaded.
    pub stored_files: u64,
}

/// The `search` scenario's checks and how many results each kind of query brought.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SearchCheck {
    /// A word only the first message of the fill holds found it, and only it.
    pub first_found: bool,
    /// A word only the last message of the fill holds found it, and only it, in the first
    /// search after the fill (the server indexes in the background and catches up first).
    pub last_found: bool,
    /// How long that first search took, ms (the index catching up included).
    pub last_found_ms: f64,
    /// Per kind of query (the `search_*` ops), the mean number of results per search.
    pub mean_results: Vec<(&'static str, f64)>,
}

impl SearchCheck {
    /// Both the first and the last message of the fill were found.
    pub fn ok(&self) -> bool {
        self.first_found && self.last_found
    }
}

/// Server memory around a set of idle connections.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct IdleMemory {
    /// Idle logged-in connections held open.
    pub connections: u64,
    /// Server RSS before opening them, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with them open, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / connections, bytes.
    pub bytes_per_connection: f64,
}

impl Report {
    /// A report with nothing measured yet.
    pub fn new(scenario: &'static str, params: serde_json::Value, server: String) -> Report {
        Report {
            scenario,
            params,
            server,
            prefix: String::new(),
            traffic: None,
            delivery_latency: None,
            ack_latency: None,
            ack_p99_ms_by_second: Vec::new(),
            stored: None,
            ops: Vec::new(),
            idle: None,
            files: None,
            search: None,
            server_usage: None,
            bench_usage: None,
            machine_busy_percent: None,
            machine_steal_percent: None,
            errors: Vec::new(),
        }
    }

    /// Copies what a [`crate::procfs::Meter`] measured.
    pub fn set_usage(&mut self, measured: &crate::procfs::Measured) {
        self.server_usage = measured.server;
        self.bench_usage = measured.bench;
        self.machine_busy_percent = measured.machine_busy_percent;
        self.machine_steal_percent = measured.machine_steal_percent;
    }

    /// The one JSON line (no newline), starting with `{"scenario":`.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"scenario\":\"{}\",\"error\":\"cannot serialize: {e}\"}}",
                self.scenario
            )
        })
    }

    /// False when the stored-message check ran and failed, or `search` did not find the first
    /// or the last message it wrote.
    pub fn storage_ok(&self) -> bool {
        self.stored.is_none_or(|s| s.ok) && self.search.as_ref().is_none_or(SearchCheck::ok)
    }

    /// The latency named by the summary of an ops entry, if present.
    pub fn op(&self, name: &str) -> Option<&Ops> {
        self.ops.iter().find(|o| o.name == name)
    }
}

fn kib(v: u64) -> String {
    if v >= 10 * 1024 {
        format!("{:.1} MiB", v as f64 / 1024.0)
    } else {
        format!("{v} KiB")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== {} {} ==", self.scenario, self.params)?;
        if let Some(t) = &self.traffic {
            writeln!(
                f,
                "clients {}, rooms {}, senders {}, sending {:.1} s",
                t.clients, t.rooms, t.senders, t.send_secs
            )?;
            writeln!(
                f,
                "sent {}, acked {} ({:.0}/s), failed {}",
                t.sent, t.acked, t.acked_per_sec, t.failed
            )?;
            writeln!(
                f,
                "deliveries: expected {}, received {}, ratio {:.6}, {:.0}/s over {:.2} s, {} disconnected",
                t.expected_deliveries,
                t.received_deliveries,
                t.delivery_ratio,
                t.deliveries_per_sec,
                t.delivery_secs,
                t.disconnected
            )?;
        }
        if let Some(l) = &self.delivery_latency {
            writeln!(f, "delivery latency: {l}")?;
        }
        if let Some(l) = &self.ack_latency {
            writeln!(f, "ack latency:      {l}")?;
        }
        if !self.ack_p99_ms_by_second.is_empty() {
            let seconds: Vec<String> = self
                .ack_p99_ms_by_second
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect();
            writeln!(f, "ack p99 by second (ms): {}", seconds.join(" "))?;
        }
        for o in &self.ops {
            write!(
                f,
                "{}: {} ok, {} failed in {:.2} s = {:.1}/s",
                o.name, o.count, o.failed, o.secs, o.per_sec
            )?;
            if let Some(latency) = &o.latency {
                write!(f, "; {latency}")?;
            }
            writeln!(f)?;
        }
        if let Some(i) = &self.idle {
            writeln!(
                f,
                "idle: {} connections, server RSS {} -> {}, {:.0} bytes ({:.2} KiB) per connection",
                i.connections,
                kib(i.rss_before_kib),
                kib(i.rss_after_kib),
                i.bytes_per_connection,
                i.bytes_per_connection / 1024.0
            )?;
        }
        if let Some(t) = &self.files {
            writeln!(
                f,
                "files: {} x {:.1} MiB: loopback TCP {:.0} MiB/s, upload {:.0} MiB/s (hashing {:.0} MiB/s before), download {:.0} MiB/s; {} of {} files stored",
                t.clients,
                t.file_bytes as f64 / (1024.0 * 1024.0),
                t.loopback_mib_per_sec,
                t.upload_mib_per_sec,
                t.hash_mib_per_sec,
                t.download_mib_per_sec,
                t.stored_files,
                t.clients
            )?;
        }
        if let Some(s) = &self.stored {
            writeln!(
                f,
                "stored check: {} in {} rooms: {} acked, {} in history, gapless {} => {}",
                if s.ok { "OK" } else { "FAILED" },
                s.rooms,
                s.acked,
                s.stored,
                s.gapless,
                if s.ok {
                    "every acked message stored"
                } else {
                    "MISMATCH"
                }
            )?;
        }
        if let Some(s) = &self.search {
            let means: Vec<String> = s
                .mean_results
                .iter()
                .map(|(kind, mean)| format!("{kind} {mean:.1}"))
                .collect();
            writeln!(
                f,
                "search check: {}: first message found {}, last found {} ({:.1} ms, the index caught up); mean results: {}",
                if s.ok() { "OK" } else { "FAILED" },
                s.first_found,
                s.last_found,
                s.last_found_ms,
                means.join(", ")
            )?;
        }
        if let Some(u) = &self.server_usage {
            writeln!(
                f,
                "server: CPU {:.0}% of a core, RSS {} -> {} (peak {})",
                u.cpu_percent,
                kib(u.rss_start_kib),
                kib(u.rss_end_kib),
                kib(u.rss_peak_kib)
            )?;
        }
        if let Some(u) = &self.bench_usage {
            writeln!(
                f,
                "bench:  CPU {:.0}% of a core, RSS {}",
                u.cpu_percent,
                kib(u.rss_end_kib)
            )?;
        }
        if let Some(busy) = self.machine_busy_percent {
            write!(f, "machine: {busy:.0}% of all cores busy")?;
            if let Some(steal) = self.machine_steal_percent {
                write!(f, ", {steal:.1}% stolen by the hypervisor")?;
            }
            writeln!(f)?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

/// Collects the first few distinct error messages.
#[derive(Debug, Default)]
pub struct Errors(Vec<String>);

impl Errors {
    const KEEP: usize = 5;

    /// Remembers `e` if there is room and it is new.
    pub fn add(&mut self, e: impl Into<String>) {
        let e = e.into();
        if self.0.len() < Self::KEEP && !self.0.contains(&e) {
            self.0.push(e);
        }
    }

    /// Takes every error of `other`.
    pub fn extend(&mut self, other: Errors) {
        for e in other.0 {
            self.add(e);
        }
    }

    /// The errors.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_starts_with_scenario() {
        let mut r = Report::new("fanout", serde_json::json!({"clients": 3}), "x".into());
        r.traffic = Some(Traffic::default());
        let line = r.json_line();
        assert!(line.starts_with("{\"scenario\":\"fanout\""), "{line}");
        assert!(!line.contains('\n'));
        assert!(!line.contains("\"idle\""));
        let _ = r.to_string();
    }
}
