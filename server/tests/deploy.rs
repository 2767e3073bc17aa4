//! Deploying Gantry on Kubernetes: the Helm chart (deploy/helm/gantry) with a
//! real `helm` (built from the Go module proxy by scripts/setup.sh), its
//! rendering checked object by object, installed, upgraded and uninstalled on
//! a testbed cluster (KWOK runs the pods as simulated); and the plain manifest
//! (deploy/kubernetes/gantry.yaml), which is the chart's default rendering,
//! accepted by a real apiserver.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> String {
    repo().join("deploy/helm/gantry").display().to_string()
}

/// The `helm` scripts/env.sh names (GANTRY_HELM), else one on PATH.
fn helm(args: &[&str]) -> Output {
    let program = std::env::var("GANTRY_HELM").unwrap_or_else(|_| "helm".into());
    Command::new(&program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): run scripts/setup.sh test, then source scripts/env.sh"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `helm template` of the chart with these extra arguments: its objects.
fn render(args: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut all = vec!["template", "gantry", chart.as_str(), "--namespace", "gantry"];
    all.extend_from_slice(args);
    let out = helm(&all);
    assert!(out.status.success(), "helm {all:?} failed: {}", text(&out.stderr));
    let rendered = text(&out.stdout);
    serde_yaml::Deserializer::from_str(&rendered)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|object| !object.is_null())
        .collect()
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect();
    kinds.sort();
    kinds
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(objects)))
}

fn env_of(deployment: &Value) -> Vec<(String, String)> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            let value = match e.get("value") {
                Some(v) => v.as_str().unwrap().to_string(),
                None => format!("secret {}", e["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap()),
            };
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    env_of(deployment).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// What every rendering must hold: the pod is locked down and probed, and
/// has its limits.
fn assert_locked_down_and_probed(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["args"][0], "serve");
}

#[test]
fn helm_lint_passes_with_each_ci_values_file() {
    let chart = chart();
    let out = helm(&["lint", "--strict", &chart]);
    assert!(out.status.success(), "helm lint: {}{}", text(&out.stdout), text(&out.stderr));
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(repo().join("deploy/helm/gantry/ci")).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let file = file.display().to_string();
        let out = helm(&["lint", "--strict", &chart, "-f", &file]);
        assert!(out.status.success(), "helm lint -f {file}: {}{}", text(&out.stdout), text(&out.stderr));
        let objects = render(&["-f", &file]);
        assert_locked_down_and_probed(object(&objects, "Deployment"));
    }
}

#[test]
fn the_default_rendering_runs_two_replicas_on_postgresql_from_an_existing_secret() {
    let objects = render(&[]);
    assert_eq!(
        kinds(&objects),
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    );
    let deployment = object(&objects, "Deployment");
    assert_locked_down_and_probed(deployment);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let secret_refs: Vec<&Value> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("valueFrom"))
        .collect();
    assert_eq!(secret_refs.len(), 2);
    assert!(secret_refs.iter().all(|r| r["secretKeyRef"]["name"] == "gantry"));
    assert_eq!(env_value(deployment, "DATABASE_URL").as_deref(), Some("secret database-url"));
    assert_eq!(env_value(deployment, "GANTRY_SECRET_KEY").as_deref(), Some("secret secret-key"));
    assert_eq!(env_value(deployment, "GANTRY_TRUSTED_PROXIES").as_deref(), Some("0"));
    assert_eq!(object(&objects, "PodDisruptionBudget")["spec"]["minAvailable"], 1);
    assert_eq!(object(&objects, "ClusterRoleBinding")["subjects"][0]["name"], "gantry");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "gantry");
}

#[test]
fn a_database_url_makes_the_charts_own_secret_and_a_given_key_is_kept() {
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes
    // A Secret's data is base64 again.
    let key_in_secret = "TURFeU16UTFOamM0T1dGaVkyUmxaakF4TWpNME5UWTNPRGxoWW1Oa1pXWT0=";
    let objects = render(&[
        "--set",
        "secret.existingSecret=",
        "--set",
        "database.url=postgres://gantry:pw@db:5432/gantry",
        "--set",
        &format!("secret.secretKey={key}"),
    ]);
    let secret = object(&objects, "Secret");
    assert_eq!(secret["metadata"]["name"], "gantry");
    assert_eq!(secret["data"]["secret-key"], key_in_secret);
    assert!(secret["data"]["database-url"].is_string());
    // Without a key, one is generated: 32 random bytes.
    let objects = render(&["--set", "secret.existingSecret=", "--set", "database.url=postgres://db/gantry"]);
    let generated = object(&objects, "Secret")["data"]["secret-key"].as_str().unwrap().to_string();
    assert_ne!(generated, key_in_secret);
    // base64 (the Secret's) of base64 (the key's, 44 characters) of 32 bytes.
    assert_eq!(generated.len(), 60, "{generated}");
}

