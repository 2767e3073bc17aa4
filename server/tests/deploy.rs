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
fn single_sign_on_values_become_gantrys_settings_with_the_secret_from_a_secret() {
    let objects = render(&["-f", &format!("{}/ci/oidc-values.yaml", chart())]);
    let deployment = object(&objects, "Deployment");
    assert_eq!(env_value(deployment, "GANTRY_OIDC_ISSUER").as_deref(), Some("https://login.example.com/realms/ml"));
    assert_eq!(env_value(deployment, "GANTRY_LOCAL_PASSWORDS").as_deref(), Some("admins"));
    // From the Secret, never a literal value.
    assert_eq!(env_value(deployment, "GANTRY_OIDC_CLIENT_SECRET").as_deref(), Some("secret client-secret"));
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let secret = env.iter().find(|e| e["name"] == "GANTRY_OIDC_CLIENT_SECRET").expect("the secret's variable");
    assert_eq!(secret["valueFrom"]["secretKeyRef"]["name"], "gantry-oidc");
    let default = render(&[]);
    assert!(env_value(object(&default, "Deployment"), "GANTRY_OIDC_ISSUER").is_none(), "off by default");
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
        (&["--set", "oidc.issuer=https://login.example.com"], "oidc.clientSecret.existingSecret: empty"),
        (
            &["--set", "oidc.issuer=https://login.example.com", "--set", "oidc.clientSecret.existingSecret=s"],
            "publicUrl: empty (and no ingress hosts) while oidc.issuer is set",
        ),
        (&["--set", "oidc.localPasswords=nobody"], "oidc.localPasswords: \"nobody\""),
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
        // A sample: `the_charts_role_is_exactly_what_gantrys_features_use` proves each permission.
        ("watch", "pods"),
        ("list", "nodes"),
        ("patch", "deployments.apps"),
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

// ---------------------------------------------------------------------------
// Least privilege, proven: the chart's ClusterRole is exactly what Gantry's
// features use. Each test has a testbed cluster of its own, the chart's
// ServiceAccount, ClusterRole and binding applied as `helm template` renders
// them, and a token for that ServiceAccount from the TokenRequest API.

use futures::StreamExt;
use gantry_testbed::shared::eventually;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// The namespace the chart's objects are rendered into.
const RELEASE_NAMESPACE: &str = "gantry";

/// The chart's ServiceAccount, ClusterRole and ClusterRoleBinding, as rendered.
fn chart_rbac() -> (serde_json::Value, ClusterRole, ClusterRoleBinding) {
    let objects = render(&["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"]);
    let json = |kind: &str| serde_json::to_value(object(&objects, kind)).unwrap();
    let role = serde_json::from_value(json("ClusterRole")).unwrap();
    let binding = serde_json::from_value(json("ClusterRoleBinding")).unwrap();
    (json("ServiceAccount"), role, binding)
}

/// One thing a ClusterRole allows: a verb on a resource of an API group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    group: String,
    resource: String,
    verb: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.group.as_str() {
            "" => write!(f, "{} {}", self.verb, self.resource),
            group => write!(f, "{} {}.{group}", self.verb, self.resource),
        }
    }
}

/// Every permission of a role, one by one, in the order the role lists them.
fn permissions(role: &ClusterRole) -> Vec<Permission> {
    let mut all = Vec::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.non_resource_urls.is_none() && rule.resource_names.is_none(), "an unexpected rule: {rule:?}");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(group != "*" && resource != "*" && verb != "*", "a wildcard in the chart's role: {rule:?}");
                    let permission =
                        Permission { group: group.clone(), resource: resource.clone(), verb: verb.clone() };
                    assert!(!all.contains(&permission), "{permission} is granted twice");
                    all.push(permission);
                }
            }
        }
    }
    all
}

