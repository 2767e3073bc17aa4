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
    /// What the GPUs would cost at the current prices, when the model is
    /// known and has a price.
    #[serde(default)]
    pub cost: Option<PreviewCost>,
}

/// The cost of a launch or scale before it happens: all its pods' GPUs at
/// the current on-demand price of the model (and at the spot price, when
/// there is one: where the pods land decides).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewCost {
    pub model: String,
    pub gpus: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_hour: crate::cost::Usd,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_month: crate::cost::Usd,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub spot_usd_per_hour: Option<crate::cost::Usd>,
}

impl PreviewCost {
    /// `pods × gpus_per_pod` GPUs of `model` at `prices`; None without an on-demand price.
    pub fn of(model: &str, gpus: i64, prices: &[crate::cost::GpuPrice]) -> Option<PreviewCost> {
        use crate::cost::{HOURS_PER_MONTH, price_of};
        use crate::gpu::CapacityType;
        let on_demand = price_of(prices, model, CapacityType::OnDemand)?;
        let usd_per_hour = on_demand.times(gpus.max(0));
        Some(PreviewCost {
            model: model.to_string(),
            gpus: gpus.max(0),
            usd_per_hour,
            usd_per_month: usd_per_hour.times(HOURS_PER_MONTH),
            spot_usd_per_hour: price_of(prices, model, CapacityType::Spot).map(|p| p.times(gpus.max(0))),
        })
    }

    /// "$8.00/hour ($5,840.00 a month at this rate; $3.60/hour on spot)".
    pub fn label(&self) -> String {
        let spot = self.spot_usd_per_hour.map(|s| format!("; {s}/hour on spot")).unwrap_or_default();
        format!("{}/hour ({} a month at this rate{spot})", self.usd_per_hour, self.usd_per_month)
    }
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
            cost: None,
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
    FitPreview { pods, pods_that_fit, gpus_per_pod, free_gpus, fits, summary, cost: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(model: &str, free: i64) -> NodeFree {
        NodeFree { model: model.into(), free_gpus: free }
    }

    #[test]
    fn a_preview_prices_every_pods_gpus() {
        use crate::cost::{GpuPrice, Usd};
        use crate::gpu::CapacityType;
        let price = |capacity_type, micros| GpuPrice {
            model: "H100".into(),
            capacity_type,
            usd_per_gpu_hour: Usd::from_micros(micros),
            updated_at: 0,
        };
        let prices = [price(CapacityType::OnDemand, 4_000_000), price(CapacityType::Spot, 1_500_000)];
        let cost = PreviewCost::of("H100", 3 * 2, &prices).unwrap();
        assert_eq!(
            (cost.usd_per_hour, cost.usd_per_month),
            (Usd::from_micros(24_000_000), Usd::from_micros(24_000_000 * 730))
        );
        assert_eq!(cost.label(), "$24.00/hour ($17,520.00 a month at this rate; $9.00/hour on spot)");
        assert_eq!(PreviewCost::of("L4", 1, &prices), None, "no price, no cost");
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
