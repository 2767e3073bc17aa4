//! `gantry serve`: opens the store, connects clusters, and serves until
//! SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use gantry_cluster::Hub;
use gantry_service::{AppState, KeySource, Sealer, ServiceConfig};
use gantry_store::{Store, StoreConfig};

use crate::cli::{ServeArgs, StoreArgs};
use crate::web::{self, WebConfig};

/// Opens the store named by the flags; errors are one line naming the setting.
pub async fn open_store(args: &StoreArgs, max_connections: u32) -> Result<Store, String> {
    Store::open(&StoreConfig {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        max_connections,
    })
    .await
    .map_err(|e| match e {
        gantry_store::Error::Config(message) => message,
        gantry_store::Error::Migrate(m) => format!("database migration failed (nothing was changed): {m}"),
        other => format!("database: {other}"),
    })
}

pub fn state(store: Store, sealer: Sealer, config: ServiceConfig) -> AppState {
    AppState { store, hub: Hub::new(), config: Arc::new(config), sealer }
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let store = open_store(&args.store, args.db_connections).await?;
    let (sealer, source) =
        Sealer::load(args.secret_key.as_deref(), args.secret_key_file.as_deref(), &args.store.data_dir)?;
    match source {
        KeySource::Generated(path) => tracing::warn!(
            "generated a new secret key for stored cluster credentials at {path} (mode 0600); in production, set GANTRY_SECRET_KEY or --secret-key-file from a Secret"
        ),
        KeySource::File(path) => tracing::info!("secret key from {path}"),
        KeySource::Environment => tracing::info!("secret key from GANTRY_SECRET_KEY"),
    }
    let config = ServiceConfig {
        replica_cap: args.replica_cap.max(1),
        session_idle: Duration::from_secs(args.session_idle_minutes.max(1) * 60),
        session_absolute: Duration::from_secs(args.session_max_hours.max(1) * 3600),
        secure_cookies: args.secure_cookies,
        ..ServiceConfig::default()
    };
    let app = state(store.clone(), sealer, config);
    if store.count_users().await.map_err(|e| format!("database: {e}"))? == 0 {
        tracing::warn!(
            "there are no users yet; create the first admin with: gantry admin create --username <name> (add --data-dir/--database-url as for serve)"
        );
    }
    let stored = app.connect_stored_clusters().await.map_err(|e| e.message)?;
    if let Some(path) = &args.kubeconfig {
        let names = app.connect_kubeconfig_file(path).await?;
        tracing::info!("watching {} cluster(s) from {}: {}", names.len(), path.display(), names.join(", "));
    }
    // Inside a pod, Kubernetes sets KUBERNETES_SERVICE_HOST: register the
    // cluster Gantry runs in, under --in-cluster or "local".
    let in_cluster =
        args.in_cluster.clone().or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").map(|_| "local".to_string()));
    if let Some(name) = in_cluster.filter(|n| app.hub.cluster(n).is_none()) {
        app.connect_in_cluster(&name).await?;
        tracing::info!("watching the cluster Gantry runs in as {name}");
    }
    tracing::info!("{} stored cluster(s) connected", stored);

    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = WebConfig {
        site_root: args.site_root.clone(),
        listen: args.listen,
        secure_cookies: args.secure_cookies,
        trust_proxy: args.trust_proxy,
    };
    if !args.site_root.join("pkg").join("gantry.wasm").exists() {
        tracing::warn!(
            "{} has no built site (pkg/gantry.wasm); pages will not hydrate. Build with `cargo leptos build --release` from the repository root",
            args.site_root.display()
        );
    }
    let router = web::router(app.clone(), &config, stopped);
    let sweeper = {
        let store = store.clone();
        tokio::spawn(async move {
            use tower_sessions::session_store::ExpiredDeletion;
            loop {
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!("could not delete expired sessions: {e}");
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        })
    };
    tracing::info!("Gantry is listening on http://{}", args.listen);
    web::serve(listener, router, async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    })
    .await
    .map_err(|e| format!("server error: {e}"))?;
    sweeper.abort();
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
