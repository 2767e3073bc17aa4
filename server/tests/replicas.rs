//! Two Gantry processes on one PostgreSQL, as the Helm chart runs them
//! (issue "Run Gantry on Kubernetes", HA): a session made on one works on
//! the other and a change through one is live on the other's pages; the
//! background work runs on one replica at a time and the other takes it
//! over within 30 s of a SIGKILL, writing nothing twice and losing nothing;
//! and a rolling restart behind a readiness-checking balancer answers every
//! request.
//!
//! Each test runs the gantry binary twice (`gantry serve --database-url`,
//! each process with a data directory of its own and the same secret key)
//! against a PostgreSQL server of its own, and the process's shared testbed
//! cluster `ha`.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::served::{OwnPostgres, Served};
use gantry_domain::usage::{AllocationInterval, Span};
use gantry_store::testing::TempDir;
use gantry_store::{Store, StoreConfig, now_ms};
use gantry_testbed::shared::{eventually, shared};
use gantry_testbed::{Fleet, Testbed};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

const CLUSTER: &str = "ha";
const H100: &str = "NVIDIA-H100-80GB-HBM3";
/// The key both replicas seal cluster credentials with (base64 of the bytes
/// 0 to 31), as the chart gives every replica the same Secret.
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn bed() -> &'static Testbed {
    shared(|| Fleet::small(CLUSTER))
}

/// One `gantry serve` process on the shared database, on a port and data
/// directory of its own that it keeps across restarts. Killed when dropped.
struct Replica {
    name: &'static str,
    port: u16,
    dir: TempDir,
    database_url: String,
    child: Option<Child>,
}