#[test]
fn sqlite_mode_is_one_replica_on_a_kept_volume_without_a_budget() {
    let objects = render(&["--set", "database.mode=sqlite", "--set", "replicaCount=1"]);
    assert_eq!(
        kinds(&objects),
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"]
    );
    let deployment = object(&objects, "Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(env_value(deployment, "DATABASE_URL"), None);
    assert_eq!(env_value(deployment, "GANTRY_DATA_DIR").as_deref(), Some("/var/lib/gantry"));
    let claim = object(&objects, "PersistentVolumeClaim");
    assert_eq!(claim["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap();
    assert!(volumes.iter().any(|v| v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]));
}

#[test]
fn an_ingress_trusts_one_proxy_and_names_its_hosts_as_the_public_url() {
    let objects = render(&[
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.hosts[0]=gantry.example.com",
        "--set",
        "ingress.tls[0].secretName=tls",
        "--set",
        "ingress.tls[0].hosts[0]=gantry.example.com",
    ]);
    let ingress = object(&objects, "Ingress");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "gantry.example.com");
    let deployment = object(&objects, "Deployment");
    assert_eq!(env_value(deployment, "GANTRY_TRUSTED_PROXIES").as_deref(), Some("1"));
    assert_eq!(env_value(deployment, "GANTRY_PUBLIC_URL").as_deref(), Some("https://gantry.example.com"));
}

#[test]
fn values_that_make_no_sense_fail_at_template_time_naming_the_value() {
    let chart = chart();
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "database.mode=sqlite"], "replicaCount: 2 with database.mode sqlite"),
        (&["--set", "secret.existingSecret="], "database.url: empty and secret.existingSecret is empty"),
        (&["--set", "database.mode=mysql"], "database.mode: \"mysql\""),
        (&["--set", "replicaCount=0"], "replicaCount: 0"),
        (&["--set", "replicaCount=two"], "replicaCount: \"two\""),
        (&["--set", "secret.existingSecret=", "--set", "database.url=mysql://db"], "database.url: not a postgres"),
        (&["--set", "secret.secretKey=c2hvcnQ="], "secret.secretKey: not base64 of 32 bytes"),
        (&["--set", "ingress.enabled=true"], "ingress.hosts: empty"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["template", "gantry", chart.as_str()];
        all.extend_from_slice(args);
        let out = helm(&all);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "helm {args:?} rendered");
        // helm's own hint ("Use --debug ...") follows the one line that names the value.
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(expected), "helm {args:?}: {first:?} does not say {expected:?}");
    }
}

