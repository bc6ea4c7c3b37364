//! Credential: the signed QR payloads.
//!
//! `VaccinationEvent` → payload (DDCC core data set; EU DCC 1.3 when the codes map) → CWT claims →
//! COSE_Sign1 (through a [`Signer`]) → zlib → base45 → `HC1:`. Also the verifier used by `verify`.
//!
//! One module per concept: [`core_data_set`] and [`dcc`] build the payloads, [`claims`] the CWT,
//! [`cose`] the signature structure, [`hc1`] the transport encoding, [`verify`] checks all of it.

pub mod claims;
pub mod core_data_set;
pub mod cose;
pub mod dcc;
pub mod hc1;
pub mod pdf_qr;
pub mod revocation;
pub mod trust;
pub mod verify;

use coset::cbor::value::Value;

use crate::configuration::IssuanceConfig;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};
use crate::signer::{Signer, SigningIdentity};

pub use verify::{decode_qr_png, verify, VerifyOptions, VerifyReport};

/// One signed payload.
#[derive(Debug, Clone)]
pub struct SignedPayload {
    /// `HC1:` + base45(zlib(COSE_Sign1)).
    pub hc1: String,
    /// The hcert sub-claim payload, as JSON (DocumentReference `serialized` content).
    pub payload_json: Vec<u8>,
    pub kid: [u8; 8],
    pub iat: i64,
    pub exp: i64,
}

/// The payloads issued for one event.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub ddcc: SignedPayload,
    /// The EU DCC, or why none was issued (e.g. a vaccine code with no EU equivalent).
    pub dcc: std::result::Result<SignedPayload, String>,
}

/// Builds and signs the payloads for `event` at Unix time `now`.
///
/// Fails (nothing issued) when the signer's DSC is not valid at `now`, when
/// `config.ddcc_hcert_key` is not 1 or 3, when signing fails, or when a signed payload does not verify
/// with the DSC (fail closed). An EU DCC that cannot be built is not an error: `dcc` says why.
pub async fn issue<S: Signer>(
    event: &VaccinationEvent,
    config: &IssuanceConfig,
    signer: &S,
    now: i64,
) -> Result<IssuedCredentials> {
    let ddcc_key = config.ddcc_hcert_key;
    if ddcc_key != claims::HCERT_DDCC_VS && ddcc_key != claims::HCERT_EU_DCC_V1 {
        return Err(Error::Config(format!(
            "ddcc_hcert_key must be {} (SMART Trust DDCC:VS) or {} (WHO reference mediator), not {ddcc_key}",
            claims::HCERT_DDCC_VS,
            claims::HCERT_EU_DCC_V1
        )));
    }
    let identity = signer.current();
    let (iat, exp) = claims::timing(config, &identity, now)?;
    let iss = claims::issuer(config, event);
    let envelope = Envelope {
        iss: &iss,
        iat,
        exp,
        identity: &identity,
    };

    let ddcc_json = core_data_set::core_data_set(event);
    let dcc_json = if config.emit_dcc {
        dcc::build(event, &iss)
    } else {
        Err("the EU DCC is disabled by configuration (emit_dcc = false)".to_string())
    };
    // Both payloads in one call to the signer: with Vault, one round trip (transit `batch_input`).
    let (ddcc, dcc) = match dcc_json {
        Ok(dcc_json) => {
            let [ddcc, dcc] = sign_payloads(
                signer,
                &envelope,
                [(ddcc_key, &ddcc_json), (claims::HCERT_EU_DCC_V1, &dcc_json)],
            )
            .await?;
            (ddcc, Ok(dcc))
        }
        Err(reason) => {
            let [ddcc] = sign_payloads(signer, &envelope, [(ddcc_key, &ddcc_json)]).await?;
            (ddcc, Err(reason))
        }
    };
    Ok(IssuedCredentials { ddcc, dcc })
}

/// What every payload of one issuance shares.
struct Envelope<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    identity: &'a SigningIdentity,
}

