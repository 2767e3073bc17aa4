//! Per-cluster watch caches and the hub that holds them.
//!
//! Each watched kind runs one kube-runtime watcher (paged initial list, then
//! a watch, with backoff on errors). Events are summarised on arrival into a
//! [`Cache`], and every change is announced on a broadcast channel that feeds
//! the live-update streams. A light heartbeat (`GET /readyz`, and `/version`
//! when it is not known) tells whether the cluster answers and is ready.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use gantry_domain::view::{ConnectionState, Millis, ResourceKind};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, ResourceQuota};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Client, Resource};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::summary::{self, Interner, Key};

pub use gantry_domain::view::now_ms;

/// Running totals over one cache's items, kept up to date on every change so
/// that a question about the whole cache (how many pods in a namespace, how
/// many GPUs a node's pods hold) costs a lookup, not a pass over 30,000 items.
pub trait Tally<T>: Default {
    fn add(&mut self, key: &Key, item: &T);
    fn remove(&mut self, key: &Key, item: &T);
    /// The item was deleted (after `remove`), not replaced by a newer version.
    fn deleted(&mut self, _key: &Key, _item: &T) {}
}

/// No totals.
impl<T> Tally<T> for () {
    fn add(&mut self, _: &Key, _: &T) {}
    fn remove(&mut self, _: &Key, _: &T) {}
}

/// One kind of object in one cluster, summarised, ordered by (namespace,
/// name), with its running totals.
pub struct Cache<T, A = ()> {
    contents: RwLock<(BTreeMap<Key, T>, A)>,
    synced: AtomicBool,
}

impl<T, A: Tally<T>> Default for Cache<T, A> {
    fn default() -> Self {
        Cache { contents: RwLock::new((BTreeMap::new(), A::default())), synced: AtomicBool::new(false) }
    }
}

impl<T, A: Tally<T>> Cache<T, A> {
    /// Runs `f` over the items under a read lock.
    pub fn read<R>(&self, f: impl FnOnce(&BTreeMap<Key, T>) -> R) -> R {
        f(&self.contents.read().0)
    }

    /// Runs `f` over the items and their totals, under one read lock.
    pub fn read_tallied<R>(&self, f: impl FnOnce(&BTreeMap<Key, T>, &A) -> R) -> R {
        let contents = self.contents.read();
        f(&contents.0, &contents.1)
    }

    pub fn len(&self) -> usize {
        self.contents.read().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn replace_all(&self, items: BTreeMap<Key, T>) {
        let mut tally = A::default();
        for (key, item) in &items {
            tally.add(key, item);
        }
        *self.contents.write() = (items, tally);
        self.synced.store(true, Ordering::Release);
    }

    fn put(&self, key: Key, item: T) {
        use std::collections::btree_map::Entry;
        let mut contents = self.contents.write();
        let (items, tally) = &mut *contents;
        match items.entry(key) {
            Entry::Occupied(mut entry) => {
                tally.remove(entry.key(), entry.get());
                tally.add(entry.key(), &item);
                entry.insert(item);
            }
            Entry::Vacant(entry) => {
                tally.add(entry.key(), &item);
                entry.insert(item);
            }
        }
    }

    fn remove(&self, key: &Key) {
        let mut contents = self.contents.write();
        let (items, tally) = &mut *contents;
        if let Some(old) = items.remove(key) {
            tally.remove(key, &old);
            tally.deleted(key, &old);
        }
    }
}

/// "Something of this kind changed in this namespace of this cluster."
/// Streams forward these (filtered by what the viewer may see); pages then
/// re-read the data they show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub cluster: Arc<str>,
    pub kind: ResourceKind,
    /// None for cluster-scoped objects, cluster state, and whole relists.
    pub namespace: Option<Arc<str>>,
}

#[derive(Clone, Debug, Default)]
struct Health {
    version: Option<String>,
    last_contact: Option<Millis>,
    heartbeat_error: Option<String>,
    failing_watches: BTreeMap<ResourceKind, WatchFailure>,
    ever_synced: bool,
}

