//! One certificate, end to end: a valid event in, every artefact out.
//!
//! The CLI (`issue`) and the service drive these same functions, so both issue identical certificates.
//! It does no I/O besides signing; callers decide where the artefacts go. Signing (a network call with
//! Vault) and rendering (the CPU work) are two steps, so that a service can wait for the signer on its
//! async threads and render on a thread of its own.

use time::OffsetDateTime;

use crate::configuration::IssuanceConfig;
use crate::credential::{self, IssuedCredentials, SignedPayload};
use crate::document::{self, DocumentContext, QrArtifact, QrKind};
use crate::domain::VaccinationEvent;
use crate::error::Result;
use crate::render::{self, pdf};
use crate::signer::Signer;

/// A signed payload with its QR symbol and PNG (the document carries the PNG; an SVG is
/// `render::qr::svg_of(&symbol)` for whoever wants one).
#[derive(Debug, Clone)]
pub struct RenderedQr {
    pub signed: SignedPayload,
    pub symbol: render::qr::QrSymbol,
    pub png: Vec<u8>,
}

/// Everything issued for one vaccination event.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub ddcc: RenderedQr,
    /// The EU DCC, or why none was issued.
    pub dcc: std::result::Result<RenderedQr, String>,
    /// The DDCC:VS document Bundle, not yet serialised (see [`SignedDocument::document`]).
    pub document: fhir_models::Bundle,
    /// The citizen PDF.
    pub pdf: Vec<u8>,
}

/// The signed payloads, their QR images and the document Bundle: a certificate without its PDF.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    pub ddcc: RenderedQr,
    /// The EU DCC, or why none was issued.
    pub dcc: std::result::Result<RenderedQr, String>,
    /// The DDCC:VS document Bundle, not yet serialised: the service edits it as JSON before storing it, the
    /// CLI writes it to a file (serialising it here and parsing it again in the service cost both).
    pub document: fhir_models::Bundle,
}

/// Issues the certificate for `event` at time `now`.
pub async fn issue_certificate<S: Signer>(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    signer: &S,
    now: OffsetDateTime,
) -> Result<Certificate> {
    let credentials = credential::issue(event, config, signer, now.unix_timestamp()).await?;
    render_certificate(event, config, credentials, now, signer.is_development())
}

/// The signed payloads of [`credential::issue`] made into the certificate: QR codes, document, PDF.
/// `development_key`: signed by a development key ([`Signer::is_development`]), which the PDF says.
pub fn render_certificate(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    credentials: IssuedCredentials,
    now: OffsetDateTime,
    development_key: bool,
) -> Result<Certificate> {
    let SignedDocument {
        ddcc,
        dcc,
        document,
    } = render_document(event, config, credentials, now)?;
    let pdf = tracing::info_span!("ddcc.render.pdf")
        .in_scope(|| citizen_pdf(event, config, &ddcc, dcc.as_ref().ok(), development_key))?;
    Ok(Certificate {
        ddcc,
        dcc,
        document,
        pdf,
    })
}

/// Everything but the PDF: the payloads signed, their QR codes, the document Bundle.
pub async fn issue_signed_document<S: Signer>(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    signer: &S,
    now: OffsetDateTime,
) -> Result<SignedDocument> {
    let credentials = credential::issue(event, config, signer, now.unix_timestamp()).await?;
    render_document(event, config, credentials, now)
}

/// The QR codes and the document Bundle of signed payloads.
fn render_document(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    IssuedCredentials { ddcc, dcc }: IssuedCredentials,
    now: OffsetDateTime,
) -> Result<SignedDocument> {
    let ddcc = render_qr(ddcc)?;
    let dcc = match dcc {
        Ok(signed) => Ok(render_qr(signed)?),
        Err(reason) => Err(reason),
    };

    let mut qrs = vec![artifact(QrKind::Who, &ddcc)];
    if let Ok(dcc) = &dcc {
        qrs.push(artifact(QrKind::Dcc, dcc));
    }
    let document = tracing::info_span!("ddcc.build").in_scope(|| {
        document::build_document(
            event,
            &DocumentContext {
                issued_at: now,
                issuer_name: config.issuer_name.clone(),
                qrs,
            },
        )
    });
    Ok(SignedDocument {
        ddcc,
        dcc,
        document,
    })
}

/// The printable certificate: every QR issued, and the validity the signed payload claims.
fn citizen_pdf(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    ddcc: &RenderedQr,
    dcc: Option<&RenderedQr>,
    development_key: bool,
) -> Result<Vec<u8>> {
    let date = |unix: i64| {
        OffsetDateTime::from_unix_timestamp(unix)
            .map(OffsetDateTime::date)
            .map_err(|e| crate::Error::Internal(format!("claim time out of range: {e}")))
    };
    let issued = date(ddcc.signed.iat)?;
    // "Valid from" is the questionnaire's, else the vaccination date.
    let valid_from = event
        .certificate
        .valid_from
        .and_then(|d| d.full())
        .or_else(|| event.vaccination.date.full())
        .unwrap_or(issued);
    let dates = pdf::IssueDates {
        issued,
        valid_from,
        valid_until: Some(date(ddcc.signed.exp)?),
    };
    let mut qrs = vec![pdf::PdfQr {
        kind: QrKind::Who,
        symbol: &ddcc.symbol,
    }];
    if let Some(dcc) = dcc {
        qrs.push(pdf::PdfQr {
            kind: QrKind::Dcc,
            symbol: &dcc.symbol,
        });
    }
    let (language, labels) = config.pdf_language(event.language);
    let options = pdf::PdfOptions {
        paper: config.paper,
        labels,
        language,
        development_key,
        issuer_name: config.issuer_name.clone(),
    };
    pdf::certificate_pdf(event, &qrs, &dates, &options)
}

fn render_qr(signed: SignedPayload) -> Result<RenderedQr> {
    let _span = tracing::info_span!("ddcc.render.qr").entered();
    let symbol = render::qr::encode(&signed.hc1)?;
    let png = render::qr::png_of(&symbol)?;
    Ok(RenderedQr {
        signed,
        symbol,
        png,
    })
}

fn artifact(kind: QrKind, qr: &RenderedQr) -> QrArtifact {
    QrArtifact {
        kind,
        payload_json: qr.signed.payload_json.clone(),
        hc1: qr.signed.hc1.clone(),
        png: qr.png.clone(),
    }
}
