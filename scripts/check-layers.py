#!/usr/bin/env python3
"""Fails when a crate depends on what its layer must not (ARCHITECTURE.md).

The layers point one way: server -> app -> service -> {cluster, store} -> domain.
Only the cluster crate talks to Kubernetes (kube, k8s-openapi) and only the
store talks to a database (sqlx); the browser side (domain, app without its
`ssr` feature, hydrate) has no server-only crate. Normal dependencies are
checked, as `cargo metadata` resolves them for this workspace; dev-dependencies
(tests may reach behind the gate) are not.

    scripts/check-layers.py            # check the workspace
    scripts/check-layers.py --self-test  # show that a violation is caught
"""

import json
import subprocess
import sys

# For each crate: the crates (workspace or external) it must not depend on.
KUBERNETES = {"kube", "kube-client", "kube-runtime", "k8s-openapi"}
DATABASE = {"sqlx"}
WEB = {"axum", "leptos_axum", "tower-sessions", "tower-http"}
UI = {"leptos", "leptos_meta", "leptos_router", "app", "hydrate"}

FORBIDDEN = {
    "gantry-domain": {"gantry-store", "gantry-cluster", "gantry-service", "gantry", "gantry-testbed", "tokio"}
    | KUBERNETES | DATABASE | WEB | UI,
    "gantry-store": {"gantry-cluster", "gantry-prometheus", "gantry-service", "gantry", "gantry-testbed"} | KUBERNETES | WEB - {"tower-sessions"} | UI,
    "gantry-prometheus": {"gantry-store", "gantry-cluster", "gantry-service", "gantry", "gantry-testbed"}
    | KUBERNETES | DATABASE | WEB | UI,
    "gantry-cluster": {"gantry-store", "gantry-prometheus", "gantry-service", "gantry", "gantry-testbed"} | DATABASE | WEB | UI,
    "gantry-service": {"gantry", "gantry-testbed", "kube", "k8s-openapi"} | DATABASE | UI | (WEB - {"tower-sessions"}),
    "app": {"gantry-store", "gantry-cluster", "gantry-prometheus", "gantry", "gantry-testbed"} | KUBERNETES | DATABASE,
    "hydrate": {"gantry-service", "gantry-store", "gantry-prometheus", "gantry-cluster", "gantry", "gantry-testbed"} | KUBERNETES | DATABASE | WEB,
    "gantry": {"gantry-testbed", "kube", "k8s-openapi"} | DATABASE,
}


def normal_dependencies(metadata):
    """crate name -> names of its normal (non-dev, non-build) dependencies."""
    names = {p["id"]: p["name"] for p in metadata["packages"]}
    members = set(metadata["workspace_members"])
    result = {}
    for node in metadata["resolve"]["nodes"]:
        if node["id"] not in members:
            continue
        deps = set()
        for dep in node["deps"]:
            if any(kind["kind"] is None for kind in dep["dep_kinds"]):
                deps.add(names[dep["pkg"]])
        result[names[node["id"]]] = deps
    return result


def violations(dependencies):
    found = []
    for crate, forbidden in FORBIDDEN.items():
        for dep in sorted(dependencies.get(crate, set()) & forbidden):
            found.append(f"{crate} must not depend on {dep}")
    return found


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1"], check=True, capture_output=True, text=True
        ).stdout
    )
    dependencies = normal_dependencies(metadata)
    missing = sorted(set(FORBIDDEN) - set(dependencies))
    if missing:
        print(f"layer check: no such workspace crate: {', '.join(missing)} (update scripts/check-layers.py)")
        return 1
    if "--self-test" in sys.argv:
        # A deliberate violation: the pure core reaching for the database.
        dependencies["gantry-domain"] = dependencies["gantry-domain"] | {"sqlx"}
        caught = violations(dependencies)
        print("\n".join(caught) if caught else "the deliberate violation was NOT caught")
        return 0 if caught == ["gantry-domain must not depend on sqlx"] else 1
    found = violations(dependencies)
    for line in found:
        print(f"layer check: {line}")
    if not found:
        print(f"layer check: {len(FORBIDDEN)} crates keep to their layers")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
