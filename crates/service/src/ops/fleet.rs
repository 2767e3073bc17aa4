//! Reading the fleet, registering clusters, and GPU quotas.

use gantry_cluster::kubeconfig::{self, KubeconfigError};
use gantry_cluster::queries;
use gantry_domain::policy::{Action, Target};
use gantry_domain::validate::{Invalid, LabelName};
use gantry_domain::view::{
    ClusterSummary, DeploymentRow, EventRow, JobRow, ListQuery, NodeRow, Overview, Page, PendingRow, PodRow, QuotaRow,
};
use gantry_store::StoredCluster;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

/// Largest kubeconfig upload accepted.
pub const MAX_KUBECONFIG_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisteredCluster {
    pub name: String,
    pub context: String,
    pub version: String,
}

fn kubeconfig_error(error: KubeconfigError) -> ServiceError {
    match error {
        KubeconfigError::Unreachable(..) => ServiceError::invalid(error.to_string()),
        other => ServiceError::from(Invalid::new("kubeconfig", other.to_string())),
    }
}

impl AppState {
    pub async fn overview(&self, caller: &Caller) -> Result<Overview> {
        let viewer = self.viewer(caller).await?;
        let mut overview = queries::overview(&self.hub, &viewer);
        overview.cost = gantry_domain::cost::cost_rate(&overview.gpus_in_use, &self.store.gpu_prices().await?);
        Ok(overview)
    }

