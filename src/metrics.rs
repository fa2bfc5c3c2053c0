//! Counters the server keeps about itself, rendered in Prometheus' text
//! format. Labels are fixed words (a route template, a method, a status):
//! nothing here may ever carry a case id, an object id, a key id or any
//! other value taken from a request, so a scrape says how busy the vault
//! is and nothing about whom it serves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the flush latency buckets, in seconds: an fdatasync on
/// an SSD takes about a millisecond, on a busy disk or a network volume
/// hundreds.
const FLUSH_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; FLUSH_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, slot) in FLUSH_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, slot) in FLUSH_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", slot.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The route label of a request that matched no route: never the path
/// itself, which may name a case.
pub const UNMATCHED: &str = "unmatched";

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route template, method, status) -> requests answered.
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    /// Bytes of upload data accepted (tus PATCH bodies stored).
    upload_bytes: AtomicU64,
}

/// The methods the API answers; anything else is counted as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Count one answered request. `route` must be the template of the
    /// route that matched (axum's `MatchedPath`, such as
    /// `/v1/cases/{case}`) or [`UNMATCHED`], never the request's path.
    pub fn request(&self, route: &str, method: &axum::http::Method, status: u16) {
        let mut map = self.requests.lock().expect("metrics never panic");
        let key = (route.to_owned(), method_label(method), status);
        *map.entry(key).or_default() += 1;
    }

    /// Count accepted upload bytes.
    pub fn uploaded(&self, bytes: u64) {
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these counters and of the store's
    /// figures.
    pub fn render(&self, log_size: u64, flushes: u64, flush_latency: &Histogram) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP custos_http_requests_total Requests answered, by route template, method and status.\n\
             # TYPE custos_http_requests_total counter\n",
        );
        for ((route, method, status), n) in self.requests.lock().expect("metrics never panic").iter() {
            let _ = writeln!(
                out,
                "custos_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP custos_upload_bytes_total Upload bytes accepted.\n\
             # TYPE custos_upload_bytes_total counter\n\
             custos_upload_bytes_total {}",
            self.upload_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP custos_log_entries Entries in the custody log.\n\
             # TYPE custos_log_entries gauge\n\
             custos_log_entries {log_size}"
        );
        let _ = writeln!(
            out,
            "# HELP custos_flushes_total Durable group flushes of the store.\n\
             # TYPE custos_flushes_total counter\n\
             custos_flushes_total {flushes}"
        );
        flush_latency.render(
            &mut out,
            "custos_flush_seconds",
            "Time a group flush takes: sled's flush, its fdatasync and the high-water mark.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/v1/cases", &axum::http::Method::POST, 201);
        m.request("/v1/cases", &axum::http::Method::POST, 201);
        m.request(UNMATCHED, &axum::http::Method::from_bytes(b"BREW").unwrap(), 404);
        m.uploaded(4096);
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(9));
        let text = m.render(7, 2, &h);
        for line in [
            "custos_http_requests_total{route=\"/v1/cases\",method=\"POST\",status=\"201\"} 2",
            "custos_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1",
            "custos_upload_bytes_total 4096",
            "custos_log_entries 7",
            "custos_flush_seconds_bucket{le=\"0.0025\"} 0",
            "custos_flush_seconds_bucket{le=\"0.005\"} 1",
            "custos_flush_seconds_bucket{le=\"5\"} 1",
            "custos_flush_seconds_bucket{le=\"+Inf\"} 2",
            "custos_flush_seconds_count 2",
            "custos_flush_seconds_sum 9.003",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
