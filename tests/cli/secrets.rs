//! Secrets: never in the committed config, never printed (human, `-v` or `--json`
//! output, errors), never in experiment records; config.local readable by its owner only.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;
use crate::sshd::{self, Sshd};

const SECRET: &str = "hunter2-s3cr3t";

fn never_shown(out: &Out, secret: &str) {
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "the secret is printed:\n{out}");
}

fn local_mode(env: &Env) -> u32 {
    fs::metadata(env.path(".trove/config.local")).unwrap().permissions().mode() & 0o777
}

#[test]
fn config_keeps_secrets_out_of_the_committed_config_and_the_output() {
    let env = Env::new();
    env.ok(&["remote", "add", "store", "/srv/store"]);
    let committed = env.read(".trove/config");

    // Refused in the committed config, without echoing the value.
    let out = env.fails(2, &["config", "remote.store.password", SECRET]);
    assert!(out.stderr.contains("--local"), "{out}");
    never_shown(&out, SECRET);
    let url = format!("sftp://bob:{SECRET}@data.example.com/srv");
    for args in [
        &["config", "remote.store.url", url.as_str()][..],
        &["config", "--local", "remote.store.url", url.as_str()],
        &["remote", "set", "store", "url", url.as_str()],
        &["--json", "remote", "add", "other", url.as_str()],
    ] {
        let out = env.fails(2, args);
        assert!(out.stderr.contains("password"), "{out}");
        never_shown(&out, SECRET);
    }
    assert_eq!(env.read(".trove/config"), committed, "the committed config is untouched");

    // In config.local it is stored, and every way of looking at it hides it.
    for args in [
        &["config", "--local", "remote.store.password", SECRET][..],
        &["-v", "config", "--local", "remote.store.password", SECRET],
        &["--json", "config", "--local", "remote.store.password", SECRET],
        &["-v", "--json", "remote", "set", "store", "password", SECRET, "--local"],
        &["-v", "remote", "set", "store", "password", SECRET, "--local"],
    ] {
        never_shown(&env.ok(args), SECRET);
    }
    assert!(env.read_string(".trove/config.local").contains(SECRET));
    assert_eq!(env.read(".trove/config"), committed);
    for args in [
        &["config", "remote.store.password"][..],
        &["-v", "config", "remote.store.password"],
        &["--json", "config", "remote.store.password"],
        &["remote", "list"],
        &["-v", "remote", "list"],
        &["--json", "remote", "list"],
        &["-v", "status"],
    ] {
        never_shown(&env.ok(args), SECRET);
    }
    assert_eq!(env.json(&["config", "remote.store.password"])["value"], "(set)");
    let out = env.ok(&["--json", "config", "--unset", "--local", "remote.store.password"]);
    never_shown(&out, SECRET);

    // config.local never reaches git.
    env.ok(&["config", "--local", "remote.store.password", SECRET]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "settings"]);
    let tracked = env.git_cmd(&["ls-files"]);
    assert!(!tracked.contains("config.local"), "{tracked}");
    let history = env.git_cmd(&["log", "-p", "--all"]);
    assert!(!history.contains(SECRET), "{history}");
}

#[test]
fn config_local_stays_private_after_every_write() {
    let env = Env::new();
    env.ok(&["remote", "add", "store", "/srv/store"]);
    env.ok(&["remote", "set", "store", "password", SECRET, "--local"]);
    assert_eq!(local_mode(&env), 0o600);
    // Loosened by hand, each later write makes it private again.
    let writes: [&[&str]; 4] = [
        &["config", "--local", "core.lock_timeout", "7"],
        &["remote", "set", "store", "password", "other", "--local"],
        &["config", "--unset", "--local", "core.lock_timeout"],
        &["remote", "add", "mine", "/srv/mine", "--local"],
    ];
    for args in writes {
        fs::set_permissions(env.path(".trove/config.local"), fs::Permissions::from_mode(0o644)).unwrap();
        env.ok(args);
        assert_eq!(local_mode(&env), 0o600, "after {args:?}");
    }
    // A repository whose first local write is a secret starts private too.
    let fresh = Env::new();
    fresh.ok(&["remote", "add", "store", "/srv/store"]);
    assert!(!fresh.exists(".trove/config.local"));
    fresh.ok(&["config", "--local", "remote.store.password", SECRET]);
    assert_eq!(local_mode(&fresh), 0o600);
}

