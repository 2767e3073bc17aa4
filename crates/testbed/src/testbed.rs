use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::binaries::{Binaries, Karpenter, TrainerCrds, TrainingOperator};
use crate::cluster::{AddOns, ClusterHandle, STOP_GRACE, kubeconfig_text};
use crate::process::{Supervisor, stop_all, write_training_log};
use crate::progress::{self, FleetProgress, Step};
use crate::{Error, Fleet, Result, apply};

/// How to start a [`Testbed`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Where clusters keep their data, logs and kubeconfigs; a fresh temporary directory
    /// when `None`.
    pub state_dir: Option<PathBuf>,
    /// Keep the state directory (logs, etcd data) after teardown.
    pub keep: bool,
    /// Create the fleet's Deployments, Services, Jobs and pod sets (nodes and namespaces are
    /// always created).
    pub apply_workloads: bool,
    /// Also wait until every pod the workloads ask for is Running (or has run, or cannot be
    /// scheduled), for at most a minute and a bit; a pod still pending then is not an error.
    /// Without it only pod-set pods are waited for.
    pub wait_for_pods: bool,
    /// Write [`progress`](crate::progress) lines to stderr: each cluster's components
    /// starting, Ready nodes and running pods of the whole fleet, `fleet ready`.
    pub report_progress: bool,
    /// The fleet's name in progress lines (`applying fleet demo: ...`).
    pub fleet_name: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state_dir: None,
            keep: false,
            apply_workloads: true,
            wait_for_pods: false,
            report_progress: false,
            fleet_name: None,
        }
    }
}

/// Running clusters. Dropping it (or [`teardown`](Testbed::teardown)) stops every process
/// and removes the state directory unless `keep` was asked for.
pub struct Testbed {
    state_dir: PathBuf,
    /// The directory did not exist before, so teardown may remove all of it.
    created_state_dir: bool,
    keep: bool,
    binaries: Binaries,
    supervisor: Arc<Supervisor>,
    clusters: Vec<ClusterHandle>,
    phases: Vec<(String, Duration)>,
    torn_down: AtomicBool,
}

impl Testbed {
    /// Builds the binaries if needed, starts every cluster of `fleet` at once, creates its
    /// nodes (waiting until they are Ready) and, with `apply_workloads`, its workloads; then
    /// writes the combined kubeconfig.
    pub async fn start(fleet: &Fleet, options: Options) -> Result<Testbed> {
        fleet.check_rules().map_err(Error::FleetRules)?;
        let begun = Instant::now();
        let apply_workloads = options.apply_workloads;
        let wait_for_pods = apply_workloads && options.wait_for_pods;
        let report = options.report_progress;
        let binaries = tokio::task::spawn_blocking(Binaries::ensure)
            .await
            .map_err(|e| Error::Binaries(format!("the build task failed: {e}")))??;
        let training_operator = if fleet.needs_training_operator() {
            let operator = tokio::task::spawn_blocking(TrainingOperator::ensure)
                .await
                .map_err(|e| Error::Binaries(format!("the build task failed: {e}")))??;
            Some(operator)
        } else {
            None
        };
        let karpenter = if fleet.needs_karpenter() {
            let found = tokio::task::spawn_blocking(Karpenter::ensure)
                .await
                .map_err(|e| Error::Binaries(format!("the build task failed: {e}")))??;
            Some(found)
        } else {
            None
        };
        let trainer = if fleet.needs_train_job_crds() {
            let found = tokio::task::spawn_blocking(TrainerCrds::ensure)
                .await
                .map_err(|e| Error::Binaries(format!("the fetch task failed: {e}")))??;
            Some(found)
        } else {
            None
        };
        let mut phases = vec![("binaries ready".to_string(), begun.elapsed())];

        let (state_dir, created_state_dir) = match options.state_dir {
            Some(dir) => {
                // Components run in their cluster's directory: relative paths would break.
                let dir = std::path::absolute(&dir).map_err(Error::io(format!("resolving {}", dir.display())))?;
                let existed = dir.exists();
                if dir.join("clusters").exists() {
                    return Err(Error::Io {
                        context: format!("using state directory {}", dir.display()),
                        source: std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "it already holds a testbed (clusters/); remove it or choose another",
                        ),
                    });
                }
                (dir, !existed)
            }
            None => (unique_temp_dir(), true),
        };
        std::fs::create_dir_all(state_dir.join("clusters"))
            .map_err(Error::io(format!("creating {}", state_dir.display())))?;
        let supervisor = Arc::new(Supervisor::start()?);
        let mut bed = Testbed {
            state_dir,
            created_state_dir,
            keep: options.keep,
            binaries,
            supervisor,
            clusters: Vec::new(),
            phases: Vec::new(),
            torn_down: AtomicBool::new(false),
        };
        // From here on an error drops `bed`, which stops whatever was started.