/// A role of one rule per permission: all of `all` but `without`.
fn rules_without(all: &[Permission], without: Option<&Permission>) -> Vec<PolicyRule> {
    all.iter()
        .filter(|p| Some(*p) != without)
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.group.clone()]),
            resources: Some(vec![p.resource.clone()]),
            verbs: vec![p.verb.clone()],
            ..PolicyRule::default()
        })
        .collect()
}

/// A testbed cluster of the test's own, with the release namespace and the
/// chart's ServiceAccount, ClusterRole and binding in it.
struct RbacBed {
    bed: gantry_testbed::Testbed,
    name: String,
    admin: kube::Client,
    role: ClusterRole,
}

impl RbacBed {
    async fn start(name: &str) -> RbacBed {
        use gantry_testbed::{Fleet, Options, Testbed};
        use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
        let bed = Testbed::start(&Fleet::small(name), Options::default()).await.unwrap();
        let admin = bed.cluster(name).unwrap().client().await.unwrap();
        let namespace: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": RELEASE_NAMESPACE } })).unwrap();
        Api::<Namespace>::all(admin.clone()).create(&PostParams::default(), &namespace).await.unwrap();
        let (account, role, binding) = chart_rbac();
        let account: ServiceAccount = serde_json::from_value(account).unwrap();
        let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), RELEASE_NAMESPACE);
        accounts.create(&PostParams::default(), &account).await.unwrap();
        Api::<ClusterRole>::all(admin.clone()).create(&PostParams::default(), &role).await.unwrap();
        Api::<ClusterRoleBinding>::all(admin.clone()).create(&PostParams::default(), &binding).await.unwrap();
        RbacBed { bed, name: name.to_string(), admin, role }
    }

    fn cluster(&self) -> &gantry_testbed::ClusterHandle {
        self.bed.cluster(&self.name).unwrap()
    }

    /// A token of ServiceAccount `account` in the release namespace, from the TokenRequest API.
    async fn token(&self, account: &str) -> String {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() }),
            ..Default::default()
        };
        let accounts = Api::<ServiceAccount>::namespaced(self.admin.clone(), RELEASE_NAMESPACE);
        let issued = accounts.create_token_request(account, &PostParams::default(), &request).await.unwrap();
        issued.status.and_then(|s| s.token).unwrap()
    }

    /// The chart's ServiceAccount's token.
    async fn chart_token(&self) -> String {
        self.token(self.role.metadata.name.as_deref().unwrap()).await
    }

    /// A ServiceAccount `account` bound to a ClusterRole of the same name with `rules`; its token.
    async fn identity(&self, account: &str, rules: Vec<PolicyRule>) -> String {
        use k8s_openapi::api::core::v1::ServiceAccount;
        let metadata = |namespace: Option<&str>| kube::api::ObjectMeta {
            name: Some(account.to_string()),
            namespace: namespace.map(str::to_string),
            ..Default::default()
        };
        let accounts = Api::<ServiceAccount>::namespaced(self.admin.clone(), RELEASE_NAMESPACE);
        let created = ServiceAccount { metadata: metadata(Some(RELEASE_NAMESPACE)), ..Default::default() };
        accounts.create(&PostParams::default(), &created).await.unwrap();
        let role = ClusterRole { metadata: metadata(None), rules: Some(rules), ..Default::default() };
        Api::<ClusterRole>::all(self.admin.clone()).create(&PostParams::default(), &role).await.unwrap();
        let binding: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": { "name": account },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account },
            "subjects": [ { "kind": "ServiceAccount", "name": account, "namespace": RELEASE_NAMESPACE } ]
        }))
        .unwrap();
        Api::<ClusterRoleBinding>::all(self.admin.clone()).create(&PostParams::default(), &binding).await.unwrap();
        self.token(account).await
    }

    /// The cluster's kubeconfig with `token` as its only credential.
    fn kubeconfig_with(&self, token: &str) -> String {
        let mut config: Value = serde_yaml::from_str(&self.cluster().kubeconfig_yaml()).unwrap();
        config["users"][0]["user"] = serde_yaml::to_value(json!({ "token": token })).unwrap();
        serde_yaml::to_string(&config).unwrap()
    }

    /// A client acting with `token` only.
    async fn client_with(&self, token: &str) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_with(token)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