#[test]
fn a_password_written_into_a_url_by_hand_is_never_shown() {
    let env = Env::new();
    let url = format!("sftp://bob:{SECRET}@127.0.0.1:1/srv/store");
    let config = env.read_string(".trove/config");
    env.write(
        ".trove/config",
        format!("{config}core:\n  remote: store\nremote:\n  store:\n    url: {url}\n"),
    );
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    for args in [
        &["remote", "list"][..],
        &["-v", "remote", "list"],
        &["--json", "remote", "list"],
        &["config", "remote.store.url"],
        &["--json", "config", "remote.store.url"],
    ] {
        let out = env.ok(args);
        never_shown(&out, SECRET);
        assert!(out.stdout.contains("bob:***@127.0.0.1"), "{out}");
    }
    for args in
        [&["push"][..], &["-v", "push"], &["--json", "push"], &["status", "--remote"], &["-v", "pull"]]
    {
        let out = env.run(args);
        assert_ne!(out.code, 0, "{out}");
        never_shown(&out, SECRET);
    }
}

#[test]
fn sftp_password_never_appears_in_logs_or_json() {
    let server = Sshd::start_with("PasswordAuthentication yes\n");
    let (user, password, home) = sshd::password_user();
    let root = format!("secrets-{}", std::process::id());
    let env = Env::new();
    env.write("a.txt", "a");
    env.ok(&["add", "a.txt"]);
    let url = format!("sftp://{user}@127.0.0.1:{}/~/{root}", server.port);
    env.ok(&["remote", "add", "store", &url]);
    env.ok(&["remote", "set", "store", "known_hosts", server.known_hosts.to_str().unwrap()]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "data"]);

    // From the environment: right, then wrong.
    let from_env = [("TROVE_SFTP_PASSWORD", password.as_str())];
    for args in [&["-v", "push"][..], &["-v", "--json", "push"], &["-v", "status", "--remote"]] {
        let out = run_with(&env, &env.root, args, &from_env);
        assert_eq!(out.code, 0, "{out}\nsshd log:\n{}", server.log_text());
        never_shown(&out, &password);
    }
    let wrong = format!("wrong {SECRET}");
    for args in [&["-v", "push"][..], &["-v", "--json", "push"], &["--json", "status", "--remote"]] {
        let out = run_with(&env, &env.root, args, &[("TROVE_SFTP_PASSWORD", wrong.as_str())]);
        assert_eq!(out.code, 1, "{out}");
        never_shown(&out, &wrong);
        never_shown(&out, SECRET);
    }

    // From config.local, in a clone pulling.
    let clone = clone_repo(&env.root);
    clone.ok(&["remote", "set", "store", "password", &password, "--local"]);
    for args in [&["-v", "pull"][..], &["-v", "--json", "fetch"], &["-v", "--json", "remote", "list"]] {
        let out = clone.ok(args);
        never_shown(&out, &password);
    }
    assert_eq!(clone.read("a.txt"), b"a");
    assert!(!clone.read_string(".trove/config").contains(&password));
    let _ = fs::remove_dir_all(home.join(&root));
}

/// A repository ready for `exp log`, with an environment file full of secrets.
fn exp_project() -> Env {
    let env = Env::new();
    env.write(
        ".env.ci",
        format!(
            "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY={SECRET}-aws\nexport GITHUB_TOKEN={SECRET}-gh\n\
             DB_PASSWORD: {SECRET}-db\nMODE=fast\n"
        ),
    );
    env.write(
        "requirements.txt",
        format!("--index-url https://ci:{SECRET}-index@pypi.example.com/simple\ntorch==2.0\n"),
    );
    env.write("params.yaml", format!("lr: 0.1\naws:\n  secret_access_key: {SECRET}-nested\n  region: eu\n"));
    env.ok(&["config", "exp.interpreters", "[git]"]);
    env.ok(&["config", "exp.env_files", "[requirements.txt, .env.ci]"]);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "code"]);
    env
}

