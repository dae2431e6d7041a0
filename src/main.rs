//! The `rootline` binary: parse arguments, set up logging, run the command.
//! Everything else lives in the library so tests call the same code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = rootline::cli::Args::parse();
    rootline::telemetry::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rootline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rootline::cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rootline: {e:#}");
            ExitCode::FAILURE
        }
    }
}
