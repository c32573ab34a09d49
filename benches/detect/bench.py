#!/usr/bin/env python3
"""Times `gitops detect` against `git diff --name-status -M` (median of N runs).

Usage: bench.py GITOPS_BINARY BENCH_REPO BASIC_REPO [RUNS]
BENCH_REPO is made by gen_repo.py; BASIC_REPO is a git repository holding a
copy of examples/basic with two commits (see run.sh).
"""

import statistics
import subprocess
import sys
import time


def median_ms(cmd, runs):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), times


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    gitops, bench, basic = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) == 5 else 5

    def revs(repo):
        out = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD~1", "HEAD"], check=True,
                             capture_output=True, text=True).stdout.split()
        return out[0], out[1]

    a, b = revs(bench)
    rows = []
    detect = [gitops, "detect", "--repo", bench, "--base", a, "--head", b, "--format", "json"]
    gitdiff = ["git", "-C", bench, "diff", "--name-status", "-M", a, b]
    d_med, d_all = median_ms(detect, runs)
    g_med, g_all = median_ms(gitdiff, runs)
    rows.append(("gitops detect (1,000 envs, 50,013 files, 10,000 changed)", d_med, d_all))
    rows.append(("git diff --name-status -M (same commits)", g_med, g_all))
    ba, bb = revs(basic)
    basic_cmd = [gitops, "detect", "--repo", basic, "--base", ba, "--head", bb, "--format", "json"]
    e_med, e_all = median_ms(basic_cmd, runs)
    rows.append(("gitops detect on examples/basic", e_med, e_all))

    report = subprocess.run(detect, check=True, capture_output=True, text=True).stdout
    import json
    d = json.loads(report)
    print(f"detection: {len(d['created'])} created, {len(d['updated'])} updated, "
          f"{len(d['deleted'])} deleted, {len(d['unchanged'])} unchanged")
    print(f"median of {runs} runs (after one warm-up):")
    for name, med, all_ in rows:
        print(f"  {name:58} {med:8.1f} ms   (runs: {', '.join(f'{t:.1f}' for t in all_)})")
    ratio = d_med / g_med
    print(f"  ratio gitops/git: {ratio:.2f} (goal: at most 1.5)")
    print(f"  examples/basic: {e_med:.1f} ms (goal: under 50 ms)")


if __name__ == "__main__":
    main()
