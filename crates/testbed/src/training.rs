//! The Kubeflow training operator in a cluster: its CRDs, what its cert rotator insists on,
//! and the `kubeflow.org/v1` PyTorchJobs of a fleet file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};

use crate::apply::{GPU_RESOURCE, create_all, create_cluster_scoped, create_custom};
use crate::fleet::{PyTorchJobSpec, TrainJobSpec};
use crate::kwok::{CRASH_LOOP_ANNOTATION, RUN_FOR_ANNOTATION, RUN_FOR_JITTER_ANNOTATION};
use crate::{Error, Result, TrainerCrds, TrainingOperator};

/// The namespace the operator's cert rotator keeps its Secret in (its default, `kubeflow`).
pub const OPERATOR_NAMESPACE: &str = "kubeflow";
/// The Secret the cert rotator fills with a CA and a serving certificate (`--webhook-secret-name`).
pub const WEBHOOK_SECRET: &str = "training-operator-webhook-cert";
/// Where v1.8's cert rotator looks for the serving certificate, as a kubelet would mount the
/// Secret; hard-coded (`pkg/cert`), and it only checks that `tls.crt` exists.
pub const ROTATOR_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
/// The operator's controllers the testbed turns on (`--enable-scheme`).
pub const ENABLED_SCHEMES: &[&str] = &["pytorchjob", "tfjob"];

/// Labels the operator puts on the pods and Services of a job.
pub const REPLICA_TYPE_LABEL: &str = "training.kubeflow.org/replica-type";
pub const REPLICA_INDEX_LABEL: &str = "training.kubeflow.org/replica-index";
pub const JOB_NAME_LABEL: &str = "training.kubeflow.org/job-name";
pub const JOB_ROLE_LABEL: &str = "training.kubeflow.org/job-role";
pub const OPERATOR_NAME_LABEL: &str = "training.kubeflow.org/operator-name";

/// `kubeflow.org/v1` `PyTorchJob`, for [`DynamicObject`] APIs.
pub fn pytorch_job_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"), "pytorchjobs")
}

/// The PyTorchJob a fleet entry asks for: a Master and `workers` Workers, restartPolicy Never,
/// each pod "running" for `runSeconds` (KWOK's pod-complete delay); with `fail`, the Workers
/// crash instead (exit code 1), so the operator marks the job Failed.
pub fn pytorch_job(spec: &PyTorchJobSpec) -> serde_json::Value {
    let name = spec.name.as_str();
    let labels = serde_json::json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "gantry" });
    let run_for = format!("{}s", spec.run_seconds);
    let replica = |replicas: u32, crash: bool| {
        let mut annotations = BTreeMap::from([
            (RUN_FOR_ANNOTATION.to_string(), run_for.clone()),
            (RUN_FOR_JITTER_ANNOTATION.to_string(), run_for.clone()),
        ]);
        if crash {
            annotations.insert(CRASH_LOOP_ANNOTATION.to_string(), "true".to_string());
        }
        let mut resources = serde_json::json!({ "requests": { "cpu": "100m", "memory": "128Mi" } });
        if spec.gpus_per_worker > 0 {
            let gpus = spec.gpus_per_worker.to_string();
            resources["requests"][GPU_RESOURCE] = gpus.clone().into();
            resources["limits"] = serde_json::json!({ GPU_RESOURCE: gpus });
        }
        let mut pod = serde_json::json!({
            // The operator wires up the container named `pytorch` (env, port).
            "containers": [{ "name": "pytorch", "image": spec.image.as_str(), "resources": resources }],
        });
        if let Some(model) = &spec.gpu_model {
            pod["nodeSelector"] = serde_json::json!({ "nvidia.com/gpu.product": model.as_str() });
        }
        serde_json::json!({
            "replicas": replicas,
            "restartPolicy": "Never",
            "template": { "metadata": { "labels": labels, "annotations": annotations }, "spec": pod },
        })
    };
    serde_json::json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": { "name": name, "namespace": spec.namespace.as_str(), "labels": labels },
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": replica(1, false),
                "Worker": replica(spec.workers, spec.fail),
            },
        },
    })
}

/// `trainer.kubeflow.org/v1alpha1` `TrainJob` (Kubeflow Trainer v2), for [`DynamicObject`] APIs.
pub fn train_job_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"),
        "trainjobs",
    )
}

/// `trainer.kubeflow.org/v1alpha1` `ClusterTrainingRuntime` (cluster-scoped).
pub fn cluster_training_runtime_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "ClusterTrainingRuntime"),
        "clustertrainingruntimes",
    )
}

