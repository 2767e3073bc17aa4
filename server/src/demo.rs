//! `gantry demo-setup`: makes an empty database ready to explore. Only the
//! README run command uses it; `gantry serve` never creates accounts.

use std::collections::BTreeMap;

use gantry_domain::policy::Role;
use gantry_domain::validate::Username;
use gantry_service::passwords;

use crate::cli::DemoArgs;
use crate::serve::open_store;

/// Demo users and their role in each team.
const DEMO_USERS: [(&str, &str, Role); 4] = [
    ("alice", "vision", Role::Deployer),
    ("bob", "vision", Role::Viewer),
    ("carol", "nlp", Role::TeamAdmin),
    ("dave", "nlp", Role::Deployer),
];

/// Example prices (US dollars per GPU-hour, on-demand and spot) for the demo
/// fleet's GPU models, so budgets and cost rates show numbers at once.
const DEMO_PRICES: [(&str, f64, f64); 4] = [
    ("NVIDIA-H100-80GB-HBM3", 4.00, 1.80),
    ("NVIDIA-A100-SXM4-80GB", 2.80, 1.20),
    ("NVIDIA-A100-SXM4-40GB", 2.10, 0.90),
    ("NVIDIA-L4", 0.80, 0.35),
];

/// Example monthly budgets (US dollars) of the demo teams.
const DEMO_BUDGETS: [(&str, f64); 2] = [("vision", 20_000.0), ("nlp", 15_000.0)];

/// Which team owns a demo namespace: its name up to the first '-'
/// ("vision-dev" belongs to team "vision").
fn team_of(namespace: &str) -> &str {
    namespace.split('-').next().unwrap_or(namespace)
}

/// The (context, namespace) pairs in the demo kubeconfig's clusters that
/// belong to a demo team, read from the clusters themselves.
async fn demo_namespaces(kubeconfig: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    use gantry_cluster::kubeconfig;
    let text = std::fs::read_to_string(kubeconfig).map_err(|e| format!("--kubeconfig: {e}"))?;
    let config = kubeconfig::parse(&text).map_err(|e| format!("--kubeconfig: {e}"))?;
    let mut out = Vec::new();
    for context in kubeconfig::context_names(&config) {
        let client_config = kubeconfig::config_for(&config, &context).await.map_err(|e| e.to_string())?;
        let names = kubeconfig::namespaces(&client_config, &context).await.map_err(|e| e.to_string())?;
        for ns in names {
            if ["vision", "nlp"].contains(&team_of(&ns)) {
                out.push((context.clone(), ns));
            }
        }
    }
    Ok(out)
}

/// The password every demo account gets when GANTRY_DEMO_PASSWORD is set (the
/// browser tests sign in as each role with it); None, and each account gets a
/// fresh random one, when it is not. A value too short to be a password is
/// refused in one line, before anything is written.
fn fixed_demo_password(value: Option<String>) -> Result<Option<String>, String> {
    let min = gantry_domain::validate::Password::MIN_CHARS;
    match value.filter(|p| !p.is_empty()) {
        Some(p) if p.chars().count() < min => Err(format!("GANTRY_DEMO_PASSWORD must be at least {min} characters")),
        fixed => Ok(fixed),
    }
}

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let fixed = fixed_demo_password(std::env::var("GANTRY_DEMO_PASSWORD").ok())?;
    let demo_password = || fixed.clone().unwrap_or_else(passwords::random_password);
    let store = open_store(&args.store, 4).await?;
    if store.count_users().await.map_err(|e| e.to_string())? > 0 {
        // The demo starts Gantry before its fleet: the fleet's namespaces
        // are given to the teams in a second call, once it runs.
        match &args.kubeconfig {
            Some(kubeconfig) if store.namespace_mappings().await.map_err(|e| e.to_string())?.is_empty() => {
                let teams: BTreeMap<&str, i64> = store
                    .list_teams()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter_map(|t| ["vision", "nlp"].into_iter().find(|n| *n == t.name).map(|n| (n, t.id)))
                    .collect();
                if teams.len() == 2 {
                    map_demo_namespaces(&store, &teams, kubeconfig).await?;
                    return Ok(());
                }
                println!("gantry: the database already has users but not the demo teams; demo setup left it as it is.");
            }
            _ => println!("gantry: the database already has users; demo setup left it as it is."),
        }
        return Ok(());
    }
    let mut printed = Vec::new();
    let admin_password = demo_password();
    let hash = passwords::hash(admin_password.clone()).await.map_err(|e| e.message.clone())?;
    store
        .create_user(&Username::parse("admin").map_err(|e| e.to_string())?, &hash, true)
        .await
        .map_err(|e| e.to_string())?;
    printed.push(("admin".to_string(), "global admin".to_string(), admin_password));

    let mut teams = BTreeMap::new();
    for team in ["vision", "nlp"] {
        teams.insert(team, store.create_team(team).await.map_err(|e| e.to_string())?.id);
    }
    for (name, team, role) in DEMO_USERS {
        let password = demo_password();
        let hash = passwords::hash(password.clone()).await.map_err(|e| e.message.clone())?;
        let user = store
            .create_user(&Username::parse(name).map_err(|e| e.to_string())?, &hash, false)
            .await
            .map_err(|e| e.to_string())?;
        store.set_membership(teams[team], user.id, role).await.map_err(|e| e.to_string())?;
        printed.push((name.to_string(), format!("{} in team {team}", role.label().to_lowercase()), password));
    }
    seed_costs(&store, &teams).await.map_err(|e| e.to_string())?;
    println!("gantry: set example GPU prices (/prices) and team budgets (on each team's page)");
    if let Some(kubeconfig) = &args.kubeconfig {
        map_demo_namespaces(&store, &teams, kubeconfig).await?;
    }
    println!();
    println!("  Demo accounts (shown once; change them on the Profile page):");
    for (user, role, password) in &printed {
        println!("    {user:<6} {password}   ({role})");
    }
    println!();
    Ok(())
}

