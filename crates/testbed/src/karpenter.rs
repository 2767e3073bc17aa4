//! Karpenter with its KWOK cloud provider in a cluster: its CRDs, the `KWOKNodeClass` named
//! `default`, the instance types it may launch (GPU ones among them) and the `karpenter.sh/v1`
//! NodePools of a fleet file.
//!
//! Karpenter's KWOK provider creates the Node of each NodeClaim itself, annotated
//! `kwok.x-k8s.io/node: fake`, which is the annotation the testbed's KWOK selects the nodes it
//! plays by: they become Ready and run pods like the fleet's own nodes.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};

use crate::apply::{GPU_RESOURCE, create_custom};
use crate::fleet::KarpenterNodePool;
use crate::{Karpenter, Result};

/// The `KWOKNodeClass` every NodePool of the testbed refers to.
pub const NODE_CLASS: &str = "default";
/// The zones the instance types are offered in.
pub const ZONES: &[&str] = &["us-east-1a", "us-east-1b"];
/// Label Karpenter puts on the nodes of a NodePool, valued with its name.
pub const NODE_POOL_LABEL: &str = "karpenter.sh/nodepool";
/// Label on the nodes of a NodePool the testbed made, valued with its name, as on the
/// testbed's own nodes.
pub const GANTRY_NODE_POOL_LABEL: &str = "gantry.dev/node-pool";
/// The reason of the event Karpenter sends a pending pod it launched (or found) a node for,
/// with the message `Pod should schedule on: nodeclaim/<name>`.
pub const NOMINATED_REASON: &str = "Nominated";

/// One instance type of the KWOK provider's catalogue (`INSTANCE_TYPES_FILE_PATH`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub cpu: &'static str,
    pub memory: &'static str,
    /// `nvidia.com/gpu` of a node of this type.
    pub gpus: u32,
    /// `nvidia.com/gpu.product` of its GPUs.
    pub gpu_product: Option<&'static str>,
    /// `nvidia.com/gpu.memory` of each GPU, MiB.
    pub gpu_memory_mib: Option<u64>,
    /// Dollars an hour.
    pub on_demand_price: f64,
    pub spot_price: f64,
}

const H100: &str = "NVIDIA-H100-80GB-HBM3";
const A100: &str = "NVIDIA-A100-SXM4-80GB";
const L4: &str = "NVIDIA-L4";

const fn gpu_type(
    name: &'static str,
    cpu: &'static str,
    memory: &'static str,
    gpus: u32,
    product: &'static str,
    memory_mib: u64,
    on_demand_price: f64,
) -> InstanceType {
    InstanceType {
        name,
        cpu,
        memory,
        gpus,
        gpu_product: Some(product),
        gpu_memory_mib: Some(memory_mib),
        on_demand_price,
        spot_price: on_demand_price * 0.4,
    }
}

const fn cpu_type(name: &'static str, cpu: &'static str, memory: &'static str, on_demand_price: f64) -> InstanceType {
    InstanceType {
        name,
        cpu,
        memory,
        gpus: 0,
        gpu_product: None,
        gpu_memory_mib: None,
        on_demand_price,
        spot_price: on_demand_price * 0.4,
    }
}

/// What Karpenter may launch in a testbed cluster, each on-demand and spot in every zone of
/// [`ZONES`]; shaped like the testbed's own nodes of the same GPUs (`Fleet::small`, the demo).
pub const INSTANCE_TYPES: &[InstanceType] = &[
    gpu_type("gpu-h100-8x", "192", "2Ti", 8, H100, 81559, 98.32),
    gpu_type("gpu-a100-8x", "96", "1152Gi", 8, A100, 81920, 40.97),
    gpu_type("gpu-l4-1x", "16", "64Gi", 1, L4, 23034, 1.17),
    gpu_type("gpu-l4-4x", "48", "192Gi", 4, L4, 23034, 4.60),
    cpu_type("cpu-4x", "4", "16Gi", 0.19),
    cpu_type("cpu-16x", "16", "64Gi", 0.77),
];

/// The instance type of this name in [`INSTANCE_TYPES`].
pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

