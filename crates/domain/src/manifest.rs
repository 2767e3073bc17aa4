//! What Gantry writes to a cluster: launch requests as typed, validated specs
//! and the Kubernetes objects they become. Pure, so the exact objects are
//! unit-tested and the adapter only sends them.
//!
//! Two halves, each tested on its own: `input` holds what clients send (the
//! `*Input` types), its validation into [`Problems`] or checked specs
//! ([`DeploymentSpec`], [`DeploymentUpdate`], [`JobSpec`]); `objects` holds
//! the builders that turn a checked spec into Kubernetes JSON (Deployment,
//! Service, HPA, update patch, Job, ResourceQuota) and the names and labels
//! Gantry marks them with. Everything is reachable from here; the tests
//! below go through both halves, from form to object.

mod input;
mod objects;

pub use input::{
    Autoscale, DeploymentSpec, DeploymentUpdate, JobKind, JobSpec, LaunchDeploymentInput, LaunchJobInput, Problems,
    UpdateDeploymentInput, autoscale, int_or_percent,
};
pub use objects::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, QUOTA_NAME, TEAM_LABEL, gpu_quota, hpa};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::input::tests::input;
    use super::*;
    use crate::gpu::{GPU_RESOURCE, LABEL_GPU_PRODUCT};
    use crate::rollout::{MODEL_LABEL, MODEL_VERSION_LABEL};

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
    fn pytorch_jobs() {
        let input = LaunchJobInput {
            cluster: "prod".into(),
            namespace: "nlp".into(),
            name: "ddp".into(),
            image: "trainer:1".into(),
            command: "torchrun train.py".into(),
            gpus: "8".into(),
            gpu_model: "NVIDIA-H100-80GB-HBM3".into(),
            parallelism: "3".into(),
            backoff_limit: "2".into(),
            kind: "PyTorchJob".into(),
            ..Default::default()
        };
        let spec = input.validate(100).unwrap();
        assert_eq!((spec.kind, spec.pods()), (JobKind::PyTorch, 4), "three workers and a master");
        let j = spec.object(Some("nlp"), "alice");
        assert_eq!((j["apiVersion"].as_str(), j["kind"].as_str()), (Some("kubeflow.org/v1"), Some("PyTorchJob")));
        assert_eq!(j["spec"]["runPolicy"]["backoffLimit"], 2);
        let replicas = &j["spec"]["pytorchReplicaSpecs"];
        assert_eq!(
            (replicas["Master"]["replicas"].as_i64(), replicas["Worker"]["replicas"].as_i64()),
            (Some(1), Some(3))
        );
        let container = &replicas["Worker"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "pytorch", "the operator looks for its container by this name");
        assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], "8");
        assert_eq!(
            replicas["Master"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"],
            "NVIDIA-H100-80GB-HBM3"
        );
        assert_eq!(j["metadata"]["labels"]["gantry.dev/team"], "nlp");
        // A plain Job stays a Job; an unknown kind is refused; the pod cap counts the master.
        let plain = LaunchJobInput { kind: String::new(), ..input.clone() }.validate(100).unwrap();
        assert_eq!(plain.object(None, "alice")["kind"], "Job");
        let unknown = LaunchJobInput { kind: "TFJob".into(), ..input.clone() }.validate(100).unwrap_err();
        assert_eq!(unknown.0[0].field, "kind");
        assert!(LaunchJobInput { parallelism: "4".into(), ..input.clone() }.validate(4).is_err());
        assert!(LaunchJobInput { parallelism: "3".into(), ..input }.validate(4).is_ok());
    }
}
