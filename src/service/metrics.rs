//! Prometheus metrics. Labels are fixed vocabularies (route patterns, outcomes, dependency names): never
//! a token, an id or anything from a certificate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `issued`, `reissued` (corrected event), `duplicate` (already issued), `invalid`, `failed`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route pattern (`/certificates/{token}/ddcc-qr.png`), never the concrete path.
    pub route: String,
    pub status: u16,
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
        crate::telemetry::register_metrics(&mut registry);
        Metrics {
            registry,
            certificates,
            requests,
            dependency_errors,
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

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
