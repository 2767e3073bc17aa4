//! Team scoping of the fleet API and the live stream: a viewer of team
//! vision never receives anything of team nlp.

mod common;

use std::time::Duration;

use common::Who;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

async fn pod(cluster: &str, namespace: &str, name: &str) {
    let client = common::bed().cluster(cluster).unwrap().client().await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "containers": [ { "name": "main", "image": "example/app:1" } ] }
    }))
    .unwrap();
    Api::<Pod>::namespaced(client, namespace).create(&PostParams::default(), &pod).await.unwrap();
}

/// Reads SSE `data:` lines until `deadline`.
async fn events_within(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    wait: Duration,
) -> Vec<Value> {
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buffer = String::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for line in event.lines() {
                let data = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:"));
                if let Some(value) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                    found.push(value);
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn a_viewer_never_receives_another_teams_pods_in_the_api_or_the_stream() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let token = app.token(Who::Viewer).await.unwrap();
    let http = reqwest::Client::new();
    pod("a", "nlp", "nlp-secret").await;
    pod("a", "vision", "vision-visible").await;
    let list = |query: &'static str| {
        let (http, token, url) = (http.clone(), token.clone(), app.url(&format!("/api/v1/pods?per_page=500{query}")));
        async move { http.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    gantry_testbed::shared::eventually("the vision pod is listed", 30, || async {
        list("").await["items"].as_array().unwrap().iter().any(|p| p["name"] == "vision-visible").then_some(())
    })
    .await;
    let page = list("").await;
    let items = page["items"].as_array().unwrap();
    assert!(items.iter().all(|p| p["namespace"] == "vision"), "{items:?}");
    assert!(
        list("&namespace=nlp").await["items"].as_array().unwrap().is_empty(),
        "asking for nlp by name does not help"
    );
    let overview: Value =
        http.get(app.url("/api/v1/overview")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(overview["clusters"].as_array().unwrap().iter().all(|c| c["name"] == "a" || c["name"] == "b"));

    let response = http.get(app.url("/api/v1/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = Box::pin(response.bytes_stream());
    // Let the stream settle, then change only team nlp's namespace.
    let _ = events_within(&mut stream, Duration::from_millis(500)).await;
    pod("a", "nlp", "nlp-secret-2").await;
    let leaked = events_within(&mut stream, Duration::from_secs(2)).await;
    assert!(leaked.is_empty(), "a change in nlp reached a vision viewer: {leaked:?}");
    pod("a", "vision", "vision-visible-2").await;
    let seen = events_within(&mut stream, Duration::from_secs(2)).await;
    assert!(
        seen.iter().any(|e| e["kinds"].as_array().unwrap().contains(&json!("pod"))),
        "the vision change arrives: {seen:?}"
    );
    assert!(seen.iter().all(|e| e["clusters"] == json!(["a"])));
}
