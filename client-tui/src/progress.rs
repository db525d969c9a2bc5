//! A one-line progress bar on stderr for `chatroom upload` and `chatroom download`, drawn only
//! when stderr is a terminal (nothing at all when it is piped or redirected).
//!
//! The transfer reports into a shared slot; a task redraws from it ten times a second, so a
//! fast transfer costs no more terminal writes than a slow one.

use chatroom_protocol::now_millis;
use chatroom_protocol::transfer::{Phase, Progress, ProgressSink, RateMeter};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use unicode_width::UnicodeWidthStr;

use crate::output::{human_bytes, human_duration, human_rate};

const REDRAW: Duration = Duration::from_millis(100);

/// The bar, while a transfer runs.
#[derive(Debug)]
pub struct TerminalBar {
    task: Option<(JoinHandle<()>, CancellationToken)>,
}

impl TerminalBar {
    /// Starts a bar labelled `label` when stderr is a terminal; returns it with the sink the
    /// transfer should report to.
    pub fn start(label: &str) -> (Self, ProgressSink) {
        if !std::io::stderr().is_terminal() {
            return (Self { task: None }, ProgressSink::none());
        }
        let slot: Arc<Mutex<Option<Progress>>> = Arc::new(Mutex::new(None));
        let sink = {
            let slot = Arc::clone(&slot);
            ProgressSink::new(move |p| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(p);
                }
            })
        };
        let stop = CancellationToken::new();
        let label = label.to_string();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut meter = RateMeter::default();
                let mut phase = None;
                let mut ticker = tokio::time::interval(REDRAW);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    let Some(p) = slot.lock().ok().and_then(|s| *s) else {
                        continue;
                    };
                    if phase != Some(p.phase) {
                        phase = Some(p.phase);
                        meter = RateMeter::default();
                    }
                    meter.record(now_millis(), p.done);
                    let width = ratatui::crossterm::terminal::size()
                        .map(|(w, _)| usize::from(w))
                        .unwrap_or(80);
                    let line = bar_line(&label, &p, &meter, width);
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{line}\x1b[K");
                    let _ = err.flush();
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
        });
        (
            Self {
                task: Some((task, stop)),
            },
            sink,
        )
    }

    /// Removes the bar (before the result is printed).
    pub async fn finish(mut self) {
        if let Some((task, stop)) = self.task.take() {
            stop.cancel();
            let _ = task.await;
        }
    }
}

impl Drop for TerminalBar {
    fn drop(&mut self) {
        if let Some((task, stop)) = self.task.take() {
            stop.cancel();
            task.abort();
        }
    }
}

fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Hashing => "hashing",
        Phase::Sending => "sending",
        Phase::Receiving => "receiving",
        Phase::Verifying => "verifying",
    }
}

/// One frame of the bar, at most `width` columns:
/// `report.pdf sending [████████░░░░░░░░]  42%  1.2 MiB / 3.0 MiB  5.1 MiB/s  ETA 3s`.
pub fn bar_line(label: &str, p: &Progress, meter: &RateMeter, width: usize) -> String {
    let percent = (p.fraction() * 100.0).floor() as u32;
    let mut tail = format!(
        " {percent:>3}%  {} / {}",
        human_bytes(p.done),
        human_bytes(p.total)
    );
    if let Some(rate) = meter.bytes_per_sec() {
        tail.push_str(&format!("  {}", human_rate(rate)));
    }
    if matches!(p.phase, Phase::Sending | Phase::Receiving | Phase::Hashing)
        && let Some(eta) = meter.eta(p.total)
    {
        tail.push_str(&format!("  ETA {}", human_duration(eta)));
    }
    let head = format!("{} {} ", short(label, 24), phase_word(p.phase));
    let room = width.saturating_sub(head.width() + tail.width() + 3);
    let bar_width = room.clamp(0, 40);
    let mut line = head;
    if bar_width >= 5 {
        let filled = ((p.fraction() * bar_width as f64).round() as usize).min(bar_width);
        line.push('[');
        line.push_str(&"█".repeat(filled));
        line.push_str(&"░".repeat(bar_width - filled));
        line.push(']');
    }
    line.push_str(&tail);
    short(&line, width.saturating_sub(1))
}

/// Cuts `text` to `width` columns, marking the cut with `…`.
fn short(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fits_its_width_and_shows_rate_and_eta() {
        let mut meter = RateMeter::default();
        meter.record(0, 0);
        meter.record(1_000, 1024 * 1024);
        let p = Progress {
            phase: Phase::Sending,
            done: 1024 * 1024,
            total: 4 * 1024 * 1024,
        };
        let line = bar_line("report.pdf", &p, &meter, 100);
        assert!(line.starts_with("report.pdf sending ["), "{line}");
        assert!(
            line.contains(" 25%  1.00 MiB / 4.00 MiB  1.00 MiB/s  ETA 3s"),
            "{line}"
        );
        for width in [0, 1, 10, 30, 60, 200] {
            assert!(
                bar_line("a-long-file-name-that-goes-on.tar.gz", &p, &meter, width).width()
                    <= width.max(1)
            );
        }
    }
}
