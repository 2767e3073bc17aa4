//! What Gantry writes to a cluster: launch requests as typed, validated specs
//! and the Kubernetes objects they become. Pure, so the exact objects are
//! unit-tested and the adapter only sends them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::gpu::{GPU_RESOURCE, LABEL_GPU_PRODUCT};
use crate::lenient;
use crate::rollout::{CHANGE_CAUSE_ANNOTATION, MODEL_LABEL, MODEL_VERSION_LABEL};
use crate::validate::{self, EnvVar, Image, Invalid, LabelName, ObjectName};

pub const FIELD_MANAGER: &str = "gantry";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gantry";
pub const TEAM_LABEL: &str = "gantry.dev/team";
pub const QUOTA_NAME: &str = "gantry-gpu-quota";

/// A deployment launch as a browser form or an API client sends it. Every
/// field is text or a number so bad input reaches validation, not serde.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LaunchDeploymentInput {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub model: String,
    pub model_version: String,
    pub gpus: String,
    pub gpu_model: String,
    pub cpu: String,
    pub memory: String,
    #[serde(deserialize_with = "lenient::text")]
    pub replicas: String,
    /// `NAME=value` or `NAME=secret:SECRET/KEY`, one per line.
    pub env: String,
    #[serde(deserialize_with = "lenient::text")]
    pub port: String,
    pub readiness_path: String,
    #[serde(deserialize_with = "lenient::flag")]
    pub autoscale: bool,
    #[serde(deserialize_with = "lenient::text")]
    pub min_replicas: String,
    #[serde(deserialize_with = "lenient::text")]
    pub max_replicas: String,
    #[serde(deserialize_with = "lenient::text")]
    pub target_cpu_percent: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Autoscale {
    pub min: i32,
    pub max: i32,
    pub target_cpu_percent: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentSpec {
    pub cluster: String,
    pub namespace: LabelName,
    pub name: ObjectName,
    pub image: Image,
    pub model: String,
    pub model_version: String,
    pub gpus: u32,
    pub gpu_model: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub replicas: i32,
    pub env: Vec<EnvVar>,
    pub port: u16,
    pub readiness_path: Option<String>,
    pub autoscale: Option<Autoscale>,
}

/// Collects every field error, so a form shows them all at once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
pub struct Problems(pub Vec<Invalid>);

impl Problems {
    fn take<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Problems> {
        if self.0.is_empty() { Ok(value()) } else { Err(self) }
    }
}

fn gpu_model(input: &str) -> Result<Option<String>, Invalid> {
    let model = validate::label_value("gpu_model", input)?;
    Ok((!model.is_empty()).then_some(model))
}

fn path(input: &str) -> Result<Option<String>, Invalid> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !trimmed.starts_with('/') || trimmed.len() > 256 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Invalid::new("readiness_path", "must be a URL path starting with '/'"));
    }
    Ok(Some(trimmed.to_string()))
}

