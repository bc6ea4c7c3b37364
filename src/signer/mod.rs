//! Who signs: the `Signer` seam between COSE building and the key that signs.
//!
//! COSE_Sign1 is built in two phases (headers + payload, then the Sig_structure is signed) so that a
//! network signer such as Vault transit fits: the kid in the protected header must name the key
//! version that will sign, so the caller first takes a [`SigningIdentity`] and then asks the signer to
//! sign with exactly that identity.

pub mod local;

use std::future::Future;
use std::sync::Arc;

use crate::error::Result;

/// COSE signature algorithms an issuer may use (HCERT §3.3: ES256 primary, PS256 secondary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256; signature is raw r||s (64 bytes). COSE label -7.
    ES256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32. COSE label -37.
    PS256,
}

impl Algorithm {
    /// The COSE algorithm label (IANA "COSE Algorithms").
    pub fn cose_label(self) -> i64 {
        match self {
            Algorithm::ES256 => -7,
            Algorithm::PS256 => -37,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::PS256 => "PS256",
        }
    }
}

/// One signing key version and the DSC that certifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningIdentity {
    pub alg: Algorithm,
    /// First 8 bytes of SHA-256 over the DSC DER (HCERT Appendix A.1).
    pub kid: [u8; 8],
    /// The document signer certificate (DER).
    pub dsc_der: Vec<u8>,
    /// DSC validity, Unix seconds. Certificates must not claim `iat` before or `exp` after it.
    pub not_before: i64,
    pub not_after: i64,
    /// The key version inside the signer (Vault transit version; 1 for the local signer).
    pub key_version: u32,
}

impl SigningIdentity {
    /// Builds the identity of a DSC: computes the kid and reads the validity from the certificate.
    pub fn from_dsc(alg: Algorithm, dsc_der: Vec<u8>, key_version: u32) -> Result<Self> {
        let (not_before, not_after) = crate::signer::certificate::validity(&dsc_der)?;
        Ok(SigningIdentity {
            alg,
            kid: kid_of(&dsc_der),
            dsc_der,
            not_before,
            not_after,
            key_version,
        })
    }
}

/// kid = SHA-256(DSC DER)[0..8].
pub fn kid_of(dsc_der: &[u8]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dsc_der);
    let mut kid = [0u8; 8];
    kid.copy_from_slice(&digest[..8]);
    kid
}

/// A key that signs COSE Sig_structures.
pub trait Signer: Send + Sync {
    /// The identity new certificates are signed with now.
    fn current(&self) -> Arc<SigningIdentity>;

    /// Whether this is a development key (the local signer's self-signed DSC): what it signs is marked
    /// as such on the citizen PDF, so it cannot pass for a real certificate.
    fn is_development(&self) -> bool {
        false
    }

    /// Whether [`Signer::sign`] verifies every signature with the identity's DSC before returning it (a
    /// remote signer must: the key behind it can change). The issuer's self-check then need not repeat the
    /// ECDSA verification for exactly those bytes (see `credential::verify::VerifyOptions::checked`).
    fn checks_its_signatures(&self) -> bool {
        false
    }

    /// Signs `tbs` (the COSE Sig_structure bytes) with exactly `identity`'s key version, returning the
    /// COSE signature bytes (raw r||s for ES256). Fails closed: an error, never a partial signature.
    fn sign(
        &self,
        identity: &SigningIdentity,
        tbs: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// Signs each of `tbs` with exactly `identity`'s key version: one signature per Sig_structure, in the
    /// same order. A certificate carries two payloads (DDCC core data set, EU DCC) signed by one identity;
    /// a network signer overrides this to sign them in one round trip (Vault: one `batch_input` call).
    /// All or nothing: any signature that cannot be made fails the whole call.
    ///
    /// The default signs one after the other with [`Signer::sign`]: right for a signer that computes
    /// locally, where a round trip costs nothing.
    fn sign_all(
        &self,
        identity: &SigningIdentity,
        tbs: &[&[u8]],
    ) -> impl Future<Output = Result<Vec<Vec<u8>>>> + Send {
        async move {
            let mut signatures = Vec::with_capacity(tbs.len());
            for one in tbs {
                signatures.push(self.sign(identity, one).await?);
            }
            Ok(signatures)
        }
    }
}

/// Which key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignerKind {
    /// A development key and self-signed DSC in the key directory.
    Local,
    /// A Vault/OpenBao transit key; the private key never leaves Vault.
    Vault,
}

pub mod certificate;
pub mod vault;
