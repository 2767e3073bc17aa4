//! The shared state every request works with, and the callers it serves.

use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::{Hub, Viewer};
use gantry_domain::policy::{Action, Decision, Ownership, Principal, Target, Visibility, may};
use gantry_store::{AuditEntry, AuditResult, Store, now_ms};

use crate::error::{Result, ServiceError};
use crate::passwords::HashLimit;
use crate::secrets::Sealer;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Largest replica count (or HPA maximum) a user may ask for.
    pub replica_cap: i32,
    /// Largest job parallelism.
    pub pod_cap: i32,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Mark cookies Secure and send HSTS (Gantry is behind https).
    pub secure_cookies: bool,
    /// Log streaming bounds.
    pub log_tail_lines: i64,
    pub log_limit_bytes: i64,
    /// Sign-in throttling per account and per source address.
    pub throttle_account: gantry_domain::throttle::ThrottleRules,
    pub throttle_address: gantry_domain::throttle::ThrottleRules,
    /// Password checks at once, and waiting; None sizes them to the machine.
    pub password_checks: Option<(usize, usize)>,
    /// How long the ledger's raw intervals are kept (35 days by default).
    pub raw_retention_ms: i64,
    /// How long hourly and daily rollups are kept (400 days by default).
    pub rollup_retention_ms: i64,
    /// GPU time under this utilisation counts as wasted.
    pub waste_threshold_percent: f64,
    /// A file where the script that started Gantry writes what it is still
    /// preparing (`scripts/run.sh`); shown on the overview and clusters pages.
    pub progress_file: Option<std::path::PathBuf>,
    /// False: with single sign-on on, only global admins may sign in with a
    /// password (break-glass); everyone else goes through the provider.
    pub local_passwords: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            replica_cap: 100,
            pod_cap: 256,
            session_idle: Duration::from_secs(2 * 3600),
            session_absolute: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            log_tail_lines: 1000,
            log_limit_bytes: 4 * 1024 * 1024,
            throttle_account: gantry_domain::throttle::ThrottleRules::PER_ACCOUNT,
            throttle_address: gantry_domain::throttle::ThrottleRules::PER_ADDRESS,
            password_checks: None,
            raw_retention_ms: gantry_domain::usage::RAW_RETENTION_MS,
            rollup_retention_ms: gantry_domain::usage::ROLLUP_RETENTION_MS,
            waste_threshold_percent: gantry_domain::usage::DEFAULT_WASTE_THRESHOLD_PERCENT,
            progress_file: None,
            local_passwords: true,
        }
    }
}

/// How long a starting replica stays unready while its clusters first list.
pub const WARM_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// The gate every adapter goes through: the store and the clusters are
/// reachable only through its operations, each of which authorises through
/// the policy module and audits.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) hub: Arc<Hub>,
    pub config: Arc<ServiceConfig>,
    pub(crate) sealer: Sealer,
    pub(crate) passwords: Arc<HashLimit>,
    /// Why each cluster's Prometheus did not answer at its last use (None:
    /// it did); in memory, as it is only as fresh as the last roll-up.
    prometheus_problems: Arc<std::sync::Mutex<std::collections::BTreeMap<String, Option<String>>>>,
    /// The clusters this replica connected from the database, with the
    /// sealed credentials it connected with; held while registering or
    /// removing one, so the replica's periodic sync never races them.
    pub(crate) stored_clusters: Arc<tokio::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
    /// The OpenID Connect provider people sign in through, when configured.
    pub(crate) sso: Option<Arc<crate::sso::Sso>>,
}

impl AppState {
    pub fn new(store: Store, hub: Arc<Hub>, config: ServiceConfig, sealer: Sealer) -> AppState {
        let passwords = match config.password_checks {
            Some((concurrent, queue)) => HashLimit::new(concurrent, queue),
            None => HashLimit::for_this_machine(),
        };
        AppState {
            store,
            hub,
            config: Arc::new(config),
            sealer,
            passwords: Arc::new(passwords),
            prometheus_problems: Default::default(),
            stored_clusters: Default::default(),
            sso: None,
        }
    }

    /// Signs people in through this OpenID Connect provider too.
    pub fn with_sso(mut self, sso: crate::sso::Sso) -> AppState {
        self.sso = Some(Arc::new(sso));
        self
    }

    pub(crate) fn note_prometheus(&self, cluster: &str, problem: Option<String>) {
        if let Ok(mut problems) = self.prometheus_problems.lock() {
            problems.insert(cluster.to_string(), problem);
        }
    }

    pub(crate) fn prometheus_problem(&self, cluster: &str) -> Option<String> {
        self.prometheus_problems.lock().ok().and_then(|p| p.get(cluster).cloned().flatten())
    }

    /// The store behind this state, for tests that seed or inspect it directly.
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clusters behind this state, for tests.
    #[cfg(feature = "testing")]
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The password checks' limit, for tests.
    #[cfg(feature = "testing")]
    pub fn password_limit(&self) -> &HashLimit {
        &self.passwords
    }

