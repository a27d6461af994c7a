//! Experiment records: `trove exp log`, `run`, `list`, `show` and `diff`.

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::common::*;

fn head(env: &Env) -> String {
    env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string()
}

fn commit_all(env: &Env, message: &str) -> String {
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", message]);
    head(env)
}

/// A repository with tracked data `data/`, a requirements.txt and ignored outputs, committed.
fn project() -> Env {
    let env = Env::new();
    env.write("data/a.csv", "a,1\n");
    env.write("data/b.csv", "b,2\n");
    env.write("requirements.txt", "torch==2.0\nnumpy==1.26\n");
    env.write(".gitignore", "/metrics.json\n/model.bin\n/out/\n");
    env.ok(&["add", "data"]);
    commit_all(&env, "code and data");
    // One program to ask for its version keeps the tests fast (and git is always there).
    env.ok(&["config", "exp.interpreters", "[git, no-such-interpreter]"]);
    commit_all(&env, "settings");
    env
}

fn records(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["exp", "list"];
    all.extend_from_slice(args);
    env.json(&all)["records"].as_array().unwrap().clone()
}

fn names(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_logged_record_round_trips() {
    let env = project();
    env.write("params.yaml", "model:\n  depth: 4\n  kind: resnet\nepochs: 10\n");
    env.write(
        "metrics.json",
        r#"{"acc": 0.91, "loss": [1.0, 0.5, 0.25], "val": {"loss": [{"step": 10, "value": 0.7}, {"step": 20, "value": 0.6}]}}"#,
    );
    env.write("model.bin", noise(3000, 7));
    env.write("out/report.txt", "report\n");
    let logged = env.json(&[
        "exp",
        "log",
        "--name",
        "baseline",
        "-p",
        "lr=0.01",
        "-p",
        "opt=adam",
        "-p",
        "epochs=20",
        "--params-file",
        "params.yaml",
        "--metrics-file",
        "metrics.json",
        "-m",
        "f1=0.88",
        "--artifact",
        "model.bin",
        "out",
        "-t",
        "stage=dev",
        "-t",
        "best",
    ]);
    let id = logged["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(logged["name"], "baseline");
    assert_eq!(logged["commit"], head(&env));
    assert_eq!(logged["branch"], env.git_cmd(&["branch", "--show-current"]).trim());
    assert_eq!(logged["dirty"], false);
    assert_eq!(logged["status"], "finished");
    assert_eq!(logged["user"], "Trove Tester <tester@example.com>");
    assert_eq!(
        logged["params"],
        json!({"lr": 0.01, "opt": "adam", "epochs": 20.0, "model.depth": 4.0, "model.kind": "resnet"}),
        "-p wins over the params file"
    );
    assert_eq!(logged["metrics"]["acc"], 0.91);
    assert_eq!(logged["metrics"]["f1"], 0.88);
    assert_eq!(logged["metrics"]["loss"]["points"], 3);
    assert_eq!(logged["metrics"]["loss"]["last"], 0.25);
    assert_eq!(
        logged["metrics"]["loss"]["values"],
        json!([{"step": 0, "value": 1.0}, {"step": 1, "value": 0.5}, {"step": 2, "value": 0.25}])
    );
    assert_eq!(
        logged["metrics"]["val.loss"]["values"],
        json!([{"step": 10, "value": 0.7}, {"step": 20, "value": 0.6}])
    );
    assert_eq!(logged["tags"], json!({"stage": "dev", "best": ""}));
    let pointer = env.pointer("data.trove");
    assert_eq!(logged["data"], json!([{"path": "data", "kind": "dir", "hash": pointer.hash, "size": 8}]));
    let model_hash = blake3_hex(&noise(3000, 7));
    assert_eq!(
        logged["artifacts"],
        json!([
            {"path": "model.bin", "hash": model_hash, "size": 3000},
            {"path": "out/report.txt", "hash": blake3_hex(b"report\n"), "size": 7},
        ])
    );
    assert!(env.object_path(&model_hash).is_file(), "the artifact is stored in the cache");
    assert_eq!(logged["env"]["files"]["requirements.txt"], "torch==2.0\nnumpy==1.26\n");
    assert!(logged["env"]["interpreters"]["git"].as_str().unwrap().starts_with("git version "), "{logged}");
    assert_eq!(logged["env"]["interpreters"].as_object().unwrap().len(), 1, "only programs on PATH");

    // show --json gives back exactly what log recorded: by id, id prefix or name.
    assert_eq!(env.json(&["exp", "show", id]), logged);
    assert_eq!(env.json(&["exp", "show", &id[..12]]), logged);
    assert_eq!(env.json(&["exp", "show", &id.to_uppercase()]), logged);
    assert_eq!(env.json(&["exp", "show", "baseline"]), logged);

    // The human report of log is the id alone.
    let out = env.ok(&["exp", "log", "-m", "acc=0.5"]);
    let id2 = out.stdout.trim();
    assert_eq!(id2.len(), 26, "{out}");
    let branch = env.git_cmd(&["branch", "--show-current"]);
    let second = env.json(&["exp", "show", id2]);
    assert_eq!(second["name"], format!("{}-{}", branch.trim(), &id2[..10]), "default name");
    assert_eq!(second["metrics"], json!({"acc": 0.5}));

    // The human show names every section.
    let shown = env.ok(&["exp", "show", "baseline"]).stdout;
    for part in [
        "name     baseline",
        "params:",
        "lr",
        "metrics:",
        "last of a series of 3 points",
        "tags:",
        "data:",
        "artifacts:",
        "model.bin",
        "environment:",
        "requirements.txt",
    ] {
        assert!(shown.contains(part), "{part} in:\n{shown}");
    }
    let verbose = env.ok(&["exp", "show", "-v", "baseline"]).stdout;
    assert!(verbose.contains("step 20: 0.6") && verbose.contains("| torch==2.0"), "{verbose}");
}

#[test]
fn ids_sort_by_time_and_lookups_need_a_unique_prefix() {
    let env = project();
    let mut ids = Vec::new();
    for name in ["a", "b", "b"] {
        ids.push(env.ok(&["exp", "log", "--name", name]).stdout.trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids sort in creation order");
    // Listing is newest first by default.
    let listed: Vec<String> =
        records(&env, &[]).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, ids.iter().rev().cloned().collect::<Vec<_>>());
    // A name names the newest record of that name.
    assert_eq!(env.json(&["exp", "show", "b"])["id"], ids[2].as_str());
    // A prefix shared by several records is refused and says so.
    let out = env.fails(1, &["exp", "show", "0"]);
    assert!(out.stderr.contains("matches 3 records") && out.stderr.contains("more characters"), "{out}");
    let out = env.fails(1, &["exp", "show", "nothing-like-this"]);
    assert!(out.stderr.contains("nothing-like-this"), "{out}");
}

#[test]
fn a_dirty_work_tree_is_refused_unless_allowed() {
    let env = project();
    env.write("train.py", "print('v1')\n");
    commit_all(&env, "train");
    // Untracked files and ignored outputs do not count.
    env.write("notes.txt", "scratch\n");
    env.write("model.bin", "weights");
    env.ok(&["exp", "log", "--name", "clean"]);

    // A change to a file git tracks.
    env.write("train.py", "print('v2')\n");
    let out = env.fails(1, &["exp", "log"]);
    assert!(out.stderr.contains("uncommitted changes (train.py)"), "{out}");
    assert!(out.stderr.contains("--allow-dirty"), "{out}");
    // Staged counts too.
    env.git_cmd(&["add", "train.py"]);
    env.fails(1, &["exp", "log"]);
    env.git_cmd(&["reset", "-q", "train.py"]);
    env.git_cmd(&["checkout", "-q", "--", "train.py"]);
    env.ok(&["exp", "log"]);

    // Tracked data that differs from its pointer (the pointer itself unchanged).
    env.write("data/a.csv", "a,changed\n");
    let out = env.fails(1, &["exp", "log"]);
    assert!(out.stderr.contains("uncommitted changes (data)"), "{out}");
    env.write("train.py", "print('v3')\n");
    let r = env.json(&["exp", "log", "--allow-dirty", "--name", "dirty"]);
    assert_eq!(r["dirty"], true);
    assert_eq!(r["dirty_paths"], json!(["data", "train.py"]));
    let hash = r["dirty_diff_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    // A different change gives a different hash; the same change the same one.
    let again = env.json(&["exp", "log", "--allow-dirty"]);
    assert_eq!(again["dirty_diff_hash"], hash);
    env.write("train.py", "print('v4')\n");
    let other = env.json(&["exp", "log", "--allow-dirty"]);
    assert_ne!(other["dirty_diff_hash"], hash);
    // The clean record says so.
    let clean = env.json(&["exp", "show", "clean"]);
    assert_eq!(clean["dirty"], false);
    assert!(clean.get("dirty_paths").is_none() && clean.get("dirty_diff_hash").is_none());
}

#[test]
fn a_tracked_metrics_file_and_artifacts_are_outputs_not_changes() {
    let env = project();
    env.write("results/metrics.json", r#"{"acc": 0.1}"#);
    commit_all(&env, "metrics in git");
    env.write("results/metrics.json", r#"{"acc": 0.7}"#);
    let r = env.json(&["exp", "log", "--metrics-file", "results/metrics.json"]);
    assert_eq!((r["dirty"].clone(), r["metrics"]["acc"].clone()), (json!(false), json!(0.7)));
    // Without naming it, it is a change like any other.
    env.fails(1, &["exp", "log"]);
}

#[test]
fn secrets_never_reach_the_records() {
    let env = project();
    env.write(".env.example", "");
    let r =
        env.json(&["exp", "log", "-p", "db_password=hunter2", "-p", "lr=0.1", "-t", "api_token=tok-hunter2"]);
    assert_eq!(r["params"]["db_password"], "[redacted]");
    assert_eq!(r["params"]["lr"], 0.1);
    assert_eq!(r["tags"]["api_token"], "[redacted]");
    let run = env.json(&[
        "exp",
        "run",
        "--",
        "sh",
        "-c",
        "exit 0",
        "sh",
        "--secret-key",
        "hunter2",
        "PASSWORD=hunter2",
    ]);
    assert_eq!(
        run["run"]["argv"],
        json!(["sh", "-c", "exit 0", "sh", "--secret-key", "[redacted]", "PASSWORD=[redacted]"])
    );
    // An environment file's secret lines.
    env.ok(&["config", "exp.env_files", "[requirements.txt, .env.example]"]);
    env.write(".env.example", "MODE=fast\nAPI_KEY=hunter2\n");
    commit_all(&env, "env file");
    let r = env.json(&["exp", "log"]);
    assert_eq!(r["env"]["files"][".env.example"], "MODE=fast\nAPI_KEY=[redacted]");
    // Nowhere in the history of the records.
    // Record commits are merges (previous record, code commit): -m --first-parent shows
    // every blob each one added.
    let history = env.git_cmd(&["log", "-p", "-m", "--first-parent", "refs/trove/exps"]);
    assert!(history.contains("[redacted]"), "{history}");
    assert!(!history.contains("hunter2"), "{history}");
    // The patterns are a setting.
    env.ok(&["config", "exp.redact", "[seed]"]);
    commit_all(&env, "redact seeds");
    let r = env.json(&["exp", "log", "-p", "seed=42", "-p", "password=visible"]);
    assert_eq!(r["params"], json!({"seed": "[redacted]", "password": "visible"}));
}

#[test]
fn run_records_the_command_and_what_it_wrote() {
    let env = project();
    let script = r#"echo "{\"acc\": 0.8, \"loss\": [3, 2, 1]}" > metrics.json; echo "$TROVE_EXP_ID" > out/id.txt; echo working"#;
    fs::create_dir_all(env.path("out")).unwrap();
    let r = env.json(&[
        "exp",
        "run",
        "--name",
        "good",
        "-p",
        "lr=0.1",
        "--metrics-file",
        "metrics.json",
        "--artifact",
        "out/id.txt",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["run"]["argv"], json!(["sh", "-c", script]));
    assert_eq!(r["run"]["exit_code"], 0);
    assert!(r["run"]["duration_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(r["metrics"]["acc"], 0.8);
    // Each point with the time it was seen in the metrics file (milliseconds since 1970).
    let values = r["metrics"]["loss"]["values"].as_array().unwrap();
    let points: Vec<(i64, f64)> =
        values.iter().map(|p| (p["step"].as_i64().unwrap(), p["value"].as_f64().unwrap())).collect();
    assert_eq!(points, [(0, 3.0), (1, 2.0), (2, 1.0)]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for p in values {
        let t = p["timestamp"].as_i64().unwrap();
        assert!(t <= now && now - t < 600_000, "{p}");
    }
    assert_eq!(env.read_string("out/id.txt").trim(), r["id"].as_str().unwrap(), "TROVE_EXP_ID");
    assert_eq!(r["artifacts"][0]["path"], "out/id.txt");

    // The command's output streams through (to stderr with --json, stdout otherwise).
    let out = env.ok(&["exp", "run", "--", "sh", "-c", "echo streamed"]);
    assert!(out.stdout.starts_with("streamed\n"), "{out}");

    // A failing command: recorded as failed, and its exit code is trove's.
    let out = env.fails(
        7,
        &["exp", "run", "--name", "bad", "--metrics-file", "metrics.json", "--", "sh", "-c", "exit 7"],
    );
    assert!(out.stderr.contains("exited with code 7") && out.stderr.contains("recorded as failed"), "{out}");
    let bad = env.json(&["exp", "show", "bad"]);
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["run"]["exit_code"], 7);
    assert!(bad["metrics"].as_object().unwrap().is_empty(), "a stale metrics file is not this run's: {bad}");
    assert!(out.stderr.contains("not written by this run"), "{out}");
    assert_eq!(names(&records(&env, &["--filter", "attributes.status = 'failed'"])), ["bad"]);

    // The dirty check comes before anything runs.
    env.write("requirements.txt", "torch==2.1\n");
    let out = env.fails(1, &["exp", "run", "--", "sh", "-c", "touch ran"]);
    assert!(out.stderr.contains("uncommitted changes (requirements.txt)"), "{out}");
    assert!(!env.exists("ran"));
    // A command that cannot start records nothing.
    env.git_cmd(&["checkout", "-q", "--", "requirements.txt"]);
    let before = records(&env, &[]).len();
    let out = env.fails(1, &["exp", "run", "--", "no-such-program-here"]);
    assert!(out.stderr.contains("cannot run the command"), "{out}");
    assert_eq!(records(&env, &[]).len(), before);
    // No command is a usage error.
    env.fails(2, &["exp", "run"]);
}

/// Three records on two commits: (name, lr, opt, acc).
fn three_records() -> (Env, String, String) {
    let env = project();
    let first = head(&env);
    env.ok(&[
        "exp", "log", "--name", "r1", "-p", "lr=0.1", "-p", "opt=adam", "-m", "acc=0.80", "-t", "team=x",
    ]);
    env.write("train.py", "v2\n");
    let second = commit_all(&env, "v2");
    env.ok(&["exp", "log", "--name", "r2", "-p", "lr=0.01", "-p", "opt=sgd", "-m", "acc=0.90"]);
    env.ok(&[
        "exp", "log", "--name", "r3", "-p", "lr=0.001", "-p", "opt=adam", "-m", "acc=0.95", "-m", "loss=0.1",
    ]);
    (env, first, second)
}

#[test]
fn list_sorts_filters_limits_and_prints_csv() {
    let (env, first, second) = three_records();
    assert_eq!(names(&records(&env, &[])), ["r3", "r2", "r1"], "newest first");
    assert_eq!(names(&records(&env, &["--sort", "metrics.acc"])), ["r1", "r2", "r3"]);
    assert_eq!(names(&records(&env, &["--sort", "metrics.acc:desc"])), ["r3", "r2", "r1"]);
    assert_eq!(names(&records(&env, &["--sort", "params.lr:asc"])), ["r3", "r2", "r1"]);
    assert_eq!(names(&records(&env, &["--sort", "attributes.name:desc"])), ["r3", "r2", "r1"]);
    assert_eq!(names(&records(&env, &["--sort", "attributes.created:asc"])), ["r1", "r2", "r3"]);
    // Records without the key go last, either way.
    assert_eq!(names(&records(&env, &["--sort", "metrics.loss:asc"]))[0], "r3");
    assert_eq!(names(&records(&env, &["--sort", "metrics.loss:desc"]))[0], "r3");
    assert_eq!(names(&records(&env, &["--filter", "metrics.acc > 0.85 AND params.opt = 'adam'"])), ["r3"]);
    assert_eq!(names(&records(&env, &["--filter", "params.lr = '0.01'"])), ["r2"]);
    assert_eq!(names(&records(&env, &["--filter", "params.lr < 0.05", "--sort", "params.lr"])), ["r3", "r2"]);
    assert_eq!(names(&records(&env, &["--filter", "params.opt IN ('sgd', 'rmsprop')"])), ["r2"]);
    assert_eq!(names(&records(&env, &["--filter", "attributes.name LIKE 'r%' AND tags.team = 'x'"])), ["r1"]);
    assert_eq!(names(&records(&env, &["--filter", "metrics.`acc` >= 0.9", "--limit", "1"])), ["r3"]);
    assert_eq!(names(&records(&env, &["--commit", "HEAD~1"])), ["r1"]);
    assert_eq!(names(&records(&env, &["--commit", &first[..8]])), ["r1"]);
    assert_eq!(names(&records(&env, &["--commit", &second])), ["r3", "r2"]);
    env.fails(1, &["exp", "list", "--commit", "no-such-rev"]);

    let csv = env.ok(&["exp", "list", "--csv", "--sort", "attributes.created:asc"]).stdout;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,commit,created,user,branch,dirty,status,params.lr,params.opt,metrics.acc,metrics.loss,tags.team"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].contains(",r1,") && lines[1].ends_with(",0.1,adam,0.8,,x"), "{csv}");
    assert!(lines[1].contains(&first), "full commit ids: {csv}");

    // Not on a terminal: the whole table, nothing cut.
    let table = env.ok(&["exp", "list"]).stdout;
    let header = table.lines().next().unwrap();
    for col in [
        "ID",
        "NAME",
        "COMMIT",
        "CREATED",
        "STATUS",
        "params.lr",
        "params.opt",
        "metrics.acc",
        "metrics.loss",
    ] {
        assert!(header.contains(col), "{col}: {table}");
    }
    assert_eq!(table.lines().count(), 4);
    assert!(table.lines().nth(1).unwrap().contains("r3"));
    let out = env.ok(&["exp", "list", "--filter", "metrics.acc > 2"]);
    assert!(out.stdout.contains("no records match"), "{out}");
    env.fails(2, &["--json", "exp", "list", "--csv"]);
}

#[test]
fn filter_and_sort_errors_name_the_position() {
    let (env, _, _) = three_records();
    let out = env.fails(2, &["exp", "list", "--filter", "metrics.acc > AND params.lr = 1"]);
    assert!(out.stderr.contains("--filter: expected a value at position 15"), "{out}");
    let out = env.fails(2, &["exp", "list", "--filter", "metrics.acc > 1 OR metrics.acc < 0"]);
    assert!(out.stderr.contains("OR is not supported") && out.stderr.contains("position 17"), "{out}");
    let out = env.fails(2, &["exp", "list", "--filter", "params.opt = adam"]);
    assert!(out.stderr.contains("position 14") && out.stderr.contains("'adam'"), "{out}");
    let out = env.fails(2, &["exp", "list", "--filter", "colour = 'red'"]);
    assert!(out.stderr.contains("position 1"), "{out}");
    let out = env.fails(2, &["exp", "list", "--sort", "metrics.acc:sideways"]);
    assert!(out.stderr.contains("--sort:") && out.stderr.contains("asc"), "{out}");
}

/// Run trove with stdout on a pseudo-terminal `cols` wide; returns (stdout, stderr).
fn on_terminal(env: &Env, args: &[&str], cols: u16, columns_var: Option<&str>) -> (String, String) {
    // SAFETY: plain libc pty calls on descriptors this function owns.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(slave >= 0, "open the pty's slave");
        let ws = libc::winsize { ws_row: 40, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        assert_eq!(libc::ioctl(slave, libc::TIOCSWINSZ, &ws), 0);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    };
    let mut cmd = env.command_in(&env.root, args);
    if let Some(c) = columns_var {
        cmd.env("COLUMNS", c);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::from(slave)).stderr(Stdio::piped()).spawn().unwrap();
    drop(cmd);
    let mut master = fs::File::from(master);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    // Reading ends with EIO once the child (the last holder of the slave) exits.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(bytes).unwrap().replace('\r', ""), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn the_table_fits_the_terminal() {
    let (env, _, _) = three_records();
    let long = "a-rather-long-experiment-name-that-goes-on";
    env.ok(&[
        "exp",
        "log",
        "--name",
        long,
        "-p",
        "batch_size_for_training=64",
        "-m",
        "validation_accuracy=0.5",
    ]);
    let (wide, _) = on_terminal(&env, &["exp", "list"], 250, None);
    assert!(wide.contains(long) && wide.contains("params.batch_size_for_training"), "{wide}");
    let (narrow, hint) = on_terminal(&env, &["exp", "list", "--sort", "params.lr"], 100, None);
    assert!(narrow.lines().all(|l| l.chars().count() <= 100), "{narrow}");
    assert!(!narrow.contains(long) && narrow.contains('…'), "long names are cut:\n{narrow}");
    assert!(narrow.contains("params.lr"), "the sort key's column stays:\n{narrow}");
    assert!(hint.contains("not shown for lack of width") && hint.contains("params.opt"), "{hint}");
    assert!(narrow.lines().count() == 5, "{narrow}");
    // COLUMNS wins over the terminal's size.
    let (columns, _) = on_terminal(&env, &["exp", "list"], 100, Some("250"));
    assert!(columns.contains(long), "{columns}");
}

#[test]
fn diff_shows_what_changed() {
    let (env, _, _) = three_records();
    let d = env.json(&["exp", "diff", "r1", "r3"]);
    let find = |list: &str, key: &str| -> Value {
        d[list].as_array().unwrap().iter().find(|c| c["key"] == key).cloned().unwrap_or(Value::Null)
    };
    let acc = find("metrics", "acc");
    assert_eq!(
        (acc["a"].clone(), acc["b"].clone(), acc["changed"].clone()),
        (json!(0.8), json!(0.95), json!(true))
    );
    assert!((acc["change"].as_f64().unwrap() - 0.15).abs() < 1e-9);
    assert!((acc["relative"].as_f64().unwrap() - 0.1875).abs() < 1e-9);
    assert_eq!(find("params", "opt")["changed"], false);
    assert_eq!(find("metrics", "loss")["a"], Value::Null);
    assert_ne!(d["a_commit"], d["b_commit"]);

    // Data and environment files that changed between the two commits.
    env.write("data/b.csv", "b,3\n");
    env.write("requirements.txt", "torch==2.1\nnumpy==1.26\n");
    env.ok(&["commit", "-m", "new data"]);
    commit_all(&env, "deps");
    env.ok(&["exp", "log", "--name", "r4", "-p", "lr=0.001", "-p", "opt=adam", "-m", "acc=0.97"]);
    let d = env.json(&["exp", "diff", "r3", "r4"]);
    assert_eq!(d["data"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["data"][0]["path"], "data");
    assert_eq!(d["env_files"][0]["file"], "requirements.txt");
    assert_eq!(d["env_files"][0]["lines"], json!(["-torch==2.0", "+torch==2.1"]));
    let text = env.ok(&["exp", "diff", "r3", "r4"]).stdout;
    for part in [
        "metrics:",
        "acc: 0.95 -> 0.97  (+0.02, +2.11%)",
        "data:",
        "requirements.txt: +1 -1 lines",
        "-torch==2.0",
        "+torch==2.1",
    ] {
        assert!(text.contains(part), "{part} in:\n{text}");
    }
    assert!(!text.contains("lr:"), "unchanged params are not listed:\n{text}");

    // B defaults to the newest other record of HEAD's commit.
    env.ok(&["exp", "log", "--name", "r5", "-p", "lr=0.002"]);
    let d = env.json(&["exp", "diff", "r1"]);
    assert_eq!(d["b"], env.json(&["exp", "show", "r5"])["id"]);
    let d = env.json(&["exp", "diff", "r5"]);
    assert_eq!(d["b"], env.json(&["exp", "show", "r4"])["id"]);
    env.write("later.txt", "x");
    commit_all(&env, "later");
    let out = env.fails(2, &["exp", "diff", "r1"]);
    assert!(out.stderr.contains("trove exp diff A B"), "{out}");
    let out = env.ok(&["exp", "diff", "r4", "r4"]);
    assert!(out.stdout.contains("no differences"), "{out}");
}

#[test]
fn keys_mlflow_would_refuse_are_refused_when_logged() {
    let env = project();
    let out = env.fails(2, &["exp", "log", "-m", "top@1=0.7"]);
    assert!(out.stderr.contains("top@1") && out.stderr.contains("\"top_1\""), "{out}");
    env.fails(2, &["exp", "log", "-p", "a//b=1"]);
    env.fails(2, &["exp", "log", "-t", "team#1=vision"]);
    env.write("metrics.json", r#"{"acc": 0.9, "top@5": 0.99}"#);
    let out = env.fails(1, &["exp", "log", "--metrics-file", "metrics.json"]);
    assert!(out.stderr.contains("metrics.json") && out.stderr.contains("top@5"), "{out}");
    env.write("params.yaml", "opt:\n  \"beta?\": 0.9\n");
    let out = env.fails(1, &["exp", "log", "--params-file", "params.yaml"]);
    assert!(out.stderr.contains("params.yaml") && out.stderr.contains("opt.beta?"), "{out}");
    // `exp run` refuses before the command runs.
    env.fails(2, &["exp", "run", "-p", "lr@0=1", "--", "touch", "ran"]);
    assert!(!env.exists("ran"));
    assert!(records(&env, &[]).is_empty(), "nothing was recorded");
    // A metrics file that `exp run`'s command wrote: the run is recorded with the metrics
    // MLflow takes, and a warning names the others.
    let script = r#"printf '{"acc": 0.9, "top@5": 0.99, "loss": [1.0, 0.5]}' > metrics.json"#;
    let out = env.run(&["--json", "exp", "run", "--metrics-file", "metrics.json", "--", "sh", "-c", script]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("warning") && out.stderr.contains("top@5"), "{out}");
    let r = out.json();
    assert_eq!(r["metrics"]["acc"], json!(0.9), "{r}");
    assert!(r["metrics"].get("top@5").is_none() && r["metrics"].get("loss").is_some(), "{r}");
    env.ok(&["exp", "remove", r["id"].as_str().unwrap()]);
    // What MLflow takes is kept as given.
    let r = env.json(&["exp", "log", "-m", "val/top 1:macro=0.5", "-p", "model.depth=4"]);
    assert_eq!(r["metrics"]["val/top 1:macro"], json!(0.5));
}

#[test]
fn removed_records_leave_the_list_and_stay_in_history() {
    let env = project();
    let a = env.json(&["exp", "log", "--name", "a", "-m", "acc=0.1"])["id"].as_str().unwrap().to_string();
    let b = env.json(&["exp", "log", "--name", "b", "-m", "loss=0.5"])["id"].as_str().unwrap().to_string();
    env.write("metrics.json", r#"{"loss": [1.0, 0.5]}"#);
    let c = env.json(&["exp", "log", "--name", "c", "--metrics-file", "metrics.json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // One unknown id: nothing is removed.
    let out = env.fails(1, &["exp", "remove", "b", "no-such-run"]);
    assert!(out.stderr.contains("no-such-run"), "{out}");
    assert_eq!(records(&env, &[]).len(), 3);

    let v = env.json(&["exp", "remove", "b", &c[..12]]);
    let removed: Vec<&str> =
        v["removed"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(removed, [b.as_str(), c.as_str()], "{v}");
    assert_eq!(names(&records(&env, &[])), ["a"]);
    env.fails(1, &["exp", "show", &b]);
    // The removal is a record commit; the one before it still holds the records.
    let tree = env.git_cmd(&["ls-tree", "-r", "--name-only", "refs/trove/exps"]);
    assert!(!tree.contains(&format!("runs/{b}.json")) && tree.contains(&format!("removed/{b}")), "{tree}");
    assert!(!tree.contains(&format!("series/{c}")), "{tree}");
    assert!(tree.contains(&format!("runs/{a}.json")), "{tree}");
    let before = env.git_cmd(&["ls-tree", "-r", "--name-only", "refs/trove/exps~1"]);
    assert!(
        before.contains(&format!("runs/{b}.json")) && before.contains(&format!("series/{c}/")),
        "{before}"
    );
    assert!(env.git_cmd(&["log", "-1", "--format=%s", "refs/trove/exps"]).contains("remove"));
    // Logging goes on as before.
    env.ok(&["exp", "log", "--name", "d"]);
    assert_eq!(names(&records(&env, &["--sort", "attributes.created:asc"])), ["a", "d"]);
}

#[test]
fn a_dirty_record_names_the_data_as_the_run_had_it() {
    let env = project();
    let store = env.outside().join("store");
    env.ok(&["remote", "add", "store", store.to_str().unwrap()]);
    env.ok(&["remote", "set", "store", "layout", "1"]);
    commit_all(&env, "a data remote");
    let committed = env.pointer("data.trove");
    env.write("data/a.csv", "a,changed\n");
    env.write("data/c.csv", "c,3\n");
    let r = env.json(&["exp", "log", "--allow-dirty", "--name", "dirty-data"]);
    assert_eq!(r["dirty_paths"], json!(["data"]), "{r}");
    let data = &r["data"][0];
    assert_eq!(data["path"], "data", "{r}");
    let hash = data["hash"].as_str().unwrap();
    assert_ne!(hash, committed.hash, "the record names the workspace's data, not the commit's");
    assert_eq!(data["size"], json!("a,changed\nb,2\nc,3\n".len()), "{r}");
    assert!(env.manifest_path(hash).exists(), "the data is in the cache");
    assert!(env.object_path(&blake3_hex(b"a,changed\n")).exists());
    assert_eq!(env.pointer("data.trove"), committed, "the pointer is left alone");
    // A push sends it, as it sends artifacts.
    env.ok(&["push"]);
    assert!(store.join("objects").join(&hash[..2]).join(format!("{}.dir", &hash[2..])).exists());

    // Back to the committed data; the record brings the run's data back.
    env.ok(&["checkout", "--force", "data"]);
    assert_eq!(env.read_string("data/a.csv"), "a,1\n");
    // gc keeps it, as it keeps artifacts: no pointer names it, the record does.
    env.ok(&["gc", "-f"]);
    assert!(env.manifest_path(hash).exists(), "gc kept the record's data");
    env.ok(&["exp", "checkout", "dirty-data", "-b", "again"]);
    assert_eq!(env.read_string("data/a.csv"), "a,changed\n");
    assert_eq!(env.read_string("data/c.csv"), "c,3\n");
}
