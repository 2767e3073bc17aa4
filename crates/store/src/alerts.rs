//! Budget alerts and the webhooks that carry them.
//!
//! An alert (a team, a month, actual or forecast, a percent of the budget)
//! fires once: its primary key makes the insert succeed for the first caller
//! only. [`Store::fire_alert`] records it and queues its webhook delivery in
//! one transaction, so an alert is never recorded without its delivery, nor
//! queued twice. Deliveries are retried until marked delivered; a delivery
//! whose sender dies after the POST and before [`Store::mark_delivered`] is
//! sent again, so receivers see each alert at least once. Only the holder of
//! a lease should deliver, or two replicas may send the same delivery.

use gantry_domain::usage::{Alert, AlertKind};

use crate::{Result, Store, now_ms};

/// Where a team's alerts are posted. The URL of a chat webhook is itself a
/// credential, so Debug shows only its host.
#[derive(Clone, PartialEq, Eq)]
pub struct TeamWebhook {
    pub team_id: i64,
    pub url: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for TeamWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.url.split("://").nth(1).and_then(|rest| rest.split(['/', '?', '#']).next());
        let host = host.map(|host| host.rsplit('@').next().unwrap_or(host));
        f.debug_struct("TeamWebhook")
            .field("team_id", &self.team_id)
            .field("host", &host.unwrap_or("?"))
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiredAlert {
    pub month_ms: i64,
    pub alert: Alert,
    pub fired_at: i64,
}

/// A webhook delivery: a payload to post to the team's webhook, retried
/// until delivered.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub team_id: i64,
    pub payload: String,
    /// Attempts made so far, the successful one included.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    url: String,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    kind: String,
    percent: i64,
    fired_at: i64,
}

fn kind_label(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Actual => "actual",
        AlertKind::Forecast => "forecast",
    }
}

const DELIVERY_COLUMNS: &str = "id, team_id, payload, attempts, next_attempt_at, last_error, delivered_at, created_at";

