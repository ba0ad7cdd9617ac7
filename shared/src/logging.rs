//! Tracing setup shared by every function and tool.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON lines in Lambda (one event a line, which CloudWatch
/// indexes), readable text elsewhere. The level comes from `RUST_LOG`, then Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, then `info`.
pub fn init_tracing() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));

    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if in_lambda {
        builder
            .json()
            .with_current_span(true)
            .without_time()
            .with_ansi(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second call (tests, the local runner hosting several functions) keeps the first subscriber.
    drop(result);
}

/// Sends log lines to the file at `path` instead of standard output, for the local runner,
/// whose standard output is for the person running it. The level is read as in
/// [`init_tracing`].
pub fn init_tracing_to_file(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init();
    drop(result);
    Ok(())
}