impl LaunchDeploymentInput {
    pub fn validate(&self, replica_cap: i32) -> Result<DeploymentSpec, Problems> {
        let mut p = Problems::default();
        let namespace = p.take(LabelName::parse("namespace", &self.namespace));
        let name = p.take(ObjectName::parse(&self.name));
        let image = p.take(Image::parse(&self.image));
        let model = p.take(validate::label_value("model", &self.model));
        let model_version = p.take(validate::label_value("model_version", &self.model_version));
        let gpus = p.take(validate::gpus(&self.gpus));
        let gpu_model = p.take(gpu_model(&self.gpu_model));
        let cpu = p.take(validate::optional_quantity("cpu", &self.cpu));
        let memory = p.take(validate::optional_quantity("memory", &self.memory));
        let replicas = p
            .take(lenient::int("replicas", &self.replicas))
            .and_then(|r| p.take(validate::replicas(r.unwrap_or(1), replica_cap)));
        let env = p.take(validate::env_lines(&self.env));
        let port = match p.take(lenient::int("port", &self.port)) {
            None => None,
            Some(None) => Some(8080),
            Some(Some(port)) if (1..=65535).contains(&port) => Some(port as u16),
            Some(Some(_)) => p.take(Err(Invalid::new("port", "must be between 1 and 65535"))),
        };
        let readiness_path = p.take(path(&self.readiness_path));
        if self.cluster.trim().is_empty() {
            p.0.push(Invalid::new("cluster", "is required"));
        }
        let autoscale = if self.autoscale {
            let min = p.take(lenient::int("min_replicas", &self.min_replicas));
            let max = p.take(lenient::int("max_replicas", &self.max_replicas));
            let target = p.take(lenient::int("target_cpu_percent", &self.target_cpu_percent));
            match (min, max, target) {
                (Some(min), Some(max), Some(target)) => p.take(autoscale(min, max, target, replica_cap)),
                _ => None,
            }
        } else {
            Some(None)
        };
        p.finish(|| DeploymentSpec {
            cluster: self.cluster.trim().to_string(),
            namespace: namespace.unwrap(),
            name: name.unwrap(),
            image: image.unwrap(),
            model: model.unwrap(),
            model_version: model_version.unwrap(),
            gpus: gpus.unwrap(),
            gpu_model: gpu_model.unwrap(),
            cpu: cpu.unwrap(),
            memory: memory.unwrap(),
            replicas: replicas.unwrap(),
            env: env.unwrap(),
            port: port.unwrap(),
            readiness_path: readiness_path.unwrap(),
            autoscale: autoscale.unwrap(),
        })
    }
}

pub fn autoscale(
    min: Option<i64>,
    max: Option<i64>,
    target: Option<i64>,
    cap: i32,
) -> Result<Option<Autoscale>, Invalid> {
    let min = min.unwrap_or(1);
    let max = max.ok_or_else(|| Invalid::new("max_replicas", "is required for autoscaling"))?;
    let target = target.unwrap_or(80);
    if min < 1 {
        return Err(Invalid::new("min_replicas", "must be at least 1"));
    }
    if max < min {
        return Err(Invalid::new("max_replicas", "must be at least min_replicas"));
    }
    if max > i64::from(cap) {
        return Err(Invalid::new("max_replicas", format!("must be at most {cap}")));
    }
    if !(1..=100).contains(&target) {
        return Err(Invalid::new("target_cpu_percent", "must be between 1 and 100"));
    }
    Ok(Some(Autoscale { min: min as i32, max: max as i32, target_cpu_percent: target as i32 }))
}

fn common_labels(name: &str, model: &str, model_version: &str, team: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (NAME_LABEL.to_string(), name.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ]);
    if !model.is_empty() {
        labels.insert(MODEL_LABEL.to_string(), model.to_string());
    }
    if !model_version.is_empty() {
        labels.insert(MODEL_VERSION_LABEL.to_string(), model_version.to_string());
    }
    if let Some(team) = team {
        labels.insert(TEAM_LABEL.to_string(), team.to_string());
    }
    labels
}

fn env_json(env: &[EnvVar]) -> Value {
    Value::Array(
        env.iter()
            .map(|var| match var {
                EnvVar::Value { name, value } => json!({ "name": name, "value": value }),
                EnvVar::Secret { name, secret, key } => {
                    json!({ "name": name, "valueFrom": { "secretKeyRef": { "name": secret, "key": key } } })
                }
            })
            .collect(),
    )
}

