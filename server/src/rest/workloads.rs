//! Deployments and jobs over REST, for CI/CD: launch, scale, update, roll
//! back, history, diff, promote, delete; launch and cancel jobs.

use axum::Json;
use axum::extract::State;
use gantry_domain::fit::FitPreview;
use gantry_domain::manifest::{LaunchDeploymentInput, LaunchJobInput, UpdateDeploymentInput};
use gantry_domain::records::Revision;
use gantry_domain::rollout::DiffLine;
use gantry_domain::view::{DeploymentRow, EventRow, JobRow, PodRow};
use gantry_service::{AutoscaleRequest, DeleteRequest, RollbackRequest, ScaleRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::Done;
use super::{ApiCaller, ApiError, ApiResult, Body, Path, Query};
use crate::web::WebState;

type Place = Path<(String, String)>;
type Object = Path<(String, String, String)>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewRequest {
    pub cluster: String,
    pub namespace: String,
    pub gpu_model: Option<String>,
    pub gpus_per_pod: i64,
    pub pods: i64,
}

/// Would this many pods of this many GPUs fit right now?
#[utoipa::path(post, path = "/api/v1/preview", request_body = PreviewRequest, responses((status = 200, body = FitPreview)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn preview(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Body(r): Body<PreviewRequest>,
) -> ApiResult<FitPreview> {
    Ok(Json(
        web.app.preview_fit(&caller, &r.cluster, &r.namespace, r.gpu_model.as_deref(), r.gpus_per_pod, r.pods).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Launched {
    pub objects: Vec<String>,
    pub preview: FitPreview,
}

/// Creates a Deployment, its Service and (optionally) an autoscaler, with
/// server-side apply (field manager `gantry`). The body's cluster and
/// namespace come from the path.
#[utoipa::path(post, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision")), request_body = LaunchDeploymentInput,
    responses((status = 200, body = Launched), (status = 409, body = gantry_domain::error::ErrorBody), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn launch(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace)): Place,
    Body(input): Body<LaunchDeploymentInput>,
) -> ApiResult<Launched> {
    let input = LaunchDeploymentInput { cluster: cluster.clone(), namespace: namespace.clone(), ..input };
    let gpus = input.gpus.trim().parse::<i64>().unwrap_or(0);
    let replicas = input.replicas.trim().parse::<i64>().unwrap_or(1);
    let preview = web
        .app
        .preview_fit(&caller, &cluster, &namespace, Some(input.gpu_model.as_str()), gpus, replicas)
        .await
        .unwrap_or_else(|_| gantry_domain::fit::preview(&[], None, 0, 0));
    let objects = web.app.launch_deployment(&caller, &input).await?;
    Ok(Json(Launched { objects, preview }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentOut {
    pub deployment: DeploymentRow,
    pub pods: Vec<PodRow>,
    pub events: Vec<EventRow>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), responses((status = 200, body = DeploymentOut)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn get_deployment(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
) -> ApiResult<DeploymentOut> {
    let (deployment, pods, events) = web.app.deployment(&caller, &cluster, &namespace, &name).await?;
    Ok(Json(DeploymentOut { deployment, pods, events }))
}

/// Changes image, model version or surge settings (a rolling update).
/// Send `version` (the deployment's generation, as GET returns it) to refuse
/// the change if someone else changed the deployment since you read it.
#[utoipa::path(patch, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), request_body = UpdateDeploymentInput,
    responses((status = 200, body = Done), (status = 409, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn update(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Body(input): Body<UpdateDeploymentInput>,
) -> ApiResult<Done> {
    web.app.update_deployment(&caller, &cluster, &namespace, &name, &input).await?;
    Ok(Json(Done { ok: true, message: Some("rolling update started".into()) }))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve"), DeleteRequest), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn delete_deployment(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Query(request): Query<DeleteRequest>,
) -> ApiResult<Done> {
    web.app.delete_deployment(&caller, &cluster, &namespace, &name, &request).await?;
    Ok(Json(Done { ok: true, message: None }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Scaled {
    pub from: i32,
    pub to: i32,
}

/// Sets the replica count through the scale subresource.
#[utoipa::path(put, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), request_body = ScaleRequest,
    responses((status = 200, body = Scaled), (status = 409, body = gantry_domain::error::ErrorBody), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn scale(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Body(request): Body<ScaleRequest>,
) -> ApiResult<Scaled> {
    let (from, to) = web.app.scale_deployment(&caller, &cluster, &namespace, &name, &request).await?;
    Ok(Json(Scaled { from, to }))
}

#[utoipa::path(put, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/autoscale",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), request_body = AutoscaleRequest, responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn autoscale(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Body(request): Body<AutoscaleRequest>,
) -> ApiResult<Done> {
    web.app.autoscale_deployment(&caller, &cluster, &namespace, &name, &request).await?;
    Ok(Json(Done { ok: true, message: None }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolledBack {
    pub from_revision: i64,
    pub restored_revision: i64,
}

/// `kubectl rollout undo` semantics: the chosen revision's pod template is
/// copied into the Deployment, which becomes the next revision.
#[utoipa::path(post, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/rollback",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), request_body = RollbackRequest,
    responses((status = 200, body = RolledBack), (status = 404, body = gantry_domain::error::ErrorBody), (status = 409, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn rollback(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Body(request): Body<RollbackRequest>,
) -> ApiResult<RolledBack> {
    let outcome = web.app.rollback_deployment(&caller, &cluster, &namespace, &name, &request).await?;
    Ok(Json(RolledBack { from_revision: outcome.from_revision, restored_revision: outcome.restored_revision }))
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/history",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), responses((status = 200, body = Vec<Revision>)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn history(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
) -> ApiResult<Vec<Revision>> {
    Ok(Json(web.app.deployment_history(&caller, &cluster, &namespace, &name).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The revision to compare with the current template.
    pub revision: String,
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/diff",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve"), DiffParams), responses((status = 200, body = Vec<DiffLine>)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn diff(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    Query(p): Query<DiffParams>,
) -> ApiResult<Vec<DiffLine>> {
    let revision = gantry_domain::lenient::int("revision", &p.revision)?
        .ok_or_else(|| ApiError::from(gantry_domain::validate::Invalid::new("revision", "is required")))?;
    Ok(Json(web.app.deployment_diff(&caller, &cluster, &namespace, &name, revision).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PromoteRequest {
    /// The environment to promote into; by default the next one after this deployment's.
    pub to_environment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Promoted {
    pub from: String,
    pub to: String,
    pub before: Option<String>,
    pub after: String,
}

#[utoipa::path(post, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/promote",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "detector-serve")), request_body = PromoteRequest, responses((status = 200, body = Promoted)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn promote(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
    body: axum::body::Bytes,
) -> ApiResult<Promoted> {
    // The body is optional: an empty one promotes to the next environment.
    let request: PromoteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PromoteRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError(gantry_service::WireError::invalid(format!("the request body is not valid: {e}"))))?
    };
    let to = request.to_environment;
    let outcome = web.app.promote_deployment(&caller, &cluster, &namespace, &name, to.as_deref()).await?;
    Ok(Json(Promoted { from: outcome.from, to: outcome.to, before: outcome.before, after: outcome.after }))
}

#[utoipa::path(post, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/jobs",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision")), request_body = LaunchJobInput,
    responses((status = 200, body = Done), (status = 409, body = gantry_domain::error::ErrorBody), (status = 422, body = gantry_domain::error::ErrorBody)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn launch_job(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace)): Place,
    Body(input): Body<LaunchJobInput>,
) -> ApiResult<Done> {
    let input = LaunchJobInput { cluster, namespace, ..input };
    web.app.launch_job(&caller, &input).await?;
    Ok(Json(Done { ok: true, message: None }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub job: JobRow,
    pub pods: Vec<PodRow>,
    pub events: Vec<EventRow>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/jobs/{name}",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "train-vit")), responses((status = 200, body = JobOut)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn get_job(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
) -> ApiResult<JobOut> {
    let (job, pods, events) = web.app.job(&caller, &cluster, &namespace, &name).await?;
    Ok(Json(JobOut { job, pods, events }))
}

/// Cancels a job: deletes it with foreground propagation, so its pods go too.
#[utoipa::path(delete, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/jobs/{name}",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("name" = String, Path, example = "train-vit")), responses((status = 200, body = Done)), extensions(("x-gantry-access" = json!("team:deployer"))))]
pub async fn cancel_job(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, name)): Object,
) -> ApiResult<Done> {
    web.app.cancel_job(&caller, &cluster, &namespace, &name).await?;
    Ok(Json(Done { ok: true, message: None }))
}