/// Signs the payloads of one certificate, each `(hcert sub-claim, payload)`, with one call to the signer, then
/// checks each signed payload with our own verifier. One `ddcc.sign` span for all of them: the signer's one
/// round trip is its child.
#[tracing::instrument(name = "ddcc.sign", skip_all, fields(hcert.keys = %hcert_keys(&payloads)))]
async fn sign_payloads<S: Signer, const N: usize>(
    signer: &S,
    envelope: &Envelope<'_>,
    payloads: [(i64, &serde_json::Value); N],
) -> Result<[SignedPayload; N]> {
    let unsigned = payloads
        .iter()
        .map(|&(hcert_key, payload)| unsigned_payload(envelope, hcert_key, payload))
        .collect::<Result<Vec<_>>>()?;
    let tbs: Vec<&[u8]> = unsigned.iter().map(cose::Unsigned::tbs).collect();
    let signatures = signer.sign_all(envelope.identity, &tbs).await?;
    if signatures.len() != N {
        return Err(Error::Internal(format!(
            "the signer returned {} signatures for {N} payloads",
            signatures.len()
        )));
    }
    let signed = unsigned
        .into_iter()
        .zip(signatures)
        .zip(payloads)
        .map(|((unsigned, signature), (_, payload))| {
            checked_payload(signer, envelope, unsigned.signed(signature)?, payload)
        })
        .collect::<Result<Vec<_>>>()?;
    <[SignedPayload; N]>::try_from(signed)
        .map_err(|signed| Error::Internal(format!("{} payloads signed of {N}", signed.len())))
}