#[derive(Clone, Debug)]
struct WatchFailure {
    message: String,
    /// The apiserver refused the watch (401, 403, 404): it stays failed until
    /// that watch delivers again. Any other failure is the connection's, and
    /// is over once the apiserver answers again: a watch that resumes sends
    /// nothing until something changes, so it cannot say so itself.
    refused: bool,
}

fn refused(error: &watcher::Error) -> bool {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::WatchError(s) => s,
        watcher::Error::NoResourceVersion => return true,
        _ => return false,
    };
    matches!(status.code, 401 | 403 | 404)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub state: ConnectionState,
    pub version: Option<String>,
    pub last_contact: Option<Millis>,
    pub message: Option<String>,
}

/// Everything Gantry knows about one cluster.
pub struct ClusterCache {
    pub name: Arc<str>,
    /// For requests that answer and end: reads time out, so a request that
    /// hangs cannot pin a server task and an apiserver connection forever.
    client: Client,
    /// For watches and followed logs, which stay open by design.
    streaming: Client,
    pub interner: Interner,
    pub nodes: Cache<summary::NodeSummary>,
    pub pods: Cache<summary::PodSummary, summary::PodTally>,
    pub deployments: Cache<summary::DeploymentSummary>,
    pub replica_sets: Cache<summary::ReplicaSetSummary>,
    pub jobs: Cache<summary::JobSummary>,
    pub namespaces: Cache<summary::NamespaceSummary>,
    pub quotas: Cache<summary::QuotaSummary>,
    pub events: Cache<summary::EventSummary>,
    pub autoscalers: Cache<summary::HpaSummary>,
    /// The training operator's jobs and Kubeflow Trainer's TrainJobs, one
    /// cache per kind (empty where its CRD is not installed), in
    /// [`TrainingKind::ALL`]'s order.
    pub training_jobs: [Cache<crate::training::TrainingJobSummary>; 3],
    /// Karpenter's NodePools and NodeClaims (empty where it is not installed).
    pub node_pools: Cache<crate::autoscaling::NodePoolSummary>,
    pub node_claims: Cache<crate::autoscaling::NodeClaimSummary>,
    health: RwLock<Health>,
    changes: broadcast::Sender<Change>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl ClusterCache {
    fn synced(&self) -> bool {
        [
            self.nodes.is_synced(),
            self.pods.is_synced(),
            self.deployments.is_synced(),
            self.replica_sets.is_synced(),
            self.jobs.is_synced(),
            self.namespaces.is_synced(),
            self.quotas.is_synced(),
            self.events.is_synced(),
            self.autoscalers.is_synced(),
        ]
        .into_iter()
        .all(|s| s)
    }

    pub fn status(&self) -> ClusterStatus {
        let health = self.health.read();
        // A kind only some clusters serve, refused by the cluster's RBAC, is
        // missing from its views (which say so), not a cluster in trouble.
        let trouble = health.heartbeat_error.clone().or_else(|| {
            health
                .failing_watches
                .iter()
                .find(|(kind, e)| !(e.refused && is_optional(**kind)))
                .map(|(kind, e)| format!("watch of {} failed: {}", kind.label(), e.message))
        });
        let state = match (&trouble, health.ever_synced, self.synced()) {
            (Some(_), true, _) => ConnectionState::Stale,
            (Some(_), false, _) => ConnectionState::Connecting,
            (None, _, true) => ConnectionState::Live,
            (None, _, false) => ConnectionState::Connecting,
        };
        ClusterStatus { state, version: health.version.clone(), last_contact: health.last_contact, message: trouble }
    }

    /// Why the watch of a kind is refused by the cluster (its RBAC), if it is.
    pub fn refused(&self, kind: ResourceKind) -> Option<String> {
        let health = self.health.read();
        health.failing_watches.get(&kind).filter(|f| f.refused).map(|f| f.message.clone())
    }

    fn announce(&self, kind: ResourceKind, namespace: Option<Arc<str>>) {
        // No receivers is normal (nobody has a page open).
        let _ = self.changes.send(Change { cluster: self.name.clone(), kind, namespace });
    }

    /// Marks the cluster in trouble for `why` (until the next good heartbeat).
    fn trouble(&self, why: String) {
        let changed = {
            let mut health = self.health.write();
            let changed = health.heartbeat_error.as_deref() != Some(why.as_str());
            health.heartbeat_error = Some(why);
            changed
        };
        if changed {
            self.announce(ResourceKind::Cluster, None);
        }
    }

    fn contact(&self, kind: Option<ResourceKind>) {
        let mut health = self.health.write();
        let before = health.failing_watches.len();
        if let Some(kind) = kind {
            health.failing_watches.remove(&kind);
        }
        health.last_contact = Some(now_ms());
        let recovered = before != health.failing_watches.len();
        drop(health);
        if recovered {
            self.announce(ResourceKind::Cluster, None);
        }
    }

    fn watch_failed(&self, kind: ResourceKind, error: &watcher::Error) {
        let mut health = self.health.write();
        let first = !health.failing_watches.contains_key(&kind);
        health.failing_watches.insert(kind, WatchFailure { message: one_line(error), refused: refused(error) });
        drop(health);
        if first {
            self.announce(ResourceKind::Cluster, None);
        }
    }

    /// Forgets a failing watch of a kind no longer watched.
    fn forget_failure(&self, kind: ResourceKind) {
        if self.health.write().failing_watches.remove(&kind).is_some() {
            self.announce(ResourceKind::Cluster, None);
        }
    }

    fn synced_once(&self) {
        if self.synced() {
            let mut health = self.health.write();
            if !health.ever_synced {
                health.ever_synced = true;
                drop(health);
                self.announce(ResourceKind::Cluster, None);
            }
        }
    }

    fn shutdown(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// A training operator's jobs of `kind` in a namespace, through the dynamic API.
    pub fn training_api(&self, kind: crate::training::TrainingKind, namespace: &str) -> Api<kube::api::DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource())
    }

