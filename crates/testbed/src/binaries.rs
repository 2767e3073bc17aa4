//! The testbed's binaries: etcd comes vendored in a crate; kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok (the control plane) and kubectl are built
//! from the Go module proxy by `go/build-k8s.sh` into a cache shared by every checkout.
//! kubectl is a set of its own, built only when asked for: a testbed does not need it.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// `go/build-k8s.sh`, which builds the binaries from the Go module proxy.
const BUILD_SCRIPT: &str = include_str!("../go/build-k8s.sh");

pub const K8S_VERSION: &str = "v1.36.3";
pub const KWOK_VERSION: &str = "v0.8.0";

/// The recipe number of `go/build-k8s.sh` (its `RECIPE=`), part of its stamp files' names.
const RECIPE: &str = "r3";

/// Paths of every program a testbed runs, and of kubectl.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    /// Where kubectl is or will be: it is not part of the control plane, and is built by
    /// [`Binaries::ensure_kubectl`] (or [`Binaries::ensure_all`]) only.
    pub kubectl: PathBuf,
    pub kwok: PathBuf,
    /// KWOK's stage definitions (`node/fast/node-initialize.yaml`, ...).
    pub kwok_stages: PathBuf,
}

/// What one run of `go/build-k8s.sh` builds (its fourth argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinarySet {
    /// kube-apiserver, kube-controller-manager, kube-scheduler, kwok and kwok's stages.
    ControlPlane,
    /// The control plane, then kubectl.
    All,
}

impl BinarySet {
    fn arg(self) -> &'static str {
        match self {
            BinarySet::ControlPlane => "control-plane",
            BinarySet::All => "all",
        }
    }

    fn ready(self) -> bool {
        match self {
            BinarySet::ControlPlane => Binaries::locate().is_ok(),
            BinarySet::All => Binaries::locate().is_ok() && Binaries::locate_kubectl().is_ok(),
        }
    }
}

/// The file `go/build-k8s.sh` writes once the control plane is built.
fn control_plane_stamp(bin: &Path) -> PathBuf {
    bin.join(format!(".built-{RECIPE}-control-plane-{K8S_VERSION}-{KWOK_VERSION}"))
}

/// The file `go/build-k8s.sh` writes once kubectl is built.
fn kubectl_stamp(bin: &Path) -> PathBuf {
    bin.join(format!(".built-{RECIPE}-kubectl-{K8S_VERSION}"))
}

/// Where built binaries are kept: `$GANTRY_CACHE`, else `~/.cache/gantry`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("GANTRY_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("gantry")
}

/// The cache directory of this Kubernetes version (`bin/`, `kwok-stages/`, `src/`).
pub fn version_dir() -> PathBuf {
    cache_root().join(format!("k8s-{K8S_VERSION}"))
}

/// The file in which a build of the control plane (kube-apiserver, kube-controller-manager,
/// kube-scheduler and kwok) records how long it took, in seconds, from fetching the sources.
pub fn build_seconds_file() -> PathBuf {
    version_dir().join("build-seconds")
}

/// The file in which a build of kubectl records how long it took, in seconds.
pub fn kubectl_build_seconds_file() -> PathBuf {
    version_dir().join("build-seconds-kubectl")
}

impl Binaries {
    /// The control plane's binaries (not kubectl), built first if they are missing. Blocking:
    /// a cold build takes many minutes, and its progress lines go to stderr. Safe to call from
    /// parallel tests and processes (a file lock serialises builds).
    pub fn ensure() -> Result<Binaries> {
        static ONCE: Mutex<Option<Binaries>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate, || build(BinarySet::ControlPlane))
    }

    /// kubectl, built first if it is missing (with the control plane, if that is missing too).
    /// Blocking, like [`ensure`](Self::ensure).
    pub fn ensure_kubectl() -> Result<PathBuf> {
        static ONCE: Mutex<Option<PathBuf>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate_kubectl, || build(BinarySet::All))
    }

    /// The control plane and kubectl, built in one run if anything is missing.
    pub fn ensure_all() -> Result<Binaries> {
        if !BinarySet::All.ready() {
            build(BinarySet::All)?;
        }
        Self::locate_kubectl()?;
        Self::locate()
    }

    /// The control plane's binaries if they are already built; never builds. kubectl may be
    /// missing (see [`locate_kubectl`](Self::locate_kubectl)).
    pub fn locate() -> Result<Binaries> {
        let dir = version_dir();
        let bin = dir.join("bin");
        let etcd = etcd_bin_vendored::etcd_bin_path()
            .map_err(|e| Error::Binaries(format!("no vendored etcd: {e}")))?
            .to_path_buf();
        let found = Binaries {
            etcd,
            kube_apiserver: bin.join("kube-apiserver"),
            kube_controller_manager: bin.join("kube-controller-manager"),
            kube_scheduler: bin.join("kube-scheduler"),
            kubectl: bin.join("kubectl"),
            kwok: bin.join("kwok"),
            kwok_stages: dir.join("kwok-stages"),
        };
        let stage = found.kwok_stages.join("pod/general/pod-complete.yaml");
        let stamp = control_plane_stamp(&bin);
        let needed = [
            &found.etcd,
            &found.kube_apiserver,
            &found.kube_controller_manager,
            &found.kube_scheduler,
            &found.kwok,
            &stage,
        ];
        check_built(&bin, &stamp, &needed)?;
        Ok(found)
    }

    /// kubectl if it is already built; never builds.
    pub fn locate_kubectl() -> Result<PathBuf> {
        let bin = version_dir().join("bin");
        let kubectl = bin.join("kubectl");
        check_built(&bin, &kubectl_stamp(&bin), &[&kubectl])?;
        Ok(kubectl)
    }
}