/// Gantry's features that touch a cluster, in the order [`exercise`] runs them.
const FEATURES: [&str; 14] = [
    "watch caches",
    "logs",
    "launch",
    "deployment page",
    "update",
    "rollback",
    "scale",
    "autoscale",
    "promote",
    "delete",
    "run a job",
    "job page",
    "cancel a job",
    "quota",
];

/// What a user of Gantry's API would see: 2xx, or the status and message.
async fn call(request: reqwest::RequestBuilder) -> Result<String, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        Err(format!("{status}: {message}"))
    }
}

/// The objects a round acts on, made by the cluster's admin (not by the
/// identity under test), so each feature stands on its own: the round's
/// namespaces (`{round}` for its staging environment, `{round}-prod`), and
/// in the first, a deployment with two revisions, a deployment with the
/// Service and autoscaler a launch makes, and a running job. The name of the
/// job's pod.
async fn prepare_round(admin: &kube::Client, round: &str) -> String {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
    for name in [round.to_string(), format!("{round}-prod")] {
        let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
        Api::<Namespace>::all(admin.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    }
    let deployments = Api::<Deployment>::namespaced(admin.clone(), round);
    let managed = json!({ "app.kubernetes.io/name": "x", "app.kubernetes.io/managed-by": "gantry" });
    let deployment = |name: &str, image: &str| -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": name, "labels": managed },
            "spec": { "replicas": 1, "selector": { "matchLabels": { "app": name } },
                "template": { "metadata": { "labels": { "app": name } },
                    "spec": { "containers": [ { "name": "main", "image": image } ] } } }
        }))
        .unwrap()
    };
    deployments.create(&PostParams::default(), &deployment("app", "example/app:1")).await.unwrap();
    eventually("revision 1", 30, || async {
        let d = deployments.get("app").await.ok()?;
        (d.metadata.annotations?.get("deployment.kubernetes.io/revision")? == "1").then_some(())
    })
    .await;
    let patch = json!({ "spec": { "template": { "spec": { "containers": [ { "name": "main", "image": "example/app:2" } ] } } } });
    deployments.patch("app", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();

    deployments.create(&PostParams::default(), &deployment("doomed", "example/app:1")).await.unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": { "name": "doomed", "labels": managed },
        "spec": { "selector": { "app": "doomed" }, "ports": [ { "port": 80 } ] }
    }))
    .unwrap();
    Api::<Service>::namespaced(admin.clone(), round).create(&PostParams::default(), &service).await.unwrap();
    let autoscaler: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": { "name": "doomed", "labels": managed },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "doomed" },
            "minReplicas": 1, "maxReplicas": 2 }
    }))
    .unwrap();
    Api::<HorizontalPodAutoscaler>::namespaced(admin.clone(), round)
        .create(&PostParams::default(), &autoscaler)
        .await
        .unwrap();

    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "train" },
        "spec": { "template": { "metadata": { "annotations": {
                "pod-complete.stage.kwok.x-k8s.io/delay": "3600s", "pod-complete.stage.kwok.x-k8s.io/jitter-delay": "3600s" } },
            "spec": { "restartPolicy": "Never", "containers": [ { "name": "train", "image": "example/trainer:1" } ] } } }
    }))
    .unwrap();
    Api::<Job>::namespaced(admin.clone(), round).create(&PostParams::default(), &job).await.unwrap();
    let pods = Api::<Pod>::namespaced(admin.clone(), round);
    let job_pods = kube::api::ListParams::default().labels("batch.kubernetes.io/job-name=train");
    eventually("the round's job runs", 60, || async {
        let list = pods.list(&job_pods).await.ok()?;
        list.items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))?
            .metadata
            .name
    })
    .await
}

