//! One control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
//! kwok, each on free loopback ports, with its own directory, certificates and kubeconfig.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binaries::{Binaries, Karpenter, TrainerCrds, TrainingOperator};
use crate::pki::{Pki, PkiFiles};
use crate::process::{Process, SpawnSpec, Supervisor, free_port, kill_all, log_tail, stop_all};
use crate::progress::{self, Step};
use crate::{Error, Result, karpenter, kwok, training};

/// Lines of a component's log quoted in errors.
const TAIL_LINES: usize = 30;
/// How long a stopped component gets between SIGTERM and SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);

/// One request as kube-apiserver's audit log recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditedRequest {
    pub verb: String,
    pub uri: String,
}

/// Records the requests of the user `gantry` (Gantry under test), once each, and nothing else:
/// the controllers' own traffic would make the log large for no use.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [gantry]\n- level: None\n";

/// The processes of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Kwok,
    /// The Kubeflow training operator, in clusters with `trainingOperator: true`.
    TrainingOperator,
    /// Karpenter with its KWOK cloud provider, in clusters with `karpenter: true`.
    Karpenter,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Kwok => "kwok",
            Component::TrainingOperator => "training-operator",
            Component::Karpenter => "karpenter",
        }
    }
}

pub(crate) struct Running {
    component: Component,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    probe: Probe,
    pub(crate) process: Process,
}

/// How to tell that a component is up.
#[derive(Clone, Copy)]
enum Probe {
    /// etcd's plain-HTTP `/health`.
    Etcd(u16),
    /// kube-apiserver's `/readyz`, as the admin.
    Apiserver(u16),
    /// `/healthz` over TLS without credentials (controller-manager, scheduler, kwok).
    Healthz(u16),
    /// Plain-HTTP `/readyz` (the health probe address of the training operator and Karpenter).
    HttpReadyz(u16),
}

enum LaunchError {
    PortInUse,
    Failed(Error),
}

/// What a cluster runs or installs beyond the control plane and kwok, as its fleet entry asks.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddOns {
    pub training_operator: Option<TrainingOperator>,
    pub karpenter: Option<Karpenter>,
    pub trainer: Option<TrainerCrds>,
}

/// A running cluster of a [`Testbed`](crate::Testbed).
pub struct ClusterHandle {
    name: String,
    dir: PathBuf,
    binaries: Binaries,
    supervisor: Arc<Supervisor>,
    pki: Pki,
    files: PkiFiles,
    pod_log: PathBuf,
    training_operator: Option<TrainingOperator>,
    karpenter: Option<Karpenter>,
    trainer: Option<TrainerCrds>,
    apiserver_port: OnceLock<u16>,
    running: Mutex<Vec<Arc<Running>>>,
}