/// An error naming what is missing: a file of `needed`, or the stamp of a finished build.
/// What `once` already found, else what `locate` finds, else what it finds
/// after `build` ran: each process builds or looks at most once per cache.
fn ensure_cached<T: Clone>(
    once: &Mutex<Option<T>>,
    locate: fn() -> Result<T>,
    build: impl FnOnce() -> Result<()>,
) -> Result<T> {
    let mut done = once.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = done.as_ref() {
        return Ok(found.clone());
    }
    let found = match locate() {
        Ok(found) => found,
        Err(_) => {
            build()?;
            locate()?
        }
    };
    *done = Some(found.clone());
    Ok(found)
}

fn check_built(bin: &Path, stamp: &Path, needed: &[&PathBuf]) -> Result<()> {
    let missing: Vec<&PathBuf> = needed.iter().copied().filter(|p| !p.exists()).collect();
    if stamp.exists() && missing.is_empty() {
        return Ok(());
    }
    Err(Error::Binaries(format!(
        "not built yet in {} (missing: {})",
        bin.display(),
        if missing.is_empty() {
            "the build stamp".to_string()
        } else {
            missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        }
    )))
}

/// Runs `go/build-k8s.sh` for `set` under an exclusive lock on the cache, echoing its output
/// (its `progress:` lines among it) to stderr. The script records the build's seconds.
fn build(set: BinarySet) -> Result<()> {
    let what = match set {
        BinarySet::ControlPlane => format!("the Kubernetes {K8S_VERSION} control plane and kwok {KWOK_VERSION}"),
        BinarySet::All => format!("Kubernetes {K8S_VERSION} (control plane and kubectl) and kwok {KWOK_VERSION}"),
    };
    let dir = version_dir();
    run_build_script(BuildScript {
        dir: &dir,
        file_name: format!("build-k8s-{K8S_VERSION}.sh"),
        text: BUILD_SCRIPT,
        args: vec![K8S_VERSION.into(), KWOK_VERSION.into(), dir.display().to_string(), set.arg().into()],
        what,
        ready: &|| set.ready(),
    })
}

/// A build script to run under the lock of its cache directory.
struct BuildScript<'a> {
    /// The cache directory; the lock and the written-out script live in it.
    dir: &'a Path,
    file_name: String,
    text: &'static str,
    args: Vec<String>,
    /// For the message before the build.
    what: String,
    /// Whether another process finished the build while this one waited for the lock.
    ready: &'a dyn Fn() -> bool,
}

