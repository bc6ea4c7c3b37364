//! Any text as an `HC1:` string: decoding and verification must report, never panic. The input is tried
//! as sent and behind the `HC1:` prefix, so the fuzzer reaches base45, zlib, COSE and CBOR quickly.
#![no_main]

use ddcc_mediator::credential::{verify, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options = VerifyOptions {
        trusted_dscs: Vec::new(),
        at: 1_700_000_000,
    };
    let _ = verify(&text, &options);
    let _ = verify(&format!("HC1:{text}"), &options);
});
