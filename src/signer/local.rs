//! Development signer: a P-256 key and a self-signed DSC kept in a key directory.
//!
//! For development and tests only: a self-signed DSC is not anchored in a national SCA, so no verifier
//! outside this installation trusts it (SMART Trust requires SCA → DSC). The files are created on first
//! use, with a warning, and never replaced afterwards: a certificate someone already trusts must not
//! change under them, so unreadable or mismatching files are an error to fix by hand.
//!
//! **Withdrawal** (`ddcc-mediator keys withdraw <kid>`): the DSC moves to `withdrawn/<kid>.pem` beside the
//! key, the private key is deleted, and a new key and DSC are created. The record lives in the key directory
//! because that directory *is* the local signer: whoever signs with it sees the withdrawal (a running
//! service refuses to sign with a withdrawn kid at once, and signs with the new key after a restart). The
//! withdrawn DSC stays published until `ddcc-mediator reissue` has re-signed every certificate it signed
//! and writes `withdrawn/<kid>.reissued`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::{Algorithm, Signer, SigningIdentity};

/// The private key: PKCS#8 PEM, P-256.
pub const KEY_FILE: &str = "dsc-key.pem";
/// The self-signed DSC: X.509 PEM.
pub const CERT_FILE: &str = "dsc-cert.pem";
/// HCERT DSC extended key usage "may sign vaccination certificates" (HCERT 1.0.8 §5.1.1).
pub const EKU_VACCINATION: &[u64] = &[1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2];
/// Directory of withdrawn DSCs, inside the key directory.
pub const WITHDRAWN_DIR: &str = "withdrawn";
/// DSC validity when created: 2 years, as SMART Trust recommends for DSCs.
pub const DSC_VALIDITY_DAYS: i64 = 730;

/// Subject of a newly created DSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DscSubject {
    /// ISO 3166-1 alpha-2 (subject C).
    pub country: String,
    /// Subject CN.
    pub common_name: String,
}

impl DscSubject {
    /// The subject of a development DSC for `country` (alpha-2, e.g. the configured issuer country).
    pub fn development(country: &str) -> Self {
        DscSubject {
            country: country.to_string(),
            common_name: format!("ddcc-mediator development DSC {country}"),
        }
    }
}

/// Subject of the self-signed development DSC of the local signer. "XX" (user-assigned in ISO 3166)
/// marks a development DSC of no country when no issuer country is configured.
pub fn development_subject(issuer_country: Option<&str>) -> DscSubject {
    DscSubject::development(issuer_country.unwrap_or("XX"))
}