async fn insert_alert(
    conn: &mut sqlx::AnyConnection,
    team_id: i64,
    month_ms: i64,
    alert: Alert,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO budget_alerts (team_id, month_ms, kind, percent, fired_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(team_id)
    .bind(month_ms)
    .bind(kind_label(alert.kind))
    .bind(i64::from(alert.percent))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn insert_delivery(conn: &mut sqlx::AnyConnection, team_id: i64, payload: &str, now: i64) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (team_id, payload, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, 0, $3, $3) RETURNING id",
    )
    .bind(team_id)
    .bind(payload)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

impl Store {
    /// Sets (Some) or removes (None) a team's webhook.
    pub async fn set_team_webhook(&self, team_id: i64, url: Option<&str>) -> Result<()> {
        match url {
            Some(url) => {
                sqlx::query(
                    "INSERT INTO team_webhooks (team_id, url, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (team_id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at",
                )
                .bind(team_id)
                .bind(url)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM team_webhooks WHERE team_id = $1").bind(team_id).execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    pub async fn team_webhook(&self, team_id: i64) -> Result<Option<TeamWebhook>> {
        let row: Option<WebhookRow> = sqlx::query_as("SELECT url, updated_at FROM team_webhooks WHERE team_id = $1")
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| TeamWebhook { team_id, url: row.url, updated_at: row.updated_at }))
    }

    /// Records that an alert fired; true only for the first caller, so it
    /// is sent once however many replicas or runs see the threshold crossed.
    pub async fn fire_alert_once(
        &self,
        team_id: i64,
        month_ms: i64,
        kind: AlertKind,
        percent: u8,
        now: i64,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        insert_alert(&mut conn, team_id, month_ms, Alert { kind, percent }, now).await
    }

    /// Records an alert and, when there is a `payload` (the team has a
    /// webhook), queues its delivery, in one transaction; true only for the
    /// first caller, and only the first caller's delivery is queued.
    pub async fn fire_alert(
        &self,
        team_id: i64,
        month_ms: i64,
        kind: AlertKind,
        percent: u8,
        payload: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let first = insert_alert(&mut tx, team_id, month_ms, Alert { kind, percent }, now).await?;
        if let (true, Some(payload)) = (first, payload) {
            insert_delivery(&mut tx, team_id, payload, now).await?;
        }
        tx.commit().await?;
        Ok(first)
    }

    /// The alerts a team's month has fired, in the order they fired.
    pub async fn alerts_of(&self, team_id: i64, month_ms: i64) -> Result<Vec<FiredAlert>> {
        let rows: Vec<AlertRow> = sqlx::query_as(
            "SELECT kind, percent, fired_at FROM budget_alerts WHERE team_id = $1 AND month_ms = $2 \
             ORDER BY fired_at, kind, percent",
        )
        .bind(team_id)
        .bind(month_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| FiredAlert {
                month_ms,
                alert: Alert {
                    kind: if row.kind == "actual" { AlertKind::Actual } else { AlertKind::Forecast },
                    percent: u8::try_from(row.percent).unwrap_or(u8::MAX),
                },
                fired_at: row.fired_at,
            })
            .collect())
    }

    /// Queues a payload for the team's webhook, due at once; its id.
    pub async fn enqueue_delivery(&self, team_id: i64, payload: &str, now: i64) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        insert_delivery(&mut conn, team_id, payload, now).await
    }

    /// Undelivered deliveries due at `now`, the longest waiting first.
    pub async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        );
        Ok(sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(&self.pool).await?)
    }

    /// Records a successful attempt; false when there is no such delivery
    /// or it was already delivered.
    pub async fn mark_delivered(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET delivered_at = $2, attempts = attempts + 1, last_error = NULL \
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt and when to try again (the caller's backoff).
    pub async fn mark_failed(&self, id: i64, error: &str, next_attempt_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(error)
        .bind(next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A team's deliveries, newest first.
    pub async fn deliveries_of(&self, team_id: i64, limit: i64) -> Result<Vec<Delivery>> {
        let sql =
            format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE team_id = $1 ORDER BY id DESC LIMIT $2");
        Ok(sqlx::query_as(&sql).bind(team_id).bind(limit).fetch_all(&self.pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVEMBER: i64 = 1_793_491_200_000;

    crate::store_test!(a_team_webhook_is_set_replaced_removed_and_goes_with_the_team, |store| {
        let team = store.create_team("vision").await.unwrap().id;
        assert_eq!(store.team_webhook(team).await.unwrap(), None);
        let secret = "https://hooks.slack.com/services/T000/B000/sEcReT";
        store.set_team_webhook(team, Some(secret)).await.unwrap();
        let hook = store.team_webhook(team).await.unwrap().unwrap();
        assert_eq!(hook.url, secret);
        let shown = format!("{hook:?}");
        assert!(shown.contains("hooks.slack.com") && !shown.contains("sEcReT"), "{shown}");
        store.set_team_webhook(team, Some("https://example.com/hook")).await.unwrap();
        assert_eq!(store.team_webhook(team).await.unwrap().unwrap().url, "https://example.com/hook");
        store.set_team_webhook(team, None).await.unwrap();
        assert_eq!(store.team_webhook(team).await.unwrap(), None);
        store.set_team_webhook(team, Some(secret)).await.unwrap();
        store.delete_team(team).await.unwrap();
        assert_eq!(store.team_webhook(team).await.unwrap(), None, "deleting a team deletes its webhook");
    });

    crate::store_test!(an_alert_fires_once_per_team_month_kind_and_percent, |store| {
        let vision = store.create_team("vision").await.unwrap().id;
        let nlp = store.create_team("nlp").await.unwrap().id;
        let fire = |team, month, kind, percent, at| store.fire_alert_once(team, month, kind, percent, at);
        let (first, second) = tokio::join!(
            fire(vision, NOVEMBER, AlertKind::Forecast, 80, 10),
            fire(vision, NOVEMBER, AlertKind::Forecast, 80, 11)
        );
        assert!(first.unwrap() ^ second.unwrap(), "exactly one of two racing callers fires it");
        assert!(!fire(vision, NOVEMBER, AlertKind::Forecast, 80, 20).await.unwrap());
        assert!(fire(vision, NOVEMBER, AlertKind::Actual, 80, 30).await.unwrap(), "another kind");
        assert!(fire(vision, NOVEMBER, AlertKind::Forecast, 100, 40).await.unwrap(), "another percent");
        assert!(fire(nlp, NOVEMBER, AlertKind::Forecast, 80, 50).await.unwrap(), "another team");
        assert!(fire(vision, NOVEMBER + 1, AlertKind::Forecast, 80, 60).await.unwrap(), "another month");
        let fired = store.alerts_of(vision, NOVEMBER).await.unwrap();
        let lines: Vec<(AlertKind, u8)> = fired.iter().map(|f| (f.alert.kind, f.alert.percent)).collect();
        assert_eq!(lines, [(AlertKind::Forecast, 80), (AlertKind::Actual, 80), (AlertKind::Forecast, 100)]);
        assert!(fired[0].fired_at == 10 || fired[0].fired_at == 11);
        assert!(fired.iter().all(|f| f.month_ms == NOVEMBER));
        assert!(store.alerts_of(vision, NOVEMBER - 1).await.unwrap().is_empty());
        store.delete_team(nlp).await.unwrap();
        assert!(store.alerts_of(nlp, NOVEMBER).await.unwrap().is_empty(), "they go with the team");
    });

    crate::store_test!(an_alert_and_its_delivery_are_written_together_once, |store| {
        let team = store.create_team("vision").await.unwrap().id;
        let payload = r#"{"team":"vision","percent":80}"#;
        assert!(store.fire_alert(team, NOVEMBER, AlertKind::Actual, 80, Some(payload), 100).await.unwrap());
        assert!(!store.fire_alert(team, NOVEMBER, AlertKind::Actual, 80, Some(payload), 200).await.unwrap());
        let queued = store.deliveries_of(team, 10).await.unwrap();
        assert_eq!(queued.len(), 1, "the second firing queued nothing");
        assert_eq!((queued[0].payload.as_str(), queued[0].next_attempt_at, queued[0].attempts), (payload, 100, 0));
        // Without a webhook the alert is recorded and nothing is queued.
        assert!(store.fire_alert(team, NOVEMBER, AlertKind::Actual, 100, None, 300).await.unwrap());
        assert_eq!(store.deliveries_of(team, 10).await.unwrap().len(), 1);
        assert_eq!(store.alerts_of(team, NOVEMBER).await.unwrap().len(), 2);

        // A delivery that cannot be written takes its alert with it.
        store.execute_for_tests("DROP TABLE webhook_deliveries").await.unwrap();
        assert!(store.fire_alert(team, NOVEMBER, AlertKind::Forecast, 100, Some(payload), 400).await.is_err());
        assert_eq!(store.alerts_of(team, NOVEMBER).await.unwrap().len(), 2, "no alert without its delivery");
    });

    crate::store_test!(deliveries_are_retried_until_delivered, |store| {
        let vision = store.create_team("vision").await.unwrap().id;
        let nlp = store.create_team("nlp").await.unwrap().id;
        let first = store.enqueue_delivery(vision, "one", 100).await.unwrap();
        let second = store.enqueue_delivery(vision, "two", 150).await.unwrap();
        let other = store.enqueue_delivery(nlp, "three", 120).await.unwrap();
        assert!(first != second && second != other);
        let ids = |deliveries: Vec<Delivery>| deliveries.into_iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(store.due_deliveries(99, 10).await.unwrap()), Vec::<i64>::new());
        assert_eq!(ids(store.due_deliveries(200, 10).await.unwrap()), [first, other, second], "longest waiting first");
        assert_eq!(ids(store.due_deliveries(200, 2).await.unwrap()), [first, other]);

        assert!(store.mark_failed(first, "HTTP 503", 1_000).await.unwrap());
        assert_eq!(ids(store.due_deliveries(200, 10).await.unwrap()), [other, second], "backing off");
        assert!(store.mark_delivered(other, 210).await.unwrap());
        assert!(!store.mark_delivered(other, 220).await.unwrap(), "delivered once");
        assert!(!store.mark_failed(other, "late", 300).await.unwrap(), "a delivered one stays delivered");
        assert_eq!(ids(store.due_deliveries(1_000, 10).await.unwrap()), [second, first], "by when each is due");

        let mine = store.deliveries_of(vision, 10).await.unwrap();
        assert_eq!(ids(mine.clone()), [second, first], "newest first");
        let failed = &mine[1];
        assert_eq!(
            (failed.attempts, failed.last_error.as_deref(), failed.next_attempt_at),
            (1, Some("HTTP 503"), 1_000)
        );
        assert!(store.mark_delivered(first, 1_001).await.unwrap());
        let done = &store.deliveries_of(vision, 1).await.unwrap()[0];
        assert_eq!(done.id, second, "the limit keeps the newest");
        let first_now = store.deliveries_of(vision, 10).await.unwrap().pop().unwrap();
        assert_eq!((first_now.attempts, first_now.delivered_at, first_now.last_error), (2, Some(1_001), None));
        let theirs = store.deliveries_of(nlp, 10).await.unwrap();
        assert_eq!((theirs.len(), theirs[0].delivered_at, theirs[0].attempts), (1, Some(210), 1));
    });
}
