//! The shared state every request works with, and the callers it serves.

use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::{Hub, Viewer};
use gantry_domain::policy::{Action, Decision, Ownership, Principal, Target, Visibility, may};
use gantry_store::{AuditEntry, AuditResult, Store, now_ms};

use crate::error::{Result, ServiceError};
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
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub config: Arc<ServiceConfig>,
    pub sealer: Sealer,
}

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    Session,
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
            csrf,
        }
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
            Target::Namespace { cluster, namespace, owner } => (Some(cluster.clone()), Some(namespace.clone()), *owner),
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

    /// Asks the policy; a refusal of a mutation is audited as denied.
    pub async fn authorize(&self, caller: &Caller, action: Action, target: &Target, audit: &Audit) -> Result<()> {
        match may(&caller.principal, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                if action.is_mutation() {
                    self.write_audit(caller, audit, AuditResult::Denied, None, None, Some(reason.clone())).await;
                }
                Err(ServiceError::forbidden(reason))
            }
        }
    }

    /// Records how an authorised action ended.
    pub async fn record<T>(&self, caller: &Caller, audit: &Audit, outcome: &Result<T>, change: Change) {
        match outcome {
            Ok(_) => self.write_audit(caller, audit, AuditResult::Ok, change.0, change.1, None).await,
            Err(error) => {
                let detail = match &error.detail {
                    Some(d) => format!("{} ({d})", error.message),
                    None => error.message.clone(),
                };
                self.write_audit(caller, audit, AuditResult::Failed, change.0, None, Some(detail)).await
            }
        }
    }

    pub async fn write_audit(
        &self,
        caller: &Caller,
        audit: &Audit,
        result: AuditResult,
        before: Option<String>,
        after: Option<String>,
        detail: Option<String>,
    ) {
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
        if let Err(e) = self.store.append_audit(&entry, now_ms()).await {
            tracing::error!(action = audit.action, "could not write the audit log: {e}");
        }
    }

    pub fn cluster(&self, name: &str) -> Result<Arc<gantry_cluster::ClusterCache>> {
        self.hub.cluster(name).ok_or_else(|| ServiceError::not_found(format!("cluster {name} is not registered")))
    }
}
