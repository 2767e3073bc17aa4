//! Reading the fleet, registering clusters, and GPU quotas.

use gantry_cluster::kubeconfig::{self, KubeconfigError};
use gantry_cluster::queries;
use gantry_domain::policy::{Action, Target};
use gantry_domain::validate::{Invalid, KubeName, LabelName};
use gantry_domain::view::{
    Autoscaling, ClusterSummary, DeploymentRow, EventRow, JobRow, ListQuery, NodeRow, Overview, Page, PendingRow,
    PodRow, PrometheusSettings, QuotaRow,
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
        overview.unhealthy = queries::unhealthy(&self.hub, &viewer, gantry_store::now_ms());
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

    /// The cluster's node pools, the nodes its autoscaler is making or
    /// removing, and the autoscaler's recent events.
    pub async fn autoscaling(&self, caller: &Caller, cluster: &str) -> Result<Autoscaling> {
        let target = self.ownership().await?.cluster(cluster);
        self.authorize(caller, Action::ViewCluster, &target, &Audit::default()).await?;
        let viewer = self.viewer(caller).await?;
        queries::autoscaling(&self.hub, &viewer, cluster)
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
        KubeName::parse("node", name)?;
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
        let mut page = queries::jobs(&self.hub, &viewer, query);
        self.add_costs_so_far(caller, &mut page.items).await;
        Ok(page)
    }

    /// Each job's cost since it started, from the allocation ledger: one
    /// question for the page, from the earliest start among its jobs (at most
    /// the ledger's 30 days). A job whose GPU time has no price, or a ledger
    /// that cannot answer, leaves its cost unknown rather than failing the list.
    async fn add_costs_so_far(&self, caller: &Caller, jobs: &mut [JobRow]) {
        let now = gantry_store::now_ms();
        let Some(start) = jobs.iter().filter_map(|j| j.started).min() else { return };
        let query = gantry_domain::allocation::AllocationQuery {
            window: format!("{},{now}", start.max(now - 30 * gantry_domain::usage::MS_PER_DAY)),
            aggregate: "cluster,namespace,workload".into(),
            limit: "10000".into(),
            ..Default::default()
        };
        let report = match self.allocation(caller, &query).await {
            Ok(report) => report,
            Err(error) => {
                tracing::debug!("no costs for the jobs list: {error}");
                return;
            }
        };
        for job in jobs.iter_mut().filter(|j| j.started.is_some()) {
            let workload = format!("{}/{}", job.kind, job.name);
            job.cost_so_far = report
                .rows
                .iter()
                .find(|r| {
                    r.cluster.as_deref() == Some(job.cluster.as_str())
                        && r.namespace.as_deref() == Some(job.namespace.as_str())
                        && r.workload.as_deref() == Some(workload.as_str())
                })
                .filter(|r| r.totals.cost > gantry_domain::cost::Usd::default() || r.totals.unpriced_gpu_hours == 0.0)
                .map(|r| r.totals.cost);
        }
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
        LabelName::parse("namespace", namespace)?;
        KubeName::parse("name", name)?;
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
        LabelName::parse("namespace", namespace)?;
        KubeName::parse("name", name)?;
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
            let namespace = LabelName::parse("namespace", namespace)?;
            if !(0..=100_000).contains(&gpus) {
                return Err(Invalid::new("gpus", "must be between 0 and 100000").into());
            }
            let cluster = self.cluster(cluster)?;
            before =
                gantry_cluster::actions::set_gpu_quota(&cluster, &namespace, gpus).await?.map(|g| format!("{g} GPUs"));
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some(format!("{gpus} GPUs")))).await?;
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
    /// cluster must answer first; nothing is stored otherwise. A context that
    /// turns off TLS verification or goes through a proxy is registered only
    /// when the admin accepts those risks, which the audit log then names.
    pub async fn add_cluster(
        &self,
        caller: &Caller,
        name: &str,
        text: &str,
        context: &str,
        accept_risks: bool,
    ) -> Result<RegisteredCluster> {
        let audit =
            Audit { action: "cluster.add", cluster: Some(name.chars().take(64).collect()), ..Default::default() };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let mut accepted = Vec::new();
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
            let risks = kubeconfig::risks(&config, context);
            if !risks.is_empty() && !accept_risks {
                return Err(Invalid::new(
                    "accept_risks",
                    format!("this context is risky: {}. Accept the risks to register it anyway", risks.join("; ")),
                )
                .into());
            }
            accepted = risks;
            let client_config = kubeconfig::config_for(&config, context).await.map_err(kubeconfig_error)?;
            let version = kubeconfig::probe(&client_config, context).await.map_err(kubeconfig_error)?;
            let single = kubeconfig::single_context(text, context).map_err(kubeconfig_error)?;
            let sealed = self.sealer.seal(single.as_bytes());
            let mut known = self.stored_clusters.lock().await;
            self.store
                .put_cluster(
                    &StoredCluster {
                        name: name.to_string(),
                        source: "upload".into(),
                        context: Some(context.to_string()),
                        sealed_credentials: sealed.clone(),
                        created_at: 0,
                    },
                    false,
                )
                .await?;
            known.insert(name.to_string(), sealed);
            self.hub.connect(name.as_str(), client_config).map_err(ServiceError::internal)?;
            Ok(RegisteredCluster { name: name.to_string(), context: context.to_string(), version })
        }
        .await;
        let after = result.as_ref().ok().map(|r| {
            let risks =
                if accepted.is_empty() { String::new() } else { format!("; risks accepted: {}", accepted.join("; ")) };
            format!("context {} ({}){risks}", r.context, r.version)
        });
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    pub async fn remove_cluster(&self, caller: &Caller, name: &str) -> Result<()> {
        let audit =
            Audit { action: "cluster.remove", cluster: Some(name.chars().take(64).collect()), ..Default::default() };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let result = async {
            let mut known = self.stored_clusters.lock().await;
            let stored = self.store.delete_cluster(name).await;
            known.remove(name);
            let connected = self.hub.disconnect(name);
            match stored {
                Ok(()) => Ok(()),
                Err(gantry_store::Error::NotFound) if connected => Ok(self.store.forget_cluster(name).await?),
                Err(gantry_store::Error::NotFound) => {
                    Err(ServiceError::not_found(format!("cluster {name} is not registered")))
                }
                Err(other) => Err(other.into()),
            }
        }
        .await;
        self.record(caller, &audit, &result, (None, Some("removed".into()))).await?;
        result
    }

    /// Makes this replica watch exactly the clusters stored in the database:
    /// connects those it does not watch yet (or whose stored credentials
    /// changed), and disconnects those it connected from the database that
    /// are gone from it. At start-up, then every few seconds
    /// ([`follow_stored_clusters`](Self::follow_stored_clusters)), so a
    /// cluster registered or removed through one replica is watched or dropped
    /// by all. A cluster of the same name from a kubeconfig file or the pod's
    /// own service account is left as it is. How many it connected.
    pub async fn sync_stored_clusters(&self) -> Result<usize> {
        let mut known = self.stored_clusters.lock().await;
        let stored = self.store.clusters().await?;
        let gone: Vec<String> = known.keys().filter(|name| !stored.iter().any(|c| &c.name == *name)).cloned().collect();
        for name in gone {
            known.remove(&name);
            if self.hub.disconnect(&name) {
                tracing::info!(cluster = %name, "no longer registered: stopped watching it");
            }
        }
        let mut connected = 0;
        for cluster in stored {
            let watched_here = self.hub.cluster(&cluster.name).is_some();
            match known.get(&cluster.name) {
                Some(sealed) if *sealed == cluster.sealed_credentials => continue,
                None if watched_here => continue,
                _ => {}
            }
            // Tried once per stored version, so a bad one is logged once, not every few seconds.
            known.insert(cluster.name.clone(), cluster.sealed_credentials.clone());
            match self.connect_stored(&cluster).await {
                Ok(()) => connected += 1,
                Err(e) => tracing::error!(cluster = %cluster.name, "{e}"),
            }
        }
        Ok(connected)
    }

    async fn connect_stored(&self, stored: &StoredCluster) -> std::result::Result<(), String> {
        let bytes = self.sealer.open(&stored.sealed_credentials).map_err(|e| {
            format!("cannot decrypt the stored credentials ({e}); is GANTRY_SECRET_KEY the one used to store them?")
        })?;
        let config = kubeconfig::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| format!("the stored kubeconfig is invalid: {e}"))?;
        let context = stored.context.clone().unwrap_or_default();
        let client_config =
            kubeconfig::config_for(&config, &context).await.map_err(|e| format!("cannot connect: {e}"))?;
        self.hub.connect(&stored.name, client_config).map_err(|e| format!("cannot connect: {e}"))?;
        Ok(())
    }

    /// [`sync_stored_clusters`](Self::sync_stored_clusters) every few seconds until `stopped`.
    pub async fn follow_stored_clusters(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
            if let Err(e) = self.sync_stored_clusters().await {
                tracing::warn!("could not read the registered clusters: {}", e.message);
            }
        }
    }
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
            let client_config = kubeconfig::config_for(&config, &context)
                .await
                .map_err(|e| format!("--kubeconfig: {}: {e}", path.display()))?;
            self.hub.connect(&context, client_config).map_err(|e| format!("--kubeconfig: {}: {e}", path.display()))?;
            names.push(context);
        }
        Ok(names)
    }

    /// Like [`Self::connect_kubeconfig_file`], for a kubeconfig that is not
    /// there yet (a fleet still starting, as in the demo): looks every
    /// second until it exists and reads whole, then connects its clusters,
    /// which appear on open pages like any new cluster. Ends at `shutdown`.
    pub async fn connect_kubeconfig_file_when_ready(
        &self,
        path: &std::path::Path,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_problem = String::new();
        loop {
            if path.exists() {
                match self.connect_kubeconfig_file(path).await {
                    Ok(names) => {
                        tracing::info!(
                            "watching {} cluster(s) from {}: {}",
                            names.len(),
                            path.display(),
                            names.join(", ")
                        );
                        return;
                    }
                    // Possibly half-written still: say so once, and look again.
                    Err(problem) if problem != last_problem => {
                        tracing::info!("{problem} (trying again)");
                        last_problem = problem;
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Inside a pod, registers the cluster Gantry runs in, unless a cluster
    /// of that name is registered already. Returns whether it connected.
    pub async fn connect_in_cluster(&self, name: &str) -> std::result::Result<bool, String> {
        if self.hub.cluster(name).is_some() {
            return Ok(false);
        }
        let config = kubeconfig::in_cluster()?;
        self.hub.connect(name, config).map_err(|e| format!("in-cluster client: {e}"))?;
        Ok(true)
    }
}

impl AppState {
    /// Where a cluster's GPU utilisation comes from (global admins set it).
    /// The Prometheus must answer first; with `save_anyway`, one that does
    /// not is saved too (the answer says why it did not). The token is
    /// sealed at rest like cluster credentials.
    pub async fn set_cluster_prometheus(
        &self,
        caller: &Caller,
        cluster: &str,
        url: &str,
        token: Option<&str>,
        save_anyway: bool,
    ) -> Result<PrometheusSettings> {
        let audit = Audit {
            action: "cluster.prometheus.set",
            cluster: Some(cluster.chars().take(64).collect()),
            object: Some(format!("cluster/{}/prometheus", cluster.chars().take(64).collect::<String>())),
            ..Default::default()
        };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let mut after = None;
        let result = async {
            self.cluster(cluster)?;
            let token = token.map(str::trim).filter(|t| !t.is_empty());
            let client = gantry_prometheus::Client::new(url.trim(), token.map(str::to_string))
                .map_err(|e| ServiceError::from(Invalid::new("url", e.to_string())))?;
            let problem = client.probe().await.err().map(|e| e.to_string());
            if let (Some(problem), false) = (&problem, save_anyway) {
                return Err(Invalid::new(
                    "url",
                    format!("{problem}. Check the address, or save it anyway to have Gantry keep trying"),
                )
                .into());
            }
            let settings = gantry_store::ClusterPrometheus {
                cluster: cluster.to_string(),
                url: url.trim().to_string(),
                sealed_token: token.map(|t| self.sealer.seal(t.as_bytes())),
                updated_at: gantry_store::now_ms(),
            };
            self.store.set_cluster_prometheus(&settings).await?;
            self.note_prometheus(cluster, problem.clone());
            after = Some(format!("{}{}", settings.url, if problem.is_some() { " (not answering yet)" } else { "" }));
            Ok(PrometheusSettings { url: settings.url, has_token: token.is_some(), problem })
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    pub async fn remove_cluster_prometheus(&self, caller: &Caller, cluster: &str) -> Result<()> {
        let audit = Audit {
            action: "cluster.prometheus.remove",
            cluster: Some(cluster.chars().take(64).collect()),
            ..Default::default()
        };
        self.authorize(caller, Action::ManageClusters, &Target::Global, &audit).await?;
        let result = async {
            if !self.store.delete_cluster_prometheus(cluster).await? {
                return Err(ServiceError::not_found(format!("cluster {cluster} names no Prometheus")));
            }
            self.note_prometheus(cluster, None);
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (None, Some("utilisation not configured".into()))).await?;
        result
    }

    /// A cluster's Prometheus settings, for those who manage clusters.
    pub async fn cluster_prometheus(&self, caller: &Caller, cluster: &str) -> Result<Option<PrometheusSettings>> {
        self.authorize(caller, Action::ManageClusters, &Target::Global, &Audit::default()).await?;
        Ok(self.store.cluster_prometheus(cluster).await?.map(|p| PrometheusSettings {
            problem: self.prometheus_problem(cluster),
            url: p.url,
            has_token: p.sealed_token.is_some(),
        }))
    }

    /// The client for a cluster's Prometheus, if it names one.
    pub(crate) async fn prometheus_client(&self, cluster: &str) -> Result<Option<gantry_prometheus::Client>> {
        let Some(settings) = self.store.cluster_prometheus(cluster).await? else { return Ok(None) };
        let token = match &settings.sealed_token {
            Some(sealed) => Some(
                String::from_utf8(self.sealer.open(sealed).map_err(ServiceError::internal)?)
                    .map_err(ServiceError::internal)?,
            ),
            None => None,
        };
        Ok(gantry_prometheus::Client::new(&settings.url, token).ok())
    }
}
