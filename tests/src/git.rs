//! Throwaway git repositories for end-to-end tests, built with the `git`
//! command line under a fixed identity and no user or system configuration.
//!
//! ```no_run
//! use gitops_e2e::git::GitRepo;
//!
//! let repo = GitRepo::new();
//! repo.write("gitops.yaml", "version: 1\n");
//! let first = repo.commit("first");
//! repo.rename("a", "b").remove("c");
//! let second = repo.commit("second");
//! let shallow = repo.shallow_clone();
//! # let _ = (first, second, shallow);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A `git` command isolated from the user's configuration, with a fixed identity.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// A git repository in a temporary folder, removed on drop.
#[derive(Debug)]
pub struct GitRepo {
    _tmp: TempDir,
    dir: PathBuf,
    commits: std::cell::Cell<u32>,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// An empty repository whose branch is `main`.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).expect("create repo folder");
        let repo = Self {
            _tmp: tmp,
            dir,
            commits: Default::default(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Runs `git args` in the working tree, panicking on failure; returns
    /// standard output, trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let out = git_command(&self.dir)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes `content` to `path`, creating folders.
    pub fn write(&self, path: &str, content: &str) -> &Self {
        let full = self.dir.join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("create folders");
        std::fs::write(full, content).expect("write file");
        self
    }

    /// Writes several files.
    pub fn write_all(&self, files: &[(&str, &str)]) -> &Self {
        for (p, c) in files {
            self.write(p, c);
        }
        self
    }

    /// Removes a file or a folder.
    pub fn remove(&self, path: &str) -> &Self {
        let full = self.dir.join(path);
        if full.is_dir() {
            std::fs::remove_dir_all(full).expect("remove folder");
        } else {
            std::fs::remove_file(full).expect("remove file");
        }
        self
    }

    /// Renames a file or a folder.
    pub fn rename(&self, from: &str, to: &str) -> &Self {
        let to_full = self.dir.join(to);
        std::fs::create_dir_all(to_full.parent().expect("a parent")).expect("create folders");
        std::fs::rename(self.dir.join(from), to_full).expect("rename");
        self
    }

    /// Commits everything (`git add -A`) and returns the new commit's id.
    /// Each commit is dated one minute after the previous one.
    pub fn commit(&self, message: &str) -> String {
        let n = self.commits.get() + 1;
        self.commits.set(n);
        let date = format!("{} +0000", 1_704_067_200 + 60 * u64::from(n));
        self.git(&["add", "-A"]);
        let out = git_command(&self.dir)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.head()
    }

    /// The commit `HEAD` points at.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates branch `name` at `start` and switches to it.
    pub fn branch(&self, name: &str, start: &str) -> &Self {
        self.git(&["checkout", "-q", "-b", name, start]);
        self
    }

    /// Switches to an existing branch or commit.
    pub fn checkout(&self, rev: &str) -> &Self {
        self.git(&["checkout", "-q", rev]);
        self
    }

    /// A `git clone --depth=1 file://…` of this repository (its current
    /// branch), with this repository as `origin`.
    pub fn shallow_clone(&self) -> GitRepo {
        self.clone_with(&["--depth=1"])
    }

    /// A `git clone <args> file://…` of this repository.
    pub fn clone_with(&self, args: &[&str]) -> GitRepo {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let dir = tmp.path().join("clone");
        let url = format!("file://{}", self.dir.display());
        let out = git_command(tmp.path())
            .args(["clone", "-q"])
            .args(args)
            .arg(&url)
            .arg(&dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git clone failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        GitRepo {
            _tmp: tmp,
            dir,
            commits: Default::default(),
        }
    }

    /// Whether the object `sha` is in this repository.
    pub fn has_object(&self, sha: &str) -> bool {
        git_command(&self.dir)
            .args(["cat-file", "-e", sha])
            .status()
            .expect("git runs")
            .success()
    }
}
