//! One certificate, end to end: a valid event in, every artefact out.
//!
//! The CLI (`issue`) and the service drive this same function, so both issue identical certificates.
//! It does no I/O besides signing; callers decide where the artefacts go.

use time::OffsetDateTime;

use crate::config::IssuanceConfig;
use crate::credential::{self, IssuedCredentials, SignedPayload};
use crate::document::{self, DocumentContext, QrArtifact, QrKind};
use crate::domain::VaccinationEvent;
use crate::error::Result;
use crate::render;
use crate::signer::Signer;

/// A signed payload with its QR images.
#[derive(Debug, Clone)]
pub struct RenderedQr {
    pub signed: SignedPayload,
    pub png: Vec<u8>,
    pub svg: String,
}

/// Everything issued for one vaccination event.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub ddcc: RenderedQr,
    /// The EU DCC, or why none was issued.
    pub dcc: std::result::Result<RenderedQr, String>,
    /// The DDCC:VS document Bundle, serialised once.
    pub document_json: Vec<u8>,
    /// The citizen PDF: the holder, the vaccination and the QR codes, printable.
    pub pdf: Vec<u8>,
}

/// Issues the certificate for `event` at time `now`.
pub async fn issue_certificate<S: Signer>(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    signer: &S,
    now: OffsetDateTime,
) -> Result<Certificate> {
    let IssuedCredentials { ddcc, dcc } =
        credential::issue(event, config, signer, now.unix_timestamp()).await?;
    let ddcc = render_qr(ddcc)?;
    let dcc = match dcc {
        Ok(signed) => Ok(render_qr(signed)?),
        Err(reason) => Err(reason),
    };

    let mut qrs = vec![artifact(QrKind::Who, &ddcc)];
    if let Ok(dcc) = &dcc {
        qrs.push(artifact(QrKind::Dcc, dcc));
    }
    let bundle = document::build_document(
        event,
        &DocumentContext {
            issued_at: now,
            issuer_name: config.issuer_name.clone(),
            qrs,
        },
    );
    let document_json = serde_json::to_vec_pretty(&bundle)
        .map_err(|e| crate::Error::Internal(format!("document Bundle does not serialise: {e}")))?;
    let pdf = render_pdf(event, &ddcc, &dcc, now)?;
    Ok(Certificate {
        ddcc,
        dcc,
        document_json,
        pdf,
    })
}

/// The citizen PDF with the DDCC QR and, when issued, the EU DCC QR. Its dates are those of the signed
/// DDCC payload (`iat`, `exp`); "valid from" is the questionnaire's, else the vaccination date.
fn render_pdf(
    event: &VaccinationEvent,
    ddcc: &RenderedQr,
    dcc: &std::result::Result<RenderedQr, String>,
    now: OffsetDateTime,
) -> Result<Vec<u8>> {
    use render::pdf::{certificate_pdf, IssueDates, PdfOptions, PdfQr, QrKind as PdfKind};
    let date_of = |unix: i64| {
        OffsetDateTime::from_unix_timestamp(unix)
            .ok()
            .map(|t| t.date())
    };
    let issued = date_of(ddcc.signed.iat).unwrap_or(now.date());
    let dates = IssueDates {
        issued,
        valid_from: event
            .certificate
            .valid_from
            .and_then(|d| d.full())
            .or_else(|| event.vaccination.date.full())
            .unwrap_or(issued),
        valid_until: date_of(ddcc.signed.exp),
    };
    let mut qrs = vec![PdfQr {
        kind: PdfKind::Ddcc,
        hc1: &ddcc.signed.hc1,
    }];
    if let Ok(dcc) = dcc {
        qrs.push(PdfQr {
            kind: PdfKind::EuDcc,
            hc1: &dcc.signed.hc1,
        });
    }
    certificate_pdf(event, &qrs, &dates, &PdfOptions::default())
}

fn render_qr(signed: SignedPayload) -> Result<RenderedQr> {
    let png = render::qr_png(&signed.hc1)?;
    let svg = render::qr_svg(&signed.hc1)?;
    Ok(RenderedQr { signed, png, svg })
}

fn artifact(kind: QrKind, qr: &RenderedQr) -> QrArtifact {
    QrArtifact {
        kind,
        payload_json: qr.signed.payload_json.clone(),
        hc1: qr.signed.hc1.clone(),
        png: qr.png.clone(),
    }
}
