//! Experiment records as stored in git: parse or fail cleanly; what parses can be shown,
//! redacted, filtered, and stored again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trove::exp::query;
use trove::exp::record::{DEFAULT_REDACT, Record};

fuzz_target!(|data: &[u8]| {
    let Ok(mut record) = Record::parse(data, "runs/fuzz.json") else { return };
    let _ = record.short_id();
    for metric in record.metrics.values() {
        let _ = metric.value();
    }
    let filter = query::parse_filter("metrics.acc > 0.5 AND params.lr LIKE '%1%' AND tags.t IS NULL")
        .expect("a valid filter");
    let _ = filter.matches(&record);
    let mut both = vec![record.clone(), record.clone()];
    query::sort_records(&mut both, &query::Sort::default());
    let patterns: Vec<String> = DEFAULT_REDACT.iter().map(|s| s.to_string()).collect();
    record.redact(&patterns);
    let bytes = serde_json::to_vec(&record).expect("a record serialises");
    Record::parse(&bytes, "runs/fuzz.json").expect("a stored record parses again");
});
