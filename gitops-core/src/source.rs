//! Where a repository's files come from: a working tree, or a git revision
//! read straight from the object database without a checkout.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The outcome of reading a path from a [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A regular file (symlinks inside the repository are followed).
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// Nothing at that path.
    Missing,
    /// A symlink that resolves outside the repository.
    Outside(String),
}

/// Read-only access to a repository's files by repository-relative path
/// (`/`-separated, no leading `/`).
pub trait Source {
    /// Reads the entry at `path`.
    fn read(&self, path: &str) -> Result<Entry>;
    /// Names of the direct subdirectories of `path` (empty when it is missing), sorted.
    fn subdirs(&self, path: &str) -> Result<Vec<String>>;
    /// Names of the files directly in `path` (empty when it is missing),
    /// sorted. Sources that cannot list files list none.
    fn files(&self, path: &str) -> Result<Vec<String>> {
        let _ = path;
        Ok(Vec::new())
    }
    /// A default repository id: `owner/repo` of the origin remote, if any.
    /// There is no fallback (two checkouts with the same folder name would
    /// otherwise own each other's stacks).
    fn default_id(&self) -> Option<String>;
    /// A short description for messages, such as the folder or `rev abc1234`.
    fn describe(&self) -> String;
}

/// Normalises a repository-relative path and rejects absolute paths and
/// paths that climb out with `..`. Returns `None` for those.
pub fn normalize(path: &str) -> Option<String> {
    normalized(path).map(std::borrow::Cow::into_owned)
}

/// [`normalize`], borrowing `path` when it is already normal (as the paths
/// of a git diff are), so that thousands of them cost no copies.
pub(crate) fn normalized(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        return None;
    }
    if is_normal(path) {
        return Some(std::borrow::Cow::Borrowed(path));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(std::borrow::Cow::Owned(parts.join("/")))
}

/// Whether `path` is already normal: not empty, no `\\`, and no empty,
/// `.` or `..` part. One pass over its bytes (a diff has thousands).
fn is_normal(path: &str) -> bool {
    let bad = |len: usize, dots: usize| len == 0 || (len == dots && dots <= 2);
    let (mut len, mut dots) = (0, 0);
    for &b in path.as_bytes() {
        match b {
            b'\\' => return false,
            b'/' if bad(len, dots) => return false,
            b'/' => (len, dots) = (0, 0),
            b'.' => (len, dots) = (len + 1, dots + 1),
            _ => len += 1,
        }
    }
    !bad(len, dots)
}

/// `owner/repo` from a git remote URL, such as `git@github.com:acme/pay.git`.
pub(crate) fn id_from_remote_url(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let mut parts = trimmed.rsplit(['/', ':']);
    let repo = parts.next().filter(|s| !s.is_empty())?;
    let owner = parts.next().filter(|s| !s.is_empty() && !s.contains('@'))?;
    Some(format!("{owner}/{repo}"))
}

/// Files held in memory: for tests, and for embedding with files from elsewhere.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    files: std::collections::BTreeMap<String, Vec<u8>>,
    id: String,
}

impl Memory {
    /// An empty set of files whose default repository id (standing in for
    /// an origin remote) is `id`; none when `id` is empty.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            files: Default::default(),
            id: id.into(),
        }
    }

    /// Adds (or replaces) a file at a repository-relative path.
    pub fn with_file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.insert(path, content);
        self
    }

    /// Adds (or replaces) a file at a repository-relative path.
    pub fn insert(&mut self, path: &str, content: impl Into<Vec<u8>>) {
        if let Some(p) = normalize(path) {
            self.files.insert(p, content.into());
        }
    }
}

impl Source for Memory {
    fn read(&self, path: &str) -> Result<Entry> {
        let Some(rel) = normalize(path) else {
            return Ok(Entry::Outside(path.to_string()));
        };
        if let Some(b) = self.files.get(&rel) {
            return Ok(Entry::File(b.clone()));
        }
        let dir = format!("{rel}/");
        if rel.is_empty() || self.files.keys().any(|k| k.starts_with(&dir)) {
            return Ok(Entry::Dir);
        }
        Ok(Entry::Missing)
    }

    fn subdirs(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        out.dedup();
        Ok(out)
    }

    fn files(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        Ok(self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    fn default_id(&self) -> Option<String> {
        (!self.id.is_empty()).then(|| self.id.clone())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// The files of a folder on disk.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
    canonical_root: PathBuf,
}

impl WorkTree {
    /// A working tree rooted at `root` (the folder that holds `gitops.yaml`).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let canonical_root = root.canonicalize().map_err(|source| Error::Io {
            path: root.display().to_string(),
            source,
        })?;
        Ok(Self {
            root,
            canonical_root,
        })
    }

