//! The signing-key lifecycle in Vault transit: create, CSR, certificate import, rotation, a dev
//! CA, and the export of every valid DSC (PEM, JWKS, DID).
//!
//! Library functions so that the CLI (`ddcc-mediator keys …`) and the HTTP service share them.
//! Each transit key version gets its own DSC and therefore its own kid; rotation adds a version,
//! and old versions stay in the export while their DSC is valid so that certificates they signed
//! keep verifying.

mod dev_ca;
mod export;
pub mod public_key;

pub use dev_ca::{dev_certify, DevCa, DSC_EKU_OIDS};
pub use export::{published, render, to_did, to_jwks, to_pem, ExportFormat, PublishedDsc};

use crate::error::{Error, Result};
use crate::signer::vault::{KeyType, Transit, TransitKey};
use public_key::PublicKey;

/// The subject of a DSC (SMART Trust certificate template: C, O, CN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DscSubject {
    /// ISO 3166-1 alpha-2 country of the issuer.
    pub country: String,
    pub organization: String,
    pub common_name: String,
}

/// Creates the key if missing (mounting transit if needed) and checks its type: Vault answers
/// success to a create with another type and keeps the old one, so the type is read back.
pub async fn init(transit: &Transit, key_type: KeyType) -> Result<TransitKey> {
    transit.ensure_mount().await?;
    if transit.read_key().await?.is_none() {
        transit.create_key(key_type).await?;
    }
    let key = read_required(transit).await?;
    if key.key_type != key_type.vault_name() {
        return Err(Error::Config(format!(
            "transit key {:?} already exists with type {}, not {}",
            key.name,
            key.key_type,
            key_type.vault_name()
        )));
    }
    Ok(key)
}

/// A CSR for `version` (default: the latest) signed inside Vault, carrying `subject`.
pub async fn csr(transit: &Transit, version: Option<u32>, subject: &DscSubject) -> Result<String> {
    let key = read_required(transit).await?;
    key.supported_type()?;
    let version = version.unwrap_or(key.latest_version);
    key.public_key(version)?; // the version exists and is asymmetric
    let template = template_csr(subject)?;
    Ok(transit.csr(version, &template).await?)
}

/// Stores a DSC chain (PEM, leaf first) for `version`, after checking that the leaf certifies
/// that version's key. Without `version`, the version whose key the leaf certifies.
pub async fn import_certificate(
    transit: &Transit,
    version: Option<u32>,
    chain_pem: &str,
) -> Result<u32> {
    let chain = parse_chain(chain_pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::Config("no CERTIFICATE block in the PEM".into()))?;
    let leaf_key = PublicKey::from_certificate(leaf)?;
    let key = read_required(transit).await?;
    key.supported_type()?;
    let version = match version {
        Some(v) => {
            if key.public_key(v)? != leaf_key {
                return Err(Error::Config(format!(
                    "the certificate's public key is not the key of version {v} of transit key {:?}",
                    key.name
                )));
            }
            v
        }
        None => {
            let mut matching = key
                .versions
                .keys()
                .copied()
                .filter(|&v| key.public_key(v).map(|pk| pk == leaf_key).unwrap_or(false));
            matching.next().ok_or_else(|| {
                Error::Config(format!(
                    "the certificate's public key is the key of no version of transit key {:?}",
                    key.name
                ))
            })?
        }
    };
    let normalized = chain
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
        .collect::<String>();
    transit.set_certificate(version, &normalized).await?;
    Ok(version)
}

/// Adds a key version and returns its number. It signs only once it has a DSC.
pub async fn rotate(transit: &Transit) -> Result<u32> {
    transit.rotate().await?;
    Ok(read_required(transit).await?.latest_version)
}

/// Withdraws the version whose DSC has `kid_hex`, and every older one: transit signs with none of them
/// again (`min_encryption_version`, which every replica reads from Vault). A newer version with a DSC valid
/// `now` must exist to take over. Returns that version; withdrawing again changes nothing.
pub async fn withdraw(transit: &Transit, kid_hex: &str, now: i64) -> Result<u32> {
    let key = read_required(transit).await?;
    let wanted = kid_hex.trim().to_ascii_lowercase();
    let certified = key.certified_versions()?;
    let target = certified
        .iter()
        .find(|c| hex::encode(crate::signer::kid_of(c.leaf())) == wanted)
        .ok_or_else(|| {
            Error::Config(format!(
                "no version of transit key {:?} has a DSC with kid {kid_hex}",
                key.name
            ))
        })?;
    let successor = certified
        .iter()
        .find(|c| c.version > target.version && (c.not_before..=c.not_after).contains(&now))
        .ok_or_else(|| {
            Error::Config(format!(
                "version {} of transit key {:?} is the newest with a valid DSC: rotate and certify a new \
                 version first (`keys rotate`, then `keys csr` + `keys import-certificate`)",
                target.version, key.name
            ))
        })?;
    if !key.withdrawn(target.version) {
        transit
            .set_min_versions(Some(target.version + 1), None)
            .await?;
    }
    Ok(successor.version)
}

/// Archives the withdrawn versions (`min_decryption_version`), once nothing they signed is current: their
/// DSCs are no longer published.
pub async fn retire_withdrawn(transit: &Transit) -> Result<()> {
    let key = read_required(transit).await?;
    if key.min_encryption_version > key.min_decryption_version {
        transit
            .set_min_versions(None, Some(key.min_encryption_version))
            .await?;
    }
    Ok(())
}

/// Every still-valid DSC of the key, in `format`.
pub async fn export(
    transit: &Transit,
    format: ExportFormat,
    did: Option<&str>,
    now: i64,
) -> Result<String> {
    let key = read_required(transit).await?;
    render(&published(&key, now)?, format, did)
}

pub(crate) async fn read_required(transit: &Transit) -> Result<TransitKey> {
    transit.read_key().await?.ok_or_else(|| {
        Error::Config(format!(
            "transit key {:?} does not exist; create it with `ddcc-mediator keys init`",
            transit.key_name()
        ))
    })
}

/// DER certificates of a PEM text, in order.
fn parse_chain(chain_pem: &str) -> Result<Vec<Vec<u8>>> {
    Ok(pem::parse_many(chain_pem)
        .map_err(|e| Error::Config(format!("unreadable certificate PEM: {e}")))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}

/// A template CSR with the DSC subject. Transit keeps the subject and replaces the key and
/// signature with its own, so the throwaway key here never matters.
fn template_csr(subject: &DscSubject) -> Result<String> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    let country = &subject.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::Config(format!(
            "DSC country {country:?} is not an ISO 3166-1 alpha-2 code"
        )));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country.as_str());
    dn.push(DnType::OrganizationName, subject.organization.as_str());
    dn.push(DnType::CommonName, subject.common_name.as_str());
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let rcgen_error = |e: rcgen::Error| Error::Internal(format!("template CSR: {e}"));
    let throwaway = KeyPair::generate().map_err(rcgen_error)?;
    params
        .serialize_request(&throwaway)
        .and_then(|csr| csr.pem())
        .map_err(rcgen_error)
}
