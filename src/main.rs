//! The `rootline` binary: parse arguments, set up logging, run the command.
//! Everything else lives in the library so tests call the same code.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: ingest allocates and frees millions of small
/// strings and JSON nodes across threads, where glibc's malloc was about a third of the
/// parser threads' time (`perf` of `rootline ingest`, 300,000 records).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's header (the crate names the options around it,
/// 14 and 16, but not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Give freed memory back to the system at once. mimalloc's default keeps it for 10 ms,
    // long enough for an ingest of 4 MB records to peak at 272-311 MB (against 227-239 MB
    // with no delay, `bench ingest --records 100 --pad-kib 4000`); the price is about 8%
    // more CPU (madvise) on small records, still well below glibc's malloc.
    // SAFETY: sets one of mimalloc's process-wide options, by value, before any other
    // thread exists; mimalloc reads this option at each purge, so setting it at run time
    // takes effect.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    if !rootline::store::configure_sqlite() {
        eprintln!(
            "rootline: SQLite was initialized before its memory statistics could be turned off"
        );
    }
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
