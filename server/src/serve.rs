//! `gantry serve`: opens the store, connects clusters, and serves until
//! SIGTERM or Ctrl-C.

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
    AppState::new(store, Hub::new(), config, sealer)
}

/// The public origins as `scheme://host[:port]`; one line naming the bad one otherwise.
fn public_origins(urls: &[String]) -> Result<Vec<String>, String> {
    urls.iter()
        .map(|url| {
            crate::security::origin_of(url.trim()).ok_or_else(|| {
                format!("--public-url: {url:?} is not an http(s) URL such as https://gantry.example.com")
            })
        })
        .collect()
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
        raw_retention_ms: args.raw_retention_days * 86_400_000,
        rollup_retention_ms: args.rollup_retention_days * 86_400_000,
        waste_threshold_percent: waste_threshold(args.waste_threshold_percent)?,
        progress_file: args.progress_file.clone(),
        local_passwords: args.sso.local_passwords == crate::cli::LocalPasswords::Everyone,
        ..ServiceConfig::default()
    };
    let sso = sso_config(&args.sso, &args.public_url)?.map(gantry_service::Sso::new).transpose()?;
    let mut app = state(store.clone(), sealer, config);
    if let Some(sso) = sso {
        // A provider that does not answer is said at once; local sign-in
        // works meanwhile, and each "Sign in with …" asks it again.
        match sso.metadata(false).await {
            Ok(_) => tracing::info!("single sign-on through {}", args.sso.oidc_issuer.as_deref().unwrap_or_default()),
            Err(error) => tracing::error!("single sign-on is not usable yet: {}", error.message),
        }
        app = app.with_sso(sso);
    }
    if store.count_users().await.map_err(|e| format!("database: {e}"))? == 0 {
        tracing::warn!(
            "there are no users yet; create the first admin with: gantry admin create --username <name> (add --data-dir/--database-url as for serve)"
        );
    }
    let stored = app.sync_stored_clusters().await.map_err(|e| e.message.clone())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if let Some(path) = &args.kubeconfig {
        if path.exists() {
            let names = app.connect_kubeconfig_file(path).await?;
            tracing::info!("watching {} cluster(s) from {}: {}", names.len(), path.display(), names.join(", "));
        } else {
            // The demo starts Gantry before its fleet: the clusters join when the file appears.
            tracing::info!("{} does not exist yet; its clusters are connected when it appears", path.display());
            let (app, path, stopped) = (app.clone(), path.clone(), stopped.clone());
            tokio::spawn(async move { app.connect_kubeconfig_file_when_ready(&path, stopped).await });
        }
    }
    // Inside a pod, Kubernetes sets KUBERNETES_SERVICE_HOST: register the
    // cluster Gantry runs in, under --in-cluster or "local".
    let in_cluster =
        args.in_cluster.clone().or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").map(|_| "local".to_string()));
    if let Some(name) = in_cluster
        && app.connect_in_cluster(&name).await?
    {
        tracing::info!("watching the cluster Gantry runs in as {name}");
    }
    tracing::info!("{} stored cluster(s) connected", stored);

    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let config = WebConfig {
        site_root: args.site_root.clone(),
        listen: args.listen,
        secure_cookies: args.secure_cookies,
        proxy_hops: args.trusted_proxies,
        public_origins: public_origins(&args.public_url)?,
        metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
    };
    if !crate::assets::has_bundle(&args.site_root.join("pkg"), "gantry") {
        tracing::error!(
            "{} has no browser bundle (pkg/gantry.js and pkg/gantry.wasm): pages are served without JavaScript, \
             so they neither update live nor draw charts, until it appears (no restart needed). Build it with \
             scripts/build-site.sh from the repository root (scripts/run.sh does), or point \
             --site-root at a built site",
            args.site_root.display()
        );
    }
    let lifecycle = web::Lifecycle::new(stopped.clone());
    let router = web::router(app.clone(), &config, &lifecycle);
    {
        let (app, stopped) = (app.clone(), stopped.clone());
        tokio::spawn(async move { app.watch_preparation(stopped).await });
    }
    // A cluster registered or removed through another replica.
    {
        let (app, stopped) = (app.clone(), stopped.clone());
        tokio::spawn(async move { app.follow_stored_clusters(stopped).await });
    }
    // The work that runs on one replica at a time (the GPU ledger, roll-ups,
    // budget alerts, webhooks): whichever holds the lease in the database.
    let background = {
        let app = app.clone();
        let holder = format!("{}-{}-{}", hostname(), std::process::id(), hex::encode(rand::random::<[u8; 4]>()));
        tokio::spawn(async move { app.run_background(holder, stopped).await })
    };
    // Not tower-sessions' `continuously_delete_expired`: that task ends at
    // the first database error (a PostgreSQL restart, say) and never sweeps
    // again; this one logs and carries on.
    let sweeper = {
        use tower_sessions::session_store::ExpiredDeletion;
        let sessions = app.session_store();
        tokio::spawn(async move {
            loop {
                if let Err(e) = sessions.delete_expired().await {
                    tracing::warn!("could not delete expired sessions: {e}");
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        })
    };
    tracing::info!("Gantry is listening on http://{}", args.listen);
    let drain = Duration::from_secs(args.shutdown_delay_seconds);
    web::serve(listener, router, async move {
        let drain = if shutdown_signal().await { drain } else { Duration::ZERO };
        // Unready first (and streams end), so load balancers move away while
        // the listener still answers; then it closes and open requests finish.
        tracing::info!("shutting down: unready now, the listener closes in {} s", drain.as_secs());
        let _ = stop.send(true);
        tokio::time::sleep(drain).await;
    })
    .await
    .map_err(|e| format!("server error: {e}"))?;
    // A change whose caller left is still running: let it finish (each
    // apiserver call gives up after 30 s) and write its audit record.
    if !lifecycle.finish_changes(Duration::from_secs(60)).await {
        tracing::error!("changes were still running 60 s after the listener closed; stopping anyway");
    }
    sweeper.abort();
    // Lets the background loop release its lease, so another replica takes over at once.
    let _ = tokio::time::timeout(Duration::from_secs(5), background).await;
    store.close().await;
    Ok(())
}

/// Single sign-on's settings from the flags, or None when --oidc-issuer is
/// not set; one line naming the bad setting otherwise.
fn sso_config(args: &crate::cli::SsoArgs, public_urls: &[String]) -> Result<Option<gantry_service::SsoConfig>, String> {
    let Some(issuer) = args.oidc_issuer.clone().filter(|i| !i.trim().is_empty()) else { return Ok(None) };
    let client_secret = match (&args.oidc_client_secret, &args.oidc_client_secret_file) {
        (Some(secret), None) => secret.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("--oidc-client-secret-file {}: {e}", path.display()))?
            .trim()
            .to_string(),
        (Some(_), Some(_)) => return Err("give --oidc-client-secret or --oidc-client-secret-file, not both".into()),
        (None, None) => return Err("--oidc-issuer needs --oidc-client-secret-file (or --oidc-client-secret)".into()),
    };
    if client_secret.is_empty() {
        return Err("the OpenID Connect client secret is empty".into());
    }
    let redirect_url = match (&args.oidc_redirect_url, public_urls.first()) {
        (Some(url), _) => url.clone(),
        (None, Some(public)) => format!("{}/auth/sso/callback", public.trim_end_matches('/')),
        (None, None) => {
            return Err("--oidc-issuer needs --oidc-redirect-url (or --public-url, from which it is made)".into());
        }
    };
    Ok(Some(gantry_service::SsoConfig {
        provider_name: args.oidc_provider_name.trim().to_string(),
        issuer: issuer.trim().to_string(),
        client_id: args.oidc_client_id.trim().to_string(),
        client_secret,
        scopes: args.oidc_scopes.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        groups_claim: args.oidc_groups_claim.trim().to_string(),
        redirect_url,
        refresh_interval: Duration::from_secs(args.oidc_refresh_minutes * 60),
    }))
}

/// Makes the allocator give large blocks back to the system when they are
/// freed. glibc's default raises its mmap threshold to the size of each large
/// block freed, so from the second sign-in on, argon2's 19 MiB buffer comes
/// from the heap, where a small allocation made after it pins it: 60 wrong
/// passwords grew Gantry's RSS from 28 to 738 MiB and it never shrank. With
/// a fixed threshold of 1 MiB every larger block (argon2's, a month of
/// allocation rows as JSON) is mapped for its use and unmapped after it: 34
/// MiB after the same 60. Call it first thing, before other threads start.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn waste_threshold(percent: f64) -> Result<f64, String> {
    if percent.is_finite() && (0.0..=100.0).contains(&percent) {
        Ok(percent)
    } else {
        Err(format!("--waste-threshold-percent: {percent} is not a percentage between 0 and 100"))
    }
}

/// This machine's name, to tell replicas apart in logs and the lease.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gantry".into())
}

/// Waits for Ctrl-C or SIGTERM; true for SIGTERM (an orchestrator asking:
/// drain first), false for Ctrl-C (a person at a terminal: stop now).
async fn shutdown_signal() -> bool {
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
        _ = ctrl_c => false,
        _ = terminate => true,
    }
}