/// Runs a build script under an exclusive lock on its cache directory, echoing its output
/// (its `progress:` lines among it) to stderr.
fn run_build_script(build: BuildScript<'_>) -> Result<()> {
    let dir = build.dir;
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let lock_path = dir.join(".build.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io(format!("opening {}", lock_path.display())))?;
    // SAFETY: flock on a descriptor we own; the lock is released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io("locking the binary cache")(std::io::Error::last_os_error()));
    }

    // Another process may have finished the build while we waited for the lock.
    if (build.ready)() {
        return Ok(());
    }
    eprintln!("testbed: building {} into {} (what is built already is kept)", build.what, dir.display());
    // The script is compiled into the binary and written out beside the lock,
    // so a testbed binary works wherever it is, whatever became of the source tree.
    let script = lock_path.with_file_name(&build.file_name);
    std::fs::write(&script, build.text).map_err(Error::io(format!("writing {}", script.display())))?;
    let mut child = Command::new("bash")
        .arg(&script)
        .args(&build.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Binaries(format!("cannot run {}: {e} (is bash installed?)", script.display())))?;

    // Echo both streams line by line and keep the last lines for the error message.
    let recent: Arc<Mutex<Vec<String>>> = Arc::default();
    let echo = |stream: Box<dyn Read + Send>| {
        let recent = Arc::clone(&recent);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(std::result::Result::ok) {
                eprintln!("{line}");
                let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
                recent.push(line);
                if recent.len() > 20 {
                    recent.remove(0);
                }
            }
        })
    };
    let out = echo(Box::new(child.stdout.take().expect("piped")));
    let err = echo(Box::new(child.stderr.take().expect("piped")));
    let status = child.wait().map_err(Error::io(format!("waiting for {}", build.file_name)))?;
    let _ = out.join();
    let _ = err.join();
    if !status.success() {
        let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
        // The scripts print `error: ...` lines that say what is missing and how to get it.
        let errors: Vec<&String> = recent.iter().filter(|l| l.starts_with("error:")).collect();
        let shown = if errors.is_empty() { recent.iter().collect() } else { errors };
        return Err(Error::Binaries(format!(
            "{} failed ({status}):\n{}",
            script.display(),
            shown.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(())
}

/// `go/build-training-operator.sh`, which builds the Kubeflow training operator.
const TRAINING_OPERATOR_SCRIPT: &str = include_str!("../go/build-training-operator.sh");

/// The Kubeflow training operator (`github.com/kubeflow/training-operator`) the testbed runs
/// for clusters with `trainingOperator: true`.
pub const TRAINING_OPERATOR_VERSION: &str = "v1.8.1";

/// The recipe number of `go/build-training-operator.sh` (its `RECIPE=`).
const TRAINING_OPERATOR_RECIPE: &str = "r1";

/// The Kubeflow training operator's manager binary and its CRDs.
#[derive(Clone, Debug)]
pub struct TrainingOperator {
    /// `cmd/training-operator.v1`, built.
    pub binary: PathBuf,
    /// The module's `manifests/base/crds/kubeflow.org_*.yaml`.
    pub crds: PathBuf,
}

/// The cache directory of the training operator: `bin/`, `crds/`, `src/`, `build-seconds`.
pub fn training_operator_dir() -> PathBuf {
    cache_root().join(format!("training-operator-{TRAINING_OPERATOR_VERSION}"))
}

impl TrainingOperator {
    /// The operator, built first if it is missing (blocking: a cold build takes minutes, its
    /// progress lines go to stderr). Safe to call from parallel tests and processes.
    pub fn ensure() -> Result<TrainingOperator> {
        static ONCE: Mutex<Option<TrainingOperator>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate, || {
            let dir = training_operator_dir();
            run_build_script(BuildScript {
                dir: &dir,
                file_name: format!("build-training-operator-{TRAINING_OPERATOR_VERSION}.sh"),
                text: TRAINING_OPERATOR_SCRIPT,
                args: vec![TRAINING_OPERATOR_VERSION.into(), dir.display().to_string()],
                what: format!("the Kubeflow training operator {TRAINING_OPERATOR_VERSION}"),
                ready: &|| Self::locate().is_ok(),
            })
        })
    }

    /// The operator if it is already built; never builds.
    pub fn locate() -> Result<TrainingOperator> {
        let dir = training_operator_dir();
        let bin = dir.join("bin");
        let found = TrainingOperator { binary: bin.join("training-operator"), crds: dir.join("crds") };
        let crd = found.crds.join("kubeflow.org_pytorchjobs.yaml");
        let stamp =
            bin.join(format!(".built-{TRAINING_OPERATOR_RECIPE}-training-operator-{TRAINING_OPERATOR_VERSION}"));
        check_built(&bin, &stamp, &[&found.binary, &crd])?;
        Ok(found)
    }

    /// The CRD files, sorted by name.
    pub fn crd_files(&self) -> Result<Vec<PathBuf>> {
        yaml_files(&self.crds)
    }
}

/// `go/build-karpenter.sh`, which builds Karpenter with its KWOK cloud provider.
const KARPENTER_SCRIPT: &str = include_str!("../go/build-karpenter.sh");

/// Karpenter (`sigs.k8s.io/karpenter`, its KWOK cloud provider `sigs.k8s.io/karpenter/kwok`) the
/// testbed runs for clusters with `karpenter: true`.
pub const KARPENTER_VERSION: &str = "v1.15.0";

/// The recipe number of `go/build-karpenter.sh` (its `RECIPE=`).
const KARPENTER_RECIPE: &str = "r1";

/// Karpenter's controller with the KWOK cloud provider, and its CRDs.
#[derive(Clone, Debug)]
pub struct Karpenter {
    /// `sigs.k8s.io/karpenter/kwok`, built.
    pub binary: PathBuf,
    /// The module's `pkg/apis/crds/*.yaml` (NodePool, NodeClaim, NodeOverlay, CapacityBuffer)
    /// and `kwok/apis/crds/*.yaml` (KWOKNodeClass).
    pub crds: PathBuf,
}

/// The cache directory of Karpenter: `bin/`, `crds/`, `src/`, `build-seconds`.
pub fn karpenter_dir() -> PathBuf {
    cache_root().join(format!("karpenter-{KARPENTER_VERSION}"))
}

impl Karpenter {
    /// Karpenter, built first if it is missing (blocking: a cold build takes minutes, its
    /// progress lines go to stderr). Safe to call from parallel tests and processes.
    pub fn ensure() -> Result<Karpenter> {
        static ONCE: Mutex<Option<Karpenter>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate, || {
            let dir = karpenter_dir();
            run_build_script(BuildScript {
                dir: &dir,
                file_name: format!("build-karpenter-{KARPENTER_VERSION}.sh"),
                text: KARPENTER_SCRIPT,
                args: vec![KARPENTER_VERSION.into(), dir.display().to_string()],
                what: format!("Karpenter {KARPENTER_VERSION} (KWOK provider)"),
                ready: &|| Self::locate().is_ok(),
            })
        })
    }

    /// Karpenter if it is already built; never builds.
    pub fn locate() -> Result<Karpenter> {
        let dir = karpenter_dir();
        let bin = dir.join("bin");
        let found = Karpenter { binary: bin.join("karpenter"), crds: dir.join("crds") };
        let node_pools = found.crds.join("karpenter.sh_nodepools.yaml");
        let node_class = found.crds.join("karpenter.kwok.sh_kwoknodeclasses.yaml");
        let stamp = bin.join(format!(".built-{KARPENTER_RECIPE}-karpenter-{KARPENTER_VERSION}"));
        check_built(&bin, &stamp, &[&found.binary, &node_pools, &node_class])?;
        Ok(found)
    }

    /// The CRD files, sorted by name.
    pub fn crd_files(&self) -> Result<Vec<PathBuf>> {
        yaml_files(&self.crds)
    }
}

/// `go/build-hydra.sh`, which builds Ory Hydra with SQLite.
const HYDRA_SCRIPT: &str = include_str!("../go/build-hydra.sh");

/// Ory Hydra (`github.com/ory/hydra/v2`), the OpenID Connect provider of
/// [`IdentityProvider`](crate::identity::IdentityProvider).
pub const HYDRA_VERSION: &str = "v2.3.0";

/// The recipe number of `go/build-hydra.sh` (its `RECIPE=`).
const HYDRA_RECIPE: &str = "r1";

/// Ory Hydra's binary, built with SQLite (so `DSN=memory` works).
#[derive(Clone, Debug)]
pub struct Hydra {
    pub binary: PathBuf,
}

/// The cache directory of Hydra: `hydra`, `src/`, `build-seconds`.
pub fn hydra_dir() -> PathBuf {
    cache_root().join(format!("hydra-{HYDRA_VERSION}"))
}

impl Hydra {
    /// Hydra, built first if it is missing (blocking: a cold build takes minutes, its progress
    /// lines go to stderr). Safe to call from parallel tests and processes.
    pub fn ensure() -> Result<Hydra> {
        static ONCE: Mutex<Option<Hydra>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate, || {
            let dir = hydra_dir();
            run_build_script(BuildScript {
                dir: &dir,
                file_name: format!("build-hydra-{HYDRA_VERSION}.sh"),
                text: HYDRA_SCRIPT,
                args: vec![HYDRA_VERSION.into(), dir.display().to_string()],
                what: format!("Ory Hydra {HYDRA_VERSION}"),
                ready: &|| Self::locate().is_ok(),
            })
        })
    }

    /// Hydra if it is already built; never builds.
    pub fn locate() -> Result<Hydra> {
        let dir = hydra_dir();
        let found = Hydra { binary: dir.join("hydra") };
        let stamp = dir.join(format!(".built-{HYDRA_RECIPE}-hydra-{HYDRA_VERSION}"));
        check_built(&dir, &stamp, &[&found.binary])?;
        Ok(found)
    }
}

