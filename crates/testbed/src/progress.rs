//! `progress: <text>` lines on stderr: what `testbed up` (and `go/build-k8s.sh`) is doing now,
//! in words a person understands. `scripts/run.sh` shows the latest one as its step's detail,
//! verbatim. Every line is formatted by [`progress_line`]; the build script prints its own
//! (`fetching …`, `resolving …`, `building … (i of n)`).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What every progress line starts with.
pub const PREFIX: &str = "progress: ";

/// The least time between two updates of a running count.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// One step of starting a testbed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// `starting etcd for cluster dev (1 of 3)`; `of` (cluster index from 1, cluster count)
    /// is given for the first component of each cluster.
    Starting { what: &'a str, cluster: &'a str, of: Option<(usize, usize)> },
    /// `applying fleet demo: 12 of 19 nodes Ready`.
    NodesReady { fleet: Option<&'a str>, ready: usize, total: usize },
    /// `applying fleet demo: 30 of 40 pods running` (`, 1 unschedulable` when some pod cannot
    /// be scheduled).
    PodsRunning { fleet: Option<&'a str>, running: usize, total: usize, unschedulable: usize },
    /// `fleet ready`.
    FleetReady,
}

/// The line for `step`, without a newline: `progress: <text>`.
pub fn progress_line(step: &Step) -> String {
    let applying = |fleet: &Option<&str>| match fleet {
        Some(name) => format!("applying fleet {name}"),
        None => "applying the fleet".to_string(),
    };
    let text = match step {
        Step::Starting { what, cluster, of } => match of {
            Some((index, count)) => format!("starting {what} for cluster {cluster} ({index} of {count})"),
            None => format!("starting {what} for cluster {cluster}"),
        },
        Step::NodesReady { fleet, ready, total } => format!("{}: {ready} of {total} nodes Ready", applying(fleet)),
        Step::PodsRunning { fleet, running, total, unschedulable } => {
            let mut text = format!("{}: {running} of {total} pods running", applying(fleet));
            if *unschedulable > 0 {
                text.push_str(&format!(", {unschedulable} unschedulable"));
            }
            text
        }
        Step::FleetReady => "fleet ready".to_string(),
    };
    // One line each: a name can't break it, but nothing else may either.
    format!("{PREFIX}{}", text.replace(['\n', '\r'], " "))
}

/// Writes the line for `step` to stderr and flushes it.
pub fn emit(step: &Step) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", progress_line(step));
    let _ = stderr.flush();
}

/// Counts of Ready nodes and running pods over a fleet's clusters, reported as
/// [`Step::NodesReady`] until every node is Ready, then as [`Step::PodsRunning`]: a changed
/// count at most every [`MIN_INTERVAL`] (the rest by [`tick`](Self::tick)), a finished one at
/// once. Does nothing unless enabled.
pub(crate) struct FleetProgress {
    enabled: bool,
    fleet: Option<String>,
    nodes_total: usize,
    /// Pods the workloads ask for, counted only when the testbed waits for them.
    pods_total: usize,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    nodes_ready: Vec<usize>,
    pods_running: Vec<usize>,
    pods_unschedulable: Vec<usize>,
    /// The "every node Ready" line was written: pods come next.
    nodes_done: bool,
    last_line: Option<String>,
    last_emit: Option<Instant>,
}

impl FleetProgress {
    pub(crate) fn new(enabled: bool, fleet: Option<String>, clusters: usize, nodes: usize, pods: usize) -> Self {
        let state = Counts {
            nodes_ready: vec![0; clusters],
            pods_running: vec![0; clusters],
            pods_unschedulable: vec![0; clusters],
            ..Counts::default()
        };
        FleetProgress { enabled, fleet, nodes_total: nodes, pods_total: pods, state: Mutex::new(state) }
    }

    /// The counts of one cluster (its index in the fleet).
    pub(crate) fn cluster(&self, index: usize) -> ClusterProgress<'_> {
        ClusterProgress { fleet: self, index }
    }

    pub(crate) fn nodes_ready(&self, cluster: usize, ready: usize) {
        if self.enabled {
            self.update(|c| c.nodes_ready[cluster] = ready);
        }
    }

    pub(crate) fn pods(&self, cluster: usize, running: usize, unschedulable: usize) {
        if self.enabled {
            self.update(|c| {
                c.pods_running[cluster] = running;
                c.pods_unschedulable[cluster] = unschedulable;
            });
        }
    }

    /// Writes a count held back by the interval, once the interval is over.
    pub(crate) fn tick(&self) {
        if self.enabled {
            self.update(|_| ());
        }
    }

    /// Writes a count held back by the interval now.
    pub(crate) fn flush(&self) {
        if self.enabled {
            self.update(|c| c.last_emit = None);
        }
    }

    fn update(&self, change: impl FnOnce(&mut Counts)) {
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut counts);
        let (step, finished) = self.step(&counts);
        let line = progress_line(&step);
        if counts.last_line.as_ref() == Some(&line) {
            return;
        }
        let due = counts.last_emit.is_none_or(|at| at.elapsed() >= MIN_INTERVAL);
        if !(due || finished) {
            return;
        }
        emit(&step);
        if matches!(step, Step::NodesReady { .. }) && finished {
            counts.nodes_done = true;
        }
        counts.last_line = Some(line);
        counts.last_emit = Some(Instant::now());
    }

    /// The current step, and whether its count is complete.
    fn step<'a>(&'a self, counts: &Counts) -> (Step<'a>, bool) {
        let fleet = self.fleet.as_deref();
        let ready = counts.nodes_ready.iter().sum::<usize>().min(self.nodes_total);
        if !counts.nodes_done || self.pods_total == 0 {
            return (Step::NodesReady { fleet, ready, total: self.nodes_total }, ready == self.nodes_total);
        }
        let running = counts.pods_running.iter().sum::<usize>().min(self.pods_total);
        let unschedulable = counts.pods_unschedulable.iter().sum::<usize>().min(self.pods_total - running);
        let step = Step::PodsRunning { fleet, running, total: self.pods_total, unschedulable };
        (step, running + unschedulable == self.pods_total)
    }
}