    /// The kind of the training operator's job of this name, if the caches hold one.
    pub fn training_kind_of(&self, namespace: &str, name: &str) -> Option<crate::training::TrainingKind> {
        let key = Key { namespace: namespace.into(), name: name.into() };
        crate::training::TrainingKind::ALL
            .into_iter()
            .zip(&self.training_jobs)
            .find(|(_, cache)| cache.read(|jobs| jobs.contains_key(&key)))
            .map(|(kind, _)| kind)
    }

    /// Like [`api`](Self::api), without the read timeout: for a followed log.
    pub fn streaming_api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.streaming.clone(), namespace)
    }

    /// The client for requests that answer and end (with the read timeout).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// How long a request that should answer and end may wait for the apiserver.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the heartbeat asks the apiserver whether it is ready.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// An answer slower than this marks the cluster stale at once (so a failed
/// cluster is stale within HEARTBEAT + SLOW_ANSWER); the heartbeat still
/// waits for the answer until LAST_ANSWER, for the apiserver's reason.
const SLOW_ANSWER: Duration = Duration::from_secs(2);
const LAST_ANSWER: Duration = Duration::from_secs(15);
/// Initial lists are paged so a 30,000-pod cluster is never one huge response.
const PAGE_SIZE: u32 = 500;

async fn heartbeat(cluster: Arc<ClusterCache>) {
    loop {
        // The version only when it is not known or the cluster was in trouble
        // (it may have been upgraded meanwhile); readiness every time.
        let known = {
            let health = cluster.health.read();
            health.version.clone().filter(|_| health.heartbeat_error.is_none())
        };
        let mut asking = Box::pin(apiserver_health(&cluster.client, known));
        let answer = match tokio::time::timeout(SLOW_ANSWER, &mut asking).await {
            Ok(answer) => Ok(answer),
            Err(_) => {
                // Stale now, but keep listening: an apiserver that lost etcd
                // takes its own timeouts to say so, and says why.
                cluster.trouble(format!("the apiserver has not answered for {} s", SLOW_ANSWER.as_secs()));
                tokio::time::timeout(LAST_ANSWER - SLOW_ANSWER, asking).await
            }
        };
        let changed = {
            let mut health = cluster.health.write();
            let was_ok = health.heartbeat_error.is_none() && health.version.is_some();
            match answer {
                Ok(Ok(version)) => {
                    health.version = Some(version);
                    health.last_contact = Some(now_ms());
                    health.heartbeat_error = None;
                    let watches_before = health.failing_watches.len();
                    health.failing_watches.retain(|_, f| f.refused);
                    !was_ok || watches_before != health.failing_watches.len()
                }
                Ok(Err(why)) => {
                    health.heartbeat_error = Some(why);
                    was_ok || health.version.is_none()
                }
                Err(_) => {
                    health.heartbeat_error =
                        Some(format!("the apiserver did not answer within {} s", LAST_ANSWER.as_secs()));
                    true
                }
            }
        };
        if changed {
            cluster.announce(ResourceKind::Cluster, None);
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// The apiserver's version (asked for unless `known`) when it answers and is
/// ready; else why not, in its own words: `/readyz?verbose` names the checks
/// that fail (etcd, say), which `/version` alone would not notice.
async fn apiserver_health(client: &Client, known: Option<String>) -> Result<String, String> {
    let version = match known {
        Some(version) => version,
        None => {
            let info = client
                .apiserver_version()
                .await
                .map_err(|e| format!("the apiserver does not answer: {}", one_line(&e)))?;
            info.git_version
        }
    };
    let readyz = http::Request::get("/readyz?verbose").body(Vec::new()).expect("a constant request");
    match client.request_text(readyz).await {
        Ok(_) => Ok(version),
        Err(kube::Error::Api(status)) => {
            let failing: Vec<&str> = status.message.lines().filter(|l| l.starts_with("[-]")).collect();
            let why = if failing.is_empty() { one_line(&status.message) } else { failing.join("; ") };
            Err(format!("the apiserver is not ready: {why}"))
        }
        Err(e) => Err(format!("the apiserver does not answer: {}", one_line(&e))),
    }
}

pub(crate) fn one_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default();
    if line.len() > 300 { format!("{}…", &line[..line.floor_char_boundary(300)]) } else { line.to_string() }
}

/// How a failed watch retries: from half a second, doubling, to at most 4 s
/// (with jitter, up to 8 s), back to the start after two quiet minutes.
/// client-go's reflector waits up to 30 s, kind to a struggling apiserver;
/// a dashboard must show a cluster that came back within seconds, and its
/// nine watches a cluster at most every 4 s are still light.
fn watch_backoff() -> impl kube::runtime::utils::Backoff {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(4))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    kube::runtime::utils::ResetTimerBackoff::new(
        watcher::ExponentialBackoff::from(exponential),
        Duration::from_secs(120),
    )
}

/// Keeps one cache in step with one watched kind.
async fn watch<K, T, A: Tally<T>>(
    cluster: Arc<ClusterCache>,
    api: Api<K>,
    kind: ResourceKind,
    cache: fn(&ClusterCache) -> &Cache<T, A>,
    summarize: fn(&K, &Interner) -> T,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let config = watcher::Config::default().page_size(PAGE_SIZE);
    let mut stream = watcher::watcher(api, config).backoff(watch_backoff()).boxed();
    let mut buffer: Option<BTreeMap<Key, T>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(WatchEvent::Init) => buffer = Some(BTreeMap::new()),
            Ok(WatchEvent::InitApply(object)) => {
                let key = summary::key_of(object.meta(), &cluster.interner);
                let item = summarize(&object, &cluster.interner);
                buffer.get_or_insert_with(BTreeMap::new).insert(key, item);
            }
            Ok(WatchEvent::InitDone) => {
                cache(&cluster).replace_all(buffer.take().unwrap_or_default());
                cluster.contact(Some(kind));
                cluster.synced_once();
                cluster.announce(kind, None);
            }
            Ok(WatchEvent::Apply(object)) => {
                let key = summary::key_of(object.meta(), &cluster.interner);
                let namespace = (!key.namespace.is_empty()).then(|| key.namespace.clone());
                cache(&cluster).put(key, summarize(&object, &cluster.interner));
                cluster.contact(Some(kind));
                cluster.announce(kind, namespace);
            }
            Ok(WatchEvent::Delete(object)) => {
                let key = summary::key_of(object.meta(), &cluster.interner);
                let namespace = (!key.namespace.is_empty()).then(|| key.namespace.clone());
                cache(&cluster).remove(&key);
                cluster.contact(Some(kind));
                cluster.announce(kind, namespace);
            }
            Err(error) => {
                tracing::warn!(cluster = %cluster.name, kind = kind.label(), "watch failed: {}", one_line(&error));
                cluster.watch_failed(kind, &error);
            }
        }
    }
}

