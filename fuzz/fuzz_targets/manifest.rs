//! Directory manifests: any bytes parse or fail cleanly; what parses is canonical again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trove::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data, "fuzz") {
        let bytes = manifest.to_bytes();
        let again = Manifest::parse(&bytes, "fuzz").expect("canonical bytes parse");
        assert_eq!(again, manifest);
        assert_eq!(again.to_bytes(), bytes);
        let _ = manifest.total_size();
    }
});
