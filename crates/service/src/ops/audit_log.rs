//! Reading the audit log: global admins see all of it, team admins their
//! teams' part, everyone else nothing.

use gantry_domain::policy::{Action, Role, Target};
use gantry_store::{AuditFilter, AuditRecord};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

impl AppState {
    pub async fn audit_log(&self, caller: &Caller, mut filter: AuditFilter) -> Result<Vec<AuditRecord>> {
        if !caller.principal.global_admin {
            let admin_of: Vec<i64> =
                caller.principal.memberships.iter().filter(|m| m.role == Role::TeamAdmin).map(|m| m.team_id).collect();
            if admin_of.is_empty() {
                self.authorize(caller, Action::ViewAllAudit, &Target::Global, &Audit::default()).await?;
            }
            if let Some(team) = filter.team_id {
                self.authorize(caller, Action::ViewTeamAudit, &Target::Team(team), &Audit::default()).await?;
            }
            filter.only_teams = Some(admin_of);
        }
        filter.limit = Some(filter.limit.unwrap_or(200).clamp(1, 10_000));
        self.store.audit(&filter).await.map_err(ServiceError::from)
    }
}

fn csv_field(value: &str) -> String {
    // Quote everything, and defuse spreadsheet formulas.
    let guarded = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_string() };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// The records as CSV with a header line.
pub fn to_csv(records: &[AuditRecord]) -> String {
    let mut out =
        String::from("id,at,actor,source,action,team_id,cluster,namespace,object,before,after,result,detail\n");
    for r in records {
        let at = r.at.to_string();
        let id = r.id.to_string();
        let team = r.team_id.map(|t| t.to_string()).unwrap_or_default();
        let fields = [
            id.as_str(),
            at.as_str(),
            r.actor.as_str(),
            r.source.as_deref().unwrap_or(""),
            r.action.as_str(),
            team.as_str(),
            r.cluster.as_deref().unwrap_or(""),
            r.namespace.as_deref().unwrap_or(""),
            r.object.as_deref().unwrap_or(""),
            r.before.as_deref().unwrap_or(""),
            r.after.as_deref().unwrap_or(""),
            r.result.as_str(),
            r.detail.as_deref().unwrap_or(""),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::AuditResult;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let record = AuditRecord {
            id: 1,
            at: 2,
            actor_id: None,
            actor: "a\"b".into(),
            source: None,
            action: "login".into(),
            team_id: None,
            cluster: None,
            namespace: None,
            object: Some("=cmd()".into()),
            before: None,
            after: None,
            result: AuditResult::Ok,
            detail: Some("x,y\nz".into()),
        };
        let csv = to_csv(&[record]);
        assert!(csv.starts_with("id,at,actor"));
        assert!(csv.contains("\"a\"\"b\""));
        assert!(csv.contains("\"'=cmd()\""));
        assert!(csv.contains("\"x,y\nz\""));
    }
}
