//! `exp list --filter` and `--sort`: any text parses or fails cleanly, and a parsed filter
//! evaluates against a record without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trove::exp::query;
use trove::exp::record::Record;

const RECORD: &str = r#"{"version":1,"id":"01jz0000000000000000000000","name":"baseline",
"created":"2026-01-01T00:00:00.000Z","user":"u","commit":"0123456789abcdef0123456789abcdef01234567",
"branch":"main","dirty":false,"status":"finished","data":[],
"params":{"lr":0.01,"opt":"adam","deep":true,"naïve":"ü"},
"metrics":{"acc":0.9,"loss":{"series":"series/x/loss.json","points":3,"last":0.25},"nan":"NaN"},
"tags":{"stage":"dev"},"env":{"files":{},"interpreters":{}},"artifacts":[]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let record = Record::parse(RECORD.as_bytes(), "runs/fuzz.json").expect("the sample record parses");
    if let Ok(filter) = query::parse_filter(text) {
        let _ = filter.matches(&record);
    }
    if let Ok(sort) = query::parse_sort(text) {
        let mut records = vec![record.clone(), record];
        query::sort_records(&mut records, &sort);
    }
    let _ = query::parse_key(text);
});
