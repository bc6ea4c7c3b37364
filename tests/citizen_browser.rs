//! The citizen pages in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/browser/citizen.mjs`) against a running `serve`. It opens the holder's page on a phone-sized
//! screen, downloads the PDF and a QR image, uploads that image on the check page and reads the verdict,
//! pastes a forged certificate, and runs axe-core on both pages. Screenshots and downloads are kept in
//! `target/browser-artefacts/`. Needs `scripts/install-test-deps` (chromium, tests/browser/node_modules).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::service::{event, hc1_of, Service};

fn artefact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(tool: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("`{tool}` could not run ({e}): run scripts/install-test-deps ({package})")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_citizen_opens_downloads_and_checks_a_certificate_in_chromium() {
    let service = Service::start(&[
        ("DDCC_DOWNLOAD_RATE", "off".into()),
        (
            "DDCC_ISSUER_NAME",
            "Office fédéral de la santé publique".into(),
        ),
    ]);
    let key = service.api_key();
    let issued = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("BROWSER-0001", &[]),
    );
    assert_eq!(issued.status, 201);
    let document = issued.json();
    let hc1 = hc1_of(&document, "who");
    let pdf_link = document["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = pdf_link.rsplit('/').nth(1).unwrap().to_owned();
    let mut forged: Vec<char> = hc1.chars().collect();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == '0' { '1' } else { '0' };
    let forged: String = forged.into_iter().collect();

    let dir = artefact_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/citizen.mjs");
    let out = run(
        "node",
        "nodejs, tests/browser: npm ci",
        &[
            script.to_str().unwrap(),
            &service.url,
            &token,
            dir.to_str().unwrap(),
            &forged,
        ],
    );
    let result: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the browser script printed no result ({e}): {out}"));
    std::fs::write(dir.join("result.json"), &out).unwrap();

    // The holder's page: personal, never cached, strict policy, nothing from elsewhere.
    assert_eq!(result["pageStatus"], 200, "{result}");
    let headers = &result["pageHeaders"];
    assert_eq!(headers["cache-control"], "private, no-store");
    assert!(headers["content-security-policy"]
        .as_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(result["cspViolations"], serde_json::json!([]), "{result}");
    assert_eq!(result["foreignRequests"], serde_json::json!([]), "{result}");
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    assert!(
        result["developmentKey"]
            .as_str()
            .is_some_and(|t| t.contains("Development key")),
        "signed with the development key, and the page says so: {result}"
    );
    let summary = result["summary"].as_str().unwrap();
    assert!(summary.contains("Date of birth"), "{summary}");
    // Country and issuer by name, not by code.
    assert!(summary.contains("Switzerland"), "{summary}");
    assert!(
        summary.contains("Office fédéral de la santé publique"),
        "{summary}"
    );
    let images = result["images"].as_array().unwrap();
    assert!(!images.is_empty(), "{result}");
    assert!(images.iter().all(|i| i["loaded"] == true), "{result}");

    // The PDF arrived through the browser's download, and both scanners read it.
    let pdf = PathBuf::from(result["downloads"]["certificate.pdf"].as_str().unwrap());
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let prefix = dir.join("certificate-raster");
    run(
        "pdftoppm",
        "poppler-utils",
        &[
            "-r",
            "200",
            "-png",
            "-singlefile",
            pdf.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let scanned = run(
        "zbarimg",
        "zbar-tools",
        &["--raw", "-q", &format!("{}.png", prefix.display())],
    );
    assert!(
        scanned.lines().any(|l| l == hc1),
        "the DDCC QR scans from the downloaded PDF: {scanned}"
    );

    // Signed by serve's development key: the PDF says so, on the page and in its title (and nothing
    // personal is in its metadata).
    let info = run("pdfinfo", "poppler-utils", &[pdf.to_str().unwrap()]);
    assert!(info.contains("DEVELOPMENT KEY"), "{info}");
    assert!(!info.contains("Ångström"), "{info}");
    let text = run("pdftotext", "poppler-utils", &[pdf.to_str().unwrap(), "-"]);
    assert!(text.contains("DEVELOPMENT KEY"), "{text}");
    assert!(
        text.contains("Office fédéral de la santé publique"),
        "{text}"
    );
    assert!(bytes.len() < 150 * 1024, "{} bytes", bytes.len());

    // The uploaded QR image is valid; the pasted forgery is not.
    let upload = result["uploadVerdict"].as_str().unwrap();
    assert!(upload.contains("Valid certificate"), "{upload}");
    assert!(
        upload.contains("Revoked\nno") || upload.contains("Revoked\tno"),
        "{upload}"
    );
    let paste = result["pasteVerdict"].as_str().unwrap();
    assert!(paste.contains("Not valid"), "{paste}");

    // Accessibility: no serious or critical axe-core violation on either page.
    for (page, violations) in result["axe"].as_object().unwrap() {
        let serious: Vec<&Value> = violations
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(serious.is_empty(), "{page}: {serious:?}");
    }
    for shot in [
        "certificate-page.png",
        "check-valid.png",
        "check-forged.png",
    ] {
        assert!(dir.join(shot).is_file(), "screenshot {shot} kept");
    }
}

#[test]
fn personal_pages_are_private_and_unknown_tokens_are_bare_404s() {
    let service = Service::start(&[("DDCC_DOWNLOAD_RATE", "off".into())]);
    let unknown = service.get(&format!("/certificates/{}", "0".repeat(64)), None);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body, b"not found\n");
    let check = service.get("/check", None);
    assert_eq!(check.status, 200);
    assert!(check
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let html = String::from_utf8(check.body).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );
    assert_eq!(service.get("/assets/check.js", None).status, 200);
    assert_eq!(service.get("/assets/citizen.css", None).status, 200);
}