#[test]
fn experiment_records_redact_secrets_from_environment_files_params_and_arguments() {
    let env = exp_project();
    let logged = env.json(&[
        "exp",
        "log",
        "--params-file",
        "params.yaml",
        "-p",
        &format!("HF_TOKEN={SECRET}-hf"),
        "-p",
        &format!("db_url=postgres://app:{SECRET}-url@db:5432/x"),
        "-t",
        &format!("MY_API_KEY={SECRET}-tag"),
    ]);
    assert_eq!(logged["params"]["HF_TOKEN"], "[redacted]", "{logged}");
    assert_eq!(logged["params"]["aws.secret_access_key"], "[redacted]", "{logged}");
    assert_eq!(logged["params"]["aws.region"], "eu", "{logged}");
    assert_eq!(logged["params"]["db_url"], "postgres://app:[redacted]@db:5432/x", "{logged}");
    assert_eq!(logged["tags"]["MY_API_KEY"], "[redacted]", "{logged}");
    let env_file = logged["env"]["files"][".env.ci"].as_str().unwrap();
    assert!(env_file.contains("AWS_SECRET_ACCESS_KEY=[redacted]"), "{env_file}");
    assert!(env_file.contains("export GITHUB_TOKEN=[redacted]"), "{env_file}");
    assert!(env_file.contains("DB_PASSWORD:[redacted]"), "{env_file}");
    assert!(env_file.contains("MODE=fast"), "{env_file}");
    let reqs = logged["env"]["files"]["requirements.txt"].as_str().unwrap();
    assert!(reqs.contains("https://ci:[redacted]@pypi.example.com/simple"), "{reqs}");

    let run = env.json(&[
        "exp",
        "run",
        "--",
        "env",
        &format!("AWS_SECRET_ACCESS_KEY={SECRET}-argv"),
        "sh",
        "-c",
        "exit 0",
        "--password",
        &format!("{SECRET}-flag"),
    ]);
    let argv = serde_json::to_string(&run["run"]["argv"]).unwrap();
    assert!(argv.contains("AWS_SECRET_ACCESS_KEY=[redacted]"), "{argv}");

    // Nowhere: not in what trove shows, not in the history of the records.
    let id = run["id"].as_str().unwrap();
    for args in [
        &["--json", "exp", "list"][..],
        &["exp", "list", "--csv"],
        &["-v", "exp", "list"],
        &["exp", "show", id],
        &["--json", "exp", "show", logged["id"].as_str().unwrap()],
    ] {
        never_shown(&env.ok(args), SECRET);
    }
    // (The code commits hold the secrets themselves: only what trove wrote is looked at.)
    let history =
        env.git_cmd(&["log", "-p", "-m", "--first-parent", "refs/trove/exps", "--", "runs", "series"]);
    assert!(history.contains("[redacted]"), "{history}");
    assert!(!history.contains(SECRET), "a secret reached the records:\n{history}");
}

#[test]
fn s3_secret_keys_are_kept_like_passwords() {
    let env = Env::new();
    env.ok(&["remote", "add", "bucket", "s3://team-data/project"]);
    let committed = env.read(".trove/config");
    for key in ["secret_access_key", "session_token"] {
        let setting = format!("remote.bucket.{key}");
        // Refused in the committed config, without echoing the value.
        for args in [
            &["config", setting.as_str(), SECRET][..],
            &["remote", "set", "bucket", key, SECRET],
            &["--json", "remote", "set", "bucket", key, SECRET],
        ] {
            let out = env.fails(2, args);
            assert!(out.stderr.contains("--local"), "{out}");
            never_shown(&out, SECRET);
        }
        assert_eq!(env.read(".trove/config"), committed);
        // In config.local it is stored, and every way of looking at it hides it.
        for args in [
            &["remote", "set", "bucket", key, SECRET, "--local"][..],
            &["-v", "--json", "remote", "set", "bucket", key, SECRET, "--local"],
            &["config", "--local", setting.as_str(), SECRET],
        ] {
            never_shown(&env.ok(args), SECRET);
        }
        for args in [
            &["config", setting.as_str()][..],
            &["--json", "config", setting.as_str()],
            &["-v", "remote", "list"],
            &["--json", "remote", "list"],
        ] {
            never_shown(&env.ok(args), SECRET);
        }
        assert_eq!(env.json(&["config", setting.as_str()])["value"], "(set)");
    }
    // A URL with keys in it is refused.
    let out = env.fails(2, &["remote", "add", "other", &format!("s3://AKIA:{SECRET}@team-data/x")]);
    never_shown(&out, SECRET);
    assert!(env.read_string(".trove/config.local").contains(SECRET));
    assert_eq!(local_mode(&env), 0o600);
    env.git_cmd(&["add", "-A"]);
    env.git_cmd(&["commit", "-q", "-m", "settings"]);
    assert!(!env.git_cmd(&["log", "-p", "--all"]).contains(SECRET));
}
