//! Server-Sent Event streams: live changes (fed by the watch caches, filtered
//! to what the caller may see) and pod logs.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use gantry_domain::view::ResourceKind;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::rest::{ApiCaller, ApiError, Path, Query};
use crate::web::WebState;

/// Changes within this window are sent as one message.
const COALESCE: Duration = Duration::from_millis(150);
/// How often an open stream re-reads the caller's credential and rights:
/// sign-out, an expired session, a revoked token, a deleted user or changed
/// memberships end it within this time.
const RECHECK: Duration = Duration::from_secs(3);

/// `GET /api/v1/events`: one `change` event per burst of changes, listing
/// the kinds and clusters that changed, only for namespaces and clusters the
/// caller may see. The stream ends when the caller's credential ends or
/// their rights change; the browser then reconnects with what it has now
/// (and is refused if that is nothing).
#[utoipa::path(get, path = "/api/v1/events", responses((status = 200, content_type = "text/event-stream", description = "events named `change` with data {\"kinds\": [...], \"clusters\": [...]}")), extensions(("x-gantry-access" = json!("signed_in"))))]
pub async fn events(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let viewer = web.app.viewer(&caller).await?;
    let mut changes = web.app.subscribe();
    let mut shutdown = web.shutdown.clone();
    let app = web.app.clone();
    let stream = async_stream(move |tx| async move {
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        loop {
            let first = tokio::select! {
                change = changes.recv() => change,
                _ = recheck.tick() => {
                    let unchanged = match app.recheck(&caller).await {
                        Ok(Some(now)) if now.principal == caller.principal => {
                            app.viewer(&now).await.is_ok_and(|v| v.visibility == viewer.visibility)
                        }
                        // Signed out, revoked or deleted.
                        _ => false,
                    };
                    if unchanged { continue } else { return }
                }
                _ = shutdown.changed() => return,
            };
            let mut kinds = BTreeSet::new();
            let mut clusters = BTreeSet::new();
            let mut take =
                |change: Result<gantry_cluster::Change, RecvError>, viewer: &gantry_cluster::Viewer| match change {
                    Ok(c) => {
                        let visible = match &c.namespace {
                            // Not about a cluster: every signed-in user sees what is being prepared.
                            _ if c.kind == ResourceKind::Preparation => true,
                            Some(ns) => viewer.visibility.namespace(&c.cluster, ns),
                            None => viewer.visibility.cluster(&c.cluster),
                        };
                        if visible {
                            kinds.insert(c.kind);
                            if !c.cluster.is_empty() {
                                clusters.insert(c.cluster.to_string());
                            }
                        }
                        true
                    }
                    // Missed some: tell the page to refresh everything it shows.
                    Err(RecvError::Lagged(_)) => {
                        kinds.extend(ResourceKind::ALL);
                        true
                    }
                    Err(RecvError::Closed) => false,
                };
            if !take(first, &viewer) {
                return;
            }
            let deadline = tokio::time::Instant::now() + COALESCE;
            while let Ok(next) = tokio::time::timeout_at(deadline, changes.recv()).await {
                if !take(next, &viewer) {
                    return;
                }
            }
            if kinds.is_empty() {
                continue;
            }
            let data = serde_json::json!({ "kinds": kinds, "clusters": clusters }).to_string();
            if tx.send(Event::default().event("change").data(data)).await.is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(stream.map(Ok)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A tiny adapter: runs `producer` with a sender and yields what it sends.
fn async_stream<T, F, Fut>(producer: F) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Keep the stream open and send new lines as they come.
    pub follow: Option<bool>,
    /// `sse` for Server-Sent Events (`line` events, then `end`); plain text otherwise.
    pub format: Option<String>,
}

/// A pod's log, bounded in size; followed when asked.
#[utoipa::path(get, path = "/api/v1/clusters/{cluster}/namespaces/{namespace}/pods/{pod}/logs",
    params(("cluster" = String, Path, example = "prod"), ("namespace" = String, Path, example = "vision"), ("pod" = String, Path), LogParams),
    responses((status = 200, content_type = "text/plain", body = String)), extensions(("x-gantry-access" = json!("team:viewer"))))]
pub async fn logs(
    State(web): State<WebState>,
    ApiCaller(caller): ApiCaller,
    Path((cluster, namespace, pod)): Path<(String, String, String)>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    let follow = params.follow.unwrap_or(false);
    let lines = web.app.pod_logs(&caller, &cluster, &namespace, &pod, follow).await?;
    let mut shutdown = web.shutdown.clone();
    let lines = lines.take_until(async move {
        let _ = shutdown.changed().await;
    });
    if params.format.as_deref() == Some("sse") {
        let events = lines
            .map(|line| match line {
                Ok(text) => Event::default().event("line").data(text),
                Err(error) => Event::default().event("line").data(format!("[gantry] the log stream broke: {error}")),
            })
            .chain(futures::stream::once(async { Event::default().event("end").data("") }))
            .map(Ok::<_, Infallible>);
        return Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response());
    }
    let body = lines.map(|line| match line {
        Ok(text) => Ok::<_, Infallible>(format!("{text}\n")),
        Err(error) => Ok(format!("[gantry] the log stream broke: {error}\n")),
    });
    Ok(([(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], HttpBody::from_stream(body)).into_response())
}