/// Where one cluster reports its counts to its [`FleetProgress`].
#[derive(Clone, Copy)]
pub(crate) struct ClusterProgress<'a> {
    fleet: &'a FleetProgress,
    index: usize,
}

impl ClusterProgress<'_> {
    /// `ready` of this cluster's nodes are Ready.
    pub(crate) fn nodes_ready(self, ready: usize) {
        self.fleet.nodes_ready(self.index, ready);
    }

    /// `running` of this cluster's workload pods run (or ran), `unschedulable` cannot be
    /// scheduled.
    pub(crate) fn pods(self, running: usize, unschedulable: usize) {
        self.fleet.pods(self.index, running, unschedulable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_documented() {
        let line = |step: Step| progress_line(&step);
        assert_eq!(
            line(Step::Starting { what: "etcd", cluster: "dev", of: Some((1, 3)) }),
            "progress: starting etcd for cluster dev (1 of 3)"
        );
        assert_eq!(
            line(Step::Starting { what: "kube-apiserver", cluster: "dev", of: None }),
            "progress: starting kube-apiserver for cluster dev"
        );
        assert_eq!(
            line(Step::NodesReady { fleet: Some("demo"), ready: 12, total: 19 }),
            "progress: applying fleet demo: 12 of 19 nodes Ready"
        );
        assert_eq!(
            line(Step::NodesReady { fleet: None, ready: 0, total: 3 }),
            "progress: applying the fleet: 0 of 3 nodes Ready"
        );
        assert_eq!(
            line(Step::PodsRunning { fleet: Some("demo"), running: 30, total: 40, unschedulable: 0 }),
            "progress: applying fleet demo: 30 of 40 pods running"
        );
        assert_eq!(
            line(Step::PodsRunning { fleet: None, running: 15, total: 16, unschedulable: 1 }),
            "progress: applying the fleet: 15 of 16 pods running, 1 unschedulable"
        );
        assert_eq!(line(Step::FleetReady), "progress: fleet ready");
        assert_eq!(
            line(Step::NodesReady { fleet: Some("a\nb"), ready: 1, total: 1 }),
            "progress: applying fleet a b: 1 of 1 nodes Ready"
        );
    }

    #[test]
    fn counts_move_from_nodes_to_pods_and_finish_at_once() {
        let progress = FleetProgress::new(true, Some("demo".into()), 2, 5, 4);
        let now = |p: &FleetProgress| {
            let counts = p.state.lock().unwrap();
            let (step, finished) = p.step(&counts);
            (progress_line(&step), finished, counts.last_line.clone())
        };
        progress.nodes_ready(0, 2);
        // The first count is written at once.
        assert_eq!(now(&progress).2.as_deref(), Some("progress: applying fleet demo: 2 of 5 nodes Ready"));
        progress.nodes_ready(1, 1);
        // Within the interval a change waits for a tick, or a flush.
        assert_eq!(now(&progress).2.as_deref(), Some("progress: applying fleet demo: 2 of 5 nodes Ready"));
        progress.tick();
        assert_eq!(now(&progress).2.as_deref(), Some("progress: applying fleet demo: 2 of 5 nodes Ready"));
        progress.flush();
        assert_eq!(now(&progress).2.as_deref(), Some("progress: applying fleet demo: 3 of 5 nodes Ready"));
        progress.nodes_ready(1, 2);
        // Pods of a cluster whose nodes are Ready do not hide the other's nodes.
        progress.pods(0, 1, 0);
        assert_eq!(now(&progress).0, "progress: applying fleet demo: 4 of 5 nodes Ready");
        progress.nodes_ready(1, 3);
        // Complete: written at once, then pods are counted.
        assert_eq!(now(&progress).2.as_deref(), Some("progress: applying fleet demo: 5 of 5 nodes Ready"));
        assert_eq!(now(&progress).0, "progress: applying fleet demo: 1 of 4 pods running");
        progress.pods(1, 2, 1);
        assert_eq!(
            now(&progress),
            (
                "progress: applying fleet demo: 3 of 4 pods running, 1 unschedulable".to_string(),
                true,
                Some("progress: applying fleet demo: 3 of 4 pods running, 1 unschedulable".to_string())
            )
        );
    }

    #[test]
    fn without_pods_only_nodes_are_counted_and_disabled_writes_nothing() {
        let progress = FleetProgress::new(true, None, 1, 2, 0);
        progress.nodes_ready(0, 2);
        progress.pods(0, 5, 0);
        let counts = progress.state.lock().unwrap();
        assert_eq!(counts.last_line.as_deref(), Some("progress: applying the fleet: 2 of 2 nodes Ready"));
        drop(counts);
        let quiet = FleetProgress::new(false, None, 1, 2, 0);
        quiet.nodes_ready(0, 1);
        assert!(quiet.state.lock().unwrap().last_line.is_none());
    }
}
