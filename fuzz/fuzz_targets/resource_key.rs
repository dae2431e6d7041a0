//! The canonical resource key parsers (ARNs, bare ids, hosts, dimensions, Config items,
//! user input). Never a panic; keys are `type/name` with a name of at most 512 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootline::normalize::resource::{
    from_arn, from_config, from_dimension, from_host, from_id, from_input, hosts_in_text,
};

fn check(k: &str) {
    let (_, name) = k.split_once('/').expect("a key has a '/'");
    assert!(!name.is_empty() && name.len() <= 512, "{k:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    for k in [
        from_arn(text),
        from_id(text),
        from_host(text),
        from_dimension(a, b),
        from_config(a, b, Some(b)),
    ]
    .into_iter()
    .flatten()
    {
        check(&k);
    }
    let mut out = Vec::new();
    hosts_in_text(text, &mut out);
    out.iter().for_each(|k| check(k));
    let once = from_input(text);
    assert_eq!(from_input(&once), once);
});