/// `go/fetch-trainer-crds.sh`, which fetches Kubeflow Trainer v2's CRDs and runtimes.
const TRAINER_SCRIPT: &str = include_str!("../go/fetch-trainer-crds.sh");

/// Kubeflow Trainer (`github.com/kubeflow/trainer/v2`) whose CRDs the testbed installs for
/// clusters with `trainJobCrds: true` (no controller runs).
pub const TRAINER_VERSION: &str = "v2.0.0";

/// The recipe number of `go/fetch-trainer-crds.sh` (its `RECIPE=`).
const TRAINER_RECIPE: &str = "r1";

/// Kubeflow Trainer v2's CRDs (TrainJob, TrainingRuntime, ClusterTrainingRuntime) and its
/// ClusterTrainingRuntimes (`torch-distributed`, ...), from the module's manifests.
#[derive(Clone, Debug)]
pub struct TrainerCrds {
    /// `manifests/base/crds/trainer.kubeflow.org_*.yaml`.
    pub crds: PathBuf,
    /// `manifests/base/runtimes/*_distributed.yaml`, one ClusterTrainingRuntime each.
    pub runtimes: PathBuf,
}

/// The cache directory of Kubeflow Trainer's manifests: `crds/`, `runtimes/`, `src/`.
pub fn trainer_dir() -> PathBuf {
    cache_root().join(format!("trainer-{TRAINER_VERSION}"))
}

impl TrainerCrds {
    /// The manifests, fetched first if they are missing (blocking, seconds). Safe to call from
    /// parallel tests and processes.
    pub fn ensure() -> Result<TrainerCrds> {
        static ONCE: Mutex<Option<TrainerCrds>> = Mutex::new(None);
        ensure_cached(&ONCE, Self::locate, || {
            let dir = trainer_dir();
            run_build_script(BuildScript {
                dir: &dir,
                file_name: format!("fetch-trainer-crds-{TRAINER_VERSION}.sh"),
                text: TRAINER_SCRIPT,
                args: vec![TRAINER_VERSION.into(), dir.display().to_string()],
                what: format!("the Kubeflow Trainer {TRAINER_VERSION} CRDs"),
                ready: &|| Self::locate().is_ok(),
            })
        })
    }

    /// The manifests if they are already fetched; never fetches.
    pub fn locate() -> Result<TrainerCrds> {
        let dir = trainer_dir();
        let found = TrainerCrds { crds: dir.join("crds"), runtimes: dir.join("runtimes") };
        let train_jobs = found.crds.join("trainer.kubeflow.org_trainjobs.yaml");
        let torch = found.runtimes.join("torch_distributed.yaml");
        let stamp = dir.join(format!(".fetched-{TRAINER_RECIPE}-trainer-{TRAINER_VERSION}"));
        check_built(&dir, &stamp, &[&train_jobs, &torch])?;
        Ok(found)
    }

    /// The CRD files, sorted by name.
    pub fn crd_files(&self) -> Result<Vec<PathBuf>> {
        yaml_files(&self.crds)
    }

    /// The ClusterTrainingRuntime files, sorted by name.
    pub fn runtime_files(&self) -> Result<Vec<PathBuf>> {
        yaml_files(&self.runtimes)
    }
}

