//! Prometheus metrics, in one registry owned by the service (no global
//! state). Labels are fixed vocabularies (route templates, outcomes, reasons):
//! no user input, token or key ever becomes a label.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub logins: IntCounterVec,
    pub tokens_issued: IntCounterVec,
    pub refreshed: IntCounter,
    pub blacklisted: IntCounter,
    pub refresh_replayed: IntCounter,
    pub families_revoked: IntCounterVec,
    pub verification_failures: IntCounterVec,
    pub hash_queue_depth: IntGauge,
    pub connections_open: IntGauge,
    pub throttled: IntCounterVec,
    pub emails: IntCounterVec,
    pub legacy_password_hashes: IntGauge,
    pub throttle_redis_fallbacks: IntCounter,
    pub throttle_redis_up: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("tessera".into()), None).expect("a valid metric prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route template",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new(
                "logins_total",
                "Logins by credential kind (jwt, token) and outcome (ok, failed)",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "tokens_issued_total",
                "Tokens issued by type (access, refresh, opaque)",
            ),
            &["type"],
        )
        .expect("valid metric");
        let refreshed = IntCounter::new("tokens_refreshed_total", "Successful refreshes")
            .expect("valid metric");
        let blacklisted = IntCounter::new(
            "tokens_blacklisted_total",
            "Refresh tokens blacklisted (logout and rotation)",
        )
        .expect("valid metric");
        let refresh_replayed = IntCounter::new(
            "refresh_replayed_total",
            "Refreshes of a just-rotated token answered, within the grace interval, with the pair already issued",
        )
        .expect("valid metric");
        let families_revoked = IntCounterVec::new(
            Opts::new(
                "token_families_revoked_total",
                "Refresh-token families revoked, by cause (reuse, logout, logout_all)",
            ),
            &["cause"],
        )
        .expect("valid metric");
        let verification_failures = IntCounterVec::new(
            Opts::new(
                "token_verification_failures_total",
                "Refused tokens by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let hash_queue_depth = IntGauge::new(
            "password_hash_queue_depth",
            "Password hashes waiting for or running on the hashing pool",
        )
        .expect("valid metric");
        let connections_open = IntGauge::new(
            "connections_open",
            "Client connections being served (at most server.max_connections)",
        )
        .expect("valid metric");
        let throttled = IntCounterVec::new(
            Opts::new(
                "requests_throttled_total",
                "Requests refused with 429, by scope and key (ip, username)",
            ),
            &["scope", "key"],
        )
        .expect("valid metric");
        let emails = IntCounterVec::new(
            Opts::new(
                "emails_total",
                "Mails by kind (activation, password_reset...) and outcome (sent, failed, dropped)",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let legacy_password_hashes = IntGauge::new(
            "legacy_password_hashes",
            "Users whose password hash is still in a format imported from Django (rehashed to argon2id at their next login)",
        )
        .expect("valid metric");
        let throttle_redis_fallbacks = IntCounter::new(
            "throttle_redis_fallbacks_total",
            "Rate-limit checks this instance counted on its own because Redis (throttle.backend) could not be reached",
        )
        .expect("valid metric");
        let throttle_redis_up = IntGauge::new(
            "throttle_redis_up",
            "1 while Redis (throttle.backend = \"redis\") answers, 0 while this instance counts on its own",
        )
        .expect("valid metric");
        for m in [
            Box::new(legacy_password_hashes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(throttle_redis_fallbacks.clone()),
            Box::new(throttle_redis_up.clone()),
            Box::new(emails.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(tokens_issued.clone()),
            Box::new(refreshed.clone()),
            Box::new(blacklisted.clone()),
            Box::new(refresh_replayed.clone()),
            Box::new(families_revoked.clone()),
            Box::new(verification_failures.clone()),
            Box::new(hash_queue_depth.clone()),
            Box::new(connections_open.clone()),
            Box::new(throttled.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            logins,
            tokens_issued,
            refreshed,
            blacklisted,
            refresh_replayed,
            families_revoked,
            verification_failures,
            hash_queue_depth,
            connections_open,
            throttled,
            emails,
            legacy_password_hashes,
            throttle_redis_fallbacks,
            throttle_redis_up,
        }
    }

    /// A new access/refresh pair went out (a login or a rotation).
    pub fn pair_issued(&self) {
        for kind in ["access", "refresh"] {
            self.tokens_issued.with_label_values(&[kind]).inc();
        }
    }

    /// Counts a refused token under its reason (`TokenError::label`).
    pub fn token_refused(&self, reason: &'static str) {
        self.verification_failures
            .with_label_values(&[reason])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
