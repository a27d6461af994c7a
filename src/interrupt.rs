//! Ctrl-C (SIGINT) and SIGTERM during work that must tidy up before it ends: a push's
//! uploads in flight on a remote. Once [`catch`] ran, a signal only sets a flag; the
//! transfer loops see it, stop, remove their temp files and return
//! [`Error::Interrupted`], which the command line turns into exit code 128 + the signal.
//! A second Ctrl-C ends the process at once, as it would without trove's handler.

use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Error, Result};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: nothing else is safe in a signal handler.
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// From now on, SIGINT and SIGTERM set the flag [`check`] reads instead of ending the
/// process (each once: the next one of a kind has its default effect again).
pub fn catch() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `action` is fully initialised (zeroed, then its mask emptied) before
        // sigaction reads it, and the handler only stores to an atomic.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // Interrupted system calls resume; a second signal is not caught.
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            for signal in [libc::SIGINT, libc::SIGTERM] {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Keep SIGINT and SIGTERM away from the calling thread (a transfer worker), so they
/// reach the main thread and never cut a worker's network call short.
pub fn shield_this_thread() {
    // SAFETY: `set` is initialised by sigemptyset before use; pthread_sigmask only
    // changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The signal that arrived since [`catch`], if any.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// [`Error::Interrupted`] once a signal arrived.
pub fn check() -> Result<()> {
    match signal() {
        Some(signal) => Err(Error::Interrupted { signal }),
        None => Ok(()),
    }
}

/// `SIGINT`, `SIGTERM`: how a signal is usually named.
pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
