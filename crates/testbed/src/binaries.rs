//! The control-plane binaries: etcd comes vendored in a crate; kube-apiserver,
//! kube-controller-manager, kube-scheduler, kubectl and kwok are built from the Go module
//! proxy by `go/build-k8s.sh` into a cache shared by every checkout.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::{Error, Result};

/// `go/build-k8s.sh`, which builds the binaries from the Go module proxy.
const BUILD_SCRIPT: &str = include_str!("../go/build-k8s.sh");

pub const K8S_VERSION: &str = "v1.36.3";
pub const KWOK_VERSION: &str = "v0.8.0";

/// Paths of every program a testbed runs.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubectl: PathBuf,
    pub kwok: PathBuf,
    /// KWOK's stage definitions (`node/fast/node-initialize.yaml`, ...).
    pub kwok_stages: PathBuf,
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

/// The file in which `ensure` records how long a build it ran took, in seconds.
pub fn build_seconds_file() -> PathBuf {
    version_dir().join("build-seconds")
}

impl Binaries {
    /// The binaries, built first if they are missing. Blocking: a cold build takes many
    /// minutes, and its progress lines go to stderr. Safe to call from parallel tests and
    /// processes (a file lock serialises the build).
    pub fn ensure() -> Result<Binaries> {
        static ONCE: Mutex<Option<Binaries>> = Mutex::new(None);
        let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = done.as_ref() {
            return Ok(found.clone());
        }
        let found = match Self::locate() {
            Ok(found) => found,
            Err(_) => {
                build()?;
                Self::locate()?
            }
        };
        *done = Some(found.clone());
        Ok(found)
    }

    /// The binaries if they are already built; never builds.
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
        let stamp_found = std::fs::read_dir(&bin)
            .map(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with(".built-") && name.ends_with(&format!("-{K8S_VERSION}-{KWOK_VERSION}"))
                })
            })
            .unwrap_or(false);
        let stage = found.kwok_stages.join("pod/general/pod-complete.yaml");
        let missing: Vec<&Path> = [
            &found.etcd,
            &found.kube_apiserver,
            &found.kube_controller_manager,
            &found.kube_scheduler,
            &found.kubectl,
            &found.kwok,
            &stage,
        ]
        .into_iter()
        .map(PathBuf::as_path)
        .filter(|p| !p.exists())
        .collect();
        if !stamp_found || !missing.is_empty() {
            return Err(Error::Binaries(format!(
                "not built yet in {} (missing: {})",
                bin.display(),
                if missing.is_empty() {
                    "the build stamp".to_string()
                } else {
                    missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                }
            )));
        }
        Ok(found)
    }
}

/// Runs `go/build-k8s.sh` under an exclusive lock on the cache, echoing its output to stderr.
fn build() -> Result<()> {
    let dir = version_dir();
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
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
    if Binaries::locate().is_ok() {
        return Ok(());
    }
    eprintln!("testbed: building Kubernetes {K8S_VERSION} and kwok {KWOK_VERSION} into {}", dir.display());
    let started = Instant::now();
    // The script is compiled into the binary and written out beside the lock,
    // so a testbed binary works wherever it is, whatever became of the source tree.
    let script = lock_path.with_file_name(format!("build-k8s-{K8S_VERSION}.sh"));
    std::fs::write(&script, BUILD_SCRIPT).map_err(Error::io(format!("writing {}", script.display())))?;
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(K8S_VERSION)
        .arg(KWOK_VERSION)
        .arg(&dir)
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
    let status = child.wait().map_err(Error::io("waiting for build-k8s.sh"))?;
    let _ = out.join();
    let _ = err.join();
    if !status.success() {
        let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
        // The script prints `error: ...` lines that say what is missing and how to get it.
        let errors: Vec<&String> = recent.iter().filter(|l| l.starts_with("error:")).collect();
        let shown = if errors.is_empty() { recent.iter().collect() } else { errors };
        return Err(Error::Binaries(format!(
            "{} failed ({status}):\n{}",
            script.display(),
            shown.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
        )));
    }
    let _ = std::fs::write(build_seconds_file(), format!("{}\n", started.elapsed().as_secs()));
    Ok(())
}