/// The `.yaml` files of a directory, sorted by name.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `go` that logs its arguments and writes tiny executables where a build would.
    const FAKE_GO: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_GO_ROOT/go.log"
case "$1" in
  mod)
    case "${!#}" in
      k8s.io/kubernetes@*) printf '{\n\t"Path": "k8s.io/kubernetes",\n\t"GoMod": "%s",\n\t"Dir": "/nowhere"\n}\n' "$FAKE_GO_ROOT/kubernetes.mod" ;;
      sigs.k8s.io/kwok@*) printf '{\n\t"Path": "sigs.k8s.io/kwok",\n\t"Dir": "%s",\n\t"GoMod": "/nowhere"\n}\n' "$FAKE_GO_ROOT/kwok" ;;
    esac ;;
  build)
    while [[ "$1" != -o ]]; do shift; done
    printf '#!/bin/sh\n' > "$2"; chmod +x "$2" ;;
  install)
    printf '#!/bin/sh\n' > "$GOBIN/kwok"; chmod +x "$GOBIN/kwok" ;;
esac
"#;

    struct Run {
        progress: Vec<String>,
        go_calls: Vec<String>,
    }

    /// Runs the build script for `set` (`None`: no fourth argument) into `root/out` with the
    /// fake `go` first on PATH.
    fn run_script(root: &Path, set: Option<&str>) -> Run {
        let script = root.join("build-k8s.sh");
        std::fs::write(&script, BUILD_SCRIPT).unwrap();
        let log = root.join("go.log");
        let _ = std::fs::remove_file(&log);
        let path = format!("{}:{}", root.join("fakebin").display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("bash")
            .arg(&script)
            .args([K8S_VERSION, KWOK_VERSION])
            .arg(root.join("out"))
            .args(set)
            .env("PATH", path)
            .env("FAKE_GO_ROOT", root)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "build-k8s.sh {set:?} failed: {stderr}");
        Run {
            progress: stderr.lines().filter(|l| l.starts_with("progress: ")).map(str::to_string).collect(),
            go_calls: std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect(),
        }
    }

    fn fake_go_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("gantry-build-script-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("fakebin")).unwrap();
        let go = root.join("fakebin/go");
        std::fs::write(&go, FAKE_GO).unwrap();
        std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(
            root.join("kubernetes.mod"),
            "module k8s.io/kubernetes\n\ngo 1.26.0\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n",
        )
        .unwrap();
        let stage = root.join("kwok/kustomize/stage/pod/general");
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join("pod-complete.yaml"), "kind: Stage\n").unwrap();
        root
    }

    fn building(what: &[&str]) -> Vec<String> {
        let n = what.len();
        what.iter()
            .enumerate()
            .map(|(i, cmd)| match *cmd {
                "kwok" => format!("progress: building kwok {KWOK_VERSION} ({} of {n})", i + 1),
                cmd => format!("progress: building Kubernetes {K8S_VERSION}: {cmd} ({} of {n})", i + 1),
            })
            .collect()
    }

    fn fetch_and_resolve() -> Vec<String> {
        vec![
            format!("progress: fetching Kubernetes {K8S_VERSION} from the Go module proxy"),
            "progress: resolving the Kubernetes dependency graph".to_string(),
        ]
    }

    #[test]
    fn the_build_script_builds_each_set_once_and_reports_progress() {
        let root = fake_go_root("sets");
        let bin = root.join("out/bin");

        let run = run_script(&root, Some("control-plane"));
        let control_plane = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
        assert_eq!(run.progress, [fetch_and_resolve(), building(&control_plane)].concat());
        assert!(run.go_calls.iter().any(|c| c.starts_with("get ") && !c.contains("kubectl")), "{:?}", run.go_calls);
        for cmd in control_plane {
            assert!(bin.join(cmd).exists(), "{cmd}");
        }
        assert!(!bin.join("kubectl").exists());
        assert!(root.join("out/kwok-stages/pod/general/pod-complete.yaml").exists());
        assert!(control_plane_stamp(&bin).exists() && !kubectl_stamp(&bin).exists());
        assert!(root.join("out/build-seconds").exists() && !root.join("out/build-seconds-kubectl").exists());

        // Built: a no-op, Go or not.
        let run = run_script(&root, Some("control-plane"));
        assert!(run.progress.is_empty() && run.go_calls.is_empty(), "{:?} {:?}", run.progress, run.go_calls);

        // `all` adds kubectl alone.
        let run = run_script(&root, Some("all"));
        assert_eq!(run.progress, [fetch_and_resolve(), building(&["kubectl"])].concat());
        assert!(bin.join("kubectl").exists() && kubectl_stamp(&bin).exists());
        assert!(root.join("out/build-seconds-kubectl").exists());
        let run = run_script(&root, None);
        assert!(run.progress.is_empty() && run.go_calls.is_empty(), "{:?} {:?}", run.progress, run.go_calls);

        // A binary lost after the build is built again; the others are kept.
        std::fs::remove_file(bin.join("kube-scheduler")).unwrap();
        let run = run_script(&root, Some("control-plane"));
        assert_eq!(run.progress, [fetch_and_resolve(), building(&["kube-scheduler"])].concat());
        std::fs::remove_file(bin.join("kwok")).unwrap();
        let run = run_script(&root, Some("control-plane"));
        assert_eq!(run.progress, building(&["kwok"]), "kwok needs no Kubernetes sources");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A `go` that serves the training operator's module source and "installs" its binary.
    const FAKE_GO_OPERATOR: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_GO_ROOT/go.log"
case "$1" in
  mod) printf '{\n\t"Path": "github.com/kubeflow/training-operator",\n\t"Dir": "%s",\n\t"GoMod": "/nowhere"\n}\n' "$FAKE_GO_ROOT/module" ;;
  install) [[ "$GOFLAGS" == *-mod=mod* ]]; printf '#!/bin/sh\n' > "$GOBIN/training-operator.v1"; chmod +x "$GOBIN/training-operator.v1" ;;