        let pod_log = bed.state_dir.join("pod.log");
        write_training_log(&pod_log)?;
        bed.supervisor.trickle(pod_log.clone());
        for spec in &fleet.clusters {
            let dir = bed.state_dir.join("clusters").join(spec.name.as_str());
            let handle = ClusterHandle::new(
                spec.name.as_str(),
                dir,
                bed.binaries.clone(),
                Arc::clone(&bed.supervisor),
                pod_log.clone(),
                AddOns {
                    training_operator: training_operator.clone().filter(|_| spec.training_operator),
                    karpenter: karpenter.clone().filter(|_| spec.karpenter),
                    trainer: trainer.clone().filter(|_| spec.train_job_crds),
                },
            )?;
            bed.clusters.push(handle);
        }

        let started = Instant::now();
        let count = bed.clusters.len();
        futures::future::try_join_all(
            bed.clusters.iter().enumerate().map(|(i, c)| c.boot(report.then_some((i + 1, count)))),
        )
        .await?;
        phases.push((format!("{count} control plane(s) healthy"), started.elapsed()));

        let started = Instant::now();
        let nodes = fleet.clusters.iter().map(|c| c.node_count()).sum();
        let pods = if wait_for_pods { fleet.clusters.iter().map(|c| c.workload_pods()).sum() } else { 0 };
        let progress = FleetProgress::new(report, options.fleet_name.clone(), count, nodes, pods);
        let progress = &progress;
        let applying = futures::future::try_join_all(bed.clusters.iter().zip(&fleet.clusters).enumerate().map(
            |(i, (cluster, spec))| async move {
                let client = cluster.client().await?;
                let mut phases = Vec::new();
                let how = apply::Apply { workloads: apply_workloads, wait_for_pods, progress: progress.cluster(i) };
                cluster.guarded(apply::apply(&client, spec, how, &mut phases)).await?;
                Ok::<_, Error>(phases)
            },
        ));
        // Counts held back by the progress interval are written by these ticks.
        let ticking = async {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                progress.tick();
            }
        };
        let applied = tokio::select! {
            applied = applying => applied?,
            _ = ticking => unreachable!("the ticks never end"),
        };
        progress.flush();
        phases.extend(applied.into_iter().flatten());
        phases.push(("fleet applied".to_string(), started.elapsed()));

        let path = bed.kubeconfig_path();
        std::fs::write(
            &path,
            kubeconfig_text(&bed.clusters.iter().map(|c| c.kubeconfig_entry(&c.server())).collect::<Vec<_>>()),
        )
        .map_err(Error::io(format!("writing {}", path.display())))?;
        phases.push(("total".to_string(), begun.elapsed()));
        bed.phases = phases;
        if report {
            progress::emit(&Step::FleetReady);
        }
        Ok(bed)
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterHandle> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// The kubeconfig with one context per cluster (named as in the fleet).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// How long each phase of `start` took.
    pub fn phases(&self) -> &[(String, Duration)] {
        &self.phases
    }

    /// An error naming the first component, in any cluster, that exited.
    pub fn check(&self) -> Result<()> {
        self.clusters.iter().try_for_each(ClusterHandle::check)
    }

    /// Every running process of every cluster.
    pub fn pids(&self) -> Vec<u32> {
        self.clusters.iter().flat_map(|c| c.pids().into_iter().map(|(_, pid)| pid)).collect()
    }

    /// The testbed's own kubectl, with `KUBECONFIG` set to the combined kubeconfig. kubectl
    /// is not part of the control plane: the first call builds it if it is missing (blocking,
    /// minutes, once per machine; see [`Binaries::ensure_kubectl`]). If that fails, the error
    /// goes to stderr and the command fails to start; [`try_kubectl`](Self::try_kubectl)
    /// returns it instead.
    pub fn kubectl(&self) -> Command {
        self.try_kubectl().unwrap_or_else(|e| {
            eprintln!("testbed: kubectl is not available: {e}");
            self.kubectl_command(&self.binaries.kubectl)
        })
    }

    /// [`kubectl`](Self::kubectl), or why kubectl could not be built.
    pub fn try_kubectl(&self) -> Result<Command> {
        Ok(self.kubectl_command(&Binaries::ensure_kubectl()?))
    }

    fn kubectl_command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.env("KUBECONFIG", self.kubeconfig_path());
        command
    }

    /// Stops every process and removes the state directory (unless `keep`). Idempotent;
    /// `Drop` calls it. Useful for a testbed kept in a `static`.
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let running: Vec<_> = self.clusters.iter().flat_map(ClusterHandle::running).collect();
        stop_all(&running.iter().map(|r| &r.process).collect::<Vec<_>>(), STOP_GRACE);
        self.supervisor.shutdown();
        if self.keep {
            return;
        }
        if self.created_state_dir {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        } else {
            let _ = std::fs::remove_dir_all(self.state_dir.join("clusters"));
            let _ = std::fs::remove_file(self.state_dir.join("kubeconfig"));
            let _ = std::fs::remove_file(self.state_dir.join("pod.log"));
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nonce: u32 = rand::random();
    std::env::temp_dir().join(format!("gantry-testbed-{}-{n}-{nonce:08x}", std::process::id()))
}
