//! Model deployments and training jobs: launch, scale, update, roll back,
//! delete, promote, cancel, preview, logs.

use futures::Stream;
use gantry_cluster::actions;
use gantry_cluster::queries;
use gantry_domain::fit::{self, FitPreview};
use gantry_domain::lenient;
use gantry_domain::manifest::{self, JobKind, LaunchDeploymentInput, LaunchJobInput, UpdateDeploymentInput};
use gantry_domain::policy::{Action, Ownership, Target};
use gantry_domain::records::Revision;
use gantry_domain::rollout::{self, DiffLine, ReplicaSetRevision};
use gantry_domain::validate::{self, Invalid, KubeName, LabelName};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutcome {
    pub from_revision: i64,
    pub restored_revision: i64,
}

pub use gantry_domain::changes::{AutoscaleRequest, DeleteRequest, RollbackRequest, ScaleRequest};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PromoteOutcome {
    pub from: String,
    pub to: String,
    pub before: Option<String>,
    pub after: String,
}

/// The generation a change request expects, if it names one.
fn expected(version: &str) -> Result<Option<i64>> {
    Ok(lenient::int("version", version)?)
}

/// A namespace and an object's name from a request, checked once the caller
/// is known to be allowed and before anything reaches the cluster.
fn place(namespace: &str, field: &str, name: &str) -> Result<(LabelName, KubeName)> {
    Ok((LabelName::parse("namespace", namespace)?, KubeName::parse(field, name)?))
}

fn object(kind: &str, name: &str) -> String {
    format!("{kind}/{}", name.chars().take(253).collect::<String>())
}

fn team_name(caller: &Caller, ownership: &Ownership, cluster: &str, namespace: &str) -> Option<String> {
    let team = ownership.owner(cluster, namespace)?;
    caller.principal.memberships.iter().find(|m| m.team_id == team).map(|m| m.team_name.clone())
}

impl AppState {
    async fn namespace_target(&self, cluster: &str, namespace: &str) -> Result<(Ownership, Target)> {
        let ownership = self.ownership().await?;
        let target = ownership.namespace(cluster, namespace);
        Ok((ownership, target))
    }