    /// One pass of the background work, now, whatever the timers say: the
    /// ledger, the rollups, the budgets and the webhooks (for tests).
    #[cfg(feature = "testing")]
    pub async fn background_now(&self, writer: &mut crate::ledger::LedgerWriter) -> Result<()> {
        self.record_ledger(writer).await?;
        self.roll_up(writer).await?;
        self.check_budgets().await?;
        self.deliver_webhooks(&reqwest::Client::new()).await
    }
}

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A browser session; the id is None only before the session is saved.
    Session {
        id: Option<tower_sessions::session::Id>,
    },
    Token {
        id: i64,
        name: String,
    },
    /// The `gantry` command line, run by an operator on the server.
    Cli,
}

/// An authenticated caller with the rights of this request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub via: Via,
    pub source: Option<String>,
}

impl Caller {
    /// The caller as the UI and `/api/v1/me` show them.
    pub fn me(&self, csrf: String) -> gantry_domain::view::Me {
        gantry_domain::view::Me {
            id: self.principal.user_id,
            username: self.principal.username.clone(),
            global_admin: self.principal.global_admin,
            teams: self
                .principal
                .memberships
                .iter()
                .map(|m| gantry_domain::view::TeamRole { team_id: m.team_id, team: m.team_name.clone(), role: m.role })
                .collect(),
            can: gantry_domain::policy::capabilities(&self.principal),
            csrf,
        }
    }

    pub fn is_session(&self) -> bool {
        matches!(self.via, Via::Session { .. })
    }

    pub fn actor(&self) -> String {
        match &self.via {
            Via::Token { name, .. } => format!("{} (token {name})", self.principal.username),
            _ => self.principal.username.clone(),
        }
    }
}

/// Where an action lands, for the audit log.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    pub action: &'static str,
    pub team_id: Option<i64>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub object: Option<String>,
}

impl Audit {
    pub fn global(action: &'static str, object: impl Into<String>) -> Audit {
        Audit { action, object: Some(object.into()), ..Default::default() }
    }

    pub fn team(action: &'static str, team_id: i64, object: impl Into<String>) -> Audit {
        Audit { action, team_id: Some(team_id), object: Some(object.into()), ..Default::default() }
    }

    pub fn namespace(action: &'static str, target: &Target, object: impl Into<String>) -> Audit {
        let (cluster, namespace, team_id) = match target {
            Target::Namespace { cluster, namespace, owner, .. } => {
                (Some(cluster.clone()), Some(namespace.clone()), *owner)
            }
            _ => (None, None, None),
        };
        Audit { action, team_id, cluster, namespace, object: Some(object.into()) }
    }
}

/// (before, after) summaries of a change.
pub type Change = (Option<String>, Option<String>);

impl AppState {
    pub async fn ownership(&self) -> Result<Ownership> {
        Ok(self.store.ownership().await?)
    }

    /// What this caller may read, with team names for labelling rows.
    pub async fn viewer(&self, caller: &Caller) -> Result<Viewer> {
        let mappings = self.store.namespace_mappings().await?;
        let ownership = Ownership::new(mappings.iter().map(|m| (m.cluster.clone(), m.namespace.clone(), m.team_id)));
        let mut teams: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
            Default::default();
        for m in mappings {
            teams.entry(m.cluster).or_default().insert(m.namespace, m.team);
        }
        Ok(Viewer { visibility: Visibility::of(&caller.principal, &ownership), teams })
    }

