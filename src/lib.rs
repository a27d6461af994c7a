//! trove: version datasets and models next to code in git.
//!
//! The library knows nothing about terminals: it takes plain values and a
//! [`progress::Reporter`], and returns typed results and [`error::Error`]s.

pub mod atomic_file;
pub mod base64;
pub mod cache;
pub mod config;
pub mod diff;
pub mod error;
pub mod exp;
pub mod gc;
pub mod git;
pub mod hash;
pub mod history;
pub mod hooks;
pub mod import;
pub mod interrupt;
pub mod link;
pub mod manifest;
pub mod merge;
pub mod model;
pub mod pack;
pub mod pointer;
pub mod progress;
pub mod redact;
pub mod remote;
pub mod repo;
pub mod scan;
pub mod state;
pub mod store;
pub mod tls;
pub mod tracked;
pub mod transfer;
pub mod upstream;
pub mod verify;
pub mod wildcard;
pub mod workspace;
pub mod yaml;

pub mod cli;
