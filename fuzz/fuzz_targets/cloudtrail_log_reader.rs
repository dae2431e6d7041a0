//! The CloudTrail log file reader (`{"Records": [...]}` or a JSON array): records split
//! by the scanner, each parsed and normalized. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootline::ingest::reader::{Item, RecordScanner};

fuzz_target!(|data: &[u8]| {
    for item in RecordScanner::new(data) {
        if let Item::Data { bytes, .. } = item {
            let _ = rootline::ingest::cloudtrail_record(&bytes);
        }
    }
});