    /// Asks the policy; a refusal of a mutation is audited as denied (and
    /// refused even if that record cannot be written).
    pub async fn authorize(&self, caller: &Caller, action: Action, target: &Target, audit: &Audit) -> Result<()> {
        match may(&caller.principal, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                if action.is_mutation() {
                    let denied = self.write_audit(caller, audit, AuditResult::Denied, None, None, Some(reason.clone()));
                    if let Err(e) = denied.await {
                        tracing::error!(action = audit.action, "could not audit a refusal: {}", e.message);
                    }
                }
                Err(ServiceError::forbidden(reason))
            }
        }
    }

    /// Records how an authorised action ended. An action that succeeded is
    /// not reported as done unless its record was written: then this fails
    /// with 503 and says so. A failed action keeps its own error.
    pub async fn record<T>(&self, caller: &Caller, audit: &Audit, outcome: &Result<T>, change: Change) -> Result<()> {
        match outcome {
            Ok(_) => self.write_audit(caller, audit, AuditResult::Ok, change.0, change.1, None).await.map_err(|_| {
                ServiceError::unavailable(format!(
                    "{} was done, but its audit record could not be written (the database is failing); tell an administrator",
                    audit.action
                ))
            }),
            Err(error) => {
                let detail = match &error.detail {
                    Some(d) => format!("{} ({d})", error.message),
                    None => error.message.clone(),
                };
                let written = self.write_audit(caller, audit, AuditResult::Failed, change.0, None, Some(detail)).await;
                if let Err(e) = written {
                    tracing::error!(action = audit.action, "could not audit a failed action: {}", e.message);
                }
                Ok(())
            }
        }
    }

    async fn write_audit(
        &self,
        caller: &Caller,
        audit: &Audit,
        result: AuditResult,
        before: Option<String>,
        after: Option<String>,
        detail: Option<String>,
    ) -> Result<()> {
        let entry = AuditEntry {
            actor_id: Some(caller.principal.user_id),
            actor: caller.actor(),
            source: caller.source.clone(),
            action: audit.action.to_string(),
            team_id: audit.team_id,
            cluster: audit.cluster.clone(),
            namespace: audit.namespace.clone(),
            object: audit.object.clone(),
            before,
            after,
            result: Some(result),
            detail,
        };
        self.append_audit(&entry).await
    }

    /// Appends to the audit log, retrying briefly: a record is never dropped
    /// silently, and a caller that cannot get one written hears about it.
    pub(crate) async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.store.append_audit(entry, now_ms()).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 2 => {
                    tracing::warn!(action = entry.action, "could not write the audit log (retrying): {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => {
                    tracing::error!(action = entry.action, "could not write the audit log: {e}");
                    return Err(e.into());
                }
            }
        }
    }

    pub fn cluster(&self, name: &str) -> Result<Arc<gantry_cluster::ClusterCache>> {
        self.hub.cluster(name).ok_or_else(|| ServiceError::not_found(format!("cluster {name} is not registered")))
    }
}

/// What Gantry's own `/metrics` reports about the state behind the gate.
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    pub database_backend: &'static str,
    pub database_connections: u32,
    pub database_idle: usize,
    pub clusters: Vec<ClusterMetrics>,
    /// GPUs held now and their cost per hour, per namespace and model.
    pub allocations: Vec<AllocationMetrics>,
}

#[derive(Clone, Debug)]
pub struct AllocationMetrics {
    pub cluster: String,
    /// The owning team's name; "" for a namespace no team owns.
    pub team: String,
    pub namespace: String,
    pub model: String,
    pub capacity_type: &'static str,
    pub gpus: i64,
    /// None when the model and capacity type have no price.
    pub usd_per_hour: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    pub name: String,
    pub pods: usize,
    pub nodes: usize,
    pub events: usize,
    pub live: bool,
}

/// What the HTTP adapter needs of the state besides operations: readiness,
/// the session store, the change feed and metrics.
impl AppState {
    /// The database answers and is migrated.
    /// Whether this replica should be sent requests: its database answers,
    /// and the clusters it watches have listed once since it started (for at
    /// most [`WARM_UP`]), so a restarted replica does not answer with empty
    /// lists. Why not, otherwise.
    pub async fn readiness(&self) -> std::result::Result<(), &'static str> {
        if self.hub.warming_up(WARM_UP) {
            return Err("the cluster caches are still loading");
        }
        if !self.store.ready().await {
            return Err("the database is unreachable or not migrated");
        }
        Ok(())
    }

    /// Where tower-sessions keeps sessions: Gantry's own database, so every
    /// replica shares them and they survive restarts.
    pub fn session_store(&self) -> impl tower_sessions::session_store::ExpiredDeletion + Clone + use<> {
        self.store.clone()
    }

    /// Every change the watch caches see; streams filter it per viewer.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<gantry_cluster::Change> {
        self.hub.subscribe()
    }

    pub async fn runtime_metrics(&self) -> RuntimeMetrics {
        let (size, idle) = self.store.pool_usage();
        let teams: std::collections::BTreeMap<(String, String), String> = match self.store.namespace_mappings().await {
            Ok(mappings) => mappings.into_iter().map(|m| ((m.cluster, m.namespace), m.team)).collect(),
            Err(_) => Default::default(),
        };
        let prices = self.store.gpu_prices().await.unwrap_or_default();
        let allocations = gantry_cluster::queries::gpu_uses_by_namespace(&self.hub)
            .into_iter()
            .map(|(cluster, namespace, count)| AllocationMetrics {
                team: teams.get(&(cluster.clone(), namespace.clone())).cloned().unwrap_or_default(),
                usd_per_hour: gantry_domain::cost::price_of(&prices, &count.model, count.capacity_type)
                    .map(|p| p.times(count.gpus).dollars()),
                cluster,
                namespace,
                capacity_type: count.capacity_type.label(),
                model: count.model,
                gpus: count.gpus,
            })
            .collect();
        RuntimeMetrics {
            allocations,
            database_backend: self.store.backend().name(),
            database_connections: size,
            database_idle: idle,
            clusters: self
                .hub
                .clusters()
                .iter()
                .map(|c| ClusterMetrics {
                    name: c.name.to_string(),
                    pods: c.pods.len(),
                    nodes: c.nodes.len(),
                    events: c.events.len(),
                    live: c.status().state == gantry_domain::view::ConnectionState::Live,
                })
                .collect(),
        }
    }
}
