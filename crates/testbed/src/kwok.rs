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

/// Pods annotated with this set to `"true"` crash-loop: every few seconds their containers
/// exit with reason `Error`, exit code 1, wait in `CrashLoopBackOff` and restart, with
/// `lastState.terminated` and a growing `restartCount` (see `kwok/health-stages.yaml`).
pub const CRASH_LOOP_ANNOTATION: &str = "testbed.gantry.dev/crash-loop";
/// Like [`CRASH_LOOP_ANNOTATION`], but the containers are `OOMKilled` with exit code 137.
pub const OOM_KILL_ANNOTATION: &str = "testbed.gantry.dev/oom-kill";
/// Nodes annotated with this set to `"true"` go NotReady (Ready `False`, reason
/// `KubeletNotReady`) and are Ready again once it is removed.
/// See [`set_node_ready`] and `ClusterHandle::set_node_ready`.
pub const NOT_READY_ANNOTATION: &str = "testbed.gantry.dev/not-ready";

/// The testbed's own stages (crash loops, OOM kills, NotReady nodes), appended to KWOK's.
const HEALTH_STAGES: &str = include_str!("../kwok/health-stages.yaml");

/// A jq query that is `true` for pods annotated to crash-loop or be OOM-killed.
fn crashing_pod_query() -> String {
    format!(
        r#".metadata.annotations["{CRASH_LOOP_ANNOTATION}"] == "true" or .metadata.annotations["{OOM_KILL_ANNOTATION}"] == "true""#
    )
}

