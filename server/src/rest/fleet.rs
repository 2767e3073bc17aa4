//! The fleet as JSON: overview, clusters, nodes, pods, jobs, deployments,
//! pending pods and quotas. Lists take the same query parameters as the UI.

use axum::Json;
use axum::extract::State;
use gantry_domain::view::{
    Autoscaling, ClusterSummary, DeploymentRow, JobRow, ListQuery, NodeRow, Overview, Page, PendingRow, PodRow,
    QuotaRow,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Done;
use super::{ApiCaller, ApiResult, Body, Path, Query};
use crate::web::WebState;

#[utoipa::path(get, path = "/api/v1/overview", responses((status = 200, body = Overview), (status = 401, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn overview(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Overview> {
    Ok(Json(web.app.overview(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters", responses((status = 200, body = Vec<ClusterSummary>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn clusters(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<ClusterSummary>> {
    Ok(Json(web.app.clusters(&caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCluster {
    /// The name Gantry shows.
    pub name: String,
    /// The kubeconfig text (at most 1 MiB; credentials embedded).
    pub kubeconfig: String,
    /// Which of its contexts to use.
    pub context: String,
    /// Register it even though the context turns off TLS verification or
    /// goes through a proxy (the refusal names which).
    #[serde(default)]
    pub accept_risks: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterAdded {
    pub name: String,
    pub context: String,
    pub version: String,
}

#[utoipa::path(post, path = "/api/v1/clusters", request_body = NewCluster, responses((status = 200, body = ClusterAdded), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn add_cluster(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(new): Body<NewCluster>,
) -> ApiResult<ClusterAdded> {
    let added = web.app.add_cluster(&caller, &new.name, &new.kubeconfig, &new.context, new.accept_risks).await?;
    Ok(Json(ClusterAdded { name: added.name, context: added.context, version: added.version }))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}", params(("cluster" = String, Path, example = "prod")), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn remove_cluster(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
) -> ApiResult<Done> {
    web.app.remove_cluster(&caller, &cluster).await?;
    Ok(Json(Done { ok: true, message: None }))
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/nodes", params(("cluster" = String, Path, example = "prod"), ListQuery), responses((status = 200, body = Page<NodeRow>)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn nodes(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
    Query(params): Query<ListQuery>,
) -> ApiResult<Page<NodeRow>> {
    let query = ListQuery { cluster: Some(cluster), ..params };
    Ok(Json(web.app.nodes(&caller, &query).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/autoscaling", params(("cluster" = String, Path, example = "prod")), responses((status = 200, body = Autoscaling)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn autoscaling(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path(cluster): Path<String>,
) -> ApiResult<Autoscaling> {
    Ok(Json(web.app.autoscaling(&caller, &cluster).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeOut {
    pub node: NodeRow,
    pub pods: Vec<PodRow>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/nodes/{node}", params(("cluster" = String, Path, example = "prod"), ("node" = String, Path, example = "prod-l4-0")), responses((status = 200, body = NodeOut)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn node(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, node)): Path<(String, String)>,
) -> ApiResult<NodeOut> {
    let (node, pods) = web.app.node(&caller, &cluster, &node).await?;
    Ok(Json(NodeOut { node, pods }))
}

#[utoipa::path(get, path = "/api/v1/pods", params(ListQuery), responses((status = 200, body = Page<PodRow>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn pods(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<ListQuery>,
) -> ApiResult<Page<PodRow>> {
    Ok(Json(web.app.pods(&caller, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs", params(ListQuery), responses((status = 200, body = Page<JobRow>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn jobs(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<ListQuery>,
) -> ApiResult<Page<JobRow>> {
    Ok(Json(web.app.jobs(&caller, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/deployments", params(ListQuery), responses((status = 200, body = Page<DeploymentRow>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn deployments(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<ListQuery>,
) -> ApiResult<Page<DeploymentRow>> {
    Ok(Json(web.app.deployments(&caller, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/pending", params(ListQuery), responses((status = 200, body = Page<PendingRow>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn pending(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Query(params): Query<ListQuery>,
) -> ApiResult<Page<PendingRow>> {
    Ok(Json(web.app.pending(&caller, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/quotas", responses((status = 200, body = Vec<QuotaRow>)), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn quotas(State(web): State<WebState>, ApiCaller(caller): ApiCaller) -> ApiResult<Vec<QuotaRow>> {
    Ok(Json(web.app.quotas(&caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct QuotaRequest {
    /// Hard limit of `requests.nvidia.com/gpu` in the namespace.
    pub gpus: i64,
}

#[utoipa::path(put, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/quota", params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision")), request_body = QuotaRequest, responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("admin"))))]
pub async fn set_quota(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace)): Path<(String, String)>,
    Body(request): Body<QuotaRequest>,
) -> ApiResult<Done> {
    web.app.set_gpu_quota(&caller, &cluster, &namespace, request.gpus).await?;
    Ok(Json(Done { ok: true, message: None }))
}