/// The KWOK provider's instance-types file (`[]InstanceTypeOptions` of
/// `kwok/cloudprovider/helpers.go`) for [`INSTANCE_TYPES`].
pub fn instance_types_json() -> serde_json::Value {
    let offering = |capacity: &str, zone: &str, price: f64| {
        serde_json::json!({
            "Price": (price * 10_000.0).round() / 10_000.0,
            "Available": true,
            "Requirements": [
                { "key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity] },
                { "key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone] },
            ],
        })
    };
    let types: Vec<serde_json::Value> = INSTANCE_TYPES
        .iter()
        .map(|t| {
            let mut resources = serde_json::json!({
                "cpu": t.cpu, "memory": t.memory, "pods": "110", "ephemeral-storage": "1Ti",
            });
            if t.gpus > 0 {
                resources[GPU_RESOURCE] = t.gpus.to_string().into();
            }
            let offerings: Vec<serde_json::Value> = ZONES
                .iter()
                .flat_map(|zone| [offering("on-demand", zone, t.on_demand_price), offering("spot", zone, t.spot_price)])
                .collect();
            serde_json::json!({
                "name": t.name,
                "offerings": offerings,
                "architecture": "amd64",
                "operatingSystems": ["linux"],
                "resources": resources,
            })
        })
        .collect();
    serde_json::Value::Array(types)
}

/// `karpenter.sh/v1` `NodePool`.
pub fn node_pool_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"), "nodepools")
}

/// `karpenter.sh/v1` `NodeClaim` (cluster-scoped).
pub fn node_claim_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"), "nodeclaims")
}

/// `karpenter.kwok.sh/v1alpha1` `KWOKNodeClass`.
pub fn kwok_node_class_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.kwok.sh", "v1alpha1", "KWOKNodeClass"),
        "kwoknodeclasses",
    )
}

/// The `KWOKNodeClass` [`NODE_CLASS`]: nodes register at once; its status defaults to Ready.
pub fn kwok_node_class() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "karpenter.kwok.sh/v1alpha1",
        "kind": "KWOKNodeClass",
        "metadata": { "name": NODE_CLASS },
    })
}

/// The NodePool a fleet entry asks for: its instance types and capacity types as requirements,
/// its nodes labelled as GPU feature discovery would label them (`nvidia.com/gpu.product`,
/// `.present`, and `.count`/`.memory` when its instance types agree) and with
/// `gantry.dev/node-pool`, limits on `nvidia.com/gpu` and `cpu`, and `WhenEmpty` consolidation
/// after `consolidateAfterSeconds` (any number of nodes at once). No taint: the testbed's own GPU
/// nodes have none either.
pub fn node_pool(spec: &KarpenterNodePool) -> serde_json::Value {
    let name = spec.name.as_str();
    let types: Vec<&InstanceType> = spec.instance_types.iter().filter_map(|t| instance_type(t.as_str())).collect();
    let mut labels = serde_json::json!({ GANTRY_NODE_POOL_LABEL: name });
    if let Some(product) = spec.gpu_product() {
        labels["nvidia.com/gpu.present"] = "true".into();
        labels["nvidia.com/gpu.product"] = product.into();
        let shared = |value: &dyn Fn(&InstanceType) -> Option<u64>| {
            let first = value(types.first()?)?;
            types.iter().all(|t| value(t) == Some(first)).then_some(first)
        };
        if let Some(count) = shared(&|t| Some(u64::from(t.gpus)).filter(|n| *n > 0)) {
            labels["nvidia.com/gpu.count"] = count.to_string().into();
        }
        if let Some(memory) = shared(&|t| t.gpu_memory_mib) {
            labels["nvidia.com/gpu.memory"] = memory.to_string().into();
        }
    }
    let capacity_types: Vec<&str> = spec.capacity_types().iter().map(|c| c.as_str()).collect();
    let instance_types: Vec<&str> = spec.instance_types.iter().map(|t| t.as_str()).collect();
    let mut limits = serde_json::Map::new();
    if let Some(gpus) = spec.limit_gpus {
        limits.insert(GPU_RESOURCE.into(), gpus.to_string().into());
    }
    if let Some(cpu) = &spec.limit_cpu {
        limits.insert("cpu".into(), cpu.as_str().into());
    }
    let mut pool = serde_json::json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": { "name": name, "labels": { "app.kubernetes.io/managed-by": "gantry" } },
        "spec": {
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "requirements": [
                        { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": instance_types },
                        { "key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types },
                        { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"] },
                        { "key": "kubernetes.io/os", "operator": "In", "values": ["linux"] },
                    ],
                    "nodeClassRef": { "group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": NODE_CLASS },
                    "expireAfter": "Never",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": format!("{}s", spec.consolidate_after_seconds),
                "budgets": [{ "nodes": "100%" }],
            },
        },
    });
    if !limits.is_empty() {
        pool["spec"]["limits"] = serde_json::Value::Object(limits);
    }
    pool
}

/// Creates the NodePools of a cluster (Karpenter's CRDs must be there).
pub(crate) async fn create_node_pools(client: &Client, cluster: &str, pools: &[KarpenterNodePool]) -> Result<()> {
    create_custom(client, cluster, &node_pool_resource(), pools.iter().map(node_pool).collect()).await
}