    pub async fn clusters(&self, caller: &Caller) -> Result<Vec<ClusterSummary>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::clusters(&self.hub, &viewer))
    }

    pub async fn cluster_summary(&self, caller: &Caller, cluster: &str) -> Result<ClusterSummary> {
        let target = self.ownership().await?.cluster(cluster);
        self.authorize(caller, Action::ViewCluster, &target, &Audit::default()).await?;
        let viewer = self.viewer(caller).await?;
        queries::cluster(&self.hub, &viewer, cluster)
            .ok_or_else(|| ServiceError::not_found(format!("cluster {cluster} is not registered")))
    }

    pub async fn nodes(&self, caller: &Caller, query: &ListQuery) -> Result<Page<NodeRow>> {
        if let Some(cluster) = query.cluster.as_deref().filter(|c| !c.is_empty()) {
            let target = self.ownership().await?.cluster(cluster);
            self.authorize(caller, Action::ViewCluster, &target, &Audit::default()).await?;
        }
        let viewer = self.viewer(caller).await?;
        Ok(queries::nodes(&self.hub, &viewer, query))
    }

    pub async fn node(&self, caller: &Caller, cluster: &str, name: &str) -> Result<(NodeRow, Vec<PodRow>)> {
        let target = self.ownership().await?.cluster(cluster);
        self.authorize(caller, Action::ViewCluster, &target, &Audit::default()).await?;
        let viewer = self.viewer(caller).await?;
        queries::node(&self.hub, &viewer, cluster, name)
            .ok_or_else(|| ServiceError::not_found(format!("node {name} was not found in {cluster}")))
    }

    pub async fn pods(&self, caller: &Caller, query: &ListQuery) -> Result<Page<PodRow>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::pods(&self.hub, &viewer, query))
    }

    pub async fn jobs(&self, caller: &Caller, query: &ListQuery) -> Result<Page<JobRow>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::jobs(&self.hub, &viewer, query))
    }

    pub async fn job(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(JobRow, Vec<PodRow>, Vec<EventRow>)> {
        let target = self.ownership().await?.namespace(cluster, namespace);
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        let viewer = self.viewer(caller).await?;
        queries::job(&self.hub, &viewer, cluster, namespace, name)
            .ok_or_else(|| ServiceError::not_found(format!("job {namespace}/{name} was not found in {cluster}")))
    }

    pub async fn deployments(&self, caller: &Caller, query: &ListQuery) -> Result<Page<DeploymentRow>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::deployments(&self.hub, &viewer, query))
    }

    pub async fn deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(DeploymentRow, Vec<PodRow>, Vec<EventRow>)> {
        let target = self.ownership().await?.namespace(cluster, namespace);
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        let viewer = self.viewer(caller).await?;
        queries::deployment(&self.hub, &viewer, cluster, namespace, name)
            .ok_or_else(|| ServiceError::not_found(format!("deployment {namespace}/{name} was not found in {cluster}")))
    }

    pub async fn pending(&self, caller: &Caller, query: &ListQuery) -> Result<Page<PendingRow>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::pending(&self.hub, &viewer, query))
    }

    pub async fn quotas(&self, caller: &Caller) -> Result<Vec<QuotaRow>> {
        let viewer = self.viewer(caller).await?;
        Ok(queries::quotas(&self.hub, &viewer))
    }

    /// Sets the GPU quota of a team's namespace (global admins): Gantry
    /// creates or updates a ResourceQuota it owns.
    pub async fn set_gpu_quota(&self, caller: &Caller, cluster: &str, namespace: &str, gpus: i64) -> Result<()> {
        let target = self.ownership().await?.namespace(cluster, namespace);
        let audit =
            Audit::namespace("quota.set", &target, format!("resourcequota/{}", gantry_domain::manifest::QUOTA_NAME));
        self.authorize(caller, Action::SetQuota, &target, &audit).await?;
        let mut before = None;
        let result = async {
            LabelName::parse("namespace", namespace)?;
            if !(0..=100_000).contains(&gpus) {
                return Err(Invalid::new("gpus", "must be between 0 and 100000").into());
            }
            let cluster = self.cluster(cluster)?;
            before =
                gantry_cluster::actions::set_gpu_quota(&cluster, namespace, gpus).await?.map(|g| format!("{g} GPUs"));
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some(format!("{gpus} GPUs")))).await;
        result
    }

    /// Lists the contexts of an uploaded kubeconfig, so the admin can pick one.
    pub async fn kubeconfig_contexts(&self, caller: &Caller, text: &str) -> Result<Vec<String>> {
        self.authorize(caller, Action::ManageClusters, &Target::Global, &Audit::default()).await?;
        if text.len() > MAX_KUBECONFIG_BYTES {
            return Err(Invalid::new("kubeconfig", "is larger than 1 MiB").into());
        }
        let config = kubeconfig::parse(text).map_err(kubeconfig_error)?;
        Ok(kubeconfig::context_names(&config))
    }

    /// Registers a cluster from an uploaded kubeconfig and context. The
    /// cluster must answer first; nothing is stored otherwise.
    pub async fn add_cluster(
        &self,
        caller: &Caller,
        name: &str,
        text: &str,
        context: &str,
    ) -> Result<RegisteredCluster> {
        let audit =
            Audit { action: "cluster.add", cluster: Some(name.chars().take(64).collect()), ..Default::default() };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let result = async {
            let name = LabelName::parse("name", name)?;
            if text.len() > MAX_KUBECONFIG_BYTES {
                return Err(Invalid::new("kubeconfig", "is larger than 1 MiB").into());
            }
            if self.hub.cluster(name.as_str()).is_some() {
                return Err(ServiceError::conflict(format!("a cluster named {name} is already registered")));
            }
            let config = kubeconfig::parse(text).map_err(kubeconfig_error)?;
            kubeconfig::check_self_contained(&config, context).map_err(kubeconfig_error)?;
            let (client, _) = kubeconfig::client_for(&config, context).await.map_err(kubeconfig_error)?;
            let version = kubeconfig::probe(&client, context).await.map_err(kubeconfig_error)?;
            let single = single_context(text, context)?;
            self.store
                .put_cluster(
                    &StoredCluster {
                        name: name.to_string(),
                        source: "upload".into(),
                        context: Some(context.to_string()),
                        sealed_credentials: self.sealer.seal(single.as_bytes()),
                        created_at: 0,
                    },
                    false,
                )
                .await?;
            self.hub.connect(name.as_str(), client);
            Ok(RegisteredCluster { name: name.to_string(), context: context.to_string(), version })
        }
        .await;
        let after = result.as_ref().ok().map(|r| format!("context {} ({})", r.context, r.version));
        self.record(caller, &audit, &result, (None, after)).await;
        result
    }

    pub async fn remove_cluster(&self, caller: &Caller, name: &str) -> Result<()> {
        let audit =
            Audit { action: "cluster.remove", cluster: Some(name.chars().take(64).collect()), ..Default::default() };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let result = async {
            let stored = self.store.delete_cluster(name).await;
            let connected = self.hub.disconnect(name);
            match stored {
                Ok(()) => Ok(()),
                Err(gantry_store::Error::NotFound) if connected => Ok(()),
                Err(gantry_store::Error::NotFound) => {
                    Err(ServiceError::not_found(format!("cluster {name} is not registered")))
                }
                Err(other) => Err(other.into()),
            }
        }
        .await;
        self.record(caller, &audit, &result, (None, Some("removed".into()))).await;
        result
    }

    /// Connects every cluster stored in the database (at start-up).
    pub async fn connect_stored_clusters(&self) -> Result<usize> {
        let mut connected = 0;
        for stored in self.store.clusters().await? {
            let text = match self.sealer.open(&stored.sealed_credentials) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).to_string(),
                Err(e) => {
                    tracing::error!(cluster = %stored.name, "cannot decrypt the stored credentials ({e}); is GANTRY_SECRET_KEY the one used to store them?");
                    continue;
                }
            };
            let context = stored.context.clone().unwrap_or_default();
            match kubeconfig::parse(&text) {
                Ok(config) => match kubeconfig::client_for(&config, &context).await {
                    Ok((client, _)) => {
                        self.hub.connect(&stored.name, client);
                        connected += 1;
                    }
                    Err(e) => tracing::error!(cluster = %stored.name, "cannot connect: {e}"),
                },
                Err(e) => tracing::error!(cluster = %stored.name, "stored kubeconfig is invalid: {e}"),
            }
        }
        Ok(connected)
    }
}

