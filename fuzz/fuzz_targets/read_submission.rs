//! Any bytes as a request body: `read_submission` must answer (an event, a report) and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ddcc_mediator::intake::read_submission(data);
});
