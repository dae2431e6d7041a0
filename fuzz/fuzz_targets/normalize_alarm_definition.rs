//! The `alarm_definition` normalizer on arbitrary text: never a panic; what it accepts has a time
//! of the years 1970 to 9999.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootline::model::{time_in_range, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ev) = rootline::normalize::normalize(Source::AlarmDefinition, text, Some(0)) {
        assert!(time_in_range(ev.event_time), "{}", ev.event_time);
        assert!(ev.resources.len() <= 64);
    }
});