/// A P-256 key on local disk that signs as ES256.
pub struct LocalSigner {
    identity: Arc<SigningIdentity>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("dir", &self.dir)
            .field("kid", &hex::encode(self.identity.kid))
            .finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// Opens the key and DSC in `dir`, creating both (and `dir`) when neither exists.
    pub fn open_or_create(dir: &Path, subject: &DscSubject) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        match (key_path.exists(), cert_path.exists()) {
            (false, false) => create(dir, subject)?,
            (true, true) => {}
            (key, _) => {
                let (present, missing) = if key {
                    (&key_path, &cert_path)
                } else {
                    (&cert_path, &key_path)
                };
                return Err(Error::Config(format!(
                    "key directory is incomplete: {} exists but {} does not; restore it or remove \
                     both to create a new development key",
                    present.display(),
                    missing.display()
                )));
            }
        }
        Self::open(dir)
    }

    /// Opens an existing key directory; never creates anything.
    pub fn open(dir: &Path) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let key_pem = fs::read(&key_path)
            .map_err(|e| Error::io(format!("reading {}", key_path.display()), e))?;
        let cert_pem = fs::read(&cert_path)
            .map_err(|e| Error::io(format!("reading {}", cert_path.display()), e))?;
        let key_block = pem::parse(&key_pem)
            .ok()
            .filter(|p| p.tag() == "PRIVATE KEY")
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} is not a PKCS#8 PEM private key",
                    key_path.display()
                ))
            })?;
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key_block.contents(), &rng)
                .map_err(|e| {
                    Error::Config(format!("{} is not a P-256 key: {e}", key_path.display()))
                })?;
        let dsc = Dsc::from_pem_or_der(&cert_pem)
            .map_err(|e| Error::Config(format!("{}: {e}", cert_path.display())))?;
        if dsc.alg() != Algorithm::ES256 || dsc.public_key() != key.public_key().as_ref() {
            return Err(Error::Config(format!(
                "{} does not certify the key in {}",
                cert_path.display(),
                key_path.display()
            )));
        }
        let identity = SigningIdentity::from_dsc(Algorithm::ES256, dsc.der().to_vec(), 1)?;
        Ok(LocalSigner {
            identity: Arc::new(identity),
            key,
            rng,
            dir: dir.to_path_buf(),
        })
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the DSC (PEM), e.g. to hand to a verifier.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    fn sign_now(&self, identity: &SigningIdentity, tbs: &[u8]) -> Result<Vec<u8>> {
        // A withdrawal by `keys withdraw` while this process runs: no new signature with that key.
        if withdrawn_path(&self.dir, &identity.kid).exists() {
            return Err(Error::Unavailable {
                service: "signer",
                reason: format!(
                    "signing key {} was withdrawn; restart to sign with the new key",
                    hex::encode(identity.kid)
                ),
            });
        }
        if identity.kid != self.identity.kid {
            return Err(Error::Internal(format!(
                "local signer asked to sign for kid {}, holds {}",
                hex::encode(identity.kid),
                hex::encode(self.identity.kid)
            )));
        }
        let sig = self
            .key
            .sign(&self.rng, tbs)
            .map_err(|_| Error::Internal("ECDSA signing failed".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}

impl Signer for LocalSigner {
    fn current(&self) -> Arc<SigningIdentity> {
        Arc::clone(&self.identity)
    }

    fn is_development(&self) -> bool {
        true
    }

    fn sign(
        &self,
        identity: &SigningIdentity,
        tbs: &[u8],
    ) -> impl std::future::Future<Output = Result<Vec<u8>>> + Send {
        let result = self.sign_now(identity, tbs);
        async move { result }
    }
}

/// A withdrawn DSC of a key directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub kid: [u8; 8],
    pub dsc_der: Vec<u8>,
    /// Every certificate it signed was re-signed (`reissue` finished): no longer published.
    pub reissued: bool,
}

fn withdrawn_path(dir: &Path, kid: &[u8; 8]) -> PathBuf {
    dir.join(WITHDRAWN_DIR)
        .join(format!("{}.pem", hex::encode(kid)))
}

fn reissued_path(dir: &Path, kid: &[u8; 8]) -> PathBuf {
    dir.join(WITHDRAWN_DIR)
        .join(format!("{}.reissued", hex::encode(kid)))
}

/// The withdrawn DSCs of the key directory `dir` (none when nothing was withdrawn).
pub fn withdrawn(dir: &Path) -> Result<Vec<Withdrawn>> {
    let wdir = dir.join(WITHDRAWN_DIR);
    let entries = match fs::read_dir(&wdir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", wdir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io(format!("reading {}", wdir.display()), e))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let pem =
            fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let dsc = Dsc::from_pem_or_der(&pem)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let kid = crate::signer::kid_of(dsc.der());
        out.push(Withdrawn {
            kid,
            dsc_der: dsc.der().to_vec(),
            reissued: reissued_path(dir, &kid).exists(),
        });
    }
    out.sort_by_key(|w| w.kid);
    Ok(out)
}

/// Withdraws the key of `kid` (hex) in `dir`: its DSC moves to `withdrawn/`, the private key is deleted,
/// and a new key and DSC are created. Withdrawing a kid already withdrawn changes nothing. Returns the new
/// (or, when already withdrawn, the current) kid.
pub fn withdraw(dir: &Path, kid_hex: &str, subject: &DscSubject) -> Result<[u8; 8]> {
    let mut kid = [0u8; 8];
    hex::decode_to_slice(kid_hex.trim(), &mut kid)
        .map_err(|_| Error::Config(format!("{kid_hex:?} is not a kid (16 hex digits)")))?;
    if withdrawn_path(dir, &kid).exists() {
        return Ok(LocalSigner::open(dir)?.current().kid);
    }
    let current = LocalSigner::open(dir)?;
    if current.current().kid != kid {
        return Err(Error::Config(format!(
            "kid {kid_hex} is not the key of {} (its kid is {})",
            dir.display(),
            hex::encode(current.current().kid)
        )));
    }
    create_private_dir(&dir.join(WITHDRAWN_DIR))?;
    // The record first: from here on nothing signs with this key, even before it is deleted.
    let pem = pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        current.current().dsc_der.clone(),
    ));
    write_new(&withdrawn_path(dir, &kid), pem.as_bytes())?;
    sync_dir(&dir.join(WITHDRAWN_DIR))?;
    for file in [KEY_FILE, CERT_FILE] {
        let path = dir.join(file);
        fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
    }
    create(dir, subject)?;
    Ok(LocalSigner::open(dir)?.current().kid)
}

