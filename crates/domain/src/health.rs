//! Self-healing, made visible: what the kubelet says about a pod's
//! containers (waiting reasons, the last termination, evictions), which of
//! that is trouble, and how the troubles of a workload's pods add up to the
//! one line the overview's "unhealthy workloads" panel and the workload pages
//! show.

use serde::{Deserialize, Serialize};

use crate::view::Millis;

/// How long an OOM kill keeps a workload on the unhealthy panel.
pub const OOM_WINDOW_MS: Millis = 60 * 60 * 1000;

/// A pod that has restarted this often, with its last crash this recent, is
/// crash-looping even while its container is up again between back-offs (a
/// panel that flickered with each restart would not be believed).
pub const LOOP_RESTARTS: u32 = 3;
pub const RECENT_CRASH_MS: Millis = 10 * 60 * 1000;

/// Waiting reasons that mean a container cannot start or keeps failing, as
/// the kubelet spells them. Others (ContainerCreating, PodInitializing) are a
/// normal start.
const BAD_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "ErrImageNeverPull",
];

/// Whether a container's waiting reason is worth showing (not a normal start).
pub fn is_bad_waiting(reason: &str) -> bool {
    BAD_WAITING.contains(&reason)
}

/// A container's last termination: the kubelet's reason and exit code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Termination {
    /// `OOMKilled`, `Error`, `Completed`, …
    pub reason: String,
    pub exit_code: i32,
    pub at: Option<Millis>,
}

impl Termination {
    pub fn label(&self) -> String {
        format!("{} (exit {})", self.reason, self.exit_code)
    }

    fn oom_since(&self, since: Millis) -> bool {
        self.reason == "OOMKilled" && self.at.is_some_and(|at| at >= since)
    }
}

/// What the kubelet reports about a pod that is not simply fine. The
/// restart count is the pod's own field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PodHealth {
    /// The first container's waiting reason that is not a normal start
    /// (CrashLoopBackOff, ImagePullBackOff, CreateContainerConfigError…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The newest termination of a container that was restarted (its
    /// `lastState`), or of one that has stopped, other than `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<Termination>,
    /// The kubelet's message when it evicted the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evicted: Option<String>,
}

impl PodHealth {
    pub fn is_quiet(&self) -> bool {
        *self == PodHealth::default()
    }
}

/// One kind of trouble, in the order the panel lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trouble {
    /// A container keeps exiting and the kubelet backs off (CrashLoopBackOff).
    CrashLooping,
    /// A container cannot start: its image, its configuration.
    CannotStart,
    /// A container was killed for running out of memory in the last hour.
    OomKilled,
    /// Fewer replicas available than desired for longer than the rollout's
    /// progress deadline (the Deployment's ProgressDeadlineExceeded).
    NotAvailable,
    /// The kubelet evicted a pod (node pressure).
    Evicted,
}

impl Trouble {
    pub fn label(self) -> &'static str {
        match self {
            Trouble::CrashLooping => "crash-looping",
            Trouble::CannotStart => "cannot start",
            Trouble::OomKilled => "OOM-killed",
            Trouble::NotAvailable => "not available",
            Trouble::Evicted => "evicted",
        }
    }
}

/// A pod's troubles at `now`, from what the kubelet says and its restarts.
pub fn pod_troubles(health: &PodHealth, restarts: u32, now: Millis) -> Vec<Trouble> {
    let mut troubles = Vec::new();
    let crashed_lately =
        health.last_termination.as_ref().and_then(|t| t.at).is_some_and(|at| at >= now - RECENT_CRASH_MS);
    match health.waiting.as_deref() {
        Some("CrashLoopBackOff") => troubles.push(Trouble::CrashLooping),
        Some(reason) if is_bad_waiting(reason) => troubles.push(Trouble::CannotStart),
        _ if restarts >= LOOP_RESTARTS && crashed_lately => troubles.push(Trouble::CrashLooping),
        _ => {}
    }
    if health.last_termination.as_ref().is_some_and(|t| t.oom_since(now - OOM_WINDOW_MS)) {
        troubles.push(Trouble::OomKilled);
    }
    if health.evicted.is_some() {
        troubles.push(Trouble::Evicted);
    }
    troubles
}

