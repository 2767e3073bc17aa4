//! Reading the fleet: overview, clusters, nodes, pods, jobs, deployments,
//! pending pods and quotas. Lists are sorted, filtered and paged on the server.

use gantry_domain::view::{
    ClusterSummary, DeploymentRow, EventRow, JobRow, ListQuery, NodeRow, Overview, Page, PendingRow, PodRow, QuotaRow,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterDetail {
    pub cluster: ClusterSummary,
    pub nodes: Page<NodeRow>,
    pub can_manage: bool,
    /// Where its GPU utilisation comes from (shown to those who manage clusters).
    pub prometheus: Option<gantry_domain::view::PrometheusSettings>,
    pub autoscaling: gantry_domain::view::Autoscaling,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDetail {
    pub node: NodeRow,
    pub pods: Vec<PodRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobRow,
    pub pods: Vec<PodRow>,
    pub events: Vec<EventRow>,
    pub can_cancel: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaPage {
    pub quotas: Vec<QuotaRow>,
    /// Namespaces mapped to teams, where a global admin may set a quota.
    pub namespaces: Vec<(String, String, String)>,
    pub can_set: bool,
}

#[server(prefix = "/fn", endpoint = "overview")]
pub async fn fleet_overview() -> Result<Overview, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.overview(&caller).await.map_err(service)
}

/// What the script that started Gantry is still preparing (`--progress-file`), if anything.
#[server(prefix = "/fn", endpoint = "preparation")]
pub async fn preparation() -> Result<Option<gantry_domain::view::Preparation>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.preparation(&caller).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "clusters")]
pub async fn clusters() -> Result<(Vec<ClusterSummary>, bool), AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let list = state()?.clusters(&caller).await.map_err(service)?;
    Ok((list, gantry_domain::policy::capabilities(&caller.principal).manage_clusters))
}

#[server(prefix = "/fn", endpoint = "cluster_page")]
pub async fn cluster_page(name: String, query: ListQuery) -> Result<ClusterDetail, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let state = state()?;
    let cluster = state.cluster_summary(&caller, &name).await.map_err(service)?;
    let can_manage = gantry_domain::policy::capabilities(&caller.principal).manage_clusters;
    let prometheus = if can_manage { state.cluster_prometheus(&caller, &name).await.map_err(service)? } else { None };
    let query = ListQuery { cluster: Some(name), ..query };
    let autoscaling =
        state.autoscaling(&caller, query.cluster.as_deref().unwrap_or_default()).await.map_err(service)?;
    let nodes = state.nodes(&caller, &query).await.map_err(service)?;
    Ok(ClusterDetail {
        autoscaling,
        prometheus,
        cluster,
        nodes,
        can_manage: gantry_domain::policy::capabilities(&caller.principal).manage_clusters,
    })
}

#[server(prefix = "/fn", endpoint = "node_page")]
pub async fn node_page(cluster: String, name: String) -> Result<NodeDetail, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let (node, pods) = state()?.node(&caller, &cluster, &name).await.map_err(service)?;
    Ok(NodeDetail { node, pods })
}

#[server(prefix = "/fn", endpoint = "pods")]
pub async fn pods(query: ListQuery) -> Result<Page<PodRow>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.pods(&caller, &query).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "jobs")]
pub async fn jobs(query: ListQuery) -> Result<Page<JobRow>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.jobs(&caller, &query).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "job_page")]
pub async fn job_page(cluster: String, namespace: String, name: String) -> Result<JobDetail, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let state = state()?;
    let (job, pods, events) = state.job(&caller, &cluster, &namespace, &name).await.map_err(service)?;
    let can_cancel = job.cancellable()
        && state.may_in(&caller, &cluster, &namespace, gantry_domain::policy::Action::CancelJob).await;
    Ok(JobDetail { job, pods, events, can_cancel })
}

#[server(prefix = "/fn", endpoint = "deployments")]
pub async fn deployments(query: ListQuery) -> Result<Page<DeploymentRow>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.deployments(&caller, &query).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "pending")]
pub async fn pending(query: ListQuery) -> Result<Page<PendingRow>, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    state()?.pending(&caller, &query).await.map_err(service)
}

#[server(prefix = "/fn", endpoint = "quotas")]
pub async fn quotas() -> Result<QuotaPage, AppError> {
    use super::ssr::*;
    let caller = caller().await?;
    let state = state()?;
    let quotas = state.quotas(&caller).await.map_err(service)?;
    let namespaces = state
        .namespace_mappings(&caller)
        .await
        .map_err(service)?
        .into_iter()
        .map(|m| (m.cluster, m.namespace, m.team))
        .collect();
    Ok(QuotaPage { quotas, namespaces, can_set: gantry_domain::policy::capabilities(&caller.principal).set_quotas })
}
