#!/usr/bin/env bash
# Gantry's container image: a static binary and the built site, FROM scratch.
#
#   scripts/image.sh build   # the static binary (musl), then the image with buildah; prints its name
#   scripts/image.sh check   # build, then run it (runc) as its non-root user on a read-only root
#                            # filesystem: /healthz, /readyz and a page answer; bad settings exit with one line
#   scripts/image.sh bench   # build, then write the image's size into BENCHMARKS.md (## Image)
#
# Needs root (buildah and runc, daemonless), the site built first
# (scripts/build-site.sh) and scripts/setup.sh test.
# The image is rebuilt only when the binary, the site or the Containerfile
# changed: its tag is a hash of them. Why runc and not podman: see
# ARCHITECTURE.md (podman and crun cannot set rlimits or cgroups on these
# machines; runc runs the same OCI bundle).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$GANTRY_ROOT"
what="${1:-}"
case "$what" in build|check|bench) ;; *) echo "usage: scripts/image.sh build|check|bench" >&2; exit 2 ;; esac
if [[ $(id -u) -ne 0 ]]; then
  echo "error: scripts/image.sh needs root (buildah and runc run daemonless, as root)" >&2; exit 1
fi
site="$GANTRY_ROOT/target/site"
if [[ ! -f "$site/pkg/gantry.js" ]]; then
  echo "error: $site/pkg/gantry.js is missing; build the site first: scripts/build-site.sh" >&2; exit 1
fi
# buildah's storage: vfs, since overlay needs a kernel and filesystem this machine may not give.
storage=(--storage-driver vfs)
storage_ref="containers-storage:[vfs@/var/lib/containers/storage+/run/containers/storage]"

step "static binary: cargo build --profile image --target x86_64-unknown-linux-musl (its own target directory)"
musl_target="$GANTRY_CACHE/target-musl"
CARGO_TARGET_DIR="$musl_target" CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build -q --profile image --target x86_64-unknown-linux-musl -p gantry --bin gantry
binary="$musl_target/x86_64-unknown-linux-musl/image/gantry"

# The build context: the files of the image's one layer, owned by root and
# readable by all; the data directory is the non-root user's.
context=$(mktemp -d /tmp/gantry-image.XXXXXX)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/srv/gantry" "$context/rootfs/etc/ssl/certs" \
  "$context/rootfs/var/lib/gantry" "$context/rootfs/tmp"
