//! One clock for the whole tool, latency histograms, and their summaries.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Highest latency a histogram records, in microseconds (larger values are clamped to it).
const MAX_MICROS: u64 = 60_000_000;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the tool's epoch (the first call). Every sender and receiver in the
/// process reads this one monotonic clock, so send→receive latency needs no clock sync.
pub fn now_micros() -> u64 {
    micros_at(Instant::now())
}

/// `at` on the tool's clock, in microseconds (0 before the epoch).
pub fn micros_at(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

/// A latency histogram in microseconds, 3 significant figures, up to 60 s.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

/// Records a duration in microseconds (at least 1).
pub fn record(hist: &mut Histogram<u64>, micros: u64) {
    hist.saturating_record(micros.clamp(1, MAX_MICROS));
}

/// Records an elapsed [`Duration`].
pub fn record_duration(hist: &mut Histogram<u64>, d: Duration) {
    record(hist, u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
}

/// Adds `from` into `into` (both made by [`new_histogram`], so the bounds always agree).
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        // Different bounds cannot happen with new_histogram; fall back to value-by-value.
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

fn ms(micros: u64) -> f64 {
    round3(micros as f64 / 1000.0)
}

/// Rounds to 3 decimals (for readable JSON).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Latency {
    /// The summary of a histogram of microseconds.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        Latency {
            count: hist.len(),
            mean_ms: round3(hist.mean() / 1000.0),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// `count / secs`, 0 when no time passed.
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round3(count as f64 / secs)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_ms() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            record(&mut h, v * 10);
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 10.0).abs() < 0.02, "{l:?}");
        let mut total = new_histogram();
        merge(&mut total, &h);
        merge(&mut total, &h);
        assert_eq!(total.len(), 2000);
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_micros();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now_micros() > a);
    }
}
