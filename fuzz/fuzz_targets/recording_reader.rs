//! The recording reader: lines of a `.jsonl` (gzip when it starts with the gzip magic),
//! each parsed and normalized as `rootline ingest` does. Never a panic; a rejection's
//! reason stays short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootline::ingest::reader::{Item, LineReader};
use std::io::{BufReader, Read};

fuzz_target!(|data: &[u8]| {
    let input: Box<dyn Read> = if data.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(data).take(16 << 20))
    } else {
        Box::new(data)
    };
    for item in LineReader::new(BufReader::new(input)) {
        if let Item::Data { bytes, .. } = item {
            if let Err((_, reason)) = rootline::ingest::recording_line(&bytes) {
                assert!(reason.len() <= 400, "a reason of {} bytes", reason.len());
            }
        }
    }
});