install -m 755 -s "$binary" "$context/rootfs/usr/local/bin/gantry"
cp -r "$site" "$context/rootfs/srv/gantry/site"
cp /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/sbin/nologin\ngantry:x:10001:10001:gantry:/var/lib/gantry:/sbin/nologin\n' >"$context/rootfs/etc/passwd"
printf 'root:x:0:\ngantry:x:10001:\n' >"$context/rootfs/etc/group"
chmod 1777 "$context/rootfs/tmp"
chmod -R a+rX "$context/rootfs"
cp deploy/Containerfile "$context/Containerfile"
hash=$(cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
image="localhost/gantry:$hash"

if buildah "${storage[@]}" images --quiet "$image" >/dev/null 2>&1; then
  step "image $image is already built (same binary, site and Containerfile)"
else
  step "building $image with buildah (FROM scratch, --isolation chroot)"
  buildah "${storage[@]}" bud --quiet --isolation chroot --layers=false -f "$context/Containerfile" -t "$image" "$context" >/dev/null
  # vfs keeps a whole copy of each image: drop the earlier builds.
  buildah "${storage[@]}" images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/gantry:' | grep -vx "$image" |
    xargs -r buildah "${storage[@]}" rmi >/dev/null 2>&1 || true
fi
echo "$image"
[[ $what == build ]] && exit 0

# The image as an OCI layout, unpacked into a runtime bundle.
work=$(mktemp -d /tmp/gantry-image-run.XXXXXX)
# (Each step may fail, as when the container has already stopped: the trap must not change the exit status.)
trap 'for c in "${containers[@]}"; do runc kill "$c" KILL 2>/dev/null || true; runc delete --force "$c" 2>/dev/null || true; done; rm -rf "$context" "$work"' EXIT
containers=()
skopeo copy --quiet "$storage_ref$image" "oci:$work/oci:gantry"
bytes=$(python3 - "$work/oci" <<'EOF'
import gzip, json, os, sys
root = sys.argv[1]
index = json.load(open(os.path.join(root, "index.json")))
def blob(digest):
    algo, hexdigest = digest.split(":")
    return os.path.join(root, "blobs", algo, hexdigest)
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
# Uncompressed: each layer's tar as it unpacks.
total = 0
for layer in manifest["layers"]:
    with open(blob(layer["digest"]), "rb") as f:
        data = f.read()
    if layer["mediaType"].endswith("gzip"):
        data = gzip.decompress(data)
    total += len(data)
print(total)
EOF
)
compressed=$(du -sb "$work/oci/blobs" | cut -f1)
echo "image $image: $((bytes / 1024 / 1024)) MiB uncompressed ($bytes bytes), $((compressed / 1024 / 1024)) MiB as stored" >&2

if [[ $what == bench ]]; then
  python3 - "$GANTRY_ROOT/BENCHMARKS.md" "$bytes" "$compressed" "$(du -b "$context/rootfs/usr/local/bin/gantry" | cut -f1)" "$(du -sb "$site" | cut -f1)" <<'EOF'
import sys, re, datetime
path, image, stored, binary, site = sys.argv[1], *map(int, sys.argv[2:])
mb = lambda b: f"{b / 1e6:.1f} MB"
section = f"""## Image

Written by `scripts/image.sh bench` on {datetime.date.today()}: the image `deploy/Containerfile`
builds (FROM scratch: the static musl binary, stripped; the site, precompressed; CA
certificates; a passwd with the non-root user).

| | size | goal |
|---|---|---|
| image, uncompressed (its layer as a tar) | {mb(image)} | <= 40 MB: {"met" if image <= 40e6 else "NOT met: the binary alone is over it"} |
| image as stored (OCI layout blobs) | {mb(stored)} | |
| of which the binary (stripped; the `image` profile: fat LTO, 1 codegen unit, opt-level "s") | {mb(binary)} | |
| of which the site (with .gz and .br twins) | {mb(site)} | |

"""
text = open(path).read()
pattern = re.compile(r"## Image\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section.rstrip("\n") + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
open(path, "w").write(text)
EOF
  step "BENCHMARKS.md: ## Image written"
  exit 0
fi

umoci unpack --image "$work/oci:gantry" "$work/bundle" >/dev/null

# A bundle that runs as a pod would under the chart: the image's own user,
# no capabilities, no new privileges, a read-only root filesystem, writable
# tmpfs at /tmp and /var/lib/gantry; the host's network so the check can reach it.
bundle_config() { # port [extra env...]
  python3 - "$work/bundle/config.json" "$@" <<'EOF'
import json, sys
path, port, *extra = sys.argv[1:]
config = json.load(open(path))
process = config["process"]
process.pop("rlimits", None)   # runc cannot set them inside this machine's sandbox
process["noNewPrivileges"] = True
process["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
process["terminal"] = False
process["env"] = [e for e in process["env"] if not e.startswith("GANTRY_LISTEN=")] + [f"GANTRY_LISTEN=127.0.0.1:{port}", "GANTRY_SHUTDOWN_DELAY_SECONDS=0"] + extra
config["root"]["readonly"] = True
linux = config["linux"]
linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
linux.pop("resources", None)
config["mounts"] = [m for m in config["mounts"] if m["destination"] not in ("/tmp", "/var/lib/gantry")] + [
    {"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777" if d == "/tmp" else "mode=0700", "uid=0" if d == "/tmp" else "uid=10001", "gid=0" if d == "/tmp" else "gid=10001"]}
    for d in ("/tmp", "/var/lib/gantry")
]
json.dump(config, open(path, "w"), indent=1)
EOF
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "error: image check: $*" >&2; exit 1; }

# The settings the chart gives the container (its SQLite rendering: no Secret
# to read), so the binary is shown to accept them; not the in-cluster name,
# which needs a service account.
mapfile -t chart_env < <("$GANTRY_HELM" template gantry deploy/helm/gantry -f deploy/helm/gantry/ci/sqlite-values.yaml \
  --show-only templates/deployment.yaml |
  sed -nE 's/^ *- \{ name: (GANTRY_[A-Z_]+), value: "?([^"]*)"? \}$/\1=\2/p' |
  grep -v '^GANTRY_IN_CLUSTER_NAME=\|^GANTRY_SHUTDOWN_DELAY_SECONDS=')
(( ${#chart_env[@]} >= 3 )) || fail "found no settings in the chart's rendering"

step "running $image with runc: non-root, read-only root filesystem, no capabilities, the chart's settings (${chart_env[*]})"
port=$(free_port)
bundle_config "$port" "${chart_env[@]}"
name="gantry-image-check-$$"
containers+=("$name")
runc run --detach --bundle "$work/bundle" "$name" >"$work/gantry.log" 2>&1 </dev/null || { cat "$work/gantry.log" >&2; fail "runc could not start it"; }
for _ in $(seq 1 60); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
  sleep 0.5
done
for path in /healthz /readyz /login /pkg/gantry.js; do
  code=$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$port$path") || code=000
  [[ $code == 200 ]] || { tail -n 20 "$work/gantry.log" >&2; fail "GET $path answered $code"; }
done
curl -s "http://127.0.0.1:$port/login" | grep -q 'type="password"' || fail "/login did not render its sign-in form"
pid=$(runc state "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[[ $uid == 10001 ]] || fail "the process runs as uid $uid, not 10001"
root_options=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo" | head -n 1)
[[ $root_options == ro,* || $root_options == ro ]] || fail "its root filesystem is mounted $root_options, not read-only"
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
[[ $caps == 0000000000000000 ]] || fail "it holds capabilities $caps"
echo "ok: /healthz, /readyz, /login and the bundle answer; uid 10001, root filesystem $root_options, no capabilities" >&2
runc kill "$name" TERM
for _ in $(seq 1 40); do [[ $(runc state "$name" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null) == stopped ]] && break; sleep 0.25; done
grep -qi "panicked" "$work/gantry.log" && { cat "$work/gantry.log" >&2; fail "it panicked"; }

# Bad settings in a pod: one clear line and a non-zero exit (the readiness probe never passes).
bad_setting() { # what expected-text env...
  local what=$1 expected=$2; shift 2
  bundle_config "$(free_port)" "$@"
  local name="gantry-image-bad-$$-${#containers[@]}"
  containers+=("$name")
  local rc=0
  timeout 30 runc run --bundle "$work/bundle" "$name" >"$work/bad.log" 2>&1 </dev/null || rc=$?
  [[ $rc != 0 && $rc != 124 ]] || fail "with $what it exited $rc (0: it ran; 124: it hung)"
  local errors
  errors=$(grep -v ' INFO \| WARN ' "$work/bad.log" || true)
  [[ $(printf '%s\n' "$errors" | grep -c .) -eq 1 ]] || { cat "$work/bad.log" >&2; fail "with $what it printed more than one error line"; }
  grep -q "$expected" <<<"$errors" || { cat "$work/bad.log" >&2; fail "with $what its line does not mention $expected"; }
  echo "ok: $what: $errors" >&2
}
bad_setting "a malformed secret key" "GANTRY_SECRET_KEY: the secret key is not base64" GANTRY_SECRET_KEY=not-base64
bad_setting "a secret key of the wrong length" "the secret key must be 32 bytes" GANTRY_SECRET_KEY=c2hvcnQ=
bad_setting "an empty secret key (a Secret without its value)" "GANTRY_SECRET_KEY is set but empty" GANTRY_SECRET_KEY=
bad_setting "an empty DATABASE_URL" "DATABASE_URL is set but empty" DATABASE_URL=
bad_setting "an unreachable DATABASE_URL" "DATABASE_URL.*cannot open the database" DATABASE_URL=postgres://gantry:pw@127.0.0.1:1/gantry
bad_setting "a DATABASE_URL of another database" "DATABASE_URL.*neither a postgres" DATABASE_URL=mysql://gantry@db/gantry
step "image check passed"
