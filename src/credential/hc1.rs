//! Transport encoding of a signed certificate (HCERT §4): zlib → Base45 (RFC 9285) → `HC1:` prefix,
//! and back.

use miniz_oxide::inflate::TINFLStatus;

use crate::credential::verify::{Failure, Stage};
use crate::deflate::{self, Effort};
use crate::error::Result;

/// Context identifier of HCERT version 1.
pub const PREFIX: &str = "HC1:";

/// Largest inflated COSE accepted when decoding. A QR code holds at most 4296 alphanumeric characters
/// (under 3 KB of zlib data); this bound stops a zlib bomb without limiting any real certificate.
pub const MAX_INFLATED_LEN: usize = 1 << 20;

/// `HC1:` + base45(zlib(cose)), compressed as hard as [`deflate`] can (never longer than zlib's level
/// 9, tested below): every byte saved shrinks the QR.
pub fn encode(cose: &[u8]) -> Result<String> {
    let compressed = deflate::zlib(cose, Effort::Best);
    Ok(format!("{PREFIX}{}", base45::encode(compressed)))
}

/// The COSE bytes inside an `HC1:` string; the error names the stage that failed.
pub fn decode(hc1: &str) -> std::result::Result<Vec<u8>, Failure> {
    let body = hc1
        .strip_prefix(PREFIX)
        .ok_or_else(|| Failure::new(Stage::Prefix, format!("does not start with {PREFIX}")))?;
    let compressed = base45::decode(body)
        .map_err(|e| Failure::new(Stage::Base45, format!("invalid Base45: {e:?}")))?;
    // Into one growing buffer that is also the window: no 32 KiB inflate state per call.
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&compressed, MAX_INFLATED_LEN).map_err(
        |e| match e.status {
            TINFLStatus::HasMoreOutput => Failure::new(
                Stage::Zlib,
                format!("inflates to more than {MAX_INFLATED_LEN} bytes"),
            ),
            _ => Failure::new(Stage::Zlib, format!("invalid zlib data: {e}")),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use crate::configuration::IssuanceConfig;
    use crate::credential::core_data_set::tests::eddie_murphy;
    use crate::credential::tests::{run, signer};
    use crate::domain::{Code, Country, FhirDate, NonEmpty, PositiveInt, Producer};
    use crate::signer::Signer;

    /// The team's reference data (`../shared`, or `DDCC_SHARED_DIR`).
    fn shared() -> PathBuf {
        std::env::var_os("DDCC_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
    }

    /// The COSE bytes of the EU DCC test vectors (their `COSE` hex, or their HC1 text) and of the WHO
    /// examples' HC1 texts.
    fn shared_payloads() -> Vec<Vec<u8>> {
        fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for path in entries {
                let name = path.to_string_lossy();
                if path.is_dir() {
                    walk(&path, out);
                } else if name.ends_with(".json") {
                    let Ok(json) =
                        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap())
                    else {
                        continue;
                    };
                    let from_hex = json["COSE"].as_str().and_then(|h| hex::decode(h).ok());
                    let from_hc1 = || json["PREFIX"].as_str().and_then(|t| decode(t).ok());
                    out.extend(from_hex.or_else(from_hc1));
                } else if name.ends_with(".hc1") || name.ends_with(".txt") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    out.extend(decode(text.trim()).ok());
                }
            }
        }
        let mut out = Vec::new();
        walk(&shared().join("vectors"), &mut out);
        walk(&shared().join("examples"), &mut out);
        out
    }

    fn code(system: &str, c: &str) -> Code {
        Code {
            system: Some(system.into()),
            code: NonEmpty::parse(c).unwrap(),
            display: None,
        }
    }

    /// The COSE payloads this pipeline signs for `n` varied events: names in several scripts and
    /// lengths, dates, lots, doses, countries, with and without an EU DCC, under both hcert keys.
    fn pipeline_payloads(n: usize) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let now = signer.current().not_before + 10;
        let names = [
            "Eddie Murphy",
            "Zoë Ångström-Durand",
            "Jan de Vries",
            "Maria José da Silva Santos",
            "Nguyễn Thị Minh Khai",
            "محمد بن عبد الله",
            "奥卢斯·阿杰里乌斯",
            "Li Wei",
            "Aleksandr Sergeyevich Pushkin-Gannibal",
            "O'Brien Siobhán",
            "Kwame Nkrumah",
            "Ana",
        ];
        let countries = [
            "USA", "NLD", "DEU", "FRA", "BRA", "IND", "KEN", "PHL", "ZAF", "EST",
        ];
        let mut payloads = Vec::new();
        for i in 0..n {
            let mut e = eddie_murphy();
            e.holder.name = NonEmpty::parse(names[i % names.len()]).unwrap();
            e.holder.birth_date = FhirDate::parse(&format!(
                "19{:02}-{:02}-{:02}",
                30 + i % 70,
                1 + i % 12,
                1 + i % 28
            ));
            e.holder.identifier = NonEmpty::parse(&format!("ID-{}", 1_000_003 * (i + 7)));
            let date = format!(
                "202{}-{:02}-{:02}",
                1 + i % 4,
                1 + (i * 5) % 12,
                1 + (i * 3) % 28
            );
            e.vaccination.date = FhirDate::parse(&date).unwrap();
            e.vaccination.lot = NonEmpty::parse(&format!("L{}X{}", i * 37 % 9973, i % 7)).unwrap();
            e.vaccination.dose = PositiveInt::new(1 + (i % 3) as i64).unwrap();
            e.vaccination.country = Country::from_alpha3(countries[i % countries.len()]).unwrap();
            e.certificate.hcid = NonEmpty::parse(&format!("{}", 111_000_111 + i * 7919)).unwrap();
            if i % 2 == 0 {
                // EU-mappable codes: an EU DCC is signed too.
                let icd11 = crate::credential::dcc::mapping::ICD11;
                e.vaccination.vaccine = code(icd11, "XM0GQ8");
                e.vaccination.brand = code(icd11, "XM8NQ0");
                e.vaccination.disease = Some(code(icd11, "RA01"));
                e.vaccination.producer = Producer::Manufacturer(code(
                    crate::credential::dcc::mapping::EMA_ORGANISATIONS,
                    "ORG-100030215",
                ));
            }
            let config = IssuanceConfig {
                ddcc_hcert_key: if i % 4 == 1 { 1 } else { 3 },
                ..Default::default()
            };
            let issued = run(crate::credential::issue(&e, &config, &signer, now)).unwrap();
            payloads.push(fixed(&decode(&issued.ddcc.hc1).unwrap()));
            if let Ok(dcc) = issued.dcc {
                payloads.push(fixed(&decode(&dcc.hc1).unwrap()));
            }
        }
        payloads
    }

    /// `cose` with what changes from one run to the next made the same on every run: the kid and the
    /// signature (a fresh development key, ECDSA's random nonce) and `iat`/`exp` (that key's creation
    /// time). Otherwise a payload's length against zlib's is a coin toss on random bytes, and the test
    /// below failed about once in twenty runs by one byte.
    fn fixed(cose: &[u8]) -> Vec<u8> {
        use coset::TaggedCborSerializable as _;
        use sha2::{Digest, Sha512};
        let mut sign1 = coset::CoseSign1::from_tagged_slice(cose).unwrap();
        sign1.protected = coset::ProtectedHeader {
            original_data: None,
            header: coset::HeaderBuilder::new()
                .algorithm(coset::iana::Algorithm::ES256)
                .key_id(vec![0x5a; 8])
                .build(),
        };
        let mut claims: ciborium::Value =
            ciborium::from_reader(sign1.payload.as_deref().unwrap()).unwrap();
        for (key, value) in claims.as_map_mut().unwrap() {
            // CWT claims 4 (exp) and 6 (iat), RFC 8392.
            match key.as_integer().map(i128::from) {
                Some(4) => *value = ciborium::Value::Integer(1_900_000_000.into()),
                Some(6) => *value = ciborium::Value::Integer(1_800_000_000.into()),
                _ => {}
            }
        }
        let mut payload = Vec::new();
        ciborium::into_writer(&claims, &mut payload).unwrap();
        sign1.signature = Sha512::digest(&payload).to_vec();
        sign1.payload = Some(payload);
        sign1.to_tagged_vec().unwrap()
    }

    fn level_9(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn never_longer_than_zlib_level_9_on_real_payloads() {
        let shared = shared_payloads();
        assert!(shared.len() >= 50, "{} payloads in shared/", shared.len());
        let ours = pipeline_payloads(160);
        assert!(ours.len() >= 200, "{} payloads signed", ours.len());
        let (mut sum_ours, mut sum_9) = (0usize, 0usize);
        let (mut min_delta, mut max_delta) = (i64::MAX, i64::MIN);
        for (i, cose) in shared.iter().chain(&ours).enumerate() {
            let hc1 = encode(cose).unwrap();
            assert_eq!(&decode(&hc1).unwrap(), cose, "payload {i}");
            let z = base45::decode(&hc1[PREFIX.len()..]).unwrap();
            let nine = level_9(cose);
            assert!(
                z.len() <= nine.len(),
                "payload {i}: {} > {} bytes",
                z.len(),
                nine.len()
            );
            sum_ours += z.len();
            sum_9 += nine.len();
            let delta = z.len() as i64 - nine.len() as i64;
            (min_delta, max_delta) = (min_delta.min(delta), max_delta.max(delta));
        }
        let n = shared.len() + ours.len();
        println!(
            "{n} payloads: mean {:.1} bytes (zlib 9: {:.1}); ours − zlib 9 from {min_delta} to {max_delta}",
            sum_ours as f64 / n as f64,
            sum_9 as f64 / n as f64
        );
    }

    #[test]
    fn round_trip_at_best_compression() {
        let cose: Vec<u8> = (0..2000u32).map(|i| (i % 7) as u8).collect();
        let hc1 = encode(&cose).unwrap();
        assert!(hc1.starts_with("HC1:"));
        // Base45 uses only the QR alphanumeric set.
        assert!(hc1[4..]
            .bytes()
            .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)));
        // zlib header 78 DA = best compression.
        let z = base45::decode(&hc1[4..]).unwrap();
        assert_eq!(&z[..2], &[0x78, 0xda]);
        assert_eq!(decode(&hc1).unwrap(), cose);
    }

    #[test]
    fn failures_name_their_stage() {
        assert_eq!(decode("HC2:6BFOXN").unwrap_err().stage, Stage::Prefix);
        assert_eq!(decode("HC1:~~~").unwrap_err().stage, Stage::Base45);
        let not_zlib = format!("HC1:{}", base45::encode(b"plain bytes"));
        assert_eq!(decode(&not_zlib).unwrap_err().stage, Stage::Zlib);
    }

    #[test]
    fn refuses_a_zlib_bomb() {
        let huge = vec![0u8; MAX_INFLATED_LEN + 10];
        let hc1 = encode(&huge).unwrap();
        let failure = decode(&hc1).unwrap_err();
        assert_eq!(failure.stage, Stage::Zlib);
        assert!(failure.message.contains("more than"), "{}", failure.message);
        // Exactly the bound still inflates; a stream cut short does not.
        let at_bound = vec![0u8; MAX_INFLATED_LEN];
        assert_eq!(decode(&encode(&at_bound).unwrap()).unwrap(), at_bound);
        let z = deflate::zlib(b"a certificate", Effort::Best);
        let cut = format!("{PREFIX}{}", base45::encode(&z[..z.len() - 3]));
        assert_eq!(decode(&cut).unwrap_err().stage, Stage::Zlib);
    }
}
