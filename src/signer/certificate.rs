//! Reading X.509 certificates: validity, public key, EKU. (Helper work.)

use crate::error::{Error, Result};

/// (notBefore, notAfter) of a DER certificate, as Unix seconds.
pub fn validity(der: &[u8]) -> Result<(i64, i64)> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| Error::Config(format!("unreadable certificate: {e}")))?;
    let v = &cert.tbs_certificate.validity;
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok((secs(&v.not_before), secs(&v.not_after)))
}
