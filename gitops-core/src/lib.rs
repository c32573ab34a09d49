//! `gitops-core` models a GitOps repository for AWS CloudFormation: shared
//! templates plus one folder per environment whose configuration (the app
//! version included) is the input of those templates.
//!
//! Loading and validating a repository, from a working tree or from any git
//! revision, is pure: nothing here contacts AWS.
//!
//! ```
//! use gitops_core::{Repository, WorkTree};
//!
//! # fn main() -> gitops_core::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir_all(dir.path().join("environments/dev")).unwrap();
//! std::fs::create_dir_all(dir.path().join("common")).unwrap();
//! std::fs::write(dir.path().join("gitops.yaml"),
//!     "version: 1\nid: acme/payments\nstack: { template: common/app.yaml }\n").unwrap();
//! std::fs::write(dir.path().join("common/app.yaml"),
//!     "Parameters:\n  AppVersion: { Type: String }\nResources:\n  T: { Type: AWS::SNS::Topic }\n").unwrap();
//! std::fs::write(dir.path().join("environments/dev/environment.yaml"),
//!     "parameters: { AppVersion: \"1.2.3\" }\n").unwrap();
//!
//! let source = WorkTree::new(dir.path())?;
//! let repo = Repository::load(&source)?;
//! assert!(repo.validate(&source).is_empty());
//! let dev = repo.environment("dev").unwrap();
//! assert_eq!(dev.stack, "dev-app");
//! assert_eq!(dev.parameters["AppVersion"], "1.2.3");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod actions;
pub mod aws;
pub mod board;
mod branch;
mod config;
pub mod deploy;
pub(crate) mod deployed;
pub mod detect;
pub mod drift;
pub mod edit;
mod error;
pub mod event;
pub mod fanout;
pub mod git;
pub mod github;
mod glob;
pub mod history;
pub mod markdown;
mod model;
pub mod plan;
pub mod policy;
mod problem;
pub mod promote;
mod reader;
pub mod render;
pub mod report;
pub mod select;
pub mod source;
mod spec;
pub mod status;
mod template;
pub mod text;
pub(crate) mod yaml;

pub use branch::{github_branches, unmatched_bindings, BranchScope, SkipReason, Skipped};
pub use config::{
    Config, Defaults, DriftSettings, PipelineSettings, Policies, Promotion, StackSettings,
    CONFIG_FILE,
};
pub use detect::{detect, Change, ChangedPath, Detection, EnvChange, PathStatus, Reason, Why};
pub use error::{Error, Result};
pub use model::{
    check_pipeline_name, check_stack_name, load_template, Checks, Environment, NameError,
    PromotedKey, Protection, Repository, AUTOMATIC_PARAMETERS, NO_ID_WARNING,
};
pub use problem::{Problem, ProblemSource, Severity};
pub use source::{GitTree, Memory, Source, WorkTree};
pub use template::{ParameterError, Template, TemplateParameter, MAX_TEMPLATE_BYTES};
