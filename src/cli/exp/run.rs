//! `trove exp run -- CMD…`: run a command and record it, with what it reported.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::super::Ctx;
use super::log::{self, RecordArgs};
use crate::error::Error;
use crate::exp::collect;
use crate::exp::record::{self, RunInfo, Status};
use crate::exp::store;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub record: RecordArgs,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The running child, for the signal handler to forward SIGTERM and SIGHUP to.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // SIGINT and SIGQUIT from a terminal reach the child by themselves (same process
    // group); trove only stays alive to record the run. Others are passed on.
    if sig == libc::SIGTERM || sig == libc::SIGHUP {
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; pid is our child's.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

/// While the child runs, signals do not kill trove (so the run is still recorded).
struct SignalGuard {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalGuard {
    fn install(child: u32) -> SignalGuard {
        CHILD.store(child as i32, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction with a handler and an empty mask is valid; the
            // handler (not SIG_IGN) is reset by exec, so the child keeps default handling.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        SignalGuard { old }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restores the disposition saved by install.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
        CHILD.store(0, Ordering::SeqCst);
    }
}

/// How often a running command's metrics file is looked at for new series points.
const SERIES_LOOK: Duration = Duration::from_millis(500);

/// When each series point first appeared in the metrics file while the command ran: the
/// time a point without its own `timestamp` is given (a point first seen in the file the
/// run left gets the time the run ended).
#[derive(Default)]
struct SeriesClock {
    seen: Option<std::fs::Metadata>,
    first: BTreeMap<(String, u64), i64>,
}

impl SeriesClock {
    fn look(&mut self, file: &std::path::Path) {
        let Ok(now) = std::fs::metadata(file) else { return };
        if self.seen.as_ref().is_some_and(|b| !crate::cache::changed(b, &now)) {
            return;
        }
        // A file caught half-written does not parse: the next look reads it whole.
        let Ok((_, series)) = collect::read_metrics_file(file) else { return };
        self.seen = Some(now);
        let t = now_millis();
        for (key, points) in series {
            for p in points {
                self.first.entry((key.clone(), p.step)).or_insert(t);
            }
        }
    }

    fn stamp(&self, series: &mut collect::SeriesMap) {
        let end = now_millis();
        for (key, points) in series.iter_mut() {
            for p in points.iter_mut().filter(|p| p.time.is_none()) {
                p.time = Some(self.first.get(&(key.clone(), p.step)).copied().unwrap_or(end));
            }
        }
    }
}

fn now_millis() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let git = repo.git()?;
    let mut prepared = log::prepare(ctx, &repo, &args.record)?;
    let progress = ctx.out.reporter();
    // The code as it is before the run: a dirty work tree is refused before anything runs.
    let code = collect::code_state(&repo, &git, &prepared.outputs(), &progress)?;
    code.check_clean(&repo.root, args.record.allow_dirty)?;
    let id = record::new_id();
    let name = prepared.inputs.name.clone().unwrap_or_else(|| collect::default_name(&code, &id));
    prepared.inputs.name = Some(name.clone());

    let argv = args.command;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env("TROVE_EXP_ID", &id).env("TROVE_EXP_NAME", &name).current_dir(&ctx.cwd);
    // With --json, stdout carries only the JSON document: the command's output goes to stderr.
    if ctx.out.json {
        cmd.stdout(Stdio::from(std::io::stderr()));
    }
    // The metrics file as it was before: unchanged after the run, it is not this run's.
    let before = prepared.metrics_file.as_ref().and_then(|f| std::fs::metadata(f).ok());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| Error::path(&argv[0], format!("cannot run the command: {e}")))?;
    // The file as it was before is not this run's: only its changes are looked at.
    let mut clock = SeriesClock { seen: before.clone(), ..SeriesClock::default() };
    let status = {
        let _guard = SignalGuard::install(child.id());
        let mut last_look = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(Error::path(&argv[0], format!("waiting for the command: {e}")).into()),
            }
            if let Some(f) = &prepared.metrics_file
                && last_look.elapsed() >= SERIES_LOOK
            {
                clock.look(f);
                last_look = Instant::now();
            }
        }
    };
    let duration = started.elapsed();
    let exit_code = status.code();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);

    // What the command reported: the metrics file, if this run wrote it.
    let mut values = BTreeMap::new();
    let mut series = BTreeMap::new();
    if let Some(f) = prepared.metrics_file.clone() {
        let shown = log::shown(&repo, &f);
        let fresh =
            std::fs::metadata(&f).map(|now| before.as_ref().is_none_or(|b| crate::cache::changed(b, &now)));
        match fresh {
            Ok(true) => match collect::read_metrics_file(&f) {
                Ok((mut v, mut s)) => {
                    // The run happened: keep what can be kept, say what cannot.
                    for problem in collect::take_invalid_metrics(&mut v, &mut s) {
                        ctx.out.warn(format!("{shown}: {problem}; not recorded"));
                    }
                    clock.stamp(&mut s);
                    (values, series) = (v, s);
                }
                Err(e) => ctx.out.warn(format!("{e}; metrics from it not recorded")),
            },
            Ok(false) => {
                ctx.out.warn(format!("{shown} was not written by this run; its metrics are not recorded"))
            }
            Err(_) if exit_code == Some(0) => {
                ctx.out.warn(format!("{shown} was not written; no metrics from it"))
            }
            Err(_) => {}
        }
    }
    prepared.add_metrics(values, series);
    let present: Vec<_> = prepared
        .artifacts
        .iter()
        .filter(|p| {
            let exists = p.exists();
            if !exists {
                ctx.out.warn(format!("artifact {} does not exist; not recorded", log::shown(&repo, p)));
            }
            exists
        })
        .cloned()
        .collect();
    let mut stored = collect::store_run(&repo, &code, &present, &progress)?;
    let lock = stored.lock.take();
    let run = RunInfo { argv: argv.clone(), exit_code, duration_secs: duration.as_secs_f64() };
    let r = collect::build(&repo, &git, id, &code, prepared.inputs, stored, Some(run))?;
    let r = store::append(&git, r, &prepared.series)?;
    drop(lock); // the record names the artifacts now: gc keeps them
    log::report(ctx, &git, &r, &code)?;
    if r.status == Status::Failed {
        let (how, code) = match (exit_code, signal) {
            (Some(c), _) => (format!("exited with code {c}"), c),
            (None, Some(s)) => (format!("was killed by signal {s}"), 128 + s),
            (None, None) => ("failed".to_string(), 1),
        };
        // The argv as recorded: secrets redacted.
        let shown = r.run.as_ref().map_or_else(|| argv.join(" "), |x| x.argv.join(" "));
        ctx.out
            .problem("error", format!("`{shown}` {how}; the run is recorded as failed ({})", r.short_id()));
        let _ = std::io::stdout().flush();
        std::process::exit(if code == 0 { 1 } else { code & 0xff });
    }
    Ok(())
}