/// How often a cluster is asked again which optional kinds it serves.
const DISCOVERY: Duration = Duration::from_secs(30);

/// A kind that exists only where its CRD is installed (the training
/// operator's jobs, Karpenter's pools and claims): watched while the cluster
/// serves it, its cache emptied when it stops.
struct OptionalKind {
    resource: fn() -> kube::api::ApiResource,
    kind: ResourceKind,
    /// Starts the watch that fills its cache.
    start: fn(Arc<ClusterCache>, Client) -> JoinHandle<()>,
    /// Empties its cache.
    clear: fn(&ClusterCache),
}

/// One entry of [`OPTIONAL_KINDS`]: its resource, the kind its changes are
/// announced as, the cache it fills (`|c| c.field`) and how an object is summarised.
macro_rules! optional_kind {
    ($resource:expr, $kind:expr, |$c:ident| $cache:expr, $summarize:expr) => {
        OptionalKind {
            resource: || $resource,
            kind: $kind,
            start: |cluster, streaming| {
                let api = Api::<kube::api::DynamicObject>::all_with(streaming, &$resource);
                tokio::spawn(watch(cluster, api, $kind, |$c| &$cache, $summarize))
            },
            clear: |$c| $cache.replace_all(BTreeMap::new()),
        }
    };
}

