//! What git wants of one stack ([`StackSpec`]) and the tag keys that mark
//! the stacks this tool manages. Below both [`crate::deploy`], which plans
//! and deploys them, and [`crate::drift`], which compares them with what
//! runs; `deploy` re-exports everything here.

use std::collections::BTreeMap;

use serde::Serialize;

/// Tag key naming the repository that manages a stack.
pub const TAG_MANAGED_BY: &str = "gitops:managed-by";
/// Tag key naming the environment a stack belongs to.
pub const TAG_ENVIRONMENT: &str = "gitops:environment";
/// Tag key naming the commit a stack was last deployed from.
pub const TAG_COMMIT: &str = "gitops:commit";
/// Tag key naming the commit `gitops drift --remediate` last redeployed an
/// environment to, so that it never remediates it twice at one commit.
pub const TAG_REMEDIATED: &str = "gitops:remediated-commit";
/// A stack as git wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StackSpec {
    /// Stack name.
    pub name: String,
    /// Repository-relative template path.
    pub template_path: String,
    /// Template text.
    #[serde(skip)]
    pub template_body: String,
    /// The template, normalised, for comparisons.
    #[serde(skip)]
    pub template_normalized: serde_json::Value,
    /// Parameters to pass: only those the template declares.
    pub parameters: BTreeMap<String, String>,
    /// Tags: the environment's plus the `gitops:*` ownership tags.
    pub tags: BTreeMap<String, String>,
    /// Capabilities to acknowledge.
    pub capabilities: Vec<String>,
    /// Parameters whose values must not be printed (`NoEcho`).
    #[serde(skip)]
    pub secret_parameters: Vec<String>,
}
