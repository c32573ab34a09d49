//! Support for the end-to-end tests in `tests/tests/`: the `gitops` binary,
//! the moto AWS emulator, and throwaway git repositories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bin;
pub mod browser;
pub mod fixture;
pub mod git;
pub mod github_stub;
pub mod http;
pub mod moto;
pub mod progress;
pub mod proxy;
pub mod runner;
pub mod tools;