/// Keeps only the chosen context (and its cluster and user) of a kubeconfig,
/// so other credentials in the upload are never stored.
fn single_context(text: &str, context: &str) -> Result<String> {
    let mut config = kubeconfig::parse(text).map_err(kubeconfig_error)?;
    let ctx = config.contexts.iter().find(|c| c.name == context).cloned().ok_or_else(|| {
        kubeconfig_error(KubeconfigError::UnknownContext(
            context.to_string(),
            kubeconfig::context_names(&config).join(", "),
        ))
    })?;
    let cluster_name = ctx.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let user_name = ctx.context.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    config.contexts = vec![ctx];
    config.clusters.retain(|c| c.name == cluster_name);
    config.auth_infos.retain(|u| u.name == user_name);
    config.current_context = Some(context.to_string());
    serde_yaml::to_string(&config).map_err(ServiceError::internal)
}

impl AppState {
    /// Registers every context of an operator's kubeconfig file (the
    /// `--kubeconfig` flag). These are not copied into the database: their
    /// credentials stay in the operator's file.
    pub async fn connect_kubeconfig_file(&self, path: &std::path::Path) -> std::result::Result<Vec<String>, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--kubeconfig: cannot read {}: {e}", path.display()))?;
        let config = kubeconfig::parse(&text).map_err(|e| format!("--kubeconfig: {}: {e}", path.display()))?;
        let mut names = Vec::new();
        for context in kubeconfig::context_names(&config) {
            match kubeconfig::client_for(&config, &context).await {
                Ok((client, _)) => {
                    self.hub.connect(&context, client);
                    names.push(context);
                }
                Err(e) => return Err(format!("--kubeconfig: {}: {e}", path.display())),
            }
        }
        Ok(names)
    }

    /// Inside a pod, registers the cluster Gantry runs in.
    pub async fn connect_in_cluster(&self, name: &str) -> std::result::Result<(), String> {
        let config = kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?;
        let client = kube::Client::try_from(config).map_err(|e| format!("in-cluster client: {e}"))?;
        self.hub.connect(name, client);
        Ok(())
    }
}
