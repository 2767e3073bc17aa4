//! The watch caches and read models against real control planes (the
//! testbed): two clusters, `a` and `b`, each with an H100 spot node, an A100
//! on-demand node with MIG slices, and a CPU node.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gantry_cluster::{Hub, Viewer, actions, queries};
use gantry_domain::gpu::CapacityType;
use gantry_domain::policy::Visibility;
use gantry_domain::validate::{KubeName, LabelName};
use gantry_domain::view::{ListQuery, ResourceKind};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

fn bed() -> &'static Testbed {
    shared(|| Fleet::small("a").and(Fleet::small("b")))
}

async fn hub() -> Arc<Hub> {
    let hub = Hub::new();
    for name in ["a", "b"] {
        hub.connect(name, bed().cluster(name).unwrap().config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "caches never synced");
    hub
}

async fn pod(cluster: &str, namespace: &str, name: &str, gpus: u32, model: Option<&str>) {
    let client = bed().cluster(cluster).unwrap().client().await.unwrap();
    let mut spec = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "containers": [ { "name": "main", "image": "example/model:1",
            "resources": { "limits": { "nvidia.com/gpu": gpus.to_string() } } } ] }
    });
    if let Some(model) = model {
        spec["spec"]["nodeSelector"] = json!({ "nvidia.com/gpu.product": model });
    }
    let pod: Pod = serde_json::from_value(spec).unwrap();
    Api::<Pod>::namespaced(client, namespace).create(&PostParams::default(), &pod).await.unwrap();
}

