//! What a new user relies on before running anything:
//!
//! - the minimum Rust: `rust-version` in Cargo.toml is the highest
//!   `rust-version` among the locked dependencies (`cargo metadata
//!   --locked`), and the README and the installer say the same;
//! - the example workflows pin the actions to a commit whose action files
//!   take the inputs the working tree's do, and `scripts/release.sh pin`
//!   rewrites every pin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use gitops_e2e::tools::repo_root;

/// A Rust version such as `1.94.1` or `1.85`, for comparing.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    parts.next().is_none().then_some((major, minor, patch))
}

/// `rust-version` of `[workspace.package]` in the root Cargo.toml.
fn declared_rust_version() -> String {
    let toml = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let v = toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .expect("Cargo.toml declares rust-version")
        .trim_end_matches('"')
        .to_string();
    assert!(parse_version(&v).is_some(), "rust-version `{v}`");
    v
}

/// The packages of `cargo metadata --locked` (the lock file as it is, no
/// network) for this platform, with their rust-version.
fn locked_rust_versions() -> Vec<(String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = rustc_host();
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "metadata",
            "--locked",
            "--offline",
            "--format-version",
            "1",
            "--filter-platform",
            &host,
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = v["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let packages = v["packages"].as_array().unwrap();
    assert!(packages.len() > 100, "{} packages", packages.len());
    packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap()))
        .filter_map(|p| {
            let rv = p["rust_version"].as_str()?;
            Some((
                format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
                rv.to_string(),
            ))
        })
        .collect()
}

fn rustc_host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

#[test]
fn rust_version_is_the_highest_among_the_locked_dependencies() {
    let declared = declared_rust_version();
    let deps = locked_rust_versions();
    let (who, highest) = deps
        .iter()
        .max_by_key(|(_, v)| parse_version(v).unwrap_or((0, 0, 0)))
        .expect("dependencies declare rust-version");
    let needs: Vec<&String> = deps
        .iter()
        .filter(|(_, v)| parse_version(v) == parse_version(highest))
        .map(|(n, _)| n)
        .collect();
    assert!(
        parse_version(highest) <= parse_version(&declared),
        "Cargo.toml says rust-version = \"{declared}\", but the locked dependencies need Rust {highest} \
         ({who}; all of: {needs:?}). Set rust-version to {highest} and say so in README.md."
    );
    assert_eq!(
        declared, *highest,
        "Cargo.toml says rust-version = \"{declared}\", but the locked dependencies need only {highest}: \
         the minimum is {highest} unless the project's own code needs more"
    );
    // Every member inherits it.
    for member in ["gitops-core", "gitops-action", "tests"] {
        let toml = std::fs::read_to_string(repo_root().join(member).join("Cargo.toml")).unwrap();
        assert!(
            toml.lines()
                .any(|l| l.trim() == "rust-version.workspace = true"),
            "{member}/Cargo.toml must take rust-version from the workspace"
        );
    }
}

/// Every `X.Y[.Z] or later` in `text` (the version just before it).
fn minimums(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(" or later") {
        let before = &rest[..i];
        let word = before
            .rsplit(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        if parse_version(word).is_some() {
            found.push(word.to_string());
        }
        rest = &rest[i + 1..];
    }
    found
}

#[test]
fn the_readme_and_the_installer_state_the_same_minimum_rust() {
    let declared = declared_rust_version();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let stated = minimums(&readme);
    assert!(
        !stated.is_empty(),
        "README.md states no minimum Rust (`Rust {declared} or later`)"
    );
    for v in &stated {
        assert_eq!(
            *v, declared,
            "README.md says Rust {v} or later; Cargo.toml says {declared}"
        );
    }
    assert!(
        readme.contains(&format!("Rust {declared} or later")),
        "README.md must say `Rust {declared} or later`"
    );
    // The installer reads it from Cargo.toml, and states no other.
    let install = std::fs::read_to_string(repo_root().join("action/install.sh")).unwrap();
    assert!(
        install.contains(
            r#"min_rust=$(sed -n 's/^rust-version = "\([^"]*\)".*/\1/p' "$root/Cargo.toml""#
        ),
        "action/install.sh reads the minimum Rust from Cargo.toml"
    );
    assert!(install.contains("$min_rust or later"));
    for file in [
        "action/install.sh",
        "scripts/demo",
        "scripts/test",
        "scripts/tools.sh",
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        for v in minimums(&text) {
            assert_eq!(v, declared, "{file} says {v} or later");
        }
    }
    // The prerequisites a first run needs.
    for needed in ["git", "curl", "python3", "venv", "GB", "minutes"] {
        assert!(
            readme.contains(needed),
            "README.md's prerequisites lack {needed}"
        );
    }
}

/// Every `uses: gitops-aws/gitops-aws[/ACTION]@SHA` in the examples and the
/// README: (file, action folder, sha).
fn pins(root: &Path) -> Vec<(String, String, String)> {
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("examples")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "yml" || x == "yaml" || x == "md")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let Some(i) = line.find("uses: gitops-aws/gitops-aws") else {
                continue;
            };
            let target = line[i + "uses: gitops-aws/gitops-aws".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            let (dir, sha) = target.split_once('@').unwrap();
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            found.push((
                rel,
                dir.trim_start_matches('/').to_string(),
                sha.to_string(),
            ));
        }
    }
    found
}

