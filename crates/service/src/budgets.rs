//! Budgets that watch spend, not only the rate: month-to-date spend from
//! the ledger's rollups, the burn rate now, the forecast to the month's end,
//! and alerts at 80 % and 100 % of the budget, for the actual spend and for
//! the forecast, each fired once per team, level and month: an audit record,
//! a banner on the team page, and a POST to the team's webhook (retried with
//! backoff by the background loop, never on a request's path).

use std::time::Duration;

use gantry_domain::cost::{self, CostRate, DeliveryView, FiredAlertView, MonthSpend, Usd};
use gantry_domain::usage::{self, Alert, AlertKind, Dimension, Span};
use gantry_store::{AuditEntry, AuditResult, Tier, UsageFilter, now_ms};
use serde_json::json;

use crate::error::Result;
use crate::state::AppState;

/// The longest a webhook receiver gets to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry after 30 s, then twice as long each time, at most an hour apart.
const FIRST_RETRY_MS: i64 = 30_000;
const LONGEST_RETRY_MS: i64 = 3_600_000;

/// When to try a delivery again after `attempts` failures.
pub(crate) fn retry_after(attempts: i64) -> i64 {
    FIRST_RETRY_MS.saturating_mul(1i64 << attempts.clamp(0, 20)).min(LONGEST_RETRY_MS)
}

/// A webhook URL as a team admin types it: http(s), a host, at most 2 KiB.
pub fn webhook_url(text: &str) -> std::result::Result<String, gantry_domain::validate::Invalid> {
    use gantry_domain::validate::Invalid;
    let text = text.trim();
    let bad = || Invalid::new("url", "must be an http:// or https:// URL, such as https://hooks.example.com/gantry");
    let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let scheme_ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if !scheme_ok || host.is_empty() || text.len() > 2048 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(text.to_string())
}

impl AppState {
    /// A team's month so far: spend from the rollups (by the team's name at
    /// the time), the burn rate now, and the forecast.
    pub(crate) async fn month_spend(&self, team: &str, budget: Option<Usd>, rate: &CostRate) -> Result<MonthSpend> {
        let now = now_ms();
        let month = usage::month_of(now);
        let filter = UsageFilter { teams: Some(vec![team.to_string()]), ..Default::default() };
        let groups = self
            .store
            .usage_totals(Tier::Daily, Span::new(month.start, now), &[Dimension::Team], None, &filter)
            .await?;
        let mut spent = usage::Usage::default();
        for group in groups.iter().filter(|g| !g.idle) {
            spent.add(&group.usage);
        }
        let spent = usage::to_usd(spent.cost);
        let forecast = usage::forecast(month, spent, now, rate.usd_per_hour);
        Ok(MonthSpend::new((month.start, month.end), spent, rate.usd_per_hour, forecast, budget))
    }

    /// The alerts and failing deliveries the team page shows.
    pub(crate) async fn budget_notices(
        &self,
        team_id: i64,
    ) -> Result<(Vec<FiredAlertView>, Option<String>, Vec<DeliveryView>)> {
        let month = usage::month_of(now_ms());
        let alerts = self
            .store
            .alerts_of(team_id, month.start)
            .await?
            .into_iter()
            .map(|a| FiredAlertView {
                kind: alert_kind(a.alert.kind).into(),
                percent: a.alert.percent,
                fired_at: a.fired_at,
            })
            .collect();
        let host = self.store.team_webhook(team_id).await?.map(|w| {
            let rest = w.url.split_once("://").map_or(w.url.as_str(), |(_, rest)| rest);
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            host.rsplit('@').next().unwrap_or(host).to_string()
        });
        let failing = self
            .store
            .deliveries_of(team_id, 20)
            .await?
            .into_iter()
            .filter(|d| d.delivered_at.is_none() && d.attempts > 0)
            .map(|d| DeliveryView {
                id: d.id,
                attempts: d.attempts,
                last_error: d.last_error,
                next_attempt_at: d.next_attempt_at,
                created_at: d.created_at,
            })
            .collect();
        Ok((alerts, host, failing))
    }

