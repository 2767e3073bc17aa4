//! What clients send to launch or change workloads, and the checked specs it
//! becomes: each `*Input` is plain text as a form or an API client sends it,
//! and its `validate()` gathers every field's error into [`Problems`] at once
//! or returns a spec whose fields are trusted afterwards. What the specs turn
//! into on a cluster is `objects`' business.

use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::validate::{self, EnvVar, Image, Invalid, LabelName, ObjectName};

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

/// Checked autoscaling bounds: 1 ≤ min ≤ max ≤ the replica cap, a target
/// CPU use of 1 to 100 %.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Autoscale {
    pub min: i32,
    pub max: i32,
    pub target_cpu_percent: i32,
}

/// A deployment launch that passed validation: trusted from here on.
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

/// A checked update: what changes (`None` leaves it as it is), never nothing.
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
    /// `Job` (the default) or `PyTorchJob`: a Kubeflow training operator's
    /// job of one master and `parallelism` workers, each with `gpus`.
    pub kind: String,
}

/// What a training job is launched as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// A Kubernetes Job: `parallelism` pods at once, `completions` in all.
    Batch,
    /// A Kubeflow PyTorchJob: one master and `parallelism` workers.
    PyTorch,
}

impl JobKind {
    fn parse(text: &str) -> Result<JobKind, Invalid> {
        match text.trim() {
            "" | "Job" => Ok(JobKind::Batch),
            "PyTorchJob" => Ok(JobKind::PyTorch),
            _ => Err(Invalid::new("kind", "must be Job or PyTorchJob")),
        }
    }
}

/// A training job that passed validation: trusted from here on.
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
    pub kind: JobKind,
}

