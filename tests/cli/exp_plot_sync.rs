//! `trove exp plot` rendered by a real headless Chromium, and `trove exp sync` against a
//! real MLflow tracking server (scripts/setup-test-tools.sh installs both).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Env, blake3_hex, noise};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Record a run with `exp log` and return its id.
fn log(env: &Env, name: &str, args: &[&str], metrics: &Value) -> String {
    let file = env.outside().join(format!("{name}-metrics.json"));
    fs::write(&file, serde_json::to_vec(metrics).unwrap()).unwrap();
    let mut all = vec!["exp", "log", "--name", name, "--metrics-file", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let record = env.json(&all);
    record["id"].as_str().expect("the record's id").to_string()
}

/// A repository with one commit and three records: params lr/epochs, a metric acc and a
/// loss series.
fn three_records() -> (Env, Vec<String>) {
    let env = Env::new();
    env.write("train.py", "print('train')\n");
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-qm", "code"]);
    let ids = vec![
        log(
            &env,
            "base",
            &["-p", "lr=0.1", "-p", "epochs=10", "-m", "acc=0.81"],
            &json!({"loss": [2.0, 1.2, 0.9]}),
        ),
        log(
            &env,
            "slow",
            &["-p", "lr=0.01", "-p", "epochs=20", "-m", "acc=0.93", "-t", "team=vision"],
            &json!({"loss": [{"step": 0, "value": 2.2}, {"step": 5, "value": 0.7}, {"step": 10, "value": 0.3}]}),
        ),
        log(
            &env,
            "tiny",
            &["-p", "lr=0.001", "-p", "epochs=30", "-m", "acc=0.88"],
            &json!({"loss": [1.5, 1.4]}),
        ),
    ];
    (env, ids)
}

// ---------------------------------------------------------------------------------------
// exp plot

/// Run headless Chromium on `page` with `extra` arguments; its stdout.
fn chromium(page: &Path, extra: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the plot tests need it; run scripts/setup-test-tools.sh (apt-get install chromium)"
    );
    let profile = tempfile::Builder::new().prefix("trove-chromium-").tempdir().unwrap();
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .env("HOME", profile.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Its own process group: the helper processes go with it.
    .process_group(0);
    let mut child = Group(cmd.spawn().expect("start chromium"));
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = child.wait_for(Duration::from_secs(180));
    // Ends the helpers too, and with them the pipes the readers wait on.
    drop(child);
    let out = reader.join().unwrap().expect("chromium's output is UTF-8");
    let err = err_reader.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "chromium failed ({status:?}):\n{err}");
    out
}

/// The opening tags `<NAME …>` in `html`, as attribute maps.
fn elements(html: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let end = rest.find('>').unwrap();
        out.push(attributes(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut rest = tag.trim_end_matches('/').trim();
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 2..];
        let close = after.find('"').unwrap();
        map.insert(key, after[..close].to_string());
        rest = after[close + 1..].trim_start();
    }
    map
}

fn with_class<'a>(
    all: &'a [BTreeMap<String, String>],
    class: &str,
) -> impl Iterator<Item = &'a BTreeMap<String, String>> {
    all.iter().filter(move |e| e.get("class").is_some_and(|c| c.split(' ').any(|x| x == class)))
}

#[test]
fn plot_renders_one_line_per_experiment_in_chromium() {
    let (env, ids) = three_records();
    let out = env.ok(&["exp", "plot", "-o", "plot.html"]);
    assert!(out.stdout.contains("3 experiments"), "{out}");
    let page = env.path("plot.html");
    let html = fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page refers to the network");
    assert!(!html.contains(" src=") && !html.contains("<link"), "the page loads something from elsewhere");

    let dom = chromium(&page, &["--dump-dom".to_string()]);
    // The parallel-coordinates plot: one axis per param and metric, one line per experiment.
    let svgs = elements(&dom, "svg");
    assert_eq!(with_class(&svgs, "parallel").count(), 1, "{dom}");
    let groups = elements(&dom, "g");
    let axes: Vec<&str> = with_class(&groups, "pc-axis").map(|g| g["data-axis"].as_str()).collect();
    assert_eq!(axes, ["params.epochs", "params.lr", "metrics.acc", "metrics.loss"]);
    let paths = elements(&dom, "path");
    let lines: Vec<&BTreeMap<String, String>> = with_class(&paths, "pc-line").collect();
    assert_eq!(lines.len(), 3);
    for id in &ids {
        let mine: Vec<_> = lines.iter().filter(|p| p["data-exp"] == *id).collect();
        assert_eq!(mine.len(), 1, "one line for {id}");
        // Every record has all four values: one unbroken line through the four axes.
        assert_eq!(mine[0]["d"].matches('L').count(), 3, "{:?}", mine[0]);
    }
    // The series chart: one line per experiment for loss.
    assert_eq!(with_class(&svgs, "series").filter(|s| s["data-metric"] == "loss").count(), 1);
    let polylines = elements(&dom, "polyline");
    let series: Vec<_> = with_class(&polylines, "series-line").collect();
    assert_eq!(series.len(), 3);
    for id in &ids {
        let mine: Vec<_> = series.iter().filter(|p| p["data-exp"] == *id).collect();
        assert_eq!(mine.len(), 1, "one series line for {id}");
        assert_eq!(mine[0]["data-metric"], "loss");
    }
    assert_eq!(series.iter().find(|p| p["data-exp"] == ids[1]).unwrap()["points"].split(' ').count(), 3);
    // The legend names each experiment.
    for name in ["base", "slow", "tiny"] {
        assert!(dom.contains(&format!("</code> {name}</li>")), "legend lacks {name}");
    }

    // A screenshot shows the lines in their colours.
    let png = env.outside().join("plot.png");
    chromium(&page, &[format!("--screenshot={}", png.display()), "--window-size=1200,800".to_string()]);
    let bytes = fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1200);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 800);
    let (inked, coloured) = count_pixels(&png);
    // A blank page has none; text and axes are grey, the experiments' lines are coloured.
    assert!(inked > 10_000, "only {inked} non-white pixels");
    assert!(coloured > 2_000, "only {coloured} coloured pixels");
}

