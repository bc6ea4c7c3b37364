//! Keeping personal data out of OpenHIM's transaction log.
//!
//! The channel this mediator installs sets `requestBody: false` and `responseBody: false`, so OpenHIM's message
//! store keeps neither the submitted QuestionnaireResponse nor the certificate in the transaction's `request`
//! and `response` (openhim-core `src/middleware/messageStore.js`, `storeTransaction` / `storeResponse`). That is
//! not enough: since core 4.0.0 (OHM-386) the router also records the call to the channel's primary route as an
//! orchestration with the request body and the route's raw answer (`src/middleware/router.js`, `sendRequest` →
//! `buildOrchestration`: `request.body = ctx.body`, `response.body = response.body`), whatever the channel's
//! flags, and the message store saves it next to ours. For this mediator the first is the QuestionnaireResponse
//! and the second the `+openhim` envelope holding the whole certificate. The transaction's request headers also
//! keep the client's `Authorization` header (its Basic password).
//!
//! So after answering a request that OpenHIM routed (it carries `X-OpenHIM-TransactionID`), the mediator
//! rewrites that transaction through the API, as OpenHIM's own mediators may (`PUT /transactions/:id`, an
//! administrator's right in 4.x to 8.x): every stored body becomes `""` and `Authorization` headers go; the
//! metadata (who, when, which channel, statuses, orchestration names and timings) stays. OpenHIM writes the
//! response after the mediator has answered, so the task waits until the transaction is no longer
//! `Processing`, retrying for about a minute. A transaction that cannot be cleaned is counted as an `openhim`
//! dependency error, and said at WARN when cleaning starts failing (not once per transaction). The queue is
//! bounded: past it, ids are dropped (and said so), never blocking a request. (OpenHIM 8.x also emits its
//! visualiser events again for the rewritten orchestrations.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, Semaphore};

use super::OpenHimClient;
use crate::service::metrics::Metrics;

/// Transactions waiting to be cleaned.
const QUEUE: usize = 1024;
/// Transactions cleaned at the same time.
const PARALLEL: usize = 4;
/// How often a transaction still `Processing` is looked at again (first wait: 500 ms).
const ATTEMPTS: u32 = 30;

/// Hands OpenHIM transaction ids to the background task that removes their bodies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Scrubber {
    queue: mpsc::Sender<String>,
    dropped_warned: Arc<AtomicBool>,
}

impl Scrubber {
    /// Queues the transaction `id` (as sent in `X-OpenHIM-TransactionID`); anything but an OpenHIM id (24 hex
    /// digits, a MongoDB ObjectId) is ignored, so a caller cannot steer the API call elsewhere.
    pub fn submit(&self, id: &str) {
        if !is_object_id(id) {
            return;
        }
        if self.queue.try_send(id.to_owned()).is_err()
            && !self.dropped_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "the queue of OpenHIM transactions to clean is full: some transactions keep their bodies"
            );
        }
    }
}

/// Whether `id` looks like an OpenHIM transaction id.
pub fn is_object_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Starts the cleaning task on the current runtime.
pub fn spawn(client: Arc<OpenHimClient>, metrics: Arc<Metrics>) -> Scrubber {
    let (queue, mut received) = mpsc::channel::<String>(QUEUE);
    // Said at WARN when cleaning starts failing (e.g. a user who may not update transactions), then at debug
    // until a transaction is cleaned again: every failure is counted, the log is not flooded.
    let failing = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(PARALLEL));
        while let Some(id) = received.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let client = client.clone();
            let metrics = metrics.clone();
            let failing = failing.clone();
            tokio::spawn(async move {
                match clean(&client, &id).await {
                    Ok(()) => {
                        if failing.swap(false, Ordering::Relaxed) {
                            tracing::info!(
                                "OpenHIM transactions are cleaned of their bodies again"
                            );
                        }
                    }
                    Err(e) => {
                        metrics.dependency_error("openhim");
                        if failing.swap(true, Ordering::Relaxed) {
                            tracing::debug!(error = %e, "an OpenHIM transaction could not be cleaned of its bodies");
                        } else {
                            tracing::warn!(
                                error = %e,
                                "an OpenHIM transaction could not be cleaned of its bodies: OpenHIM keeps personal \
                                 data until this is fixed (said once until it works again; each failure is counted \
                                 in ddcc_dependency_errors_total{{dependency=\"openhim\"}})"
                            );
                        }
                    }
                }
                drop(slot);
            });
        }
    });
    Scrubber {
        queue,
        dropped_warned: Arc::new(AtomicBool::new(false)),
    }
}

/// Waits until OpenHIM has stored the transaction's response, then removes its bodies.
async fn clean(client: &OpenHimClient, id: &str) -> crate::Result<()> {
    let path = format!("/transactions/{id}");
    let mut wait = Duration::from_millis(500);
    for _ in 0..ATTEMPTS {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(4));
        // `full`: with the bodies (an administrator's default in 8.x, said explicitly).
        let (status, text) = client
            .send_as(
                reqwest::Method::GET,
                &format!("{path}?filterRepresentation=full"),
                "/transactions/<id>",
                None,
            )
            .await?;
        if status != 200 {
            return Err(client.refused("GET /transactions/<id>", status, ""));
        }
        let transaction: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !stored(&transaction) {
            continue;
        }
        let Some(update) = scrubbed(&transaction) else {
            return Ok(());
        };
        let (status, _) = client
            .send_as(
                reqwest::Method::PUT,
                &path,
                "/transactions/<id>",
                Some(&update),
            )
            .await?;
        if status != 200 {
            return Err(client.refused("PUT /transactions/<id>", status, ""));
        }
        tracing::debug!("OpenHIM transaction cleaned of its bodies");
        return Ok(());
    }
    Err(crate::Error::Unavailable {
        service: "OpenHIM",
        reason: "the transaction was still processing after a minute".into(),
    })
}

