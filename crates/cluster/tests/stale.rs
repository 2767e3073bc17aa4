//! When one cluster's apiserver dies (SIGKILL), that cluster turns stale
//! within 5 s with its last data and contact kept, while the other stays live
//! and keeps updating; when the apiserver comes back, Gantry recovers within
//! 10 s by itself, and its watches resume where they were instead of listing
//! everything again. The same when etcd dies under a running apiserver, with
//! the apiserver's own reason shown.

use std::time::{Duration, Instant};

use gantry_cluster::{Change, Hub, Viewer, queries};
use gantry_domain::view::{ConnectionState, ResourceKind};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Component, Fleet, Testbed};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("x").and(Fleet::small("y")))
}

/// Creates a namespace in `cluster` and waits for the hub to announce it.
async fn a_new_namespace_is_seen(
    changes: &mut tokio::sync::broadcast::Receiver<Change>,
    cluster: &str,
    within: Duration,
) {
    let client = bed().cluster(cluster).unwrap().client().await.unwrap();
    let name =
        format!("seen-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client).create(&PostParams::default(), &namespace).await.unwrap();
    let seen = tokio::time::timeout(within, async {
        loop {
            match changes.recv().await {
                Ok(change) if &*change.cluster == cluster && change.kind == ResourceKind::Namespace => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("the change stream ended: {error}"),
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "namespace {name} of {cluster} not seen within {within:?}");
}

/// How many LISTs Gantry sent to `cluster`'s apiserver, by its audit log.
fn lists(cluster: &str) -> usize {
    let requests = bed().cluster(cluster).unwrap().audited_requests();
    requests.iter().filter(|r| r.verb == "list").count()
}

#[tokio::test]
async fn a_killed_apiserver_is_stale_within_5_s_the_other_stays_live_and_it_recovers_within_10_s() {
    let hub = Hub::new();
    for name in ["x", "y"] {
        hub.connect(name, bed().cluster(name).unwrap().gantry_config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await);
    let state = |name: &str| queries::cluster(&hub, &Viewer::everything(), name).unwrap();
    eventually("both clusters are live", 30, || async {
        (state("x").state == ConnectionState::Live && state("y").state == ConnectionState::Live).then_some(())
    })
    .await;
    let mut changes = hub.subscribe();
    let nodes_before = state("x").nodes;
    let lists_before = lists("x");

    bed().cluster("x").unwrap().kill(Component::KubeApiserver).unwrap();
    let killed = Instant::now();
    let stale =
        eventually("x turns stale", 5, || async { Some(state("x")).filter(|c| c.state == ConnectionState::Stale) })
            .await;
    eprintln!("x stale {:?} after SIGKILL", killed.elapsed());
    assert!(stale.last_contact.is_some(), "the time of last contact is kept");
    assert!(stale.message.is_some(), "the state says why");
    assert_eq!(stale.nodes, nodes_before, "the last known data is still shown");
    assert_eq!(state("y").state, ConnectionState::Live, "the other cluster is unaffected");
    a_new_namespace_is_seen(&mut changes, "y", Duration::from_secs(5)).await;
    assert!(!queries::nodes(&hub, &Viewer::everything(), &Default::default()).items.is_empty());

    bed().cluster("x").unwrap().start(Component::KubeApiserver).await.unwrap();
    let back = Instant::now();
    eventually("x is live again", 10, || async { Some(state("x")).filter(|c| c.state == ConnectionState::Live) }).await;
    eprintln!("x live {:?} after its apiserver was ready again", back.elapsed());
    let remaining = Duration::from_secs(10).saturating_sub(back.elapsed()).max(Duration::from_secs(1));
    a_new_namespace_is_seen(&mut changes, "x", remaining).await;
    assert_eq!(lists("x"), lists_before, "the watches resumed from where they were, without listing again");

    // etcd under a running apiserver: the apiserver still answers, but is
    // not ready, and says why; the cluster shows that, not a blank page.
    bed().cluster("x").unwrap().kill(Component::Etcd).unwrap();
    let killed = Instant::now();
    let stale = eventually("x turns stale without its etcd", 5, || async {
        Some(state("x")).filter(|c| c.state == ConnectionState::Stale)
    })
    .await;
    eprintln!("x stale {:?} after its etcd was killed: {:?}", killed.elapsed(), stale.message);
    // The apiserver takes its own etcd timeouts to say what is wrong.
    let told = eventually("the apiserver's reason is shown", 20, || async {
        Some(state("x")).filter(|c| c.message.as_deref().is_some_and(|m| m.contains("etcd")))
    })
    .await;
    eprintln!("x's reason {:?} after its etcd was killed: {:?}", killed.elapsed(), told.message);
    assert_eq!(told.state, ConnectionState::Stale);
    assert_eq!(stale.nodes, nodes_before, "the last known data is still shown");
    assert_eq!(state("y").state, ConnectionState::Live, "the other cluster is unaffected");
    bed().cluster("x").unwrap().start(Component::Etcd).await.unwrap();
    let back = Instant::now();
    eventually("x is live again with its etcd", 10, || async {
        Some(state("x")).filter(|c| c.state == ConnectionState::Live)
    })
    .await;
    eprintln!("x live {:?} after its etcd was ready again", back.elapsed());
    let remaining = Duration::from_secs(10).saturating_sub(back.elapsed()).max(Duration::from_secs(1));
    a_new_namespace_is_seen(&mut changes, "x", remaining).await;
}