/// deploy/kubernetes/gantry.yaml: a comment header, then exactly the chart's
/// default rendering.
#[test]
fn the_plain_manifest_is_the_charts_default_rendering() {
    let chart = chart();
    let out = helm(&["template", "gantry", &chart, "--namespace", "gantry"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    let plain = std::fs::read_to_string(repo().join("deploy/kubernetes/gantry.yaml")).unwrap();
    let header_end = plain.find("\n---\n").map(|i| i + 1).unwrap_or(0);
    let (header, body) = plain.split_at(header_end);
    assert!(header.lines().all(|l| l.starts_with('#')), "only comments come before the rendering:\n{header}");
    assert!(
        body == rendered,
        "deploy/kubernetes/gantry.yaml is not the chart's default rendering; regenerate its body with\n  \
         helm template gantry deploy/helm/gantry --namespace gantry"
    );
}

#[tokio::test]
async fn the_plain_manifest_passes_a_server_side_dry_run() {
    let bed = common::bed();
    let manifests = repo().join("deploy/kubernetes/gantry.yaml").display().to_string();
    let create = bed.kubectl().args(["--context", "a", "create", "namespace", "gantry"]).output().unwrap();
    assert!(create.status.success() || text(&create.stderr).contains("AlreadyExists"));
    let out = bed.kubectl().args(["--context", "a", "apply", "--dry-run=server", "-f", &manifests]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    for object in [
        "serviceaccount/gantry",
        "clusterrole.rbac.authorization.k8s.io/gantry",
        "clusterrolebinding.rbac.authorization.k8s.io/gantry",
        "deployment.apps/gantry",
        "service/gantry",
        "poddisruptionbudget.policy/gantry",
    ] {
        assert!(stdout.contains(object), "{object} in {stdout}");
    }
}

/// What is left in the cluster of one release, by its instance label.
fn left_of(bed: &gantry_testbed::Testbed, namespace: &str, release: &str) -> Vec<String> {
    let selector = format!("app.kubernetes.io/instance={release}");
    let mut left = Vec::new();
    for (scope, kinds) in [
        (
            Some(namespace),
            "deployments,replicasets,pods,services,serviceaccounts,secrets,poddisruptionbudgets,persistentvolumeclaims,ingresses",
        ),
        (None, "clusterroles,clusterrolebindings"),
    ] {
        let mut command = bed.kubectl();
        command.args(["--context", "a", "get", kinds, "-l", &selector, "-o", "name"]);
        if let Some(namespace) = scope {
            command.args(["-n", namespace]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        left.extend(text(&out.stdout).lines().map(str::to_string));
    }
    left
}

fn ready_replicas(bed: &gantry_testbed::Testbed, namespace: &str, release: &str) -> String {
    let out = bed
        .kubectl()
        .args(["--context", "a", "-n", namespace, "get", "deployment", release])
        .args(["-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}"])
        .output()
        .unwrap();
    text(&out.stdout)
}

fn secret_key(bed: &gantry_testbed::Testbed, namespace: &str, release: &str) -> String {
    let out = bed
        .kubectl()
        .args(["--context", "a", "-n", namespace, "get", "secret", release, "-o", "jsonpath={.data.secret-key}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_on_a_testbed_cluster_leaving_nothing_behind() {
    let bed = common::bed();
    let kubeconfig = bed.kubeconfig_path().display().to_string();
    let suffix = common::rand_suffix();
    let namespace = format!("gantry-helm-{suffix}");
    let release = format!("gantry-{suffix}");
    let chart = chart();
    let base = ["--kubeconfig", kubeconfig.as_str(), "--kube-context", "a", "-n", namespace.as_str()];
    let helm_in = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&base);
        let out = helm(&all);
        assert!(out.status.success(), "helm {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    };

    helm_in(&[
        "install",
        &release,
        &chart,
        "--create-namespace",
        "--set",
        "secret.existingSecret=",
        "--set",
        "database.url=postgres://gantry:pw@postgres:5432/gantry",
        "--wait",
        "--timeout",
        "180s",
    ]);
    assert_eq!(ready_replicas(bed, &namespace, &release), "2/2");
    let installed = left_of(bed, &namespace, &release);
    for expected in [
        format!("deployment.apps/{release}"),
        format!("service/{release}"),
        format!("serviceaccount/{release}"),
        format!("secret/{release}"),
        format!("poddisruptionbudget.policy/{release}"),
        format!("clusterrole.rbac.authorization.k8s.io/{release}"),
        format!("clusterrolebinding.rbac.authorization.k8s.io/{release}"),
    ] {
        assert!(installed.contains(&expected), "{expected} not in {installed:?}");
    }
    assert_eq!(installed.iter().filter(|o| o.starts_with("pod/")).count(), 2, "{installed:?}");
    let key = secret_key(bed, &namespace, &release);

    // The release's service account may do what Gantry does, and nothing it never needs.
    let identity = format!("system:serviceaccount:{namespace}:{release}");
    let can = |verb: &str, resource: &str| {
        let out = bed
            .kubectl()
            .args(["--context", "a", "auth", "can-i", verb, resource, "--as", &identity, "-n", "vision"])
            .output()
            .unwrap();
        text(&out.stdout).trim() == "yes"
    };
    for (verb, resource) in [
        ("watch", "pods"),
        ("get", "pods/log"),
        ("watch", "nodes"),
        ("patch", "deployments.apps"),
        ("update", "deployments.apps/scale"),
        ("create", "jobs.batch"),
        ("patch", "horizontalpodautoscalers.autoscaling"),
        ("patch", "resourcequotas"),
    ] {
        assert!(can(verb, resource), "{identity} may not {verb} {resource}");
    }
    for (verb, resource) in [
        ("delete", "nodes"),
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("create", "pods/exec"),
        ("create", "pods/portforward"),
        ("create", "pods"),
        ("patch", "nodes"),
    ] {
        assert!(!can(verb, resource), "{identity} may {verb} {resource}, which Gantry never needs");
    }

    // An upgrade keeps the generated key: stored credentials stay readable.
    helm_in(&["upgrade", &release, &chart, "--reuse-values", "--set", "replicaCount=3", "--wait", "--timeout", "180s"]);
    assert_eq!(ready_replicas(bed, &namespace, &release), "3/3");
    assert_eq!(secret_key(bed, &namespace, &release), key, "the upgrade changed the secret key");

    helm_in(&["uninstall", &release, "--wait", "--timeout", "180s"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = left_of(bed, &namespace, &release);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind after helm uninstall: {left:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = bed.kubectl().args(["--context", "a", "delete", "namespace", &namespace, "--wait=false"]).output();
}