esac
"#;

    #[test]
    fn the_training_operator_script_builds_once_and_copies_the_crds() {
        let root = std::env::temp_dir().join(format!("gantry-build-operator-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("fakebin")).unwrap();
        let go = root.join("fakebin/go");
        std::fs::write(&go, FAKE_GO_OPERATOR).unwrap();
        std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let crds = root.join("module/manifests/base/crds");
        std::fs::create_dir_all(&crds).unwrap();
        for name in ["kubeflow.org_pytorchjobs.yaml", "kubeflow.org_tfjobs.yaml", "kustomization.yaml"] {
            std::fs::write(crds.join(name), "kind: CustomResourceDefinition\n").unwrap();
        }
        let script = root.join("build-training-operator.sh");
        std::fs::write(&script, TRAINING_OPERATOR_SCRIPT).unwrap();
        let out = root.join("out");
        // Runs without Go see only bash and mkdir (what the script uses before it looks for Go).
        let on_path = |program: &str| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("no {program} on PATH"))
        };
        let bash = on_path("bash");
        let tools = root.join("tools");
        std::fs::create_dir_all(&tools).unwrap();
        std::os::unix::fs::symlink(on_path("mkdir"), tools.join("mkdir")).unwrap();
        let no_go = tools.display().to_string();
        let run = |path: String| {
            let _ = std::fs::remove_file(root.join("go.log"));
            let output = Command::new(&bash)
                .arg(&script)
                .arg(TRAINING_OPERATOR_VERSION)
                .arg(&out)
                .env("PATH", path)
                .env("FAKE_GO_ROOT", &root)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            let progress: Vec<String> =
                stderr.lines().filter(|l| l.starts_with("progress: ")).map(str::to_string).collect();
            (output.status.success(), stderr, progress, root.join("go.log").exists())
        };
        let path = format!("{}:{}", root.join("fakebin").display(), std::env::var("PATH").unwrap_or_default());
        let (ok, stderr, progress, _) = run(path.clone());
        assert!(ok, "{stderr}");
        assert_eq!(
            progress,
            [
                format!(
                    "progress: fetching Kubeflow training operator {TRAINING_OPERATOR_VERSION} from the Go module proxy"
                ),
                format!("progress: building Kubeflow training operator {TRAINING_OPERATOR_VERSION}"),
            ]
        );
        assert!(out.join("bin/training-operator").exists() && out.join("build-seconds").exists());
        let mut copied: Vec<String> = std::fs::read_dir(out.join("crds"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        copied.sort();
        assert_eq!(copied, ["kubeflow.org_pytorchjobs.yaml", "kubeflow.org_tfjobs.yaml"]);
        let stamp = format!(".built-{TRAINING_OPERATOR_RECIPE}-training-operator-{TRAINING_OPERATOR_VERSION}");
        assert!(out.join("bin").join(stamp).exists());

        // Built: a no-op, Go or not.
        let (ok, stderr, progress, called_go) = run(no_go.clone());
        assert!(ok && progress.is_empty() && !called_go, "{stderr}");
        // Without Go, a missing binary is an error that says what to install.
        std::fs::remove_file(out.join("bin/training-operator")).unwrap();
        let (ok, stderr, _, _) = run(no_go);
        assert!(!ok && stderr.contains("error: the Go toolchain is missing"), "{stderr}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A `go` that serves Karpenter's module source and "installs" its KWOK binary; it fails
    /// unless the script lets it fetch a newer toolchain (GOTOOLCHAIN not `local`).
    const FAKE_GO_KARPENTER: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$* GOTOOLCHAIN=$GOTOOLCHAIN" >> "$FAKE_GO_ROOT/go.log"
[[ "$GOTOOLCHAIN" != local ]]
case "$1" in
  mod) printf '{\n\t"Path": "sigs.k8s.io/karpenter",\n\t"Dir": "%s",\n\t"GoMod": "/nowhere"\n}\n' "$FAKE_GO_ROOT/module" ;;
  install) [[ "$GOFLAGS" == *-mod=mod* ]]; printf '#!/bin/sh\n' > "$GOBIN/kwok"; chmod +x "$GOBIN/kwok" ;;
esac
"#;

    #[test]
    fn the_karpenter_script_builds_once_and_copies_both_sets_of_crds() {
        let root = std::env::temp_dir().join(format!("gantry-build-karpenter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("fakebin")).unwrap();
        let go = root.join("fakebin/go");
        std::fs::write(&go, FAKE_GO_KARPENTER).unwrap();
        std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let core = root.join("module/pkg/apis/crds");
        let kwok = root.join("module/kwok/apis/crds");
        std::fs::create_dir_all(&core).unwrap();
        std::fs::create_dir_all(&kwok).unwrap();
        for name in
            ["karpenter.sh_nodepools.yaml", "karpenter.sh_nodeclaims.yaml", "autoscaling.x-k8s.io_capacitybuffers.yaml"]
        {
            std::fs::write(core.join(name), "kind: CustomResourceDefinition\n").unwrap();
        }
        std::fs::write(core.join("doc.go"), "package crds\n").unwrap();
        std::fs::write(kwok.join("karpenter.kwok.sh_kwoknodeclasses.yaml"), "kind: CustomResourceDefinition\n")
            .unwrap();
        let script = root.join("build-karpenter.sh");
        std::fs::write(&script, KARPENTER_SCRIPT).unwrap();
        let out = root.join("out");
        let path = format!("{}:{}", root.join("fakebin").display(), std::env::var("PATH").unwrap_or_default());
        let run = || {
            let _ = std::fs::remove_file(root.join("go.log"));
            let output = Command::new("bash")
                .arg(&script)
                .arg(KARPENTER_VERSION)
                .arg(&out)
                .env("PATH", &path)
                .env("FAKE_GO_ROOT", &root)
                .env("GOTOOLCHAIN", "local")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            let progress: Vec<String> =
                stderr.lines().filter(|l| l.starts_with("progress: ")).map(str::to_string).collect();
            let calls = std::fs::read_to_string(root.join("go.log")).unwrap_or_default();
            (output.status.success(), stderr, progress, calls)
        };
        let (ok, stderr, progress, calls) = run();
        assert!(ok, "{stderr}");
        assert_eq!(
            progress,
            [
                format!("progress: fetching Karpenter {KARPENTER_VERSION} from the Go module proxy"),
                format!("progress: building Karpenter {KARPENTER_VERSION} (KWOK provider)"),
            ]
        );
        assert!(
            calls.contains(&format!(
                "install -trimpath -ldflags -s -w sigs.k8s.io/karpenter/kwok@{KARPENTER_VERSION} GOTOOLCHAIN=auto"
            )),
            "{calls}"
        );
        assert!(out.join("bin/karpenter").exists() && out.join("build-seconds").exists());
        let mut copied: Vec<String> = std::fs::read_dir(out.join("crds"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        copied.sort();
        assert_eq!(
            copied,
            [
                "autoscaling.x-k8s.io_capacitybuffers.yaml",
                "karpenter.kwok.sh_kwoknodeclasses.yaml",
                "karpenter.sh_nodeclaims.yaml",
                "karpenter.sh_nodepools.yaml"
            ]
        );
        let stamp = format!(".built-{KARPENTER_RECIPE}-karpenter-{KARPENTER_VERSION}");
        assert!(out.join("bin").join(stamp).exists());
        // Built: a no-op that does not call Go.
        let (ok, stderr, progress, calls) = run();
        assert!(ok && progress.is_empty() && calls.is_empty(), "{stderr} {calls}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A `go` that serves Kubeflow Trainer's module source; building anything is an error.
    const FAKE_GO_TRAINER: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_GO_ROOT/go.log"
case "$1" in
  mod) printf '{\n\t"Path": "github.com/kubeflow/trainer/v2",\n\t"Dir": "%s",\n\t"GoMod": "/nowhere"\n}\n' "$FAKE_GO_ROOT/module" ;;
  *) exit 9 ;;
esac
"#;

    #[test]
    fn the_trainer_script_fetches_crds_and_runtimes_once_without_building() {
        let root = std::env::temp_dir().join(format!("gantry-fetch-trainer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("fakebin")).unwrap();
        let go = root.join("fakebin/go");
        std::fs::write(&go, FAKE_GO_TRAINER).unwrap();
        std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let crds = root.join("module/manifests/base/crds");
        let runtimes = root.join("module/manifests/base/runtimes");
        std::fs::create_dir_all(&crds).unwrap();
        std::fs::create_dir_all(runtimes.join("torchtune")).unwrap();
        for name in [
            "trainer.kubeflow.org_trainjobs.yaml",
            "trainer.kubeflow.org_clustertrainingruntimes.yaml",
            "kustomization.yaml",
        ] {
            std::fs::write(crds.join(name), "kind: CustomResourceDefinition\n").unwrap();
        }
        for name in ["torch_distributed.yaml", "mpi_distributed.yaml", "kustomization.yaml"] {
            std::fs::write(runtimes.join(name), "kind: ClusterTrainingRuntime\n").unwrap();
        }
        let script = root.join("fetch-trainer-crds.sh");
        std::fs::write(&script, TRAINER_SCRIPT).unwrap();
        let out = root.join("out");
        let path = format!("{}:{}", root.join("fakebin").display(), std::env::var("PATH").unwrap_or_default());
        let run = || {
            let _ = std::fs::remove_file(root.join("go.log"));
            let output = Command::new("bash")
                .arg(&script)
                .arg(TRAINER_VERSION)
                .arg(&out)
                .env("PATH", &path)
                .env("FAKE_GO_ROOT", &root)
                .output()
                .unwrap();
            let calls = std::fs::read_to_string(root.join("go.log")).unwrap_or_default();
            (output.status.success(), String::from_utf8_lossy(&output.stderr).to_string(), calls)
        };
        let names = |dir: &str| {
            let mut names: Vec<String> = std::fs::read_dir(out.join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            names.sort();
            names
        };
        let (ok, stderr, calls) = run();
        assert!(ok, "{stderr}");
        assert!(stderr.contains(&format!("progress: fetching Kubeflow Trainer {TRAINER_VERSION} CRDs")), "{stderr}");
        assert_eq!(calls.trim(), format!("mod download -json github.com/kubeflow/trainer/v2@{TRAINER_VERSION}"));
        assert_eq!(
            names("crds"),
            ["trainer.kubeflow.org_clustertrainingruntimes.yaml", "trainer.kubeflow.org_trainjobs.yaml"]
        );
        assert_eq!(names("runtimes"), ["mpi_distributed.yaml", "torch_distributed.yaml"]);
        assert!(out.join(format!(".fetched-{TRAINER_RECIPE}-trainer-{TRAINER_VERSION}")).exists());
        let (ok, stderr, calls) = run();
        assert!(ok && calls.is_empty(), "{stderr} {calls}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A `go` that serves Hydra's module source (read-only, as the module cache is) and "builds"
    /// it; it logs its calls and the directory it ran in.
    const FAKE_GO_HYDRA: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$* CGO_ENABLED=$CGO_ENABLED in $(basename "$PWD")" >> "$FAKE_GO_ROOT/go.log"
case "$1" in
  mod)
    case "$2" in
      download) printf '{\n\t"Path": "github.com/ory/hydra/v2",\n\t"Dir": "%s",\n\t"GoMod": "/nowhere"\n}\n' "$FAKE_GO_ROOT/module" ;;
      edit) [[ -w go.mod ]]; echo "$3" >> go.mod ;;
    esac ;;
  build)
    grep -q dropreplace go.mod
    while [[ "$1" != -o ]]; do shift; done
    printf '#!/bin/sh\n' > "$2"; chmod +x "$2" ;;
esac
"#;

    #[test]
    fn the_hydra_script_builds_a_writable_copy_of_the_module_once() {
        let root = std::env::temp_dir().join(format!("gantry-build-hydra-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("fakebin")).unwrap();
        let go = root.join("fakebin/go");
        std::fs::write(&go, FAKE_GO_HYDRA).unwrap();
        std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let module = root.join("module");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("go.mod"), "module github.com/ory/hydra/v2\n").unwrap();
        std::fs::write(module.join("main.go"), "package main\n").unwrap();
        for file in ["go.mod", "main.go"] {
            std::fs::set_permissions(module.join(file), std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
        }
        let script = root.join("build-hydra.sh");
        std::fs::write(&script, HYDRA_SCRIPT).unwrap();
        let out = root.join("out");
        let path = format!("{}:{}", root.join("fakebin").display(), std::env::var("PATH").unwrap_or_default());
        let run = || {
            let _ = std::fs::remove_file(root.join("go.log"));
            let output = Command::new("bash")
                .arg(&script)
                .arg(HYDRA_VERSION)
                .arg(&out)
                .env("PATH", &path)
                .env("FAKE_GO_ROOT", &root)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            let progress: Vec<String> =
                stderr.lines().filter(|l| l.starts_with("progress: ")).map(str::to_string).collect();
            let calls = std::fs::read_to_string(root.join("go.log")).unwrap_or_default();
            (output.status.success(), stderr, progress, calls)
        };
        let (ok, stderr, progress, calls) = run();
        assert!(ok, "{stderr}");
        assert_eq!(
            progress,
            [
                format!("progress: fetching Ory Hydra {HYDRA_VERSION} from the Go module proxy"),
                format!("progress: building Ory Hydra {HYDRA_VERSION} (with SQLite)"),
            ]
        );
        let tree = format!("hydra-{HYDRA_VERSION}");
        assert!(
            calls.contains(&format!("mod edit -dropreplace github.com/ory/hydra-client-go/v2 CGO_ENABLED=1 in {tree}")),
            "{calls}"
        );
        assert!(calls.contains("-tags sqlite,sqlite_omit_load_extension"), "{calls}");
        assert!(calls.contains(&format!(". CGO_ENABLED=1 in {tree}")), "{calls}");
        assert!(out.join("hydra").exists() && out.join("build-seconds").exists());
        assert!(out.join(format!(".built-{HYDRA_RECIPE}-hydra-{HYDRA_VERSION}")).exists());
        // The copy it built in is gone; the module cache's files are untouched.
        assert!(!out.join("src").join(&tree).exists());
        assert_eq!(std::fs::read_to_string(module.join("go.mod")).unwrap(), "module github.com/ory/hydra/v2\n");
        // Built: a no-op that does not call Go.
        let (ok, stderr, progress, calls) = run();
        assert!(ok && progress.is_empty() && calls.is_empty(), "{stderr} {calls}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_build_script_builds_everything_by_default_kubectl_last() {
        let root = fake_go_root("all");
        let run = run_script(&root, None);
        let all = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"];
        assert_eq!(run.progress, [fetch_and_resolve(), building(&all)].concat());
        let bin = root.join("out/bin");
        assert!(control_plane_stamp(&bin).exists() && kubectl_stamp(&bin).exists());
        let leftovers: Vec<_> = std::fs::read_dir(&bin)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Only the sets it knows.
        let out = Command::new("bash")
            .arg(root.join("build-k8s.sh"))
            .args([K8S_VERSION, KWOK_VERSION])
            .arg(root.join("out"))
            .arg("kubelet")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("unknown binary set 'kubelet'"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
