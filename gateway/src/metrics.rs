//! Prometheus metrics, hand-rolled with atomics and rendered in the text exposition format.
//!
//! Invariants: label values come from closed sets (endpoint names from [`crate::api::endpoint_name`],
//! statuses, stable error codes), so the number of series is bounded whatever clients send; nothing
//! derived from request content (handles, ids, tokens) ever becomes a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use coffre_protocol::ErrorCode;

/// Upper bounds of the request-duration histogram buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// Every counter and gauge the gateway exports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    connections_open: AtomicI64,
    connections_refused: AtomicU64,
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Records one finished request: its endpoint name, status and duration.
    pub fn record_request(&self, endpoint: &'static str, status: u16, duration: Duration) {
        {
            // A poisoned lock only means another thread panicked while counting; the map is
            // still a valid map, so keep counting.
            let mut requests = self
                .requests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *requests.entry((endpoint, status)).or_insert(0) += 1;
        }
        let seconds = duration.as_secs_f64();
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.duration_sum_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one error answer by its stable code.
    pub fn record_error(&self, code: ErrorCode) {
        if let Some(index) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds request body bytes read.
    pub fn add_bytes_received(&self, bytes: u64) {
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds response body bytes sent.
    pub fn add_bytes_sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A connection was accepted (called by the server).
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed (called by the server).
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection was closed at once because its address holds its share (called by the
    /// server).
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Currently open connections.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Renders everything in the Prometheus text format (version 0.0.4). `blob_disk_bytes` is the
    /// blob store's size on disk, if it could be measured.
    pub fn render(&self, blob_disk_bytes: Option<u64>) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = self.render_into(&mut out, blob_disk_bytes);
        out
    }

    fn render_into(&self, out: &mut String, blob_disk_bytes: Option<u64>) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP coffre_requests_total Requests answered, by endpoint and status."
        )?;
        writeln!(out, "# TYPE coffre_requests_total counter")?;
        {
            let requests = self
                .requests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for ((endpoint, status), count) in requests.iter() {
                writeln!(
                    out,
                    "coffre_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                )?;
            }
        }
        writeln!(
            out,
            "# HELP coffre_request_errors_total Error answers, by stable code."
        )?;
        writeln!(out, "# TYPE coffre_request_errors_total counter")?;
        for (code, count) in ErrorCode::ALL.iter().zip(&self.errors) {
            let count = count.load(Ordering::Relaxed);
            writeln!(
                out,
                "coffre_request_errors_total{{code=\"{code}\"}} {count}"
            )?;
        }
        writeln!(
            out,
            "# HELP coffre_request_duration_seconds Time to answer a request (headers)."
        )?;
        writeln!(out, "# TYPE coffre_request_duration_seconds histogram")?;
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            let count = bucket.load(Ordering::Relaxed);
            writeln!(
                out,
                "coffre_request_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
            )?;
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        writeln!(
            out,
            "coffre_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        )?;
        let sum = self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        writeln!(out, "coffre_request_duration_seconds_sum {sum}")?;
        writeln!(out, "coffre_request_duration_seconds_count {count}")?;
        let counters = [
            (
                "coffre_bytes_received_total",
                "Request body bytes read.",
                &self.bytes_received,
            ),
            (
                "coffre_bytes_sent_total",
                "Response body bytes sent.",
                &self.bytes_sent,
            ),
            (
                "coffre_connections_refused_total",
                "Connections closed at once: their address held limits.max_connections_per_address.",
                &self.connections_refused,
            ),
        ];
        for (name, help, value) in counters {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} counter")?;
            writeln!(out, "{name} {}", value.load(Ordering::Relaxed))?;
        }
        writeln!(
            out,
            "# HELP coffre_connections_open Connections currently open."
        )?;
        writeln!(out, "# TYPE coffre_connections_open gauge")?;
        writeln!(out, "coffre_connections_open {}", self.connections_open())?;
        if let Some(bytes) = blob_disk_bytes {
            writeln!(
                out,
                "# HELP coffre_store_blob_bytes Bytes blob bodies take on disk."
            )?;
            writeln!(out, "# TYPE coffre_store_blob_bytes gauge")?;
            writeln!(out, "coffre_store_blob_bytes {bytes}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let metrics = Metrics::new();
        metrics.record_request("get_blob", 200, Duration::from_millis(3));
        metrics.record_request("get_blob", 200, Duration::from_millis(30));
        metrics.record_request("put_blob", 422, Duration::from_secs(500));
        metrics.record_error(ErrorCode::HashMismatch);
        metrics.add_bytes_received(10);
        metrics.add_bytes_sent(20);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        let text = metrics.render(Some(1234));
        assert!(text.contains("coffre_requests_total{endpoint=\"get_blob\",status=\"200\"} 2"));
        assert!(text.contains("coffre_requests_total{endpoint=\"put_blob\",status=\"422\"} 1"));
        assert!(text.contains("coffre_request_errors_total{code=\"hash_mismatch\"} 1"));
        assert!(text.contains("coffre_request_errors_total{code=\"internal\"} 0"));
        assert!(text.contains("coffre_request_duration_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("coffre_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("coffre_request_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("coffre_request_duration_seconds_bucket{le=\"120\"} 2"));
        assert!(text.contains("coffre_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("coffre_request_duration_seconds_count 3"));
        assert!(text.contains("coffre_bytes_received_total 10"));
        assert!(text.contains("coffre_bytes_sent_total 20"));
        assert!(text.contains("coffre_connections_open 1"));
        assert!(text.contains("coffre_store_blob_bytes 1234"));
    }
}