/// Gives the demo teams the namespaces of the demo fleet (dev, staging and
/// prod), with their promotion path and prod protected.
async fn map_demo_namespaces(
    store: &gantry_store::Store,
    teams: &BTreeMap<&str, i64>,
    kubeconfig: &std::path::Path,
) -> Result<(), String> {
    let namespaces = demo_namespaces(kubeconfig).await?;
    let mut by_team: BTreeMap<&str, Vec<gantry_store::Environment>> = BTreeMap::new();
    for (cluster, namespace) in &namespaces {
        let team = team_of(namespace);
        store.map_namespace(cluster, namespace, teams[team]).await.map_err(|e| e.to_string())?;
        by_team.entry(team).or_default().push(gantry_store::Environment {
            name: cluster.clone(),
            cluster: cluster.clone(),
            namespace: namespace.clone(),
            protected: cluster == "prod",
        });
    }
    // The promotion path runs dev → staging → prod.
    let order = |name: &str| match name {
        "dev" => 0,
        "staging" => 1,
        "prod" => 2,
        _ => 3,
    };
    for (team, mut envs) in by_team {
        envs.sort_by_key(|e| order(&e.name));
        store.set_environments(teams[team], &envs).await.map_err(|e| e.to_string())?;
    }
    println!("gantry: mapped {} demo namespaces to teams vision and nlp", namespaces.len());
    Ok(())
}

async fn seed_costs(store: &gantry_store::Store, teams: &BTreeMap<&str, i64>) -> Result<(), String> {
    use gantry_domain::cost::{GpuPrice, TeamBudget, Usd};
    use gantry_domain::gpu::CapacityType;
    let usd = |dollars| Usd::from_dollars("price", dollars).map_err(|e| e.message.clone());
    let now = gantry_store::now_ms();
    // In effect from a day before: the demo fleet's pods were bound moments
    // before this runs, and their first seconds should not show as unpriced.
    let prices_from = now - gantry_domain::usage::MS_PER_DAY;
    for (model, on_demand, spot) in DEMO_PRICES {
        for (capacity_type, dollars) in [(CapacityType::OnDemand, on_demand), (CapacityType::Spot, spot)] {
            let price = GpuPrice {
                model: model.into(),
                capacity_type,
                usd_per_gpu_hour: usd(dollars)?,
                updated_at: prices_from,
            };
            store.set_gpu_price(&price).await.map_err(|e| e.to_string())?;
        }
    }
    for (team, dollars) in DEMO_BUDGETS {
        let budget = TeamBudget { team_id: teams[team], usd_per_month: usd(dollars)?, updated_at: now };
        store.set_team_budget(&budget).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_belong_to_the_team_in_their_name() {
        assert_eq!(team_of("vision"), "vision");
        assert_eq!(team_of("vision-dev"), "vision");
        assert_eq!(team_of("nlp-staging"), "nlp");
    }

    #[test]
    fn a_demo_password_too_short_is_refused_and_none_means_random() {
        assert_eq!(fixed_demo_password(None), Ok(None));
        assert_eq!(fixed_demo_password(Some(String::new())), Ok(None));
        assert_eq!(fixed_demo_password(Some("twelve-chars".into())), Ok(Some("twelve-chars".into())));
        assert_eq!(
            fixed_demo_password(Some("PW".into())),
            Err("GANTRY_DEMO_PASSWORD must be at least 12 characters".to_string())
        );
    }
}
