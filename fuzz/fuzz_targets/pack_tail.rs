//! Pack trailers: any bytes, taken as a whole pack, parse or fail cleanly; every entry
//! that parses lies inside the pack, and decoding it fails cleanly or checks out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trove::pack::{TAIL_GUESS, Tail, decode_chunk, parse_tail};

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let tail = &data[data.len() - data.len().min(TAIL_GUESS)..];
    let entries = match parse_tail(tail, len, "fuzz") {
        Ok(Tail::Entries(entries)) => entries,
        Ok(Tail::NeedMore { trailer_start }) => {
            assert!(trailer_start < len && tail.len() < data.len());
            match parse_tail(&data[trailer_start as usize..], len, "fuzz") {
                Ok(Tail::Entries(entries)) => entries,
                Ok(Tail::NeedMore { .. }) => panic!("the whole trailer was given"),
                Err(_) => return,
            }
        }
        Err(_) => return,
    };
    for entry in &entries {
        assert!(entry.end() <= len);
        let stored = &data[entry.offset as usize..entry.end() as usize];
        if let Ok(raw) = decode_chunk(stored, entry, "fuzz") {
            assert_eq!(raw.len(), entry.raw_len as usize);
        }
    }
});