    /// Finds the nearest folder at or above `start` that holds `gitops.yaml`.
    pub fn discover(start: impl AsRef<Path>) -> Result<Self> {
        let start = start.as_ref();
        let abs = start.canonicalize().map_err(|source| Error::Io {
            path: start.display().to_string(),
            source,
        })?;
        let mut dir = Some(abs.as_path());
        while let Some(d) = dir {
            if d.join(crate::CONFIG_FILE).is_file() {
                return Self::new(d);
            }
            dir = d.parent();
        }
        Err(Error::NoConfig(start.display().to_string()))
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for WorkTree {
    fn read(&self, path: &str) -> Result<Entry> {
        let Some(rel) = normalize(path) else {
            return Ok(Entry::Outside(path.to_string()));
        };
        let full = self.root.join(&rel);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entry::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Entry::Missing),
            Err(source) => return Err(Error::Io { path: rel, source }),
        };
        if meta.file_type().is_symlink() || rel.contains('/') {
            // Any component may be a symlink: resolve and check containment.
            match full.canonicalize() {
                Ok(real) if !real.starts_with(&self.canonical_root) => {
                    return Ok(Entry::Outside(real.display().to_string()))
                }
                Ok(_) => {}
                Err(_) => return Ok(Entry::Missing),
            }
        }
        if full.is_dir() {
            return Ok(Entry::Dir);
        }
        std::fs::read(&full)
            .map(Entry::File)
            .map_err(|source| Error::Io { path: rel, source })
    }