fn resources(gpus: u32, cpu: &Option<String>, memory: &Option<String>) -> Value {
    let mut limits = serde_json::Map::new();
    let mut requests = serde_json::Map::new();
    if gpus > 0 {
        limits.insert(GPU_RESOURCE.into(), json!(gpus.to_string()));
        requests.insert(GPU_RESOURCE.into(), json!(gpus.to_string()));
    }
    if let Some(cpu) = cpu {
        requests.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = memory {
        requests.insert("memory".into(), json!(memory));
        limits.insert("memory".into(), json!(memory));
    }
    json!({ "limits": limits, "requests": requests })
}

fn node_selector(gpu_model: &Option<String>) -> Option<Value> {
    gpu_model.as_ref().map(|model| json!({ LABEL_GPU_PRODUCT: model }))
}

impl DeploymentSpec {
    pub fn labels(&self, team: Option<&str>) -> BTreeMap<String, String> {
        common_labels(self.name.as_str(), &self.model, &self.model_version, team)
    }

    pub fn deployment(&self, team: Option<&str>, actor: &str) -> Value {
        let labels = self.labels(team);
        let mut container = json!({
            "name": self.name.as_str(),
            "image": self.image.as_str(),
            "env": env_json(&self.env),
            "ports": [{ "name": "http", "containerPort": self.port }],
            "resources": resources(self.gpus, &self.cpu, &self.memory),
        });
        if let Some(path) = &self.readiness_path {
            container["readinessProbe"] = json!({ "httpGet": { "path": path, "port": self.port } });
        }
        let mut pod_spec = json!({ "containers": [container] });
        if let Some(selector) = node_selector(&self.gpu_model) {
            pod_spec["nodeSelector"] = selector;
        }
        let mut spec = json!({
            "selector": { "matchLabels": { NAME_LABEL: self.name.as_str() } },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
            "template": { "metadata": { "labels": labels }, "spec": pod_spec },
        });
        // With an HPA the autoscaler owns the replica count.
        spec["replicas"] = json!(self.autoscale.as_ref().map_or(self.replicas, |a| a.min.max(self.replicas)));
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name.as_str(),
                "namespace": self.namespace.as_str(),
                "labels": labels,
                "annotations": { CHANGE_CAUSE_ANNOTATION: format!("gantry: launched {} by {actor}", self.image) },
            },
            "spec": spec,
        })
    }

    pub fn service(&self, team: Option<&str>) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": self.name.as_str(), "namespace": self.namespace.as_str(), "labels": self.labels(team) },
            "spec": {
                "selector": { NAME_LABEL: self.name.as_str() },
                "ports": [{ "name": "http", "port": 80, "targetPort": self.port }],
            },
        })
    }

    pub fn autoscaler(&self, team: Option<&str>) -> Option<Value> {
        self.autoscale.as_ref().map(|a| hpa(self.namespace.as_str(), self.name.as_str(), a, &self.labels(team)))
    }
}

pub fn hpa(namespace: &str, name: &str, a: &Autoscale, labels: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
            "minReplicas": a.min,
            "maxReplicas": a.max,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": a.target_cpu_percent } },
            }],
        },
    })
}

/// An image or model-version change, optionally with new surge settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateDeploymentInput {
    pub image: String,
    pub model_version: String,
    pub max_surge: String,
    pub max_unavailable: String,
    /// The deployment's version (generation) the user last saw; a stale one
    /// is refused as a conflict.
    #[serde(deserialize_with = "lenient::text")]
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentUpdate {
    pub image: Option<Image>,
    pub model_version: Option<String>,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
}

/// maxSurge / maxUnavailable: a whole number or a percentage.
pub fn int_or_percent(field: &str, input: &str) -> Result<Option<String>, Invalid> {
    let t = input.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let digits = t.strip_suffix('%').unwrap_or(t);
    match digits.parse::<u32>() {
        Ok(n) if !t.ends_with('%') || n <= 100 => Ok(Some(t.to_string())),
        _ => Err(Invalid::new(field, "must be a whole number or a percentage such as 25%")),
    }
}

