//! The Kubernetes objects Gantry writes, built from checked specs: the
//! Deployment, Service and HorizontalPodAutoscaler of a launch, the JSON patch
//! of an update, a Job, and the GPU ResourceQuota. Pure JSON, so the exact
//! objects are unit-tested and the adapter only sends them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::input::{Autoscale, DeploymentSpec, DeploymentUpdate, JobKind, JobSpec};
use crate::gpu::{GPU_RESOURCE, LABEL_GPU_PRODUCT};
use crate::rollout::{CHANGE_CAUSE_ANNOTATION, MODEL_LABEL, MODEL_VERSION_LABEL};
use crate::validate::EnvVar;

// How Gantry signs what it writes: the field manager of its server-side
// applies, and the names and labels that mark its objects.
pub const FIELD_MANAGER: &str = "gantry";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gantry";
pub const TEAM_LABEL: &str = "gantry.dev/team";
pub const QUOTA_NAME: &str = "gantry-gpu-quota";

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

impl JobSpec {
    /// The object to create: a batch Job or a Kubeflow PyTorchJob.
    pub fn object(&self, team: Option<&str>, actor: &str) -> Value {
        match self.kind {
            JobKind::Batch => self.job(team, actor),
            JobKind::PyTorch => self.pytorch_job(team, actor),
        }
    }

