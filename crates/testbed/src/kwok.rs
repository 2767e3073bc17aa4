//! KWOK's configuration: which lifecycle stages it plays, where pod logs come from, and
//! how hard it works.

use std::path::Path;

use crate::{Error, Result};

/// The stages KWOK plays, from the stage files its module ships:
/// nodes become Ready and keep heart-beating; pods become Ready at once; pods owned by a Job
/// succeed after the delay in their annotation `pod-complete.stage.kwok.x-k8s.io/delay`
/// (1-5 s without it); deleted pods go away.
const STAGES: &[&str] = &[
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/general/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
];

/// The annotations that set how long a Job's pod "runs". KWOK takes the jitter as the upper
/// bound of a random delay and uses it alone when it is not above the delay, so both are set.
pub const RUN_FOR_ANNOTATION: &str = "pod-complete.stage.kwok.x-k8s.io/delay";
pub const RUN_FOR_JITTER_ANNOTATION: &str = "pod-complete.stage.kwok.x-k8s.io/jitter-delay";

/// The multi-document `--config` file for one cluster's kwok.
pub(crate) fn config(stages_dir: &Path, pod_log: &Path) -> Result<String> {
    let mut docs = Vec::new();
    for stage in STAGES {
        let path = stages_dir.join(stage);
        let text =
            std::fs::read_to_string(&path).map_err(Error::io(format!("reading KWOK stage {}", path.display())))?;
        docs.push(text.trim_end().to_string());
    }
    // Every container of every pod "logs" the same file, so `kubectl logs` and
    // `GET pods/log?follow=true` work through the apiserver, which asks KWOK's kubelet API.
    docs.push(format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  name: training-output\nspec:\n  logs:\n  - logsFile: {}\n    follow: true",
        serde_json::Value::from(pod_log.display().to_string())
    ));
    // enableDebuggingHandlers must be spelled out: with a KwokConfiguration in --config it
    // defaults to false and containerLogs answers 405.
    docs.push(
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\nmetadata:\n  name: testbed\noptions:\n  enableDebuggingHandlers: true\n  podPlayStageParallelism: 16\n  nodePlayStageParallelism: 8\n  nodeLeaseParallelism: 8"
            .to_string(),
    );
    Ok(docs.join("\n---\n") + "\n")
}