/// The kind of workload a row of the panel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkloadKind {
    Deployment,
    Job,
    Pod,
}

/// One row of the overview's "unhealthy workloads" panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnhealthyWorkload {
    pub cluster: String,
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub troubles: Vec<Trouble>,
    /// Restarts over its pods now.
    pub restarts: u32,
    /// What a person reads: "2 pods CrashLoopBackOff; last exit OOMKilled (exit 137)".
    pub detail: String,
}

/// Adds up what a workload's pods and its rollout say. `pods` are the
/// troubled pods' (health, restarts); `rollout_failed` is the Deployment's
/// ProgressDeadlineExceeded message. None when nothing is wrong.
pub fn workload_health<'a>(
    pods: impl IntoIterator<Item = (&'a PodHealth, u32)>,
    rollout_failed: Option<&str>,
    now: Millis,
) -> Option<(Vec<Trouble>, u32, String)> {
    let mut troubles = Vec::new();
    let mut restarts = 0;
    let mut waiting: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut last: Option<&Termination> = None;
    let mut evicted = 0;
    for (health, pod_restarts) in pods {
        let found = pod_troubles(health, pod_restarts, now);
        if found.is_empty() {
            continue;
        }
        restarts += pod_restarts;
        troubles.extend(found);
        if let Some(reason) = health.waiting.as_deref().filter(|r| is_bad_waiting(r)) {
            *waiting.entry(reason).or_default() += 1;
        }
        if let Some(t) = &health.last_termination
            && last.is_none_or(|l| t.at > l.at)
        {
            last = Some(t);
        }
        evicted += usize::from(health.evicted.is_some());
    }
    let mut parts: Vec<String> = waiting
        .into_iter()
        .map(|(reason, n)| format!("{n} {} {reason}", if n == 1 { "pod" } else { "pods" }))
        .collect();
    if let Some(message) = rollout_failed {
        troubles.push(Trouble::NotAvailable);
        parts.push(message.to_string());
    }
    if troubles.is_empty() {
        return None;
    }
    if let Some(t) = last {
        parts.push(format!("last exit {}", t.label()));
    }
    if evicted > 0 {
        parts.push(format!("{evicted} evicted"));
    }
    troubles.sort();
    troubles.dedup();
    Some((troubles, restarts, parts.join("; ")))
}

/// A node condition that is not as it should be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeCondition {
    /// `Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, `NetworkUnavailable`.
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub since: Option<Millis>,
}

impl NodeCondition {
    /// Whether a condition of this kind and status is a problem: Ready must
    /// be True, the others must not be.
    pub fn is_problem(kind: &str, status: &str) -> bool {
        if kind == "Ready" { status != "True" } else { status == "True" }
    }