/// Karpenter's CRDs, read from its module.
pub(crate) fn crds(karpenter: &Karpenter) -> Result<Vec<CustomResourceDefinition>> {
    crate::training::read_crds(&karpenter.crd_files()?)
}

/// Creates Karpenter's CRDs, waits until the apiserver serves them, and creates the
/// `KWOKNodeClass` [`NODE_CLASS`].
pub(crate) async fn prepare_cluster(client: &Client, cluster: &str, karpenter: &Karpenter) -> Result<()> {
    crate::training::install_crds(client, cluster, crds(karpenter)?).await?;
    create_custom(client, cluster, &kwok_node_class_resource(), vec![kwok_node_class()]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{CapacityType, LabelValue, Quantity};
    use kube::api::DynamicObject;

    #[test]
    fn the_instance_types_file_has_gpu_types_on_demand_and_spot_in_every_zone() {
        let json = instance_types_json();
        let types = json.as_array().unwrap();
        assert_eq!(types.len(), INSTANCE_TYPES.len());
        let h100 = types.iter().find(|t| t["name"] == "gpu-h100-8x").unwrap();
        assert_eq!(h100["resources"][GPU_RESOURCE], "8");
        assert_eq!(h100["resources"]["pods"], "110");
        assert_eq!(h100["operatingSystems"], serde_json::json!(["linux"]));
        let offerings = h100["offerings"].as_array().unwrap();
        assert_eq!(offerings.len(), 2 * ZONES.len());
        let spot = offerings.iter().filter(|o| o["Requirements"][0]["values"][0] == "spot").count();
        assert_eq!(spot, ZONES.len());
        assert!(offerings.iter().all(|o| o["Price"].as_f64().unwrap() > 0.0 && o["Available"] == true));
        let cpu = types.iter().find(|t| t["name"] == "cpu-4x").unwrap();
        assert!(cpu["resources"].get(GPU_RESOURCE).is_none());
    }

    #[test]
    fn a_node_pool_labels_its_gpu_nodes_and_limits_them() {
        let mut spec = KarpenterNodePool::new("h100", &["gpu-h100-8x"]);
        spec.limit_gpus = Some(32);
        spec.limit_cpu = Some(Quantity::parse("1000").unwrap());
        spec.capacity_types = vec![CapacityType::Spot, CapacityType::OnDemand];
        let pool = node_pool(&spec);
        let labels = &pool["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["nvidia.com/gpu.product"], H100);
        assert_eq!(labels["nvidia.com/gpu.count"], "8");
        assert_eq!(labels["nvidia.com/gpu.memory"], "81559");
        assert_eq!(labels[GANTRY_NODE_POOL_LABEL], "h100");
        let requirements = pool["spec"]["template"]["spec"]["requirements"].as_array().unwrap();
        assert_eq!(requirements[0]["values"], serde_json::json!(["gpu-h100-8x"]));
        assert_eq!(requirements[1]["values"], serde_json::json!(["spot", "on-demand"]));
        assert_eq!(pool["spec"]["limits"][GPU_RESOURCE], "32");
        assert_eq!(pool["spec"]["limits"]["cpu"], "1000");
        assert_eq!(pool["spec"]["disruption"]["consolidateAfter"], "5s");
        assert_eq!(pool["spec"]["template"]["spec"]["nodeClassRef"]["name"], NODE_CLASS);

        // L4 types of different sizes: no shared count; a product set by hand wins.
        let mut l4 = KarpenterNodePool::new("l4", &["gpu-l4-1x", "gpu-l4-4x"]);
        let labels = node_pool(&l4)["spec"]["template"]["metadata"]["labels"].clone();
        assert_eq!(labels["nvidia.com/gpu.product"], L4);
        assert!(labels.get("nvidia.com/gpu.count").is_none());
        assert_eq!(labels["nvidia.com/gpu.memory"], "23034");
        l4.gpu_product = Some(LabelValue::new("NVIDIA-L4-24GB").unwrap());
        assert_eq!(
            node_pool(&l4)["spec"]["template"]["metadata"]["labels"]["nvidia.com/gpu.product"],
            "NVIDIA-L4-24GB"
        );

        let cpu = node_pool(&KarpenterNodePool::new("cpu", &["cpu-4x"]));
        let labels = &cpu["spec"]["template"]["metadata"]["labels"];
        assert!(labels.get("nvidia.com/gpu.product").is_none() && labels.get("nvidia.com/gpu.present").is_none());
        assert!(cpu["spec"].get("limits").is_none());
        let _: DynamicObject = serde_json::from_value(cpu).unwrap();
    }
}
