//! "Would this fit right now?": the preview shown before a launch or scale.

use serde::{Deserialize, Serialize};

/// Free GPUs on one schedulable node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeFree {
    pub model: String,
    pub free_gpus: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FitPreview {
    /// Pods asked for that need GPUs.
    pub pods: i64,
    /// Pods that find room now, packing each onto one node.
    pub pods_that_fit: i64,
    pub gpus_per_pod: i64,
    /// Free GPUs of the requested model (or of any model) fleet-wide.
    pub free_gpus: i64,
    pub fits: bool,
    pub summary: String,
}

/// Each pod needs `gpus_per_pod` GPUs on a single node of `model` (any model
/// when None). Greedy per-node packing is exact here because every pod asks
/// for the same amount.
pub fn preview(nodes: &[NodeFree], model: Option<&str>, gpus_per_pod: i64, pods: i64) -> FitPreview {
    let candidates: Vec<&NodeFree> =
        nodes.iter().filter(|n| n.free_gpus > 0 && model.is_none_or(|m| n.model == m)).collect();
    let free_gpus: i64 = candidates.iter().map(|n| n.free_gpus).sum();
    let model_text = model.unwrap_or("any model");
    if gpus_per_pod <= 0 || pods <= 0 {
        return FitPreview {
            pods,
            pods_that_fit: pods.max(0),
            gpus_per_pod,
            free_gpus,
            fits: true,
            summary: if pods <= 0 { "No pods to place.".into() } else { "Needs no GPUs.".into() },
        };
    }
    let pods_that_fit: i64 = candidates.iter().map(|n| n.free_gpus / gpus_per_pod).sum::<i64>().min(pods);
    let fits = pods_that_fit >= pods;
    let summary = if fits {
        format!("Fits now: {pods} × {gpus_per_pod} GPU on {model_text} ({free_gpus} free).")
    } else if pods_that_fit == 0 {
        format!("Would wait: no {model_text} node has {gpus_per_pod} free GPUs ({free_gpus} free in total).")
    } else {
        format!("Partly fits: {pods_that_fit} of {pods} pods fit now on {model_text}; the rest would wait.")
    };
    FitPreview { pods, pods_that_fit, gpus_per_pod, free_gpus, fits, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(model: &str, free: i64) -> NodeFree {
        NodeFree { model: model.into(), free_gpus: free }
    }

    #[test]
    fn packs_per_node_not_fleet_wide() {
        // 6 free GPUs in total, but no node has 4.
        let nodes = [node("H100", 3), node("H100", 3)];
        let p = preview(&nodes, Some("H100"), 4, 1);
        assert!(!p.fits);
        assert_eq!(p.free_gpus, 6);
        assert_eq!(p.pods_that_fit, 0);
        assert!(p.summary.starts_with("Would wait"), "{}", p.summary);
    }

    #[test]
    fn counts_partial_fits_and_model_filter() {
        let nodes = [node("H100", 8), node("A100", 8), node("H100", 1)];
        let p = preview(&nodes, Some("H100"), 2, 5);
        assert_eq!((p.pods_that_fit, p.fits), (4, false));
        assert!(p.summary.starts_with("Partly fits"));
        let any = preview(&nodes, None, 2, 8);
        assert_eq!((any.pods_that_fit, any.fits), (8, true));
        assert_eq!(preview(&nodes, Some("L4"), 1, 1).pods_that_fit, 0);
    }

    #[test]
    fn cpu_only_and_zero_replicas_always_fit() {
        assert!(preview(&[], None, 0, 3).fits);
        assert!(preview(&[], Some("H100"), 2, 0).fits);
    }
}
