//! Counters the server keeps about itself, in the Prometheus/OpenMetrics
//! text format (the `prometheus-client` crate writes it). Labels are fixed
//! words: a route template, a method, a status. Their types make that a
//! compile-time rule: a [`Route`] is made only from the template of the
//! route that matched (never from the request's path, which may name a
//! case), the method is one of a fixed set of words, the status a number.
//! So a scrape says how busy the vault is and nothing about whom it serves.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Upper bounds of the flush latency buckets, in seconds: an fdatasync on
/// an SSD takes about a millisecond, on a busy disk or a network volume
/// hundreds.
const FLUSH_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram with fixed buckets (the store's flush latency).
#[derive(Debug, Clone)]
pub struct Histogram(prometheus_client::metrics::histogram::Histogram);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(prometheus_client::metrics::histogram::Histogram::new(FLUSH_BUCKETS))
    }
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }
}

/// The route label of a request that matched no route: never the path
/// itself, which may name a case.
pub const UNMATCHED: &str = "unmatched";

/// A route label: the template of the route that matched (such as
/// `/v1/cases/{case}`), or [`UNMATCHED`]. There is no way to make one from
/// a request's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route(String);

impl Route {
    /// The template axum matched the request to.
    pub fn matched(path: &axum::extract::MatchedPath) -> Self {
        Route(path.as_str().to_owned())
    }

    /// A request that matched no route.
    pub fn unmatched() -> Self {
        Route(UNMATCHED.to_owned())
    }

    /// The template, for comparisons.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_str(), encoder)
    }
}

/// The labels of an answered request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

/// The labels of a spent proof-of-work stamp: its kind, `v1` or `v2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StampLabels {
    kind: &'static str,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by route template, method and status.
    requests: Family<RequestLabels, Counter>,
    /// Stamps accepted, by kind: how many clients pay with the page's
    /// native PBKDF2 tries (v2) and how many with SHA-256 (v1).
    stamps: Family<StampLabels, Counter>,
    /// Bytes of upload data accepted (tus PATCH bodies stored).
    upload_bytes: Counter,
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
    /// Count one answered request.
    pub fn request(&self, route: Route, method: &axum::http::Method, status: u16) {
        let labels = RequestLabels {
            route,
            method: method_label(method),
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Count one accepted stamp of kind `v2` (when true) or `v1`.
    pub fn stamp(&self, v2: bool) {
        let kind = if v2 { "v2" } else { "v1" };
        self.stamps.get_or_create(&StampLabels { kind }).inc();
    }

    /// Count accepted upload bytes.
    pub fn uploaded(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    /// The text exposition of these counters and of the store's figures.
    pub fn render(&self, log_size: u64, flushes: u64, flush_latency: &Histogram, chunk_storage_up: bool) -> String {
        let mut registry = Registry::with_prefix("custos");
        registry.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            self.requests.clone(),
        );
        registry.register("upload_bytes", "Upload bytes accepted", self.upload_bytes.clone());
        registry.register(
            "stamps",
            "Proof-of-work stamps accepted, by kind (v1: SHA-256 tries, v2: PBKDF2 tries)",
            self.stamps.clone(),
        );
        registry.register(
            "log_entries",
            "Entries in the custody log",
            ConstGauge::new(i64::try_from(log_size).unwrap_or(i64::MAX)),
        );
        registry.register(
            "flushes",
            "Durable group flushes of the store",
            ConstCounter::new(flushes),
        );
        registry.register(
            "flush_seconds",
            "Time a group flush takes: sled's flush, its fdatasync and the high-water mark",
            flush_latency.0.clone(),
        );
        registry.register(
            "chunk_storage_up",
            "1 if the chunk store (disk or S3 bucket) answered the last request made of it, else 0",
            ConstGauge::new(i64::from(chunk_storage_up)),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request(Route("/v1/cases".into()), &axum::http::Method::POST, 201);
        m.request(Route("/v1/cases".into()), &axum::http::Method::POST, 201);
        m.request(
            Route::unmatched(),
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            404,
        );
        m.uploaded(4096);
        m.stamp(true);
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(9));
        let text = m.render(7, 2, &h, false);
        for line in [
            "custos_http_requests_total{route=\"/v1/cases\",method=\"POST\",status=\"201\"} 2",
            "custos_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1",
            "custos_upload_bytes_total 4096",
            "custos_stamps_total{kind=\"v2\"} 1",
            "custos_log_entries 7",
            "custos_flushes_total 2",
            "custos_flush_seconds_bucket{le=\"0.0025\"} 0",
            "custos_flush_seconds_bucket{le=\"0.005\"} 1",
            "custos_flush_seconds_bucket{le=\"5.0\"} 1",
            "custos_flush_seconds_bucket{le=\"+Inf\"} 2",
            "custos_flush_seconds_count 2",
            "custos_flush_seconds_sum 9.003",
            "custos_chunk_storage_up 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