    /// Would `pods` pods of `gpus` GPUs each (of `model`) fit right now?
    pub async fn preview_fit(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        model: Option<&str>,
        gpus: i64,
        pods: i64,
    ) -> Result<FitPreview> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        self.cluster(cluster)?;
        let model = model.filter(|m| !m.is_empty());
        let mut preview = fit::preview(&queries::free_gpus(&self.hub, cluster), model, gpus.max(0), pods.max(0));
        if let Some(model) = model {
            let prices = self.store.gpu_prices().await?;
            preview.cost = fit::PreviewCost::of(model, gpus.max(0) * pods.max(0), &prices);
        }
        Ok(preview)
    }

    pub fn gpu_models(&self, cluster: &str) -> Vec<String> {
        queries::gpu_models(&self.hub, cluster)
    }

    pub async fn launch_deployment(&self, caller: &Caller, input: &LaunchDeploymentInput) -> Result<Vec<String>> {
        let (ownership, target) = self.namespace_target(&input.cluster, &input.namespace).await?;
        let audit = Audit::namespace("deployment.launch", &target, object("deployment", &input.name));
        self.authorize(caller, Action::LaunchDeployment, &target, &audit).await?;
        let mut after = None;
        let result = async {
            let spec = input.validate(self.config.replica_cap)?;
            let cluster = self.cluster(&spec.cluster)?;
            let team = team_name(caller, &ownership, &spec.cluster, spec.namespace.as_str());
            let launched = actions::launch_deployment(&cluster, &spec, team.as_deref(), &caller.actor()).await?;
            after =
                Some(format!("revision 1: image {}, replicas {}, {} GPU each", spec.image, spec.replicas, spec.gpus));
            Ok(launched.objects)
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    pub async fn scale_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        request: &ScaleRequest,
    ) -> Result<(i32, i32)> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("deployment.scale", &target, object("deployment", deployment));
        self.authorize(caller, Action::ScaleDeployment, &target, &audit).await?;
        let result = async {
            let replicas =
                lenient::int("replicas", &request.replicas)?.ok_or_else(|| Invalid::new("replicas", "is required"))?;
            let replicas = validate::replicas(replicas, self.config.replica_cap)?;
            let (namespace, deployment) = place(namespace, "name", deployment)?;
            let cluster = self.cluster(cluster)?;
            Ok(actions::scale(&cluster, &namespace, &deployment, replicas, expected(&request.version)?).await?)
        }
        .await;
        let change = match &result {
            Ok((from, to)) => (Some(format!("replicas {from}")), Some(format!("replicas {to}"))),
            Err(_) => (None, Some(format!("replicas {}", request.replicas.chars().take(20).collect::<String>()))),
        };
        self.record(caller, &audit, &result, change).await?;
        result
    }

    pub async fn autoscale_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        request: &AutoscaleRequest,
    ) -> Result<()> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("deployment.autoscale", &target, object("deployment", deployment));
        self.authorize(caller, Action::ScaleDeployment, &target, &audit).await?;
        let mut change = (None, None);
        let result = async {
            let (namespace, deployment) = place(namespace, "name", deployment)?;
            let cluster = self.cluster(cluster)?;
            if !request.enabled {
                actions::remove_autoscaler(&cluster, &namespace, &deployment).await?;
                change.1 = Some("autoscaling off".into());
                return Ok(());
            }
            let autoscale = manifest::autoscale(
                lenient::int("min_replicas", &request.min_replicas)?,
                lenient::int("max_replicas", &request.max_replicas)?,
                lenient::int("target_cpu_percent", &request.target_cpu_percent)?,
                self.config.replica_cap,
            )?
            .ok_or_else(|| ServiceError::invalid("autoscaling settings are missing"))?;
            change.0 = actions::set_autoscaler(&cluster, &namespace, &deployment, &autoscale).await?;
            change.1 = Some(format!(
                "autoscale {}..{} at {}% CPU",
                autoscale.min, autoscale.max, autoscale.target_cpu_percent
            ));
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, change).await?;
        result
    }

    pub async fn update_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        input: &UpdateDeploymentInput,
    ) -> Result<()> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("deployment.update", &target, object("deployment", deployment));
        self.authorize(caller, Action::UpdateDeployment, &target, &audit).await?;
        let mut change = (None, None);
        let result = async {
            let update = input.validate()?;
            let (namespace, deployment) = place(namespace, "name", deployment)?;
            let cluster = self.cluster(cluster)?;
            let next = actions::next_revision(&cluster, &namespace, &deployment).await?;
            let (before, after) =
                actions::update(&cluster, &namespace, &deployment, &update, expected(&input.version)?, &caller.actor())
                    .await?;
            let changes_template = update.image.is_some() || update.model_version.is_some();
            change = (
                Some(before),
                Some(if changes_template { format!("revision {next}: {}", describe_update(&update)) } else { after }),
            );
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, change).await?;
        result
    }

    /// The revision history, newest first, with who made each revision when
    /// Gantry's audit log knows.
    pub async fn deployment_history(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
    ) -> Result<Vec<Revision>> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        let (ns, name) = place(namespace, "name", deployment)?;
        let cluster_cache = self.cluster(cluster)?;
        let (d, revisions) = actions::history(&cluster_cache, &ns, &name).await?;
        let current = actions::current_revision(&d);
        let audits = self
            .store
            .audit(&gantry_store::AuditFilter { limit: Some(2000), ..Default::default() })
            .await?
            .into_iter()
            .filter(|r| {
                r.cluster.as_deref() == Some(cluster)
                    && r.namespace.as_deref() == Some(namespace)
                    && r.object.as_deref() == Some(&object("deployment", deployment))
                    && r.result == gantry_store::AuditResult::Ok
                    && matches!(
                        r.action.as_str(),
                        "deployment.launch" | "deployment.update" | "deployment.rollback" | "deployment.promote"
                    )
            })
            .collect::<Vec<_>>();
        Ok(revisions
            .iter()
            .map(|r| Revision {
                revision: r.revision,
                replica_set: r.name.clone(),
                images: r.images(),
                model_version: r.template_label(rollout::MODEL_VERSION_LABEL),
                change_cause: r.change_cause().map(str::to_string),
                created: r.created.clone(),
                replicas: r.replicas,
                current: r.revision == current,
                by: who_made(r, &audits),
            })
            .collect())
    }

    /// The pod-template diff between a revision and the current template.
    pub async fn deployment_diff(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        revision: i64,
    ) -> Result<Vec<DiffLine>> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        let (ns, name) = place(namespace, "name", deployment)?;
        let cluster_cache = self.cluster(cluster)?;
        let (d, revisions) = actions::history(&cluster_cache, &ns, &name).await?;
        let chosen = revisions.iter().find(|r| r.revision == revision).ok_or_else(|| {
            ServiceError::not_found(format!("revision {revision} of deployment {namespace}/{deployment} was not found"))
        })?;
        Ok(rollout::template_diff(&chosen.template, &actions::template_of(&d)))
    }

    pub async fn rollback_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        request: &RollbackRequest,
    ) -> Result<RollbackOutcome> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("deployment.rollback", &target, object("deployment", deployment));
        self.authorize(caller, Action::RollbackDeployment, &target, &audit).await?;
        let result = async {
            let to = lenient::int("to_revision", &request.to_revision)?;
            if to.is_some_and(|r| r < 0) {
                return Err(Invalid::new("to_revision", "must not be negative").into());
            }
            let (namespace, deployment) = place(namespace, "name", deployment)?;
            let cluster = self.cluster(cluster)?;
            let done = actions::rollback(&cluster, &namespace, &deployment, to, expected(&request.version)?).await?;
            Ok((RollbackOutcome { from_revision: done.from, restored_revision: done.restored }, done.next))
        }
        .await;
        let change = match &result {
            Ok((o, next)) => (
                Some(format!("revision {}", o.from_revision)),
                Some(format!("revision {next}: template of revision {}", o.restored_revision)),
            ),
            Err(_) => {
                (None, Some(format!("revision {}", request.to_revision)).filter(|_| !request.to_revision.is_empty()))
            }
        };
        self.record(caller, &audit, &result, change).await?;
        result.map(|(outcome, _)| outcome)
    }

    pub async fn delete_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        request: &DeleteRequest,
    ) -> Result<()> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("deployment.delete", &target, object("deployment", deployment));
        self.authorize(caller, Action::DeleteDeployment, &target, &audit).await?;
        let mut before = None;
        let result = async {
            if request.confirm != deployment {
                return Err(Invalid::new("confirm", "type the deployment's name to confirm").into());
            }
            let (namespace, deployment) = place(namespace, "name", deployment)?;
            let cluster = self.cluster(cluster)?;
            before =
                Some(actions::delete_deployment(&cluster, &namespace, &deployment, expected(&request.version)?).await?);
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some("deleted".into()))).await?;
        result
    }

    /// Copies a deployment's image and model version from one of the team's
    /// environments to the next. Promoting into a protected environment
    /// needs the team admin role.
    pub async fn promote_deployment(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        deployment: &str,
        to_environment: Option<&str>,
    ) -> Result<PromoteOutcome> {
        let ownership = self.ownership().await?;
        let source_target = ownership.namespace(cluster, namespace);
        let team = ownership.owner(cluster, namespace);
        let audit = Audit::namespace("deployment.promote", &source_target, object("deployment", deployment));
        self.authorize(caller, Action::ViewNamespace, &source_target, &audit).await?;
        let Some(team) = team else {
            let error =
                ServiceError::invalid(format!("{cluster}/{namespace} belongs to no team, so it has no environments"));
            self.record::<()>(caller, &audit, &Err(error.clone()), (None, None)).await?;
            return Err(error);
        };
        let environments = self.store.environments(team).await?;
        let position = environments.iter().position(|e| e.cluster == cluster && e.namespace == namespace);
        let next = match (to_environment.filter(|e| !e.is_empty()), position) {
            (Some(wanted), _) => environments.iter().find(|e| e.name == wanted),
            (None, Some(i)) => environments.get(i + 1),
            (None, None) => None,
        };
        let Some(next) = next.cloned() else {
            let error = ServiceError::invalid(match position {
                None => format!("{cluster}/{namespace} is not one of the team's environments"),
                Some(_) => "there is no next environment to promote to".to_string(),
            });
            self.record::<()>(caller, &audit, &Err(error.clone()), (None, None)).await?;
            return Err(error);
        };
        let target = ownership.namespace(&next.cluster, &next.namespace);
        let action = if next.protected { Action::PromoteProtected } else { Action::Promote };
        let promote_audit = Audit::namespace("deployment.promote", &target, object("deployment", deployment));
        self.authorize(caller, action, &target, &promote_audit).await?;
        let from = format!("{cluster}/{namespace}");
        let to = format!("{} ({}/{})", next.name, next.cluster, next.namespace);
        let mut change = (None, None);
        let result = async {
            let (source_ns, name) = place(namespace, "name", deployment)?;
            let target_ns = LabelName::parse("namespace", &next.namespace)?;
            let source_cluster = self.cluster(cluster)?;
            let source = actions::deployment_json(&source_cluster, &source_ns, &name).await?.ok_or_else(|| {
                ServiceError::not_found(format!("deployment {namespace}/{deployment} was not found in {cluster}"))
            })?;
            let target_cluster = self.cluster(&next.cluster)?;
            let team_name = team_name(caller, &ownership, &next.cluster, &next.namespace);
            let revision = match actions::deployment_json(&target_cluster, &target_ns, &name).await? {
                Some(_) => actions::next_revision(&target_cluster, &target_ns, &name).await?,
                None => 1,
            };
            let (before, after) =
                actions::promote(&source, &target_cluster, &target_ns, team_name.as_deref(), &caller.actor()).await?;
            change = (before.clone(), Some(format!("revision {revision}: {after} (promoted from {from})")));
            Ok(PromoteOutcome { from: from.clone(), to: to.clone(), before, after })
        }
        .await;
        self.record(caller, &promote_audit, &result, change).await?;
        result
    }

    pub async fn launch_job(&self, caller: &Caller, input: &LaunchJobInput) -> Result<()> {
        let (ownership, target) = self.namespace_target(&input.cluster, &input.namespace).await?;
        let audit = Audit::namespace("job.launch", &target, object("job", &input.name));
        self.authorize(caller, Action::LaunchJob, &target, &audit).await?;
        let mut after = None;
        let result = async {
            let spec = input.validate(self.config.pod_cap)?;
            let cluster = self.cluster(&spec.cluster)?;
            let team = team_name(caller, &ownership, &spec.cluster, spec.namespace.as_str());
            actions::launch_job(&cluster, &spec, team.as_deref(), &caller.actor()).await?;
            after = Some(match spec.kind {
                JobKind::Batch => format!("image {}, {} GPU × {} pods", spec.image, spec.gpus, spec.parallelism),
                JobKind::PyTorch => format!(
                    "PyTorchJob, image {}, {} GPU × (1 master + {} workers)",
                    spec.image, spec.gpus, spec.parallelism
                ),
            });
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (None, after)).await?;
        result
    }

    pub async fn cancel_job(&self, caller: &Caller, cluster: &str, namespace: &str, job: &str) -> Result<()> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        let audit = Audit::namespace("job.cancel", &target, object("job", job));
        self.authorize(caller, Action::CancelJob, &target, &audit).await?;
        let mut before = None;
        let result = async {
            let (namespace, job) = place(namespace, "name", job)?;
            let cluster = self.cluster(cluster)?;
            before = Some(actions::cancel_job(&cluster, &namespace, &job).await?);
            Ok(())
        }
        .await;
        self.record(caller, &audit, &result, (before, Some("cancelled".into()))).await?;
        result
    }

    /// A bounded stream of a job pod's log lines, following if asked.
    pub async fn pod_logs(
        &self,
        caller: &Caller,
        cluster: &str,
        namespace: &str,
        pod: &str,
        follow: bool,
    ) -> Result<impl Stream<Item = std::result::Result<String, gantry_cluster::ActionError>> + use<>> {
        let (_, target) = self.namespace_target(cluster, namespace).await?;
        self.authorize(caller, Action::ViewNamespace, &target, &Audit::default()).await?;
        let (namespace, pod) = place(namespace, "pod", pod)?;
        let cluster = self.cluster(cluster)?;
        Ok(actions::log_lines(
            &cluster,
            &namespace,
            &pod,
            None,
            follow,
            self.config.log_tail_lines,
            self.config.log_limit_bytes,
        )
        .await?)
    }

    /// Whether the caller may act on a namespace, for hiding controls.
    pub async fn may_in(&self, caller: &Caller, cluster: &str, namespace: &str, action: Action) -> bool {
        match self.ownership().await {
            Ok(ownership) => {
                gantry_domain::policy::may(&caller.principal, action, &ownership.namespace(cluster, namespace))
                    .is_allowed()
            }
            Err(_) => false,
        }
    }

    /// Namespaces the caller may deploy into, per cluster (for launch forms).
    pub async fn deployable_namespaces(&self, caller: &Caller) -> Result<Vec<(String, String)>> {
        let ownership = self.ownership().await?;
        let mut out: Vec<(String, String)> = ownership
            .entries()
            .filter(|(c, n, _)| {
                gantry_domain::policy::may(&caller.principal, Action::LaunchDeployment, &ownership.namespace(c, n))
                    .is_allowed()
            })
            .map(|(c, n, _)| (c.to_string(), n.to_string()))
            .collect();
        out.sort();
        Ok(out)
    }
}

fn describe_update(update: &manifest::DeploymentUpdate) -> String {
    let mut parts = Vec::new();
    if let Some(image) = &update.image {
        parts.push(format!("image {image}"));
    }
    if let Some(version) = &update.model_version {
        parts.push(format!("model version {version}"));
    }
    parts.join(", ")
}

/// Who made a revision: Gantry records "revision N: ..." in the audit log
/// for every change that makes a new revision. The newest match wins, so a
/// deployment re-created under the same name is attributed to the new one.
fn who_made(revision: &ReplicaSetRevision, audits: &[gantry_store::AuditRecord]) -> Option<String> {
    let prefix = format!("revision {}:", revision.revision);
    audits.iter().find(|a| a.after.as_deref().is_some_and(|after| after.starts_with(&prefix))).map(|a| a.actor.clone())
}
