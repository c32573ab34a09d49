//! Git plumbing for change detection, read with gix (no `git` subprocess):
//! the paths that changed between two commits, merge bases, ancestry and
//! shallow-clone checks, and loading the models at two revisions.
//!
//! Renames are not tracked: environments are identified by folder name, so
//! a renamed folder is simply the old name deleted and the new name created,
//! and every path of a rename shows up as one deletion plus one addition.

use gix::ObjectId;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::CONFIG_FILE;
use crate::deploy::BaseDeclaration;
use crate::deployed::{classify, AtCommit, BaseDetection, Deployed};
use crate::detect::{detect, env_folder, Changed, ChangedPath, Detection};
use crate::error::{Error, Result};
use crate::model::Repository;
use crate::source::{normalize, Entry, GitTree, Source};

/// The files that differ between the trees of commits `base` and `head`,
/// relative to the GitOps root `prefix` (a folder inside the git repository,
/// `""` for its top; paths outside it are left out). Folders are not listed,
/// only the files (and symlinks and submodules) in them, sorted by path.
pub fn changed_paths(
    repo: &gix::Repository,
    base: ObjectId,
    head: ObjectId,
    prefix: &str,
) -> Result<Vec<ChangedPath>> {
    let diff = SplitDiff::new(PIECES);
    let mut out = diff.plan(repo, base, head, prefix)?;
    out.extend(diff.take(repo)?);
    Ok(sorted(out))
}

/// The changed files two threads found, or the first error.
fn both(
    mine: Result<Vec<ChangedPath>>,
    theirs: Result<Vec<ChangedPath>>,
) -> Result<Vec<ChangedPath>> {
    let mut all = mine?;
    all.extend(theirs?);
    Ok(all)
}

