//! When one cluster's apiserver goes away, that cluster turns stale (with
//! its last contact kept) while the other stays live; when it comes back,
//! the watches recover by themselves.

use std::time::Duration;

use gantry_cluster::{Hub, Viewer, queries};
use gantry_domain::view::ConnectionState;
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("x").and(Fleet::small("y")))
}

#[tokio::test]
async fn a_lost_cluster_is_stale_the_other_stays_live_and_it_recovers() {
    let hub = Hub::new();
    for name in ["x", "y"] {
        hub.connect(name, bed().cluster(name).unwrap().config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await);
    let state = |name: &str| queries::cluster(&hub, &Viewer::everything(), name).unwrap();
    eventually("both clusters are live", 30, || async {
        (state("x").state == ConnectionState::Live && state("y").state == ConnectionState::Live).then_some(())
    })
    .await;
    let nodes_before = state("x").nodes;

    bed().cluster("x").unwrap().stop_apiserver().unwrap();
    let stale =
        eventually("x turns stale", 30, || async { Some(state("x")).filter(|c| c.state == ConnectionState::Stale) })
            .await;
    assert!(stale.last_contact.is_some(), "the time of last contact is kept");
    assert!(stale.message.is_some(), "the state says why");
    assert_eq!(stale.nodes, nodes_before, "the last known data is still shown");
    assert_eq!(state("y").state, ConnectionState::Live, "the other cluster is unaffected");
    assert!(!queries::nodes(&hub, &Viewer::everything(), &Default::default()).items.is_empty());

    bed().cluster("x").unwrap().start_apiserver().await.unwrap();
    eventually("x recovers", 90, || async { Some(state("x")).filter(|c| c.state == ConnectionState::Live) }).await;
}
