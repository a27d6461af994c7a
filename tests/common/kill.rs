//! Killing trove mid-run, for the fault tests of every module (`cli/faults.rs`,
//! `layout2.rs`, `prune.rs`, `upgrade.rs`): seeded kill points, and a `kill -9` after a
//! delay or once a condition holds.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Env;

/// The seed of a test's kill points: `TROVE_FAULT_SEED` (decimal or 0x-hex), else `default`.
pub fn fault_seed(default: u64) -> u64 {
    match std::env::var("TROVE_FAULT_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("TROVE_FAULT_SEED={s} is not a number"))
        }
        Err(_) => default,
    }
}

/// xorshift64*, seeded from a fixed seed and the test's name (deterministic points).
pub struct KillRng(u64);

impl KillRng {
    pub fn for_test(name: &str, seed: u64) -> KillRng {
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        KillRng(h | 1)
    }

    /// Seeded by [`fault_seed`], which it prints, so that a failing run can be repeated.
    pub fn from_env(name: &str, default_seed: u64) -> KillRng {
        let seed = fault_seed(default_seed);
        eprintln!("{name}: fault seed {seed} (TROVE_FAULT_SEED={seed} repeats these kill points)");
        KillRng::for_test(name, seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A seeded point in each of `n` equal slices of `full`, so the kills cover a run.
    pub fn points(&mut self, full: Duration, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|i| full.mul_f64((i as f64 + self.fraction()) / n as f64).max(Duration::from_millis(1)))
            .collect()
    }
}

/// Start trove and SIGKILL it once `due(elapsed)` says so: None when it was killed, else
/// (it finished first, and must have succeeded) how long it took.
pub fn kill_when(
    env: &Env,
    cwd: &Path,
    args: &[&str],
    mut due: impl FnMut(Duration) -> bool,
) -> Option<Duration> {
    let log = env.outside().join("killed.stderr");
    let started = Instant::now();
    let mut child = env
        .command_in(cwd, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn trove");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if due(started.elapsed()) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = started.elapsed();
    if status.signal() == Some(libc::SIGKILL) {
        return None;
    }
    let stderr = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "trove {args:?} failed before it was killed ({status}):\n{stderr}");
    Some(took)
}

/// [`kill_when`] after a fixed delay.
pub fn kill_after(env: &Env, cwd: &Path, args: &[&str], delay: Duration) -> Option<Duration> {
    kill_when(env, cwd, args, |elapsed| elapsed >= delay)
}
