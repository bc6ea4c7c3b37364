//! A development CSCA in Vault's PKI engine, for tests and demos: one call builds the whole
//! chain (CSCA → DSC for a transit key version) on one machine.
//!
//! Production DSCs come from the national SCA, usually offline; `keys csr` and
//! `keys import-certificate` are that path.

use serde::Deserialize;
use serde_json::json;

use super::{csr, import_certificate, read_required, DscSubject};
use crate::error::Result;
use crate::signer::vault::{Transit, VaultClient};

/// DSC extended key usages (HCERT 1.0.8 / SMART Trust): test, vaccination, recovery.
pub const DSC_EKU_OIDS: [&str; 3] = [
    "1.3.6.1.4.1.1847.2021.1.1",
    "1.3.6.1.4.1.1847.2021.1.2",
    "1.3.6.1.4.1.1847.2021.1.3",
];

/// Where and how the dev CSCA lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCa {
    /// PKI engine mount, enabled when missing.
    pub pki_mount: String,
    pub issuer_name: String,
    pub csca_common_name: String,
    /// ISO 3166-1 alpha-2; `XX` is the conventional test country.
    pub country: String,
    /// Vault TTL strings, e.g. `87600h`.
    pub csca_ttl: String,
    pub dsc_ttl: String,
}

impl Default for DevCa {
    fn default() -> Self {
        DevCa {
            pki_mount: "pki".into(),
            issuer_name: "ddcc-dev-csca".into(),
            csca_common_name: "XX DDCC Dev CSCA".into(),
            country: "XX".into(),
            csca_ttl: "87600h".into(),
            dsc_ttl: "8760h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct IssuerList {
    #[serde(default)]
    key_info: std::collections::BTreeMap<String, IssuerInfo>,
}

#[derive(Debug, Deserialize)]
struct IssuerInfo {
    #[serde(default)]
    issuer_name: String,
}

/// Whether the PKI mount has an issuer called `name` (a list, because reading a missing issuer
/// answers 500 on OpenBao). An empty mount answers 404.
async fn has_issuer(client: &VaultClient, mount: &str, name: &str) -> Result<bool> {
    match client
        .read::<IssuerList>(&format!("{mount}/issuers?list=true"))
        .await
    {
        Ok(list) => Ok(list.key_info.values().any(|i| i.issuer_name == name)),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct Issued {
    certificate: String,
    #[serde(default)]
    issuing_ca: String,
}

/// Mounts PKI and creates the CSCA if needed, has it sign a CSR of `version` (default: latest)
/// verbatim with the DSC key usage and EKUs, and imports the result. Returns the version.
pub async fn dev_certify(
    transit: &Transit,
    ca: &DevCa,
    subject: &DscSubject,
    version: Option<u32>,
) -> Result<u32> {
    let client = transit.client();
    let mount = ca.pki_mount.trim_matches('/');
    let mounted = client
        .write_unit(
            &format!("sys/mounts/{mount}"),
            &json!({"type": "pki", "config": {"max_lease_ttl": ca.csca_ttl}}),
        )
        .await;
    match mounted {
        Err(e) if !e.is_already_in_use() => return Err(e.into()),
        _ => {}
    }
    let issuer_path = format!("{mount}/issuer/{}", ca.issuer_name);
    if !has_issuer(client, mount, &ca.issuer_name).await? {
        client
            .write_unit(
                &format!("{mount}/root/generate/internal"),
                &json!({
                    "common_name": ca.csca_common_name,
                    "country": ca.country,
                    "key_type": "ec",
                    "key_bits": 256,
                    "ttl": ca.csca_ttl,
                    "issuer_name": ca.issuer_name,
                }),
            )
            .await?;
        tracing::info!(issuer = %ca.csca_common_name, "created the dev CSCA");
    }
    let version = match version {
        Some(v) => v,
        None => read_required(transit).await?.latest_version,
    };
    let request = csr(transit, Some(version), subject).await?;
    let issued: Issued = client
        .write(
            &format!("{issuer_path}/sign-verbatim"),
            &json!({
                "csr": request,
                "ttl": ca.dsc_ttl,
                "key_usage": ["DigitalSignature"],
                "ext_key_usage_oids": DSC_EKU_OIDS,
            }),
        )
        .await?;
    let chain = format!(
        "{}\n{}",
        issued.certificate.trim(),
        issued.issuing_ca.trim()
    );
    import_certificate(transit, Some(version), &chain).await
}
