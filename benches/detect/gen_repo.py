#!/usr/bin/env python3
"""Builds the change-detection benchmark repository with `git fast-import`.

Commit A: 1,000 environments (`environments/env-NNNN/`, 50 files each with
the environment file) plus gitops.yaml and 13 templates: 50,013 files.
Commit B changes 10,000 files: 6,999 modified in 350 environments plus one
template used by one environment, 20 environment folders renamed
(1,000 files), 20 deleted (1,000 files) and 20 created (1,000 files).

Usage: gen_repo.py DIR    (prints "A B": the two commit ids)
"""

import subprocess
import sys
from pathlib import Path

ENVS = 1000
FILES_PER_ENV = 50  # including environment.yaml
MODIFIED_ENVS = 350
MODIFIED_PER_ENV = 20
RENAMED = 20
DELETED = 20
CREATED = 20

CONFIG = b"""version: 1
environments: { path: environments, file: environment.yaml }
shared: ["common/**"]
ignore: ["**/*.md"]
stack:
  name: "{environment}-app"
  template: common/app.yaml
defaults:
  region: us-east-1
  parameters: { LogLevel: INFO }
"""

TEMPLATE = b"""Parameters:
  AppVersion: { Type: String }
  LogLevel: { Type: String, Default: INFO }
Resources:
  Topic: { Type: AWS::SNS::Topic }
"""


def env_name(i):
    return f"env-{i:04d}"


def env_files(name, i, version):
    """The 50 files of one environment folder: path -> content."""
    files = {}
    # One environment in 100 uses its own template (env-0350 uses special-3).
    special = f"templates/special-{(i // 100) % 10}.yaml"
    template = f"template-file-path: {special}\n" if i % 100 == 50 else ""
    files["environment.yaml"] = (
        f"# Environment {name}\n{template}parameters:\n  AppVersion: \"{version}\"\n"
        f"  LogLevel: DEBUG\ntags:\n  team: team-{i % 17}\nregion: us-east-1\n"
    ).encode()
    files["README.md"] = f"# {name}\n\nNotes about {name}.\n".encode()
    for k in range(FILES_PER_ENV - 2):
        files[f"config/part-{k:02d}.json"] = (
            f'{{"environment": "{name}", "part": {k}, "value": {i * 1000 + k}, "version": "{version}"}}\n'
        ).encode()
    return files



class FastImport:
    """Two-commit histories for `git fast-import`, shared by gen_deep.py."""

    def __init__(self, repo):
        self.repo = repo
        self.chunks = []

    def commit(self, message, files, deletes=(), mark=None, parent=None, when=1_700_000_000):
        chunks = self.chunks
        chunks.append(b"commit refs/heads/main\n")
        if mark:
            chunks.append(f"mark :{mark}\n".encode())
        chunks.append(f"author Bench <bench@example.com> {when} +0000\n".encode())
        chunks.append(f"committer Bench <bench@example.com> {when} +0000\n".encode())
        msg = message.encode()
        chunks.append(f"data {len(msg)}\n".encode() + msg + b"\n")
        if parent:
            chunks.append(f"from :{parent}\n".encode())
        for path in deletes:
            chunks.append(f"D {path}\n".encode())
        for path, content in files.items():
            chunks.append(f"M 100644 inline {path}\n".encode())
            chunks.append(f"data {len(content)}\n".encode() + content + b"\n")

    def run(self):
        """Writes the commits, checks out main and packs everything, as a clone would have it."""
        stream = b"".join(self.chunks) + b"done\n"
        git = ["git", "-C", str(self.repo)]
        subprocess.run(git + ["fast-import", "--quiet", "--done"], input=stream, check=True)
        subprocess.run(git + ["checkout", "-q", "main"], check=True)
        subprocess.run(git + ["gc", "-q", "--aggressive"], check=True)


def new_repo(doc):
    """The empty repository named by the one argument (`doc` is the usage)."""
    if len(sys.argv) != 2:
        sys.exit(doc)
    repo = Path(sys.argv[1])
    if repo.exists():
        sys.exit(f"{repo} exists; remove it first")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return FastImport(repo)


def main():
    fi = new_repo(__doc__)
    repo, commit = fi.repo, fi.commit

    # Commit A.
    a = {"gitops.yaml": CONFIG, "common/app.yaml": TEMPLATE, "common/macros.yaml": b"a: 1\n"}
    for t in range(10):
        a[f"templates/special-{t}.yaml"] = TEMPLATE + f"# special {t}\n".encode()
    for i in range(ENVS):
        name = env_name(i)
        for p, c in env_files(name, i, "1.0.0").items():
            a[f"environments/{name}/{p}"] = c
    commit("1,000 environments", a, mark=1)

    # Commit B.
    b, deletes = {}, []
    changed = 0
    for i in range(MODIFIED_ENVS):
        name = env_name(i)
        files = env_files(name, i, "1.1.0")
        keys = ["environment.yaml"] + [f"config/part-{k:02d}.json" for k in range(MODIFIED_PER_ENV - 1)]
        if i == 0:
            keys.pop()  # the template change below makes up for it
        for p in keys:
            b[f"environments/{name}/{p}"] = files[p]
            changed += 1
    renamed = range(ENVS - RENAMED, ENVS)
    deleted = range(ENVS - RENAMED - DELETED, ENVS - RENAMED)
    for i in renamed:
        old, new = env_name(i), env_name(i) + "-renamed"
        for p, c in env_files(old, i, "1.0.0").items():
            deletes.append(f"environments/{old}/{p}")
            b[f"environments/{new}/{p}"] = c
            changed += 1
    for i in deleted:
        name = env_name(i)
        deletes.append(f"environments/{name}")
        changed += FILES_PER_ENV
    for j in range(CREATED):
        name = f"new-{j:04d}"
        for p, c in env_files(name, ENVS + j, "2.0.0").items():
            b[f"environments/{name}/{p}"] = c
            changed += 1
    b["templates/special-3.yaml"] = TEMPLATE + b"# special 3, v2\n"
    changed += 1
    commit(f"{changed} changed files", b, deletes=deletes, mark=2, parent=1, when=1_700_000_600)

    fi.run()
    ids = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "main~1", "main"], check=True, capture_output=True, text=True
    ).stdout.split()
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "main~1"], check=True, capture_output=True, text=True
    ).stdout.count("\n")
    print(f"{files} files at A, {changed} changed paths in B", file=sys.stderr)
    print(" ".join(ids))


if __name__ == "__main__":
    main()
