//! Requests to change a running deployment, as both the REST API (JSON) and
//! the dashboard's forms send them. Values stay text until the service
//! validates them (see [`crate::lenient`]), so a bad value becomes a field
//! error naming the field; the OpenAPI schema documents the numbers they
//! stand for.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// Set the number of replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ScaleRequest {
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub replicas: String,
    /// The deployment's generation you saw (GET returns it); a stale one is
    /// refused with 409. Empty: act on whatever is current.
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub version: String,
}

/// Turn the deployment's autoscaler on (with its bounds) or off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct AutoscaleRequest {
    /// false removes the autoscaler.
    #[serde(deserialize_with = "lenient::flag")]
    pub enabled: bool,
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub min_replicas: String,
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub max_replicas: String,
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub target_cpu_percent: String,
}

/// Restore an earlier revision's pod template (`kubectl rollout undo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RollbackRequest {
    /// The revision to restore; empty or 0 means the previous one.
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub to_revision: String,
    /// The deployment's generation you saw; a stale one is refused with 409.
    #[serde(deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub version: String,
}

/// Delete a deployment (and the Service and autoscaler Gantry made with it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default)]
pub struct DeleteRequest {
    /// Must repeat the deployment's name: the typed confirmation.
    pub confirm: String,
    /// The generation you saw; refused as a conflict if it moved.
    #[serde(deserialize_with = "lenient::text")]
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_arrive_as_numbers_or_text() {
        let from_json: ScaleRequest = serde_json::from_str(r#"{"replicas": 3, "version": 7}"#).unwrap();
        let from_text: ScaleRequest = serde_json::from_str(r#"{"replicas": "3", "version": "7"}"#).unwrap();
        assert_eq!(from_json, from_text);
        assert_eq!(from_json.replicas, "3");
        let off: AutoscaleRequest = serde_json::from_str(r#"{"enabled": "off"}"#).unwrap();
        assert!(!off.enabled && off.min_replicas.is_empty());
        let previous: RollbackRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(previous, RollbackRequest::default());
    }
}
