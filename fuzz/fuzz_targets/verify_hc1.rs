//! Any text as an `HC1:` string: decoding and verification must report, never panic. The input is tried
//! as sent and behind the `HC1:` prefix, so the fuzzer reaches base45, zlib, COSE and CBOR quickly. The
//! shared test DSC is trusted, so inputs derived from the seed certificates reach signature checking.
#![no_main]

use std::sync::OnceLock;

use ddcc_mediator::credential::{verify, VerifyOptions};
use ddcc_mediator::signer::certificate::Dsc;
use libfuzzer_sys::fuzz_target;

/// The test DSC of `../shared/examples` (DDCC_SHARED_DIR moves it), when present.
fn options() -> &'static VerifyOptions {
    static OPTIONS: OnceLock<VerifyOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let shared = std::env::var_os("DDCC_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
            });
        let trusted_dscs =
            std::fs::read(shared.join("examples/hc1-test-DSC-certificate-public.pem"))
                .ok()
                .and_then(|pem| Dsc::from_pem_or_der(&pem).ok())
                .map(|dsc| vec![dsc.der().to_vec()])
                .unwrap_or_default();
        VerifyOptions {
            trusted_dscs,
            at: 1_700_000_000,
            revocations: None,
            checked: None,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = verify(&text, options());
    let _ = verify(&format!("HC1:{text}"), options());
});
