//! Launching, scaling, updating, rolling back, deleting and promoting model
//! deployments; launching and cancelling jobs; the fit preview.

// Server functions take one argument per form field, so their forms also
// work without JavaScript; some forms have more than seven fields.
#![allow(clippy::too_many_arguments)]

use gantry_domain::fit::FitPreview;
use gantry_domain::manifest::{LaunchDeploymentInput, LaunchJobInput};
use gantry_domain::records::Revision;
use gantry_domain::rollout::DiffLine;
use gantry_domain::view::{DeploymentRow, EventRow, PodRow};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    pub deployment: DeploymentRow,
    pub pods: Vec<PodRow>,
    pub events: Vec<EventRow>,
    pub history: Vec<Revision>,
    pub can_change: bool,
    /// The next environment of the owning team's promotion path, if any.
    pub promote_to: Option<String>,
    pub promote_protected: bool,
    pub can_promote: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchChoices {
    /// (cluster, namespace) pairs the caller may deploy into.
    pub namespaces: Vec<(String, String)>,
    /// cluster → GPU models present.
    pub gpu_models: Vec<(String, Vec<String>)>,
    pub replica_cap: i32,
}

#[server(prefix = "/fn", endpoint = "launch_options")]
pub async fn launch_options() -> Result<LaunchChoices, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let state = state()?;
    let namespaces = state.deployable_namespaces(&caller).await.map_err(service)?;
    let mut clusters: Vec<String> = namespaces.iter().map(|(c, _)| c.clone()).collect();
    clusters.dedup();
    let gpu_models = clusters.into_iter().map(|c| (c.clone(), state.gpu_models(&c))).collect();
    Ok(LaunchChoices { namespaces, gpu_models, replica_cap: state.config.replica_cap })
}

#[server(prefix = "/fn", endpoint = "preview_fit")]
pub async fn preview_fit(
    cluster: String,
    namespace: String,
    gpu_model: String,
    gpus: String,
    pods: String,
) -> Result<FitPreview, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let gpus = gpus.trim().parse::<i64>().unwrap_or(0);
    let pods = pods.trim().parse::<i64>().unwrap_or(0);
    state()?.preview_fit(&caller, &cluster, &namespace, Some(gpu_model.as_str()), gpus, pods).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "launch_deployment")]
pub async fn launch_deployment(csrf: String, input: LaunchDeploymentInput) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.launch_deployment(&caller, &input).await.map_err(service)?;
    let path = format!("/clusters/{}/namespaces/{}/deployments/{}", input.cluster, input.namespace, input.name);
    leptos_axum::redirect(&path);
    Ok(path)
}

#[server(prefix = "/fn", endpoint = "launch_job")]
pub async fn launch_job(csrf: String, input: LaunchJobInput) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.launch_job(&caller, &input).await.map_err(service)?;
    let mut path = format!("/clusters/{}/namespaces/{}/jobs/{}", input.cluster, input.namespace, input.name);
    if input.kind == "PyTorchJob" {
        path.push_str("?kind=PyTorchJob");
    }
    leptos_axum::redirect(&path);
    Ok(path)
}