    fn subdirs(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let dir = self.root.join(rel);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(_) => return Ok(Vec::new()),
        };
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        Ok(out)
    }

    fn files(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let rd = match std::fs::read_dir(self.root.join(rel)) {
            Ok(rd) => rd,
            Err(_) => return Ok(Vec::new()),
        };
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    fn default_id(&self) -> Option<String> {
        gix::discover(&self.root)
            .ok()
            .and_then(|repo| origin_id(&repo))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

fn origin_id(repo: &gix::Repository) -> Option<String> {
    let url = repo.config_snapshot().string("remote.origin.url")?;
    id_from_remote_url(&url.to_string())
}

/// The files of one git revision, read from the object database.
pub struct GitTree {
    repo: gix::Repository,
    tree: gix::ObjectId,
    /// Path of the GitOps root inside the git repository (`""` at the top).
    prefix: String,
    commit: gix::ObjectId,
    /// Folders already read: full path -> entries (`None`: not a folder).
    /// Reading an environment file then costs one hash lookup per folder
    /// instead of a scan of every tree on its path (the environments
    /// folder alone may hold thousands of entries).
    dirs: DirCache,
    /// Paths (relative to the GitOps root) read so far whose file was a
    /// symlink, followed to its target: see [`GitTree::links_read`].
    links: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// The entries of one tree, by name.
type Dir = std::collections::HashMap<String, (gix::objs::tree::EntryMode, gix::ObjectId)>;
/// Trees read so far, by full path (`None`: not a folder).
type DirCache = std::sync::Mutex<std::collections::HashMap<String, Option<std::sync::Arc<Dir>>>>;

impl std::fmt::Debug for GitTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitTree")
            .field("commit", &self.commit)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl GitTree {
    /// The tree of commit `commit` in `repo`, with the GitOps root at `prefix`
    /// (a path inside the repository, `""` for its top).
    pub fn new(repo: gix::Repository, commit: gix::ObjectId, prefix: &str) -> Result<Self> {
        let tree = repo
            .find_object(commit)
            .map_err(Error::git)?
            .peel_to_commit()
            .map_err(Error::git)?
            .tree_id()
            .map_err(Error::git)?
            .detach();
        Ok(Self {
            repo,
            tree,
            prefix: normalize(prefix).unwrap_or_default(),
            commit,
            dirs: Default::default(),
            links: Default::default(),
        })
    }

    /// Opens the git repository that contains `dir` (the GitOps root), resolves
    /// `rev` there, and reads the GitOps root at that revision.
    pub fn at_revision(dir: &Path, rev: &str) -> Result<Self> {
        let repo = open_repo(dir)?;
        let commit = resolve(&repo, rev)?;
        let prefix = prefix_of(&repo, dir)?;
        Self::new(repo, commit, &prefix)
    }

    /// The same GitOps root at commit `commit`, read through this tree's
    /// repository handle (and so its delta base cache).
    pub(crate) fn at(self, commit: gix::ObjectId) -> Result<Self> {
        Self::new(self.repo, commit, &self.prefix)
    }

    /// The repository handle this tree reads through.
    pub(crate) fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// The commit this tree belongs to.
    pub fn commit(&self) -> gix::ObjectId {
        self.commit
    }

    /// The paths read so far (with [`Source::read`], relative to the GitOps
    /// root) that are symlinks inside the root, whose content is therefore
    /// another file's: a change to that other file changes them too.
    pub fn links_read(&self) -> std::collections::BTreeSet<String> {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn full(&self, rel: &str) -> String {
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, rel),
        }
    }

    /// `full` relative to the GitOps root, when inside it.
    fn relative(&self, full: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(&self.prefix)?
            .strip_prefix('/')
            .map(str::to_string)
    }

    fn contains(&self, full: &str) -> bool {
        self.prefix.is_empty()
            || full == self.prefix
            || full.starts_with(&format!("{}/", self.prefix))
    }

    /// The entries of the folder at `full` (cached), `None` when it is not a folder.
    fn dir(&self, full: &str) -> Result<Option<std::sync::Arc<Dir>>> {
        let cached = {
            let dirs = self
                .dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            dirs.get(full).cloned()
        };
        if let Some(d) = cached {
            return Ok(d);
        }
        let id = if full.is_empty() {
            Some(self.tree)
        } else {
            let (parent, name) = full.rsplit_once('/').unwrap_or(("", full));
            self.dir(parent)?
                .and_then(|p| p.get(name).copied())
                .filter(|(mode, _)| mode.is_tree())
                .map(|(_, id)| id)
        };
        let dir = match id {
            Some(id) => {
                let tree = self.repo.find_tree(id).map_err(Error::git)?;
                let mut entries = Dir::new();
                for entry in tree.iter() {
                    let entry = entry.map_err(Error::git)?;
                    entries.insert(
                        entry.filename().to_string(),
                        (entry.mode(), entry.oid().to_owned()),
                    );
                }
                Some(std::sync::Arc::new(entries))
            }
            None => None,
        };
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(full.to_string(), dir.clone());
        Ok(dir)
    }

    fn lookup(&self, full: &str, depth: usize) -> Result<Entry> {
        if full.is_empty() {
            return Ok(Entry::Dir);
        }
        let (parent, name) = full.rsplit_once('/').unwrap_or(("", full));
        let Some((mode, id)) = self.dir(parent)?.and_then(|d| d.get(name).copied()) else {
            return Ok(Entry::Missing);
        };
        if mode.is_tree() {
            return Ok(Entry::Dir);
        }
        if mode.is_commit() {
            return Ok(Entry::Missing);
        }
        let data = self.repo.find_object(id).map_err(Error::git)?.detach().data;
        if mode.is_link() {
            let target = String::from_utf8_lossy(&data).into_owned();
            let parent = full.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let joined = if parent.is_empty() {
                target.clone()
            } else {
                format!("{parent}/{target}")
            };
            // Follow links that stay inside the GitOps root only.
            if depth == 0 {
                if let Some(rel) = self.relative(full) {
                    self.links
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(rel);
                }
            }
            return match normalize(&joined) {
                Some(n) if depth < 8 && self.contains(&n) => self.lookup(&n, depth + 1),
                _ => Ok(Entry::Outside(target)),
            };
        }
        Ok(Entry::File(data))
    }
}

impl Source for GitTree {
    fn read(&self, path: &str) -> Result<Entry> {
        match normalize(path) {
            Some(rel) => self.lookup(&self.full(&rel), 0),
            None => Ok(Entry::Outside(path.to_string())),
        }
    }

    fn subdirs(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let full = self.full(&rel);
        let root = self.repo.find_tree(self.tree).map_err(Error::git)?;
        let tree = if full.is_empty() {
            root
        } else {
            match root.lookup_entry_by_path(&full).map_err(Error::git)? {
                Some(e) if e.mode().is_tree() => e
                    .object()
                    .map_err(Error::git)?
                    .try_into_tree()
                    .map_err(Error::git)?,
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(Error::git)?;
            if entry.mode().is_tree() {
                out.push(entry.filename().to_string());
            }
        }
        out.retain(|n| !n.starts_with('.'));
        out.sort();
        Ok(out)
    }

    fn files(&self, path: &str) -> Result<Vec<String>> {
        let Some(rel) = normalize(path) else {
            return Ok(Vec::new());
        };
        let full = self.full(&rel);
        let root = self.repo.find_tree(self.tree).map_err(Error::git)?;
        let tree = if full.is_empty() {
            root
        } else {
            match root.lookup_entry_by_path(&full).map_err(Error::git)? {
                Some(e) if e.mode().is_tree() => e
                    .object()
                    .map_err(Error::git)?
                    .try_into_tree()
                    .map_err(Error::git)?,
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(Error::git)?;
            let mode = entry.mode();
            if mode.is_blob() || mode.is_link() {
                out.push(entry.filename().to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn default_id(&self) -> Option<String> {
        origin_id(&self.repo)
    }

    fn describe(&self) -> String {
        format!("revision {}", self.commit.to_hex_with_len(12))
    }
}

/// The memory the delta base cache of [`open_repo`] may use (git's default
/// `core.deltaBaseCacheLimit` is 96 MiB).
const PACK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Opens the git repository containing `dir`, with an object cache for repeated reads.
pub fn open_repo(dir: &Path) -> Result<gix::Repository> {
    let repo = gix::discover(dir).map_err(|e| {
        Error::Git(format!(
            "{} is not inside a git repository ({e}); run `git init` or pass --repo",
            dir.display()
        ))
    })?;
    Ok(with_caches(repo))
}

fn with_caches(mut repo: gix::Repository) -> gix::Repository {
    repo.object_cache_size(Some(32 * 1024 * 1024));
    with_pack_cache(repo)
}

fn with_pack_cache(mut repo: gix::Repository) -> gix::Repository {
    // A delta base cache, as git's core.deltaBaseCacheLimit: without one, every
    // tree and blob stored as a delta re-reads its whole chain of bases, which
    // doubles the time of a tree diff over thousands of folders.
    repo.objects.set_pack_cache(|| {
        Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
            PACK_CACHE_BYTES,
        ))
    });
    repo
}

/// Resolves `rev` (any revision gix understands) to a commit id. An
/// annotated tag, by name or by its full id, is peeled to its commit.
pub fn resolve(repo: &gix::Repository, rev: &str) -> Result<gix::ObjectId> {
    let err = |reason: String| Error::Revision {
        rev: rev.to_string(),
        reason,
    };
    if let Ok(id) = gix::ObjectId::from_hex(rev.as_bytes()) {
        if !repo.has_object(id) {
            return Err(err(
                "this commit is not in the clone (a shallow checkout? fetch it, or set `fetch-depth: 0` on actions/checkout)".into(),
            ));
        }
        let commit = repo
            .find_object(id)
            .map_err(|e| err(e.to_string()))?
            .peel_to_commit()
            .map_err(|e| err(format!("not a commit or a tag of one: {e}")))?;
        return Ok(commit.id);
    }
    let obj = repo
        .rev_parse_single(rev)
        .map_err(|e| err(e.to_string()))?
        .object()
        .map_err(|e| err(e.to_string()))?;
    let commit = obj.peel_to_commit().map_err(|e| err(e.to_string()))?;
    Ok(commit.id)
}

/// The path of `dir` inside `repo`'s working tree, `/`-separated (`""` at the top).
pub fn prefix_of(repo: &gix::Repository, dir: &Path) -> Result<String> {
    let Some(workdir) = repo.workdir() else {
        return Ok(String::new());
    };
    let workdir = workdir.canonicalize().map_err(|source| Error::Io {
        path: workdir.display().to_string(),
        source,
    })?;
    let dir = dir.canonicalize().map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let rel = dir.strip_prefix(&workdir).map_err(|_| {
        Error::Git(format!(
            "{} is outside the git working tree {}",
            dir.display(),
            workdir.display()
        ))
    })?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check agrees with the rule it stands for.
    #[test]
    fn is_normal_is_the_split_rule() {
        let rule = |p: &str| {
            !p.is_empty()
                && !p.contains('\\')
                && p.split('/').all(|part| !matches!(part, "" | "." | ".."))
        };
        for p in [
            "",
            "a",
            "a/b.yaml",
            ".",
            "..",
            "...",
            ".a",
            "a.",
            "a/.",
            "a/..",
            "a/...",
            "./a",
            "../a",
            ".../a",
            "a//b",
            "a/",
            "/a",
            "a\\b",
            "a/./b",
            "a/.b/c",
            "..a/b",
            "a/b..",
            "envs/dev/env.yaml",
        ] {
            assert_eq!(is_normal(p), rule(p), "{p:?}");
        }
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        // Already normal paths come back as they are; the others go the long way.
        assert_eq!(normalize("a/b.yaml").as_deref(), Some("a/b.yaml"));
        assert_eq!(normalize("a/b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("./a").as_deref(), Some("a"));
        assert_eq!(normalize("a\\b").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/..").as_deref(), Some(""));
        assert_eq!(normalize("a/../..").as_deref(), None);
        assert_eq!(normalize("").as_deref(), Some(""));
    }

    #[test]
    fn remote_ids() {
        assert_eq!(
            id_from_remote_url("git@github.com:acme/payments.git").as_deref(),
            Some("acme/payments")
        );
        assert_eq!(
            id_from_remote_url("https://github.com/acme/payments").as_deref(),
            Some("acme/payments")
        );
        assert_eq!(id_from_remote_url("payments"), None);
    }
}
