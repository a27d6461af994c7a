//! Config and config.local (split at the first NUL byte): parse or fail cleanly, and
//! every accessor answers or errs without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trove::config::{Config, KNOWN_KEYS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (shared, local) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(config) = Config::from_texts(Path::new(".trove"), shared, local) else { return };
    let _ = config.link_kinds();
    let _ = config.cache_dir();
    let _ = config.lock_timeout_secs();
    for name in config.remote_names() {
        for key in ["url", "user", "port", "keyfile", "password", "known_hosts", "host_key", "jobs"] {
            let _ = config.remote_value(&name, key);
        }
    }
    for (key, _) in KNOWN_KEYS {
        let _ = config.effective(key);
    }
});