const OPTIONAL_KINDS: [OptionalKind; 5] = {
    use crate::autoscaling::{self as karpenter, KarpenterKind};
    use crate::training::{self, TrainingKind};
    [
        optional_kind!(
            TrainingKind::PyTorchJob.api_resource(),
            ResourceKind::TrainingJob,
            |c| c.training_jobs[0],
            |o, _| training::of_object(TrainingKind::PyTorchJob, o)
        ),
        optional_kind!(
            TrainingKind::TfJob.api_resource(),
            ResourceKind::TrainingJob,
            |c| c.training_jobs[1],
            |o, _| training::of_object(TrainingKind::TfJob, o)
        ),
        optional_kind!(
            TrainingKind::TrainJob.api_resource(),
            ResourceKind::TrainingJob,
            |c| c.training_jobs[2],
            |o, _| training::of_object(TrainingKind::TrainJob, o)
        ),
        optional_kind!(KarpenterKind::NodePool.api_resource(), ResourceKind::NodePool, |c| c.node_pools, |o, _| {
            karpenter::node_pool_of(o)
        }),
        optional_kind!(KarpenterKind::NodeClaim.api_resource(), ResourceKind::NodeClaim, |c| c.node_claims, |o, _| {
            karpenter::node_claim_of(o)
        }),
    ]
};

fn is_optional(kind: ResourceKind) -> bool {
    OPTIONAL_KINDS.iter().any(|o| o.kind == kind)
}