impl JobSpec {
    /// Its pods at once: for a PyTorchJob, its workers and its master.
    pub fn pods(&self) -> i32 {
        match self.kind {
            JobKind::Batch => self.parallelism,
            JobKind::PyTorch => self.parallelism + 1,
        }
    }
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
        let kind = p.take(JobKind::parse(&self.kind));
        // A PyTorchJob's master is one pod more than its workers.
        let most = i64::from(pod_cap) - i64::from(kind == Some(JobKind::PyTorch));
        let parallelism = p.take(bounded("parallelism", &self.parallelism, 1, 1, most.max(1)));
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
            kind: kind.unwrap(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid launch, which the tests of the whole module vary.
    pub(crate) fn input() -> LaunchDeploymentInput {
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

    /// A change to a valid input, one per table row.
    type Edit<T> = fn(&mut T);

    fn fields(problems: Problems) -> Vec<String> {
        problems.0.into_iter().map(|i| i.field).collect()
    }

    #[test]
    fn a_valid_launch_becomes_a_checked_spec() {
        let spec = LaunchDeploymentInput { cluster: " prod ".into(), ..input() }.validate(100).unwrap();
        assert_eq!(spec.cluster, "prod");
        assert_eq!(
            (spec.namespace.as_str(), spec.name.as_str(), spec.image.as_str()),
            ("vision", "llama", "ghcr.io/acme/llama:1")
        );
        assert_eq!((spec.model.as_str(), spec.model_version.as_str()), ("llama-3", "v1"));
        assert_eq!((spec.gpus, spec.gpu_model.as_deref()), (2, Some("NVIDIA-H100-80GB-HBM3")));
        assert_eq!((spec.cpu.as_deref(), spec.memory.as_deref()), (Some("4"), Some("32Gi")));
        assert_eq!((spec.replicas, spec.port, spec.readiness_path.as_deref()), (2, 8000, Some("/healthz")));
        assert_eq!(
            spec.env,
            [
                EnvVar::Value { name: "A".into(), value: "1".into() },
                EnvVar::Secret { name: "TOKEN".into(), secret: "hf".into(), key: "token".into() },
            ]
        );
        assert_eq!(spec.autoscale, None);
    }

    #[test]
    fn empty_optional_fields_take_their_defaults() {
        let spec = LaunchDeploymentInput {
            cluster: "prod".into(),
            namespace: "vision".into(),
            name: "web".into(),
            image: "nginx:1".into(),
            ..Default::default()
        }
        .validate(100)
        .unwrap();
        assert_eq!((spec.replicas, spec.port, spec.gpus), (1, 8080, 0));
        assert_eq!((spec.model.as_str(), spec.model_version.as_str()), ("", ""));
        assert_eq!((spec.gpu_model, spec.cpu, spec.memory, spec.readiness_path), (None, None, None, None));
        assert!(spec.env.is_empty());
        // Zero replicas is a valid launch (scaled down); the cap is inclusive.
        assert_eq!(LaunchDeploymentInput { replicas: "0".into(), ..input() }.validate(100).unwrap().replicas, 0);
        assert_eq!(LaunchDeploymentInput { replicas: "100".into(), ..input() }.validate(100).unwrap().replicas, 100);
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
    fn each_bad_field_names_itself() {
        let cases: [(Edit<LaunchDeploymentInput>, &str); 11] = [
            (|i| i.model = "-llama".into(), "model"),
            (|i| i.model_version = "v 2".into(), "model_version"),
            (|i| i.gpu_model = "H100 80GB".into(), "gpu_model"),
            (|i| i.cpu = "lots".into(), "cpu"),
            (|i| i.memory = "0".into(), "memory"),
            (|i| i.env = "1A=x".into(), "env"),
            (|i| i.port = "0".into(), "port"),
            (|i| i.port = "http".into(), "port"),
            (|i| i.readiness_path = "healthz".into(), "readiness_path"),
            (|i| i.readiness_path = "/health z".into(), "readiness_path"),
            (|i| i.readiness_path = format!("/{}", "a".repeat(256)), "readiness_path"),
        ];
        for (edit, field) in cases {
            let mut bad = input();
            edit(&mut bad);
            assert_eq!(fields(bad.validate(100).unwrap_err()), [field], "{bad:?}");
        }
    }

    #[test]
    fn autoscaling_bounds() {
        let ok = |min, max, target| Ok(Some(Autoscale { min, max, target_cpu_percent: target }));
        for (min, max, target, want) in [
            (None, Some(5), None, ok(1, 5, 80)),
            (Some(2), Some(2), Some(100), ok(2, 2, 100)),
            (Some(1), Some(100), Some(1), ok(1, 100, 1)),
            (Some(1), None, None, Err("max_replicas")),
            (Some(0), Some(2), None, Err("min_replicas")),
            (Some(3), Some(2), None, Err("max_replicas")),
            (Some(1), Some(101), None, Err("max_replicas")),
            (Some(1), Some(2), Some(0), Err("target_cpu_percent")),
            (Some(1), Some(2), Some(101), Err("target_cpu_percent")),
        ] {
            let got = autoscale(min, max, target, 100).map_err(|e| e.field);
            assert_eq!(got, want.map_err(str::to_string), "min {min:?}, max {max:?}, target {target:?}");
        }
        // Autoscaling fields count only when autoscaling is asked for.
        let off = LaunchDeploymentInput { min_replicas: "x".into(), max_replicas: "0".into(), ..input() };
        assert_eq!(off.validate(100).unwrap().autoscale, None);
        let on = LaunchDeploymentInput { autoscale: true, ..off };
        assert_eq!(fields(on.validate(100).unwrap_err()), ["min_replicas"]);
        let spec =
            LaunchDeploymentInput { autoscale: true, max_replicas: "4".into(), ..input() }.validate(100).unwrap();
        assert_eq!(spec.autoscale, Some(Autoscale { min: 1, max: 4, target_cpu_percent: 80 }));
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
    fn problems_read_as_one_message() {
        let problems =
            LaunchDeploymentInput { cluster: "".into(), port: "0".into(), ..input() }.validate(100).unwrap_err();
        assert_eq!(problems.to_string(), "port: must be between 1 and 65535; cluster: is required");
    }

    #[test]
    fn surge_settings_are_numbers_or_percentages() {
        for (text, want) in [
            ("", Ok(None)),
            ("2", Ok(Some("2"))),
            (" 25% ", Ok(Some("25%"))),
            ("100%", Ok(Some("100%"))),
            ("0", Ok(Some("0"))),
            ("101%", Err(())),
            ("-1", Err(())),
            ("1.5", Err(())),
            ("%", Err(())),
            ("a%", Err(())),
        ] {
            let got = int_or_percent("max_surge", text);
            assert_eq!(got.as_ref().map(Option::as_deref).map_err(|_| ()), want, "{text:?}");
            if let Err(e) = got {
                assert_eq!(e.field, "max_surge");
            }
        }
    }

    #[test]
    fn an_update_names_what_changes() {
        let update = |edit: fn(&mut UpdateDeploymentInput)| {
            let mut input = UpdateDeploymentInput::default();
            edit(&mut input);
            input.validate()
        };
        assert_eq!(
            update(|u| {
                u.image = " llama:2 ".into();
                u.model_version = "v2".into();
            }),
            Ok(DeploymentUpdate {
                image: Some(Image::parse("llama:2").unwrap()),
                model_version: Some("v2".into()),
                max_surge: None,
                max_unavailable: None,
            })
        );
        assert_eq!(
            update(|u| u.max_unavailable = "0".into()),
            Ok(DeploymentUpdate {
                image: None,
                model_version: None,
                max_surge: None,
                max_unavailable: Some("0".into())
            })
        );
        // Nothing to change, or a rollout that could never move, is refused.
        let refused: [(Edit<UpdateDeploymentInput>, &str); 6] = [
            (|_| {}, "image"),
            (|u| u.image = "   ".into(), "image"),
            (
                |u| {
                    u.max_surge = "0%".into();
                    u.max_unavailable = "0".into();
                },
                "max_unavailable",
            ),
            (|u| u.image = "llama 2".into(), "image"),
            (|u| u.model_version = "-v2".into(), "model_version"),
            (|u| u.max_surge = "150%".into(), "max_surge"),
        ];
        for (edit, field) in refused {
            assert_eq!(fields(update(edit).unwrap_err()), [field]);
        }
    }

    fn job() -> LaunchJobInput {
        LaunchJobInput {
            cluster: "dev".into(),
            namespace: "vision-dev".into(),
            name: "train".into(),
            image: "trainer:1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_spec_takes_defaults_and_splits_its_command() {
        let spec = job().validate(100).unwrap();
        assert_eq!((spec.parallelism, spec.completions, spec.backoff_limit), (1, 1, 6));
        assert_eq!(spec.active_deadline_seconds, None);
        assert!(spec.command.is_empty() && spec.args.is_empty() && spec.env.is_empty());
        let spec = LaunchJobInput {
            command: "  python  -u train.py ".into(),
            args: "--epochs\n\n  3 \n".into(),
            parallelism: "100".into(),
            completions: "10000".into(),
            backoff_limit: "0".into(),
            active_deadline_seconds: "1".into(),
            ..job()
        }
        .validate(100)
        .unwrap();
        assert_eq!(spec.command, ["python", "-u", "train.py"]);
        assert_eq!(spec.args, ["--epochs", "3"]);
        assert_eq!((spec.parallelism, spec.completions, spec.backoff_limit), (100, 10_000, 0));
        assert_eq!(spec.active_deadline_seconds, Some(1));
    }

    #[test]
    fn job_bounds() {
        let cases: [(Edit<LaunchJobInput>, &str); 8] = [
            (|j| j.parallelism = "101".into(), "parallelism"),
            (|j| j.parallelism = "0".into(), "parallelism"),
            (|j| j.completions = "10001".into(), "completions"),
            (|j| j.backoff_limit = "101".into(), "backoff_limit"),
            (|j| j.active_deadline_seconds = "0".into(), "active_deadline_seconds"),
            (|j| j.active_deadline_seconds = "soon".into(), "active_deadline_seconds"),
            (|j| j.command = "x".repeat(4097), "command"),
            (|j| j.cluster = " ".into(), "cluster"),
        ];
        for (edit, field) in cases {
            let mut bad = job();
            edit(&mut bad);
            assert_eq!(fields(bad.validate(100).unwrap_err()), [field]);
        }
    }
}
