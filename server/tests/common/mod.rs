//! `spawn_app()`: a Gantry server on a random port with a fresh database
//! (SQLite or PostgreSQL), connected to the shared testbed's clusters, and a
//! seeded world of teams and users. Plus typed request helpers.
#![allow(dead_code)]

pub mod served;

use std::net::SocketAddr;
use std::time::Duration;

use gantry_cluster::Hub;
use gantry_domain::policy::Role;
use gantry_domain::validate::Username;
use gantry_server::web::{self, WebConfig};
use gantry_service::{AppState, Sealer, ServiceConfig};
use gantry_store::testing::TempDir;
use gantry_store::{Environment, NewToken, Store, StoreConfig};
use gantry_testbed::shared::shared;
use gantry_testbed::{Fleet, Testbed};
use serde_json::Value;

pub const PASSWORD: &str = "correct-horse-battery-staple";

pub fn bed() -> &'static Testbed {
    shared(|| Fleet::small("a").and(Fleet::small("b")))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The users every test world has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    /// Viewer in team vision.
    Viewer,
    /// Deployer in team vision.
    Deployer,
    /// Team admin of team nlp (another team).
    OtherTeamAdmin,
    /// Global admin.
    Admin,
}

impl Who {
    pub const ALL: [Who; 5] = [Who::Anonymous, Who::Viewer, Who::Deployer, Who::OtherTeamAdmin, Who::Admin];

    pub fn username(self) -> &'static str {
        match self {
            Who::Anonymous => "",
            Who::Viewer => "viewer",
            Who::Deployer => "deployer",
            Who::OtherTeamAdmin => "nlp-admin",
            Who::Admin => "admin",
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub backend: Backend,
    pub vision: i64,
    pub nlp: i64,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: TempDir,
}

async fn open_store(backend: Backend, dir: &TempDir) -> Option<Store> {
    match backend {
        Backend::Sqlite => Some(
            Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url: None, max_connections: 8 })
                .await
                .unwrap(),
        ),
        Backend::Postgres => {
            let Some(url) = gantry_store::testing::postgres_database_url().await else {
                assert!(std::env::var_os("GANTRY_REQUIRE_POSTGRES").is_none(), "GANTRY_TEST_POSTGRES_URL is required");
                eprintln!("skipping the PostgreSQL half: GANTRY_TEST_POSTGRES_URL is not set");
                return None;
            };
            Some(
                Store::open(&StoreConfig { data_dir: dir.path.clone(), database_url: Some(url), max_connections: 8 })
                    .await
                    .unwrap(),
            )
        }
    }
}

/// Starts a server; None when the backend is PostgreSQL and no server was
/// given to the tests (never when GANTRY_REQUIRE_POSTGRES is set).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, ServiceConfig::default()).await
}

pub async fn spawn_app_with(backend: Backend, config: ServiceConfig) -> Option<TestApp> {
    spawn_app_configured(backend, config, |web| web).await
}

/// A server whose web settings (proxies, public origins, metrics token) the test chooses.
pub async fn spawn_app_configured(
    backend: Backend,
    config: ServiceConfig,
    web_config: impl FnOnce(WebConfig) -> WebConfig,
) -> Option<TestApp> {
    let dir = TempDir::new("gantry-server-test");
    let store = open_store(backend, &dir).await?;
    Some(spawn_world(store, backend, dir, config, web_config).await)
}

/// How the world's people got their accounts and roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum People {
    /// Made by an admin, with roles given by hand.
    Local,
    /// Made on first sign-in through the identity provider, with roles from
    /// their groups (vision-viewers, vision-deployers, nlp-admins,
    /// platform-admins), as the callback does; they also get a password, so
    /// the sign-in route can be called for them.
    FromSso,
}

/// A server whose people came through single sign-on.
pub async fn spawn_app_with_sso_people(backend: Backend) -> Option<TestApp> {
    let dir = TempDir::new("gantry-server-test");
    let store = open_store(backend, &dir).await?;
    Some(spawn_world_of(store, backend, dir, ServiceConfig::default(), |web| web, People::FromSso, |_| None).await)
}

/// A server that signs people in through an OpenID Connect provider:
/// `sso` is given the server's base URL (for the redirect URL).
pub async fn spawn_app_with_sso(
    backend: Backend,
    config: ServiceConfig,
    sso: impl FnOnce(&str) -> gantry_service::SsoConfig,
) -> Option<TestApp> {
    let dir = TempDir::new("gantry-server-test");
    let store = open_store(backend, &dir).await?;
    Some(spawn_world_of(store, backend, dir, config, |web| web, People::Local, |base| Some(sso(base))).await)
}

/// A server on a store the test opened itself (on a database server of its
/// own, say), with the same seeded world.
pub async fn spawn_app_on(store: Store, backend: Backend) -> TestApp {
    spawn_world(store, backend, TempDir::new("gantry-server-test"), ServiceConfig::default(), |web| web).await
}

async fn spawn_world(
    store: Store,
    backend: Backend,
    dir: TempDir,
    config: ServiceConfig,
    web_config: impl FnOnce(WebConfig) -> WebConfig,
) -> TestApp {
    spawn_world_of(store, backend, dir, config, web_config, People::Local, |_| None).await
}

