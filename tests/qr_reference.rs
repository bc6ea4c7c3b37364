//! Our QR symbols, module for module, against an independent encoder: Project Nayuki's `qrcodegen`
//! (PyPI `qrcodegen`, a reference implementation of ISO/IEC 18004 by its author's account), asked for
//! the same thing: one alphanumeric segment, level Q, smallest version, mask chosen by penalty.
//! Agreement on every module means the same version, error correction, placement *and* mask choice.

use std::io::Write;
use std::process::{Command, Stdio};

use ddcc_mediator::render::qr;

mod support;

const NAYUKI: &str = r#"
import json, sys
from qrcodegen import QrCode, QrSegment
out = []
for text in json.load(sys.stdin):
    code = QrCode.encode_segments([QrSegment.make_alphanumeric(text)], QrCode.Ecc.QUARTILE, boostecl=False)
    out.append(["".join("1" if code.get_module(x, y) else "0" for x in range(code.get_size()))
                for y in range(code.get_size())])
print(json.dumps(out))
"#;

fn shared(rel: &str) -> String {
    let path = support::shared_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn every_module_matches_nayukis_reference_encoder() {
    let mut payloads = vec![
        shared("examples/hc1-who-from-existingDDCCDoc.txt"),
        shared("examples/hc1-dcc-from-existingDDCCDoc.txt"),
    ];
    // Short to long, so many versions and all eight masks get chosen somewhere.
    let alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    for n in [1, 7, 25, 60, 130, 300, 555, 800, 1200, 1900, 2420] {
        let text: String = alphabet.chars().cycle().skip(n % 45).take(n).collect();
        payloads.push(text);
    }

    let mut child = Command::new("python3")
        .args(["-c", NAYUKI])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&payloads).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "qrcodegen failed (scripts/install-test-deps installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();

    for (text, expected) in payloads.iter().zip(&theirs) {
        let ours: Vec<String> = qr::encode(text)
            .unwrap()
            .rows()
            .map(|row| {
                row.iter()
                    .map(|&m| if m == 1 { '1' } else { '0' })
                    .collect()
            })
            .collect();
        assert_eq!(
            ours.len(),
            expected.len(),
            "size for {} characters",
            text.len()
        );
        let differing = ours.iter().zip(expected).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{differing} rows differ for {} characters",
            text.len()
        );
    }
}
