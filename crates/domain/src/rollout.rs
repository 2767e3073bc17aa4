//! Rollout planning: which ReplicaSet is revision N, what `kubectl rollout
//! undo` would write, and how two pod templates differ.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
pub const MODEL_LABEL: &str = "gantry.dev/model";
pub const MODEL_VERSION_LABEL: &str = "gantry.dev/model-version";

/// Annotations kubectl leaves on the Deployment when it copies a
/// ReplicaSet's annotations back during a rollback.
const ANNOTATIONS_NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// One ReplicaSet owned by a Deployment, as the adapter reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaSetRevision {
    pub name: String,
    pub revision: i64,
    pub created: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The pod template, as JSON.
    pub template: Value,
    pub replicas: i32,
}

impl ReplicaSetRevision {
    pub fn change_cause(&self) -> Option<&str> {
        self.annotations.get(CHANGE_CAUSE_ANNOTATION).map(String::as_str)
    }

    pub fn images(&self) -> Vec<String> {
        containers(&self.template)
            .iter()
            .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    pub fn template_label(&self, key: &str) -> Option<String> {
        self.template.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str).map(str::to_string)
    }
}

fn containers(template: &Value) -> Vec<Value> {
    template.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Reads the revision annotation; ReplicaSets without one are not revisions.
pub fn parse_revision(annotation: Option<&str>) -> Option<i64> {
    annotation.and_then(|text| text.trim().parse::<i64>().ok()).filter(|n| *n > 0)
}

/// Newest first, as `kubectl rollout history` lists them in reverse.
pub fn sort_history(mut revisions: Vec<ReplicaSetRevision>) -> Vec<ReplicaSetRevision> {
    revisions.sort_by_key(|r| std::cmp::Reverse(r.revision));
    revisions
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RollbackError {
    #[error("revision {0} does not exist")]
    UnknownRevision(i64),
    #[error("there is no previous revision to roll back to")]
    NoPreviousRevision,
    #[error("revision {0} is already the current template")]
    AlreadyCurrent(i64),
}

/// Picks the ReplicaSet to roll back to, as `kubectl rollout undo` does:
/// `to = None` (or 0) means the newest revision older than the current one.
pub fn rollback_source(
    history: &[ReplicaSetRevision],
    current_revision: i64,
    to: Option<i64>,
) -> Result<&ReplicaSetRevision, RollbackError> {
    let chosen = match to.filter(|n| *n != 0) {
        Some(wanted) => history.iter().find(|r| r.revision == wanted).ok_or(RollbackError::UnknownRevision(wanted))?,
        None => history
            .iter()
            .filter(|r| r.revision < current_revision)
            .max_by_key(|r| r.revision)
            .ok_or(RollbackError::NoPreviousRevision)?,
    };
    if chosen.revision == current_revision {
        return Err(RollbackError::AlreadyCurrent(chosen.revision));
    }
    Ok(chosen)
}

/// The template kubectl copies back: the ReplicaSet's template without the
/// `pod-template-hash` label the controller added.
pub fn template_for_deployment(replica_set_template: &Value) -> Value {
    let mut template = replica_set_template.clone();
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    template
}

/// A JSON patch that performs the rollback, guarded by the Deployment's
/// resourceVersion: a patch that sets `metadata.resourceVersion` makes the
/// apiserver refuse it with 409 Conflict when the object has moved on, so a
/// concurrent change is never overwritten.
pub fn rollback_patch(
    source: &ReplicaSetRevision,
    deployment_annotations: &std::collections::BTreeMap<String, String>,
    resource_version: &str,
) -> Value {
    let mut annotations: Map<String, Value> = deployment_annotations
        .iter()
        .filter(|(k, _)| ANNOTATIONS_NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    for (key, value) in &source.annotations {
        if !ANNOTATIONS_NOT_COPIED.contains(&key.as_str()) {
            annotations.insert(key.clone(), Value::String(value.clone()));
        }
    }
    json!([
        { "op": "replace", "path": "/metadata/resourceVersion", "value": resource_version },
        { "op": "replace", "path": "/spec/template", "value": template_for_deployment(&source.template) },
        { "op": "add", "path": "/metadata/annotations", "value": Value::Object(annotations) },
    ])
}

/// Whether two templates are the same once controller-added labels are set aside.
pub fn same_template(a: &Value, b: &Value) -> bool {
    template_for_deployment(a) == template_for_deployment(b)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DiffLine {
    Same(String),
    Removed(String),
    Added(String),
}

/// A line diff of two pod templates, each flattened to `path: value` lines
/// (for example `spec.containers[0].image: "llm:2"`), so a change reads as
/// the one field that changed.
pub fn template_diff(from: &Value, to: &Value) -> Vec<DiffLine> {
    let a = flatten(&template_for_deployment(from));
    let b = flatten(&template_for_deployment(to));
    line_diff(&a, &b)
}

/// Flattens JSON into sorted `path: value` lines.
pub fn flatten(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    let next = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(child, &next, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{index}]"), out);
                }
            }
            leaf => out.push(format!("{path}: {leaf}")),
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

/// Longest-common-subsequence diff. Templates flatten to at most a few
/// hundred lines, so the quadratic table is small.
pub fn line_diff(a: &[String], b: &[String]) -> Vec<DiffLine> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n && j < m {
        if a[i] == b[j] {
            out.push(DiffLine::Same(a[i].clone()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(DiffLine::Removed(a[i].clone()));
            i += 1;
        } else {
            out.push(DiffLine::Added(b[j].clone()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().cloned().map(DiffLine::Removed));
    out.extend(b[j..].iter().cloned().map(DiffLine::Added));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn template(image: &str, hash: &str) -> Value {
        json!({
            "metadata": { "labels": { "app.kubernetes.io/name": "llm", "pod-template-hash": hash } },
            "spec": { "containers": [ { "name": "llm", "image": image } ] }
        })
    }

    fn rs(revision: i64, image: &str) -> ReplicaSetRevision {
        ReplicaSetRevision {
            name: format!("llm-{revision}"),
            revision,
            created: String::new(),
            annotations: BTreeMap::from([(REVISION_ANNOTATION.to_string(), revision.to_string())]),
            template: template(image, &format!("h{revision}")),
            replicas: 0,
        }
    }

    #[test]
    fn picks_the_previous_revision_like_kubectl() {
        let history = vec![rs(1, "a"), rs(2, "b"), rs(3, "c")];
        assert_eq!(rollback_source(&history, 3, None).unwrap().revision, 2);
        assert_eq!(rollback_source(&history, 3, Some(0)).unwrap().revision, 2);
        assert_eq!(rollback_source(&history, 3, Some(1)).unwrap().revision, 1);
        assert_eq!(rollback_source(&history, 3, Some(9)), Err(RollbackError::UnknownRevision(9)));
        assert_eq!(rollback_source(&history, 3, Some(3)), Err(RollbackError::AlreadyCurrent(3)));
        assert_eq!(rollback_source(&history[..1], 1, None), Err(RollbackError::NoPreviousRevision));
        // After a rollback to 1, revision 1's ReplicaSet becomes 4; "previous" is then 3.
        let after = vec![rs(2, "b"), rs(3, "c"), rs(4, "a")];
        assert_eq!(rollback_source(&after, 4, None).unwrap().revision, 3);
    }

    #[test]
    fn patch_copies_the_template_without_the_hash_label() {
        let mut source = rs(1, "llm:1");
        source.annotations.insert(CHANGE_CAUSE_ANNOTATION.into(), "release 1".into());
        let deployment_annotations = BTreeMap::from([
            (REVISION_ANNOTATION.to_string(), "3".to_string()),
            (CHANGE_CAUSE_ANNOTATION.to_string(), "release 3".to_string()),
        ]);
        let patch = rollback_patch(&source, &deployment_annotations, "42");
        assert_eq!(patch[0], json!({ "op": "replace", "path": "/metadata/resourceVersion", "value": "42" }));
        assert_eq!(patch[1]["value"]["spec"]["containers"][0]["image"], "llm:1");
        assert!(patch[1]["value"]["metadata"]["labels"].get(POD_TEMPLATE_HASH_LABEL).is_none());
        assert_eq!(patch[2]["value"][CHANGE_CAUSE_ANNOTATION], "release 1");
        assert_eq!(patch[2]["value"][REVISION_ANNOTATION], "3", "the controller's revision stays until it bumps it");
    }

    #[test]
    fn templates_compare_without_the_hash() {
        assert!(same_template(&template("a", "x"), &template("a", "y")));
        assert!(!same_template(&template("a", "x"), &template("b", "x")));
    }

    #[test]
    fn diff_shows_the_changed_field() {
        let diff = template_diff(&template("llm:1", "x"), &template("llm:2", "y"));
        let changed: Vec<_> = diff.iter().filter(|l| !matches!(l, DiffLine::Same(_))).collect();
        assert_eq!(
            changed,
            vec![
                &DiffLine::Removed("spec.containers[0].image: \"llm:1\"".into()),
                &DiffLine::Added("spec.containers[0].image: \"llm:2\"".into()),
            ]
        );
        assert!(template_diff(&template("a", "1"), &template("a", "2")).iter().all(|l| matches!(l, DiffLine::Same(_))));
    }

    #[test]
    fn line_diff_edge_cases() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(line_diff(&[], &[]), vec![]);
        assert_eq!(line_diff(&s(&["a"]), &[]), vec![DiffLine::Removed("a".into())]);
        assert_eq!(line_diff(&[], &s(&["b"])), vec![DiffLine::Added("b".into())]);
        let d = line_diff(&s(&["a", "b", "c"]), &s(&["a", "x", "c"]));
        assert_eq!(
            d,
            vec![
                DiffLine::Same("a".into()),
                DiffLine::Removed("b".into()),
                DiffLine::Added("x".into()),
                DiffLine::Same("c".into())
            ]
        );
    }

    #[test]
    fn revisions_parse() {
        assert_eq!(parse_revision(Some("3")), Some(3));
        assert_eq!(parse_revision(Some("0")), None);
        assert_eq!(parse_revision(Some("x")), None);
        assert_eq!(parse_revision(None), None);
        let sorted = sort_history(vec![rs(1, "a"), rs(3, "c"), rs(2, "b")]);
        assert_eq!(sorted.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(rs(1, "img").images(), vec!["img".to_string()]);
    }
}
