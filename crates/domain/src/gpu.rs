//! GPU inventory of a node, read from the labels GPU feature discovery and the
//! clouds set, and from the node's capacity and allocatable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quantity::{Quantity, whole_count};

pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
pub const MIG_PREFIX: &str = "nvidia.com/mig-";
pub const LABEL_GPU_PRODUCT: &str = "nvidia.com/gpu.product";
pub const LABEL_GPU_COUNT: &str = "nvidia.com/gpu.count";
pub const LABEL_GPU_MEMORY: &str = "nvidia.com/gpu.memory";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const UNKNOWN_MODEL: &str = "unknown";

/// Whether a node was bought on the spot market or on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    Spot,
    OnDemand,
    #[default]
    Unknown,
}

impl CapacityType {
    pub fn label(self) -> &'static str {
        match self {
            CapacityType::Spot => "spot",
            CapacityType::OnDemand => "on-demand",
            CapacityType::Unknown => "unknown",
        }
    }

    /// The capacity type a [`label`](Self::label) names (`spot`, `on-demand`); None for anything else.
    pub fn from_label(label: &str) -> Option<CapacityType> {
        [CapacityType::Spot, CapacityType::OnDemand, CapacityType::Unknown].into_iter().find(|c| c.label() == label)
    }

    /// Reads the labels Karpenter, EKS, GKE and AKS set, in that order.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> CapacityType {
        let get = |key: &str| labels.get(key).map(|v| v.to_ascii_lowercase());
        if let Some(value) = get("karpenter.sh/capacity-type") {
            return match value.as_str() {
                "spot" => CapacityType::Spot,
                "on-demand" | "reserved" => CapacityType::OnDemand,
                _ => CapacityType::Unknown,
            };
        }
        if let Some(value) = get("eks.amazonaws.com/capacityType") {
            return match value.as_str() {
                "spot" => CapacityType::Spot,
                "on_demand" | "on-demand" => CapacityType::OnDemand,
                _ => CapacityType::Unknown,
            };
        }
        if let Some(value) = get("cloud.google.com/gke-spot").or_else(|| get("cloud.google.com/gke-preemptible")) {
            return if value == "true" { CapacityType::Spot } else { CapacityType::OnDemand };
        }
        if let Some(value) = get("kubernetes.azure.com/scalesetpriority") {
            return match value.as_str() {
                "spot" => CapacityType::Spot,
                "regular" => CapacityType::OnDemand,
                _ => CapacityType::Unknown,
            };
        }
        CapacityType::Unknown
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigResource {
    /// The profile, e.g. "1g.10gb" for `nvidia.com/mig-1g.10gb`.
    pub profile: String,
    pub capacity: i64,
    pub allocatable: i64,
}

/// What a node offers, independent of what runs on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeGpus {
    pub model: String,
    pub capacity: i64,
    pub allocatable: i64,
    /// Per-GPU memory in MiB, from `nvidia.com/gpu.memory`.
    pub memory_mib: Option<i64>,
    pub mig: Vec<MigResource>,
    pub capacity_type: CapacityType,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
}

impl NodeGpus {
    pub fn read(
        labels: &BTreeMap<String, String>,
        capacity: &BTreeMap<String, String>,
        allocatable: &BTreeMap<String, String>,
    ) -> NodeGpus {
        let count = |map: &BTreeMap<String, String>, key: &str| map.get(key).and_then(|v| whole_count(v)).unwrap_or(0);
        let gpu_capacity = count(capacity, GPU_RESOURCE);
        let mut mig: Vec<MigResource> = capacity
            .keys()
            .chain(allocatable.keys())
            .filter_map(|key| key.strip_prefix(MIG_PREFIX))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|profile| {
                let key = format!("{MIG_PREFIX}{profile}");
                MigResource {
                    profile: profile.to_string(),
                    capacity: count(capacity, &key),
                    allocatable: count(allocatable, &key),
                }
            })
            .collect();
        mig.retain(|m| m.capacity > 0 || m.allocatable > 0);
        let has_gpus = gpu_capacity > 0 || !mig.is_empty();
        let model = match labels.get(LABEL_GPU_PRODUCT) {
            Some(product) if !product.trim().is_empty() => product.trim().to_string(),
            _ if has_gpus => UNKNOWN_MODEL.to_string(),
            _ => String::new(),
        };
        NodeGpus {
            model,
            capacity: gpu_capacity,
            allocatable: count(allocatable, GPU_RESOURCE),
            memory_mib: labels.get(LABEL_GPU_MEMORY).and_then(|v| v.trim().parse().ok()),
            mig,
            capacity_type: CapacityType::from_labels(labels),
            instance_type: labels.get(LABEL_INSTANCE_TYPE).cloned(),
            zone: labels.get(LABEL_ZONE).cloned(),
        }
    }

    pub fn has_gpus(&self) -> bool {
        self.capacity > 0 || !self.mig.is_empty()
    }
}