/// Registers the cluster in Gantry as `round` with `kubeconfig` (one
/// credential: the identity under test) and runs every feature in
/// [`FEATURES`] through Gantry's API, as a global admin: what each came to.
/// The cluster is removed from Gantry again at the end.
async fn exercise(
    gantry: &common::served::Served,
    rbac: &RbacBed,
    round: &str,
    kubeconfig: &str,
) -> Vec<(&'static str, Result<(), String>)> {
    let pod = prepare_round(&rbac.admin, round).await;
    let http = reqwest::Client::new();
    let api = |path: &str| gantry.url(&format!("/api/v1{path}"));
    let as_root = |request: reqwest::RequestBuilder| request.bearer_auth(&gantry.token);
    call(
        as_root(http.post(api("/clusters")))
            .json(&json!({ "name": round, "context": rbac.name, "kubeconfig": kubeconfig })),
    )
    .await
    .unwrap_or_else(|e| panic!("registering {round}: {e}"));
    // A team of the round's own, owning its namespaces, with staging and prod environments (for promote).
    let team = call(as_root(http.post(api("/teams"))).json(&json!({ "name": round }))).await.unwrap();
    let team = serde_json::from_str::<serde_json::Value>(&team).unwrap()["id"].as_i64().unwrap();
    let prod = format!("{round}-prod");
    for namespace in [round, prod.as_str()] {
        let mapping = json!({ "cluster": round, "namespace": namespace, "team_id": team });
        call(as_root(http.post(api("/namespaces"))).json(&mapping)).await.unwrap();
    }
    let environments = json!([
        { "name": "staging", "cluster": round, "namespace": round },
        { "name": "prod", "cluster": round, "namespace": prod }
    ]);
    call(as_root(http.put(api(&format!("/teams/{team}/environments")))).json(&environments)).await.unwrap();

    let in_round = format!("/clusters/{round}/namespaces/{round}");
    let app = format!("{in_round}/deployments/app");
    let ok = |result: Result<String, String>| result.map(|_| ());
    let mut results = Vec::new();
    for feature in FEATURES {
        let result = match feature {
            "watch caches" => {
                // Live once every watch has listed; a refused watch names itself.
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let clusters = call(as_root(http.get(api("/clusters")))).await.unwrap();
                    let clusters: serde_json::Value = serde_json::from_str(&clusters).unwrap();
                    let me = clusters.as_array().unwrap().iter().find(|c| c["name"] == round).cloned().unwrap();
                    if me["state"] == "live" {
                        break Ok(());
                    }
                    let message = me["message"].as_str().unwrap_or_default().to_string();
                    if message.contains("forbidden") || Instant::now() > deadline {
                        break Err(format!("{}: {message}", me["state"]));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            "logs" => match call(as_root(http.get(api(&format!("{in_round}/pods/{pod}/logs?follow=false"))))).await {
                Ok(text) if text.trim().is_empty() => Err("no log lines".to_string()),
                other => ok(other),
            },
            "launch" => ok(call(as_root(http.post(api(&format!("{in_round}/deployments")))).json(&json!({
                "name": "new", "image": "example/app:1", "replicas": 1,
                "autoscale": true, "min_replicas": 1, "max_replicas": 2, "target_cpu_percent": 80
            })))
            .await),
            "deployment page" => match call(as_root(http.get(api(&app)))).await {
                Ok(_) => ok(call(as_root(http.get(api(&format!("{app}/history"))))).await),
                other => ok(other),
            },
            "update" => ok(call(as_root(http.patch(api(&app))).json(&json!({ "image": "example/app:3" }))).await),
            "rollback" => ok(call(as_root(http.post(api(&format!("{app}/rollback")))).json(&json!({}))).await),
            "scale" => ok(call(as_root(http.put(api(&format!("{app}/scale")))).json(&json!({ "replicas": 2 }))).await),
            "autoscale" => {
                let on = json!({ "enabled": true, "min_replicas": 1, "max_replicas": 3, "target_cpu_percent": 70 });
                match call(as_root(http.put(api(&format!("{app}/autoscale")))).json(&on)).await {
                    Ok(_) => {
                        ok(call(as_root(http.put(api(&format!("{app}/autoscale")))).json(&json!({ "enabled": false })))
                            .await)
                    }
                    other => ok(other),
                }
            }
            "promote" => ok(call(as_root(http.post(api(&format!("{app}/promote"))))).await),
            "delete" => {
                match call(as_root(http.delete(api(&format!("{in_round}/deployments/doomed?confirm=doomed"))))).await {
                    Ok(_) => gone_with_its_service_and_autoscaler(&rbac.admin, round, "doomed").await,
                    other => ok(other),
                }
            }
            "run a job" => ok(call(
                as_root(http.post(api(&format!("{in_round}/jobs"))))
                    .json(&json!({ "name": "run", "image": "example/trainer:1" })),
            )
            .await),
            "job page" => ok(call(as_root(http.get(api(&format!("{in_round}/jobs/train"))))).await),
            "cancel a job" => ok(call(as_root(http.delete(api(&format!("{in_round}/jobs/train"))))).await),
            "quota" => {
                ok(call(as_root(http.put(api(&format!("{in_round}/quota")))).json(&json!({ "gpus": 64 }))).await)
            }
            other => unreachable!("{other}"),
        };
        results.push((feature, result));
    }
    // A watch refused after its first list may show live for a moment: the caches must still be live now.
    let clusters = call(as_root(http.get(api("/clusters")))).await.unwrap();
    let clusters: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    let me = clusters.as_array().unwrap().iter().find(|c| c["name"] == round).cloned().unwrap();
    if let Some((_, watched @ Ok(()))) = results.iter_mut().find(|(feature, _)| *feature == "watch caches")
        && me["state"] != "live"
    {
        *watched = Err(format!("{} at the end: {}", me["state"], me["message"]));
    }
    call(as_root(http.delete(api(&format!("/clusters/{round}"))))).await.unwrap();
    results
}

/// After a delete: the deployment is going or gone, and the Service and
/// autoscaler Gantry made with it are gone.
async fn gone_with_its_service_and_autoscaler(admin: &kube::Client, namespace: &str, name: &str) -> Result<(), String> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::Service;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let deployment = Api::<Deployment>::namespaced(admin.clone(), namespace).get_opt(name).await.unwrap();
        let service = Api::<Service>::namespaced(admin.clone(), namespace).get_opt(name).await.unwrap();
        let autoscaler =
            Api::<HorizontalPodAutoscaler>::namespaced(admin.clone(), namespace).get_opt(name).await.unwrap();
        let going = deployment.is_none_or(|d| d.metadata.deletion_timestamp.is_some());
        if going && service.is_none() && autoscaler.is_none() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let left: Vec<&str> = [
                (!going, "the deployment"),
                (service.is_some(), "its service"),
                (autoscaler.is_some(), "its autoscaler"),
            ]
            .into_iter()
            .filter_map(|(left, what)| left.then_some(what))
            .collect();
            return Err(format!("{SILENTLY}: the API said deleted, but {} left behind", left.join(" and ")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a feature fails when the API says it worked and it did not: never acceptable.
const SILENTLY: &str = "silently";

/// The features that failed in one [`exercise`], with why.
fn broken(results: &[(&'static str, Result<(), String>)]) -> Vec<(&'static str, String)> {
    results.iter().filter_map(|(feature, result)| result.as_ref().err().map(|e| (*feature, e.clone()))).collect()
}

/// The table in the chart's README between these lines is this test's.
const TABLE_START: &str = "<!-- permission table: written by server/tests/deploy.rs, checked by it -->";
const TABLE_END: &str = "<!-- end of permission table -->";

/// With only a token of the chart's ServiceAccount (TokenRequest), Gantry
/// runs every feature that touches a cluster; that identity is refused what
/// Gantry never needs; and with each permission of the chart's ClusterRole
/// taken away in turn, some feature breaks (which, the chart's README lists:
/// this test checks that table), so no permission is dead weight.
#[tokio::test]
async fn the_charts_role_is_exactly_what_gantrys_features_use() {
    let rbac = RbacBed::start("rbac").await;
    let gantry = common::served::Served::start(None, &[]).await;
    let token = rbac.chart_token().await;

    let all = exercise(&gantry, &rbac, "chart", &rbac.kubeconfig_with(&token)).await;
    assert_eq!(broken(&all), vec![], "with the chart's role, every feature works");

    // What Gantry never needs is refused.
    let client = rbac.client_with(&token).await;
    let refused = |result: Result<(), kube::Error>, what: &str| match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("the chart's service account may {what}: {other:?}"),
    };
    use k8s_openapi::api::core::v1::{Node, Secret};
    let nodes = Api::<Node>::all(rbac.admin.clone()).list(&Default::default()).await.unwrap();
    let node = nodes.items[0].metadata.name.clone().unwrap();
    refused(
        Api::<Node>::all(client.clone()).delete(&node, &DeleteParams::default()).await.map(|_| ()),
        "delete a node",
    );
    refused(
        Api::<Secret>::namespaced(client.clone(), RELEASE_NAMESPACE).list(&Default::default()).await.map(|_| ()),
        "list secrets",
    );
    refused(Api::<Secret>::namespaced(client.clone(), "vision").get("anything").await.map(|_| ()), "read a secret");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "escalate" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [ { "kind": "ServiceAccount", "name": "gantry", "namespace": RELEASE_NAMESPACE } ]
    }))
    .unwrap();
    refused(
        Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.map(|_| ()),
        "create a cluster role binding",
    );
    let pod = prepare_round(&rbac.admin, "exec").await;
    let exec = http::Request::post(format!("/api/v1/namespaces/exec/pods/{pod}/exec?command=true&stdout=true"))
        .body(Vec::new())
        .unwrap();
    refused(client.request_text(exec).await.map(|_| ()), "exec into a pod");

    // Each permission taken away in turn: which features break.
    let granted = permissions(&rbac.role);
    let rounds: Vec<_> = granted.iter().enumerate().collect();
    // What the chart's README says breaks without each permission: a round
    // that finds otherwise runs once more (a feature can fail once on a
    // loaded machine), and the second finding stands.
    let readme = std::fs::read_to_string(repo().join("deploy/helm/gantry/README.md")).unwrap();
    let expected = |permission: &Permission| {
        let row = format!("| `{permission}` | ");
        readme.lines().find_map(|l| l.strip_prefix(row.as_str())).map(|rest| rest.trim_end_matches(" |").to_string())
    };
    let features_of = |broke: &[(&'static str, String)]| broke.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
    let outcomes: Vec<(Permission, Vec<(&'static str, String)>)> = futures::stream::iter(rounds)
        .map(|(i, permission)| {
            let (rbac, gantry, granted, expected, features_of) = (&rbac, &gantry, &granted, &expected, &features_of);
            async move {
                let mut broke = Vec::new();
                for attempt in 0..2 {
                    let round = format!("without-{i}-{attempt}");
                    let token = rbac.identity(&round, rules_without(granted, Some(permission))).await;
                    broke = broken(&exercise(gantry, rbac, &round, &rbac.kubeconfig_with(&token)).await);
                    if expected(permission).as_deref() == Some(features_of(&broke).as_str()) {
                        break;
                    }
                    eprintln!("without {permission}, attempt {attempt}: {broke:?}");
                }
                (permission.clone(), broke)
            }
        })
        .buffered(4)
        .collect()
        .await;
    let mut table = String::from("| Taken away | What breaks |\n|---|---|\n");
    for (permission, broke) in &outcomes {
        let features: Vec<&str> = broke.iter().map(|(feature, _)| *feature).collect();
        table.push_str(&format!("| `{permission}` | {} |\n", features.join(", ")));
        eprintln!("without {permission}: {broke:?}");
    }
    let silent: Vec<String> = outcomes
        .iter()
        .flat_map(|(p, broke)| broke.iter().map(move |(feature, why)| (p, feature, why)))
        .filter(|(_, _, why)| why.starts_with(SILENTLY))
        .map(|(p, feature, why)| format!("without {p}, {feature}: {why}"))
        .collect();
    assert!(silent.is_empty(), "a feature answered success and did not do it:\n{}", silent.join("\n"));
    let dead: Vec<String> = outcomes.iter().filter(|(_, broke)| broke.is_empty()).map(|(p, _)| p.to_string()).collect();
    assert!(dead.is_empty(), "no feature needs {dead:?}: take them out of the chart's ClusterRole\n{table}");

    let readme_path = repo().join("deploy/helm/gantry/README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let written = readme
        .split_once(TABLE_START)
        .and_then(|(_, rest)| rest.split_once(TABLE_END))
        .map(|(table, _)| table.trim().to_string())
        .unwrap_or_default();
    if std::env::var_os("GANTRY_WRITE_PERMISSION_TABLE").is_some() {
        let (before, rest) = readme.split_once(TABLE_START).expect("the README has the table's start line");
        let (_, after) = rest.split_once(TABLE_END).expect("the README has the table's end line");
        std::fs::write(&readme_path, format!("{before}{TABLE_START}\n{}\n{TABLE_END}{after}", table.trim())).unwrap();
    } else {
        assert_eq!(
            written,
            table.trim(),
            "deploy/helm/gantry/README.md's permission table is not what this test found; run it with \
             GANTRY_WRITE_PERMISSION_TABLE=1 to write it"
        );
    }
}

/// Inside a pod, Gantry registers the cluster it runs in from its service
/// account. Here: the gantry binary as a local process with a pod's
/// environment (KUBERNETES_SERVICE_HOST and _PORT) and the chart's
/// ServiceAccount token, CA and namespace mounted where the kubelet mounts
/// them (/var/run/secrets/kubernetes.io/serviceaccount, in a mount namespace
/// of its own, so nothing on this machine changes). It watches the cluster
/// as `local`, live, with every node. Needs root (for the mount); the test
/// command runs as root.
#[tokio::test]
async fn in_a_pod_gantry_watches_its_own_cluster_with_the_charts_service_account() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: mounting a service account token needs root");
        return;
    }
    let rbac = RbacBed::start("home").await;
    let mounted = gantry_store::testing::TempDir::new("gantry-service-account");
    std::fs::write(mounted.path.join("token"), rbac.chart_token().await).unwrap();
    std::fs::write(mounted.path.join("ca.crt"), rbac.cluster().ca_pem()).unwrap();
    std::fs::write(mounted.path.join("namespace"), RELEASE_NAMESPACE).unwrap();
    let server = rbac.cluster().server();
    let port = server.rsplit(':').next().unwrap().to_string();
    let mount = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && \
         mount --bind {} /run/secrets/kubernetes.io/serviceaccount && exec \"$@\"",
        mounted.path.display()
    );
    let gantry = common::served::Served::spawn(&common::served::Launch {
        env: &[("KUBERNETES_SERVICE_HOST", "127.0.0.1"), ("KUBERNETES_SERVICE_PORT", &port)],
        through: &["unshare", "--mount", "--propagation", "private", "sh", "-c", &mount, "sh"],
        ..Default::default()
    });
    gantry
        .wait_until("the cluster it runs in is live as `local`", Duration::from_secs(60), |clusters| {
            clusters.as_array()?.iter().find(|c| c["name"] == "local" && c["state"] == "live").map(|_| ())
        })
        .await;
    let nodes: serde_json::Value = reqwest::Client::new()
        .get(gantry.url("/api/v1/clusters/local/nodes"))
        .bearer_auth(&gantry.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = nodes["items"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names.len(), 3, "the testbed's three nodes: {nodes}");
}
