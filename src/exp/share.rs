//! Sharing records with a git remote: fetch its `refs/trove/exps` into
//! `refs/trove/remotes/<remote>/exps`, merge (a union: never a conflict), push back.

use crate::error::{Error, Result};
use crate::exp::store::{self, REF};

/// What a pull or push did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Shared {
    pub remote: String,
    /// Records that arrived from the remote.
    pub received: usize,
    /// Whether our records were sent (push only).
    pub pushed: bool,
    /// Records here after the operation.
    pub total: usize,
}

fn err(remote: &str, e: git2::Error) -> Error {
    Error::exp(format!("remote {remote}"), e.message().to_string())
}

/// Credentials as git would find them: ssh-agent for SSH URLs, then the git credential
/// helpers (for HTTPS), then the default.
pub(crate) fn callbacks<'a>(git_config: Option<git2::Config>) -> git2::RemoteCallbacks<'a> {
    let mut cb = git2::RemoteCallbacks::new();
    let mut tried_agent = false;
    let mut tried_helper = false;
    cb.credentials(move |url, username, allowed| {
        if allowed.contains(git2::CredentialType::SSH_KEY) && !tried_agent {
            tried_agent = true;
            return git2::Cred::ssh_key_from_agent(username.unwrap_or("git"));
        }
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
            && !tried_helper
            && let Some(cfg) = &git_config
        {
            tried_helper = true;
            return git2::Cred::credential_helper(cfg, url, username);
        }
        if allowed.contains(git2::CredentialType::DEFAULT) {
            return git2::Cred::default();
        }
        Err(git2::Error::from_str("no credentials found (ssh-agent, git credential helper)"))
    });
    cb
}

/// The git remote `name`; for an https one, the CA certificates are loaded first (see
/// [`crate::git::start_without_certificates`]).
fn find_remote<'r>(git: &'r git2::Repository, name: &str) -> Result<git2::Remote<'r>> {
    let remote = git.find_remote(name);
    if let Ok(r) = &remote
        && [r.url().ok(), r.pushurl().ok().flatten()].into_iter().flatten().any(|u| u.starts_with("https://"))
    {
        crate::git::load_certificates();
    }
    remote.map_err(|_| {
        Error::Usage(format!(
            "no git remote named `{name}` (`git remote -v` lists them; `git remote add {name} URL`)"
        ))
    })
}

/// Fetch the remote's records and merge them into ours.
pub fn pull(git: &git2::Repository, remote_name: &str) -> Result<Shared> {
    let mut remote = find_remote(git, remote_name)?;
    let tracking = store::remote_ref(remote_name);
    let mut opts = git2::FetchOptions::new();
    opts.remote_callbacks(callbacks(git.config().ok()));
    // A remote without records yet is not an error.
    let refspec = format!("+{REF}:{tracking}");
    remote
        .fetch(&[refspec.as_str()], Some(&mut opts), Some("trove exp pull"))
        .map_err(|e| err(remote_name, e))?;
    let received = if git.find_reference(&tracking).is_ok() { store::merge_from(git, &tracking)? } else { 0 };
    Ok(Shared { remote: remote_name.into(), received, pushed: false, total: store::list(git)?.len() })
}

/// Merge the remote's records, then push ours (retrying when someone pushed meanwhile).
pub fn push(git: &git2::Repository, remote_name: &str) -> Result<Shared> {
    let mut received = 0;
    for _ in 0..5 {
        received += pull(git, remote_name)?.received;
        if store::tip(git, REF)?.is_none() {
            return Err(Error::exp(
                "push",
                "there are no records to push; `trove exp log` or `trove exp run` makes one",
            ));
        }
        let mut remote = find_remote(git, remote_name)?;
        let mut rejected: Option<String> = None;
        {
            let mut cb = callbacks(git.config().ok());
            cb.push_update_reference(|_, status| {
                if let Some(s) = status {
                    rejected = Some(s.to_string());
                }
                Ok(())
            });
            let mut opts = git2::PushOptions::new();
            opts.remote_callbacks(cb);
            // Not forced: the remote only moves forward, onto a merge that contains its records.
            remote.push(&[format!("{REF}:{REF}")], Some(&mut opts)).map_err(|e| err(remote_name, e))?;
        }
        match rejected {
            None => {
                let total = store::list(git)?.len();
                // Remember what the remote has now.
                if let Some(tip) = store::tip(git, REF)? {
                    let _ = git.reference(&store::remote_ref(remote_name), tip.id(), true, "trove exp push");
                }
                return Ok(Shared { remote: remote_name.into(), received, pushed: true, total });
            }
            // Someone pushed in between: fetch, merge and try again.
            Some(_) => continue,
        }
    }
    Err(Error::exp(
        format!("remote {remote_name}"),
        "its records kept changing while pushing; try again".to_string(),
    ))
}

/// The git remote to use: the one named, else `origin`.
pub fn remote_name(given: Option<&str>) -> &str {
    given.unwrap_or("origin")
}