/// The TrainJob a fleet entry asks for: `runtimeRef` to the ClusterTrainingRuntime `runtime`,
/// `trainer.numNodes`, and `gpusPerNode` as the `nvidia.com/gpu` requests and limits of
/// `trainer.resourcesPerNode`.
pub fn train_job(spec: &TrainJobSpec) -> serde_json::Value {
    let name = spec.name.as_str();
    let mut trainer = serde_json::json!({ "numNodes": spec.num_nodes });
    if spec.gpus_per_node > 0 {
        let gpus = spec.gpus_per_node.to_string();
        trainer["resourcesPerNode"] =
            serde_json::json!({ "requests": { GPU_RESOURCE: gpus }, "limits": { GPU_RESOURCE: gpus } });
    }
    if let Some(image) = &spec.image {
        trainer["image"] = image.as_str().into();
    }
    serde_json::json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {
            "name": name,
            "namespace": spec.namespace.as_str(),
            "labels": { "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "gantry" },
        },
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": spec.runtime.as_str(),
            },
            "trainer": trainer,
        },
    })
}

/// Creates the TrainJobs of a cluster (the CRDs must be there).
pub(crate) async fn create_train_jobs(client: &Client, cluster: &str, jobs: &[TrainJobSpec]) -> Result<()> {
    create_custom(client, cluster, &train_job_resource(), jobs.iter().map(train_job).collect()).await
}

/// Creates Kubeflow Trainer's CRDs, waits until the apiserver serves them, and creates its
/// ClusterTrainingRuntimes.
pub(crate) async fn prepare_trainer(client: &Client, cluster: &str, trainer: &TrainerCrds) -> Result<()> {
    install_crds(client, cluster, read_crds(&trainer.crd_files()?)?).await?;
    let runtimes = trainer
        .runtime_files()?
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
            serde_yaml::from_str(&text).map_err(|e| Error::Binaries(format!("runtime {}: {e}", path.display())))
        })
        .collect::<Result<Vec<serde_json::Value>>>()?;
    create_custom(client, cluster, &cluster_training_runtime_resource(), runtimes).await
}

/// Creates the PyTorchJobs of a cluster (the CRDs must be there).
pub(crate) async fn create_pytorch_jobs(client: &Client, cluster: &str, jobs: &[PyTorchJobSpec]) -> Result<()> {
    let resource = pytorch_job_resource();
    for spec in jobs {
        let object: DynamicObject = serde_json::from_value(pytorch_job(spec)).map_err(|e| Error::Cluster {
            cluster: cluster.into(),
            message: format!("PyTorchJob {}: {e}", spec.name),
        })?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), spec.namespace.as_str(), &resource);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 && attempt > 1 => break,
                Err(kube::Error::Api(status)) if attempt < 6 && (status.code == 429 || status.code >= 500) => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(Error::kube(cluster, format!("creating PyTorchJob {}", spec.name))(e)),
            }
        }
    }
    Ok(())
}

/// The operator's CRDs, read from its module's manifests.
pub(crate) fn crds(operator: &TrainingOperator) -> Result<Vec<CustomResourceDefinition>> {
    read_crds(&operator.crd_files()?)
}

/// CRDs read from YAML files, one each.
pub(crate) fn read_crds(files: &[std::path::PathBuf]) -> Result<Vec<CustomResourceDefinition>> {
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading CRD {}", path.display())))?;
            serde_yaml::from_str(&text).map_err(|e| Error::Binaries(format!("CRD {}: {e}", path.display())))
        })
        .collect()
}