    /// The pod the job runs, once or per replica; `container` names its container.
    fn pod_template(&self, container_name: &str, restart_policy: &str, labels: &BTreeMap<String, String>) -> Value {
        let mut container = json!({
            "name": container_name,
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
        let mut pod_spec = json!({ "restartPolicy": restart_policy, "containers": [container] });
        if let Some(selector) = node_selector(&self.gpu_model) {
            pod_spec["nodeSelector"] = selector;
        }
        json!({ "metadata": { "labels": labels }, "spec": pod_spec })
    }

    /// A Kubeflow PyTorchJob (`kubeflow.org/v1`): one Master and
    /// `parallelism` Workers, each with the job's container (named
    /// `pytorch`, as the operator requires), restarted on failure up to
    /// the backoff limit.
    fn pytorch_job(&self, team: Option<&str>, actor: &str) -> Value {
        let labels = common_labels(self.name.as_str(), "", "", team);
        let template = self.pod_template("pytorch", "OnFailure", &labels);
        let mut run_policy = json!({ "backoffLimit": self.backoff_limit });
        if let Some(deadline) = self.active_deadline_seconds {
            run_policy["activeDeadlineSeconds"] = json!(deadline);
        }
        json!({
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {
                "name": self.name.as_str(),
                "namespace": self.namespace.as_str(),
                "labels": labels,
                "annotations": { "gantry.dev/launched-by": actor },
            },
            "spec": {
                "runPolicy": run_policy,
                "pytorchReplicaSpecs": {
                    "Master": { "replicas": 1, "restartPolicy": "OnFailure", "template": template },
                    "Worker": { "replicas": self.parallelism, "restartPolicy": "OnFailure", "template": template },
                },
            },
        })
    }

    /// A Kubernetes Job (`batch/v1`).
    pub fn job(&self, team: Option<&str>, actor: &str) -> Value {
        let labels = common_labels(self.name.as_str(), "", "", team);
        let mut spec = json!({
            "parallelism": self.parallelism,
            "completions": self.completions,
            "backoffLimit": self.backoff_limit,
            "template": self.pod_template(self.name.as_str(), "Never", &labels),
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
    use crate::validate::{Image, LabelName, ObjectName};

    /// A checked spec, built directly: these tests need no validation.
    fn spec() -> DeploymentSpec {
        DeploymentSpec {
            cluster: "prod".into(),
            namespace: LabelName::parse("namespace", "vision").unwrap(),
            name: ObjectName::parse("llama").unwrap(),
            image: Image::parse("ghcr.io/acme/llama:1").unwrap(),
            model: "llama-3".into(),
            model_version: "v1".into(),
            gpus: 2,
            gpu_model: Some("NVIDIA-H100-80GB-HBM3".into()),
            cpu: Some("4".into()),
            memory: Some("32Gi".into()),
            replicas: 2,
            env: vec![
                EnvVar::Value { name: "A".into(), value: "1".into() },
                EnvVar::Secret { name: "TOKEN".into(), secret: "hf".into(), key: "token".into() },
            ],
            port: 8000,
            readiness_path: Some("/healthz".into()),
            autoscale: None,
        }
    }

    fn bare() -> DeploymentSpec {
        DeploymentSpec {
            model: String::new(),
            model_version: String::new(),
            gpus: 0,
            gpu_model: None,
            cpu: None,
            memory: None,
            env: Vec::new(),
            readiness_path: None,
            ..spec()
        }
    }

    #[test]
    fn a_deployment_carries_everything_the_spec_says() {
        let labels = json!({
            "app.kubernetes.io/name": "llama",
            "app.kubernetes.io/managed-by": "gantry",
            "gantry.dev/model": "llama-3",
            "gantry.dev/model-version": "v1",
            "gantry.dev/team": "vision",
        });
        assert_eq!(
            spec().deployment(Some("vision"), "alice"),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "llama",
                    "namespace": "vision",
                    "labels": labels,
                    "annotations": { "kubernetes.io/change-cause": "gantry: launched ghcr.io/acme/llama:1 by alice" },
                },
                "spec": {
                    "replicas": 2,
                    "selector": { "matchLabels": { "app.kubernetes.io/name": "llama" } },
                    "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
                    "template": {
                        "metadata": { "labels": labels },
                        "spec": {
                            "nodeSelector": { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
                            "containers": [{
                                "name": "llama",
                                "image": "ghcr.io/acme/llama:1",
                                "env": [
                                    { "name": "A", "value": "1" },
                                    { "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "hf", "key": "token" } } },
                                ],
                                "ports": [{ "name": "http", "containerPort": 8000 }],
                                "resources": {
                                    "limits": { "nvidia.com/gpu": "2", "memory": "32Gi" },
                                    "requests": { "nvidia.com/gpu": "2", "cpu": "4", "memory": "32Gi" },
                                },
                                "readinessProbe": { "httpGet": { "path": "/healthz", "port": 8000 } },
                            }],
                        },
                    },
                },
            })
        );
    }

    #[test]
    fn what_the_spec_leaves_out_the_objects_leave_out() {
        let d = bare().deployment(None, "alice");
        let labels = json!({ "app.kubernetes.io/name": "llama", "app.kubernetes.io/managed-by": "gantry" });
        assert_eq!(d["metadata"]["labels"], labels);
        assert_eq!(d["spec"]["template"]["metadata"]["labels"], labels);
        let pod = &d["spec"]["template"]["spec"];
        assert!(pod.get("nodeSelector").is_none());
        let container = &pod["containers"][0];
        assert!(container.get("readinessProbe").is_none());
        assert_eq!(container["env"], json!([]));
        assert_eq!(container["resources"], json!({ "limits": {}, "requests": {} }));
        assert!(bare().autoscaler(None).is_none());
    }

    #[test]
    fn a_service_sends_port_80_to_the_container() {
        assert_eq!(
            spec().service(None),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "llama",
                    "namespace": "vision",
                    "labels": {
                        "app.kubernetes.io/name": "llama",
                        "app.kubernetes.io/managed-by": "gantry",
                        "gantry.dev/model": "llama-3",
                        "gantry.dev/model-version": "v1",
                    },
                },
                "spec": {
                    "selector": { "app.kubernetes.io/name": "llama" },
                    "ports": [{ "name": "http", "port": 80, "targetPort": 8000 }],
                },
            })
        );
    }

    #[test]
    fn with_an_autoscaler_replicas_start_at_its_minimum() {
        let autoscale = Autoscale { min: 3, max: 5, target_cpu_percent: 70 };
        let scaled = |replicas| DeploymentSpec { replicas, autoscale: Some(autoscale.clone()), ..bare() };
        assert_eq!(scaled(2).deployment(None, "a")["spec"]["replicas"], 3);
        assert_eq!(scaled(4).deployment(None, "a")["spec"]["replicas"], 4);
        assert_eq!(
            scaled(2).autoscaler(Some("vision")),
            Some(json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {
                    "name": "llama",
                    "namespace": "vision",
                    "labels": {
                        "app.kubernetes.io/name": "llama",
                        "app.kubernetes.io/managed-by": "gantry",
                        "gantry.dev/team": "vision",
                    },
                },
                "spec": {
                    "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "llama" },
                    "minReplicas": 3,
                    "maxReplicas": 5,
                    "metrics": [{
                        "type": "Resource",
                        "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } },
                    }],
                },
            }))
        );
    }

    fn update(image: Option<&str>, model_version: Option<&str>, surge: Option<&str>) -> DeploymentUpdate {
        DeploymentUpdate {
            image: image.map(|i| Image::parse(i).unwrap()),
            model_version: model_version.map(str::to_string),
            max_surge: surge.map(str::to_string),
            max_unavailable: None,
        }
    }

    #[test]
    fn an_image_patch_is_guarded_and_says_why() {
        let current = spec().deployment(None, "alice");
        assert_eq!(
            update(Some("llama:2"), None, None).patch(&current, "41", "bob"),
            json!([
                { "op": "replace", "path": "/metadata/resourceVersion", "value": "41" },
                { "op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "llama:2" },
                { "op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause", "value": "gantry: set image llama:2 by bob" },
            ])
        );
    }

    #[test]
    fn a_model_version_patch_adds_the_maps_it_writes_into() {
        let current = json!({ "metadata": { "name": "llama" }, "spec": { "template": { "metadata": {} } } });
        assert_eq!(
            update(None, Some("v2"), None).patch(&current, "7", "bob"),
            json!([
                { "op": "replace", "path": "/metadata/resourceVersion", "value": "7" },
                { "op": "add", "path": "/spec/template/metadata/labels", "value": {} },
                { "op": "add", "path": "/spec/template/metadata/labels/gantry.dev~1model-version", "value": "v2" },
                { "op": "add", "path": "/metadata/labels", "value": {} },
                { "op": "add", "path": "/metadata/labels/gantry.dev~1model-version", "value": "v2" },
                { "op": "add", "path": "/metadata/annotations", "value": {} },
                { "op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause", "value": "gantry: set model version v2 by bob" },
            ])
        );
        // Maps that exist are written into, not replaced.
        let both = update(Some("llama:2"), Some("v2"), None).patch(&spec().deployment(None, "a"), "7", "bob");
        let paths: Vec<&str> = both.as_array().unwrap().iter().map(|op| op["path"].as_str().unwrap()).collect();
        assert!(!paths.contains(&"/metadata/labels") && !paths.contains(&"/metadata/annotations"), "{paths:?}");
        assert_eq!(
            both.as_array().unwrap().last().unwrap()["value"],
            "gantry: set image llama:2, model version v2 by bob"
        );
    }

    #[test]
    fn a_surge_patch_keeps_the_other_rollout_setting() {
        let current = spec().deployment(None, "alice");
        let patch = update(None, None, Some("2")).patch(&current, "7", "bob");
        assert_eq!(
            patch,
            json!([
                { "op": "replace", "path": "/metadata/resourceVersion", "value": "7" },
                { "op": "add", "path": "/spec/strategy", "value": {
                    "type": "RollingUpdate",
                    "rollingUpdate": { "maxSurge": 2, "maxUnavailable": "25%" },
                } },
            ]),
            "a whole number is sent as a number, and no change cause is written"
        );
        let percent = DeploymentUpdate { max_unavailable: Some("10%".into()), ..update(None, None, None) };
        let patch = percent.patch(&json!({}), "7", "bob");
        assert_eq!(patch[1]["value"], json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "10%" } }));
    }

    fn job() -> JobSpec {
        JobSpec {
            cluster: "dev".into(),
            namespace: LabelName::parse("namespace", "vision-dev").unwrap(),
            name: ObjectName::parse("train").unwrap(),
            image: Image::parse("trainer:1").unwrap(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            gpus: 0,
            gpu_model: None,
            cpu: None,
            memory: None,
            parallelism: 1,
            completions: 1,
            backoff_limit: 6,
            active_deadline_seconds: None,
            kind: JobKind::Batch,
        }
    }

    #[test]
    fn a_job_runs_once_and_names_who_launched_it() {
        assert_eq!(
            job().job(Some("vision"), "alice"),
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": "train",
                    "namespace": "vision-dev",
                    "labels": {
                        "app.kubernetes.io/name": "train",
                        "app.kubernetes.io/managed-by": "gantry",
                        "gantry.dev/team": "vision",
                    },
                    "annotations": { "gantry.dev/launched-by": "alice" },
                },
                "spec": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": 6,
                    "template": {
                        "metadata": { "labels": {
                            "app.kubernetes.io/name": "train",
                            "app.kubernetes.io/managed-by": "gantry",
                            "gantry.dev/team": "vision",
                        } },
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{
                                "name": "train",
                                "image": "trainer:1",
                                "env": [],
                                "resources": { "limits": {}, "requests": {} },
                            }],
                        },
                    },
                },
            })
        );
        let full = JobSpec {
            command: vec!["python".into(), "train.py".into()],
            args: vec!["--epochs".into(), "3".into()],
            gpus: 8,
            gpu_model: Some("NVIDIA-A100-SXM4-80GB".into()),
            active_deadline_seconds: Some(3600),
            ..job()
        }
        .job(None, "alice");
        let container = &full["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            (&container["command"], &container["args"]),
            (&json!(["python", "train.py"]), &json!(["--epochs", "3"]))
        );
        assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], "8");
        assert_eq!(full["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"], "NVIDIA-A100-SXM4-80GB");
        assert_eq!(full["spec"]["activeDeadlineSeconds"], 3600);
    }

    #[test]
    fn quota_object() {
        let q = gpu_quota("vision", 16);
        assert_eq!(q["metadata"]["name"], QUOTA_NAME);
        assert_eq!(q["spec"]["hard"]["requests.nvidia.com/gpu"], "16");
        assert_eq!(q["metadata"]["labels"], json!({ "app.kubernetes.io/managed-by": "gantry" }));
        assert_eq!((q["apiVersion"].as_str(), q["kind"].as_str()), (Some("v1"), Some("ResourceQuota")));
    }
}