#[tokio::test]
async fn inventory_shows_models_counts_allocation_and_capacity_types() {
    let hub = hub().await;
    pod("a", "vision", "inventory-probe", 3, Some("NVIDIA-H100-80GB-HBM3")).await;
    let nodes = eventually("the H100 node shows 3 GPUs allocated", 30, || async {
        let page =
            queries::nodes(&hub, &Viewer::everything(), &ListQuery { cluster: Some("a".into()), ..Default::default() });
        page.items.iter().any(|n| n.gpus.model == "NVIDIA-H100-80GB-HBM3" && n.gpu_allocated == 3).then_some(page.items)
    })
    .await;
    let h100 = nodes.iter().find(|n| n.gpus.model == "NVIDIA-H100-80GB-HBM3").unwrap();
    assert_eq!((h100.gpus.capacity, h100.gpus.allocatable, h100.gpu_free), (8, 8, 5));
    assert_eq!(h100.gpus.capacity_type, CapacityType::Spot);
    let a100 = nodes.iter().find(|n| n.gpus.model == "NVIDIA-A100-SXM4-80GB").unwrap();
    assert_eq!(a100.gpus.capacity_type, CapacityType::OnDemand);
    assert_eq!(
        a100.gpus.mig.iter().map(|m| (m.profile.as_str(), m.capacity)).collect::<Vec<_>>(),
        vec![("1g.10gb", 7)]
    );
    let cpu = nodes.iter().find(|n| !n.gpus.has_gpus()).expect("a CPU-only node");
    assert_eq!(cpu.gpus.model, "");

    let overview = queries::overview(&hub, &Viewer::everything());
    assert_eq!(overview.clusters.len(), 2);
    let h100_models = overview.gpu_models.iter().find(|m| m.model == "NVIDIA-H100-80GB-HBM3").unwrap();
    assert_eq!(h100_models.capacity, 16, "two clusters, one 8-GPU H100 node each");
    assert!(h100_models.allocated >= 3);
    assert_eq!(h100_models.spot_gpus, 16);

    // The GPUs in use, from the running totals, match a pass over every pod
    // (retried: other tests change pods meanwhile).
    eventually("the overview's GPUs in use match a pass over the pods", 30, || async {
        let overview = queries::overview(&hub, &Viewer::everything());
        let counted = queries::gpu_uses(&hub, |_, _| true);
        (!counted.is_empty() && overview.gpus_in_use == counted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_pod_that_cannot_fit_is_pending_with_the_schedulers_reason() {
    let hub = hub().await;
    pod("b", "nlp", "too-big", 64, None).await;
    let row = eventually("the pod is listed as pending with the scheduler's reason", 45, || async {
        let page = queries::pending(
            &hub,
            &Viewer::everything(),
            &ListQuery { q: Some("too-big".into()), ..Default::default() },
        );
        page.items.into_iter().find(|p| p.reason.contains("Insufficient nvidia.com/gpu"))
    })
    .await;
    assert_eq!((row.cluster.as_str(), row.namespace.as_str(), row.gpus), ("b", "nlp", 64));
    assert!(row.reason.contains("nodes are available"), "{}", row.reason);
    assert!(queries::overview(&hub, &Viewer::everything()).pending_gpu_pods >= 1);
}

/// The pod list picks each page without sorting every pod into rows (in the
/// default order it reads the ordered caches directly); its pages must be
/// those of a full stable sort by the column's key, in both directions,
/// across clusters and namespaces, for everyone and for a viewer of some
/// namespaces, including the last page and past it.
#[tokio::test]
async fn pod_pages_match_a_full_sort_across_clusters() {
    use k8s_openapi::api::core::v1::Namespace;
    let hub = hub().await;
    for cluster in ["a", "b"] {
        let client = bed().cluster(cluster).unwrap().client().await.unwrap();
        for name in ["paging", "paging-more"] {
            let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
            Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
        }
    }
    // GPU pods go to the A100 nodes: the inventory test counts the H100s' allocation.
    for (cluster, namespace, name, gpus) in [
        ("a", "paging", "p-1", 0),
        ("a", "paging", "p-2", 1),
        ("a", "paging", "same", 0),
        ("b", "paging", "same", 0),
        ("b", "paging", "p-0", 2),
        ("a", "paging-more", "m-0", 0),
        ("b", "paging-more", "m-1", 0),
    ] {
        pod(cluster, namespace, name, gpus, (gpus > 0).then_some("NVIDIA-A100-SXM4-80GB")).await;
    }
    let only_paging = || ListQuery { namespace: Some("paging".into()), per_page: Some(500), ..Default::default() };
    let all = eventually("the five pods run", 60, || async {
        let page = queries::pods(&hub, &Viewer::everything(), &only_paging());
        (page.items.len() == 5 && page.items.iter().all(|p| p.phase == "Running")).then_some(page.items)
    })
    .await;
    // A viewer of both namespaces in both clusters, asking with no place filter.
    let both = ["paging".to_string(), "paging-more".to_string()];
    let viewer = Viewer {
        visibility: Visibility::Only([("a".to_string(), both.clone().into()), ("b".to_string(), both.into())].into()),
        teams: Default::default(),
    };
    let anywhere = || ListQuery { per_page: Some(500), ..Default::default() };
    let all_of_viewer = eventually("the viewer's seven pods run", 60, || async {
        let page = queries::pods(&hub, &viewer, &anywhere());
        (page.items.len() == 7 && page.items.iter().all(|p| p.phase == "Running")).then_some(page.items)
    })
    .await;
    // A full stable sort by the column's key, as ListQuery::paginate does.
    let key = |p: &gantry_domain::view::PodRow, column: &str| match column {
        "gpus" => (p.gpus, String::new(), String::new(), p.name.clone()),
        "created" => (p.created.unwrap_or(0), String::new(), String::new(), p.name.clone()),
        "phase" => (0, p.phase.clone(), String::new(), p.name.clone()),
        "node" => (0, p.node.clone().unwrap_or_default(), String::new(), p.name.clone()),
        _ => (0, p.cluster.clone(), p.namespace.clone(), p.name.clone()),
    };
    let cases = [(&Viewer::everything(), only_paging(), &all), (&viewer, anywhere(), &all_of_viewer)];
    for (who, base, rows) in cases {
        for column in ["", "gpus", "created", "phase", "node", "no-such-column"] {
            for desc in [false, true] {
                for per_page in [1, 2, 4] {
                    for page in 1..=9 {
                        let query = ListQuery {
                            sort: Some(column.into()),
                            desc,
                            page: Some(page),
                            per_page: Some(per_page),
                            ..base.clone()
                        };
                        let got = queries::pods(&hub, who, &query);
                        let want = query.paginate(rows.clone(), key);
                        let keys = |items: &[gantry_domain::view::PodRow]| {
                            items.iter().map(|p| key(p, column)).collect::<Vec<_>>()
                        };
                        assert_eq!(
                            (keys(&got.items), got.total, got.page, got.per_page),
                            (keys(&want.items), want.total, want.page, want.per_page),
                            "{} pods: sort {column:?}, desc {desc}, page {page} of {per_page}",
                            rows.len()
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_sees_only_their_namespaces() {
    let hub = hub().await;
    pod("a", "nlp", "secret-nlp-pod", 0, None).await;
    pod("a", "vision", "vision-pod", 0, None).await;
    let viewer = Viewer {
        visibility: Visibility::Only([("a".to_string(), ["vision".to_string()].into())].into()),
        teams: Default::default(),
    };
    eventually("the vision pod is visible", 30, || async {
        let page = queries::pods(&hub, &viewer, &ListQuery::default());
        page.items.iter().any(|p| p.name == "vision-pod").then_some(())
    })
    .await;
    let page = queries::pods(&hub, &viewer, &ListQuery { per_page: Some(500), ..Default::default() });
    assert!(page.items.iter().all(|p| p.cluster == "a" && p.namespace == "vision"), "{:?}", page.items);
    assert!(
        queries::clusters(&hub, &viewer).iter().all(|c| c.name == "a"),
        "cluster b has none of the viewer's namespaces"
    );
}

#[tokio::test]
async fn a_jobs_logs_stream() {
    let hub = hub().await;
    let client = bed().cluster("b").unwrap().client().await.unwrap();
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "log-probe", "namespace": "vision" },
        "spec": { "template": {
            "metadata": { "annotations": {
                "pod-complete.stage.kwok.x-k8s.io/delay": "600s",
                "pod-complete.stage.kwok.x-k8s.io/jitter-delay": "600s" } },
            "spec": { "restartPolicy": "Never", "containers": [ { "name": "train", "image": "example/trainer:1" } ] } } }
    }))
    .unwrap();
    Api::<Job>::namespaced(client, "vision").create(&PostParams::default(), &job).await.unwrap();
    let cluster = hub.cluster("b").unwrap();
    let pod = eventually("the job's pod runs", 45, || async {
        let (_, pods, _) = queries::job(&hub, &Viewer::everything(), "b", "vision", "log-probe")?;
        pods.into_iter().find(|p| p.phase == "Running").map(|p| p.name)
    })
    .await;
    let (namespace, pod) = (LabelName::parse("namespace", "vision").unwrap(), KubeName::parse("pod", &pod).unwrap());
    let lines = actions::log_lines(&cluster, &namespace, &pod, None, true, 100, 1 << 20).await.unwrap();
    let first: Vec<String> = tokio::time::timeout(Duration::from_secs(20), lines.take(2).map(|l| l.unwrap()).collect())
        .await
        .expect("log lines within 20 s");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|l| !l.is_empty()));
}

#[tokio::test]
async fn changes_are_announced_within_a_second() {
    let hub = hub().await;
    let mut changes = hub.subscribe();
    let started = std::time::Instant::now();
    pod("a", "vision", "announce-probe", 0, None).await;
    let change = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let change = changes.recv().await.unwrap();
            if change.kind == ResourceKind::Pod
                && change.namespace.as_deref() == Some("vision")
                && &*change.cluster == "a"
            {
                return change;
            }
        }
    })
    .await
    .expect("a change for the new pod");
    assert_eq!(change.kind, ResourceKind::Pod);
    assert!(started.elapsed() < Duration::from_secs(1), "announced after {:?}", started.elapsed());
}

/// An apiserver that accepts connections and never answers (no real server
/// does this on purpose, so a bare socket stands in for it): a request that
/// should answer and end gives up after the read timeout instead of pinning
/// a task and a connection forever.
#[tokio::test]
async fn a_request_to_an_apiserver_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = kube::Config::new(format!("http://{address}").parse().unwrap());
    let hub = Hub::new();
    let cluster = hub.connect_with_timeout("silent", config, Duration::from_secs(1)).unwrap();
    let (namespace, name) = (LabelName::parse("namespace", "vision").unwrap(), KubeName::parse("name", "app").unwrap());
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), actions::history(&cluster, &namespace, &name))
        .await
        .expect("the request gave up by itself");
    assert!(matches!(outcome, Err(actions::ActionError::Unavailable(_))), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
}
