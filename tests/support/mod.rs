pub mod openbao;

#[allow(dead_code)] // not every user of the support module logs
/// Sends the library's tracing output to the test's captured output (shown when a test fails).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ddcc_mediator=debug".into()),
        )
        .with_test_writer()
        .try_init();
}