impl ClusterHandle {
    pub(crate) fn new(
        name: &str,
        dir: PathBuf,
        binaries: Binaries,
        supervisor: Arc<Supervisor>,
        pod_log: PathBuf,
        add_ons: AddOns,
    ) -> Result<ClusterHandle> {
        let AddOns { training_operator, karpenter, trainer } = add_ons;
        for sub in ["logs", "etcd", "config"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(Error::io(format!("creating {}", path.display())))?;
        }
        let pki = Pki::generate(name)?;
        let files = pki.write(&dir.join("pki"))?;
        Ok(ClusterHandle {
            name: name.to_string(),
            dir,
            binaries,
            supervisor,
            pki,
            files,
            pod_log,
            training_operator,
            karpenter,
            trainer,
            apiserver_port: OnceLock::new(),
            running: Mutex::new(Vec::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// This cluster's directory: `pki/`, `etcd/`, `config/` and `logs/<component>.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self, component: Component) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", component.name()))
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port.get().copied().unwrap_or(0))
    }

    /// The admin bearer token (group system:masters).
    pub fn admin_token(&self) -> &str {
        &self.pki.admin_token
    }

    /// The cluster CA, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// A kubeconfig with one context, named after the cluster, for the admin.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_text(&[self.kubeconfig_entry(&self.server())])
    }

    pub(crate) fn kubeconfig_entry(&self, server: &str) -> KubeconfigEntry {
        KubeconfigEntry {
            name: self.name.clone(),
            server: server.to_string(),
            ca_pem: self.pki.ca_pem.clone(),
            token: self.pki.admin_token.clone(),
        }
    }

    /// The file holding [`kubeconfig_yaml`](Self::kubeconfig_yaml).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A client acting as the admin.
    pub async fn client(&self) -> Result<Client> {
        self.client_for(&self.server()).await
    }

    /// Makes a node NotReady (`ready: false`) or Ready again (`ready: true`) by setting or
    /// removing [`kwok::NOT_READY_ANNOTATION`]; KWOK plays it within about a second.
    pub async fn set_node_ready(&self, node: &str, ready: bool) -> Result<()> {
        let client = self.client().await?;
        kwok::set_node_ready(&client, node, ready)
            .await
            .map_err(Error::kube(&self.name, format!("annotating node {node}")))
    }

    /// The client configuration of the admin.
    pub async fn config(&self) -> Result<kube::Config> {
        self.config_for(self.kubeconfig_entry(&self.server())).await
    }

    async fn client_for(&self, server: &str) -> Result<Client> {
        let config = self.config_for(self.kubeconfig_entry(server)).await?;
        Client::try_from(config).map_err(Error::kube(&self.name, "building a client"))
    }

    async fn config_for(&self, entry: KubeconfigEntry) -> Result<kube::Config> {
        let kubeconfig =
            Kubeconfig::from_yaml(&kubeconfig_text(&[entry])).map_err(|e| self.failure(format!("kubeconfig: {e}")))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| self.failure(format!("kubeconfig: {e}")))
    }

    /// A kubeconfig for the user `gantry`: the admin's rights, but its requests are
    /// the ones the apiserver's audit log records (see [`audited_requests`](Self::audited_requests)).
    pub fn gantry_kubeconfig_yaml(&self) -> String {
        kubeconfig_text(&[self.gantry_entry()])
    }

    /// The client configuration of the user `gantry`, for connecting Gantry under test.
    pub async fn gantry_config(&self) -> Result<kube::Config> {
        self.config_for(self.gantry_entry()).await
    }

    fn gantry_entry(&self) -> KubeconfigEntry {
        KubeconfigEntry { token: self.pki.gantry_token.clone(), ..self.kubeconfig_entry(&self.server()) }
    }

    /// Every request the user `gantry` made, as the apiserver's audit log has it: the verb
    /// and the request URI, oldest first. This is the apiserver's own word on what reached it.
    pub fn audited_requests(&self) -> Vec<AuditedRequest> {
        let text = std::fs::read_to_string(self.dir.join("logs/audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|event| {
                Some(AuditedRequest {
                    verb: event.get("verb")?.as_str()?.to_string(),
                    uri: event.get("requestURI")?.as_str()?.to_string(),
                })
            })
            .collect()
    }

    /// Process ids of the components now running, by component.
    pub fn pids(&self) -> Vec<(Component, u32)> {
        self.running().iter().filter_map(|r| r.process.pid().map(|pid| (r.component, pid))).collect()
    }

    /// An error if a component exited (one stopped with [`stop`](Self::stop) or [`kill`](Self::kill)
    /// does not count), naming it and quoting the end of its log.
    pub fn check(&self) -> Result<()> {
        for running in self.running() {
            if let Some(status) = running.process.exit_status() {
                return Err(self.died(&running, status.to_string()));
            }
        }
        Ok(())
    }

    /// Stops a component (SIGTERM, then SIGKILL). The others keep running and
    /// retrying, as they would during its outage; [`start`](Self::start) brings it back.
    pub fn stop(&self, component: Component) -> Result<()> {
        let running = self.find(component)?;
        stop_all(&[&running.process], STOP_GRACE);
        Ok(())
    }

    /// Kills a component with SIGKILL: its connections drop without a
    /// goodbye, as when its machine dies. [`start`](Self::start) brings it back.
    pub fn kill(&self, component: Component) -> Result<()> {
        let running = self.find(component)?;
        kill_all(&[&running.process]);
        Ok(())
    }

