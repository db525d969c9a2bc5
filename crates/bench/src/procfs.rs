//! CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status` (Linux).

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use std::time::Instant;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`; 100 on every mainstream Linux
/// build, and fixed for the user-space ABI whatever the kernel's internal `HZ`).
const USER_HZ: f64 = 100.0;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// This process.
    Me,
    /// Another process by id.
    Pid(u32),
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Proc::Me => "/proc/self".to_string(),
            Proc::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size since the process started, KiB.
    pub hwm_kib: u64,
}

/// Reads CPU time and memory of `proc`.
pub fn sample(proc: Proc) -> Result<Sample> {
    let dir = proc.dir();
    let stat =
        std::fs::read_to_string(format!("{dir}/stat")).with_context(|| format!("{dir}/stat"))?;
    let status = std::fs::read_to_string(format!("{dir}/status"))
        .with_context(|| format!("{dir}/status"))?;
    Ok(Sample {
        at: Instant::now(),
        cpu_ticks: parse_cpu_ticks(&stat)?,
        rss_kib: parse_status_kib(&status, "VmRSS:")?,
        hwm_kib: parse_status_kib(&status, "VmHWM:")?,
    })
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("no ')' in stat"))?;
    // After ')' come fields 3 (state), 4, …; utime is field 14 and stime field 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("stat has no field {n}"))?
            .parse::<u64>()
            .with_context(|| format!("stat field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

fn parse_status_kib(status: &str, key: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or_else(|| anyhow!("no {key} in status"))?;
    line[key.len()..]
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("empty {key}"))?
        .parse::<u64>()
        .with_context(|| key.to_string())
}

/// Jiffies of the whole machine from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy)]
struct MachineJiffies {
    /// user + nice + system + irq + softirq.
    busy: u64,
    /// Time the hypervisor ran something else while this VM wanted the CPU.
    steal: u64,
    /// Everything, idle and steal included.
    total: u64,
}

fn machine_jiffies() -> Result<MachineJiffies> {
    let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
    let line = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no cpu line in /proc/stat"))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().context("/proc/stat value"))
        .collect::<Result<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let total: u64 = values.iter().take(8).sum();
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    let (idle, steal) = (at(3) + at(4), at(7));
    Ok(MachineJiffies {
        busy: total.saturating_sub(idle + steal),
        steal,
        total,
    })
}

/// CPU and memory of a process over a measured phase.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Usage {
    /// CPU time over wall time, in percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Resident memory at the start of the phase, KiB.
    pub rss_start_kib: u64,
    /// Resident memory at the end of the phase, KiB.
    pub rss_end_kib: u64,
    /// Peak resident memory of the process so far, KiB.
    pub rss_peak_kib: u64,
}

impl Usage {
    /// The usage between two samples.
    pub fn between(start: &Sample, end: &Sample) -> Usage {
        let wall = end.at.duration_since(start.at).as_secs_f64();
        let cpu = end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / USER_HZ;
        Usage {
            cpu_percent: if wall > 0.0 {
                crate::stats::round3(cpu / wall * 100.0)
            } else {
                0.0
            },
            rss_start_kib: start.rss_kib,
            rss_end_kib: end.rss_kib,
            rss_peak_kib: end.hwm_kib,
        }
    }
}

/// Samples the server (when its pid is known) and this tool at the start of a phase.
#[derive(Debug)]
pub struct Meter {
    server: Option<(u32, Sample)>,
    me: Option<Sample>,
    machine: Option<MachineJiffies>,
}

/// What a [`Meter`] measured.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Measured {
    /// The server, when `--server-pid` was given.
    pub server: Option<Usage>,
    /// This load generator (it shares the machine with the server).
    pub bench: Option<Usage>,
    /// How busy the whole machine was (every core, every process, kernel time such as
    /// loopback softirq included; hypervisor steal excluded), in percent of all cores.
    pub machine_busy_percent: Option<f64>,
    /// CPU time the hypervisor gave to other guests while this machine wanted it (steal), in
    /// percent of all cores: noise from outside this machine.
    pub machine_steal_percent: Option<f64>,
}

impl Meter {
    /// Takes the starting samples. A pid that cannot be read is an error (a typo would
    /// otherwise silently drop the numbers).
    pub fn start(server_pid: Option<u32>) -> Result<Meter> {
        let server = match server_pid {
            Some(pid) => Some((
                pid,
                sample(Proc::Pid(pid)).with_context(|| format!("reading server pid {pid}"))?,
            )),
            None => None,
        };
        Ok(Meter {
            server,
            me: sample(Proc::Me).ok(),
            machine: machine_jiffies().ok(),
        })
    }

    /// The share of all CPU time since the start that `part` took, in percent.
    fn machine_share(&self, part: impl Fn(&MachineJiffies) -> u64) -> Option<f64> {
        let start = self.machine?;
        let end = machine_jiffies().ok()?;
        let total = end.total.checked_sub(start.total).filter(|t| *t > 0)?;
        let used = part(&end).saturating_sub(part(&start));
        Some(crate::stats::round3(used as f64 / total as f64 * 100.0))
    }

    /// Takes the ending samples.
    pub fn finish(&self) -> Measured {
        Measured {
            server: self.server.as_ref().and_then(|(pid, start)| {
                sample(Proc::Pid(*pid))
                    .ok()
                    .map(|end| Usage::between(start, &end))
            }),
            bench: self
                .me
                .as_ref()
                .and_then(|start| sample(Proc::Me).ok().map(|end| Usage::between(start, &end))),
            machine_busy_percent: self.machine_share(|m| m.busy),
            machine_steal_percent: self.machine_share(|m| m.steal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 123 456 789";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 300);
    }

    #[test]
    fn parses_status() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:").unwrap(), 1024);
        assert_eq!(parse_status_kib(status, "VmHWM:").unwrap(), 2048);
    }

    #[test]
    fn reads_machine() {
        let m = machine_jiffies().unwrap();
        assert!(m.total >= m.busy + m.steal);
    }

    #[test]
    fn reads_own_process() {
        let s = sample(Proc::Me).unwrap();
        assert!(s.rss_kib > 0);
    }
}