    /// "NotReady", "MemoryPressure", …: how the node lists show it.
    pub fn label(&self) -> String {
        if self.kind == "Ready" { "NotReady".to_string() } else { self.kind.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    fn crash(reason: &str, exit_code: i32, at: Millis) -> PodHealth {
        PodHealth {
            waiting: Some("CrashLoopBackOff".into()),
            last_termination: Some(Termination { reason: reason.into(), exit_code, at: Some(at) }),
            evicted: None,
        }
    }

    #[test]
    fn a_pod_is_in_trouble_for_what_the_kubelet_says_now() {
        assert_eq!(pod_troubles(&crash("Error", 1, NOW - 5_000), 1, NOW), vec![Trouble::CrashLooping]);
        assert_eq!(
            pod_troubles(&crash("OOMKilled", 137, NOW - 5_000), 1, NOW),
            vec![Trouble::CrashLooping, Trouble::OomKilled]
        );
        let pull = PodHealth { waiting: Some("ImagePullBackOff".into()), ..Default::default() };
        assert_eq!(pod_troubles(&pull, 0, NOW), vec![Trouble::CannotStart]);
        let starting = PodHealth { waiting: Some("ContainerCreating".into()), ..Default::default() };
        assert!(pod_troubles(&starting, 0, NOW).is_empty());
        let evicted = PodHealth { evicted: Some("The node was low on resource: memory.".into()), ..Default::default() };
        assert_eq!(pod_troubles(&evicted, 0, NOW), vec![Trouble::Evicted]);
    }

    #[test]
    fn a_pod_up_between_back_offs_is_still_crash_looping() {
        let up_again = |restarts, crashed_ago| {
            let health = PodHealth {
                last_termination: Some(Termination {
                    reason: "Error".into(),
                    exit_code: 1,
                    at: Some(NOW - crashed_ago),
                }),
                ..Default::default()
            };
            pod_troubles(&health, restarts, NOW)
        };
        assert_eq!(up_again(LOOP_RESTARTS, 30_000), vec![Trouble::CrashLooping]);
        assert!(up_again(LOOP_RESTARTS - 1, 30_000).is_empty(), "a restart or two is not a loop");
        assert!(up_again(50, RECENT_CRASH_MS + 1).is_empty(), "quiet for ten minutes: recovered");
    }

    #[test]
    fn an_oom_kill_counts_for_an_hour() {
        let recovered = PodHealth {
            last_termination: Some(Termination {
                reason: "OOMKilled".into(),
                exit_code: 137,
                at: Some(NOW - 59 * 60_000),
            }),
            ..Default::default()
        };
        assert_eq!(pod_troubles(&recovered, 1, NOW), vec![Trouble::OomKilled]);
        assert!(pod_troubles(&recovered, 1, NOW + 2 * 60_000).is_empty());
        let error_long_ago = crash("Error", 1, NOW - 3 * OOM_WINDOW_MS);
        assert_eq!(pod_troubles(&error_long_ago, 1, NOW), vec![Trouble::CrashLooping]);
    }

    #[test]
    fn a_workload_adds_up_its_pods_and_its_rollout() {
        let a = crash("Error", 1, NOW - 10_000);
        let b = crash("OOMKilled", 137, NOW - 2_000);
        let fine = PodHealth::default();
        let (troubles, restarts, detail) =
            workload_health([(&a, 3), (&b, 4), (&fine, 9)], Some("ReplicaSet \"x\" has timed out progressing."), NOW)
                .unwrap();
        assert_eq!(troubles, vec![Trouble::CrashLooping, Trouble::OomKilled, Trouble::NotAvailable]);
        assert_eq!(restarts, 7, "only the troubled pods' restarts");
        assert_eq!(
            detail,
            "2 pods CrashLoopBackOff; ReplicaSet \"x\" has timed out progressing.; last exit OOMKilled (exit 137)"
        );
        assert_eq!(workload_health([(&fine, 2)], None, NOW), None);
        let (troubles, _, detail) = workload_health([], Some("deadline exceeded"), NOW).unwrap();
        assert_eq!((troubles, detail.as_str()), (vec![Trouble::NotAvailable], "deadline exceeded"));
    }

    #[test]
    fn ready_must_be_true_and_pressures_must_not() {
        assert!(!NodeCondition::is_problem("Ready", "True"));
        assert!(NodeCondition::is_problem("Ready", "Unknown"));
        assert!(NodeCondition::is_problem("Ready", "False"));
        assert!(NodeCondition::is_problem("MemoryPressure", "True"));
        assert!(!NodeCondition::is_problem("DiskPressure", "False"));
        assert!(!NodeCondition::is_problem("PIDPressure", "Unknown"));
    }
}
