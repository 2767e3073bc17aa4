#!/usr/bin/env python3
"""Measures the demo's first run as a newcomer meets it, and the run after.

    scripts/measure-first-run.py [--dir /tmp/gantry-cold] [--port 3917]

A fresh machine of this project's kind lacks everything the scripts build or
download. Instead of emptying this machine's caches (which its other work
needs), the measurement points every cache at an empty directory under
--dir, which is removed first:

  GANTRY_CACHE      tools (cargo-leptos, wasm-bindgen, wasm-opt), the Cargo
                    target directory, the Kubernetes binaries, logs, journal
  CARGO_HOME        Cargo's registry index, downloaded crates and git checkouts
  GOPATH, GOMODCACHE, GOCACHE   Go's module and build caches
  npm_config_cache  npm's cache

What stays is what the machine kind comes with (Rust through rustup with its
installed targets, Go, Node.js, Python) and the Debian packages the machine
already had: `scripts/run.sh` installs none.

Then: `git clone` of this repository into --dir, and `scripts/run.sh` in the
clone, timed from the start of the clone. The script polls the dashboard
every second: the first page (`/login` answers 200); the whole demo fleet
live (`/api/v1/clusters`, with a token made by `gantry token create` as soon
as the demo accounts exist: every cluster of deploy/fleets/demo.yaml `live`
with its nodes); and, with --bundle, the run done (its progress file says
finished: the browser bundle is in place). The run is stopped and started again in the same
clone (nothing changed), and timed to the fleet live again. Each step's time
comes from the run's progress file. A markdown table is printed at the end.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "measure-the-first-run"


def fleet_clusters(clone):
    with open(os.path.join(clone, "deploy", "fleets", "demo.yaml")) as f:
        return [line.split(":", 1)[1].strip() for line in f if line.startswith("  - name:")]


def status(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except Exception:  # not up yet: refused, reset, timed out, 4xx/5xx
        return None, b""


def fmt(seconds):
    return "—" if seconds is None else f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


class Demo:
    """One `scripts/run.sh` in the clone, polled until `until` says so."""

    def __init__(self, clone, env, port, log):
        self.clone, self.env, self.port = clone, env, port
        self.base = f"http://127.0.0.1:{port}"
        self.data = env["GANTRY_DATA_DIR"]
        self.process = subprocess.Popen(
            [os.path.join(clone, "scripts", "run.sh")],
            cwd=clone,
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.token = None

    def make_token(self):
        gantry = os.path.join(self.env["GANTRY_CACHE"], "target", "release", "gantry")
        made = subprocess.run(
            [gantry, "token", "create", "--username", "admin", "--name", f"measure-{time.time_ns()}"],
            env={**self.env, "GANTRY_DATA_DIR": self.data},
            capture_output=True,
            text=True,
        )
        words = made.stdout.split()
        return words[-1] if made.returncode == 0 and words else None

    def fleet_live(self, names):
        if self.token is None:
            self.token = self.make_token()
            if self.token is None:
                return False
        code, body = status(f"{self.base}/api/v1/clusters", self.token)
        if code != 200:
            return False
        live = {c["name"] for c in json.loads(body) if c["state"] == "live" and c["nodes"] > 0}
        return all(name in live for name in names)

    def progress(self):
        try:
            with open(os.path.join(self.data, "progress.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def stop(self):
        # SIGTERM, which run.py turns into stopping its services: a process
        # started in the background ignores SIGINT.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def watch(demo, started, names, limit, until_finished):
    """Times of the first page, the fleet live and the run finished (seconds
    since `started`); stops at the first that `until_finished` needs."""
    first_page = fleet = finished = None
    while time.time() - started < limit:
        if demo.process.poll() is not None:
            sys.exit(f"scripts/run.sh stopped (exit status {demo.process.returncode}); see its log")
        now = time.time() - started
        if first_page is None and status(f"{demo.base}/login")[0] == 200:
            first_page = now
            print(f"first page after {fmt(now)}", flush=True)
        if first_page is not None and fleet is None and demo.fleet_live(names):
            fleet = now
            print(f"fleet live after {fmt(now)}", flush=True)
        if finished is None and demo.progress().get("finished"):
            finished = now
            print(f"run finished after {fmt(now)}", flush=True)
        if fleet is not None and (finished is not None or not until_finished):
            break
        time.sleep(1)
    return first_page, fleet, finished


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/gantry-cold")
    parser.add_argument("--port", type=int, default=3917)
    parser.add_argument("--limit-minutes", type=float, default=75)
    parser.add_argument(
        "--again", action="store_true", help="only the second run, in the --dir of an earlier measurement"
    )
    parser.add_argument(
        "--bundle", action="store_true", help="wait for the browser bundle too (about 20 minutes more on 2 cores)"
    )
    args = parser.parse_args()

    top = os.path.abspath(args.dir)
    if not args.again:
        shutil.rmtree(top, ignore_errors=True)
        os.makedirs(top)
    env = dict(os.environ)
    for name in ("CARGO_TARGET_DIR", "GANTRY_ROOT"):
        env.pop(name, None)
    env.update(
        GANTRY_CACHE=os.path.join(top, "cache"),
        CARGO_HOME=os.path.join(top, "cargo"),
        GOPATH=os.path.join(top, "go"),
        GOMODCACHE=os.path.join(top, "go", "pkg", "mod"),
        GOCACHE=os.path.join(top, "go-build"),
        npm_config_cache=os.path.join(top, "npm"),
        GANTRY_DATA_DIR=os.path.join(top, "data"),
        GANTRY_LISTEN=f"127.0.0.1:{args.port}",
        GANTRY_DEMO_PASSWORD=PASSWORD,
        # rustup's proxies stay on PATH; the toolchain itself is the machine's.
        RUSTUP_HOME=os.environ.get("RUSTUP_HOME", os.path.expanduser("~/.rustup")),
    )
    clone = os.path.join(top, "clone")
    limit = args.limit_minutes * 60

    first_page = fleet = finished = None
    steps = []
    if not args.again:
        started = time.time()
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        print(f"cold run in {clone} (caches under {top})", flush=True)
        demo = Demo(clone, env, args.port, os.path.join(top, "run-1.log"))
        try:
            first_page, fleet, finished = watch(demo, started, fleet_clusters(clone), limit, args.bundle)
            steps = demo.progress().get("steps", [])
        finally:
            demo.stop()
    if not os.path.isdir(clone):
        sys.exit(f"--again: no clone in {top}; run once without --again first")
    names = fleet_clusters(clone)
    if status(f"http://127.0.0.1:{args.port}/login")[0] is not None:
        sys.exit(f"something still answers on port {args.port}: stop it first")

    again = time.time()
    demo = Demo(clone, env, args.port, os.path.join(top, "run-2.log"))
    try:
        warm_page, warm_fleet, _ = watch(demo, again, names, 300, until_finished=False)
    finally:
        demo.stop()

    print()
    print(f"| measured {time.strftime('%Y-%m-%d')} | time from `git clone` |")
    print("|---|---|")
    print(f"| first page (`/login` answers) | {fmt(first_page)} |")
    print(f"| the demo fleet live ({len(names)} clusters, on the open page) | {fmt(fleet)} |")
    print(f"| the run finished (browser bundle in place) | {fmt(finished)} |")
    print(f"| second `scripts/run.sh`, nothing changed: first page / fleet live | {fmt(warm_page)} / {fmt(warm_fleet)} |")
    print()
    print("| step | first run |")
    print("|---|---|")
    for step in steps:
        print(f"| {step['title']} | {fmt(step.get('seconds'))} ({step['state']}) |")


if __name__ == "__main__":
    main()