/// The inputs of an action.yml (name -> required and default).
fn inputs(text: &str) -> BTreeMap<String, (String, String)> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let s = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => format!("{other:?}"),
    };
    doc["inputs"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (s(k), (s(&v["required"]), s(&v["default"]))))
                .collect()
        })
        .unwrap_or_default()
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs")
}

#[test]
fn examples_pin_a_commit_whose_actions_take_the_current_inputs() {
    let root = repo_root();
    let found = pins(&root);
    assert!(found.len() >= 7, "{found:?}");
    for (file, dir, sha) in &found {
        assert!(
            sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{file}: gitops-aws/gitops-aws/{dir}@{sha} is not a full commit SHA"
        );
        let action = if dir.is_empty() {
            "action.yml".to_string()
        } else {
            format!("{dir}/action.yml")
        };
        let out = git(&root, &["show", &format!("{sha}:{action}")]);
        assert!(
            out.status.success(),
            "{file}: the pinned commit {sha} has no {action} in this repository ({}); \
             run `scripts/release.sh pin <commit>`",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let pinned = inputs(&String::from_utf8_lossy(&out.stdout));
        let current = inputs(&std::fs::read_to_string(root.join(&action)).unwrap());
        assert_eq!(
            pinned, current,
            "{file}: gitops-aws/gitops-aws/{dir}@{sha} takes other inputs than this checkout's {action}; \
             commit, then run `scripts/release.sh pin <that commit>`"
        );
    }
}

#[test]
fn release_pin_rewrites_every_example_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path();
    let root = repo_root();
    // The files the command reads and writes, in a repository of their own.
    let out = git(
        &root,
        &["ls-files", "-z", "--", "README.md", "examples", "scripts"],
    );
    for f in String::from_utf8(out.stdout).unwrap().split('\0') {
        if f.is_empty() || !root.join(f).is_file() {
            continue;
        }
        let dst = copy.join(f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(root.join(f), &dst).unwrap();
    }
    let before = pins(copy);
    assert!(before.len() >= 7);
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "copy",
        ],
    ] {
        assert!(git(copy, args).status.success());
    }
    let head = String::from_utf8(git(copy, &["rev-parse", "HEAD"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let out = Command::new("bash")
        .arg(copy.join("scripts/release.sh"))
        .args(["pin", "HEAD"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = pins(copy);
    assert_eq!(after.len(), before.len());
    for (file, dir, sha) in &after {
        assert_eq!(sha, &head, "{file}: {dir}");
    }
    let readme = std::fs::read_to_string(copy.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!(
            "@{head} # main, unreleased: the action builds gitops from source\n"
        )),
        "{readme}"
    );
    // A tag gives the comment; nothing else in the files changes.
    assert!(git(copy, &["tag", "v9.9.9"]).status.success());
    let out = Command::new("bash")
        .arg(copy.join("scripts/release.sh"))
        .args(["pin", &head])
        .output()
        .unwrap();
    assert!(out.status.success());
    let diff = String::from_utf8(git(copy, &["diff", "-U0"]).stdout).unwrap();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(changed.len(), before.len(), "{diff}");
    assert!(
        changed
            .iter()
            .all(|l| l.ends_with(&format!("@{head} # v9.9.9"))),
        "{diff}"
    );
}