impl UpdateDeploymentInput {
    pub fn validate(&self) -> Result<DeploymentUpdate, Problems> {
        let mut p = Problems::default();
        let image = if self.image.trim().is_empty() { Some(None) } else { p.take(Image::parse(&self.image).map(Some)) };
        let model_version = p.take(validate::label_value("model_version", &self.model_version));
        let max_surge = p.take(int_or_percent("max_surge", &self.max_surge));
        let max_unavailable = p.take(int_or_percent("max_unavailable", &self.max_unavailable));
        if matches!(max_surge, Some(Some(ref s)) if s == "0" || s == "0%")
            && matches!(max_unavailable, Some(Some(ref u)) if u == "0" || u == "0%")
        {
            p.0.push(Invalid::new("max_unavailable", "maxSurge and maxUnavailable cannot both be 0"));
        }
        let update = DeploymentUpdate {
            image: image.clone().flatten(),
            model_version: model_version.clone().filter(|v| !v.is_empty()),
            max_surge: max_surge.clone().flatten(),
            max_unavailable: max_unavailable.clone().flatten(),
        };
        if p.0.is_empty()
            && update == (DeploymentUpdate { image: None, model_version: None, max_surge: None, max_unavailable: None })
        {
            p.0.push(Invalid::new("image", "give a new image, model version or rollout setting"));
        }
        p.finish(|| update)
    }
}

