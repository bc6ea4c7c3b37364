//! HTTPS and mutual TLS (`DDCC_TLS_CERT`, `DDCC_TLS_KEY`, `DDCC_TLS_CLIENT_CA`), on rustls 0.23 with ring.
//!
//! With a client CA the server asks every client for a certificate but does not demand one: citizens,
//! verifiers and probes connect without, and only the issuing endpoints insist on a credential (a client
//! certificate being one, see [`crate::service::access`]). A certificate that is presented must chain to
//! the CA, or the handshake fails.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::configuration::TlsConfig;
use crate::error::{Error, Result};

pub fn server_config(settings: &TlsConfig) -> Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("DDCC_TLS_CLIENT_CA", path)? {
                roots.add(cert).map_err(|e| {
                    Error::Config(format!(
                        "DDCC_TLS_CLIENT_CA {}: not a CA certificate: {e}",
                        path.display()
                    ))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Config(format!("DDCC_TLS_CLIENT_CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| {
        Error::Config(format!(
            "DDCC_TLS_KEY {}: no PEM private key: {e}",
            settings.key.display()
        ))
    })?;
    builder
        .with_single_cert(certificates("DDCC_TLS_CERT", &settings.cert)?, key)
        .map_err(|e| Error::Config(format!("DDCC_TLS_CERT / DDCC_TLS_KEY: {e}")))
}

fn certificates(name: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("{name} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{name} {}: no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}
