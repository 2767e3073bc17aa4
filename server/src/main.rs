//! The `gantry` command.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Parser;
use gantry_server::cli::{AdminCommand, Cli, Command, TokenCommand, parse_duration};
use gantry_server::serve;

/// The static image is built for musl, whose own allocator is slow under
/// many threads; mimalloc is what such static builds usually take instead.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    serve::return_large_blocks_to_the_system();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,kube=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gantry: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gantry: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A password from a prompt, or from stdin when it is not a terminal.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (12+ characters): ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
        if first != second {
            return Err("the passwords do not match".into());
        }
        Ok(first)
    } else {
        let mut text = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Admin { command: AdminCommand::Create { username, store } } => {
            let password = read_password()?;
            let store = serve::open_store(&store, 2).await?;
            let sealer = gantry_service::Sealer::from_key([0; 32]);
            let state = serve::state(store, sealer, Default::default());
            let user = state.create_admin_from_cli(&username, &password).await.map_err(|e| e.message.clone())?;
            println!("created global admin {}", user.username);
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { username, name, expires, store } } => {
            let expires_in_seconds = match expires.as_deref() {
                None => None,
                Some(text) => Some(parse_duration(text)?),
            };
            let store = serve::open_store(&store, 2).await?;
            let state = serve::state(store, gantry_service::Sealer::from_key([0; 32]), Default::default());
            let caller = state.cli_caller(&username).await.map_err(|e| e.message.clone())?;
            let request = gantry_service::TokenRequest {
                name,
                max_role: None,
                teams: None,
                admin: caller.principal.global_admin,
                expires_in_days: None,
                expires_in_seconds,
            };
            let token = state.create_token(&caller, &request).await.map_err(|e| e.message.clone())?;
            println!("{}", token.secret);
            Ok(())
        }
        Command::DemoSetup(args) => gantry_server::demo::run(args).await,
    }
}
