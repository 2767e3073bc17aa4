//! Self-healing in the API, in a test binary (and testbed) of its own: the
//! crash-looping pod changes every few seconds, which would reach the event
//! streams that other tests watch for silence.

mod common;

use common::Who;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Self-healing in the API: a pod the testbed makes crash-loop shows
/// CrashLoopBackOff with a growing restart count and its last exit, and the
/// overview's unhealthy list names it, to its own team's viewer only.
#[tokio::test]
async fn a_crash_looping_pod_shows_its_reason_and_restarts_in_the_api_to_its_team_only() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let vision = app.token(Who::Viewer).await.unwrap();
    let client = common::bed().cluster("a").unwrap().client().await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "api-crasher", "namespace": "vision",
            "annotations": { gantry_testbed::kwok::CRASH_LOOP_ANNOTATION: "true" } },
        "spec": { "containers": [ { "name": "main", "image": "example/app:1" } ] }
    }))
    .unwrap();
    Api::<Pod>::namespaced(client, "vision").create(&PostParams::default(), &pod).await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: &'static str, token: String| {
        let (http, url) = (http.clone(), app.url(path));
        async move { http.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let crasher = || async {
        let page = get("/api/v1/pods?q=api-crasher", vision.clone()).await;
        page["items"].as_array().unwrap().first().cloned()
    };
    let first = gantry_testbed::shared::eventually("the pod is in CrashLoopBackOff", 60, || async {
        crasher().await.filter(|p| p["waiting"] == "CrashLoopBackOff" && p["restarts"].as_i64() >= Some(1))
    })
    .await;
    assert_eq!(first["last_termination"]["reason"], "Error", "{first}");
    assert_eq!(first["last_termination"]["exit_code"], 1, "{first}");
    gantry_testbed::shared::eventually("its restart count grows", 60, || async {
        crasher().await.filter(|p| p["restarts"].as_i64() > first["restarts"].as_i64())
    })
    .await;
    let listed = |overview: &Value| {
        overview["unhealthy"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "api-crasher" && w["kind"] == "Pod" && w["troubles"] == json!(["crash_looping"]))
    };
    assert!(listed(&get("/api/v1/overview", vision.clone()).await), "its team sees it on the unhealthy list");
    let admin = app.token(Who::Admin).await.unwrap();
    assert!(listed(&get("/api/v1/overview", admin).await));
    let nlp = app.token(Who::OtherTeamAdmin).await.unwrap();
    assert!(!listed(&get("/api/v1/overview", nlp).await), "another team does not");
}