    /// Freezes a component (SIGSTOP): its connections stay open and nothing
    /// answers on them, as when its machine hangs or the network drops
    /// packets. [`thaw`](Self::thaw) lets it carry on where it was.
    pub fn freeze(&self, component: Component) -> Result<()> {
        self.find(component)?.process.signal(libc::SIGSTOP);
        Ok(())
    }

    /// Lets a frozen component carry on (SIGCONT).
    pub fn thaw(&self, component: Component) -> Result<()> {
        self.find(component)?.process.signal(libc::SIGCONT);
        Ok(())
    }

    /// Starts a stopped or killed component again, with the same ports,
    /// certificates and data, and waits until it is ready. A no-op when it runs.
    pub async fn start(&self, component: Component) -> Result<()> {
        let running = self.find(component)?;
        if running.process.pid().is_some() && running.process.exit_status().is_none() {
            return Ok(());
        }
        let child = self
            .supervisor
            .spawn(SpawnSpec {
                program: running.program.clone(),
                args: running.args.clone(),
                log: running.process.log.clone(),
                cwd: self.dir.clone(),
                env: running.env.clone(),
            })
            .await?;
        running.process.replace(child);
        match self.wait_ready(&running, &running.probe, Duration::from_secs(90)).await {
            Ok(()) => Ok(()),
            Err(LaunchError::PortInUse) => Err(self
                .failure(format!("a port of {} was taken by another process while it was stopped", component.name()))),
            Err(LaunchError::Failed(e)) => Err(e),
        }
    }