#[test]
fn plot_takes_ids_and_names_and_refuses_unknown_ones() {
    let (env, ids) = three_records();
    let prefix = &ids[0][..12];
    let doc = env.json(&["exp", "plot", prefix, "tiny", "-o", "two.html"]);
    assert_eq!(doc["experiments"], json!([ids[0], ids[2]]));
    assert_eq!(doc["series"], json!(["loss"]));
    let html = env.read_string("two.html");
    assert_eq!(html.matches("class=\"pc-line\"").count(), 2);
    assert!(!html.contains(&ids[1]));
    // Same records, same bytes.
    env.ok(&["exp", "plot", prefix, "tiny", "-o", "again.html"]);
    assert_eq!(env.read_string("again.html"), html);
    // The default file, in the current folder.
    env.write("sub/keep", "");
    let out = env.run_in(&env.path("sub"), &["exp", "plot"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(env.read_string("sub/trove-exps.html").contains("class=\"pc-line\""));
    let out = env.fails(1, &["exp", "plot", "nosuchrun"]);
    assert!(out.stderr.contains("nosuchrun"), "{out}");
}

#[test]
fn plot_without_records_fails_clearly() {
    let env = Env::new();
    let out = env.fails(1, &["exp", "plot"]);
    assert!(out.stderr.contains("no records"), "{out}");
}

/// Non-white pixels, and strongly coloured ones, of a PNG (decoded by python3's zlib:
/// no image crate needed).
fn count_pixels(png: &Path) -> (u64, u64) {
    const SCRIPT: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
pos, idat, width, height, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8, depth
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
bpp = {2: 3, 6: 4}[ctype]
raw, stride = zlib.decompress(idat), width * bpp
prev, inked, coloured, i = bytearray(stride), 0, 0, 0
for _ in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        r, g, bl = line[x], line[x + 1], line[x + 2]
        if min(r, g, bl) < 240: inked += 1
        if max(r, g, bl) - min(r, g, bl) > 60: coloured += 1
    prev = line
print(inked, coloured)
"#;
    let out = Command::new("python3").arg("-c").arg(SCRIPT).arg(png).output().expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = text.split_whitespace().map(|s| s.parse::<u64>().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

// ---------------------------------------------------------------------------------------
// exp sync

/// A child process in its own process group, killed with its group when dropped.
struct Group(Child);

impl Group {
    fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The whole group: the leader and every worker or helper it started. Nothing it
        // holds outlives the test, so there is no need to stop it gently.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// The mlflow command: TROVE_TEST_MLFLOW (scripts/test.sh sets it), else the venv that
/// scripts/setup-test-tools.sh makes.
fn mlflow_bin() -> PathBuf {
    let bin = std::env::var_os("TROVE_TEST_MLFLOW")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/mlflow/bin/mlflow"));
    assert!(
        bin.exists(),
        "{} is missing: the sync tests need MLflow; run scripts/setup-test-tools.sh",
        bin.display()
    );
    bin
}

/// A real MLflow tracking server on 127.0.0.1, with a SQLite store in a temp folder.
struct Mlflow {
    uri: String,
    port: u16,
    log: PathBuf,
    _process: Group,
    _dir: tempfile::TempDir,
}

impl Mlflow {
    fn start() -> Mlflow {
        let bin = mlflow_bin();
        let dir = tempfile::Builder::new().prefix("trove-mlflow-").tempdir().unwrap();
        let log = dir.path().join("server.log");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("ml.db").display()))
            // Artifacts through the server's proxy (mlflow-artifacts:/…), as in production.
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.path().join("server.err")).unwrap())
            .process_group(0);
        let mut process = Group(cmd.spawn().expect("start mlflow server"));
        let uri = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            if ureq::get(format!("{uri}/health")).call().is_ok() {
                break;
            }
            if let Some(status) = process.0.try_wait().unwrap() {
                panic!(
                    "mlflow server exited ({status}) before answering:\n{}",
                    fs::read_to_string(dir.path().join("server.err")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "mlflow server did not answer /health in 180 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Mlflow { uri, port, log, _process: process, _dir: dir }
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let mut req = ureq::get(format!("{}/api/2.0/mlflow/{endpoint}", self.uri));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {endpoint}: {e}\n{}", self.log.display()));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn post(&self, endpoint: &str, body: &Value) -> Value {
        let mut resp = ureq::post(format!("{}/api/2.0/mlflow/{endpoint}", self.uri))
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(body).unwrap())
            .unwrap_or_else(|e| panic!("POST {endpoint}: {e}"));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn experiment_id(&self, name: &str) -> String {
        let exp = self.get("experiments/get-by-name", &[("experiment_name", name)]);
        exp["experiment"]["experiment_id"].as_str().unwrap().to_string()
    }

    /// The active runs of an experiment.
    fn runs(&self, experiment_id: &str) -> Vec<Value> {
        let found =
            self.post("runs/search", &json!({"experiment_ids": [experiment_id], "max_results": 1000}));
        found["runs"].as_array().cloned().unwrap_or_default()
    }
}

fn pairs(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].as_str().unwrap().to_string()))
        .collect()
}

fn count(doc: &Value, key: &str) -> usize {
    doc[key].as_array().unwrap_or_else(|| panic!("{key} in {doc}")).len()
}

#[test]
fn sync_sends_runs_to_mlflow_once() {
    let server = Mlflow::start();
    let (env, ids) = three_records();
    // A long series: several log-batch requests (MLflow takes at most 1000 metrics each).
    let long: Vec<f64> = (0..2500).map(|i| 1.0 / f64::from(i + 1)).collect();
    let long_id = log(&env, "long", &["-p", "lr=0.5", "-p", "epochs=2500"], &json!({ "loss": long }));
    let head = env.git_cmd(&["rev-parse", "HEAD"]).trim().to_string();

    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (4, 0), "{doc}");
    assert_eq!(doc["created_experiment"], json!(true));
    let exp_id = server.experiment_id("e2e");
    assert_eq!(doc["experiment_id"], json!(exp_id));

    let runs = server.runs(&exp_id);
    assert_eq!(runs.len(), 4);
    let by_record: BTreeMap<String, &Value> =
        runs.iter().map(|r| (pairs(&r["data"]["tags"])["trove.id"].clone(), r)).collect();
    let expected_loss: [(&str, Vec<(i64, f64)>); 3] = [
        ("base", vec![(0, 2.0), (1, 1.2), (2, 0.9)]),
        ("slow", vec![(0, 2.2), (5, 0.7), (10, 0.3)]),
        ("tiny", vec![(0, 1.5), (1, 1.4)]),
    ];
    for (id, (name, loss)) in ids.iter().zip(expected_loss) {
        let run = by_record.get(id).unwrap_or_else(|| panic!("no run for {id}"));
        let run_id = run["info"]["run_id"].as_str().unwrap();
        assert_eq!(run["info"]["status"], "FINISHED");
        assert_eq!(run["info"]["run_name"], name);
        let tags = pairs(&run["data"]["tags"]);
        assert_eq!(tags["mlflow.runName"], name);
        assert_eq!(tags["mlflow.source.git.commit"], head);
        assert_eq!(tags["mlflow.source.git.branch"], env.git_cmd(&["branch", "--show-current"]).trim());
        assert_eq!(tags["mlflow.user"], "Trove Tester <tester@example.com>");
        let params = pairs(&run["data"]["params"]);
        assert_eq!(params.keys().collect::<Vec<_>>(), ["epochs", "lr"]);
        let acc = run["data"]["metrics"].as_array().unwrap().iter().find(|m| m["key"] == "acc").unwrap();
        assert_eq!(acc["step"], json!(0));
        let history = server.get("metrics/get-history", &[("run_id", run_id), ("metric_key", "loss")]);
        let mut points: Vec<(i64, f64)> = history["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
            .collect();
        points.sort_by_key(|p| p.0);
        assert_eq!(points, loss, "loss history of {name}");
    }
    let slow = pairs(&by_record[&ids[1]]["data"]["tags"]);
    assert_eq!(slow["team"], "vision");
    assert_eq!(pairs(&by_record[&ids[0]]["data"]["params"])["lr"], "0.1");
    let long_run = by_record[&long_id]["info"]["run_id"].as_str().unwrap();
    let history = server.get("metrics/get-history", &[("run_id", long_run), ("metric_key", "loss")]);
    assert_eq!(history["metrics"].as_array().unwrap().len(), 2500);

    // Again: nothing new is sent.
    let out = env.ok(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    assert!(out.stdout.contains("synced 0, already there 4"), "{out}");
    assert_eq!(server.runs(&exp_id).len(), 4);

    // A sync cut short leaves a RUNNING run tagged with its record: the next sync replaces it.
    let fifth = log(&env, "fifth", &["-p", "lr=0.2"], &json!({"loss": [1.0]}));
    let stale = server.post(
        "runs/create",
        &json!({"experiment_id": exp_id, "run_name": "fifth", "tags": [{"key": "trove.id", "value": fifth}]}),
    );
    let stale_id = stale["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (1, 4), "{doc}");
    assert_eq!(doc["replaced"], json!([stale_id]));
    let runs = server.runs(&exp_id);
    assert_eq!(runs.len(), 5);
    let fifth_run = runs.iter().find(|r| pairs(&r["data"]["tags"])["trove.id"] == fifth).unwrap();
    assert_eq!(fifth_run["info"]["status"], "FINISHED");
    assert_ne!(fifth_run["info"]["run_id"], json!(stale_id));

    // Without --experiment and without an origin: the repository's folder name. The runs
    // are found in the other experiment: none is sent twice.
    let out = env.ok(&["exp", "sync", "--mlflow", &format!("{}/", server.uri)]);
    assert!(out.stdout.contains("synced 0, already there 5") && out.stdout.contains("\"repo\""), "{out}");
    assert_eq!(server.runs(&server.experiment_id("repo")).len(), 0);
}

/// Every run of the server (any experiment, deleted ones too) made for `record`.
fn runs_of_record(server: &Mlflow, record: &str) -> Vec<Value> {
    let exps = server.post("experiments/search", &json!({"max_results": 1000, "view_type": "ALL"}));
    let ids: Vec<Value> =
        exps["experiments"].as_array().unwrap().iter().map(|e| e["experiment_id"].clone()).collect();
    let found = server.post(
        "runs/search",
        &json!({"experiment_ids": ids, "max_results": 1000, "run_view_type": "ALL",
                "filter": format!("tags.`trove.id` = '{record}'")}),
    );
    found["runs"].as_array().cloned().unwrap_or_default()
}

/// Change a stored record's JSON text as an older trove (or a hand edit) could have left
/// it: a new record commit with `runs/<id>.json` replaced.
fn rewrite_record(env: &Env, id: &str, from: &str, to: &str) {
    let git = env.git();
    let tip = git.find_reference("refs/trove/exps").unwrap().peel_to_commit().unwrap();
    let tree = tip.tree().unwrap();
    let runs = git.find_tree(tree.get_name("runs").unwrap().id()).unwrap();
    let name = format!("{id}.json");
    let blob = git.find_blob(runs.get_name(&name).unwrap().id()).unwrap();
    let text = String::from_utf8(blob.content().to_vec()).unwrap();
    assert!(text.contains(from), "{text}");
    let new_blob = git.blob(text.replace(from, to).as_bytes()).unwrap();
    let mut runs_builder = git.treebuilder(Some(&runs)).unwrap();
    runs_builder.insert(&name, new_blob, 0o100644).unwrap();
    let new_runs = runs_builder.write().unwrap();
    let mut top = git.treebuilder(Some(&tree)).unwrap();
    top.insert("runs", new_runs, 0o040000).unwrap();
    let new_tree = git.find_tree(top.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    git.commit(Some("refs/trove/exps"), &sig, &sig, "edit", &new_tree, &[&tip]).unwrap();
}

#[test]
fn sync_skips_a_record_mlflow_refuses_and_sends_the_others() {
    let server = Mlflow::start();
    let env = Env::new();
    env.write("train.py", "print('train')\n");
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-qm", "code"]);
    let first = log(&env, "first", &["-m", "acc=0.8"], &json!({"loss": [1.0, 0.5]}));
    let bad = log(&env, "bad", &["-m", "top_1=0.7", "-p", "lr=0.1"], &json!({"loss": [1.0, 0.4]}));
    // MLflow allows no `@` in a metric name.
    rewrite_record(&env, &bad, "\"top_1\"", "\"top@1\"");
    let later = log(&env, "later", &["-m", "acc=0.9"], &json!({"loss": [0.9]}));

    let out = env.fails(1, &["exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    assert!(out.stderr.contains(&bad[..10]) && out.stderr.contains("bad"), "{out}");
    assert!(out.stderr.contains("refused") && out.stderr.contains("top@1"), "{out}");
    assert!(out.stdout.contains("synced 2, already there 0, refused 1"), "{out}");
    let exp_id = server.experiment_id("e2e");
    let runs = server.runs(&exp_id);
    let mut sent: Vec<String> = runs.iter().map(|r| pairs(&r["data"]["tags"])["trove.id"].clone()).collect();
    sent.sort();
    assert_eq!(sent, [first.clone(), later.clone()], "the record logged after the refused one arrives too");
    assert!(runs.iter().all(|r| r["info"]["status"] == "FINISHED"), "{runs:?}");
    // The run made for the refused record is not left RUNNING: it is deleted.
    for run in runs_of_record(&server, &bad) {
        assert_eq!(run["info"]["lifecycle_stage"], "deleted", "{run}");
    }

    // Again: the refused record is refused again, nothing else is sent, no run piles up.
    let out = env.fails(1, &["--json", "exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((count(&doc, "synced"), count(&doc, "already"), count(&doc, "refused")), (0, 2, 1), "{doc}");
    assert_eq!(doc["refused"][0]["id"], json!(bad));
    assert!(doc["error"].as_str().unwrap().contains("bad"), "{doc}");
    assert_eq!(server.runs(&exp_id).len(), 2);
    assert!(runs_of_record(&server, &bad).iter().all(|r| r["info"]["lifecycle_stage"] == "deleted"));

    // Once the refused record is removed, the sync succeeds.
    env.ok(&["exp", "remove", &bad]);
    let out = env.ok(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "e2e"]);
    assert!(out.stdout.contains("synced 0, already there 2 ("), "{out}");
}

#[test]
fn clones_sync_to_one_experiment_named_after_the_repository() {
    let server = Mlflow::start();
    let shared = tempfile::Builder::new().prefix("trove-shared-").tempdir().unwrap();
    let bare = shared.path().join("vision.git");
    fs::create_dir(&bare).unwrap();
    let alice = Env::new();
    alice.git_cmd(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    alice.write("train.py", "print('train')\n");
    alice.git_cmd(&["add", "-A"]);
    alice.git_cmd(&["commit", "-qm", "code"]);
    alice.git_cmd(&["remote", "add", "origin", bare.to_str().unwrap()]);
    alice.git_cmd(&["push", "-q", "origin", "HEAD"]);
    log(&alice, "a1", &["-m", "acc=0.8"], &json!({}));
    log(&alice, "a2", &["-m", "acc=0.9"], &json!({}));
    alice.ok(&["exp", "push"]);

    let out = alice.ok(&["exp", "sync", "--mlflow", &server.uri]);
    assert!(out.stdout.contains("synced 2, already there 0") && out.stdout.contains("\"vision\""), "{out}");
    let exp_id = server.experiment_id("vision");

    // A second clone: the same experiment, nothing sent twice.
    let bob = crate::common::clone_repo(&bare);
    bob.ok(&["exp", "pull"]);
    let doc = bob.json(&["exp", "sync", "--mlflow", &server.uri]);
    assert_eq!(doc["experiment"], "vision", "{doc}");
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (0, 2), "{doc}");
    log(&bob, "b1", &["-m", "acc=0.7"], &json!({}));
    // Even syncing to another experiment finds the runs already there, wherever they are.
    let doc = bob.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "elsewhere"]);
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (1, 2), "{doc}");
    assert_eq!(server.runs(&exp_id).len(), 2);

    // The committed setting names the experiment for every clone.
    alice.ok(&["config", "exp.mlflow_experiment", "team runs"]);
    alice.git_cmd(&["commit", "-qam", "runs go to one experiment"]);
    log(&alice, "a3", &["-m", "acc=0.95"], &json!({}));
    let doc = alice.json(&["exp", "sync", "--mlflow", &server.uri]);
    assert_eq!(doc["experiment"], "team runs", "{doc}");
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (1, 2), "{doc}");
    assert_eq!(server.runs(&server.experiment_id("team runs")).len(), 1);
}

#[test]
fn sync_refuses_what_it_cannot_reach() {
    let (env, _) = three_records();
    let out = env.fails(2, &["exp", "sync", "--mlflow", "databricks"]);
    assert!(out.stderr.contains("not an MLflow tracking server URI"), "{out}");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{port}");
    let out = env.fails(1, &["exp", "sync", "--mlflow", &uri]);
    assert!(out.stderr.contains(&uri) && out.stderr.contains("cannot connect"), "{out}");
    // Credentials in the URI are never printed.
    let out = env.fails(1, &["exp", "sync", "--mlflow", &format!("http://ann:hunter2@127.0.0.1:{port}")]);
    assert!(!out.stderr.contains("hunter2"), "{out}");
}

/// Run trove with extra environment variables; it must succeed.
fn ok_with(env: &Env, vars: &[(&str, &Path)], args: &[&str]) -> crate::common::Out {
    let mut cmd = env.command_in(&env.path(""), args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let out = crate::common::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(out.code, 0, "{out}");
    out
}

impl Mlflow {
    /// An artifact's bytes, downloaded through the server's artifact proxy.
    fn download(&self, experiment_id: &str, run_id: &str, path: &str) -> Vec<u8> {
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
            self.uri
        );
        let mut resp = ureq::get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.body_mut().read_to_vec().unwrap()
    }

    /// Every file among a run's artifacts (REST `artifacts/list`, folders walked).
    fn artifact_files(&self, run_id: &str, path: &str) -> Vec<(String, u64)> {
        let listing = self.get("artifacts/list", &[("run_id", run_id), ("path", path)]);
        let mut out = Vec::new();
        for f in listing["files"].as_array().into_iter().flatten() {
            let p = f["path"].as_str().unwrap().to_string();
            if f["is_dir"].as_bool() == Some(true) {
                out.extend(self.artifact_files(run_id, &p));
            } else {
                out.push((
                    p,
                    f["file_size"]
                        .as_str()
                        .map_or_else(|| f["file_size"].as_u64().unwrap(), |s| s.parse().unwrap()),
                ));
            }
        }
        out.sort();
        out
    }
}

/// A repository with tracked data, a requirements.txt and a fake venv holding `foo 1.2`.
fn project_with_venv() -> (Env, PathBuf) {
    let env = Env::new();
    env.write("data/a.csv", "a,1\n");
    env.write("requirements.txt", "torch==2.0\n");
    env.write("train.py", "print('train')\n");
    env.write(".gitignore", "/model.bin\n/out/\n");
    env.ok(&["add", "data"]);
    env.ok(&["config", "exp.interpreters", "[git]"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-qm", "code and data"]);
    let venv = env.outside().join("venv");
    let site = venv.join("lib/python3.11/site-packages");
    for (dir, text) in [
        ("foo-1.2.dist-info", "Metadata-Version: 2.1\nName: foo\nVersion: 1.2\n\nA long description.\n"),
        ("Bar_Baz-0.3.dist-info", "Metadata-Version: 2.1\nName: Bar_Baz\nVersion: 0.3\n"),
    ] {
        fs::create_dir_all(site.join(dir)).unwrap();
        fs::write(site.join(dir).join("METADATA"), text).unwrap();
    }
    (env, venv)
}

#[test]
fn a_record_lists_the_packages_of_its_virtual_env() {
    let (env, venv) = project_with_venv();
    let vars = [("VIRTUAL_ENV", venv.as_path())];
    let record: Value =
        serde_json::from_str(&ok_with(&env, &vars, &["--json", "exp", "log", "--name", "first"]).stdout)
            .unwrap();
    assert_eq!(record["env"]["packages"], json!(["Bar_Baz==0.3", "foo==1.2"]), "{record}");
    let out = env.ok(&["exp", "show", "-v", "first"]);
    assert!(out.stdout.contains("2 Python packages") && out.stdout.contains("| foo==1.2"), "{out}");
    // Another version of foo: exp diff names it.
    let meta = venv.join("lib/python3.11/site-packages/foo-1.2.dist-info/METADATA");
    fs::write(&meta, "Name: foo\nVersion: 1.3\n").unwrap();
    ok_with(&env, &vars, &["exp", "log", "--name", "second"]);
    let out = env.ok(&["exp", "diff", "first", "second"]);
    assert!(out.stdout.contains("package foo: 1.2 -> 1.3"), "{out}");
    assert!(!out.stdout.contains("Bar_Baz"), "{out}");
    // The setting turns the list off.
    env.ok(&["config", "exp.packages", "false"]);
    let record: Value = serde_json::from_str(
        &ok_with(&env, &vars, &["--json", "exp", "log", "--name", "third", "--allow-dirty"]).stdout,
    )
    .unwrap();
    assert!(record["env"].get("packages").is_none(), "{record}");
    env.fails(2, &["config", "exp.packages", "maybe"]);
}

#[test]
fn sync_sends_artifacts_packages_inputs_and_the_command() {
    let server = Mlflow::start();
    let (env, venv) = project_with_venv();
    let vars = [("VIRTUAL_ENV", venv.as_path())];
    let script = "mkdir -p out && printf 'weights v1' > model.bin && printf 'plot' > 'out/loss plot.svg'";
    let record: Value = serde_json::from_str(
        &ok_with(
            &env,
            &vars,
            &[
                "--json",
                "exp",
                "run",
                "--name",
                "trained",
                "--artifact",
                "model.bin",
                "out",
                "--",
                "sh",
                "-c",
                script,
            ],
        )
        .stdout,
    )
    .unwrap();

    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "art"]);
    assert_eq!(count(&doc, "synced"), 1, "{doc}");
    assert_eq!(doc["unsent"], json!([]), "{doc}");
    let exp_id = server.experiment_id("art");
    let run = &server.runs(&exp_id)[0];
    let run_id = run["info"]["run_id"].as_str().unwrap();
    assert_eq!(run["info"]["status"], "FINISHED");

    // The artifacts, listed through the REST API and downloaded through the proxy.
    let files = server.artifact_files(run_id, "");
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["model.bin", "out/loss plot.svg", "trove/env/requirements.txt", "trove/packages.txt"],
        "{files:?}"
    );
    assert_eq!(files[0].1, 10);
    assert_eq!(server.download(&exp_id, run_id, "model.bin"), b"weights v1");
    assert_eq!(server.download(&exp_id, run_id, "out/loss%20plot.svg"), b"plot");
    assert_eq!(server.download(&exp_id, run_id, "trove/env/requirements.txt"), b"torch==2.0\n");
    assert_eq!(server.download(&exp_id, run_id, "trove/packages.txt"), b"Bar_Baz==0.3\nfoo==1.2\n");

    // The data as a dataset input, the command as tags.
    let got = server.get("runs/get", &[("run_id", run_id)]);
    let inputs = got["run"]["inputs"]["dataset_inputs"].as_array().expect("dataset inputs");
    assert_eq!(inputs.len(), 1, "{got}");
    let dataset = &inputs[0]["dataset"];
    let hash = record["data"][0]["hash"].as_str().unwrap();
    assert_eq!(dataset["name"], "data");
    assert_eq!(dataset["digest"], &hash[..36]);
    assert_eq!(dataset["source_type"], "trove");
    let source: Value = serde_json::from_str(dataset["source"].as_str().unwrap()).unwrap();
    assert_eq!(source["hash"], hash);
    assert_eq!(source["commit"], record["commit"]);
    let tags = pairs(&got["run"]["data"]["tags"]);
    let command = format!("sh -c '{}'", script.replace('\'', "'\\''"));
    assert_eq!(tags["trove.command"], command);
    assert_eq!(tags["mlflow.source.name"], command);
    assert!(!tags.contains_key("trove.artifacts.missing"), "{tags:?}");

    // Again: nothing is sent twice.
    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "art"]);
    assert_eq!((count(&doc, "synced"), count(&doc, "already")), (0, 1), "{doc}");
    assert_eq!(server.artifact_files(run_id, "").len(), 4);
    assert_eq!(server.runs(&exp_id).len(), 1);

    // An artifact whose object the cache lacks: the run goes without it, says so, and a
    // later sync that has the object sends it.
    fs::write(env.path("model.bin"), "weights v2").unwrap();
    let second: Value = serde_json::from_str(
        &ok_with(&env, &vars, &["--json", "exp", "log", "--name", "later", "--artifact", "model.bin"]).stdout,
    )
    .unwrap();
    let hash = second["artifacts"][0]["hash"].as_str().unwrap();
    let object = env.object_path(hash);
    let saved = fs::read(&object).unwrap();
    let mut perms = fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&object, perms).unwrap();
    fs::remove_file(&object).unwrap();
    let out = env.ok(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "art"]);
    assert!(out.stderr.contains("model.bin") && out.stderr.contains("not in the local cache"), "{out}");
    let later = server.runs(&exp_id).into_iter().find(|r| r["info"]["run_name"] == "later").unwrap();
    let later_id = later["info"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(pairs(&later["data"]["tags"])["trove.artifacts.missing"], "1");
    assert!(server.artifact_files(&later_id, "").iter().all(|(p, _)| p != "model.bin"));
    fs::write(&object, saved).unwrap();
    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "art"]);
    assert_eq!((count(&doc, "synced"), count(&doc, "completed")), (0, 1), "{doc}");
    assert_eq!(server.download(&exp_id, &later_id, "model.bin"), b"weights v2");
    let tags = pairs(&server.get("runs/get", &[("run_id", &later_id)])["run"]["data"]["tags"]);
    assert!(!tags.contains_key("trove.artifacts.missing"), "{tags:?}");
}

