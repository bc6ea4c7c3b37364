//! The citizen PDF, checked the way a person and a verifier meet it: rasterised at 200 and 150 dpi and
//! scanned with independent QR decoders (zbar, rqrr), its text extracted with poppler, its fonts and metadata
//! inspected. Needs the Debian packages poppler-utils and zbar-tools; a missing tool fails the test.

mod support;

use std::path::PathBuf;
use std::process::Command;

use ddcc_mediator::domain::{
    CertificateInfo, Code, Country, FhirDate, Holder, NonEmpty, PositiveInt, Producer, Sex,
    Vaccination, VaccinationEvent,
};
use ddcc_mediator::render::pdf::{
    certificate_pdf, IssueDates, Labels, Language, Paper, PdfOptions, PdfQr, QrKind,
};
use ddcc_mediator::render::qr;
use serde_json::Value;

/// The team's reference data (`../shared`, or `DDCC_SHARED_DIR`).
fn shared() -> PathBuf {
    support::shared_dir()
}

/// The IG 1.0.0 example QuestionnaireResponses, one per language, each printed with that language's
/// built-in labels.
const LANGUAGES: [(&str, &str, Language); 6] = [
    ("English", "Example", Language::English),
    ("Arabic", "Arabic", Language::Arabic),
    ("Chinese", "Chinese", Language::Chinese),
    ("French", "French", Language::French),
    ("Russian", "Russian", Language::Russian),
    ("Spanish", "Spanish", Language::Spanish),
];

/// linkId → first answer of a QuestionnaireResponse.
fn answers(suffix: &str) -> std::collections::HashMap<String, Value> {
    let path = shared().join(format!(
        "vectors/ddcc/ig-1.0.0/QuestionnaireResponse-DDCCVSQuestionnaireResponse{suffix}.json"
    ));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = std::collections::HashMap::new();
    for item in json["item"].as_array().unwrap() {
        if let Some(a) = item["answer"].get(0) {
            out.insert(item["linkId"].as_str().unwrap().to_owned(), a.clone());
        }
    }
    out
}

/// The event the example describes (built directly: intake is another module's concern).
fn event(suffix: &str) -> VaccinationEvent {
    let a = answers(suffix);
    let s = |k: &str| a[k]["valueString"].as_str().unwrap().to_owned();
    let ne = |k: &str| NonEmpty::parse(&s(k)).unwrap();
    let d = |k: &str| FhirDate::parse(a[k]["valueDate"].as_str().unwrap()).unwrap();
    let n = |k: &str| PositiveInt::new(a[k]["valueInteger"].as_i64().unwrap()).unwrap();
    let code = |k: &str| {
        let c = &a[k]["valueCoding"];
        Code {
            system: c["system"].as_str().map(str::to_owned),
            code: NonEmpty::parse(c["code"].as_str().unwrap()).unwrap(),
            display: c["display"].as_str().map(str::to_owned),
        }
    };
    VaccinationEvent {
        holder: Holder {
            name: ne("name"),
            birth_date: Some(d("birthDate")),
            identifier: Some(ne("identifier")),
            sex: Sex::parse(a["sex"]["valueCoding"]["code"].as_str().unwrap()),
        },
        vaccination: Vaccination {
            vaccine: code("vaccine"),
            brand: code("brand"),
            producer: Producer::Both {
                manufacturer: code("manufacturer"),
                ma_holder: code("ma_holder"),
            },
            lot: ne("lot"),
            date: d("date"),
            valid_from: Some(d("vaccine_valid")),
            dose: n("dose"),
            total_doses: Some(n("total_doses")),
            country: Country::from_alpha3(a["country"]["valueCoding"]["code"].as_str().unwrap())
                .unwrap(),
            centre: ne("centre"),
            health_worker: Some(ne("hw")),
            disease: Some(code("disease")),
            next_dose: Some(d("due_date")),
        },
        certificate: CertificateInfo {
            issuer: ne("pha"),
            hcid: ne("hcid"),
            valid_from: Some(d("valid_from")),
            valid_until: Some(d("valid_until")),
        },
        version: Default::default(),
        language: None,
    }
}