/// The `hcert.keys` attribute of a `ddcc.sign` span: the hcert sub-claims signed, in order (`3,1`).
fn hcert_keys(payloads: &[(i64, &serde_json::Value)]) -> String {
    payloads
        .iter()
        .map(|(hcert_key, _)| hcert_key.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The COSE_Sign1 of one payload, its CWT claims under `hcert_key`, before it is signed.
fn unsigned_payload(
    envelope: &Envelope<'_>,
    hcert_key: i64,
    payload: &serde_json::Value,
) -> Result<cose::Unsigned> {
    let cbor_payload =
        Value::serialized(payload).map_err(|e| Error::Internal(format!("payload to CBOR: {e}")))?;
    let claims = claims::Claims {
        iss: Some(envelope.iss.to_string()),
        iat: envelope.iat,
        exp: envelope.exp,
        hcert: vec![(hcert_key, cbor_payload)],
    };
    Ok(cose::Unsigned::new(envelope.identity, claims.to_cbor()?))
}

/// The `HC1:` string of one signed payload, once our own verifier accepts it.
fn checked_payload<S: Signer>(
    signer: &S,
    envelope: &Envelope<'_>,
    signed: cose::Signed,
    payload: &serde_json::Value,
) -> Result<SignedPayload> {
    let hc1 = hc1::encode(&signed.bytes)?;

    // Fail closed: never hand out a certificate our own verifier rejects. A signer that verified its
    // signature spares the verifier that one ECDSA operation, for exactly these bytes.
    let checked = signer
        .checks_its_signatures()
        .then(|| verify::CheckedSignature {
            dsc_der: envelope.identity.dsc_der.clone(),
            tbs: signed.tbs,
            signature: signed.signature,
        });
    verify::check(
        &hc1,
        &VerifyOptions {
            trusted_dscs: vec![envelope.identity.dsc_der.clone()],
            at: envelope.iat,
            revocations: None,
            checked,
        },
    )
    .map_err(|failure| {
        Error::Internal(format!(
            "self-check of the signed certificate failed at {:?}: {}",
            failure.stage, failure.message
        ))
    })?;

    Ok(SignedPayload {
        hc1,
        payload_json: serde_json::to_vec(payload)
            .map_err(|e| Error::Internal(format!("payload to JSON: {e}")))?,
        kid: envelope.identity.kid,
        iat: envelope.iat,
        exp: envelope.exp,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signer::local::{DscSubject, LocalSigner};

    /// A development signer whose key lives in `dir` (the credential modules' tests share it).
    pub(crate) fn signer(dir: &std::path::Path) -> LocalSigner {
        let subject = DscSubject {
            country: "US".into(),
            common_name: "test".into(),
        };
        LocalSigner::open_or_create(dir, &subject).unwrap()
    }

    /// Runs `f` to completion on a runtime of this thread.
    pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn issues_a_verifiable_ddcc_with_iss_iat_exp() {
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let event = core_data_set::tests::eddie_murphy();
        let config = IssuanceConfig::default();
        let now = signer.current().not_before + 10;
        let issued = run(issue(&event, &config, &signer, now)).unwrap();
        let report = verify(
            &issued.ddcc.hc1,
            &VerifyOptions {
                trusted_dscs: vec![signer.current().dsc_der.clone()],
                at: now,
                revocations: None,
                checked: None,
            },
        );
        assert!(report.valid, "{report:?}");
        // iss defaults to the vaccination country (USA → US).
        assert_eq!(report.iss.as_deref(), Some("US"));
        assert_eq!(report.iat, Some(now));
        assert_eq!(report.exp, Some(now + 365 * 86400));
        let payload: serde_json::Value = serde_json::from_slice(&issued.ddcc.payload_json).unwrap();
        assert_eq!(report.payloads.get("3"), Some(&payload));
    }

    #[test]
    fn configured_issuer_and_sub_claim_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let config = IssuanceConfig {
            issuer_country: Some("NL".into()),
            ddcc_hcert_key: 1,
            ..Default::default()
        };
        let now = signer.current().not_before + 10;
        let issued = run(issue(
            &core_data_set::tests::eddie_murphy(),
            &config,
            &signer,
            now,
        ))
        .unwrap();
        let report = verify(
            &issued.ddcc.hc1,
            &VerifyOptions {
                trusted_dscs: vec![signer.current().dsc_der.clone()],
                at: now,
                revocations: None,
                checked: None,
            },
        );
        assert_eq!(report.iss.as_deref(), Some("NL"));
        assert!(report.payloads.contains_key("1"));

        let bad = IssuanceConfig {
            ddcc_hcert_key: 2,
            ..Default::default()
        };
        assert!(run(issue(
            &core_data_set::tests::eddie_murphy(),
            &bad,
            &signer,
            now
        ))
        .is_err());
    }

    /// A development signer that records how many Sig_structures each call brings it, and can drop the last
    /// signature of a batch (a signer breaking its contract).
    struct Recording {
        inner: LocalSigner,
        calls: std::sync::Mutex<Vec<usize>>,
        drops_one: bool,
    }

    impl Recording {
        fn new(dir: &std::path::Path, drops_one: bool) -> Self {
            Recording {
                inner: signer(dir),
                calls: std::sync::Mutex::new(Vec::new()),
                drops_one,
            }
        }
        fn calls(&self) -> Vec<usize> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Signer for Recording {
        fn current(&self) -> std::sync::Arc<SigningIdentity> {
            self.inner.current()
        }
        async fn sign(&self, identity: &SigningIdentity, tbs: &[u8]) -> Result<Vec<u8>> {
            self.calls.lock().unwrap().push(1);
            self.inner.sign(identity, tbs).await
        }
        async fn sign_all(
            &self,
            identity: &SigningIdentity,
            tbs: &[&[u8]],
        ) -> Result<Vec<Vec<u8>>> {
            self.calls.lock().unwrap().push(tbs.len());
            let mut signatures = self.inner.sign_all(identity, tbs).await?;
            if self.drops_one {
                signatures.pop();
            }
            Ok(signatures)
        }
    }

    #[test]
    fn both_payloads_are_signed_in_one_call_to_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Recording::new(dir.path(), false);
        let event = dcc::tests::eu_mappable();
        let now = signer.current().not_before + 10;
        let issued = run(issue(&event, &IssuanceConfig::default(), &signer, now)).unwrap();
        assert!(issued.dcc.is_ok(), "{:?}", issued.dcc);
        assert_eq!(signer.calls(), vec![2]);

        let signer = Recording::new(dir.path(), false);
        let no_dcc = IssuanceConfig {
            emit_dcc: false,
            ..Default::default()
        };
        let issued = run(issue(&event, &no_dcc, &signer, now)).unwrap();
        assert!(issued.dcc.is_err());
        assert_eq!(signer.calls(), vec![1]);
    }

    #[test]
    fn a_signature_missing_from_the_batch_fails_the_issuance() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Recording::new(dir.path(), true);
        let now = signer.current().not_before + 10;
        let err = run(issue(
            &dcc::tests::eu_mappable(),
            &IssuanceConfig::default(),
            &signer,
            now,
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("the signer returned 1 signatures for 2 payloads"),
            "{err}"
        );
    }

    #[test]
    fn refuses_to_sign_outside_the_dsc_validity() {
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let id = signer.current();
        let event = core_data_set::tests::eddie_murphy();
        let config = IssuanceConfig::default();
        for now in [id.not_before - 1, id.not_after] {
            let err = run(issue(&event, &config, &signer, now)).unwrap_err();
            assert!(err.to_string().contains("not valid now"), "{err}");
        }
        // Near the end of the DSC, exp is its notAfter.
        let issued = run(issue(&event, &config, &signer, id.not_after - 100)).unwrap();
        assert_eq!(issued.ddcc.exp, id.not_after);
    }
}