#[server(prefix = "/fn", endpoint = "deployment_page")]
pub async fn deployment_page(cluster: String, namespace: String, name: String) -> Result<DeploymentDetail, AppError> {
    use super::ssr::*;
    use gantry_domain::policy::{Action, may};
    let caller = caller().await?;
    let state = state()?;
    let (deployment, pods, events) = state.deployment(&caller, &cluster, &namespace, &name).await.map_err(service)?;
    let history = match state.deployment_history(&caller, &cluster, &namespace, &name).await {
        Ok(h) => h,
        // History needs the live API; show the rest if the cluster is away.
        Err(e) if e.kind == gantry_service::ErrorKind::Unavailable => Vec::new(),
        Err(e) => return Err(service(e)),
    };
    let can_change = state.may_in(&caller, &cluster, &namespace, Action::ScaleDeployment).await;
    let ownership = state.ownership().await.map_err(service)?;
    let (mut promote_to, mut promote_protected, mut can_promote) = (None, false, false);
    let environments = match ownership.owner(&cluster, &namespace) {
        Some(team) => state.environments(&caller, team).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let here = environments.iter().position(|e| e.cluster == cluster && e.namespace == namespace);
    if let Some(next) = here.and_then(|i| environments.get(i + 1)) {
        promote_to = Some(next.name.clone());
        promote_protected = next.protected;
        let action = if next.protected { Action::PromoteProtected } else { Action::Promote };
        can_promote = may(&caller.principal, action, &ownership.namespace(&next.cluster, &next.namespace)).is_allowed();
    }
    Ok(DeploymentDetail { deployment, pods, events, history, can_change, promote_to, promote_protected, can_promote })
}

#[server(prefix = "/fn", endpoint = "scale_deployment")]
pub async fn scale_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
    replicas: String,
    version: String,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let request = gantry_service::ScaleRequest { replicas, version };
    let (from, to) =
        state()?.scale_deployment(&caller, &cluster, &namespace, &name, &request).await.map_err(service)?;
    Ok(format!("Scaled from {from} to {to} replicas"))
}

#[server(prefix = "/fn", endpoint = "autoscale_deployment")]
pub async fn autoscale_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
    enabled: Option<String>,
    min_replicas: String,
    max_replicas: String,
    target_cpu_percent: String,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let enabled = enabled.is_some_and(|e| e == "true" || e == "on");
    let request = gantry_service::AutoscaleRequest { enabled, min_replicas, max_replicas, target_cpu_percent };
    state()?.autoscale_deployment(&caller, &cluster, &namespace, &name, &request).await.map_err(service)?;
    Ok(if enabled { "Autoscaling saved".into() } else { "Autoscaling removed".into() })
}

#[server(prefix = "/fn", endpoint = "update_deployment")]
pub async fn update_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
    image: String,
    model_version: String,
    max_surge: String,
    max_unavailable: String,
    version: String,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let input =
        gantry_domain::manifest::UpdateDeploymentInput { image, model_version, max_surge, max_unavailable, version };
    state()?.update_deployment(&caller, &cluster, &namespace, &name, &input).await.map_err(service)?;
    Ok("Rolling update started".into())
}

#[server(prefix = "/fn", endpoint = "rollback_deployment")]
pub async fn rollback_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
    to_revision: String,
    version: String,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let request = gantry_service::RollbackRequest { to_revision, version };
    let outcome =
        state()?.rollback_deployment(&caller, &cluster, &namespace, &name, &request).await.map_err(service)?;
    Ok(format!(
        "Rolled back from revision {} to the template of revision {}",
        outcome.from_revision, outcome.restored_revision
    ))
}

#[server(prefix = "/fn", endpoint = "deployment_diff")]
pub async fn deployment_diff(
    cluster: String,
    namespace: String,
    name: String,
    revision: i64,
) -> Result<Vec<DiffLine>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.deployment_diff(&caller, &cluster, &namespace, &name, revision).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "delete_deployment")]
pub async fn delete_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
    confirm: String,
    version: String,
) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let request = gantry_service::DeleteRequest { confirm, version };
    state()?.delete_deployment(&caller, &cluster, &namespace, &name, &request).await.map_err(service)?;
    leptos_axum::redirect("/workloads");
    Ok(())
}

#[server(prefix = "/fn", endpoint = "promote_deployment")]
pub async fn promote_deployment(
    csrf: String,
    cluster: String,
    namespace: String,
    name: String,
) -> Result<String, AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    let outcome = state()?.promote_deployment(&caller, &cluster, &namespace, &name, None).await.map_err(service)?;
    Ok(format!("Promoted {} to {}: {}", outcome.from, outcome.to, outcome.after))
}

#[server(prefix = "/fn", endpoint = "cancel_job")]
pub async fn cancel_job(csrf: String, cluster: String, namespace: String, name: String) -> Result<(), AppError> {
    use super::ssr::*;
    let caller = acting_caller(&csrf).await?;
    state()?.cancel_job(&caller, &cluster, &namespace, &name).await.map_err(service)?;
    leptos_axum::redirect("/jobs");
    Ok(())
}