impl DeploymentUpdate {
    /// A JSON patch against the current Deployment, guarded by its
    /// resourceVersion. `current` is the Deployment as JSON.
    pub fn patch(&self, current: &Value, resource_version: &str, actor: &str) -> Value {
        // Setting resourceVersion makes the apiserver refuse a stale patch (409).
        let mut ops = vec![json!({ "op": "replace", "path": "/metadata/resourceVersion", "value": resource_version })];
        if let Some(image) = &self.image {
            ops.push(
                json!({ "op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image.as_str() }),
            );
        }
        if let Some(version) = &self.model_version {
            let has_labels = current.pointer("/spec/template/metadata/labels").is_some_and(Value::is_object);
            if !has_labels {
                ops.push(json!({ "op": "add", "path": "/spec/template/metadata/labels", "value": {} }));
            }
            ops.push(json!({ "op": "add", "path": "/spec/template/metadata/labels/gantry.dev~1model-version", "value": version }));
            let meta_labels = current.pointer("/metadata/labels").is_some_and(Value::is_object);
            if !meta_labels {
                ops.push(json!({ "op": "add", "path": "/metadata/labels", "value": {} }));
            }
            ops.push(json!({ "op": "add", "path": "/metadata/labels/gantry.dev~1model-version", "value": version }));
        }
        if self.max_surge.is_some() || self.max_unavailable.is_some() {
            let existing = current.pointer("/spec/strategy/rollingUpdate").cloned().unwrap_or_else(|| json!({}));
            let mut rolling = existing.as_object().cloned().unwrap_or_default();
            if let Some(s) = &self.max_surge {
                rolling.insert("maxSurge".into(), int_or_string(s));
            }
            if let Some(u) = &self.max_unavailable {
                rolling.insert("maxUnavailable".into(), int_or_string(u));
            }
            ops.push(json!({ "op": "add", "path": "/spec/strategy", "value": { "type": "RollingUpdate", "rollingUpdate": rolling } }));
        }
        let what = match (&self.image, &self.model_version) {
            (Some(image), Some(v)) => format!("image {image}, model version {v}"),
            (Some(image), None) => format!("image {image}"),
            (None, Some(v)) => format!("model version {v}"),
            (None, None) => "rollout settings".to_string(),
        };
        if self.image.is_some() || self.model_version.is_some() {
            let has_annotations = current.pointer("/metadata/annotations").is_some_and(Value::is_object);
            if !has_annotations {
                ops.push(json!({ "op": "add", "path": "/metadata/annotations", "value": {} }));
            }
            ops.push(json!({
                "op": "add",
                "path": "/metadata/annotations/kubernetes.io~1change-cause",
                "value": format!("gantry: set {what} by {actor}"),
            }));
        }
        Value::Array(ops)
    }
}

fn int_or_string(text: &str) -> Value {
    text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A training job as a form or API client sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LaunchJobInput {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub image: String,
    /// Whitespace-separated; quote nothing, one argument per line in `args`.
    pub command: String,
    /// One argument per line.
    pub args: String,
    pub env: String,
    pub gpus: String,
    pub gpu_model: String,
    pub cpu: String,
    pub memory: String,
    #[serde(deserialize_with = "lenient::text")]
    pub parallelism: String,
    #[serde(deserialize_with = "lenient::text")]
    pub completions: String,
    #[serde(deserialize_with = "lenient::text")]
    pub backoff_limit: String,
    #[serde(deserialize_with = "lenient::text")]
    pub active_deadline_seconds: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub cluster: String,
    pub namespace: LabelName,
    pub name: ObjectName,
    pub image: Image,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub gpus: u32,
    pub gpu_model: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub parallelism: i32,
    pub completions: i32,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
}

fn bounded(field: &str, value: &str, default: i64, min: i64, max: i64) -> Result<i32, Invalid> {
    let v = lenient::int(field, value)?.unwrap_or(default);
    if v < min || v > max {
        return Err(Invalid::new(field, format!("must be between {min} and {max}")));
    }
    Ok(v as i32)
}

impl LaunchJobInput {
    pub fn validate(&self, pod_cap: i32) -> Result<JobSpec, Problems> {
        let mut p = Problems::default();
        let namespace = p.take(LabelName::parse("namespace", &self.namespace));
        let name = p.take(ObjectName::parse(&self.name));
        let image = p.take(Image::parse(&self.image));
        let env = p.take(validate::env_lines(&self.env));
        let gpus = p.take(validate::gpus(&self.gpus));
        let gpu_model = p.take(gpu_model(&self.gpu_model));
        let cpu = p.take(validate::optional_quantity("cpu", &self.cpu));
        let memory = p.take(validate::optional_quantity("memory", &self.memory));
        let parallelism = p.take(bounded("parallelism", &self.parallelism, 1, 1, i64::from(pod_cap)));
        let completions = p.take(bounded("completions", &self.completions, 1, 1, 10_000));
        let backoff_limit = p.take(bounded("backoff_limit", &self.backoff_limit, 6, 0, 100));
        let deadline = match p.take(lenient::int("active_deadline_seconds", &self.active_deadline_seconds)) {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) if s >= 1 => Some(Some(s)),
            Some(Some(_)) => p.take(Err(Invalid::new("active_deadline_seconds", "must be at least 1"))),
        };
        if self.cluster.trim().is_empty() {
            p.0.push(Invalid::new("cluster", "is required"));
        }
        if self.command.len() > 4096 || self.args.len() > 16384 {
            p.0.push(Invalid::new("command", "is too long"));
        }
        p.finish(|| JobSpec {
            cluster: self.cluster.trim().to_string(),
            namespace: namespace.unwrap(),
            name: name.unwrap(),
            image: image.unwrap(),
            command: self.command.split_whitespace().map(str::to_string).collect(),
            args: self.args.lines().map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect(),
            env: env.unwrap(),
            gpus: gpus.unwrap(),
            gpu_model: gpu_model.unwrap(),
            cpu: cpu.unwrap(),
            memory: memory.unwrap(),
            parallelism: parallelism.unwrap(),
            completions: completions.unwrap(),
            backoff_limit: backoff_limit.unwrap(),
            active_deadline_seconds: deadline.unwrap(),
        })
    }
}

impl JobSpec {
    pub fn job(&self, team: Option<&str>, actor: &str) -> Value {
        let labels = common_labels(self.name.as_str(), "", "", team);
        let mut container = json!({
            "name": self.name.as_str(),
            "image": self.image.as_str(),
            "env": env_json(&self.env),
            "resources": resources(self.gpus, &self.cpu, &self.memory),
        });
        if !self.command.is_empty() {
            container["command"] = json!(self.command);
        }
        if !self.args.is_empty() {
            container["args"] = json!(self.args);
        }
        let mut pod_spec = json!({ "restartPolicy": "Never", "containers": [container] });
        if let Some(selector) = node_selector(&self.gpu_model) {
            pod_spec["nodeSelector"] = selector;
        }
        let mut spec = json!({
            "parallelism": self.parallelism,
            "completions": self.completions,
            "backoffLimit": self.backoff_limit,
            "template": { "metadata": { "labels": labels }, "spec": pod_spec },
        });
        if let Some(deadline) = self.active_deadline_seconds {
            spec["activeDeadlineSeconds"] = json!(deadline);
        }
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name.as_str(),
                "namespace": self.namespace.as_str(),
                "labels": labels,
                "annotations": { "gantry.dev/launched-by": actor },
            },
            "spec": spec,
        })
    }
}

