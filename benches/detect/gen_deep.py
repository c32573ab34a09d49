#!/usr/bin/env python3
"""Builds the second change-detection benchmark repository ("deep" layout)
with `git fast-import`.

Unlike gen_repo.py, the GitOps root is a folder inside the git repository
(`platform/gitops/`), environments sit four folders deep
(`platform/gitops/deploy/regions/all/envs/svc-NNNN/`), and every environment
holds its files in deep sub-folders, next to application code outside the
GitOps root.

Commit A: 1,000 environments of 40 files each (the environment file
included) plus 7,500 files of application code outside the GitOps root,
gitops.yaml, a README and 6 templates: 47,508 files.
Commit B, about 10,000 changed paths:
  - 5,000 modified files: 10 in each of 500 environments, inside their own
    deep folders; one environment file in ten of those has a new AppVersion;
  - 2,500 renamed files: 5 per environment in 500 other environments, moved
    to another sub-folder (content unchanged, so `git diff -M` pairs them);
  - 2,500 deleted files: 1,500 of the application code, plus 25 environment
    folders deleted whole (1,000 files).

Usage: gen_deep.py DIR    (prints "A B": the two commit ids)
"""

import subprocess
import sys

from gen_repo import new_repo

ENVS = 1000
FILES_PER_ENV = 40  # including environment.yaml
APP_FILES = 7500
ROOT = "platform/gitops"
ENV_ROOT = "deploy/regions/all/envs"

CONFIG = f"""version: 1
id: bench/deep
environments: {{ path: {ENV_ROOT}, file: environment.yaml }}
shared: ["shared/**"]
ignore: ["**/*.md", "**/docs/**"]
stack:
  name: "{{environment}}-svc"
  template: templates/service.yaml
defaults:
  region: eu-west-1
  parameters: {{ LogLevel: INFO }}
  tags: {{ owner: platform }}
""".encode()

TEMPLATE = b"""Parameters:
  AppVersion: { Type: String }
  LogLevel: { Type: String, Default: INFO }
  Replicas: { Type: Number, Default: 2 }
Resources:
  Topic: { Type: AWS::SNS::Topic }
"""


def env_name(i):
    return f"svc-{i:04d}"


def env_rel(i, sub):
    """A deep path inside environment i's folder, for file number `sub`."""
    area = ["app/config/runtime", "app/config/build", "infra/network/rules", "infra/iam/policies",
            "data/schemas/v1", "data/schemas/v2", "ops/alerts/rules", "ops/dashboards/json"][sub % 8]
    return f"{area}/item-{sub:02d}.json"


def env_files(i, version):
    region = ["eu-west-1", "us-east-1", "ap-southeast-2"][i % 3]
    special = f"template-file-path: templates/special-{i % 5}.yaml\n" if i % 50 == 7 else ""
    files = {
        "environment.yaml": (
            f"# {env_name(i)}\n{special}region: {region}\nparameters:\n"
            f"  AppVersion: \"{version}\"\n  Replicas: {1 + i % 4}\n"
            f"tags:\n  team: team-{i % 23}\n  cost-centre: \"cc-{i % 7}\"\n"
        ).encode()
    }
    for sub in range(FILES_PER_ENV - 1):
        files[env_rel(i, sub)] = (
            f'{{"service": "{env_name(i)}", "item": {sub}, "value": {i * 100 + sub}}}\n'
        ).encode()
    return files


def app_path(k):
    return f"services/svc-{k % 250:03d}/src/main/module-{(k // 250) % 6}/lib/file-{k:05d}.py"


def main():
    fi = new_repo(__doc__)
    repo, commit = fi.repo, fi.commit

    a = {
        f"{ROOT}/gitops.yaml": CONFIG,
        f"{ROOT}/templates/service.yaml": TEMPLATE,
        f"{ROOT}/README.md": b"# platform gitops\n",
    }
    for t in range(5):
        a[f"{ROOT}/templates/special-{t}.yaml"] = TEMPLATE + f"# special {t}\n".encode()
    for i in range(ENVS):
        for p, c in env_files(i, "1.0.0").items():
            a[f"{ROOT}/{ENV_ROOT}/{env_name(i)}/{p}"] = c
    for k in range(APP_FILES):
        a[app_path(k)] = f"# module file {k}\nVALUE = {k}\n".encode()
    commit("1,000 environments, deep", a, mark=1)

    b, deletes = {}, []
    modified = renamed = deleted = 0
    # 5,000 modifications in environments 0..499, 10 each.
    for i in range(500):
        files = env_files(i, "1.1.0" if i % 10 == 0 else "1.0.0")
        keys = [env_rel(i, sub) for sub in range(10)]
        if i % 10 == 0:
            keys[0] = "environment.yaml"
        for p in keys:
            content = files[p] if p == "environment.yaml" else files[p].replace(b"}\n", b', "v": 2}\n')
            b[f"{ROOT}/{ENV_ROOT}/{env_name(i)}/{p}"] = content
            modified += 1
    # 2,500 renames in environments 500..999 (but not the deleted ones), 5 each.
    gone = set(range(975, 1000))
    movers = [i for i in range(500, 1000) if i not in gone][:500]
    assert len(movers) == 475
    # 475 environments x 5 + 125 of the application code = 2,500.
    for i in movers:
        files = env_files(i, "1.0.0")
        for sub in range(20, 25):
            old = env_rel(i, sub)
            new = old.replace("/item-", "/moved/item-")
            deletes.append(f"{ROOT}/{ENV_ROOT}/{env_name(i)}/{old}")
            b[f"{ROOT}/{ENV_ROOT}/{env_name(i)}/{new}"] = files[old]
            renamed += 1
    for k in range(125):
        old = app_path(k)
        deletes.append(old)
        b[old.replace("/lib/", "/lib2/")] = f"# module file {k}\nVALUE = {k}\n".encode()
        renamed += 1
    # 2,500 deletions: 25 environments (1,000 files) and 1,500 files of code.
    for i in sorted(gone):
        deletes.append(f"{ROOT}/{ENV_ROOT}/{env_name(i)}")
        deleted += FILES_PER_ENV
    for k in range(APP_FILES - 1500, APP_FILES):
        deletes.append(app_path(k))
        deleted += 1
    commit(f"{modified} modified, {renamed} renamed, {deleted} deleted", b, deletes=deletes,
           mark=2, parent=1, when=1_700_000_600)

    fi.run()
    ids = subprocess.run(["git", "-C", str(repo), "rev-parse", "main~1", "main"], check=True,
                         capture_output=True, text=True).stdout.split()
    files = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "main~1"], check=True,
                           capture_output=True, text=True).stdout.count("\n")
    print(f"{files} files at A; B: {modified} modified, {renamed} renamed, {deleted} deleted",
          file=sys.stderr)
    print(" ".join(ids))


if __name__ == "__main__":
    main()