    /// Fires the budget alerts every team with a budget has reached this
    /// month, once each (the background loop calls it).
    pub(crate) async fn check_budgets(&self) -> Result<()> {
        let now = now_ms();
        let month = usage::month_of(now);
        let prices = self.store.gpu_prices().await?;
        let ownership = self.store.ownership().await?;
        for team in self.store.list_teams().await? {
            let Some(budget) = self.store.team_budget(team.id).await? else { continue };
            let uses = gantry_cluster::queries::gpu_uses(&self.hub, |cluster, namespace| {
                ownership.owner(cluster, namespace) == Some(team.id)
            });
            let rate = cost::cost_rate(&uses, &prices);
            let spend = self.month_spend(&team.name, Some(budget.usd_per_month), &rate).await?;
            let webhook = self.store.team_webhook(team.id).await?;
            for alert in usage::crossed_thresholds(budget.usd_per_month, spend.spent, spend.forecast) {
                let payload = json!({
                    "event": "gantry.budget_alert",
                    "team": team.name,
                    "team_id": team.id,
                    "month_start": month.start,
                    "kind": alert_kind(alert.kind),
                    "percent": alert.percent,
                    "budget_usd": budget.usd_per_month.dollars(),
                    "spent_usd": spend.spent.dollars(),
                    "forecast_usd": spend.forecast.dollars(),
                    "fired_at": now,
                })
                .to_string();
                let payload = webhook.as_ref().map(|_| payload.as_str());
                let fired =
                    self.store.fire_alert(team.id, month.start, alert.kind, alert.percent, payload, now).await?;
                if fired {
                    self.audit_alert(team.id, &team.name, alert, &spend, budget.usd_per_month).await?;
                }
            }
        }
        Ok(())
    }

    async fn audit_alert(&self, team_id: i64, team: &str, alert: Alert, spend: &MonthSpend, budget: Usd) -> Result<()> {
        let what = match alert.kind {
            AlertKind::Actual => format!("spent {} of {budget} ({}%)", spend.spent, alert.percent),
            AlertKind::Forecast => format!("heading for {} of {budget} ({}%)", spend.forecast, alert.percent),
        };
        let entry = AuditEntry {
            actor: "gantry".into(),
            action: "budget.alert".into(),
            team_id: Some(team_id),
            object: Some(format!("team/{team}/budget")),
            after: Some(what),
            result: Some(AuditResult::Ok),
            ..Default::default()
        };
        self.append_audit(&entry).await
    }

    /// Posts the webhook deliveries that are due; a failure waits longer
    /// each time (the background loop calls it).
    pub(crate) async fn deliver_webhooks(&self, http: &reqwest::Client) -> Result<()> {
        let now = now_ms();
        for delivery in self.store.due_deliveries(now, 20).await? {
            let Some(webhook) = self.store.team_webhook(delivery.team_id).await? else {
                self.store.mark_failed(delivery.id, "the team has no webhook any more", now + LONGEST_RETRY_MS).await?;
                continue;
            };
            let sent = http
                .post(&webhook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(delivery.payload.clone())
                .timeout(WEBHOOK_TIMEOUT)
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("the receiver answered {}", response.status())),
                Err(e) if e.is_timeout() => Some("the receiver did not answer within 5 s".to_string()),
                Err(e) => Some(format!("could not reach the receiver: {}", without_url(e))),
            };
            match failure {
                None => {
                    self.store.mark_delivered(delivery.id, now_ms()).await?;
                }
                Some(error) => {
                    tracing::warn!(
                        team_id = delivery.team_id,
                        delivery = delivery.id,
                        "webhook delivery failed: {error}"
                    );
                    self.store.mark_failed(delivery.id, &error, now_ms() + retry_after(delivery.attempts)).await?;
                }
            }
        }
        Ok(())
    }
}

fn alert_kind(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Actual => "actual",
        AlertKind::Forecast => "forecast",
    }
}

/// A reqwest error's text without the URL, which may hold a secret.
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(0), 30_000);
        assert_eq!(retry_after(1), 60_000);
        assert_eq!(retry_after(3), 240_000);
        assert_eq!(retry_after(10), 3_600_000);
        assert_eq!(retry_after(1_000), 3_600_000);
    }

    #[test]
    fn webhook_urls_are_http_with_a_host() {
        assert_eq!(webhook_url(" https://hooks.example.com/x ").unwrap(), "https://hooks.example.com/x");
        assert!(webhook_url("http://10.0.0.1:8080/alerts").is_ok());
        for bad in ["", "ftp://x", "https://", "hooks.example.com", "javascript:alert(1)", "https://a b", "file:///etc"]
        {
            assert_eq!(webhook_url(bad).unwrap_err().field, "url", "{bad:?}");
        }
    }

    #[test]
    fn a_month_spend_names_its_share_of_the_budget() {
        let spend = MonthSpend::new(
            (0, 1),
            Usd::from_micros(800_000_000),
            Usd::from_micros(1_000_000),
            Usd::from_micros(1_200_000_000),
            Some(Usd::from_micros(1_000_000_000)),
        );
        assert_eq!((spend.percent_spent, spend.percent_forecast), (Some(80.0), Some(120.0)));
    }
}
