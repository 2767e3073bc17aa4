//! Command-line interface. Every flag has an environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gantry", version, about = "Gantry: a control plane and dashboard for ML workloads on Kubernetes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard, server functions and REST API.
    Serve(Box<ServeArgs>),
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Prepare a demo database: on an empty database, create an admin with a
    /// random password (printed once), demo teams and users, and map the demo
    /// fleet's namespaces. Used by the README run command; `serve` never
    /// creates accounts.
    DemoSetup(DemoArgs),
}

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory for the embedded SQLite database and the generated secret key.
    #[arg(long, env = "GANTRY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A postgres:// or sqlite: URL; overrides --data-dir for the database.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GANTRY_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Register every context of this kubeconfig at start-up (its credentials stay in the file).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Register the cluster Gantry runs in, from its service account, under
    /// this name. Inside a pod this happens anyway, under the name "local".
    #[arg(long, env = "GANTRY_IN_CLUSTER_NAME")]
    pub in_cluster: Option<String>,
    /// Base64 of a 32-byte key that encrypts stored cluster credentials.
    #[arg(long, env = "GANTRY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A file holding that key (for example a mounted Secret).
    #[arg(long, env = "GANTRY_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Where the built site (pkg/gantry.js, .wasm, .css) is.
    #[arg(long, env = "GANTRY_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Gantry is served over https: mark cookies Secure and send HSTS.
    #[arg(long, env = "GANTRY_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,
    /// How many reverse proxies in front of Gantry append to X-Forwarded-For
    /// (and set X-Forwarded-Host/-Proto). The client is the address the
    /// outermost trusted proxy appended; 0 trusts no header.
    #[arg(long, env = "GANTRY_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,
    /// The address people open Gantry at, e.g. https://gantry.example.com
    /// (repeat or comma-separate for several). Requests for other hosts are
    /// refused, and changes must come from these origins.
    #[arg(long, env = "GANTRY_PUBLIC_URL", value_delimiter = ',')]
    pub public_url: Vec<String>,
    /// Require `Authorization: Bearer <token>` on /metrics (set the same
    /// token in Prometheus's scrape config, `authorization: {credentials: …}`).
    #[arg(long, env = "GANTRY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "GANTRY_SESSION_IDLE_MINUTES", default_value_t = 120)]
    pub session_idle_minutes: u64,
    /// Hours after sign-in after which a session ends regardless.
    #[arg(long, env = "GANTRY_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u64,
    /// Most replicas (or autoscaler maximum) a user may ask for.
    #[arg(long, env = "GANTRY_REPLICA_CAP", default_value_t = 100)]
    pub replica_cap: i32,
    /// Days the GPU ledger keeps its raw intervals (exact answers for
    /// windows of a day or less).
    #[arg(long, env = "GANTRY_RAW_RETENTION_DAYS", default_value_t = 35, value_parser = clap::value_parser!(i64).range(2..=3650))]
    pub raw_retention_days: i64,
    /// Days the hourly and daily GPU usage rollups are kept.
    #[arg(long, env = "GANTRY_ROLLUP_RETENTION_DAYS", default_value_t = 400, value_parser = clap::value_parser!(i64).range(2..=36500))]
    pub rollup_retention_days: i64,
    /// GPU time whose utilisation stays under this percent counts as wasted.
    #[arg(long, env = "GANTRY_WASTE_THRESHOLD_PERCENT", default_value_t = 10.0)]
    pub waste_threshold_percent: f64,
    /// A progress file written by the script that started Gantry (the
    /// demo's scripts/run.sh): what is still being prepared is shown on the
    /// overview and clusters pages until it is done.
    #[arg(long, env = "GANTRY_PROGRESS_FILE")]
    pub progress_file: Option<PathBuf>,
    /// Database connections in the pool.
    #[arg(long, env = "GANTRY_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// On SIGTERM, how long /readyz answers 503 before the listener closes,
    /// so that load balancers stop sending requests first. Keep it under
    /// the pod's terminationGracePeriodSeconds. Ctrl-C stops at once.
    #[arg(long, env = "GANTRY_SHUTDOWN_DELAY_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay_seconds: u64,
    #[command(flatten)]
    pub sso: SsoArgs,
}

/// Single sign-on through an OpenID Connect provider (off unless --oidc-issuer is set).
#[derive(Debug, Args, Clone)]
pub struct SsoArgs {
    /// The provider's issuer URL (discovery is read from
    /// `<issuer>/.well-known/openid-configuration`), e.g. https://login.example.com/realms/ml.
    #[arg(long, env = "GANTRY_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The client id Gantry is registered under at the provider.
    #[arg(long, env = "GANTRY_OIDC_CLIENT_ID", default_value = "gantry")]
    pub oidc_client_id: String,
    /// The client's secret (prefer --oidc-client-secret-file, from a mounted Secret).
    #[arg(long, env = "GANTRY_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// A file holding the client's secret.
    #[arg(long, env = "GANTRY_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides openid (comma-separated). offline_access
    /// gives the refresh token that keeps open sessions' groups current.
    #[arg(
        long,
        env = "GANTRY_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "profile,email,groups,offline_access"
    )]
    pub oidc_scopes: Vec<String>,
    /// The ID token claim that lists the person's groups.
    #[arg(long, env = "GANTRY_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// Where the provider sends people back; registered at the provider.
    /// Default: the first --public-url with /auth/sso/callback.
    #[arg(long, env = "GANTRY_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// The provider's name on the sign-in button ("Sign in with …").
    #[arg(long, env = "GANTRY_OIDC_PROVIDER_NAME", default_value = "single sign-on")]
    pub oidc_provider_name: String,
    /// Minutes between re-reading an open session's groups from the provider.
    #[arg(long, env = "GANTRY_OIDC_REFRESH_MINUTES", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub oidc_refresh_minutes: u64,
    /// Who may sign in with a password: everyone, or only global admins
    /// (break-glass) once single sign-on is on.
    #[arg(long, env = "GANTRY_LOCAL_PASSWORDS", value_enum, default_value_t = LocalPasswords::Everyone)]
    pub local_passwords: LocalPasswords,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LocalPasswords {
    Everyone,
    Admins,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a global admin. The password is read from a prompt, or from
    /// stdin when stdin is not a terminal.
    Create {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// How long it lasts, e.g. 30d, 12h or 90m; without it, it never expires.
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The demo fleet's kubeconfig, to map its namespaces to teams.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// "30d", "12h", "90m" → seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 =
        number.parse().map_err(|_| format!("--expires: {text:?} is not a duration such as 30d, 12h or 90m"))?;
    let per = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(format!("--expires: {text:?} needs a unit: d, h or m")),
    };
    let seconds = n.saturating_mul(per);
    if seconds <= 0 || seconds > 10 * 365 * 86_400 {
        return Err("--expires: must be between 1 minute and 10 years".into());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("90m"), Ok(5_400));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("0d").is_err());
        // Past i64 seconds: refused, not overflowed.
        assert!(parse_duration("999999999999999999d").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_duration_text_is_a_value_or_an_error(text in "[0-9]{0,25}[dhmsx]?|\\PC{0,12}") {
            if let Ok(seconds) = parse_duration(&text) {
                proptest::prop_assert!((60..=10 * 365 * 86_400).contains(&seconds));
            }
        }
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
