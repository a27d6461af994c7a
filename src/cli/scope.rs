//! `--rev`, `--all-branches`, `--all-commits`: which git revisions' data a command covers.

use crate::history::Scope;

#[derive(clap::Args, Debug, Default)]
pub struct ScopeArgs {
    /// Also the data of these git revisions (a commit, branch or tag; repeatable)
    #[arg(long = "rev", value_name = "REV")]
    pub revs: Vec<String>,
    /// Also the data of every local branch's head
    #[arg(short = 'a', long)]
    pub all_branches: bool,
    /// Also the data of every commit (of every branch, tag and remote-tracking branch)
    #[arg(short = 'A', long)]
    pub all_commits: bool,
}

impl ScopeArgs {
    /// The scope: the work tree, plus the revisions asked for.
    pub fn scope(&self) -> Scope {
        Scope {
            workspace: true,
            revs: self.revs.clone(),
            all_branches: self.all_branches,
            all_commits: self.all_commits,
        }
    }
}
