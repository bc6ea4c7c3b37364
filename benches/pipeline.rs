//! Per-stage and whole-pipeline cost of issuing one certificate with the local signer.
//! Run: `cargo bench --bench pipeline`. Figures go in BENCHMARKS.md, medians only (the machines are noisy).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ddcc_mediator::configuration::IssuanceConfig;
use ddcc_mediator::credential::{self, hc1};
use ddcc_mediator::document::{self, DocumentContext, QrArtifact, QrKind};
use ddcc_mediator::intake::{self, Submission};
use ddcc_mediator::signer::local::{DscSubject, LocalSigner};
use ddcc_mediator::{pipeline, render};

const INPUT: &[u8] = include_bytes!("../examples/vaccination-event.json");

fn stages(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let keys = tempfile::tempdir().expect("temp dir");
    let subject = DscSubject {
        country: "XX".into(),
        common_name: "bench".into(),
    };
    let signer = LocalSigner::open_or_create(keys.path(), &subject).expect("dev key");
    let config = IssuanceConfig::default();
    let now = time::OffsetDateTime::now_utc();
    let event = match intake::read_submission(INPUT) {
        Ok(Submission::Single(Ok(event))) => event,
        other => panic!("the example must be valid: {other:?}"),
    };
    let issued = rt
        .block_on(credential::issue(
            &event,
            &config,
            &signer,
            now.unix_timestamp(),
        ))
        .expect("issue");
    let cose = hc1::decode(&issued.ddcc.hc1).expect("own HC1 decodes");
    let png = render::qr::png(&issued.ddcc.hc1).expect("png");
    let ctx = DocumentContext {
        issued_at: now,
        issuer_name: None,
        qrs: vec![QrArtifact {
            kind: QrKind::Who,
            payload_json: issued.ddcc.payload_json.clone(),
            hc1: issued.ddcc.hc1.clone(),
            png,
        }],
    };

    c.bench_function("parse+validate", |b| {
        b.iter(|| intake::read_submission(black_box(INPUT)))
    });
    c.bench_function("document bundle (build+serialise)", |b| {
        b.iter(|| serde_json::to_vec(&document::build_document(black_box(&event), &ctx)))
    });
    c.bench_function("cwt+sign ddcc+dcc (local ES256)", |b| {
        b.iter(|| {
            rt.block_on(credential::issue(
                black_box(&event),
                &config,
                &signer,
                now.unix_timestamp(),
            ))
        })
    });
    c.bench_function("hc1 encode (zlib 9 + base45)", |b| {
        b.iter(|| hc1::encode(black_box(&cose)))
    });
    c.bench_function("qr png", |b| {
        b.iter(|| render::qr::png(black_box(&issued.ddcc.hc1)))
    });
    c.bench_function("qr svg", |b| {
        b.iter(|| render::qr::svg(black_box(&issued.ddcc.hc1)))
    });
    c.bench_function(
        "pipeline without PDF: payloads, QR PNG, document (local signer)",
        |b| {
            b.iter(|| {
                rt.block_on(pipeline::issue_signed_document(
                    black_box(&event),
                    &config,
                    &signer,
                    now,
                ))
            })
        },
    );
    c.bench_function(
        "whole pipeline: payloads, QR PNG, document, PDF (local signer)",
        |b| {
            b.iter(|| {
                rt.block_on(pipeline::issue_certificate(
                    black_box(&event),
                    &config,
                    &signer,
                    now,
                ))
            })
        },
    );
    // Throughput on every CPU: one thread per CPU, each with its own runtime, issuing its share of the
    // iterations; criterion's time per iteration is then the wall time per certificate with all CPUs
    // busy, and certificates per second is its inverse.
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    c.bench_function(
        &format!("whole pipeline on {cpus} CPUs at once (wall time per certificate)"),
        |b| {
            b.iter_custom(|iterations| {
                let share = iterations.div_ceil(cpus as u64);
                let start = std::time::Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..cpus {
                        scope.spawn(|| {
                            let rt = tokio::runtime::Builder::new_current_thread()
                                .build()
                                .expect("runtime");
                            for _ in 0..share {
                                black_box(
                                    rt.block_on(pipeline::issue_certificate(
                                        &event, &config, &signer, now,
                                    ))
                                    .expect("issued"),
                                );
                            }
                        });
                    }
                });
                // Every thread did `share` certificates: the time per certificate of the whole run.
                start
                    .elapsed()
                    .mul_f64(iterations as f64 / (share * cpus as u64) as f64)
            })
        },
    );
}

criterion_group!(benches, stages);
criterion_main!(benches);