async fn spawn_world_of(
    store: Store,
    backend: Backend,
    dir: TempDir,
    config: ServiceConfig,
    web_config: impl FnOnce(WebConfig) -> WebConfig,
    people: People,
    sso: impl FnOnce(&str) -> Option<gantry_service::SsoConfig>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{address}");
    let hub = Hub::new();
    for name in ["a", "b"] {
        // As the user `gantry`: the apiservers' audit logs record exactly what Gantry asked.
        hub.connect(name, bed().cluster(name).unwrap().gantry_config().await.unwrap()).unwrap();
    }
    assert!(hub.wait_synced(Duration::from_secs(60)).await, "caches never synced");
    let mut state = AppState::new(store.clone(), hub, config, Sealer::from_key([3; 32]));
    if let Some(sso) = sso(&base) {
        state = state.with_sso(gantry_service::Sso::new(sso).unwrap());
    }

    // Team vision owns `vision` in both clusters; team nlp owns `nlp` in a.
    // Cluster b therefore belongs to vision alone.
    let vision = store.create_team("vision").await.unwrap().id;
    let nlp = store.create_team("nlp").await.unwrap().id;
    store.map_namespace("a", "vision", vision).await.unwrap();
    store.map_namespace("b", "vision", vision).await.unwrap();
    store.map_namespace("a", "nlp", nlp).await.unwrap();
    store
        .set_environments(
            vision,
            &[
                Environment {
                    name: "staging".into(),
                    cluster: "a".into(),
                    namespace: "vision".into(),
                    protected: false,
                },
                Environment { name: "prod".into(), cluster: "b".into(), namespace: "vision".into(), protected: false },
            ],
        )
        .await
        .unwrap();
    let hash = gantry_service::passwords::hash(PASSWORD.to_string()).await.unwrap();
    let world = [
        (Who::Viewer, Some(vision), Role::Viewer, "vision-viewers"),
        (Who::Deployer, Some(vision), Role::Deployer, "vision-deployers"),
        (Who::OtherTeamAdmin, Some(nlp), Role::TeamAdmin, "nlp-admins"),
        (Who::Admin, None, Role::Viewer, "platform-admins"),
    ];
    for (who, team, role, group) in world {
        match people {
            People::Local => {
                let name = Username::parse(who.username()).unwrap();
                let user = store.create_user(&name, &hash, who == Who::Admin).await.unwrap();
                if let Some(team) = team {
                    store.set_membership(team, user.id, role).await.unwrap();
                }
            }
            People::FromSso => {
                let grant = match team {
                    Some(team_id) => gantry_store::Grant::Team { team_id, role },
                    None => gantry_store::Grant::GlobalAdmin,
                };
                store.set_group_mapping(group, grant).await.unwrap();
                let groups = [group.to_string()];
                let subject = format!("{}-subject", who.username());
                let sign_in = gantry_store::SsoSignIn {
                    issuer: "https://idp.test",
                    subject: &subject,
                    preferred_username: Some(who.username()),
                    email: None,
                    groups: &groups,
                };
                let outcome = store.sso_sign_in(&sign_in).await.unwrap();
                assert!(outcome.created && outcome.user.username == who.username(), "{outcome:?}");
                store.set_password_hash(outcome.user.id, &hash).await.unwrap();
            }
        }
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = web_config(WebConfig::local(dir.path.join("site"), address));
    let router = web::router(state.clone(), &config, &web::Lifecycle::new(stopped.clone()));
    let mut stopped = stopped;
    tokio::spawn(web::serve(listener, router, async move {
        let _ = stopped.changed().await;
    }));
    TestApp { base, state, backend, vision, nlp, stop, _dir: dir }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client with a cookie jar and no redirects followed.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    /// Signs in through the API; returns the client and its CSRF token.
    pub async fn sign_in(&self, who: Who) -> (reqwest::Client, String) {
        let client = self.browser();
        let response = client
            .post(self.url("/api/v1/login"))
            .json(&serde_json::json!({ "username": who.username(), "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "sign-in as {who:?}");
        let me: Value = response.json().await.unwrap();
        (client, me["csrf"].as_str().unwrap().to_string())
    }

    /// A bearer token with all of `who`'s rights.
    pub async fn token(&self, who: Who) -> Option<String> {
        if who == Who::Anonymous {
            return None;
        }
        let user = self.state.store().user_credentials(who.username()).await.unwrap().unwrap().user;
        let (_, secret) = self
            .state
            .store()
            .create_token(&NewToken {
                user_id: user.id,
                name: format!("test-{}", rand_suffix()),
                max_role: Role::TeamAdmin,
                team_ids: None,
                admin: user.global_admin,
                expires_at: None,
            })
            .await
            .unwrap();
        Some(secret)
    }
}

pub fn rand_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..8).map(|_| char::from(b'a' + rng.gen_range(0..26))).collect()
}

/// Declares a test that runs on both backends, as `<name>::sqlite` and
/// `<name>::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($app) = common::spawn_app(common::Backend::Postgres).await else { return };
                $body
            }
        }
    };
}