/// Creates CRDs and waits until the apiserver serves them (each `Established`).
pub(crate) async fn install_crds(client: &Client, cluster: &str, crds: Vec<CustomResourceDefinition>) -> Result<()> {
    let names: Vec<String> = crds.iter().filter_map(|c| c.metadata.name.clone()).collect();
    create_cluster_scoped(client, cluster, crds).await?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for name in &names {
        loop {
            let crd = api.get(name).await.map_err(Error::kube(cluster, format!("reading CRD {name}")))?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if established {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Timeout {
                    cluster: cluster.into(),
                    what: format!("CRD {name} to be established"),
                    seconds: 60,
                    detail: String::new(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Creates the operator's CRDs and waits until the apiserver serves them, then what its cert
/// rotator needs: the namespace `kubeflow` with an empty Secret to fill.
pub(crate) async fn prepare_cluster(client: &Client, cluster: &str, operator: &TrainingOperator) -> Result<()> {
    install_crds(client, cluster, crds(operator)?).await?;
    let namespace = Namespace {
        metadata: ObjectMeta { name: Some(OPERATOR_NAMESPACE.into()), ..Default::default() },
        ..Default::default()
    };
    create_cluster_scoped(client, cluster, vec![namespace]).await?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(WEBHOOK_SECRET.into()),
            namespace: Some(OPERATOR_NAMESPACE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    create_all(client, cluster, vec![secret]).await
}

/// Writes the files the operator reads from disk: the webhook server's certificate and key in
/// `<tmp>/k8s-webhook-server/serving-certs` (the operator runs with `TMPDIR=<tmp>`), and the
/// placeholder `tls.crt` its cert rotator waits for in [`ROTATOR_CERT_DIR`] (shared by every
/// testbed on the machine, written once, never read).
pub(crate) fn write_cert_files(tmp: &Path, cert: &Path, key: &Path) -> Result<()> {
    let serving = tmp.join("k8s-webhook-server/serving-certs");
    std::fs::create_dir_all(&serving).map_err(Error::io(format!("creating {}", serving.display())))?;
    for (from, to) in [(cert, "tls.crt"), (key, "tls.key")] {
        std::fs::copy(from, serving.join(to)).map_err(Error::io(format!("copying {}", from.display())))?;
    }
    let shared = Path::new(ROTATOR_CERT_DIR);
    let placeholder = shared.join("tls.crt");
    if !placeholder.exists() {
        std::fs::create_dir_all(shared).map_err(Error::io(format!("creating {}", shared.display())))?;
        // Another testbed may write it at the same moment: same content, and a rename is atomic.
        let partial = shared.join(format!(".tls.crt.{}", std::process::id()));
        std::fs::copy(cert, &partial).map_err(Error::io(format!("writing {}", partial.display())))?;
        std::fs::rename(&partial, &placeholder).map_err(Error::io(format!("writing {}", placeholder.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::LabelValue;

    #[test]
    fn a_pytorch_job_has_a_master_and_workers_that_run_or_crash() {
        let mut spec = PyTorchJobSpec::new("mnist", "vision", 2);
        spec.gpus_per_worker = 2;
        spec.gpu_model = Some(LabelValue::new("NVIDIA-H100-80GB-HBM3").unwrap());
        spec.run_seconds = 7;
        let job = pytorch_job(&spec);
        assert_eq!(job["apiVersion"], "kubeflow.org/v1");
        let replicas = &job["spec"]["pytorchReplicaSpecs"];
        assert_eq!(replicas["Master"]["replicas"], 1);
        assert_eq!(replicas["Worker"]["replicas"], 2);
        for role in ["Master", "Worker"] {
            let template = &replicas[role]["template"];
            assert_eq!(replicas[role]["restartPolicy"], "Never");
            assert_eq!(template["metadata"]["annotations"][RUN_FOR_ANNOTATION], "7s");
            assert_eq!(template["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gantry");
            assert!(template["metadata"]["annotations"].get(CRASH_LOOP_ANNOTATION).is_none());
            let container = &template["spec"]["containers"][0];
            assert_eq!(container["name"], "pytorch");
            assert_eq!(container["resources"]["limits"][GPU_RESOURCE], "2");
            assert_eq!(template["spec"]["nodeSelector"]["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
        }
        spec.fail = true;
        spec.gpus_per_worker = 0;
        let job = pytorch_job(&spec);
        let replicas = &job["spec"]["pytorchReplicaSpecs"];
        assert_eq!(replicas["Worker"]["template"]["metadata"]["annotations"][CRASH_LOOP_ANNOTATION], "true");
        assert!(replicas["Master"]["template"]["metadata"]["annotations"].get(CRASH_LOOP_ANNOTATION).is_none());
        assert!(replicas["Worker"]["template"]["spec"]["containers"][0]["resources"].get("limits").is_none());
        let _: DynamicObject = serde_json::from_value(job).unwrap();
    }

    #[test]
    fn a_train_job_refers_to_its_runtime_and_asks_for_gpus_per_node() {
        let mut spec = TrainJobSpec::new("llama-ft", "nlp", 2);
        spec.gpus_per_node = 8;
        let job = train_job(&spec);
        assert_eq!(job["apiVersion"], "trainer.kubeflow.org/v1alpha1");
        assert_eq!(job["spec"]["runtimeRef"]["name"], "torch-distributed");
        assert_eq!(job["spec"]["runtimeRef"]["kind"], "ClusterTrainingRuntime");
        assert_eq!(job["spec"]["trainer"]["numNodes"], 2);
        assert_eq!(job["spec"]["trainer"]["resourcesPerNode"]["limits"][GPU_RESOURCE], "8");
        assert!(job["spec"]["trainer"].get("image").is_none());
        let job = train_job(&TrainJobSpec::new("cpu", "nlp", 1));
        assert!(job["spec"]["trainer"].get("resourcesPerNode").is_none());
        let _: DynamicObject = serde_json::from_value(job).unwrap();
    }
}
