//! `testbed`: start a fleet of local control planes and keep it running in the foreground.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gantry_testbed::{Binaries, Fleet, Options, Testbed};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(name = "testbed", about = "Local Kubernetes control planes with a KWOK-simulated GPU fleet")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the fleet, print `testbed: ready; KUBECONFIG=...` and run until SIGINT/SIGTERM.
    /// Progress goes to stderr as `progress: <text>` lines.
    Up {
        /// The fleet file (see deploy/fleets/).
        #[arg(long)]
        fleet: PathBuf,
        /// Where clusters keep data and logs; `<dir>/kubeconfig` is written once ready.
        #[arg(long)]
        state_dir: PathBuf,
        /// Keep the state directory after shutdown.
        #[arg(long)]
        keep: bool,
        /// Create only namespaces and nodes, not the fleet's workloads.
        #[arg(long)]
        no_workloads: bool,
    },
    /// Validate a fleet file and exit.
    Check {
        #[arg(long)]
        fleet: PathBuf,
    },
    /// Make a node NotReady (`--ready false`) or Ready again (`--ready true`) by setting or
    /// removing its `testbed.gantry.dev/not-ready` annotation; KWOK plays it within a second.
    NodeReady {
        /// The kubeconfig `testbed up` wrote (`<state-dir>/kubeconfig`).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// The cluster's context (its name in the fleet file); default: the current context.
        #[arg(long)]
        context: Option<String>,
        /// The node's name (`<cluster>-<pool>-<i>`).
        #[arg(long)]
        node: String,
        /// `false`: NotReady; `true`: Ready again.
        #[arg(long, action = clap::ArgAction::Set)]
        ready: bool,
    },
    /// Start an OpenID Connect provider (Ory Hydra with the testbed's login pages), register one
    /// client, print `testbed: identity ready; ISSUER=...` and run until SIGINT/SIGTERM. Each
    /// `--user name=group1,group2` signs in with the password `<name>-password`.
    Identity {
        #[arg(long = "user", value_name = "NAME=GROUPS")]
        users: Vec<String>,
        #[arg(long, default_value = "gantry")]
        client_id: String,
        /// A file holding the client's secret.
        #[arg(long)]
        client_secret_file: PathBuf,
        #[arg(long)]
        redirect_uri: Vec<String>,
        #[arg(long)]
        post_logout_redirect_uri: Vec<String>,
        /// Where the issuer URL is written once the provider is ready.
        #[arg(long)]
        issuer_file: PathBuf,
    },
    /// Build (or find) the Kubernetes binaries, kubectl included, and print their directory.
    Binaries {
        /// Only what a testbed runs: kube-apiserver, kube-controller-manager, kube-scheduler
        /// and kwok (not kubectl).
        #[arg(long)]
        control_plane: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("gantry_testbed=info,testbed=info")),
        )
        .init();
    match cli.command {
        Cmd::Check { fleet } => match Fleet::from_file(&fleet) {
            Ok(parsed) => {
                let nodes: usize = parsed.clusters.iter().map(|c| c.node_count()).sum();
                println!("{}: ok ({} cluster(s), {nodes} node(s))", fleet.display(), parsed.clusters.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Binaries { control_plane } => {
            match if control_plane { Binaries::ensure() } else { Binaries::ensure_all() } {
                Ok(found) => {
                    println!("{}", found.kube_apiserver.parent().unwrap_or(&found.kube_apiserver).display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::NodeReady { kubeconfig, context, node, ready } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(node_ready(&kubeconfig, context, &node, ready)) {
                Ok(()) => {
                    println!(
                        "node {node}: {}",
                        if ready { "Ready (annotation removed)" } else { "NotReady (annotated)" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Identity { users, client_id, client_secret_file, redirect_uri, post_logout_redirect_uri, issuer_file } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let client = IdentityClient {
                id: client_id,
                secret_file: client_secret_file,
                redirect_uris: redirect_uri,
                post_logout_redirect_uris: post_logout_redirect_uri,
            };
            match runtime.block_on(identity(&users, client, &issuer_file)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Up { fleet, state_dir, keep, no_workloads } => {
            let parsed = match Fleet::from_file(&fleet) {
                Ok(parsed) => parsed,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = Options {
                state_dir: Some(state_dir),
                keep,
                apply_workloads: !no_workloads,
                wait_for_pods: true,
                report_progress: true,
                fleet_name: fleet.file_stem().map(|stem| stem.to_string_lossy().into_owned()),
            };
            match runtime.block_on(up(parsed, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn up(fleet: Fleet, options: Options) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    eprintln!("testbed: starting {} cluster(s)", fleet.clusters.len());
    // A signal during start drops the half-started testbed, which stops what it started.
    let bed = tokio::select! {
        bed = Testbed::start(&fleet, options) => bed?,
        _ = interrupt.recv() => { eprintln!("testbed: interrupted while starting"); return Ok(()); }
        _ = terminate.recv() => { eprintln!("testbed: terminated while starting"); return Ok(()); }
    };
    for (phase, took) in bed.phases() {
        eprintln!("testbed: {phase}: {:.1}s", took.as_secs_f64());
    }
    for cluster in bed.clusters() {
        eprintln!(
            "testbed: cluster {} at {} (logs in {})",
            cluster.name(),
            cluster.server(),
            cluster.dir().join("logs").display()
        );
    }
    println!("testbed: ready; KUBECONFIG={}", bed.kubeconfig_path().display());
    std::io::stdout().flush()?;

    let mut health = tokio::time::interval(Duration::from_secs(5));
    let outcome = loop {
        tokio::select! {
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            _ = health.tick() => {
                if let Err(e) = bed.check() {
                    break Err(e);
                }
            }
        }
    };
    eprintln!("testbed: shutting down");
    drop(bed);
    Ok(outcome?)
}

async fn node_ready(
    kubeconfig: &std::path::Path,
    context: Option<String>,
    node: &str,
    ready: bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let options = kube::config::KubeConfigOptions { context, ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(file, &options).await.context("kubeconfig")?;
    let client = kube::Client::try_from(config).context("building a client")?;
    gantry_testbed::kwok::set_node_ready(&client, node, ready).await.with_context(|| format!("annotating node {node}"))
}

struct IdentityClient {
    id: String,
    secret_file: PathBuf,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
}

async fn identity(users: &[String], client: IdentityClient, issuer_file: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let people = users
        .iter()
        .map(|spec| {
            let (name, groups) = spec.split_once('=').unwrap_or((spec, ""));
            let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
            gantry_testbed::IdentityUser::new(name, &groups)
        })
        .collect();
    let provider = gantry_testbed::IdentityProvider::start(people).await?;
    let secret = std::fs::read_to_string(&client.secret_file)
        .with_context(|| format!("--client-secret-file {}", client.secret_file.display()))?;
    provider
        .register_client(&client.id, secret.trim(), &client.redirect_uris, &client.post_logout_redirect_uris)
        .await?;
    std::fs::write(issuer_file, provider.issuer())?;
    println!("testbed: identity ready; ISSUER={}", provider.issuer());
    let _ = std::io::stdout().flush();
    tokio::select! {
        _ = interrupt.recv() => {},
        _ = terminate.recv() => {},
    }
    Ok(())
}
