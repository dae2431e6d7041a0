//! The push endpoints' body parsers (one object or an array of them), for EventBridge
//! and GitHub deployment_status bodies. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootline::collect::push::parse_push_body;

fuzz_target!(|data: &[u8]| {
    let _ = parse_push_body("eventbridge", data);
    let _ = parse_push_body("github.deployment_status", data);
});