/// Watches each optional kind whose CRD the cluster serves, asking again
/// every 30 s for the kinds it does not (a controller installed later is
/// picked up; a cluster without one is no error). A kind whose CRD goes away
/// is dropped, its cache emptied.
async fn watch_optional_kinds(cluster: Arc<ClusterCache>, client: Client, streaming: Client) {
    /// The kinds' watches end with this task (when the cluster is disconnected).
    struct Watching([Option<JoinHandle<()>>; OPTIONAL_KINDS.len()]);
    impl Drop for Watching {
        fn drop(&mut self) {
            self.0.iter().flatten().for_each(JoinHandle::abort);
        }
    }
    let mut watching = Watching(Default::default());
    let watching = &mut watching.0;
    loop {
        // One question per API group version, for the kinds in it.
        let mut served: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for (index, optional) in OPTIONAL_KINDS.iter().enumerate() {
            let resource = (optional.resource)();
            let plurals = match served.get(&resource.api_version) {
                Some(plurals) => plurals.clone(),
                None => {
                    let plurals = served_plurals(&client, &resource.api_version).await;
                    served.insert(resource.api_version.clone(), plurals.clone());
                    plurals
                }
            };
            let wanted = plurals.map(|p| p.contains(&resource.plural));
            match (&watching[index], wanted) {
                (None, Some(true)) => watching[index] = Some((optional.start)(cluster.clone(), streaming.clone())),
                (Some(task), Some(false)) => {
                    task.abort();
                    watching[index] = None;
                    (optional.clear)(&cluster);
                    cluster.forget_failure(optional.kind);
                    cluster.announce(optional.kind, None);
                }
                // Still there, still absent, or the apiserver did not answer: as before.
                _ => {}
            }
        }
        tokio::time::sleep(DISCOVERY).await;
    }
}

