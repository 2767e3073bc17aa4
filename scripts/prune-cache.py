#!/usr/bin/env python3
"""Keep the build cache from filling the disk.

Cargo never deletes what it built: every change to a crate leaves one more
copy of each test binary (500 MB apiece here) in the target directory's
deps/, and the incremental caches grow with it. A stop's CI once failed on a
full disk. When the disk holding the target directory has less free space
than GANTRY_MIN_FREE_GIB (30 by default), this keeps the three newest builds
of each artifact and drops the rest, then the incremental caches if that was
not enough. Cargo rebuilds anything it still needs.

    scripts/prune-cache.py [TARGET_DIR]
"""
import os
import re
import shutil
import sys
from collections import defaultdict

KEEP = 3
ARTIFACT = re.compile(r"(.+)-([0-9a-f]{16})(.*)$")


def free_gib(path):
    return shutil.disk_usage(path).free / 2**30


def stale_artifacts(deps):
    """Every artifact in deps/ but the KEEP newest of its name and kind."""
    builds = defaultdict(list)
    for name in os.listdir(deps):
        match = ARTIFACT.match(name)
        if match:
            path = os.path.join(deps, name)
            builds[(match.group(1), match.group(3))].append((os.path.getmtime(path), path))
    for versions in builds.values():
        versions.sort(reverse=True)
        yield from (path for _, path in versions[KEEP:])


def remove(path):
    size = 0
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        shutil.rmtree(path)
    elif os.path.exists(path):
        size = os.path.getsize(path)
        os.remove(path)
    return size


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    minimum = float(os.environ.get("GANTRY_MIN_FREE_GIB", "30"))
    if not os.path.isdir(target) or free_gib(target) >= minimum:
        return
    before = free_gib(target)
    profiles = [os.path.join(root, p) for root in [target, os.path.join(target, "wasm32-unknown-unknown")]
                for p in ("debug", "release")]
    profiles = [p for p in profiles if os.path.isdir(p)]
    freed = 0
    for profile in profiles:
        deps = os.path.join(profile, "deps")
        if os.path.isdir(deps):
            freed += sum(remove(path) for path in stale_artifacts(deps))
    if free_gib(target) < minimum:
        freed += sum(remove(os.path.join(profile, "incremental")) for profile in profiles)
    print(f"build cache: {before:.1f} GiB free, under {minimum:g}; removed {freed / 2**30:.1f} GiB of stale "
          f"builds, {free_gib(target):.1f} GiB free now", file=sys.stderr)


if __name__ == "__main__":
    main()