/// Whether OpenHIM is done with the transaction (its response and orchestrations are stored).
fn stored(transaction: &Value) -> bool {
    transaction.is_object()
        && transaction.get("response").is_some_and(Value::is_object)
        && transaction.get("status").and_then(Value::as_str) != Some("Processing")
}

/// The `PUT /transactions/:id` body that leaves `transaction` without bodies and `Authorization` headers:
/// the changed top-level fields only, or `None` when there is nothing to remove.
pub fn scrubbed(transaction: &Value) -> Option<Value> {
    let mut update = Map::new();
    for field in ["request", "response"] {
        if let Some(mut part) = transaction.get(field).cloned() {
            if clear(&mut part) {
                update.insert(field.to_owned(), part);
            }
        }
    }
    for field in ["orchestrations", "routes"] {
        if let Some(mut list) = transaction.get(field).cloned() {
            if clear_all(&mut list) {
                update.insert(field.to_owned(), list);
            }
        }
    }
    (!update.is_empty()).then_some(Value::Object(update))
}

/// Clears every orchestration or route in `list` (and a route's own orchestrations).
fn clear_all(list: &mut Value) -> bool {
    let mut changed = false;
    for item in list.as_array_mut().into_iter().flatten() {
        for part in ["request", "response"] {
            if let Some(part) = item.get_mut(part) {
                changed |= clear(part);
            }
        }
        if let Some(nested) = item.get_mut("orchestrations") {
            changed |= clear_all(nested);
        }
    }
    changed
}

/// Empties a request's or response's `body` and drops its `Authorization` header; true when it changed.
fn clear(part: &mut Value) -> bool {
    let Some(part) = part.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    if part
        .get("body")
        .is_some_and(|b| !b.is_null() && b.as_str() != Some(""))
    {
        part.insert("body".into(), Value::String(String::new()));
        changed = true;
    }
    if let Some(headers) = part.get_mut("headers").and_then(Value::as_object_mut) {
        let before = headers.len();
        headers.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
        changed |= headers.len() != before;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_and_credentials_go_metadata_stays() {
        // The shape openhim-core 4.0.5 stored for a routed request (the request body as BSON Binary).
        let transaction = json!({
            "_id": "6b11e089bc277932b722fc9f",
            "status": "Successful",
            "request": {"path": "/ddcc/submitHealthEvent", "body": "", "timestamp": "2026-12-03T21:35:05.636Z",
                        "headers": {"authorization": "Basic YzE6cHc=", "content-type": "application/fhir+json"}},
            "response": {"status": 200, "body": "", "timestamp": "2026-12-03T21:35:05.700Z"},
            "orchestrations": [
                {"name": "Vault transit sign", "request": {"path": "/v1/transit/sign/k", "timestamp": "t"},
                 "response": {"status": 200, "timestamp": "t"}},
                {"name": "DDCC Mediator",
                 "request": {"body": {"position": 3, "buffer": {"0": 123, "1": 34, "2": 125}, "sub_type": 0},
                             "headers": {"X-OpenHIM-ClientID": "facility-a"}, "timestamp": "t"},
                 "response": {"status": 200, "body": "{\"response\": {\"body\": \"the certificate\"}}",
                              "timestamp": "t"}},
            ],
            "routes": [],
        });
        let update = scrubbed(&transaction).expect("something to clean");
        assert_eq!(update["request"]["body"], "");
        assert!(update["request"]["headers"].get("authorization").is_none());
        assert_eq!(
            update["request"]["headers"]["content-type"],
            "application/fhir+json"
        );
        assert_eq!(update["request"]["timestamp"], "2026-12-03T21:35:05.636Z");
        assert!(
            update.get("response").is_none(),
            "unchanged parts are not sent"
        );
        assert!(update.get("routes").is_none());
        let orchestrations = update["orchestrations"].as_array().unwrap();
        assert_eq!(orchestrations.len(), 2);
        assert_eq!(orchestrations[0]["name"], "Vault transit sign");
        assert_eq!(orchestrations[1]["request"]["body"], "");
        assert_eq!(orchestrations[1]["response"]["body"], "");
        assert_eq!(orchestrations[1]["response"]["status"], 200);
        assert!(!update.to_string().contains("certificate"));

        let mut clean = transaction.clone();
        for (k, v) in update.as_object().unwrap() {
            clean[k] = v.clone();
        }
        assert!(
            scrubbed(&clean).is_none(),
            "a clean transaction needs no update"
        );
    }

    #[test]
    fn only_openhim_transaction_ids_are_taken() {
        assert!(is_object_id("6b11e089bc277932b722fc9f"));
        assert!(!is_object_id("../channels"));
        assert!(!is_object_id("6b11e089bc277932b722fc9"));
        assert!(!is_object_id("6b11e089bc277932b722fc9z"));
    }

    #[test]
    fn a_transaction_being_processed_is_left_alone() {
        assert!(!stored(&json!({"status": "Processing", "request": {}})));
        assert!(!stored(
            &json!({"status": "Processing", "response": {"status": 200}})
        ));
        assert!(stored(
            &json!({"status": "Successful", "response": {"status": 200}})
        ));
    }
}
