#!/usr/bin/env python3
"""Scale benchmark: 10 / 100 / 1,000 environments in 3 accounts x 3 regions
against one local moto server (run it through benches/scale/run.sh).

Usage: bench.py GITOPS_BINARY [--sizes 10,100,1000] [--runs 5]

For each size N it builds a git repository (commit A: gitops.yaml and the
template; B: N environments, each with a `role-arn` into one of 3 accounts
and one of 3 regions; C: a file added in the folders of N/10 environments,
which changes no stack), deploys B into a fresh moto with `gitops deploy`,
then measures, on C:

  detect           gitops detect --base B --head C --format json
  status           gitops status --format json
  drift            gitops drift --skip-resource-drift --format json
  plan --no-aws    gitops plan --no-aws --base B --head C --format json
  deploy           gitops deploy --base B --head C --format json
                   (the N/10 touched environments, all unchanged: no-ops)

Time: median of RUNS runs straight to moto (after one warm-up). Memory:
the largest peak RSS of those runs (getrusage of the child). Calls: one more
run through a counting proxy (proxy.py) between the tool and moto, which
records each call's operation, region and account. "mutating" counts every
call that is not a read (Describe*, Get*, List*, AssumeRole,
GetCallerIdentity). "listings" counts DescribeStacks page sequences (a call
without StackName and without NextToken) per account and region.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
READS = ("Describe", "Get", "List", "AssumeRole", "Validate", "Estimate")

CONFIG = """version: 1
id: bench/scale
stack: { template: common/app.yaml }
"""

TEMPLATE = """Parameters:
  EnvironmentName: { Type: String }
  AppVersion: { Type: String }
Resources:
  Version:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${EnvironmentName}/version"
      Type: String
      Value: !Ref AppVersion