/// The ResourceQuota Gantry owns in a namespace to cap its GPUs.
pub fn gpu_quota(namespace: &str, hard_gpus: i64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": { MANAGED_BY_LABEL: MANAGED_BY },
        },
        "spec": { "hard": { "requests.nvidia.com/gpu": hard_gpus.to_string() } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> LaunchDeploymentInput {
        LaunchDeploymentInput {
            cluster: "prod".into(),
            namespace: "vision".into(),
            name: "llama".into(),
            image: "ghcr.io/acme/llama:1".into(),
            model: "llama-3".into(),
            model_version: "v1".into(),
            gpus: "2".into(),
            gpu_model: "NVIDIA-H100-80GB-HBM3".into(),
            cpu: "4".into(),
            memory: "32Gi".into(),
            replicas: "2".into(),
            env: "A=1\nTOKEN=secret:hf/token".into(),
            port: "8000".into(),
            readiness_path: "/healthz".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_launch_becomes_labelled_objects() {
        let spec = input().validate(100).unwrap();
        let d = spec.deployment(Some("vision"), "alice");
        assert_eq!(d["metadata"]["labels"][NAME_LABEL], "llama");
        assert_eq!(d["metadata"]["labels"][MANAGED_BY_LABEL], "gantry");
        assert_eq!(d["metadata"]["labels"][MODEL_LABEL], "llama-3");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"][MODEL_VERSION_LABEL], "v1");
        assert_eq!(d["spec"]["selector"]["matchLabels"], json!({ NAME_LABEL: "llama" }));
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"]["limits"][GPU_RESOURCE], "2");
        assert_eq!(c["env"][1]["valueFrom"]["secretKeyRef"], json!({ "name": "hf", "key": "token" }));
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(d["spec"]["template"]["spec"]["nodeSelector"][LABEL_GPU_PRODUCT], "NVIDIA-H100-80GB-HBM3");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(spec.service(None)["spec"]["ports"][0]["targetPort"], 8000);
        assert!(spec.autoscaler(None).is_none());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let bad = LaunchDeploymentInput {
            cluster: "".into(),
            namespace: "Bad_NS".into(),
            name: "9lives".into(),
            image: "".into(),
            gpus: "1.5".into(),
            replicas: "-1".into(),
            port: "70000".into(),
            ..Default::default()
        };
        let problems = bad.validate(100).unwrap_err();
        let fields: Vec<&str> = problems.0.iter().map(|i| i.field.as_str()).collect();
        for field in ["cluster", "namespace", "name", "image", "gpus", "replicas", "port"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
        assert!(LaunchDeploymentInput { replicas: "101".into(), ..input() }.validate(100).is_err());
    }

    #[test]
    fn autoscaling_adds_an_hpa() {
        let spec = LaunchDeploymentInput {
            autoscale: true,
            min_replicas: "2".into(),
            max_replicas: "5".into(),
            target_cpu_percent: "70".into(),
            ..input()
        }
        .validate(100)
        .unwrap();
        let hpa = spec.autoscaler(None).unwrap();
        assert_eq!(hpa["spec"]["minReplicas"], 2);
        assert_eq!(hpa["spec"]["maxReplicas"], 5);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        assert!(autoscale(Some(3), Some(2), None, 100).is_err());
        assert!(autoscale(Some(1), None, None, 100).is_err());
        assert!(autoscale(Some(1), Some(2), Some(101), 100).is_err());
    }

    #[test]
    fn update_patch_is_guarded_and_labels_the_version() {
        let update =
            UpdateDeploymentInput { image: "llama:2".into(), model_version: "v2".into(), ..Default::default() }
                .validate()
                .unwrap();
        let current = input().validate(100).unwrap().deployment(None, "a");
        let patch = update.patch(&current, "7", "bob");
        assert_eq!(patch[0]["path"], "/metadata/resourceVersion");
        assert_eq!(patch[0]["value"], "7");
        let text = patch.to_string();
        assert!(text.contains("llama:2") && text.contains("gantry.dev~1model-version") && text.contains("by bob"));
        assert!(UpdateDeploymentInput::default().validate().is_err(), "an empty update is refused");
        assert!(
            UpdateDeploymentInput { max_surge: "0".into(), max_unavailable: "0%".into(), ..Default::default() }
                .validate()
                .is_err()
        );
        assert!(UpdateDeploymentInput { max_surge: "150%".into(), ..Default::default() }.validate().is_err());
        let surge = UpdateDeploymentInput { max_surge: "2".into(), ..Default::default() }.validate().unwrap();
        assert_eq!(surge.patch(&current, "1", "x")[1]["value"]["rollingUpdate"]["maxSurge"], 2);
    }

    #[test]
    fn jobs() {
        let job = LaunchJobInput {
            cluster: "dev".into(),
            namespace: "vision-dev".into(),
            name: "train".into(),
            image: "trainer:1".into(),
            command: "python train.py".into(),
            args: "--epochs\n3\n".into(),
            gpus: "8".into(),
            parallelism: "2".into(),
            completions: "4".into(),
            active_deadline_seconds: "3600".into(),
            ..Default::default()
        }
        .validate(100)
        .unwrap();
        let j = job.job(Some("vision"), "alice");
        assert_eq!(j["spec"]["parallelism"], 2);
        assert_eq!(j["spec"]["completions"], 4);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["activeDeadlineSeconds"], 3600);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["command"], json!(["python", "train.py"]));
        assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["args"], json!(["--epochs", "3"]));
        let bad = LaunchJobInput {
            parallelism: "0".into(),
            backoff_limit: "-1".into(),
            active_deadline_seconds: "0".into(),
            ..Default::default()
        };
        let fields: Vec<String> = bad.validate(100).unwrap_err().0.into_iter().map(|i| i.field).collect();
        for f in ["parallelism", "backoff_limit", "active_deadline_seconds", "image", "name"] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }

    #[test]
    fn json_clients_may_send_numbers_and_forms_send_text() {
        let from_json: LaunchDeploymentInput =
            serde_json::from_str(r#"{"replicas": 3, "port": 9000, "autoscale": false}"#).unwrap();
        assert_eq!((from_json.replicas.as_str(), from_json.port.as_str()), ("3", "9000"));
        let bad = LaunchDeploymentInput { replicas: "three".into(), ..input() }.validate(100).unwrap_err();
        assert_eq!(bad.0[0].field, "replicas");
        assert!(autoscale(None, None, None, 100).is_err());
    }

    #[test]
    fn quota_object() {
        let q = gpu_quota("vision", 16);
        assert_eq!(q["metadata"]["name"], QUOTA_NAME);
        assert_eq!(q["spec"]["hard"]["requests.nvidia.com/gpu"], "16");
    }
}