/// (step, timestamp) of a run's metric history.
fn history_times(server: &Mlflow, run_id: &str, key: &str) -> Vec<(i64, i64)> {
    let history = server.get("metrics/get-history", &[("run_id", run_id), ("metric_key", key)]);
    let mut out: Vec<(i64, i64)> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["step"].as_i64().unwrap(), m["timestamp"].as_i64().unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn series_points_keep_their_times_in_mlflow() {
    let server = Mlflow::start();
    let env = Env::new();
    env.write("train.py", "print('train')\n");
    env.write(".gitignore", "/metrics.json\n");
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-qm", "code"]);
    // exp run: a point is stamped when it first appears in the metrics file.
    let script =
        r#"printf '{"loss": [1.0]}' > metrics.json; sleep 2; printf '{"loss": [1.0, 0.5]}' > metrics.json"#;
    let out = env.ok(&[
        "exp",
        "run",
        "--name",
        "staged",
        "--metrics-file",
        "metrics.json",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.code == 0, "{out}");
    let shown = env.json(&["exp", "show", "staged"]);
    let values = shown["metrics"]["loss"]["values"].as_array().unwrap();
    let (t0, t1) = (values[0]["timestamp"].as_i64().unwrap(), values[1]["timestamp"].as_i64().unwrap());
    assert!(t1 - t0 >= 1000, "{values:?}");
    // exp log: times the metrics file gives (seconds, milliseconds or RFC 3339).
    let timed = json!({"acc": [
        {"step": 0, "value": 0.5, "timestamp": 1_795_000_000},
        {"step": 1, "value": 0.7, "timestamp": 1_795_000_060_000_i64},
        {"step": 2, "value": 0.9, "timestamp": "2026-11-18T11:08:40Z"},
    ]});
    log(&env, "timed", &[], &timed);

    env.ok(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "times"]);
    let runs = server.runs(&server.experiment_id("times"));
    let run_id = |name: &str| {
        let run = runs.iter().find(|r| r["info"]["run_name"] == name).unwrap();
        run["info"]["run_id"].as_str().unwrap().to_string()
    };
    assert_eq!(history_times(&server, &run_id("staged"), "loss"), [(0, t0), (1, t1)]);
    assert_eq!(
        history_times(&server, &run_id("timed"), "acc"),
        [(0, 1_795_000_000_000), (1, 1_795_000_060_000), (2, 1_795_000_120_000)]
    );
}

#[test]
fn sync_over_https_checks_the_certificate() {
    let server = Mlflow::start();
    let front = crate::s3_remote::tls_front(server.port);
    let (env, _) = three_records();
    env.write("model.bin", "weights");
    env.ok(&["exp", "log", "--name", "with-artifact", "--artifact", "model.bin", "--allow-dirty"]);
    let uri = format!("https://127.0.0.1:{}", front.port);
    // A private CA the public roots do not know: refused, clearly.
    let out = env.fails(1, &["exp", "sync", "--mlflow", &uri]);
    assert!(out.stderr.contains("TLS") && out.stderr.contains("MLFLOW_TRACKING_SERVER_CERT_PATH"), "{out}");
    // Another CA's file: refused too.
    let other = crate::s3_remote::tls_front(server.port);
    let mut cmd = env.command_in(&env.path(""), &["exp", "sync", "--mlflow", &uri]);
    cmd.env("MLFLOW_TRACKING_SERVER_CERT_PATH", &other.ca);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
    // The right CA, with a token: everything arrives, artifacts too; the token is never shown.
    let mut cmd =
        env.command_in(&env.path(""), &["--json", "exp", "sync", "--mlflow", &uri, "--experiment", "tls"]);
    cmd.env("MLFLOW_TRACKING_SERVER_CERT_PATH", &front.ca).env("MLFLOW_TRACKING_TOKEN", "tok-s3cr3t");
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("tok-s3cr3t") && !stderr.contains("tok-s3cr3t"));
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(count(&doc, "synced"), 4, "{doc}");
    assert_eq!(doc["mlflow"], uri);
    let exp_id = server.experiment_id("tls");
    let run = server.runs(&exp_id).into_iter().find(|r| r["info"]["run_name"] == "with-artifact").unwrap();
    let run_id = run["info"]["run_id"].as_str().unwrap();
    assert_eq!(server.download(&exp_id, run_id, "model.bin"), b"weights");
    // MLFLOW_TRACKING_INSECURE_TLS=true skips the check, as MLflow's own client does.
    let mut cmd = env.command_in(&env.path(""), &["exp", "sync", "--mlflow", &uri, "--experiment", "tls"]);
    cmd.env("MLFLOW_TRACKING_INSECURE_TLS", "true");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("synced 0, already there 4"));
}

