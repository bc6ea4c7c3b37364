//! Who may call the issuing endpoints: API keys ([`super::auth`]), OIDC bearer tokens ([`super::oidc`]) and
//! client certificates (mutual TLS, verified during the handshake by rustls), in any combination
//! (`DDCC_AUTH`). A request is let in by the first accepted method that recognises it.

use super::auth::ApiKeys;
use super::oidc::{OidcVerifier, TokenRefusal};
use crate::error::Error;

/// An accepted way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// `Authorization: Bearer <key>` or Basic with the key as password.
    ApiKey,
    /// `Authorization: Bearer <JWT>` from the OIDC provider.
    Oidc,
    /// A client certificate signed by `DDCC_TLS_CLIENT_CA`.
    Mtls,
}

/// The verified subject of the client certificate of a TLS connection (RFC 4514 DN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub subject: String,
}

impl ClientCertificate {
    /// From the DER of the (already verified) end-entity certificate.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        use der::Decode as _;
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        Some(ClientCertificate {
            subject: cert.tbs_certificate.subject.to_string(),
        })
    }
}

/// How the caller proved who it is. Identifiers only: never a key or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// First 8 hex digits of the SHA-256 of the API key (enough to tell keys apart, useless to an attacker);
    /// `openhim`: the key is OpenHIM's route key (`DDCC_OPENHIM_ROUTE_KEY`), so the caller is OpenHIM.
    ApiKey { key_id: String, openhim: bool },
    /// `sub` and `azp`/`client_id` of the token, and its issuer.
    Oidc {
        issuer: String,
        subject: Option<String>,
        client: Option<String>,
    },
    /// Subject DN of the client certificate.
    Certificate { subject: String },
}

/// Why a request was not let in.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no credentials (`presented: false`), or none that verify.
    Unauthenticated { reason: String, presented: bool },
    /// 403: authenticated (as `credential`), but without the required role.
    Forbidden {
        reason: String,
        credential: Credential,
    },
    /// 503: the OIDC provider could not be reached to verify the token.
    Unavailable(Error),
}

#[derive(Debug)]
pub struct Authenticator {
    methods: Vec<Method>,
    keys: ApiKeys,
    oidc: Option<(OidcVerifier, String)>,
}

impl Authenticator {
    /// `oidc` is the verifier and its issuer; it must be present when `methods` holds [`Method::Oidc`].
    pub fn new(methods: Vec<Method>, keys: ApiKeys, oidc: Option<(OidcVerifier, String)>) -> Self {
        Authenticator {
            methods,
            keys,
            oidc,
        }
    }

    pub fn accepts(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    /// The `WWW-Authenticate` challenge for a 401. RFC 6750 §3.1: a request without credentials gets no
    /// error code; refused credentials get `invalid_token` (when bearer tokens are what is refused).
    pub fn challenge(&self, reason: &str, presented: bool) -> String {
        if presented && self.accepts(Method::Oidc) {
            format!(
                "Bearer realm=\"ddcc-mediator\", error=\"invalid_token\", error_description=\"{}\"",
                reason.replace(['"', '\\'], "'")
            )
        } else {
            "Bearer realm=\"ddcc-mediator\"".into()
        }
    }

    /// The `WWW-Authenticate` challenge for a 403.
    pub fn insufficient_scope(&self) -> String {
        let scope = self
            .oidc
            .as_ref()
            .and_then(|(v, _)| v.required_role())
            .unwrap_or("");
        format!(
            "Bearer realm=\"ddcc-mediator\", error=\"insufficient_scope\", scope=\"{}\"",
            scope.replace(['"', '\\'], "'")
        )
    }

    /// Checks the request's credentials: the verified client certificate, then the `Authorization` header.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Credential, Refusal> {
        if let (true, Some(cert)) = (self.accepts(Method::Mtls), certificate) {
            return Ok(Credential::Certificate {
                subject: cert.subject.clone(),
            });
        }
        let mut reason = None;
        if let (true, Some(header)) = (self.accepts(Method::Oidc), authorization) {
            if let (Some(token), Some((verifier, issuer))) = (jwt_of(header), &self.oidc) {
                match verifier.verify(token).await {
                    Ok(identity) => {
                        return Ok(Credential::Oidc {
                            issuer: issuer.clone(),
                            subject: identity.subject,
                            client: identity.client,
                        })
                    }
                    Err(TokenRefusal::Forbidden(reason, identity)) => {
                        return Err(Refusal::Forbidden {
                            reason,
                            credential: Credential::Oidc {
                                issuer: issuer.clone(),
                                subject: identity.subject,
                                client: identity.client,
                            },
                        })
                    }
                    Err(TokenRefusal::Unavailable(e)) => return Err(Refusal::Unavailable(e)),
                    Err(TokenRefusal::Invalid(m)) => reason = Some(m),
                }
            }
        }
        if self.accepts(Method::ApiKey) {
            if let Some((key_id, openhim)) = self.keys.identify_caller(authorization) {
                return Ok(Credential::ApiKey { key_id, openhim });
            }
        }
        let presented = authorization.is_some_and(|h| !h.trim().is_empty());
        let reason = reason.unwrap_or_else(|| {
            let ways: Vec<&str> = self
                .methods
                .iter()
                .map(|m| match m {
                    Method::ApiKey => "an API key (Authorization: Bearer <key>)",
                    Method::Oidc => "an OIDC access token (Authorization: Bearer <JWT>)",
                    Method::Mtls => "a client certificate",
                })
                .collect();
            if presented {
                format!("credentials not accepted: {}", ways.join(", or "))
            } else {
                format!("authentication required: {}", ways.join(", or "))
            }
        });
        Err(Refusal::Unauthenticated { reason, presented })
    }
}

/// The token of `Bearer <JWT>` (three base64url parts); API keys are hex and never look like one.
fn jwt_of(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.split('.').count() == 3).then_some(token)
}