/// The resources (plurals) an API group version serves now: none where the
/// group is not installed, None when the apiserver could not be asked.
async fn served_plurals(client: &Client, group_version: &str) -> Option<Vec<String>> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Some(list.resources.into_iter().map(|r| r.name).collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Whether the cluster serves a training kind now; None when it could not be asked.
pub(crate) async fn serves_training_kind(client: &Client, kind: crate::training::TrainingKind) -> Option<bool> {
    let plurals = served_plurals(client, &kind.api_resource().api_version).await?;
    Some(plurals.iter().any(|p| p == kind.plural()))
}

/// All connected clusters.
pub struct Hub {
    clusters: RwLock<BTreeMap<String, Arc<ClusterCache>>>,
    changes: broadcast::Sender<Change>,
    /// When this hub (this process's) was made: its first clusters connect then.
    born: std::time::Instant,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            clusters: RwLock::new(BTreeMap::new()),
            changes: broadcast::channel(4096).0,
            born: std::time::Instant::now(),
        }
    }
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Starts watching a cluster under `name`, replacing any earlier one.
    /// Must be called inside a tokio runtime. Two clients are made from
    /// `config`: one whose reads time out after [`REQUEST_TIMEOUT`], for
    /// requests that answer and end, and one without, for watches and
    /// followed logs.
    pub fn connect(&self, name: &str, config: kube::Config) -> Result<Arc<ClusterCache>, kube::Error> {
        self.connect_with_timeout(name, config, REQUEST_TIMEOUT)
    }

    /// [`connect`](Self::connect) with another read timeout (tests use a short one).
    pub fn connect_with_timeout(
        &self,
        name: &str,
        mut config: kube::Config,
        read_timeout: Duration,
    ) -> Result<Arc<ClusterCache>, kube::Error> {
        config.read_timeout = None;
        let streaming = Client::try_from(config.clone())?;
        config.read_timeout = Some(read_timeout);
        let client = Client::try_from(config)?;
        Ok(self.connect_clients(name, client, streaming))
    }

    fn connect_clients(&self, name: &str, client: Client, streaming: Client) -> Arc<ClusterCache> {
        let cluster = Arc::new(ClusterCache {
            name: Arc::from(name),
            client: client.clone(),
            streaming: streaming.clone(),
            interner: Interner::default(),
            nodes: Cache::default(),
            pods: Cache::default(),
            deployments: Cache::default(),
            replica_sets: Cache::default(),
            jobs: Cache::default(),
            namespaces: Cache::default(),
            quotas: Cache::default(),
            events: Cache::default(),
            autoscalers: Cache::default(),
            training_jobs: Default::default(),
            node_pools: Cache::default(),
            node_claims: Cache::default(),
            health: RwLock::new(Health::default()),
            changes: self.changes.clone(),
            tasks: parking_lot::Mutex::new(Vec::new()),
        });
        let c = &cluster;
        let tasks = vec![
            tokio::spawn(heartbeat(c.clone())),
            tokio::spawn(watch(
                c.clone(),
                Api::<Node>::all(streaming.clone()),
                ResourceKind::Node,
                |c| &c.nodes,
                summary::node,
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<Pod>::all(streaming.clone()),
                ResourceKind::Pod,
                |c| &c.pods,
                summary::pod,
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<Deployment>::all(streaming.clone()),
                ResourceKind::Deployment,
                |c| &c.deployments,
                |d, _| summary::deployment(d),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<ReplicaSet>::all(streaming.clone()),
                ResourceKind::ReplicaSet,
                |c| &c.replica_sets,
                |r, _| summary::replica_set(r),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<Job>::all(streaming.clone()),
                ResourceKind::Job,
                |c| &c.jobs,
                |j, _| summary::job(j),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<Namespace>::all(streaming.clone()),
                ResourceKind::Namespace,
                |c| &c.namespaces,
                |n, _| summary::namespace(n),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<ResourceQuota>::all(streaming.clone()),
                ResourceKind::Quota,
                |c| &c.quotas,
                |q, _| summary::quota(q),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<Event>::all(streaming.clone()),
                ResourceKind::Event,
                |c| &c.events,
                |e, _| summary::event(e),
            )),
            tokio::spawn(watch(
                c.clone(),
                Api::<HorizontalPodAutoscaler>::all(streaming.clone()),
                ResourceKind::Autoscaler,
                |c| &c.autoscalers,
                |h, _| summary::hpa(h),
            )),
            tokio::spawn(watch_optional_kinds(c.clone(), client, streaming)),
        ];
        *cluster.tasks.lock() = tasks;
        if let Some(old) = self.clusters.write().insert(name.to_string(), cluster.clone()) {
            old.shutdown();
        }
        let _ =
            self.changes.send(Change { cluster: cluster.name.clone(), kind: ResourceKind::Cluster, namespace: None });
        cluster
    }

    pub fn disconnect(&self, name: &str) -> bool {
        let removed = self.clusters.write().remove(name);
        if let Some(cluster) = &removed {
            cluster.shutdown();
            let _ = self.changes.send(Change {
                cluster: cluster.name.clone(),
                kind: ResourceKind::Cluster,
                namespace: None,
            });
        }
        removed.is_some()
    }

    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterCache>> {
        self.clusters.read().get(name).cloned()
    }

    pub fn clusters(&self) -> Vec<Arc<ClusterCache>> {
        self.clusters.read().values().cloned().collect()
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.clusters.read().keys().cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells every subscriber that something outside the clusters changed
    /// (the change names no cluster; see `ResourceKind::Preparation`).
    pub fn announce(&self, kind: ResourceKind) {
        let _ = self.changes.send(Change { cluster: Arc::from(""), kind, namespace: None });
    }

    /// Waits until every connected cluster has listed everything once.
    /// True while the clusters connected at start-up are still listing for
    /// the first time, for at most `patience` after the hub was made (a
    /// cluster that cannot be reached must not keep the process unready).
    pub fn warming_up(&self, patience: Duration) -> bool {
        self.born.elapsed() < patience && !self.clusters().iter().all(|c| c.synced())
    }

    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.clusters().iter().all(|c| c.synced()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for cluster in self.clusters.get_mut().values() {
            cluster.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::summary::{PodPhase, PodSummary, PodTally};

    fn pod(name: &str, node: Option<&str>, phase: PodPhase, gpus: u32) -> PodSummary {
        crate::summary::test_pod(name, phase, node, gpus)
    }

    fn key(namespace: &str, name: &str) -> Key {
        Key { namespace: Arc::from(namespace), name: name.into() }
    }

    /// The totals as a pass over every pod would count them.
    fn recounted(cache: &Cache<PodSummary, PodTally>) -> PodTally {
        cache.read(|pods| {
            let mut tally = PodTally::default();
            for (key, pod) in pods {
                tally.add(key, pod);
            }
            tally
        })
    }

    #[test]
    fn pod_totals_follow_every_change() {
        let cache: Cache<PodSummary, PodTally> = Cache::default();
        cache.replace_all(BTreeMap::from([
            (key("vision", "a"), pod("a", Some("n1"), PodPhase::Running, 2)),
            (key("vision", "b"), pod("b", None, PodPhase::Pending, 1)),
            (key("nlp", "c"), pod("c", Some("n1"), PodPhase::Running, 0)),
        ]));
        let totals = cache.read_tallied(|_, t| t.clone());
        assert_eq!(totals.nodes["n1"].gpus, 2);
        assert_eq!(totals.nodes["n1"].pods, 2);
        assert_eq!((totals.namespaces["vision"].pods, totals.namespaces["vision"].pending_gpu_pods), (2, 1));
        assert_eq!(totals.namespaces["vision"].gpus_by_node, HashMap::from([(Arc::from("n1"), 2)]));
        assert!(totals.namespaces["nlp"].gpus_by_node.is_empty(), "a pod without GPUs holds none");

        // The pending pod is scheduled, then finishes; a pod moves namespace by name; deletions.
        cache.put(key("vision", "b"), pod("b", Some("n2"), PodPhase::Running, 1));
        assert_eq!(cache.read_tallied(|_, t| t.clone()), recounted(&cache));
        assert_eq!(cache.read_tallied(|_, t| t.namespaces["vision"].pending_gpu_pods), 0);
        cache.put(key("vision", "b"), pod("b", Some("n2"), PodPhase::Succeeded, 1));
        assert_eq!(cache.read_tallied(|_, t| t.clone()), recounted(&cache));
        assert!(cache.read_tallied(|_, t| !t.nodes.contains_key("n2")), "a node with nothing left on it is dropped");
        // Deleted pods are remembered per node (the rest of the totals is a recount's).
        let counts = |cache: &Cache<PodSummary, PodTally>| {
            cache.read_tallied(|_, t| PodTally { departures: HashMap::new(), ..t.clone() })
        };
        cache.remove(&key("nlp", "c"));
        cache.remove(&key("nlp", "never-there"));
        assert_eq!(counts(&cache), recounted(&cache));
        assert!(cache.read_tallied(|_, t| !t.namespaces.contains_key("nlp")), "an empty namespace is dropped");
        cache.remove(&key("vision", "a"));
        cache.remove(&key("vision", "b"));
        assert_eq!(counts(&cache), PodTally::default());
        let departed = |node: &str| {
            cache.read_tallied(|_, t| t.departures[node].iter().map(|d| d.key.name.to_string()).collect::<Vec<_>>())
        };
        assert_eq!((departed("n1"), departed("n2")), (vec!["c".to_string(), "a".to_string()], vec!["b".to_string()]));
        // An update is no departure.
        cache.put(key("vision", "d"), pod("d", Some("n3"), PodPhase::Running, 0));
        cache.put(key("vision", "d"), pod("d", Some("n3"), PodPhase::Succeeded, 0));
        assert!(cache.read_tallied(|_, t| !t.departures.contains_key("n3")));
    }
}