/// The MLflow Python client beside the `mlflow` command, downloading `uri` into `dst`:
/// the file paths under what it returned, each with its bytes.
fn mlflow_download(server: &Mlflow, uri: &str, dst: &Path) -> Vec<(String, Vec<u8>)> {
    let python = mlflow_bin().parent().unwrap().join("python");
    let script =
        "import sys, mlflow\nprint(mlflow.artifacts.download_artifacts(sys.argv[1], dst_path=sys.argv[2]))\n";
    let out = Command::new(python)
        .args(["-c", script, uri])
        .arg(dst)
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .env("HOME", dst.parent().unwrap())
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("run the MLflow Python client");
    assert!(out.status.success(), "download {uri}: {}", String::from_utf8_lossy(&out.stderr));
    let root = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let mut files = Vec::new();
    crate::common::walk(&root, &mut files);
    let mut found: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), fs::read(f).unwrap()))
        .collect();
    found.sort();
    found
}

#[test]
fn registered_models_reach_mlflows_model_registry() {
    let server = Mlflow::start();
    let env = Env::new();
    env.write("models/churn.pkl", "churn v1 bytes");
    env.ok(&["add", "models/churn.pkl"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "v1"]);
    env.ok(&["model", "register", "churn", "models/churn.pkl", "-m", "from a path"]);
    env.write("out/model.onnx", "churn v2 onnx");
    env.ok(&["exp", "log", "--name", "run-2", "-m", "acc=0.91", "--artifact", "out/model.onnx"]);
    env.ok(&["model", "register", "churn", "--exp", "run-2"]);
    env.write("models/bert/config.json", "{}");
    env.write("models/bert/weights.bin", noise(5000, 1));
    env.ok(&["add", "models/bert"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "bert"]);
    env.ok(&["model", "register", "bert", "models/bert"]);
    env.ok(&["model", "promote", "churn", "0.1.0", "--stage", "prod"]);
    env.ok(&["model", "promote", "churn", "0.2.0", "--alias", "champion"]);
    env.ok(&["model", "promote", "bert", "0.1.0", "--stage", "staging"]);

    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "reg"]);
    assert_eq!(doc["models"]["sent"].as_array().unwrap().len(), 3, "{doc}");
    let dl = tempfile::Builder::new().prefix("trove-mlflow-dl-").tempdir().unwrap();
    // The real MLflow client gets the bytes trove registered, by alias and by stage.
    let got = mlflow_download(&server, "models:/churn@prod", &dl.path().join("a"));
    assert_eq!(got, [("churn.pkl".to_string(), b"churn v1 bytes".to_vec())]);
    let got = mlflow_download(&server, "models:/churn@champion", &dl.path().join("b"));
    assert_eq!(got, [("model.onnx".to_string(), b"churn v2 onnx".to_vec())]);
    let got = mlflow_download(&server, "models:/bert/Staging", &dl.path().join("c"));
    assert_eq!(
        got,
        [("config.json".to_string(), b"{}".to_vec()), ("weights.bin".to_string(), noise(5000, 1))]
    );

    // The version from a record belongs to the record's run; its number and hash are tags.
    let run_id = doc["synced"][0]["run_id"].as_str().unwrap();
    let versions = server.get("model-versions/search", &[("filter", "name='churn'")]);
    let v2 = versions["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| pairs(&v["tags"]).get("trove.version").map(String::as_str) == Some("v0.2.0"))
        .unwrap()
        .clone();
    assert_eq!(v2["run_id"], run_id);
    assert_eq!(pairs(&v2["tags"])["trove.hash"], blake3_hex(b"churn v2 onnx"));

    // A second sync sends nothing; moved labels move the aliases, removed ones go.
    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "reg"]);
    assert_eq!(doc["models"]["sent"].as_array().unwrap().len(), 0, "{doc}");
    assert_eq!(doc["models"]["already"], 3);
    assert_eq!(doc["models"]["aliases_set"].as_array().unwrap().len(), 0, "{doc}");
    env.ok(&["model", "promote", "churn", "0.2.0", "--stage", "prod"]);
    env.ok(&["model", "demote", "churn", "--alias", "champion"]);
    env.ok(&["model", "deprecate", "churn", "0.1.0"]);
    let doc = env.json(&["exp", "sync", "--mlflow", &server.uri, "--experiment", "reg"]);
    assert_eq!(doc["models"]["aliases_set"], json!(["churn@prod"]), "{doc}");
    assert_eq!(doc["models"]["aliases_removed"], json!(["churn@champion"]), "{doc}");
    let got = mlflow_download(&server, "models:/churn@prod", &dl.path().join("d"));
    assert_eq!(got, [("model.onnx".to_string(), b"churn v2 onnx".to_vec())]);
    let model = server.get("registered-models/get", &[("name", "churn")]);
    let aliases: Vec<&str> = model["registered_model"]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["prod"]);
    let stages: BTreeMap<String, String> = server.get("model-versions/search", &[("filter", "name='churn'")])
        ["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (pairs(&v["tags"])["trove.version"].clone(), v["current_stage"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(stages["v0.1.0"], "Archived");
    assert_eq!(stages["v0.2.0"], "Production");
}