/// The two real HC1 strings of the WHO reference mediator's stored document (DDCC 1 252, EU DCC 802
/// characters).
fn hc1_payloads() -> (String, String) {
    let read = |f: &str| {
        std::fs::read_to_string(shared().join("examples").join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    (
        read("hc1-who-from-existingDDCCDoc.txt"),
        read("hc1-dcc-from-existingDDCCDoc.txt"),
    )
}

fn dates(e: &VaccinationEvent) -> IssueDates {
    IssueDates {
        issued: e.vaccination.date.full().unwrap(),
        valid_from: e.certificate.valid_from.unwrap().full().unwrap(),
        valid_until: e.certificate.valid_until.and_then(FhirDate::full),
    }
}

fn render(e: &VaccinationEvent, paper: Paper, language: Language) -> Vec<u8> {
    let (ddcc, dcc) = hc1_payloads();
    let (ddcc, dcc) = (qr::encode(&ddcc).unwrap(), qr::encode(&dcc).unwrap());
    let qrs = [
        PdfQr {
            kind: QrKind::Who,
            symbol: &ddcc,
        },
        PdfQr {
            kind: QrKind::Dcc,
            symbol: &dcc,
        },
    ];
    let options = PdfOptions {
        paper,
        labels: language.labels(),
        language,
        development_key: false,
        issuer_name: None,
    };
    certificate_pdf(e, &qrs, &dates(e), &options).unwrap()
}

/// Runs a poppler/zbar tool; a missing tool fails with the package to install.
fn run(tool: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("`{tool}` could not run ({e}): install the Debian package {package}")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_ig_language_renders_scannable_qrs_and_its_own_script() {
    let dir = tempfile::tempdir().unwrap();
    // DDCC_PDF_OUT=/some/dir keeps the PDFs and rasters for a person to look at.
    let keep = std::env::var_os("DDCC_PDF_OUT").map(PathBuf::from);
    let (ddcc, dcc) = hc1_payloads();
    for (language, suffix, built_in) in LANGUAGES {
        let e = event(suffix);
        let pdf = render(&e, Paper::A4, built_in);
        let path = dir.path().join(format!("{language}.pdf"));
        std::fs::write(&path, &pdf).unwrap();
        let pdf_path = path.to_str().unwrap();
        assert!(pdf.len() < 150 * 1024, "{language}: {} bytes", pdf.len());
        if let Some(keep) = &keep {
            std::fs::create_dir_all(keep).unwrap();
            std::fs::write(keep.join(format!("{language}.pdf")), &pdf).unwrap();
        }

        // Rasterise at 200 and 150 dpi and scan with zbar: both payloads come back exactly.
        for dpi in [200, 150] {
            let prefix = dir.path().join(format!("{language}-{dpi}"));
            run(
                "pdftoppm",
                "poppler-utils",
                &[
                    "-r",
                    &dpi.to_string(),
                    "-png",
                    "-singlefile",
                    pdf_path,
                    prefix.to_str().unwrap(),
                ],
            );
            let png = format!("{}.png", prefix.display());
            if let Some(keep) = &keep {
                std::fs::copy(&png, keep.join(format!("{language}-{dpi}.png"))).unwrap();
            }
            let scanned = run("zbarimg", "zbar-tools", &["--raw", "-q", &png]);
            let mut found: Vec<&str> = scanned.lines().filter(|l| !l.is_empty()).collect();
            found.sort();
            let mut expected = vec![ddcc.as_str(), dcc.as_str()];
            expected.sort();
            assert_eq!(
                found, expected,
                "{language}: QR codes scanned from the {dpi} dpi raster"
            );
            assert_printed_size_and_quiet_zone(&png, dpi as f32, &expected, language);
        }

        // The text layer has the holder's name and the centre in their own script, exactly as typed:
        // for Arabic this holds because glyphs are drawn in visual order with a /ToUnicode entry each, and
        // poppler reverses a right-to-left line back into logical order (it wraps it in U+202B … U+202C).
        let text = run(
            "pdftotext",
            "poppler-utils",
            &["-enc", "UTF-8", pdf_path, "-"],
        );
        let name = e.holder.name.as_str();
        let centre = e.vaccination.centre.as_str();
        for value in [name, centre] {
            assert!(
                text.contains(value),
                "{language}: {value:?} not in the extracted text:\n{text}"
            );
        }
        for date in ["2003-03-03", "2021-04-05", "2021-04-28", "2022-04-05"] {
            // Exactly as written, also on the Arabic page where a date follows an Arabic word
            // ("2021-04-05 إلى 2022-04-05"): the dates are left-to-right isolates, drawn 2022-04-05 and
            // not 05-04-2022.
            assert!(text.contains(date), "{language}: {date} missing:\n{text}");
        }
        assert!(text.contains(e.certificate.hcid.as_str()));
        // The labels in the certificate's language, each with its English (one language for English).
        let labels = built_in.labels();
        let english = Labels::english();
        // (Arabic labels with a lam-alef ligature, such as "تاريخ الميلاد", are left out: poppler gives
        // the ligature's two letters back in reverse order.)
        for (national, en) in [
            (&labels.title, &english.title),
            (&labels.vaccine, &english.vaccine),
            (&labels.centre, &english.centre),
            (&labels.qr_ddcc, &english.how_to_verify),
        ] {
            for label in [national, en] {
                assert!(
                    text.contains(label.as_str()),
                    "{language}: label {label:?} not in the extracted text:\n{text}"
                );
            }
        }
        if built_in != Language::English {
            assert_ne!(labels.title, english.title, "{language}: translated");
        }
        assert!(
            !text.contains("DEVELOPMENT KEY"),
            "{language}: not a development key"
        );
        // The country by name, with the code a border officer can check.
        let country = e.vaccination.country.alpha3();
        assert!(
            // On a right-to-left page poppler extracts the line as right to left and mirrors brackets.
            text.contains(&format!("({country})"))
                || (built_in.is_rtl() && text.contains(&format!("){country}("))),
            "{language}: country {country} missing"
        );
        assert!(
            text.contains(ddcc_mediator::codes::iso3166::name_alpha3(country).unwrap_or(country)),
            "{language}: country name missing"
        );

        // Every font is embedded and subset.
        let fonts = run("pdffonts", "poppler-utils", &[pdf_path]);
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert!(!rows.is_empty());
        for row in rows {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // name type encoding emb sub uni object-id
            let n = cols.len();
            assert!(n >= 7, "{row}");
            assert_eq!(
                &cols[n - 5..n - 2],
                ["yes", "yes", "yes"],
                "{language}: font not embedded+subset+unicode: {row}"
            );
        }

        // No personal data in the document information or XMP metadata.
        let info = run("pdfinfo", "poppler-utils", &[pdf_path]);
        let xmp = run("pdfinfo", "poppler-utils", &["-meta", pdf_path]);
        let id = e.holder.identifier.as_ref().unwrap().as_str();
        for secret in [name, "2003-03-03", id, e.certificate.hcid.as_str()] {
            assert!(!info.contains(secret), "{language}: {secret} in pdfinfo");
            assert!(!xmp.contains(secret), "{language}: {secret} in XMP");
        }
        assert!(
            info.lines()
                .any(|l| l.split_whitespace().eq(["Pages:", "1"])),
            "{info}"
        );
        assert!(info.contains("(A4)"), "{info}");
        assert!(
            !info.contains("PDF subtype"),
            "claims no PDF/A or PDF/X conformance: {info}"
        );
        // Nor readable anywhere outside the compressed page content.
        let raw = String::from_utf8_lossy(&pdf);
        assert!(!raw.contains(name) && !raw.contains(id));
    }
}

/// Finds the QR symbols in the raster with a second decoder (rqrr), and checks each is at least 35 mm
/// wide including its quiet zone, and that the 4-module quiet zone around it is blank.
fn assert_printed_size_and_quiet_zone(png: &str, dpi: f32, payloads: &[&str], language: &str) {
    let img = image::open(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img.clone());
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.len(),
        payloads.len(),
        "{language}: rqrr finds every symbol"
    );
    let mut sides_mm = Vec::new();
    for grid in grids {
        let (meta, content) = grid.decode().unwrap();
        assert!(
            payloads.contains(&content.as_str()),
            "{language}: rqrr decodes a payload"
        );
        let modules = meta.version.to_size() as f32;
        let [tl, tr, _, bl] = grid.bounds;
        let px_per_module = (tr.x - tl.x) as f32 / modules;
        let printed_mm = (modules + 8.0) * px_per_module / dpi * 25.4;
        assert!(
            printed_mm >= 35.0,
            "{language}: QR printed {printed_mm:.1} mm wide"
        );
        sides_mm.push(printed_mm);
        // The quiet zone: a band 4 modules wide on every side is white (the band starts 2 px out, past
        // the anti-aliased edge of the outermost modules).
        let qz = (4.0 * px_per_module) as i32 - 1;
        let near = |v: i32, a: i32, b: i32| v > a - 3 && v < b + 3;
        for y in (tl.y - qz)..=(bl.y + qz) {
            for x in (tl.x - qz)..=(tr.x + qz) {
                if near(x, tl.x, tr.x) && near(y, tl.y, bl.y) {
                    continue;
                }
                let v = img.get_pixel(x as u32, y as u32).0[0];
                assert!(v > 200, "{language}: quiet zone pixel ({x}, {y}) is {v}");
            }
        }
    }
    // The codes print at one size whatever their versions (measured here to a pixel or two).
    let (small, large) = sides_mm
        .iter()
        .fold((f32::MAX, 0.0f32), |(s, l), &v| (s.min(v), l.max(v)));
    assert!(
        large <= small * 1.01,
        "{language}: QR codes printed {sides_mm:.1?} mm wide"
    );
}

/// Both QR codes read back from the PDF file itself, without rendering the page as a viewer does: by
/// our own reader (`POST /ddcc/verify`, `verify` of a PDF), and by pypdf in the independent checker,
/// which extracts the page's images (PyMuPDF, its fallback that renders the page, is hidden from it).
#[test]
fn pdf_readers_find_both_qr_images_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ddcc, dcc) = hc1_payloads();
    // Python finds this `fitz` first: the checker's `import fitz` fails and only pypdf is left.
    let hide = dir.path().join("no-pymupdf");
    std::fs::create_dir_all(hide.join("fitz")).unwrap();
    std::fs::write(
        hide.join("fitz/__init__.py"),
        "raise ImportError('hidden by the test')\n",
    )
    .unwrap();
    for (paper, language, suffix) in [
        (Paper::A4, Language::Arabic, "Arabic"),
        (Paper::Letter, Language::English, "Example"),
    ] {
        let pdf = render(&event(suffix), paper, language);
        let found = codes_read_by_our_pdf_reader(&pdf);
        let mut expected = vec![ddcc.clone(), dcc.clone()];
        expected.sort();
        assert_eq!(found, expected, "{paper:?}: our PDF reader");
        assert_eq!(
            ddcc_mediator::credential::verify::hc1_of(&pdf).unwrap(),
            ddcc,
            "{paper:?}: what /ddcc/verify reads"
        );

        let path = dir.path().join(format!("{paper:?}.pdf"));
        std::fs::write(&path, &pdf).unwrap();
        let out = Command::new("python3")
            .arg(shared().join("tools/hc1-verify/verify_hc1.py"))
            .arg(&path)
            .env("PYTHONPATH", &hide)
            .output()
            .expect("python3 (scripts/install-test-deps)");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "hc1-verify printed no JSON report:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        // The first image is the DDCC code; the payload decodes (no --cert: the signature is not checked).
        assert_eq!(report["hc1"], ddcc.as_str(), "{paper:?}: {report}");
        assert!(
            report["result"].as_str().unwrap().starts_with("DECODED"),
            "{report}"
        );
    }
}

