//! Time to render one citizen PDF (two QR codes; an Arabic, a Latin-only and a Chinese holder) and its QR
//! PNG.
//!
//! `cargo bench --bench pdf -- --measurement-time 5` for a short run.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ddcc_mediator::domain::{
    CertificateInfo, Code, Country, FhirDate, Holder, NonEmpty, PositiveInt, Producer, Sex,
    Vaccination, VaccinationEvent,
};
use ddcc_mediator::render::{
    self,
    pdf::{certificate_pdf, IssueDates, PdfOptions, PdfQr, QrKind},
};

fn ne(s: &str) -> NonEmpty {
    NonEmpty::parse(s).expect("non-empty")
}

fn date(s: &str) -> FhirDate {
    FhirDate::parse(s).expect("date")
}

fn code(c: &str) -> Code {
    Code {
        system: None,
        code: ne(c),
        display: None,
    }
}

/// An IG example holder (name and centre read from the shared vectors; `suffix` is the language:
/// `Arabic`, `Example` for English, `Chinese`).
fn event(suffix: &str) -> VaccinationEvent {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../shared/vectors/ddcc/ig-1.0.0/QuestionnaireResponse-DDCCVSQuestionnaireResponse{suffix}.json"
    ));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vector")).expect("json");
    let answer = |id: &str| {
        json["item"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["linkId"] == id))
            .and_then(|i| i["answer"][0]["valueString"].as_str())
            .expect("answer")
            .to_owned()
    };
    VaccinationEvent {
        holder: Holder {
            name: ne(&answer("name")),
            birth_date: Some(date("2003-03-03")),
            identifier: Some(ne("12345678905")),
            sex: Some(Sex::Male),
        },
        vaccination: Vaccination {
            vaccine: code("XM1NL1"),
            brand: code("XM1G90"),
            producer: Producer::Manufacturer(code("TEST")),
            lot: ne("ER8732"),
            date: date("2021-04-05"),
            valid_from: None,
            dose: PositiveInt::new(1).expect("dose"),
            total_doses: PositiveInt::new(2),
            country: Country::from_alpha3("SAU").expect("country"),
            centre: ne(&answer("centre")),
            health_worker: None,
            disease: Some(code("RA01")),
            next_dose: Some(date("2021-04-28")),
        },
        certificate: CertificateInfo {
            issuer: ne("dPD2PfwzBQyphcjeUiAdRP"),
            hcid: ne("bMlJkAt0V92RYhhG3fNt5"),
            valid_from: None,
            valid_until: None,
        },
        version: Default::default(),
        language: None,
    }
}

fn hc1(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/examples")
            .join(file),
    )
    .expect("hc1")
    .trim()
    .to_owned()
}

fn bench(c: &mut Criterion) {
    let holders = [
        ("Arabic holder", event("Arabic")),
        ("Latin holder", event("Example")),
        ("Chinese holder", event("Chinese")),
    ];
    let (ddcc, dcc) = (
        hc1("hc1-who-from-existingDDCCDoc.txt"),
        hc1("hc1-dcc-from-existingDDCCDoc.txt"),
    );
    let symbol = |hc1: &str| ddcc_mediator::render::qr::encode(hc1).expect("QR");
    let (ddcc_symbol, dcc_symbol) = (symbol(&ddcc), symbol(&dcc));
    let qrs = [
        PdfQr {
            kind: QrKind::Who,
            symbol: &ddcc_symbol,
        },
        PdfQr {
            kind: QrKind::Dcc,
            symbol: &dcc_symbol,
        },
    ];
    let d = |s: &str| date(s).full().expect("full date");
    let dates = IssueDates {
        issued: d("2021-04-05"),
        valid_from: d("2021-04-05"),
        valid_until: Some(d("2022-04-05")),
    };
    let options = PdfOptions::default();
    // Fonts are parsed on first use; keep that out of the measurement.
    for (name, e) in &holders {
        let pdf = certificate_pdf(e, &qrs, &dates, &options).expect("pdf");
        eprintln!("certificate PDF, {name}: {} bytes", pdf.len());
    }
    let png = render::qr::png(&ddcc).expect("png");
    eprintln!("DDCC QR PNG: {} bytes", png.len());

    for (name, e) in &holders {
        c.bench_function(&format!("certificate_pdf (2 QR, {name})"), |b| {
            b.iter(|| certificate_pdf(black_box(e), &qrs, &dates, &options).expect("pdf"))
        });
    }
    // A name whose glyph set no earlier document had: the Arabic font is subset for this document (a
    // subset is shared by documents with the same glyph set; 784 two-letter names cycle through a cache
    // of 256).
    let letters: Vec<char> = ('\u{0628}'..='\u{063A}')
        .chain('\u{0641}'..='\u{064A}')
        .collect();
    let mut names = (0..).map(|i: usize| {
        let (a, b) = (
            letters[i % letters.len()],
            letters[(i / letters.len()) % letters.len()],
        );
        let mut e = holders[0].1.clone();
        e.holder.name = ne(&format!("{} {a}{b}", e.holder.name.as_str()));
        e
    });
    c.bench_function(
        "certificate_pdf (2 QR, Arabic holder, new glyph set)",
        |b| {
            b.iter_batched(
                || names.next().expect("endless"),
                |e| certificate_pdf(&e, &qrs, &dates, &options).expect("pdf"),
                criterion::BatchSize::SmallInput,
            )
        },
    );
    c.bench_function(
        "qr_png (the WHO reference sample payload, 1,252 characters, version 28)",
        |b| b.iter(|| render::qr::png(black_box(&ddcc)).expect("png")),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