/// Selector requirements added to KWOK's own stages so that they leave what the testbed's
/// stages play alone: pod-complete does not complete a crash-looping Job pod, and
/// node-initialize and node-heartbeat do not make a node annotated NotReady Ready again.
fn exclusions(stage: &str) -> Vec<serde_json::Value> {
    let requirement = |key: String| serde_json::json!({ "key": key, "operator": "NotIn", "values": ["true"] });
    match stage {
        "pod-complete" => vec![requirement(crashing_pod_query())],
        "node-initialize" | "node-heartbeat" => {
            vec![requirement(format!(r#".metadata.annotations["{NOT_READY_ANNOTATION}"]"#))]
        }
        _ => Vec::new(),
    }
}

/// The owners whose pods KWOK's pod-complete stage completes: KWOK's own `Job`, and the
/// Kubeflow training operator's jobs (their pods are owned by the job itself, not a batch Job).
pub const COMPLETED_POD_OWNERS: &[&str] = &["Job", "PyTorchJob", "TFJob"];

/// The requirement of KWOK's pod-complete stage on the pod's owner kind.
const OWNER_KIND_KEY: &str = ".metadata.ownerReferences.[].kind";

/// One of KWOK's stage files with the testbed's [`exclusions`] added to its selector (and, for
/// pod-complete, the training operator's job kinds among the owners it completes pods of).
fn adapt_stage(text: &str, origin: &Path) -> Result<String> {
    let invalid = |message: String| Error::Binaries(format!("KWOK stage {}: {message}", origin.display()));
    let mut stage: serde_json::Value = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let name = stage.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
    let extra = exclusions(&name);
    if extra.is_empty() {
        return Ok(text.trim_end().to_string());
    }
    if name == "pod-complete" {
        let owners = stage
            .pointer_mut("/spec/selector/matchExpressions")
            .and_then(|e| e.as_array_mut())
            .and_then(|exprs| exprs.iter_mut().find(|e| e["key"] == OWNER_KIND_KEY))
            .and_then(|e| e.get_mut("values"))
            .and_then(|v| v.as_array_mut())
            .ok_or_else(|| invalid(format!("no `{OWNER_KIND_KEY}` requirement with values")))?;
        for kind in COMPLETED_POD_OWNERS {
            if !owners.iter().any(|v| v == kind) {
                owners.push(serde_json::Value::from(*kind));
            }
        }
    }
    let selector = stage
        .pointer_mut("/spec")
        .and_then(|spec| spec.as_object_mut())
        .ok_or_else(|| invalid("no spec".into()))?
        .entry("selector")
        .or_insert_with(|| serde_json::json!({}));
    let expressions = selector
        .as_object_mut()
        .ok_or_else(|| invalid("the selector is not a map".into()))?
        .entry("matchExpressions")
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
        .ok_or_else(|| invalid("matchExpressions is not a list".into()))?;
    expressions.extend(extra);
    let yaml = serde_yaml::to_string(&stage).map_err(|e| invalid(e.to_string()))?;
    Ok(format!("# {} from KWOK, with the testbed's exclusions (src/kwok.rs)\n{}", origin.display(), yaml.trim_end()))
}

/// The multi-document `--config` file for one cluster's kwok.
pub(crate) fn config(stages_dir: &Path, pod_log: &Path) -> Result<String> {
    let mut docs = Vec::new();
    for stage in STAGES {
        let path = stages_dir.join(stage);
        let text =
            std::fs::read_to_string(&path).map_err(Error::io(format!("reading KWOK stage {}", path.display())))?;
        docs.push(adapt_stage(&text, Path::new(stage))?);
    }
    docs.push(HEALTH_STAGES.trim_end().to_string());
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

/// Makes a node NotReady (`ready: false`: sets [`NOT_READY_ANNOTATION`]) or Ready again
/// (`ready: true`: removes it). KWOK plays the change within about a second.
pub async fn set_node_ready(client: &kube::Client, node: &str, ready: bool) -> kube::Result<()> {
    let value = if ready { serde_json::Value::Null } else { "true".into() };
    let patch = serde_json::json!({ "metadata": { "annotations": { NOT_READY_ANNOTATION: value } } });
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    nodes.patch(node, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages_dir() -> std::path::PathBuf {
        crate::Binaries::locate().expect("KWOK's stage files are built").kwok_stages
    }

    fn docs(config: &str) -> Vec<serde_json::Value> {
        config.split("\n---\n").map(|doc| serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{e}:\n{doc}"))).collect()
    }

    fn stage<'a>(docs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
        docs.iter()
            .find(|d| d["kind"] == "Stage" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no stage {name}"))
    }

    fn keys(stage: &serde_json::Value) -> Vec<String> {
        stage["spec"]["selector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["key"].as_str().unwrap(), e["operator"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn kwoks_stages_leave_annotated_pods_and_nodes_to_the_testbeds() {
        let text = config(&stages_dir(), Path::new("/tmp/log")).unwrap();
        let docs = docs(&text);
        let not_ready = format!(r#".metadata.annotations["{NOT_READY_ANNOTATION}"] NotIn"#);
        for name in ["node-initialize", "node-heartbeat"] {
            assert!(keys(stage(&docs, name)).contains(&not_ready), "{name}: {:?}", keys(stage(&docs, name)));
        }
        let complete = keys(stage(&docs, "pod-complete"));
        assert!(complete.contains(&format!("{} NotIn", crashing_pod_query())), "{complete:?}");
        // KWOK's own requirements are kept, and its template survives the round trip.
        assert!(complete.iter().any(|k| k.starts_with(".metadata.ownerReferences")), "{complete:?}");
        // ... and pods of the training operator's jobs complete as a Job's do.
        let owners = stage(&docs, "pod-complete")["spec"]["selector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == OWNER_KIND_KEY)
            .unwrap()["values"]
            .clone();
        assert_eq!(owners, serde_json::json!(["Job", "PyTorchJob", "TFJob"]));
        let template = stage(&docs, "pod-complete")["spec"]["next"]["statusTemplate"].as_str().unwrap();
        assert!(template.contains("phase: Succeeded"), "{template}");
        assert!(!keys(stage(&docs, "pod-ready")).iter().any(|k| k.contains("testbed.gantry.dev")));
    }

    #[test]
    fn the_testbeds_stages_are_in_the_config_and_use_the_exported_annotations() {
        let text = config(&stages_dir(), Path::new("/tmp/log")).unwrap();
        let docs = docs(&text);
        for name in [
            "testbed-container-crash",
            "testbed-container-backoff",
            "testbed-container-restart",
            "testbed-pod-fail",
            "testbed-node-not-ready",
            "testbed-node-recover",
        ] {
            stage(&docs, name);
        }
        assert!(keys(stage(&docs, "testbed-container-crash")).contains(&format!("{} In", crashing_pod_query())));
        assert!(keys(stage(&docs, "testbed-pod-fail")).contains(&format!("{} In", crashing_pod_query())));
        let node = keys(stage(&docs, "testbed-node-not-ready"));
        assert!(node.contains(&format!(r#".metadata.annotations["{NOT_READY_ANNOTATION}"] In"#)), "{node:?}");
        assert!(docs.iter().any(|d| d["kind"] == "ClusterLogs"));
        assert!(docs.iter().any(|d| d["kind"] == "KwokConfiguration"));
    }
}