/// The QR payloads `credential::pdf_qr` finds in a PDF (its raster, decoded by rqrr), sorted.
fn codes_read_by_our_pdf_reader(pdf: &[u8]) -> Vec<String> {
    let image = ddcc_mediator::credential::pdf_qr::rasterise(pdf).unwrap();
    let mut found: Vec<String> = rqrr::PreparedImage::prepare(image)
        .detect_grids()
        .into_iter()
        .map(|g| g.decode().unwrap().1)
        .collect();
    found.sort();
    found
}

/// A certificate PDF issued before the QR codes were images (each drawn as filled rectangles; stores
/// keep such files) still reads with our reader.
#[test]
fn a_pdf_with_rectangle_qr_codes_still_reads() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let pdf = std::fs::read(data.join("certificate-rectangle-qr.pdf")).unwrap();
    assert!(!String::from_utf8_lossy(&pdf).contains("/XObject"));
    let read = |f: &str| {
        std::fs::read_to_string(data.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut expected = vec![
        read("certificate-rectangle-qr.ddcc.hc1"),
        read("certificate-rectangle-qr.dcc.hc1"),
    ];
    expected.sort();
    let found = codes_read_by_our_pdf_reader(&pdf);
    assert_eq!(found, expected);
}

#[test]
fn us_letter_is_letter_sized_and_still_scans() {
    let dir = tempfile::tempdir().unwrap();
    let e = event("Example");
    let pdf = render(&e, Paper::Letter, Language::Spanish);
    let path = dir.path().join("letter.pdf");
    std::fs::write(&path, &pdf).unwrap();
    if let Some(keep) = std::env::var_os("DDCC_PDF_OUT").map(PathBuf::from) {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("English-letter.pdf"), &pdf).unwrap();
    }
    let info = run("pdfinfo", "poppler-utils", &[path.to_str().unwrap()]);
    assert!(info.contains("612 x 792 pts (letter)"), "{info}");
    let prefix = dir.path().join("letter");
    run(
        "pdftoppm",
        "poppler-utils",
        &[
            "-r",
            "150",
            "-png",
            "-singlefile",
            path.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let scanned = run(
        "zbarimg",
        "zbar-tools",
        &["--raw", "-q", &format!("{}.png", prefix.display())],
    );
    assert_eq!(scanned.lines().filter(|l| !l.is_empty()).count(), 2);
    let (ddcc, dcc) = hc1_payloads();
    assert_printed_size_and_quiet_zone(
        &format!("{}.png", prefix.display()),
        150.0,
        &[&ddcc, &dcc],
        "Letter",
    );
}

#[test]
fn one_payload_coded_displays_and_a_translation() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = event("French");
    e.vaccination.vaccine.display = Some("COVID-19 vaccine, inactivated virus".into());
    let (ddcc, _) = hc1_payloads();
    let options = PdfOptions {
        paper: Paper::A4,
        labels: Labels::from_json(
            r#"{"title": "Certificat de vaccination", "centre": "Centre de vaccination"}"#,
        )
        .unwrap(),
        // An operator's file: printed as it is, with no English beside it.
        language: Language::English,
        // A development key: marked on the page and in the title, in the label's language (English here).
        development_key: true,
        issuer_name: None,
    };
    let symbol = qr::encode(&ddcc).unwrap();
    let qrs = [PdfQr {
        kind: QrKind::Who,
        symbol: &symbol,
    }];
    let pdf = certificate_pdf(&e, &qrs, &dates(&e), &options).unwrap();
    let path = dir.path().join("fr.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = run(
        "pdftotext",
        "poppler-utils",
        &["-enc", "UTF-8", path.to_str().unwrap(), "-"],
    );
    // The display replaces the code; codes without a display print as codes.
    assert!(
        text.contains("COVID-19 vaccine, inactivated virus"),
        "{text}"
    );
    assert!(!text.contains("XM0GQ8"));
    assert!(text.contains("XM8NQ0"));
    assert!(text.contains("Certificat de vaccination"));
    assert!(text.contains("Centre de vaccination"));
    assert!(text.contains("Site de vaccination"));
    // One QR, labelled DDCC (the verification line names both kinds of app).
    assert!(text.lines().any(|l| l.trim() == "DDCC"));
    assert!(!text.lines().any(|l| l.trim() == "EU DCC"));
    let info = run("pdfinfo", "poppler-utils", &[path.to_str().unwrap()]);
    assert!(
        info.contains("Certificat de vaccination"),
        "the title is the translated label"
    );
    assert!(info.contains("DEVELOPMENT KEY"), "{info}");
    assert!(text.contains("DEVELOPMENT KEY"), "{text}");

    let prefix = dir.path().join("fr");
    run(
        "pdftoppm",
        "poppler-utils",
        &[
            "-r",
            "200",
            "-png",
            "-singlefile",
            path.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let scanned = run(
        "zbarimg",
        "zbar-tools",
        &["--raw", "-q", &format!("{}.png", prefix.display())],
    );
    assert_eq!(scanned.trim(), ddcc);
}

#[test]
fn the_number_of_qr_codes_is_one_or_two() {
    let e = event("Example");
    let (ddcc, _) = hc1_payloads();
    let symbol = qr::encode(&ddcc).unwrap();
    let q = PdfQr {
        kind: QrKind::Who,
        symbol: &symbol,
    };
    let options = PdfOptions::default();
    assert!(certificate_pdf(&e, &[], &dates(&e), &options).is_err());
    assert!(certificate_pdf(&e, &[q, q, q], &dates(&e), &options).is_err());
    assert!(certificate_pdf(&e, &[q, q], &dates(&e), &options).is_ok());
}