    /// Starts every component and waits for each to be healthy. With `report` (this cluster's
    /// number from 1, and the number of clusters) it writes a progress line as each starts.
    pub(crate) async fn boot(&self, report: Option<(usize, usize)>) -> Result<()> {
        let starting = |what: &str, of: Option<(usize, usize)>| {
            if report.is_some() {
                progress::emit(&Step::Starting { what, cluster: &self.name, of });
            }
        };
        let dir = self.dir.display().to_string();
        let files = &self.files;
        starting(Component::Etcd.name(), report);
        let etcd = self
            .launch(Component::Etcd, 2, Probe::Etcd, |p| {
                vec![
                    "--name=default".into(),
                    format!("--data-dir={dir}/etcd"),
                    format!("--listen-client-urls=http://127.0.0.1:{}", p[0]),
                    format!("--advertise-client-urls=http://127.0.0.1:{}", p[0]),
                    format!("--listen-peer-urls=http://127.0.0.1:{}", p[1]),
                    format!("--initial-advertise-peer-urls=http://127.0.0.1:{}", p[1]),
                    format!("--initial-cluster=default=http://127.0.0.1:{}", p[1]),
                    // Tests do not need durability; fsync dominates etcd's latency.
                    "--unsafe-no-fsync=true".into(),
                    "--quota-backend-bytes=8589934592".into(),
                    "--log-level=warn".into(),
                ]
            })
            .await?[0];

        let audit_policy = self.dir.join("config/audit-policy.yaml");
        write(&audit_policy, AUDIT_POLICY)?;
        let audit_log = self.dir.join("logs/audit.log");
        starting(Component::KubeApiserver.name(), None);
        let apiserver = self
            .launch(Component::KubeApiserver, 1, Probe::Apiserver, |p| {
                vec![
                    format!("--etcd-servers=http://127.0.0.1:{etcd}"),
                    "--bind-address=127.0.0.1".into(),
                    // A loopback advertise address is refused in the `kubernetes` Endpoints,
                    // so the endpoint reconciler is off (nothing here needs that Service).
                    "--advertise-address=127.0.0.1".into(),
                    "--endpoint-reconciler-type=none".into(),
                    format!("--secure-port={}", p[0]),
                    format!("--tls-cert-file={}", files.serving_cert.display()),
                    format!("--tls-private-key-file={}", files.serving_key.display()),
                    format!("--client-ca-file={}", files.ca.display()),
                    format!("--token-auth-file={}", files.tokens.display()),
                    "--authorization-mode=Node,RBAC".into(),
                    format!("--service-account-key-file={}", files.service_account_pub.display()),
                    format!("--service-account-signing-key-file={}", files.service_account_key.display()),
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                    "--service-cluster-ip-range=10.96.0.0/16".into(),
                    // No token volumes: a pod created right after its namespace would race the
                    // controller that makes the namespace's `default` ServiceAccount.
                    "--disable-admission-plugins=ServiceAccount".into(),
                    "--allow-privileged=true".into(),
                    // Nodes' Hostname addresses do not resolve; kwok serves the kubelet API on
                    // the node IP 127.0.0.1 (pod logs).
                    "--kubelet-preferred-address-types=InternalIP".into(),
                    // A scale fleet sends thousands of writes a second: no inflight limits.
                    "--enable-priority-and-fairness=false".into(),
                    "--max-requests-inflight=0".into(),
                    "--max-mutating-requests-inflight=0".into(),
                    "--profiling=false".into(),
                    format!("--audit-policy-file={}", audit_policy.display()),
                    format!("--audit-log-path={}", audit_log.display()),
                    "--audit-log-format=json".into(),
                    "--audit-log-mode=blocking".into(),
                ]
            })
            .await?[0];
        let _ = self.apiserver_port.set(apiserver);

        let kubeconfig = self.kubeconfig_path();
        write(&kubeconfig, &self.kubeconfig_yaml())?;
        let kubeconfig = kubeconfig.display().to_string();
        let scheduler_config = self.dir.join("config/scheduler.yaml");
        write(
            &scheduler_config,
            &format!(
                "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: {}\n  qps: 1000\n  burst: 2000\nleaderElection:\n  leaderElect: false\n",
                serde_json::Value::from(kubeconfig.as_str())
            ),
        )?;
        let kwok_config = self.dir.join("config/kwok.yaml");
        write(&kwok_config, &kwok::config(&self.binaries.kwok_stages, &self.pod_log)?)?;

        // These three start together.
        starting("kube-controller-manager, kube-scheduler and kwok", None);
        let controller_manager = self.launch(Component::KubeControllerManager, 1, Probe::Healthz, |p| {
            vec![
                format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", p[0]),
                "--kube-api-qps=1000".into(),
                "--kube-api-burst=2000".into(),
                format!("--root-ca-file={}", files.ca.display()),
                format!("--service-account-private-key-file={}", files.service_account_key.display()),
                "--profiling=false".into(),
            ]
        });
        let scheduler = self.launch(Component::KubeScheduler, 1, Probe::Healthz, |p| {
            vec![
                format!("--config={}", scheduler_config.display()),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", p[0]),
            ]
        });
        let kwok = self.launch(Component::Kwok, 1, Probe::Healthz, |p| {
            vec![
                format!("--kubeconfig={kubeconfig}"),
                format!("--config={}", kwok_config.display()),
                "--manage-all-nodes=false".into(),
                format!("--manage-nodes-with-annotation-selector={}=fake", crate::apply::KWOK_NODE_ANNOTATION),
                // Room for a million pod IPs, away from the service range.
                "--cidr=10.128.0.0/12".into(),
                "--node-ip=127.0.0.1".into(),
                format!("--node-port={}", p[0]),
                format!("--server-address=127.0.0.1:{}", p[0]),
                format!("--tls-cert-file={}", files.serving_cert.display()),
                format!("--tls-private-key-file={}", files.serving_key.display()),
            ]
        });
        futures::try_join!(controller_manager, scheduler, kwok)?;
        if self.training_operator.is_some() {
            starting(Component::TrainingOperator.name(), None);
            self.start_training_operator(&kubeconfig).await?;
        }
        if let Some(trainer) = &self.trainer {
            training::prepare_trainer(&self.client().await?, &self.name, trainer).await?;
        }
        if self.karpenter.is_some() {
            starting(Component::Karpenter.name(), None);
            self.start_karpenter(&kubeconfig).await?;
        }
        Ok(())
    }