/// GPUs a pod asks for: the larger of its containers' requests summed and its
/// largest init container request, as the scheduler computes it. Limits
/// count when no request is given, since extended resources default their
/// request to their limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

pub fn pod_request(
    containers: &[ContainerResources],
    init_containers: &[ContainerResources],
    resource: &str,
) -> Quantity {
    let one = |c: &ContainerResources| {
        c.requests
            .get(resource)
            .or_else(|| c.limits.get(resource))
            .and_then(|v| Quantity::parse(v).ok())
            .unwrap_or_default()
    };
    let main: Quantity = containers.iter().map(one).sum();
    let init = init_containers.iter().map(one).max().unwrap_or_default();
    main.max(init)
}

/// The MIG slices a pod requests, by profile (`1g.10gb` for
/// `nvidia.com/mig-1g.10gb`), counted like [`pod_request`] counts a resource.
pub fn mig_request(containers: &[ContainerResources], init_containers: &[ContainerResources]) -> Vec<(String, i64)> {
    let profiles: std::collections::BTreeSet<&str> = containers
        .iter()
        .chain(init_containers)
        .flat_map(|c| c.requests.keys().chain(c.limits.keys()))
        .filter_map(|key| key.strip_prefix(MIG_PREFIX))
        .collect();
    profiles
        .into_iter()
        .map(|profile| {
            let key = format!("{MIG_PREFIX}{profile}");
            (profile.to_string(), pod_request(containers, init_containers, &key).ceil_whole())
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// Whether a pod phase still holds its resources on a node.
pub fn phase_holds_resources(phase: &str) -> bool {
    !matches!(phase, "Succeeded" | "Failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn mig_requests_are_counted_by_profile() {
        let main = ContainerResources {
            requests: map(&[("nvidia.com/mig-1g.10gb", "2"), ("cpu", "1")]),
            limits: map(&[("nvidia.com/mig-3g.40gb", "1")]),
        };
        let init = ContainerResources { requests: map(&[("nvidia.com/mig-1g.10gb", "3")]), limits: BTreeMap::new() };
        assert_eq!(mig_request(&[main], &[init]), vec![("1g.10gb".to_string(), 3), ("3g.40gb".to_string(), 1)]);
        assert!(mig_request(&[], &[]).is_empty());
    }

    #[test]
    fn reads_a_gfd_labelled_h100_node() {
        let labels = map(&[
            (LABEL_GPU_PRODUCT, "NVIDIA-H100-80GB-HBM3"),
            (LABEL_GPU_COUNT, "8"),
            (LABEL_GPU_MEMORY, "81559"),
            (LABEL_INSTANCE_TYPE, "p5.48xlarge"),
            (LABEL_ZONE, "us-east-1a"),
            ("karpenter.sh/capacity-type", "spot"),
        ]);
        let gpus = NodeGpus::read(&labels, &map(&[(GPU_RESOURCE, "8")]), &map(&[(GPU_RESOURCE, "7")]));
        assert_eq!(gpus.model, "NVIDIA-H100-80GB-HBM3");
        assert_eq!((gpus.capacity, gpus.allocatable), (8, 7));
        assert_eq!(gpus.memory_mib, Some(81559));
        assert_eq!(gpus.capacity_type, CapacityType::Spot);
        assert_eq!(gpus.instance_type.as_deref(), Some("p5.48xlarge"));
        assert_eq!(gpus.zone.as_deref(), Some("us-east-1a"));
        assert!(gpus.mig.is_empty());
    }

    #[test]
    fn model_is_unknown_only_when_gpus_exist() {
        let with_gpus = NodeGpus::read(&map(&[]), &map(&[(GPU_RESOURCE, "4")]), &map(&[(GPU_RESOURCE, "4")]));
        assert_eq!(with_gpus.model, UNKNOWN_MODEL);
        let cpu_only = NodeGpus::read(&map(&[]), &map(&[("cpu", "32")]), &map(&[("cpu", "31")]));
        assert_eq!(cpu_only.model, "");
        assert!(!cpu_only.has_gpus());
    }

    #[test]
    fn lists_mig_profiles() {
        let capacity = map(&[("nvidia.com/mig-1g.10gb", "7"), ("nvidia.com/mig-3g.40gb", "2"), ("cpu", "64")]);
        let allocatable = map(&[("nvidia.com/mig-1g.10gb", "7"), ("nvidia.com/mig-3g.40gb", "1")]);
        let gpus = NodeGpus::read(&map(&[(LABEL_GPU_PRODUCT, "NVIDIA-A100-SXM4-80GB")]), &capacity, &allocatable);
        assert_eq!(
            gpus.mig,
            vec![
                MigResource { profile: "1g.10gb".into(), capacity: 7, allocatable: 7 },
                MigResource { profile: "3g.40gb".into(), capacity: 2, allocatable: 1 },
            ]
        );
        assert!(gpus.has_gpus());
    }

    #[test]
    fn broken_counts_are_not_capacity() {
        let gpus = NodeGpus::read(&map(&[]), &map(&[(GPU_RESOURCE, "half")]), &map(&[(GPU_RESOURCE, "500m")]));
        assert_eq!((gpus.capacity, gpus.allocatable), (0, 0));
    }

    #[test]
    fn capacity_type_labels_round_trip() {
        for capacity in [CapacityType::Spot, CapacityType::OnDemand, CapacityType::Unknown] {
            assert_eq!(CapacityType::from_label(capacity.label()), Some(capacity));
        }
        assert_eq!(CapacityType::from_label("reserved"), None);
    }

    #[test]
    fn capacity_type_from_each_cloud() {
        let cases: &[(&[(&str, &str)], CapacityType)] = &[
            (&[("karpenter.sh/capacity-type", "spot")], CapacityType::Spot),
            (&[("karpenter.sh/capacity-type", "on-demand")], CapacityType::OnDemand),
            (&[("karpenter.sh/capacity-type", "reserved")], CapacityType::OnDemand),
            (&[("eks.amazonaws.com/capacityType", "SPOT")], CapacityType::Spot),
            (&[("eks.amazonaws.com/capacityType", "ON_DEMAND")], CapacityType::OnDemand),
            (&[("cloud.google.com/gke-spot", "true")], CapacityType::Spot),
            (&[("cloud.google.com/gke-spot", "false")], CapacityType::OnDemand),
            (&[("cloud.google.com/gke-preemptible", "true")], CapacityType::Spot),
            (&[("kubernetes.azure.com/scalesetpriority", "spot")], CapacityType::Spot),
            (&[("kubernetes.azure.com/scalesetpriority", "regular")], CapacityType::OnDemand),
            (&[("karpenter.sh/capacity-type", "weird")], CapacityType::Unknown),
            (&[], CapacityType::Unknown),
            // Karpenter wins when a node carries two providers' labels.
            (
                &[("karpenter.sh/capacity-type", "on-demand"), ("cloud.google.com/gke-spot", "true")],
                CapacityType::OnDemand,
            ),
        ];
        for (labels, want) in cases {
            assert_eq!(CapacityType::from_labels(&map(labels)), *want, "{labels:?}");
        }
    }

    #[test]
    fn pod_request_follows_the_scheduler() {
        let c = |req: Option<&str>, lim: Option<&str>| ContainerResources {
            requests: req.map(|v| map(&[(GPU_RESOURCE, v)])).unwrap_or_default(),
            limits: lim.map(|v| map(&[(GPU_RESOURCE, v)])).unwrap_or_default(),
        };
        assert_eq!(pod_request(&[c(None, Some("2")), c(Some("1"), Some("1"))], &[], GPU_RESOURCE).ceil_whole(), 3);
        assert_eq!(pod_request(&[c(None, Some("1"))], &[c(None, Some("4"))], GPU_RESOURCE).ceil_whole(), 4);
        assert_eq!(pod_request(&[c(None, None)], &[], GPU_RESOURCE).ceil_whole(), 0);
        assert!(phase_holds_resources("Running") && phase_holds_resources("Pending"));
        assert!(!phase_holds_resources("Succeeded") && !phase_holds_resources("Failed"));
    }
}
