//! Property tests (proptest) for the canonical resource keys and time parsing: no input
//! makes them panic, and the identities they promise hold for generated inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

use proptest::prelude::*;
use rootline::model::{fmt_time, parse_time, time_in_range, MAX_TIME_MS, MIN_TIME_MS};
use rootline::normalize::resource::{
    from_arn, from_config, from_dimension, from_host, from_id, from_input, hosts_in_text,
};

/// A key is `type/name` with a name of at most 512 bytes (and no surrounding space).
fn assert_key(k: &str) {
    let (_, name) = k
        .split_once('/')
        .unwrap_or_else(|| panic!("no '/' in key {k:?}"));
    assert!(!name.is_empty() && name.len() <= 512, "{k:?}");
}

const ID_TYPES: &[(&str, &str, &str)] = &[
    ("sg-", "sg", "security-group"),
    ("i-", "instance", "instance"),
    ("vpc-", "vpc", "vpc"),
    ("subnet-", "subnet", "subnet"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn key_parsers_never_panic_and_make_well_formed_keys(s in any::<String>(), t in any::<String>()) {
        for k in [from_arn(&s), from_id(&s), from_host(&s), from_dimension(&s, &t)].into_iter().flatten() {
            assert_key(&k);
        }
        if let Some(k) = from_config(&s, &t, Some(&s)) {
            assert_key(&k);
        }
        let mut out = Vec::new();
        hosts_in_text(&s, &mut out);
        for k in &out {
            assert_key(k);
        }
        let _ = from_input(&s);
    }

    #[test]
    fn arn_like_strings_never_panic(
        service in "[a-z0-9-]{0,12}",
        region in "[a-z0-9-]{0,12}",
        account in "[0-9]{0,12}",
        resource in "[ -~]{0,80}",
    ) {
        let arn = format!("arn:aws:{service}:{region}:{account}:{resource}");
        if let Some(k) = from_arn(&arn) {
            assert_key(&k);
        }
    }

    #[test]
    fn canonical_keys_are_fixed_points_of_from_input(s in any::<String>()) {
        let once = from_input(&s);
        prop_assert_eq!(from_input(&once), once.clone());
    }

    #[test]
    fn an_arn_and_its_bare_id_name_one_key(
        which in 0..ID_TYPES.len(),
        hex in "[0-9a-f]{8,17}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        account in "[0-9]{12}",
    ) {
        let (prefix, kind, arn_type) = ID_TYPES[which];
        let id = format!("{prefix}{hex}");
        let arn = format!("arn:aws:ec2:{region}:{account}:{arn_type}/{id}");
        let want = format!("{kind}/{id}");
        prop_assert_eq!(from_id(&id), Some(want.clone()));
        prop_assert_eq!(from_arn(&arn), Some(want.clone()));
        prop_assert_eq!(from_input(&arn), want.clone());
        prop_assert_eq!(from_input(&format!(" {id} ")), want);
    }

    #[test]
    fn times_round_trip_through_their_text(ms in MIN_TIME_MS..=MAX_TIME_MS) {
        let text = fmt_time(ms);
        prop_assert_eq!(parse_time(&text), Some(ms));
        // The `+0000` offset form AWS sometimes writes, and no offset at all (UTC).
        let plus = text.replace('Z', "+0000");
        prop_assert_eq!(parse_time(&plus), Some(ms));
        let bare = text.trim_end_matches('Z');
        prop_assert_eq!(parse_time(bare), Some(ms));
    }

    #[test]
    fn time_parsing_never_panics(s in any::<String>()) {
        if let Some(ms) = parse_time(&s) {
            // Whatever parses formats again (chrono's range is wider than 1970..9999;
            // the normalizers reject what is outside it).
            let _ = fmt_time(ms);
            if time_in_range(ms) {
                prop_assert_eq!(parse_time(&fmt_time(ms)), Some(ms));
            }
        }
    }

    #[test]
    fn time_like_strings_never_panic(
        y in -300000i64..300000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62,
        sec in 0u32..62, frac in "[0-9]{0,12}", off in "(Z|[+-][0-9]{2}:?[0-9]{2}|)",
    ) {
        let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{frac}{off}");
        if let Some(ms) = parse_time(&s) {
            let _ = fmt_time(ms);
        }
    }
}

/// Inputs the fuzz targets found (fixtures/fuzz/TARGET-N), kept as regression tests.
#[test]
fn fuzz_findings_of_the_resource_key_parsers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("resource_key-") {
            continue;
        }
        n += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        // Split in two as the fuzz target does (fuzz/fuzz_targets/resource_key.rs).
        let half = text
            .char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        let (a, b) = text.split_at(half);
        for (what, k) in [
            ("from_arn", from_arn(&text)),
            ("from_id", from_id(&text)),
            ("from_host", from_host(&text)),
            ("from_dimension", from_dimension(a, b)),
            ("from_config", from_config(a, b, Some(b))),
        ] {
            if let Some(k) = k {
                let (_, name) = k.split_once('/').unwrap();
                assert!(
                    !name.is_empty() && name.len() <= 512,
                    "{name}: {what} made a key of {} bytes: {k:?}",
                    k.len()
                );
            }
        }
        let mut hosts = Vec::new();
        hosts_in_text(&text, &mut hosts);
        for k in &hosts {
            let (_, name) = k.split_once('/').unwrap();
            assert!(
                !name.is_empty() && name.len() <= 512,
                "hosts_in_text: {k:?}"
            );
        }
        let once = from_input(&text);
        assert_eq!(from_input(&once), once, "{name}");
    }
    assert!(n >= 1, "no findings under {}", dir.display());
}

/// Recordings the recording_reader fuzz target found (fixtures/fuzz/recording_reader-N):
/// every line's rejection reason stays within the bound, as the target asserts.
#[test]
fn fuzz_findings_of_the_recording_reader() {
    use rootline::ingest::reader::{Item, LineReader};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let mut files = 0;
    let mut rejected = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("recording_reader-") {
            continue;
        }
        files += 1;
        let data = std::fs::read(&path).unwrap();
        for item in LineReader::new(std::io::BufReader::new(&data[..])) {
            if let Item::Data { bytes, .. } = item {
                if let Err((_, reason)) = rootline::ingest::recording_line(&bytes) {
                    rejected += 1;
                    assert!(
                        reason.len() <= rootline::ingest::MAX_REASON_BYTES,
                        "{name}: a reason of {} bytes: {reason}",
                        reason.len()
                    );
                }
            }
        }
    }
    assert!(
        files >= 1 && rejected >= 1,
        "{files} files, {rejected} rejections"
    );
}