/// Records that every certificate signed by the withdrawn `kid` was re-signed: its DSC is no longer
/// published.
pub fn mark_reissued(dir: &Path, kid: &[u8; 8]) -> Result<()> {
    let path = reissued_path(dir, kid);
    if path.exists() {
        return Ok(());
    }
    write_new(&path, b"")?;
    sync_dir(&dir.join(WITHDRAWN_DIR))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

/// Generates the key and a self-signed DSC and writes both (mode 0600).
fn create(dir: &Path, subject: &DscSubject) -> Result<()> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
    };
    let rcgen_err = |e: rcgen::Error| Error::Internal(format!("creating the development DSC: {e}"));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, subject.country.as_str());
    dn.push(DnType::CommonName, subject.common_name.as_str());
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(DSC_VALIDITY_DAYS);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(EKU_VACCINATION.to_vec())];
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut serial)
        .map_err(|_| Error::Internal("no randomness for the DSC serial".into()))?;
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(rcgen_err)?;

    create_private_dir(dir)?;
    write_new(&dir.join(KEY_FILE), key.serialize_pem().as_bytes())?;
    write_new(&dir.join(CERT_FILE), cert.pem().as_bytes())?;
    tracing::warn!(
        dir = %dir.display(),
        "created a DEVELOPMENT signing key and self-signed DSC; certificates signed with it are \
         trusted by nobody else. Use a DSC issued by your national SCA (Vault signer) in production"
    );
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating key directory {}", dir.display()), e))
}

/// Writes a file that must not exist yet, readable by the owner only.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let ctx = || format!("writing {}", path.display());
    let mut file = options.open(path).map_err(|e| Error::io(ctx(), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(ctx(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> DscSubject {
        DscSubject {
            country: "NL".into(),
            common_name: "ddcc-mediator development DSC".into(),
        }
    }

    #[test]
    fn creates_once_then_reopens_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = LocalSigner::open_or_create(&keys, &subject()).unwrap();
        let second = LocalSigner::open_or_create(&keys, &subject()).unwrap();
        assert_eq!(first.current(), second.current());
        let id = first.current();
        assert_eq!(id.alg, Algorithm::ES256);
        assert_eq!(id.not_after - id.not_before, DSC_VALIDITY_DAYS * 24 * 3600);
        #[cfg(unix)]
        for f in [KEY_FILE, CERT_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(keys.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    #[test]
    fn the_dsc_carries_subject_key_usage_and_vaccination_eku() {
        use der::Decode;
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalSigner::open_or_create(dir.path(), &subject()).unwrap();
        let cert = x509_cert::Certificate::from_der(&signer.current().dsc_der).unwrap();
        let subject = cert.tbs_certificate.subject.to_string();
        assert!(subject.contains("C=NL"), "{subject}");
        assert!(
            subject.contains("CN=ddcc-mediator development DSC"),
            "{subject}"
        );
        let exts = cert.tbs_certificate.extensions.unwrap_or_default();
        let eku = exts
            .iter()
            .find(|e| e.extn_id.to_string() == "2.5.29.37")
            .expect("EKU extension");
        let eku =
            x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).unwrap();
        assert_eq!(eku.0[0].to_string(), "1.3.6.1.4.1.1847.2021.1.2");
        let ku = exts
            .iter()
            .find(|e| e.extn_id.to_string() == "2.5.29.15")
            .expect("key usage extension");
        let ku = x509_cert::ext::pkix::KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
        assert!(ku.digital_signature());
    }

    #[test]
    fn signatures_verify_with_the_dsc() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalSigner::open_or_create(dir.path(), &subject()).unwrap();
        let id = signer.current();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sig = rt.block_on(signer.sign(&id, b"to be signed")).unwrap();
        assert_eq!(sig.len(), 64);
        let dsc = Dsc::from_der(&id.dsc_der).unwrap();
        dsc.verify_signature(Algorithm::ES256, b"to be signed", &sig)
            .unwrap();
        assert!(dsc
            .verify_signature(Algorithm::ES256, b"something else", &sig)
            .is_err());
    }

    #[test]
    fn never_replaces_incomplete_corrupt_or_mismatching_files() {
        let dir = tempfile::tempdir().unwrap();
        LocalSigner::open_or_create(dir.path(), &subject()).unwrap();
        let cert = fs::read(dir.path().join(CERT_FILE)).unwrap();

        // Missing certificate: an error, and the key stays untouched.
        let key_before = fs::read(dir.path().join(KEY_FILE)).unwrap();
        fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let err = LocalSigner::open_or_create(dir.path(), &subject()).unwrap_err();
        assert!(err.to_string().contains("incomplete"), "{err}");
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), key_before);

        // A certificate of another key.
        let other = tempfile::tempdir().unwrap();
        LocalSigner::open_or_create(other.path(), &subject()).unwrap();
        fs::copy(other.path().join(CERT_FILE), dir.path().join(CERT_FILE)).unwrap();
        let err = LocalSigner::open_or_create(dir.path(), &subject()).unwrap_err();
        assert!(err.to_string().contains("does not certify"), "{err}");

        // A corrupt key.
        fs::write(dir.path().join(CERT_FILE), &cert).unwrap();
        fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
        assert!(LocalSigner::open_or_create(dir.path(), &subject()).is_err());
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), b"not a key");
    }
}