    /// Whether this cluster has Kubeflow Trainer v2's CRDs (`trainJobCrds: true`).
    pub fn has_train_job_crds(&self) -> bool {
        self.trainer.is_some()
    }

    /// Whether this cluster runs Karpenter.
    pub fn has_karpenter(&self) -> bool {
        self.karpenter.is_some()
    }

    /// The KWOK provider's instance-types file Karpenter of this cluster reads
    /// ([`karpenter::instance_types_json`]).
    pub fn karpenter_instance_types_path(&self) -> PathBuf {
        self.dir.join("config/karpenter-instance-types.json")
    }

    /// Applies Karpenter's CRDs, creates the `KWOKNodeClass` `default`, writes the instance
    /// types and starts Karpenter out of cluster (no leader election; it has no webhooks),
    /// its health probe and metrics on free ports, waiting until its `/readyz` passes.
    async fn start_karpenter(&self, kubeconfig: &str) -> Result<()> {
        let found = self.karpenter.as_ref().expect("checked by the caller");
        let client = self.client().await?;
        karpenter::prepare_cluster(&client, &self.name, found).await?;
        let instance_types = self.karpenter_instance_types_path();
        let text = serde_json::to_string_pretty(&karpenter::instance_types_json()).expect("JSON values serialize");
        write(&instance_types, &text)?;
        let env = |p: &[u16]| {
            [
                // controller-runtime's GetConfigOrDie; Karpenter's own flag set has no --kubeconfig.
                ("KUBECONFIG", kubeconfig.to_string()),
                ("DISABLE_LEADER_ELECTION", "true".into()),
                ("HEALTH_PROBE_PORT", p[0].to_string()),
                ("METRICS_PORT", p[1].to_string()),
                ("INSTANCE_TYPES_FILE_PATH", instance_types.display().to_string()),
                ("LOG_LEVEL", "info".into()),
                // The default (10 s) would hold a lone pending pod back for up to that long.
                ("BATCH_MAX_DURATION", "2s".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Vec<_>>()
        };
        self.launch_with_port_env(Component::Karpenter, 2, Probe::HttpReadyz, env, |_| Vec::new()).await?;
        Ok(())
    }

    /// Whether this cluster runs the Kubeflow training operator.
    pub fn has_training_operator(&self) -> bool {
        self.training_operator.is_some()
    }

    /// Applies the training operator's CRDs, creates what its cert rotator needs and starts it
    /// (PyTorchJob and TFJob controllers only), waiting until its `/readyz` passes.
    async fn start_training_operator(&self, kubeconfig: &str) -> Result<()> {
        let operator = self.training_operator.as_ref().expect("checked by the caller");
        let client = self.client().await?;
        training::prepare_cluster(&client, &self.name, operator).await?;
        let tmp = self.dir.join("training-operator");
        training::write_cert_files(&tmp, &self.files.serving_cert, &self.files.serving_key)?;
        let env = vec![
            // Its webhook server reads its certificate from $TMPDIR/k8s-webhook-server/serving-certs.
            ("TMPDIR".to_string(), tmp.display().to_string()),
            // The namespace of its cert rotator's Secret.
            ("MY_POD_NAMESPACE".to_string(), training::OPERATOR_NAMESPACE.to_string()),
        ];
        self.launch_with_env(Component::TrainingOperator, 2, Probe::HttpReadyz, env, |p| {
            let mut args = vec![
                format!("--kubeconfig={kubeconfig}"),
                // "0" turns the metrics server off (its default, :8080, would clash).
                "--metrics-bind-address=0".into(),
                format!("--health-probe-bind-address=127.0.0.1:{}", p[0]),
                format!("--webhook-server-port={}", p[1]),
                "--leader-elect=false".into(),
                "--zap-log-level=info".into(),
            ];
            args.extend(training::ENABLED_SCHEMES.iter().map(|s| format!("--enable-scheme={s}")));
            args
        })
        .await?;
        Ok(())
    }

    /// Starts a component on fresh ports and waits until `probe` passes; when it dies
    /// because a port was taken meanwhile, tries again on other ports.
    async fn launch(
        &self,
        component: Component,
        port_count: usize,
        probe: impl Fn(u16) -> Probe,
        args: impl Fn(&[u16]) -> Vec<String>,
    ) -> Result<Vec<u16>> {
        self.launch_with_env(component, port_count, probe, Vec::new(), args).await
    }

    /// [`launch`](Self::launch) with extra environment variables.
    async fn launch_with_env(
        &self,
        component: Component,
        port_count: usize,
        probe: impl Fn(u16) -> Probe,
        env: Vec<(String, String)>,
        args: impl Fn(&[u16]) -> Vec<String>,
    ) -> Result<Vec<u16>> {
        self.launch_with_port_env(component, port_count, probe, |_| env.clone(), args).await
    }

    /// [`launch`](Self::launch) with extra environment variables that may name its ports.
    async fn launch_with_port_env(
        &self,
        component: Component,
        port_count: usize,
        probe: impl Fn(u16) -> Probe,
        env: impl Fn(&[u16]) -> Vec<(String, String)>,
        args: impl Fn(&[u16]) -> Vec<String>,
    ) -> Result<Vec<u16>> {
        let program = match component {
            Component::Etcd => &self.binaries.etcd,
            Component::KubeApiserver => &self.binaries.kube_apiserver,
            Component::KubeControllerManager => &self.binaries.kube_controller_manager,
            Component::KubeScheduler => &self.binaries.kube_scheduler,
            Component::Kwok => &self.binaries.kwok,
            Component::TrainingOperator => match &self.training_operator {
                Some(operator) => &operator.binary,
                None => return Err(self.failure("this cluster has no training operator".into())),
            },
            Component::Karpenter => match &self.karpenter {
                Some(karpenter) => &karpenter.binary,
                None => return Err(self.failure("this cluster has no Karpenter".into())),
            },
        };
        let log = self.log_path(component);
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let ports = (0..port_count).map(|_| free_port()).collect::<Result<Vec<u16>>>()?;
            let args = args(&ports);
            let env = env(&ports);
            let child = self
                .supervisor
                .spawn(SpawnSpec {
                    program: program.clone(),
                    args: args.clone(),
                    log: log.clone(),
                    cwd: self.dir.clone(),
                    env: env.clone(),
                })
                .await?;
            let running = Arc::new(Running {
                component,
                program: program.clone(),
                args,
                env: env.clone(),
                probe: probe(ports[0]),
                process: Process::new(child, log.clone()),
            });
            self.running.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&running));
            let timeout = Duration::from_secs(if component == Component::KubeApiserver { 90 } else { 60 });
            match self.wait_ready(&running, &running.probe, timeout).await {
                Ok(()) => return Ok(ports),
                Err(LaunchError::PortInUse) if attempt < ATTEMPTS => {
                    tracing::warn!(cluster = %self.name, component = component.name(), ?ports, "port taken, retrying on other ports");
                    self.running.lock().unwrap_or_else(|e| e.into_inner()).retain(|r| !Arc::ptr_eq(r, &running));
                    stop_all(&[&running.process], STOP_GRACE);
                }
                Err(LaunchError::PortInUse) => {
                    return Err(self.died(&running, "its ports were taken on every attempt".into()));
                }
                Err(LaunchError::Failed(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn wait_ready(&self, running: &Running, probe: &Probe, timeout: Duration) -> Result<(), LaunchError> {
        let started = Instant::now();
        loop {
            if let Some(status) = running.process.exit_status() {
                let tail = log_tail(&running.process.log, TAIL_LINES);
                if tail.contains("address already in use") {
                    return Err(LaunchError::PortInUse);
                }
                return Err(LaunchError::Failed(self.died(running, status.to_string())));
            }
            if self.probe(probe).await {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(LaunchError::Failed(Error::Timeout {
                    cluster: self.name.clone(),
                    what: format!("{} to be healthy", running.component.name()),
                    seconds: timeout.as_secs(),
                    detail: format!(
                        "; last lines of {}:\n{}",
                        running.process.log.display(),
                        log_tail(&running.process.log, TAIL_LINES)
                    ),
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn probe(&self, probe: &Probe) -> bool {
        let attempt = async {
            match probe {
                Probe::Etcd(port) => {
                    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", *port)).await.ok()?;
                    stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
                    let mut body = String::new();
                    stream.read_to_string(&mut body).await.ok()?;
                    Some(body.contains("\"health\":\"true\""))
                }
                Probe::Apiserver(port) => {
                    let client = self.client_for(&format!("https://127.0.0.1:{port}")).await.ok()?;
                    let text = client.request_text(get("/readyz")).await.ok()?;
                    Some(text.trim() == "ok")
                }
                Probe::HttpReadyz(port) => {
                    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", *port)).await.ok()?;
                    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
                    let mut body = String::new();
                    stream.read_to_string(&mut body).await.ok()?;
                    Some(body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"))
                }
                Probe::Healthz(port) => {
                    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().ok()?);
                    config.accept_invalid_certs = true;
                    config.default_retry = false;
                    let client = Client::try_from(config).ok()?;
                    let text = client.request_text(get("/healthz")).await.ok()?;
                    Some(text.trim() == "ok")
                }
            }
        };
        matches!(tokio::time::timeout(Duration::from_secs(3), attempt).await, Ok(Some(true)))
    }

    /// Runs `work`, failing early with the component's log if a component dies meanwhile.
    pub(crate) async fn guarded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let watchdog = async {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Err(e) = self.check() {
                    return e;
                }
            }
        };
        tokio::select! {
            result = work => result,
            died = watchdog => Err(died),
        }
    }

    pub(crate) fn running(&self) -> Vec<Arc<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find(&self, component: Component) -> Result<Arc<Running>> {
        self.running()
            .into_iter()
            .find(|r| r.component == component)
            .ok_or_else(|| self.failure(format!("{} was never started", component.name())))
    }

    fn died(&self, running: &Running, status: String) -> Error {
        Error::ComponentDied {
            cluster: self.name.clone(),
            component: running.component.name(),
            status,
            log: running.process.log.clone(),
            tail: log_tail(&running.process.log, TAIL_LINES),
        }
    }

    fn failure(&self, message: String) -> Error {
        Error::Cluster { cluster: self.name.clone(), message }
    }
}

fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).expect("a valid request")
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

pub(crate) struct KubeconfigEntry {
    name: String,
    server: String,
    ca_pem: String,
    token: String,
}

/// A kubeconfig with one context per cluster, named after it; the first is current.
/// Strings are quoted: a cluster named `y` or `no` would otherwise read as a YAML 1.1 bool.
pub(crate) fn kubeconfig_text(clusters: &[KubeconfigEntry]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for c in clusters {
        text.push_str(&format!(
            "- name: {}\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n",
            quote(&c.name),
            quote(&c.server),
            b64.encode(&c.ca_pem)
        ));
    }
    text.push_str("users:\n");
    for c in clusters {
        text.push_str(&format!(
            "- name: {}\n  user:\n    token: {}\n",
            quote(&format!("{}-admin", c.name)),
            quote(&c.token)
        ));
    }
    text.push_str("contexts:\n");
    for c in clusters {
        text.push_str(&format!(
            "- name: {0}\n  context:\n    cluster: {0}\n    user: {1}\n",
            quote(&c.name),
            quote(&format!("{}-admin", c.name))
        ));
    }
    if let Some(first) = clusters.first() {
        text.push_str(&format!("current-context: {}\n", quote(&first.name)));
    }
    text.push_str("preferences: {}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_that_look_like_yaml_bools_stay_strings() {
        let entry = |name: &str| KubeconfigEntry {
            name: name.into(),
            server: "https://127.0.0.1:6443".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            token: "abc".into(),
        };
        let text = kubeconfig_text(&[entry("y"), entry("no")]);
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        let contexts: Vec<&str> = parsed.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(contexts, ["y", "no"]);
        assert_eq!(parsed.current_context.as_deref(), Some("y"));
        let users: Vec<&str> = parsed.auth_infos.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["y-admin", "no-admin"]);
    }
}