impl Replica {
    fn start(name: &'static str, database_url: &str) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut replica = Replica {
            name,
            port,
            dir: TempDir::new("gantry-replica"),
            database_url: database_url.to_string(),
            child: None,
        };
        replica.spawn();
        replica
    }

    /// Starts the process (again), on the same port, data directory and database.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        // Appended, so the log of an earlier run stays readable.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--shutdown-delay-seconds", "2"])
            .args(["--database-url", &self.database_url, "--data-dir"])
            .arg(&self.dir.path)
            .arg("--kubeconfig")
            .arg(bed().kubeconfig_path())
            .env_remove("DATABASE_URL")
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("GANTRY_SECRET_KEY", SECRET_KEY)
            // The background loop says when this replica takes the lease.
            .env("RUST_LOG", "warn,gantry_service::background=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("serve.log")).unwrap_or_default()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = i32::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits up to `within` for the process to end, and reaps it.
    async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "{} still running after {within:?}\n{}", self.name, self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Until the testbed cluster is live on this replica (its caches synced).
    async fn live(&self, token: &str) {
        let http = reqwest::Client::new();
        eventually(&format!("{} sees {CLUSTER} live", self.name), 60, || async {
            let clusters: Value =
                http.get(self.url("/api/v1/clusters")).bearer_auth(token).send().await.ok()?.json().await.ok()?;
            clusters.as_array()?.iter().any(|c| c["name"] == CLUSTER && c["state"] == "live").then_some(())
        })
        .await;
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two replicas, A and B, on one database with an admin `root` and an API
/// token of theirs, both with the testbed cluster live. The replicas are
/// declared first, so they are killed before their database stops.
struct Pair {
    a: Replica,
    b: Replica,
    token: String,
    postgres: OwnPostgres,
}

impl Pair {
    async fn start() -> Option<Pair> {
        let postgres = OwnPostgres::start()?;
        // The first admin and an API token of theirs, as an operator makes them.
        let (url, setup) = (postgres.url.as_str(), TempDir::new("gantry-replicas-setup"));
        let password = format!("{}\n", common::PASSWORD);
        Served::command(&["admin", "create", "--username", "root", "--database-url", url], &setup.path, &password);
        let token = Served::command(
            &["token", "create", "--username", "root", "--name", "t", "--expires", "1h", "--database-url", url],
            &setup.path,
            "",
        );
        let a = Replica::start("A", &postgres.url);
        let b = Replica::start("B", &postgres.url);
        a.live(&token).await;
        b.live(&token).await;
        Some(Pair { a, b, token, postgres })
    }

    /// The test's own view of the shared database.
    async fn store(&self) -> Store {
        let data_dir = self.a.dir.path.clone();
        Store::open(&StoreConfig { data_dir, database_url: Some(self.postgres.url.clone()), max_connections: 2 })
            .await
            .unwrap()
    }
}

/// A session signed in on `replica`: the `Cookie` header a browser would
/// send and the session's CSRF token.
async fn sign_in(replica: &Replica) -> (String, String) {
    let response = reqwest::Client::new()
        .post(replica.url("/api/v1/login"))
        .json(&json!({ "username": "root", "password": common::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "sign-in on {}", replica.name);
    let cookie = response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gantry_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let me: Value = response.json().await.unwrap();
    (cookie, me["csrf"].as_str().unwrap().to_string())
}

/// The status and JSON (or text) of an answer.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A deployment's path under the REST API.
fn deployment(name: &str) -> String {
    format!("/api/v1/clusters/{CLUSTER}/namespaces/vision/deployments/{name}")
}

/// The deployment's running pods as the apiserver has them: name and when
/// the scheduler bound it (PodScheduled), in Unix ms.
async fn running_pods(name: &str, count: usize) -> Vec<(String, i64)> {
    let client = bed().cluster(CLUSTER).unwrap().client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "vision");
    eventually(&format!("{count} pods of {name} run"), 90, || async {
        let list = pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/name={name}"))).await.ok()?;
        let running: Vec<(String, i64)> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| {
                let bound = p
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "True")?
                    .last_transition_time
                    .as_ref()?
                    .0
                    .as_millisecond();
                Some((p.metadata.name.clone()?, bound))
            })
            .collect();
        (running.len() == count).then_some(running)
    })
    .await
}

/// The pid in a background lease holder's name, `{hostname}-{pid}-{random}`.
fn holder_pid(holder: &str) -> u32 {
    let mut parts = holder.rsplitn(3, '-');
    let _random = parts.next();
    parts.next().and_then(|pid| pid.parse().ok()).unwrap_or_else(|| panic!("no pid in the holder {holder:?}"))
}

/// What the background loop logs when its replica takes the lease.
const LEADS: &str = "now writes the GPU ledger";

/// A signed-in session made by one replica is a session of both: B knows
/// the user of a cookie A set, and accepts a change carrying the session's
/// CSRF token (and refuses one without it, so it really read the token from
/// the shared session). A change made through A reaches a page open on B
/// live: B's event stream announces it within seconds and B answers with
/// the new state.
#[tokio::test]
async fn a_session_made_on_one_replica_works_on_the_other_and_a_change_through_one_is_live_on_the_other() {
    use futures::StreamExt;
    let Some(pair) = Pair::start().await else { return };
    let (a, b) = (&pair.a, &pair.b);
    let http = reqwest::Client::new();
    let (cookie, csrf) = sign_in(a).await;

    let (status, me) = answer(http.get(b.url("/api/v1/me")).header("cookie", &cookie)).await;
    assert_eq!(status, 200, "B knows A's session: {me}");
    assert_eq!(me["username"], "root");
    let team = format!("made-on-b-{}", common::rand_suffix());
    let create = |csrf: &str| {
        http.post(b.url("/api/v1/teams"))
            .header("cookie", &cookie)
            .header("x-csrf-token", csrf)
            .json(&json!({ "name": team }))
    };
    let (status, body) = answer(create("not-the-token")).await;
    assert_eq!(status, 403, "B checks the session's CSRF token: {body}");
    let (status, body) = answer(create(&csrf)).await;
    assert_eq!(status, 200, "a change on B with A's session and its token: {body}");
    let (_, teams) = answer(http.get(a.url("/api/v1/teams")).header("cookie", &cookie)).await;
    assert!(teams.as_array().unwrap().iter().any(|t| t["name"] == team.as_str()), "A sees B's team: {teams}");

    // A deployment launched through A, as B shows it.
    let name = format!("shared-{}", common::rand_suffix());
    let launch = json!({ "name": name, "image": "example/app:1", "replicas": 1 });
    let launched = http
        .post(a.url(&format!("/api/v1/clusters/{CLUSTER}/namespaces/vision/deployments")))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&launch);
    let (status, body) = answer(launched).await;
    assert_eq!(status, 200, "launched through A: {body}");
    let desired_on_b = || async {
        let (status, body) = answer(http.get(b.url(&deployment(&name))).header("cookie", &cookie)).await;
        (status == 200).then(|| body["deployment"]["desired"].as_i64()).flatten()
    };
    eventually("B shows the launched deployment", 10, || async { (desired_on_b().await == Some(1)).then_some(()) })
        .await;

    // A page open on B: its live connection.
    let stream = http.get(b.url("/api/v1/events")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let (events, mut announced) = tokio::sync::mpsc::unbounded_channel::<(Instant, Value)>();
    tokio::spawn(async move {
        let mut bytes = stream.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = bytes.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(data) = serde_json::from_str::<Value>(data.trim())
                {
                    let _ = events.send((Instant::now(), data));
                }
            }
        }
    });

    let scaled = Instant::now();
    let scale = http
        .put(a.url(&format!("{}/scale", deployment(&name))))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "replicas": 3 }));
    let (status, body) = answer(scale).await;
    assert_eq!(status, 200, "scaled through A: {body}");
    // Other tests' deployments change in the same cluster: the change is
    // announced when an event about deployments in it comes after which B
    // answers with the new replica count.
    let deadline = scaled + Duration::from_secs(5);
    let took = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((at, data))) = tokio::time::timeout(left, announced.recv()).await else {
            panic!("B's stream did not announce the new replica count within 5 s\n{}", b.log());
        };
        let about_deployments = data["kinds"].as_array().is_some_and(|k| k.contains(&json!("deployment")))
            && data["clusters"].as_array().is_some_and(|c| c.contains(&json!(CLUSTER)));
        if about_deployments && desired_on_b().await == Some(3) {
            break at - scaled;
        }
    };
    eprintln!("a scale through A was announced on B's stream after {took:?}");
}

