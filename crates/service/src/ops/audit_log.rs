//! Reading the audit log: global admins see all of it, team admins their
//! teams' part, everyone else nothing.

use gantry_domain::policy::{self, Action, AuditScope, Target};
use gantry_domain::records::AuditQuery;
use gantry_domain::validate::Invalid;
use gantry_store::{AuditFilter, AuditRecord};

use crate::error::{Result, ServiceError};
use crate::state::{AppState, Audit, Caller};

const DAY_MS: i64 = 86_400_000;

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A day as YYYY-MM-DD (UTC midnight; the next midnight for an inclusive
/// end) or Unix milliseconds as given. An impossible date is refused, not
/// rolled into the next month.
fn instant(field: &str, value: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(millis) = value.parse::<i64>() {
        return Ok(millis);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(value, &format)
        .map_err(|_| Invalid::new(field, "must be a date such as 2026-11-30, or Unix milliseconds"))?;
    let midnight = day.midnight().assume_utc().unix_timestamp() * 1000;
    Ok(if end_of_day { midnight + DAY_MS } else { midnight })
}

impl AppState {
    /// The audit log as a person or script asks for it (see [`AuditQuery`]).
    pub async fn audit_log(&self, caller: &Caller, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let team_id = match text(&query.team) {
            None => None,
            Some(team) => match team.parse::<i64>() {
                Ok(id) => Some(id),
                // An unknown team name matches nothing rather than everything.
                Err(_) => Some(self.store.team_by_name(team).await?.map_or(-1, |t| t.id)),
            },
        };
        let filter = AuditFilter {
            actor: text(&query.actor).map(str::to_string),
            team_id,
            action: text(&query.action).map(str::to_string),
            from: text(&query.from).map(|v| instant("from", v, false)).transpose()?,
            to: text(&query.to).map(|v| instant("to", v, true)).transpose()?,
            limit: query.limit,
            ..Default::default()
        };
        self.audit_records(caller, filter).await
    }

    async fn audit_records(&self, caller: &Caller, mut filter: AuditFilter) -> Result<Vec<AuditRecord>> {
        match policy::audit_scope(&caller.principal) {
            Some(AuditScope::All) => {}
            Some(AuditScope::Teams(teams)) => {
                if let Some(team) = filter.team_id {
                    self.authorize(caller, Action::ViewTeamAudit, &Target::Team(team), &Audit::default()).await?;
                }
                filter.only_teams = Some(teams);
            }
            None => self.authorize(caller, Action::ViewAllAudit, &Target::Global, &Audit::default()).await?,
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
    fn dates_are_days_or_millis_and_impossible_ones_are_refused() {
        assert_eq!(instant("from", "2026-11-30", false).unwrap(), 1_795_996_800_000);
        assert_eq!(instant("to", "2026-11-30", true).unwrap(), 1_795_996_800_000 + DAY_MS);
        assert_eq!(instant("from", "1764460800123", false).unwrap(), 1_764_460_800_123);
        assert_eq!(instant("to", "2028-02-29", false).unwrap(), 1_835_395_200_000);
        for bad in ["2026-02-31", "2026-13-01", "30/11/2026", "yesterday", "2026-1-1"] {
            assert!(instant("from", bad, false).unwrap_err().field("from").is_some(), "{bad}");
        }
    }

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

    proptest::proptest! {
        /// A date the audit filter is given is a time or a field error, never a panic.
        #[test]
        fn any_audit_date_is_a_time_or_an_error(
            text in "-?[0-9]{0,22}|[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}|\\PC{0,16}",
            end_of_day in proptest::prelude::any::<bool>(),
        ) {
            let _ = instant("from", &text, end_of_day);
            let _ = csv_field(&text);
        }
    }
}