/// `changes` sorted by path. A stable sort, as it merges the runs already
/// sorted (what each thread's [`SplitDiff::take`] returns) in linear time.
fn sorted(mut changes: Vec<ChangedPath>) -> Vec<ChangedPath> {
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// A tree diff cut into pieces (the pairs of folders that differ a few
/// levels down) that several threads, each with its own repository
/// handle, take in turn: [`SplitDiff::plan`] on one thread, then
/// [`SplitDiff::take`] on each. The changed files are those of one diff of
/// the two whole trees, in another order.
struct SplitDiff {
    /// How many pieces `plan` cuts the diff into, at least, when the trees
    /// have that many folders that differ.
    min_pieces: usize,
    /// Set once by `plan`.
    pieces: std::sync::OnceLock<Vec<Piece>>,
    /// The index of the next piece no thread has taken.
    next: std::sync::atomic::AtomicUsize,
}

/// One piece of a [`SplitDiff`]: the folder at `path` (relative to the
/// GitOps root) at base and at head; `None` where it is missing.
struct Piece {
    path: Vec<u8>,
    base: Option<ObjectId>,
    head: Option<ObjectId>,
}

/// How many pieces a [`SplitDiff`] cuts a diff into, at least, when the
/// trees have that many folders that differ: enough for two threads to end
/// at about the same time.
const PIECES: usize = 64;

impl SplitDiff {
    /// A diff to cut into at least `min_pieces` pieces.
    fn new(min_pieces: usize) -> Self {
        SplitDiff {
            min_pieces,
            pieces: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Compares the trees of `base` and `head` at `prefix` level by level
    /// until there are `min_pieces` pairs of differing folders (or no folder
    /// left to open), and keeps those for [`SplitDiff::take`]. Returns the
    /// changed files found on the way.
    fn plan(
        &self,
        repo: &gix::Repository,
        base: ObjectId,
        head: ObjectId,
        prefix: &str,
    ) -> Result<Vec<ChangedPath>> {
        let prefix = normalize(prefix).unwrap_or_default();
        let mut open = std::collections::VecDeque::from([Piece {
            path: Vec::new(),
            base: subtree(repo, base, &prefix)?,
            head: subtree(repo, head, &prefix)?,
        }]);
        let mut pieces = Vec::new();
        let mut out = Vec::new();
        let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
        let kind = repo.object_hash();
        while let Some(piece) = open.pop_front() {
            match (piece.base, piece.head) {
                (Some(b), Some(h)) if b == h => {}
                (Some(b), Some(h)) if pieces.len() + open.len() < self.min_pieces => {
                    let lhs = tree_data(repo, b, &mut lhs)?;
                    let rhs = tree_data(repo, h, &mut rhs)?;
                    one_level(&piece.path, lhs, rhs, kind, &mut open, &mut out)?;
                }
                (None, None) => {}
                _ => pieces.push(piece),
            }
        }
        // `plan` runs once per diff.
        let _ = self.pieces.set(pieces);
        Ok(out)
    }

    /// Diffs the pieces that no other thread has taken, one at a time,
    /// reading objects through `repo`, until none is left; returns their
    /// changed files sorted by path. Returns nothing before
    /// [`SplitDiff::plan`] has run.
    fn take(&self, repo: &gix::Repository) -> Result<Vec<ChangedPath>> {
        let Some(pieces) = self.pieces.get() else {
            return Ok(Vec::new());
        };
        let kind = repo.object_hash();
        let mut state = gix::diff::tree::State::default();
        let mut files = Files::default();
        let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
        loop {
            let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(piece) = pieces.get(next) else {
                files.out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
                return Ok(files.out);
            };
            let lhs = match piece.base {
                Some(id) => tree_data(repo, id, &mut lhs)?,
                None => &[],
            };
            let rhs = match piece.head {
                Some(id) => tree_data(repo, id, &mut rhs)?,
                None => &[],
            };
            files.path.clone_from(&piece.path);
            gix::diff::tree(
                gix::objs::TreeRefIter::from_bytes(lhs, kind),
                gix::objs::TreeRefIter::from_bytes(rhs, kind),
                &mut state,
                &repo.objects,
                &mut files,
            )
            .map_err(|e| {
                Error::Git(format!(
                    "cannot compare the trees {}: {e}",
                    piece.describe()
                ))
            })?;
        }
    }
}

impl Piece {
    /// The folder's path and its trees, for an error message.
    fn describe(&self) -> String {
        let id = |id: Option<ObjectId>| {
            id.map_or("none".to_string(), |id| id.to_hex_with_len(12).to_string())
        };
        format!(
            "at `{}` ({} and {})",
            String::from_utf8_lossy(&self.path),
            id(self.base),
            id(self.head)
        )
    }
}

/// The raw data of tree `id`, read into `buf`.
fn tree_data<'a>(repo: &gix::Repository, id: ObjectId, buf: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    use gix::objs::FindExt;
    repo.objects
        .find_tree_iter(&id, buf)
        .map_err(|e| Error::Git(format!("cannot read tree {id}: {e}")))?;
    Ok(buf.as_slice())
}

/// Compares the entries of two trees (`lhs` at base, `rhs` at head) of the
/// folder at `path`, in git's tree order: a file that differs goes to
/// `out`, a folder that differs (or exists on one side only) to `open`.
/// The same verdicts as [`Files`] over a full diff.
fn one_level(
    path: &[u8],
    lhs: &[u8],
    rhs: &[u8],
    kind: gix::hash::Kind,
    open: &mut std::collections::VecDeque<Piece>,
    out: &mut Vec<ChangedPath>,
) -> Result<()> {
    use gix::objs::tree::EntryRef;
    let bad = |e| {
        Error::Git(format!(
            "cannot parse a tree at `{}`: {e}",
            String::from_utf8_lossy(path)
        ))
    };
    let mut lhs = gix::objs::TreeRefIter::from_bytes(lhs, kind).peekable();
    let mut rhs = gix::objs::TreeRefIter::from_bytes(rhs, kind).peekable();
    let child = |name: &[u8]| {
        let mut p = path.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    };
    // The verdict for one name, present at base (`l`), at head (`r`) or both.
    let mut meet = |l: Option<EntryRef<'_>>, r: Option<EntryRef<'_>>| match (l, r) {
        (Some(l), Some(r)) if l.oid == r.oid && l.mode == r.mode => {}
        (Some(l), Some(r)) if l.mode.is_tree() && r.mode.is_tree() => open.push_back(Piece {
            path: child(l.filename),
            base: Some(l.oid.to_owned()),
            head: Some(r.oid.to_owned()),
        }),
        (Some(l), Some(r)) if !l.mode.is_tree() && !r.mode.is_tree() => {
            out.push(ChangedPath::new(utf8(child(l.filename)), Status::Modified));
        }
        // On one side only (or, should git's order let them meet, a file
        // and a folder of the same name: each side counts on its own).
        (l, r) => {
            for (e, at_head) in [(l, false), (r, true)] {
                let Some(e) = e else { continue };
                let path = child(e.filename);
                let id = Some(e.oid.to_owned());
                if e.mode.is_tree() {
                    let (base, head) = if at_head { (None, id) } else { (id, None) };
                    open.push_back(Piece { path, base, head });
                } else {
                    let status = if at_head {
                        Status::Added
                    } else {
                        Status::Deleted
                    };
                    out.push(ChangedPath::new(utf8(path), status));
                }
            }
        }
    };
    loop {
        let order = match (lhs.peek(), rhs.peek()) {
            (None, None) => return Ok(()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(Err(_)), _) | (_, Some(Err(_))) => std::cmp::Ordering::Equal,
            (Some(Ok(l)), Some(Ok(r))) => gix::objs::tree::name_order(
                l.filename,
                l.mode.is_tree(),
                r.filename,
                r.mode.is_tree(),
            ),
        };
        let l = if order.is_gt() {
            None
        } else {
            lhs.next().transpose().map_err(bad)?
        };
        let r = if order.is_lt() {
            None
        } else {
            rhs.next().transpose().map_err(bad)?
        };
        meet(l, r);
    }
}

/// A path from a tree as text (invalid UTF-8 replaced).
fn utf8(path: Vec<u8>) -> String {
    String::from_utf8(path).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The changed files of a tree diff, by path: what gix's `Recorder` keeps,
/// without a path copied for each of the thousands of folders that differ.
#[derive(Default)]
struct Files {
    /// The path of the entry being visited.
    path: Vec<u8>,
    /// The paths of the folders still to be compared, in the diff's order.
    queue: std::collections::VecDeque<Vec<u8>>,
    out: Vec<ChangedPath>,
}

impl Files {
    fn push(&mut self, name: &[u8]) {
        if name.is_empty() {
            return;
        }
        if !self.path.is_empty() {
            self.path.push(b'/');
        }
        self.path.extend_from_slice(name);
    }
}

impl gix::diff::tree::Visit for Files {
    fn pop_front_tracked_path_and_set_current(&mut self) {
        self.path = self.queue.pop_front().unwrap_or_default();
    }

    fn push_back_tracked_path_component(&mut self, component: &gix::bstr::BStr) {
        self.push(component);
        self.queue.push_back(self.path.clone());
    }

    fn push_path_component(&mut self, component: &gix::bstr::BStr) {
        self.push(component);
    }

    fn pop_path_component(&mut self) {
        let end = self.path.iter().rposition(|b| *b == b'/').unwrap_or(0);
        self.path.truncate(end);
    }

    fn visit(&mut self, change: gix::diff::tree::visit::Change) -> gix::diff::tree::visit::Action {
        use gix::diff::tree::visit::Change as C;
        let status = match change {
            C::Addition { entry_mode, .. } if !entry_mode.is_tree() => Some(Status::Added),
            C::Deletion { entry_mode, .. } if !entry_mode.is_tree() => Some(Status::Deleted),
            C::Modification {
                previous_entry_mode,
                entry_mode,
                ..
            } => match (previous_entry_mode.is_tree(), entry_mode.is_tree()) {
                (false, false) => Some(Status::Modified),
                // A folder replaced by a file (its old files are reported one by one).
                (true, false) => Some(Status::Added),
                (false, true) => Some(Status::Deleted),
                (true, true) => None,
            },
            _ => None,
        };
        if let Some(status) = status {
            self.out
                .push(ChangedPath::new(utf8(self.path.clone()), status));
        }
        std::ops::ControlFlow::Continue(())
    }
}

use crate::detect::PathStatus as Status;

/// The tree at `prefix` in `commit` (`None` when it is missing).
fn subtree(repo: &gix::Repository, commit: ObjectId, prefix: &str) -> Result<Option<ObjectId>> {
    let tree = repo
        .find_object(commit)
        .map_err(Error::git)?
        .peel_to_commit()
        .map_err(Error::git)?
        .tree()
        .map_err(Error::git)?;
    if prefix.is_empty() {
        return Ok(Some(tree.id));
    }
    match tree.lookup_entry_by_path(prefix).map_err(Error::git)? {
        Some(e) if e.mode().is_tree() => Ok(Some(e.object_id())),
        _ => Ok(None),
    }
}

/// The best common ancestor of commits `a` and `b`, or `None` when they share
/// no history in this clone (unrelated, or cut off by a shallow clone).
pub(crate) fn merge_base(
    repo: &gix::Repository,
    a: ObjectId,
    b: ObjectId,
) -> Result<Option<ObjectId>> {
    if a == b {
        return Ok(Some(a));
    }
    match repo.merge_base(a, b) {
        Ok(id) => Ok(id.map(|id| id.detach())),
        // Walking into a shallow boundary may fail rather than stop.
        Err(_) if is_shallow(repo) => Ok(None),
        Err(e) => Err(Error::Git(format!(
            "cannot find the merge base of {a} and {b}: {e}"
        ))),
    }
}

/// Whether `ancestor` is `descendant` or one of its ancestors. `None` when
/// this clone cannot tell (shallow history that does not reach a common
/// commit).
pub fn is_ancestor(
    repo: &gix::Repository,
    ancestor: ObjectId,
    descendant: ObjectId,
) -> Result<Option<bool>> {
    Ok(match merge_base(repo, ancestor, descendant)? {
        Some(m) => Some(m == ancestor),
        None if is_shallow(repo) => None,
        None => Some(false),
    })
}

/// Whether the repository is a shallow clone.
pub(crate) fn is_shallow(repo: &gix::Repository) -> bool {
    repo.is_shallow().unwrap_or(false)
}

/// Whether commit `id` is in the object database.
pub(crate) fn has_commit(repo: &gix::Repository, id: ObjectId) -> bool {
    repo.has_object(id)
}

/// The commit branch `name` points at: the remote-tracking branch
/// `origin/<name>` if the clone has it, else the local branch `<name>`.
pub(crate) fn branch_commit(repo: &gix::Repository, name: &str) -> Option<ObjectId> {
    [
        format!("refs/remotes/origin/{name}"),
        format!("refs/heads/{name}"),
    ]
    .iter()
    .find_map(|r| {
        let reference = repo.try_find_reference(r.as_str()).ok()??;
        reference.into_fully_peeled_id().ok().map(|id| id.detach())
    })
}

/// The branch names of the clone at or above `dir`, local and
/// remote-tracking (without the remote's name; not `HEAD`), for the
/// `branch:` bindings `validate` checks; `None` when `dir` is not in a git
/// clone or its references cannot be read.
pub fn branch_names(dir: &std::path::Path) -> Option<Vec<String>> {
    let repo = gix::discover(dir).ok()?;
    let refs = repo.references().ok()?;
    let mut out = Vec::new();
    for r in refs.all().ok()? {
        let name = r.ok()?.name().as_bstr().to_string();
        out.extend(branch_of_ref(&name).map(str::to_string));
    }
    Some(out)
}

/// The branch a full reference name is (`refs/heads/a/b` → `a/b`,
/// `refs/remotes/origin/a` → `a`), if it is one (never `HEAD`).
pub fn branch_of_ref(name: &str) -> Option<&str> {
    name.strip_prefix("refs/heads/")
        .or_else(|| {
            name.strip_prefix("refs/remotes/")
                .and_then(|rest| rest.split_once('/'))
                .map(|(_, b)| b)
        })
        .filter(|b| *b != "HEAD")
}

/// The GitOps models at `base` and `head` and the paths that changed between
/// them, with the GitOps root at `prefix`, classified by [`detect`].
///
/// The model at `head` must load without errors ([`Error::Invalid`]
/// otherwise: an environment file that does not parse would otherwise look
/// deleted). At `base`, a missing `gitops.yaml` means every environment
/// counts as created, and environments that fail to load are left out.
pub fn detect_between(
    repo: &gix::Repository,
    base: Option<ObjectId>,
    head: ObjectId,
    prefix: &str,
) -> Result<Detection> {
    // Detection reads each object once: an object cache would only cost copies.
    let mut once = repo.clone();
    once.object_cache_size(None);
    let head_tree = GitTree::new(once, head, prefix)?;
    let Some(base) = base else {
        return Ok(detect(None, &load_checked(&head_tree)?, &[]));
    };
    // The head model loads on a second thread while this one diffs; once
    // loaded, that thread takes pieces of the diff too. A gix handle
    // cannot cross threads, so that thread opens the repository again
    // (with this handle's options); should that fail (or the thread not
    // start), the model loads here after the diff.
    let git_dir = repo.git_dir().to_owned();
    let options = repo.open_options().clone();
    let diff = SplitDiff::new(PIECES);
    let (head_model, changes) = std::thread::scope(|s| {
        let helper = std::thread::Builder::new().spawn_scoped(s, || {
            let mut own = gix::open_opts(git_dir, options).ok()?;
            own.object_cache_size(None);
            let tree = match GitTree::new(own, head, prefix) {
                Ok(tree) => tree,
                Err(e) => return Some((Err(e), Ok(Vec::new()))),
            };
            let loaded = load_checked(&tree).map(|model| (model, tree.links_read()));
            Some((loaded, diff.take(tree.repo())))
        });
        let repo = head_tree.repo();
        let mine = diff.plan(repo, base, head, prefix).and_then(|mut found| {
            found.extend(diff.take(repo)?);
            Ok(found)
        });
        match helper.map(|h| h.join()) {
            Ok(Ok(Some((loaded, theirs)))) => (loaded, both(mine, theirs)),
            // No second thread, or its handle did not open: the diff was
            // all this thread's.
            Err(_) | Ok(Ok(None)) => (
                load_checked(&head_tree).map(|model| (model, head_tree.links_read())),
                mine,
            ),
            // The helper panicked, maybe holding pieces of the diff: diff
            // again here rather than miss them.
            Ok(Err(_)) => (
                load_checked(&head_tree).map(|model| (model, head_tree.links_read())),
                changed_paths(repo, base, head, prefix),
            ),
        }
    });
    let (head_model, links) = head_model?;
    let changes = sorted(changes?);
    let base_tree = head_tree.at(base)?;
    // The changed paths are read with head's globs on a second thread (or
    // here, should it not start) while this one reads the model at base.
    let read = || Changed::new(&head_model.config, &changes);
    let (base_model, changed) = std::thread::scope(|s| {
        let reading = std::thread::Builder::new().spawn_scoped(s, read);
        let base_model = base_model(&base_tree, &head_model, &changes, &links);
        let changed = match reading {
            Ok(h) => h
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => read(),
        };
        (base_model, changed)
    });
    let base_model = base_model?;
    Ok(crate::detect::detect_owned(
        base_model.model.as_ref(),
        base_model.read.as_ref(),
        head_model,
        &changed,
    ))
}

/// [`detect_between`] with the model at `head` already loaded; `links`:
/// the environment files at head that are symlinks ([`links_at`]).
fn detect_against(
    repo: &gix::Repository,
    base: ObjectId,
    head: ObjectId,
    prefix: &str,
    head_model: &Repository,
    links: &BTreeSet<String>,
) -> Result<Detection> {
    let changes = changed_paths(repo, base, head, prefix)?;
    let mut once = repo.clone();
    once.object_cache_size(None);
    let base_model = base_model(
        &GitTree::new(once, base, prefix)?,
        head_model,
        &changes,
        links,
    )?;
    Ok(crate::detect::detect_partial(
        base_model.model.as_ref(),
        base_model.read.as_ref(),
        head_model,
        &changes,
    ))
}

/// The environment files of `head_model` (at `head`) that are symlinks.
fn links_at(
    repo: &gix::Repository,
    head: ObjectId,
    prefix: &str,
    head_model: &Repository,
) -> Result<BTreeSet<String>> {
    let tree = GitTree::new(repo.clone(), head, prefix)?;
    for env in &head_model.environments {
        tree.read(&env.file)?;
    }
    Ok(tree.links_read())
}

/// The model at base that detection classifies the changes against.
struct BaseModel {
    /// `None`: there is no `gitops.yaml` at base.
    model: Option<Repository>,
    /// The names of the environments read at base, when not all were
    /// ([`load_touched`]): every other one is the same as at head.
    read: Option<BTreeSet<String>>,
}

/// The model at the base (`base_tree`) that [`detect`] needs to classify
/// the `changes` against the model at head: every environment when
/// `gitops.yaml` changed (`None` when the base has none), otherwise only
/// the environments the changes touch.
fn base_model(
    base_tree: &GitTree,
    head_model: &Repository,
    changes: &[ChangedPath],
    links: &BTreeSet<String>,
) -> Result<BaseModel> {
    let base = base_tree.commit();
    let config_changed = changes
        .iter()
        .flat_map(ChangedPath::paths)
        .any(|p| p == CONFIG_FILE);
    if !config_changed {
        let (model, read) = load_touched(base_tree, head_model, changes, links)?;
        return Ok(BaseModel {
            model: Some(model),
            read: Some(read),
        });
    }
    let model = match Repository::load(base_tree) {
        Ok(m) => Some(m),
        Err(Error::NoConfig(_)) => None,
        Err(Error::Invalid(problems)) => {
            return Err(Error::Message(format!(
                "gitops.yaml at the base revision {} is unusable ({}); compare from a later base",
                base.to_hex_with_len(12),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
        }
        Err(e) => return Err(e),
    };
    Ok(BaseModel { model, read: None })
}

/// `--base deployed`: classifies every environment against the commit it
/// was last deployed from (`deployed::classify`). One tree diff
/// per distinct deployed commit that this clone has (a missing one counts
/// as not in history); each undeclared environment's declaration is read
/// at its own deployed commit (one model load per distinct commit).
pub fn detect_deployed(
    repo: &gix::Repository,
    head: ObjectId,
    prefix: &str,
    head_model: &Repository,
    deployed: &Deployed,
) -> Result<Detection> {
    let mut bases = BTreeMap::new();
    let links = links_at(repo, head, prefix, head_model)?;
    for c in deployed.commits() {
        let Some(id) = known_commit(repo, c) else {
            continue;
        };
        let d = match detect_against(repo, id, head, prefix, head_model, &links) {
            Ok(d) => BaseDetection::Compared(d),
            Err(Error::Message(m)) => BaseDetection::Unusable(m),
            Err(e) => return Err(e),
        };
        bases.insert(c.to_string(), d);
    }
    let mut models = Models::default();
    let mut declarations = BTreeMap::new();
    for s in &deployed.undeclared {
        if !declarations.contains_key(&s.environment) {
            let d = models.declaration(repo, prefix, s.commit.as_deref(), &s.environment);
            declarations.insert(s.environment.clone(), d);
        }
    }
    Ok(classify(head_model, deployed, &bases, &declarations))
}

/// The branch `origin/HEAD` points at (`main` for
/// `refs/remotes/origin/main`), when the clone knows it.
pub(crate) fn origin_head(repo: &gix::Repository) -> Option<String> {
    use gix::bstr::ByteSlice;
    let reference = repo.try_find_reference("refs/remotes/origin/HEAD").ok()??;
    match reference.target() {
        gix::refs::TargetRef::Symbolic(name) => name
            .as_bstr()
            .to_str()
            .ok()?
            .strip_prefix("refs/remotes/origin/")
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        gix::refs::TargetRef::Object(_) => None,
    }
}

/// The commit `c` names, when this clone has it.
pub(crate) fn known_commit(repo: &gix::Repository, c: &str) -> Option<ObjectId> {
    ObjectId::from_hex(c.as_bytes())
        .ok()
        .filter(|id| commit_exists(repo, *id))
}

/// Models loaded at deployed commits, once each.
#[derive(Debug, Default)]
pub struct Models {
    at: BTreeMap<String, std::result::Result<Repository, String>>,
}

impl Models {
    /// How environment `name` was declared at `commit`, with its
    /// configuration there (`AtCommit::unknown` for a missing commit or a
    /// repository that cannot be read there).
    pub fn declaration(
        &mut self,
        repo: &gix::Repository,
        prefix: &str,
        commit: Option<&str>,
        name: &str,
    ) -> AtCommit {
        let Some(c) = commit else {
            return AtCommit::unknown("its stack names no deployed commit");
        };
        let model = self
            .at
            .entry(c.to_string())
            .or_insert_with(|| match known_commit(repo, c) {
                None => Err(format!(
                    "its deployed commit {c} is not in this clone's history"
                )),
                Some(id) => GitTree::new(repo.clone(), id, prefix)
                    .and_then(|t| Repository::load(&t))
                    .map_err(|e| {
                        format!("the repository at its deployed commit {c} cannot be read: {e}")
                    }),
            });
        match model {
            Ok(m) => AtCommit {
                environment: m.environment(name).cloned(),
                declaration: BaseDeclaration::in_repository(m, name),
            },
            Err(why) => AtCommit::unknown(why.clone()),
        }
    }
}

/// Whether `id` is a commit in the object database.
fn commit_exists(repo: &gix::Repository, id: ObjectId) -> bool {
    repo.has_object(id)
        && repo
            .find_object(id)
            .is_ok_and(|o| o.kind == gix::object::Kind::Commit)
}

/// The model at base when gitops.yaml did not change, and the names of the
/// environment folders read for it. An environment is resolved from
/// gitops.yaml and its environment file alone, so one whose environment
/// file did not change is the same at base as at head: only the folders
/// whose environment file changed (added, modified, deleted) are read from
/// `base`, plus those whose file at head is a symlink (`links`, paths read
/// through one), as its target may have changed elsewhere. Other files
/// changing inside a folder do not make it read again. The model holds only
/// the environments read (those that exist at base).
fn load_touched(
    base: &GitTree,
    head: &Repository,
    changes: &[ChangedPath],
    links: &BTreeSet<String>,
) -> Result<(Repository, BTreeSet<String>)> {
    let root = normalize(&head.config.environments_path).unwrap_or_default();
    let file = normalize(&head.config.environment_file).unwrap_or_default();
    let touched: BTreeSet<String> = changes
        .iter()
        .flat_map(ChangedPath::paths)
        .chain(links.iter().map(String::as_str))
        .filter_map(|p| {
            let dir = env_folder(p, &root)?;
            let inner = p[dir.len()..].strip_prefix('/')?;
            (inner == file).then(|| dir.rsplit('/').next().unwrap_or(dir).to_string())
        })
        .collect();
    let model = Repository::load(&OnlyEnvs {
        inner: base,
        root,
        names: &touched,
    })?;
    Ok((model, touched))
}

/// A source whose environments folder lists only the folders in `names`.
struct OnlyEnvs<'a> {
    inner: &'a GitTree,
    root: String,
    names: &'a BTreeSet<String>,
}

impl Source for OnlyEnvs<'_> {
    fn read(&self, path: &str) -> Result<Entry> {
        self.inner.read(path)
    }

    fn subdirs(&self, path: &str) -> Result<Vec<String>> {
        let mut dirs = self.inner.subdirs(path)?;
        if normalize(path).unwrap_or_default() == self.root {
            dirs.retain(|d| self.names.contains(d));
        }
        Ok(dirs)
    }

    fn default_id(&self) -> Option<String> {
        self.inner.default_id()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Loads the model at `commit`, refusing one with errors.
pub(crate) fn load_at(
    repo: &gix::Repository,
    commit: ObjectId,
    prefix: &str,
) -> Result<Repository> {
    load_checked(&GitTree::new(repo.clone(), commit, prefix)?)
}

/// Loads the model of `tree`, refusing one with errors.
fn load_checked(tree: &dyn Source) -> Result<Repository> {
    Repository::load_checked(tree, crate::Checks::Model)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::process::Command;

    use super::*;

    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub(crate) fn write(dir: &Path, path: &str, content: &str) {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub(crate) fn commit(dir: &Path) -> ObjectId {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "c"]);
        ObjectId::from_hex(git(dir, &["rev-parse", "HEAD"]).as_bytes()).unwrap()
    }

    #[test]
    fn origin_head_names_the_branch_it_points_at() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        let c = commit(dir);
        let repo = crate::source::open_repo(dir).unwrap();
        assert_eq!(origin_head(&repo), None);
        git(
            dir,
            &["update-ref", "refs/remotes/origin/trunk", &c.to_string()],
        );
        git(
            dir,
            &[
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                "refs/remotes/origin/trunk",
            ],
        );
        let repo = crate::source::open_repo(dir).unwrap();
        assert_eq!(origin_head(&repo).as_deref(), Some("trunk"));
    }

    #[test]
    fn branch_names_are_local_and_remote_tracking_without_head() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(branch_names(dir), None);
        git(dir, &["init", "-q", "-b", "main"]);
        commit(dir);
        git(dir, &["branch", "release/1"]);
        git(dir, &["update-ref", "refs/remotes/origin/qa", "HEAD"]);
        git(
            dir,
            &[
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                "refs/remotes/origin/qa",
            ],
        );
        git(dir, &["tag", "v1"]);
        write(dir, "sub/x", "1");
        let mut names = branch_names(&dir.join("sub")).unwrap();
        names.sort();
        assert_eq!(names, ["main", "qa", "release/1"]);
        assert_eq!(branch_of_ref("refs/tags/v1"), None);
    }

    #[test]
    fn diff_merge_base_and_detection() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        write(dir, "outside.txt", "1");
        write(
            dir,
            "ops/gitops.yaml",
            "version: 1\nstack: { template: common/app.yaml }\n",
        );
        write(dir, "ops/common/app.yaml", "Resources: {}\n");
        for env in ["a", "b", "c", "e"] {
            write(
                dir,
                &format!("ops/environments/{env}/environment.yaml"),
                "parameters: {}\n",
            );
            write(dir, &format!("ops/environments/{env}/files/x.json"), "{}");
        }
        let first = commit(dir);
        write(dir, "outside.txt", "2");
        write(dir, "ops/environments/a/files/x.json", "{\"k\": 1}");
        std::fs::remove_dir_all(dir.join("ops/environments/b")).unwrap();
        std::fs::rename(
            dir.join("ops/environments/c"),
            dir.join("ops/environments/d"),
        )
        .unwrap();
        // A file replaced by a folder.
        std::fs::remove_file(dir.join("ops/common/app.yaml")).unwrap();
        write(dir, "ops/common/app.yaml/inner", "x");
        let second = commit(dir);

        let repo = crate::source::open_repo(dir).unwrap();
        let changes = changed_paths(&repo, first, second, "ops").unwrap();
        let rendered: Vec<String> = changes
            .iter()
            .map(|c| format!("{:?} {}", c.status, c.path))
            .collect();
        expect_test::expect![[r#"
            [
                "Deleted common/app.yaml",
                "Added common/app.yaml/inner",
                "Modified environments/a/files/x.json",
                "Deleted environments/b/environment.yaml",
                "Deleted environments/b/files/x.json",
                "Deleted environments/c/environment.yaml",
                "Deleted environments/c/files/x.json",
                "Added environments/d/environment.yaml",
                "Added environments/d/files/x.json",
            ]
        "#]]
        .assert_debug_eq(&rendered);

        // The whole repository, and a prefix missing at base.
        let all = changed_paths(&repo, first, second, "").unwrap();
        assert!(all.iter().any(|c| c.path == "outside.txt"));
        let none = changed_paths(&repo, first, second, "nowhere").unwrap();
        assert!(none.is_empty());

        git(dir, &["checkout", "-q", "-b", "side", &first.to_string()]);
        write(dir, "side.txt", "s");
        let side = commit(dir);
        assert_eq!(merge_base(&repo, side, second).unwrap(), Some(first));
        assert_eq!(is_ancestor(&repo, first, second).unwrap(), Some(true));
        assert_eq!(is_ancestor(&repo, side, second).unwrap(), Some(false));
        assert!(!is_shallow(&repo));
        assert!(has_commit(&repo, side));
        assert_eq!(branch_commit(&repo, "main"), Some(second));
        assert_eq!(branch_commit(&repo, "nope"), None);

        let d = detect_between(&repo, Some(first), second, "ops").unwrap();
        assert_eq!(d.created, ["d"]);
        // e: its template common/app.yaml became a folder.
        assert_eq!(d.updated, ["a", "e"]);
        assert_eq!(d.deleted, ["b", "c"]);
        assert!(d.unchanged.is_empty());
        // Reading only the touched folders at base gives what a full read gives.
        let full_base =
            Repository::load(&GitTree::new(repo.clone(), first, "ops").unwrap()).unwrap();
        let head_model = load_at(&repo, second, "ops").unwrap();
        assert_eq!(d, detect(Some(&full_base), &head_model, &changes));
        let d = detect_between(&repo, None, second, "ops").unwrap();
        assert_eq!(d.created, ["a", "d", "e"]);
    }

    /// `git diff --name-status --no-renames` between `a` and `b`, as
    /// [`changed_paths`] words it (a type change is a modification).
    fn git_name_status(dir: &Path, a: ObjectId, b: ObjectId, prefix: &str) -> Vec<String> {
        let relative = format!("--relative={prefix}");
        let mut args = vec!["diff", "--name-status", "--no-renames"];
        if !prefix.is_empty() {
            args.push(&relative);
        }
        let (a, b) = (a.to_string(), b.to_string());
        args.extend([a.as_str(), b.as_str()]);
        let mut out: Vec<String> = git(dir, &args)
            .lines()
            .map(|line| {
                let (status, path) = line.split_once('\t').unwrap();
                let status = match status {
                    "A" => "Added",
                    "D" => "Deleted",
                    "M" | "T" => "Modified",
                    other => panic!("unexpected status {other}"),
                };
                format!("{status} {path}")
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_diff_cut_into_pieces_finds_what_git_finds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        write(dir, "outside.txt", "1");
        for i in 0..12 {
            for f in [
                "environment.yaml",
                "app/config/a.json",
                "app/config/b.json",
                "ops/x.json",
            ] {
                write(dir, &format!("ops/envs/e{i:02}/{f}"), &format!("{i} {f}"));
            }
        }
        write(dir, "ops/common/app.yaml", "Resources: {}\n");
        write(dir, "ops/folder/inner.txt", "x");
        write(dir, "ops/a", "file a");
        write(dir, "ops/a-b/x", "x");
        write(dir, "ops/script.sh", "echo");
        write(dir, "ops/to-link", "t");
        let first = commit(dir);
        write(dir, "outside.txt", "2");
        for i in (0..12).step_by(2) {
            write(
                dir,
                &format!("ops/envs/e{i:02}/app/config/a.json"),
                "changed",
            );
        }
        for i in (1..12).step_by(3) {
            std::fs::rename(
                dir.join(format!("ops/envs/e{i:02}/ops")),
                dir.join(format!("ops/envs/e{i:02}/moved")),
            )
            .unwrap();
        }
        std::fs::remove_dir_all(dir.join("ops/envs/e11")).unwrap();
        write(dir, "ops/envs/e12/environment.yaml", "new");
        // A file replaced by a folder, a folder by a file, a file by a
        // symlink, an executable bit, and names that sort around `a/`.
        std::fs::remove_file(dir.join("ops/common/app.yaml")).unwrap();
        write(dir, "ops/common/app.yaml/inner", "x");
        std::fs::remove_dir_all(dir.join("ops/folder")).unwrap();
        write(dir, "ops/folder", "now a file");
        std::fs::remove_file(dir.join("ops/to-link")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("ops/to-link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("ops/script.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_file(dir.join("ops/a")).unwrap();
        write(dir, "ops/a/inside", "a is a folder");
        write(dir, "ops/a.txt", "next to a");
        let second = commit(dir);

        // The changes as `git_name_status` words them, sorted.
        let words = |changes: &[ChangedPath]| {
            let mut out: Vec<String> = changes
                .iter()
                .map(|c| format!("{:?} {}", c.status, c.path))
                .collect();
            out.sort();
            out
        };
        let repo = crate::source::open_repo(dir).unwrap();
        for prefix in ["ops", ""] {
            let want = git_name_status(dir, first, second, prefix);
            assert!(want.len() > 20, "{want:?}");
            assert!(want.iter().any(|c| c.ends_with("script.sh")), "{want:?}");
            for min_pieces in [0, 1, 2, 3, 5, 8, 64] {
                // Two threads, each with its own handle, take the pieces.
                let diff = SplitDiff::new(min_pieces);
                let mut got = diff.plan(&repo, first, second, prefix).unwrap();
                let theirs = std::thread::scope(|s| {
                    let helper = s.spawn(|| {
                        let own = crate::source::open_repo(dir).unwrap();
                        diff.take(&own).unwrap()
                    });
                    got.extend(diff.take(&repo).unwrap());
                    helper.join().unwrap()
                });
                got.extend(theirs);
                assert_eq!(words(&got), want, "prefix `{prefix}`, {min_pieces} pieces");
            }
            let whole = changed_paths(&repo, first, second, prefix).unwrap();
            assert!(whole.is_sorted_by(|a, b| a.path < b.path));
            assert_eq!(words(&whole), want, "changed_paths, prefix `{prefix}`");
        }
    }

    #[test]
    fn detect_deployed_compares_each_environment_with_its_own_commit() {
        use crate::deployed::{DeployedEnv, ManagedStack};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        write(
            dir,
            "gitops.yaml",
            "version: 1\nid: acme/x\nstack: { template: common/app.yaml }\n",
        );
        write(dir, "common/app.yaml", "Resources: {}\n");
        for env in ["a", "b", "c", "gone"] {
            write(
                dir,
                &format!("environments/{env}/environment.yaml"),
                "parameters: {}\n",
            );
        }
        write(
            dir,
            "environments/kept/environment.yaml",
            "protected: true\nparameters: {}\n",
        );
        let c1 = commit(dir);
        write(
            dir,
            "environments/a/environment.yaml",
            "parameters: { X: \"1\" }\n",
        );
        let c2 = commit(dir);
        write(
            dir,
            "environments/b/environment.yaml",
            "parameters: { X: \"2\" }\n",
        );
        std::fs::remove_dir_all(dir.join("environments/gone")).unwrap();
        std::fs::remove_dir_all(dir.join("environments/kept")).unwrap();
        write(dir, "environments/new/environment.yaml", "parameters: {}\n");
        let c3 = commit(dir);

        let repo = crate::source::open_repo(dir).unwrap();
        let head = load_at(&repo, c3, "").unwrap();
        let unknown = "0123456789012345678901234567890123456789";
        let mut deployed = Deployed::new();
        for (env, c) in [
            ("a", c1.to_string()),
            ("b", c2.to_string()),
            ("c", unknown.to_string()),
        ] {
            deployed
                .environments
                .insert(env.into(), DeployedEnv::new(Some(c), "UPDATE_COMPLETE"));
        }
        deployed.undeclared.push(ManagedStack {
            name: "gone-app".into(),
            environment: "gone".into(),
            region: "us-east-1".into(),
            role_arn: None,
            commit: Some(c1.to_string()),
            status: "UPDATE_COMPLETE".into(),
        });
        // Removed at C3 too, but `protected: true` at C1, where its stack was deployed from.
        deployed.undeclared.push(ManagedStack {
            name: "kept-app".into(),
            environment: "kept".into(),
            region: "us-east-1".into(),
            role_arn: None,
            commit: Some(c1.to_string()),
            status: "UPDATE_COMPLETE".into(),
        });
        let d = detect_deployed(&repo, c3, "", &head, &deployed).unwrap();
        assert_eq!(d.created, ["new"]);
        // a: changed in C2 (since C1); b: changed in C3 (since C2); c: unknown commit.
        assert_eq!(d.updated, ["a", "b", "c"]);
        assert_eq!(d.deleted, ["gone", "kept"]);
        let kept = d.environment("kept").unwrap();
        assert!(kept.environment.protected);
        assert!(
            matches!(
                &kept.declaration,
                Some(BaseDeclaration::Declared { protection, .. }) if !protection.allows_deletion()
            ),
            "{:?}",
            kept.declaration
        );
        let a = d.environment("a").unwrap();
        assert_eq!(a.base, Some(Some(c1.to_string())));
        assert_eq!(a.reasons[0].path, "environments/a/environment.yaml");
        assert_eq!(a.reasons[0].since.as_deref(), Some(c1.to_string().as_str()));
        assert_eq!(
            d.environment("c").unwrap().reasons[0].why,
            crate::detect::Why::NotInHistory
        );
        // The undeclared environment, as declared at its own commit: not protected, deletable.
        let gone = d.environment("gone").unwrap();
        assert_eq!(gone.environment.file, "environments/gone/environment.yaml");
        assert!(!gone.environment.protected);
        assert!(gone.declaration.as_ref().unwrap().allows_deletion());

        // Deployed at head itself: nothing to do.
        let mut at_head = Deployed::new();
        for env in ["a", "b", "c", "new"] {
            at_head.environments.insert(
                env.into(),
                DeployedEnv::new(Some(c3.to_string()), "UPDATE_COMPLETE"),
            );
        }
        let d = detect_deployed(&repo, c3, "", &head, &at_head).unwrap();
        assert!(!d.has_changes(), "{:?}", d.updated);

        // An unknown deployed commit counts as protected; a known one is read there.
        let mut models = Models::default();
        let at = models.declaration(&repo, "", Some(unknown), "gone");
        assert!(matches!(at.declaration, BaseDeclaration::Unknown { .. }));
        assert!(!at.declaration.allows_deletion());
        assert!(at.environment("gone", "gone-app", "us-east-1").protected);
        let at = models.declaration(&repo, "", Some(&c1.to_string()), "gone");
        assert!(at.declaration.allows_deletion());
    }

    /// The head model loads on a second thread through a handle opened
    /// again with the first one's options: from a linked worktree too, with a
    /// symlinked environment file, it gives what loading on this thread gives.
    #[test]
    fn detect_between_loads_head_through_its_own_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = &tmp.path().join("main");
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        write(
            dir,
            "ops/gitops.yaml",
            "version: 1\nenvironments: { path: envs, file: env.yaml }\nstack: { template: common/app.yaml }\n",
        );
        write(dir, "ops/common/app.yaml", "Resources: {}\n");
        write(dir, "ops/targets/linked.yaml", "region: eu-west-1\n");
        write(dir, "ops/envs/a/env.yaml", "parameters: { X: \"1\" }\n");
        std::fs::create_dir_all(dir.join("ops/envs/link")).unwrap();
        std::os::unix::fs::symlink(
            "../../targets/linked.yaml",
            dir.join("ops/envs/link/env.yaml"),
        )
        .unwrap();
        let first = commit(dir);
        write(dir, "ops/targets/linked.yaml", "region: us-east-1\n");
        write(dir, "ops/envs/a/env.yaml", "parameters: { X: \"2\" }\n");
        let second = commit(dir);
        let linked = tmp.path().join("linked");
        git(
            dir,
            &["worktree", "add", "-q", linked.to_str().unwrap(), "HEAD"],
        );

        let repo = crate::source::open_repo(&linked).unwrap();
        assert_ne!(repo.git_dir(), repo.common_dir());
        let d = detect_between(&repo, Some(first), second, "ops").unwrap();
        assert_eq!(d.updated, ["a", "link"]);
        assert_eq!(d.environment("link").unwrap().region, "us-east-1");
        let base = Repository::load(&GitTree::new(repo.clone(), first, "ops").unwrap()).unwrap();
        let head = load_at(&repo, second, "ops").unwrap();
        let changes = changed_paths(&repo, first, second, "ops").unwrap();
        assert_eq!(d, detect(Some(&base), &head, &changes));
    }

    /// At base only the folders whose environment file changed are read
    /// again; an environment file that is a symlink is read again too, as
    /// its target may change outside the folder.
    #[test]
    fn base_reads_changed_environment_files_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        write(
            dir,
            "gitops.yaml",
            "version: 1\nstack: { template: common/app.yaml }\n",
        );
        write(dir, "common/app.yaml", "Resources: {}\n");
        write(dir, "targets/linked.yaml", "region: eu-west-1\n");
        for env in ["files", "file", "same"] {
            write(
                dir,
                &format!("environments/{env}/environment.yaml"),
                "parameters: {}\n",
            );
            write(dir, &format!("environments/{env}/x.json"), "{}");
        }
        std::fs::create_dir_all(dir.join("environments/link")).unwrap();
        std::os::unix::fs::symlink(
            "../../targets/linked.yaml",
            dir.join("environments/link/environment.yaml"),
        )
        .unwrap();
        let first = commit(dir);
        write(dir, "environments/files/x.json", "{\"k\": 1}");
        write(
            dir,
            "environments/file/environment.yaml",
            "region: eu-west-2\n",
        );
        write(dir, "targets/linked.yaml", "region: eu-west-3\n");
        let second = commit(dir);

        let repo = crate::source::open_repo(dir).unwrap();
        let d = detect_between(&repo, Some(first), second, "").unwrap();
        assert_eq!(d.updated, ["file", "files", "link"]);
        assert_eq!(d.unchanged, ["same"]);
        let link = d.environment("link").unwrap();
        assert_eq!(link.region, "eu-west-3");
        assert_eq!(link.reasons[0].why, crate::detect::Why::Config);
        // The same verdicts as from reading every environment at base.
        let changes = changed_paths(&repo, first, second, "").unwrap();
        let full_base = Repository::load(&GitTree::new(repo.clone(), first, "").unwrap()).unwrap();
        let head_model = load_at(&repo, second, "").unwrap();
        assert_eq!(d, detect(Some(&full_base), &head_model, &changes));
    }
}
