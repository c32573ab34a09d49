#!/usr/bin/env python3
"""Times `gitops detect` against `git diff --name-status -M`, side by side.

Usage: bench.py GITOPS_BINARY BENCH_REPO DEEP_REPO BASIC_REPO [RUNS]
BENCH_REPO is made by gen_repo.py, DEEP_REPO by gen_deep.py (its GitOps root
is platform/gitops); BASIC_REPO is a git repository holding a copy of
examples/basic with two commits (see run.sh). Each comparison runs its two
commands interleaved (alternating which goes first), after one warm-up of
each, and reports the medians of RUNS runs and their ratio.
"""

import json
import statistics
import subprocess
import sys
import time

GOAL = 1.2


def once(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def side_by_side(a, b, runs):
    """Medians and runs of commands a and b, interleaved."""
    once(a), once(b)  # warm-up
    ta, tb = [], []
    for i in range(runs):
        if i % 2 == 0:
            ta.append(once(a))
            tb.append(once(b))
        else:
            tb.append(once(b))
            ta.append(once(a))
    return statistics.median(ta), ta, statistics.median(tb), tb


def revs(repo):
    out = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD~1", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def fmt(ts):
    return ", ".join(f"{t:.1f}" for t in ts)


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    gitops, bench, deep, basic = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) == 6 else 5
    print(f"median of {runs} runs each, interleaved, after one warm-up:")
    worst = 0.0
    for label, repo, root in [
        ("flat (gen_repo.py: 1,000 envs, 50,013 files, 10,000 changed)", bench, bench),
        ("deep (gen_deep.py: 1,000 envs, 47,508 files, 10,000 changed)", deep, f"{deep}/platform/gitops"),
    ]:
        a, b = revs(repo)
        detect = [gitops, "detect", "--repo", root, "--base", a, "--head", b, "--format", "json"]
        gitdiff = ["git", "-C", repo, "diff", "--name-status", "-M", a, b]
        d = json.loads(subprocess.run(detect, check=True, capture_output=True, text=True).stdout)
        changed = subprocess.run(gitdiff, check=True, capture_output=True, text=True).stdout.count("\n")
        d_med, d_all, g_med, g_all = side_by_side(detect, gitdiff, runs)
        ratio = d_med / g_med
        worst = max(worst, ratio)
        print(f"{label}:")
        print(f"  detection: {len(d['created'])} created, {len(d['updated'])} updated, "
              f"{len(d['deleted'])} deleted, {len(d['unchanged'])} unchanged; git diff -M lists {changed} lines")
        print(f"  gitops detect --format json   {d_med:8.1f} ms   (runs: {fmt(d_all)})")
        print(f"  git diff --name-status -M     {g_med:8.1f} ms   (runs: {fmt(g_all)})")
        print(f"  ratio gitops/git: {ratio:.2f} (goal: at most {GOAL})")
    ba, bb = revs(basic)
    basic_cmd = [gitops, "detect", "--repo", basic, "--base", ba, "--head", bb, "--format", "json"]
    once(basic_cmd)
    e_all = [once(basic_cmd) for _ in range(runs)]
    print(f"examples/basic: gitops detect {statistics.median(e_all):.1f} ms (goal: under 50 ms; runs: {fmt(e_all)})")
    print(f"worst ratio: {worst:.2f} ({'meets' if worst <= GOAL else 'misses'} the goal of {GOAL})")


if __name__ == "__main__":
    main()
