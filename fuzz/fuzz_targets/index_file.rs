//! Index files: any bytes parse or fail cleanly; what parses is canonical (encodes back to
//! the same bytes) and merges into a RemoteIndex that answers for all it lists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trove::pack::{IndexFile, RemoteIndex};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = IndexFile::parse(data, "fuzz") else { return };
    let bytes = file.encode();
    assert_eq!(bytes, data);
    assert_eq!(IndexFile::parse(&bytes, "fuzz").expect("canonical bytes parse"), file);
    let mut index = RemoteIndex::default();
    index.add(IndexFile::id_of(&bytes), &file);
    for pack in &file.packs {
        for entry in &pack.entries {
            assert!(index.chunk(&entry.chunk).is_some());
        }
    }
    for object in &file.objects {
        assert!(index.has_object(&object.key));
    }
});
