//! The question "what did these GPUs cost?" as the API and the costs page
//! ask it, and its answer. The arithmetic is in [`crate::usage`].

use serde::{Deserialize, Serialize};

use crate::gpu::CapacityType;
use crate::lenient;
use crate::usage::{AllocationRow, Dimension, Totals};

/// A cost-allocation question, as typed into the page's form or a URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct AllocationQuery {
    /// `24h`, `7d`, `30d`, `today`, `yesterday`, `month`, `lastmonth`, or
    /// `start,end` as RFC 3339 or Unix milliseconds. Default `24h`.
    pub window: String,
    /// Comma-separated: cluster, namespace, team, workload, node, model,
    /// capacity_type. Default `team`.
    pub aggregate: String,
    /// A series step such as `1h` or `1d`; empty for one row per group.
    pub step: String,
    /// Spread each cluster's idle capacity over its teams by their share of
    /// the allocation (like OpenCost's shareIdle); by default idle stays on
    /// the cluster as its own row.
    #[serde(deserialize_with = "lenient::flag")]
    pub share_idle: bool,
}

impl AllocationQuery {
    /// The query as URL parameters, for links and the address bar.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [("window", &self.window), ("aggregate", &self.aggregate), ("step", &self.step)] {
            if !value.is_empty() {
                parts.push(format!("{key}={}", crate::view::encode(value)));
            }
        }
        if self.share_idle {
            parts.push("share_idle=true".into());
        }
        parts.join("&")
    }
}

/// Whether GPU utilisation is known for the rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum UtilisationState {
    /// No cluster in the answer names a Prometheus.
    #[default]
    NotConfigured,
    /// Read from each cluster's Prometheus (DCGM exporter metrics).
    Known,
    /// A configured Prometheus did not answer; the reason says why.
    Unavailable(String),
}

/// GPU time of one model and capacity type that had no price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnpricedTime {
    pub model: String,
    pub capacity_type: CapacityType,
    pub gpu_hours: f64,
}

/// The answer: rows by the asked dimensions (and step), with their totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocationReport {
    /// The window answered, Unix milliseconds [start, end).
    pub start: i64,
    pub end: i64,
    pub aggregate: Vec<Dimension>,
    /// The step of the series in milliseconds; None for one row per group.
    pub step: Option<i64>,
    pub share_idle: bool,
    /// `exact` (from the raw intervals: windows of a day or less) or
    /// `hourly` (from hourly rollups: longer windows start and end on the hour).
    pub resolution: String,
    pub rows: Vec<AllocationRow>,
    pub totals: Totals,
    /// Models and capacity types whose GPU time had no price, with the GPU-hours left out.
    pub unpriced: Vec<UnpricedTime>,
    pub utilisation: UtilisationState,
    /// Idle capacity appears (as its own rows, or shared): global admins
    /// see every cluster's idle; a team sees it only shared into its rows.
    pub idle_shown: bool,
}
