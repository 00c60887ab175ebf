//! The `homeostat` binary: parses the command line and hands off to [`homeostat::cli`].
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOMEOSTAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // HOMEOSTAT_LOG_FORMAT=json: one JSON object per line, for log pipelines in a cluster.
    if std::env::var("HOMEOSTAT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = homeostat::cli::Cli::parse();
    match homeostat::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain: "reading X: line 12: ...".
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
