//! Any bytes as a request body: `read_submission` must answer (an event, a report) and never panic.
//!
//! `read_submission` parses with the strict JSON reader (`intake::json`: repeated keys and
//! `modifierExtension` refused, with their paths), so that parser is fuzzed here too; the corpus
//! (`scripts/fuzz`: examples and `tests/hostile`) has bodies with repeated keys at the top and deep inside.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ddcc_mediator::intake::read_submission(data);
    // The strict parser on its own as well, so inputs that are not submissions still reach every path.
    use ddcc_mediator::intake::json::{self, Finding};
    if let Ok(parsed) = json::parse(data) {
        for finding in &parsed.findings {
            let (Finding::DuplicateKey(path) | Finding::ModifierExtension(path)) = finding;
            let _ = json::fhirpath("$this", path);
        }
    }
});
