//! The Kubernetes manifests in deploy/ are valid for a real apiserver
//! (server-side dry run against the testbed).

mod common;

#[tokio::test]
async fn the_deploy_manifests_pass_a_server_side_dry_run() {
    let bed = common::bed();
    let manifests = format!("{}/../deploy/kubernetes/gantry.yaml", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let create = bed.kubectl().args(["--context", "a", "create", "namespace", "gantry"]).output().unwrap();
    assert!(create.status.success() || String::from_utf8_lossy(&create.stderr).contains("AlreadyExists"));
    let out = bed.kubectl().args(["--context", "a", "apply", "--dry-run=server", "-f", &manifests]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    for object in [
        "serviceaccount/gantry",
        "clusterrole.rbac.authorization.k8s.io/gantry",
        "deployment.apps/gantry",
        "service/gantry",
    ] {
        assert!(stdout.contains(object), "{object} in {stdout}");
    }
}