/// The background work (the GPU ledger writer, roll-ups, alerts, webhooks)
/// runs on exactly one of two replicas: the one holding the lease in
/// PostgreSQL. SIGKILL it (no clean shutdown, so the lease is not
/// released) and scale the deployment at once through the survivor, while
/// nobody writes the ledger: the survivor holds the lease within 30 s, and
/// the ledger ends with exactly one interval per pod, the first pod's
/// interval untouched (nothing written twice) and the pod bound during the
/// gap recorded from its bind time (nothing lost).
#[tokio::test]
async fn background_work_runs_on_one_replica_and_the_other_takes_over_within_30s_of_a_sigkill() {
    let Some(mut pair) = Pair::start().await else { return };
    let store = pair.store().await;
    let holder = || async { store.lease_holder("background", now_ms()).await.unwrap() };

    // One leader, and it stays the leader across several renewals.
    let leader = eventually("a replica holds the lease", 30, holder).await;
    let leader_pid = holder_pid(&leader);
    assert!([pair.a.pid(), pair.b.pid()].contains(&leader_pid), "{leader} is neither A nor B");
    for _ in 0..12 {
        assert_eq!(holder().await.as_deref(), Some(leader.as_str()), "the lease moved without a failure");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (leader, survivor) = if pair.a.pid() == leader_pid { (&mut pair.a, &pair.b) } else { (&mut pair.b, &pair.a) };
    assert_eq!(leader.log().matches(LEADS).count(), 1, "{} took the lease once\n{}", leader.name, leader.log());
    assert_eq!(survivor.log().matches(LEADS).count(), 0, "{} never led\n{}", survivor.name, survivor.log());

    let name = format!("ledger-{}", common::rand_suffix());
    let workload = format!("Deployment/{name}");
    let ledger = || async {
        let all = store.allocations_overlapping(Span::new(0, now_ms() + 1), Some(CLUSTER)).await.unwrap();
        all.into_iter().filter(|a| a.workload == workload).collect::<Vec<AllocationInterval>>()
    };
    let http = reqwest::Client::new();
    let launch = json!({ "name": name, "image": "example/model:1", "replicas": 1, "gpus": "1", "gpu_model": H100 });
    let launched = http
        .post(leader.url(&format!("/api/v1/clusters/{CLUSTER}/namespaces/vision/deployments")))
        .bearer_auth(&pair.token)
        .json(&launch);
    let (status, body) = answer(launched).await;
    assert_eq!(status, 200, "{body}");
    let first = running_pods(&name, 1).await;
    let opened = eventually("the leader records the pod", 30, || async {
        let mine = ledger().await;
        (mine.len() == 1).then_some(mine)
    })
    .await;
    // Bound within the second of one of the leader's passes, it begins at
    // that pass (the ledger's rule for whole-second bind times), else at the
    // bind time.
    assert_eq!(opened[0].pod, first[0].0, "{opened:?}");
    assert!((first[0].1..first[0].1 + 1_000).contains(&opened[0].start), "{opened:?} bound at {}", first[0].1);

    // The leader dies without a word just after one of its passes, and a
    // pod is bound while nobody leads, most likely within the same second
    // as that pass: bind times have whole seconds, so this is the hardest
    // case for telling that the pod was bound after the last pass.
    let mut last = store.ledger_confirmed(CLUSTER).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let last_pass = loop {
        let confirmed = store.ledger_confirmed(CLUSTER).await.unwrap();
        if let Some(at) = confirmed.filter(|&c| confirmed != last && c % 1_000 < 300 && now_ms() - c < 100) {
            break at;
        }
        last = confirmed;
        assert!(Instant::now() < deadline, "no pass of the leader early in a second within 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    leader.signal(libc::SIGKILL);
    let killed = Instant::now();
    leader.exited(Duration::from_secs(5)).await;
    let scale = http.put(survivor.url(&format!("{}/scale", deployment(&name)))).bearer_auth(&pair.token);
    let (status, body) = answer(scale.json(&json!({ "replicas": 2 }))).await;
    assert_eq!(status, 200, "scaled through the survivor: {body}");

    let survivor_pid = survivor.pid();
    let took = eventually(&format!("{} takes the lease over", survivor.name), 40, || async {
        let now = holder().await;
        now.is_some_and(|h| holder_pid(&h) == survivor_pid).then(|| killed.elapsed())
    })
    .await;
    eprintln!("{} held the lease {took:?} after {} was killed", survivor.name, leader.name);
    assert!(took <= Duration::from_secs(30), "taken over after {took:?}");
    assert_eq!(survivor.log().matches(LEADS).count(), 1, "{}", survivor.log());

    let both = running_pods(&name, 2).await;
    let bound = both.iter().map(|(_, bound)| *bound).max().unwrap();
    eprintln!("the dead leader's last pass was at {last_pass} ms; the new pod was bound in the second {bound}");
    let recorded = eventually("the new leader records the second pod", 30, || async {
        let mine = ledger().await;
        (mine.len() == 2).then_some(mine)
    })
    .await;
    // More passes of the new leader change nothing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = ledger().await;
    assert_eq!(after, recorded, "later passes wrote nothing more");
    assert!(after.contains(&opened[0]), "the first interval is untouched: {after:?}");
    let pods: BTreeSet<&str> = after.iter().map(|i| i.pod.as_str()).collect();
    assert_eq!(pods.len(), after.len(), "one interval per pod, none twice: {after:?}");
    let running: BTreeSet<&str> = both.iter().map(|(pod, _)| pod.as_str()).collect();
    assert_eq!(pods, running, "every running pod is recorded: {after:?}");
    for interval in &after {
        assert_eq!(interval.end, None, "{} still runs: {interval:?}", interval.pod);
        let bound = both.iter().find(|(pod, _)| *pod == interval.pod).unwrap().1;
        assert!(
            (bound..bound + 1_000).contains(&interval.start),
            "{} is charged from when it was bound, {bound} (whole seconds): {interval:?}",
            interval.pod
        );
    }
}

/// Answers a client saw through the balancer, per replica.
#[derive(Default, Debug)]
struct Tally {
    answered: [usize; 2],
    server_errors: [usize; 2],
    connection_errors: [usize; 2],
    /// Answers other than 200 (a 5xx among them), and errors, as they came.
    wrong: Vec<String>,
}

/// What a Kubernetes Service does in front of two replicas, during a
/// rolling restart: a prober per replica asks `/readyz` every 200 ms and
/// takes the replica out of rotation when it is not ready, and a client
/// (four connections at once) sends signed-in API reads (by token) and
/// pages (by session) round-robin to the replicas in rotation. A then B
/// get SIGTERM, exit cleanly and start again on the same port: the client
/// gets every answer (no 5xx, no connection error), from both replicas.
#[tokio::test]
async fn a_rolling_restart_through_a_readiness_checking_balancer_answers_every_request() {
    let Some(mut pair) = Pair::start().await else { return };
    let (cookie, _) = sign_in(&pair.a).await;
    let name = format!("steady-{}", common::rand_suffix());
    let launched = reqwest::Client::new()
        .post(pair.a.url(&format!("/api/v1/clusters/{CLUSTER}/namespaces/vision/deployments")))
        .bearer_auth(&pair.token)
        .json(&json!({ "name": name, "image": "example/app:1", "replicas": 1 }));
    let (status, body) = answer(launched).await;
    assert_eq!(status, 200, "{body}");
    for replica in [&pair.a, &pair.b] {
        let http = reqwest::Client::new();
        eventually(&format!("{} shows {name}", replica.name), 10, || async {
            let response = http.get(replica.url(&deployment(&name))).bearer_auth(&pair.token).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }

    let bases = [pair.a.url(""), pair.b.url("")];
    let in_rotation: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let (base, in_rotation, stop) = (base.clone(), in_rotation.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let probe = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let ready = probe.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200);
                in_rotation[i].store(ready, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let turn = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (bases, in_rotation, stop, tally, turn) =
            (bases.clone(), in_rotation.clone(), stop.clone(), tally.clone(), turn.clone());
        let (token, cookie, name) = (pair.token.clone(), cookie.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let n = turn.fetch_add(1, Ordering::Relaxed);
                let ready: Vec<usize> = (0..2).filter(|&i| in_rotation[i].load(Ordering::Relaxed)).collect();
                let Some(&i) = ready.get(n % ready.len().max(1)) else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let (what, request) = match n % 3 {
                    0 => ("the clusters", http.get(format!("{}/api/v1/clusters", bases[i])).bearer_auth(&token)),
                    1 => ("the deployment", http.get(format!("{}{}", bases[i], deployment(&name))).bearer_auth(&token)),
                    _ => ("the workloads page", http.get(format!("{}/workloads", bases[i])).header("cookie", &cookie)),
                };
                let what = format!("{what} from {}", ["A", "B"][i]);
                // The whole answer: a body cut short counts as a connection error.
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.map(|_| status)
                    }
                    Err(error) => Err(error),
                };
                let mut tally = tally.lock().unwrap();
                match outcome {
                    Ok(status) => {
                        tally.answered[i] += 1;
                        if status.is_server_error() {
                            tally.server_errors[i] += 1;
                        }
                        if status != 200 {
                            tally.wrong.push(format!("{what}: {status}"));
                        }
                    }
                    Err(error) => {
                        tally.connection_errors[i] += 1;
                        tally.wrong.push(format!("{what}: {error:?}"));
                    }
                }
            }
        }));
    }

    let in_rotation_is = |i: usize, want: bool| {
        let in_rotation = in_rotation.clone();
        async move {
            let what = format!("{} {} rotation", ["A", "B"][i], if want { "in" } else { "out of" });
            eventually(&what, 60, || async { (in_rotation[i].load(Ordering::Relaxed) == want).then_some(()) }).await;
        }
    };
    in_rotation_is(0, true).await;
    in_rotation_is(1, true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answered = |i: usize| tally.lock().unwrap().answered[i];
    for (i, replica) in [&mut pair.a, &mut pair.b].into_iter().enumerate() {
        let signalled = answered(i);
        replica.signal(libc::SIGTERM);
        in_rotation_is(i, false).await;
        let status = replica.exited(Duration::from_secs(30)).await;
        assert!(status.success(), "{} exits cleanly: {status:?}\n{}", replica.name, replica.log());
        eprintln!("{} answered {} requests after its SIGTERM", replica.name, answered(i) - signalled);
        replica.spawn();
        in_rotation_is(i, true).await;
        let back = answered(i);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(answered(i) > back, "{} answers again after its restart", replica.name);
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let tally = tally.lock().unwrap();
    eprintln!(
        "answered by A {}, by B {}; 5xx {:?}; connection errors {:?}",
        tally.answered[0], tally.answered[1], tally.server_errors, tally.connection_errors
    );
    assert!(tally.answered.iter().all(|&n| n >= 50), "both replicas answered: {tally:?}");
    assert_eq!(tally.server_errors, [0, 0], "no 5xx: {:?}", tally.wrong);
    assert_eq!(tally.connection_errors, [0, 0], "no connection errors: {:?}", tally.wrong);
    assert!(tally.wrong.is_empty(), "every answer was a 200: {:?}", tally.wrong);
}

/// A cluster registered through A (`POST /api/v1/clusters`, stored in the
/// shared database) is watched by B within seconds, without a restart, and
/// when it is removed through B, A stops watching it. Before, each replica
/// connected the stored clusters only at start-up, so B never showed a
/// cluster registered through A, and A kept watching one removed through B.
#[tokio::test]
async fn a_cluster_registered_through_one_replica_is_watched_by_the_other_and_removed_from_both() {
    let Some(pair) = Pair::start().await else { return };
    let (a, b) = (&pair.a, &pair.b);
    let http = reqwest::Client::new();
    let name = format!("again-{}", common::rand_suffix());
    let kubeconfig = bed().cluster(CLUSTER).unwrap().kubeconfig_yaml();
    let register = http
        .post(a.url("/api/v1/clusters"))
        .bearer_auth(&pair.token)
        .json(&json!({ "name": name, "context": CLUSTER, "kubeconfig": kubeconfig }));
    let (status, body) = answer(register).await;
    assert_eq!(status, 200, "registered through A: {body}");
    let registered = Instant::now();
    let state_on = |replica: &Replica| {
        let (http, url, token, name) =
            (http.clone(), replica.url("/api/v1/clusters"), pair.token.clone(), name.clone());
        async move {
            let (_, clusters) = answer(http.get(url).bearer_auth(token)).await;
            clusters.as_array().unwrap().iter().find(|c| c["name"] == name.as_str()).map(|c| c["state"].clone())
        }
    };
    eventually("B watches the cluster registered through A", 20, || async {
        (state_on(b).await == Some(json!("live"))).then_some(())
    })
    .await;
    eprintln!("B watched a cluster registered through A after {:?}", registered.elapsed());

    let (status, body) = answer(http.delete(b.url(&format!("/api/v1/clusters/{name}"))).bearer_auth(&pair.token)).await;
    assert_eq!(status, 200, "removed through B: {body}");
    let removed = Instant::now();
    eventually("A stops watching the cluster removed through B", 20, || async {
        state_on(a).await.is_none().then_some(())
    })
    .await;
    eprintln!("A dropped a cluster removed through B after {:?}", removed.elapsed());
}

/// A replica that starts while a cluster it watches answers slowly (its
/// apiserver frozen) stays unready until that cluster has listed, so a
/// balancer does not send it requests it would answer from empty caches;
/// once the apiserver answers, it turns ready. (A cluster that never
/// answers keeps it unready for at most 30 s: `gantry_service::WARM_UP`.)
#[tokio::test]
async fn a_starting_replica_is_unready_until_its_clusters_have_listed() {
    use common::served::Launch;
    use gantry_testbed::{Component, Options};
    let own = Testbed::start(&Fleet::small("slow"), Options::default()).await.unwrap();
    let cluster = own.cluster("slow").unwrap();
    cluster.freeze(Component::KubeApiserver).unwrap();
    let kubeconfig = own.kubeconfig_path();
    let gantry = Served::spawn(&Launch { kubeconfig: Some(&kubeconfig), ..Launch::default() });
    let http = reqwest::Client::new();
    let readyz = || async {
        match http.get(gantry.url("/readyz")).send().await {
            Ok(response) => Some((response.status().as_u16(), response.text().await.unwrap_or_default())),
            Err(_) => None,
        }
    };
    let (status, why) = eventually("the listener answers", 30, || async { readyz().await }).await;
    assert_eq!((status, why.as_str()), (503, "the cluster caches are still loading"), "{}", gantry.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(readyz().await.map(|(s, _)| s), Some(503), "still unready while the apiserver is frozen");
    cluster.thaw(Component::KubeApiserver).unwrap();
    eventually("ready once the cluster has listed", 25, || async {
        (readyz().await.map(|(s, _)| s) == Some(200)).then_some(())
    })
    .await;
}
