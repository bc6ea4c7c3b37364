//! Prometheus metrics. Labels are fixed vocabularies (route patterns, outcomes, dependency names): never
//! a token, an id or anything from a certificate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `issued`, `reissued` (corrected event), `renewed` (same event signed anew near or past expiry), `duplicate` (already issued), `invalid`, `failed`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// One of [`METHODS`] or `other` ([`method_label`]): never the method as sent.
    pub method: &'static str,
    /// The route pattern (`/certificates/{token}/ddcc-qr.png`), never the concrete path.
    pub route: String,
    pub status: u16,
}

/// The HTTP methods that are label values; any other method is `other`.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// The label value of an HTTP method: a method of [`METHODS`] (exactly as registered: methods are
/// case-sensitive), or `other`. A client can send any token as a method; as a label each would be a new
/// time series (5,000 requests with unique 1 kB methods made `/metrics` 93 MB).
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `vault`, `fhir`, `openhim`.
    pub dependency: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub certificates: Family<OutcomeLabels, Counter>,
    pub requests: Family<RouteLabels, Histogram>,
    pub dependency_errors: Family<DependencyLabels, Counter>,
    /// Connections shut down at once because their address had `DDCC_MAX_CONNECTIONS_PER_CLIENT` open.
    pub connections_refused: Counter,
    /// Refusals not recorded as AuditEvents of their own (over `DDCC_AUDIT_REFUSAL_RATE`): they are
    /// counted here and in the next summary AuditEvent.
    pub audit_refusals_summarised: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ddcc");
        let certificates = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "certificates",
            "Certificate requests by outcome",
            certificates.clone(),
        );
        let requests = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.002, 2.0, 14))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            requests.clone(),
        );
        let dependency_errors = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "dependency_errors",
            "Failed calls to Vault, the FHIR server and OpenHIM",
            dependency_errors.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once: their client address had DDCC_MAX_CONNECTIONS_PER_CLIENT open",
            connections_refused.clone(),
        );
        let audit_refusals_summarised = Counter::default();
        registry.register(
            "audit_refusals_summarised",
            "Refused requests over DDCC_AUDIT_REFUSAL_RATE: counted in a summary AuditEvent, not one each",
            audit_refusals_summarised.clone(),
        );
        crate::telemetry::register_metrics(&mut registry);
        Metrics {
            registry,
            certificates,
            requests,
            dependency_errors,
            connections_refused,
            audit_refusals_summarised,
        }
    }

    pub fn certificate(&self, outcome: &'static str) {
        self.certificates
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn dependency_error(&self, dependency: &'static str) {
        self.dependency_errors
            .get_or_create(&DependencyLabels { dependency })
            .inc();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_labels_only_from_a_closed_set() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("get"), "other");
        assert_eq!(method_label(&"X".repeat(1_000)), "other");
        let metrics = Metrics::new();
        for i in 0..100 {
            metrics
                .requests
                .get_or_create(&RouteLabels {
                    method: method_label(&format!("M{i}")),
                    route: "unmatched".into(),
                    status: 405,
                })
                .observe(0.001);
        }
        let text = metrics.encode();
        assert!(text.contains("method=\"other\""), "{text}");
        assert!(!text.contains("M42"));
        let series = text
            .lines()
            .filter(|l| l.starts_with("ddcc_http_request_duration_seconds_count"))
            .count();
        assert_eq!(series, 1, "one series: {text}");
    }
}