"""


def env_name(i):
    return f"env-{i:04d}"


def location(i):
    """(account, region) of environment i: 3 x 3 locations, round robin."""
    return ACCOUNTS[i % 3], REGIONS[(i // 3) % 3]


def git(repo, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_repo(root, n):
    """Commits A, B, C as described above; returns their ids."""
    repo = root / f"repo-{n}"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    write(repo / "gitops.yaml", CONFIG)
    write(repo / "common/app.yaml", TEMPLATE)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "templates")
    a = git(repo, "rev-parse", "HEAD")
    for i in range(n):
        account, region = location(i)
        write(repo / "environments" / env_name(i) / "environment.yaml",
              f"region: {region}\nrole-arn: arn:aws:iam::{account}:role/gitops\n"
              f"parameters:\n  AppVersion: \"1.0.{i}\"\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{n} environments")
    b = git(repo, "rev-parse", "HEAD")
    for i in range(0, n, 10):
        write(repo / "environments" / env_name(i) / "config/extra.json", '{"touched": true}\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{n // 10} environment folders touched")
    c = git(repo, "rev-parse", "HEAD")
    return repo, a, b, c


def start(cmd, log):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)


def wait_url(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def start_moto(work):
    log = work / "moto.log"
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", "0"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    port = None
    while time.time() < deadline and port is None:
        text = log.read_text()
        marker = "Running on http://127.0.0.1:"
        if marker in text:
            port = text.split(marker, 1)[1].split()[0].strip("/")
        else:
            time.sleep(0.1)
    if port is None:
        sys.exit(f"moto_server did not start:\n{log.read_text()}")
    url = f"http://127.0.0.1:{port}"
    wait_url(url + "/moto-api/")
    return proc, url


def start_proxy(work, upstream):
    proc = start([sys.executable, str(HERE / "proxy.py"), upstream], work / "proxy.log")
    port = proc.stdout.readline().strip()
    if not port:
        sys.exit("proxy did not start")
    url = f"http://127.0.0.1:{port}"
    wait_url(url + "/__calls")
    return proc, url


def post(url):
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30).read()


def run_once(cmd, env):
    """(seconds, peak RSS in KiB, stdout) of one run; fails on exit codes other than 0 and 2."""
    # stderr (progress lines: more than a pipe holds for 1,000 environments)
    # goes to a file, so reading stdout to its end cannot deadlock; then reap
    # with wait4 for the rusage (communicate() would reap it first).
    with tempfile.TemporaryFile() as errf:
        start_t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=errf)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start_t
        proc.stdout.close()
        errf.seek(0)
        err = errf.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 2):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.decode()}\n{err.decode()}")
    return elapsed, usage.ru_maxrss, out.decode()


def measure(cmd, env, runs):
    run_once(cmd, env)  # warm-up
    times, rss = [], []
    for _ in range(runs):
        t, m, _ = run_once(cmd, env)
        times.append(t * 1000)
        rss.append(m)
    return statistics.median(times), max(rss), times


def count(cmd, env, proxy):
    post(proxy + "/__reset")
    _, _, out = run_once(cmd, dict(env, AWS_ENDPOINT_URL=proxy))
    calls = json.loads(urllib.request.urlopen(proxy + "/__calls", timeout=30).read())
    return calls, out


def summarize(calls):
    ops = Counter(c["op"] for c in calls)
    mutating = sum(v for op, v in ops.items() if not op.startswith(READS) and op != "GetCallerIdentity")
    listings = Counter((c["account"], c["region"]) for c in calls if c["listing"] and not c["next_token"])
    pages = Counter((c["account"], c["region"]) for c in calls if c["listing"])
    return ops, mutating, listings, pages


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gitops")
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    gitops = str(Path(args.gitops).resolve())

    work = Path(tempfile.mkdtemp(prefix="gitops-scale-"))
    moto, moto_url = start_moto(work)
    proxy, proxy_url = start_proxy(work, moto_url)
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    env.pop("GITHUB_OUTPUT", None)
    env.pop("GITHUB_ACTIONS", None)
    rows, details = [], []
    try:
        for n in sizes:
            post(moto_url + "/moto-api/reset")
            repo, a, b, c = make_repo(work, n)
            print(f"==> {n} environments: deploying into moto", file=sys.stderr)
            t0 = time.perf_counter()
            _, _, out = run_once([gitops, "deploy", "--repo", str(repo), "--base", a, "--head", b,
                                  "--concurrency", str(args.concurrency), "--format", "json"], env)
            report = json.loads(out)
            bad = [e for e in report["environments"] if e.get("outcome") not in ("succeeded",)]
            if bad or len(report["environments"]) != n:
                sys.exit(f"deploy of {n} environments did not succeed: {bad[:3]}")
            print(f"    deployed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            r = ["--repo", str(repo)]
            cmds = [
                ("detect", [gitops, "detect", *r, "--base", b, "--head", c, "--format", "json"]),
                ("status", [gitops, "status", *r, "--concurrency", str(args.concurrency), "--format", "json"]),
                ("drift --skip-resource-drift", [gitops, "drift", *r, "--skip-resource-drift",
                                                 "--concurrency", str(args.concurrency), "--format", "json"]),
                ("plan --no-aws", [gitops, "plan", *r, "--no-aws", "--base", b, "--head", c, "--format", "json"]),
                (f"deploy ({n // 10} unchanged)", [gitops, "deploy", *r, "--base", b, "--head", c,
                                                   "--concurrency", str(args.concurrency), "--format", "json"]),
            ]
            for label, cmd in cmds:
                print(f"    {label}", file=sys.stderr)
                med, rss, times = measure(cmd, env, args.runs)
                calls, out = count(cmd, env, proxy_url)
                ops, mutating, listings, pages = summarize(calls)
                if label.startswith("status"):
                    v = json.loads(out)
                    synced = sum(1 for e in v["environments"] if e["sync"] == "Synced")
                    if len(v["environments"]) != n:
                        sys.exit(f"status saw {len(v['environments'])} environments, not {n}")
                    details.append(f"status at {n}: {synced} of {n} Synced")
                if label.startswith("deploy"):
                    v = json.loads(out)
                    outcomes = Counter(e["outcome"] for e in v["environments"])
                    details.append(f"deploy at {n}: outcomes {dict(outcomes)}")
                rows.append((n, label, med, rss, len(calls), mutating, ops, listings, pages, times))
    finally:
        for p in (proxy, moto):
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n| environments | command | time (median of {args.runs}) | peak RSS | AWS calls | mutating |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, label, med, rss, total, mutating, *_ in rows:
        print(f"| {n:,} | `{label}` | {med:,.0f} ms | {rss / 1024:,.1f} MiB | {total:,} | {mutating} |")
    print("\nCalls by operation:")
    for n, label, _, _, total, _, ops, listings, pages, times in rows:
        if not total:
            continue
        by_op = ", ".join(f"{op} {v}" for op, v in sorted(ops.items()))
        print(f"- {n:,} `{label}`: {by_op}")
        if listings:
            locs = len(listings)
            seqs = sum(listings.values())
            print(f"  DescribeStacks listings: {seqs} page sequence(s) ({sum(pages.values())} pages) "
                  f"over {locs} account/region pair(s); most in one pair: {max(listings.values())}")
    print("\nRuns (ms):")
    for n, label, *_, times in rows:
        print(f"- {n:,} `{label}`: {', '.join(f'{t:.0f}' for t in times)}")
    for d in details:
        print(f"- {d}")


if __name__ == "__main__":
    main()
