//! Starting, stopping and tearing down testbeds (each test has its own).

mod common;

use std::time::Duration;

use common::process_exists;
use gantry_testbed::{Component, Error, Fleet, Options, Testbed};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

async fn node_count(client: kube::Client) -> kube::Result<usize> {
    let list = Api::<Node>::all(client).list(&ListParams::default()).await?;
    Ok(list.items.len())
}

#[tokio::test]
async fn stopping_one_apiserver_leaves_the_other_cluster_live_and_restarting_recovers() {
    let bed = Testbed::start(&Fleet::small("x").and(Fleet::small("y")), Options::default()).await.unwrap();
    let (x, y) = (bed.cluster("x").unwrap(), bed.cluster("y").unwrap());
    let (cx, cy) = (x.client().await.unwrap(), y.client().await.unwrap());
    assert_eq!(node_count(cx.clone()).await.unwrap(), 3);

    x.stop(Component::KubeApiserver).unwrap();
    assert!(!x.pids().iter().any(|(c, _)| *c == Component::KubeApiserver));
    let down = tokio::time::timeout(Duration::from_secs(10), node_count(cx.clone())).await;
    assert!(matches!(down, Ok(Err(_))), "x still answers after its apiserver stopped: {down:?}");
    assert_eq!(node_count(cy.clone()).await.unwrap(), 3, "y must stay live");
    bed.check().expect("a deliberately stopped apiserver is not a failure");

    x.start(Component::KubeApiserver).await.unwrap();
    // Same port and certificates: the old client works again, and the data survived.
    assert_eq!(node_count(cx).await.unwrap(), 3);
    assert_eq!(node_count(cy).await.unwrap(), 3);
    bed.check().unwrap();
}

#[tokio::test]
async fn a_dead_component_is_reported_and_dropping_leaves_no_processes() {
    let bed =
        Testbed::start(&Fleet::small("solo"), Options { apply_workloads: false, ..Options::default() }).await.unwrap();
    let state_dir = bed.state_dir().to_path_buf();
    assert!(state_dir.join("kubeconfig").exists());
    let cluster = bed.cluster("solo").unwrap();
    let pids = bed.pids();
    assert_eq!(pids.len(), 5, "etcd, apiserver, controller-manager, scheduler and kwok");
    assert!(pids.iter().all(|&pid| process_exists(pid)));

    let (_, scheduler) = *cluster.pids().iter().find(|(c, _)| *c == Component::KubeScheduler).unwrap();
    // SAFETY: plain kill(2) of a child this test started.
    unsafe { libc::kill(scheduler as libc::pid_t, libc::SIGKILL) };
    let err = common::eventually("check() to notice", 10, || async { bed.check().err() }).await;
    match &err {
        Error::ComponentDied { cluster, component, tail, .. } => {
            assert_eq!(cluster, "solo");
            assert_eq!(*component, "kube-scheduler");
            assert!(!tail.trim().is_empty(), "the error quotes the log");
        }
        other => panic!("unexpected error {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("solo") && message.contains("kube-scheduler.log"), "{message}");

    drop(bed);
    let left: Vec<u32> = pids.into_iter().filter(|&pid| process_exists(pid)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(!state_dir.exists(), "state dir {} left behind", state_dir.display());
}

#[tokio::test]
async fn an_invalid_fleet_starts_nothing() {
    let err = Testbed::start(&Fleet::small("twin").and(Fleet::small("twin")), Options::default())
        .await
        .err()
        .expect("duplicate cluster names are refused");
    assert!(matches!(err, Error::FleetRules(ref m) if m.contains("`twin` is used twice")), "{err}");
}
