//! `POST /ddcc/verify`: is this certificate genuine and current? Public, for citizens and verifiers.
//!
//! The body is an `HC1:` text (`text/plain`), a QR code image (`image/png`) or the citizen PDF
//! (`application/pdf`); the answer is the report of `ddcc-mediator verify` (one implementation:
//! [`crate::credential::verify`]). Trusted: our own published DSCs and the `DDCC_TRUST_ANCHORS` file.
//! Anonymous clients are bounded: per-address rate, body size, and the time spent looking for a QR code.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};

use super::reply::Reply;
use super::routes::{published, read_bounded};
use super::AppState;
use crate::credential::verify::{hc1_of, verify as check, VerifyOptions};
use crate::error::Error;

/// Largest body accepted: a phone photo of a QR code, or the citizen PDF, fits.
pub const MAX_VERIFY_BYTES: usize = 4 * 1024 * 1024;
/// Longest time spent finding and checking the QR code of one request.
pub const VERIFY_DEADLINE: Duration = Duration::from_secs(10);

/// What the body is, from its declared Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Submitted {
    Text,
    Png,
    Pdf,
}

impl Submitted {
    fn of(req: &HttpRequest) -> Option<Self> {
        let mime = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match mime.as_deref() {
            Some("text/plain") => Some(Submitted::Text),
            Some("image/png") => Some(Submitted::Png),
            Some("application/pdf") => Some(Submitted::Pdf),
            _ => None,
        }
    }

    /// Whether the bytes are what the Content-Type says (images and PDFs by their signature).
    fn matches(self, body: &[u8]) -> bool {
        match self {
            Submitted::Text => std::str::from_utf8(body).is_ok(),
            Submitted::Png => body.starts_with(b"\x89PNG\r\n\x1a\n"),
            Submitted::Pdf => body.starts_with(b"%PDF-"),
        }
    }
}

pub(super) async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Reply {
    // Counted before anything is read: a refused client costs nothing.
    if let Some(refused) =
        super::citizen::throttled(&req, &state, state.verifications.as_ref(), "verifications")
    {
        return refused;
    }
    let Some(kind) = Submitted::of(&req) else {
        return Reply::outcome(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "Content-Type must be text/plain (an HC1: text), image/png (a QR code) or application/pdf \
             (the citizen PDF)",
        );
    };
    let body = match read_bounded(
        &req,
        payload,
        MAX_VERIFY_BYTES,
        state.request_timeout,
        "the verification limit",
    )
    .await
    {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if !kind.matches(&body) {
        return Reply::outcome(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("the body is not what its Content-Type says ({kind:?})"),
        );
    }
    let mut trusted: Vec<Vec<u8>> = match published(&state).await {
        Ok(ours) => ours
            .into_iter()
            .filter_map(|dsc| dsc.chain.into_iter().next())
            .collect(),
        Err(e) => return Reply::error(&e),
    };
    trusted.extend_from_slice(state.trust_anchors.ders());
    // Our own revocation list (the one /trust/revocations publishes): `revoked` says whether we revoked it.
    let work = state.clone();
    let revocations = match state
        .run(async move { work.revocations.current_list(&work.issuer).await })
        .await
    {
        Ok(list) => list,
        Err(e) => return Reply::error(&e),
    };
    let options = VerifyOptions {
        trusted_dscs: trusted,
        at: time::OffsetDateTime::now_utc().unix_timestamp(),
        revocations: Some(revocations),
        checked: None,
    };
    // Finding a QR code in an image is CPU work: a blocking thread, under a deadline. A thread past the
    // deadline finishes on its own; the image size bound (MAX_QR_IMAGE_PIXELS) bounds its work.
    let outcome = state
        .run(async move {
            let work =
                tokio::task::spawn_blocking(move || hc1_of(&body).map(|hc1| check(&hc1, &options)));
            match tokio::time::timeout(VERIFY_DEADLINE, work).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(Error::Internal(format!("verification failed: {e}"))),
                Err(_) => Err(Error::invalid(
                    "too-costly",
                    None,
                    format!(
                        "no QR code found within {} s; the image is too complex",
                        VERIFY_DEADLINE.as_secs()
                    ),
                )),
            }
        })
        .await;
    match outcome.and_then(|report| {
        serde_json::to_value(&report).map_err(|e| Error::Internal(format!("report: {e}")))
    }) {
        // A verdict, valid or not, is an answer: 200. Only an input with no certificate in it is an error.
        Ok(report) => Reply::json(StatusCode::OK, &report),
        Err(e) => Reply::error(&e),
    }
    // The report holds the holder's data: never kept by a cache.
    .header(header::CACHE_CONTROL, "no-store".into())
}
