//! Pointer files: any text parses or fails cleanly; what parses writes back to itself.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trove::pointer::Pointer;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("data.trove");
    if let Ok(pointer) = Pointer::parse(text, file) {
        let again = Pointer::parse(&pointer.to_text(), file).expect("a written pointer parses");
        assert_eq!(again, pointer);
    }
});
