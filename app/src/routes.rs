//! Who may call what, for every page and server function. The server's REST
//! table uses the same [`Access`]; the route × role test walks all three
//! tables, so a new route without a decision here fails it.
//!
//! This table does not enforce anything: the service layer does, through the
//! policy module. It records what that enforcement must amount to.

use gantry_domain::policy::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user; what they see is filtered to their namespaces.
    SignedIn,
    /// A signed-in person (a session), not an API token: managing tokens and
    /// the password, which a token could otherwise use to outgrow its scope.
    Person,
    /// At least this role in the team that owns the target.
    Team(Role),
    /// A team admin of some team (sees that team's part), or a global admin.
    AnyTeamAdmin,
    /// Global admins only.
    Admin,
}

impl Access {
    /// The access as the REST declarations write it (`x-gantry-access`):
    /// `public`, `signed_in`, `person`, `team:viewer`, `team:deployer`,
    /// `team:team_admin`, `any_team_admin` or `admin`.
    pub fn as_str(self) -> String {
        match self {
            Access::Public => "public".into(),
            Access::SignedIn => "signed_in".into(),
            Access::Person => "person".into(),
            Access::Team(role) => format!("team:{}", role.as_str()),
            Access::AnyTeamAdmin => "any_team_admin".into(),
            Access::Admin => "admin".into(),
        }
    }

    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "public" => Some(Access::Public),
            "signed_in" => Some(Access::SignedIn),
            "person" => Some(Access::Person),
            "any_team_admin" => Some(Access::AnyTeamAdmin),
            "admin" => Some(Access::Admin),
            other => other.strip_prefix("team:").and_then(Role::parse).map(Access::Team),
        }
    }
}

use Access::*;
use Role::*;

/// Page routes, as the router declares them.
pub const PAGES: &[(&str, Access)] = &[
    ("/login", Public),
    ("/", SignedIn),
    ("/clusters", SignedIn),
    ("/clusters/:cluster", Team(Viewer)),
    ("/clusters/:cluster/nodes/:node", Team(Viewer)),
    ("/workloads", SignedIn),
    ("/clusters/:cluster/namespaces/:namespace/deployments/:name", Team(Viewer)),
    ("/pods", SignedIn),
    ("/jobs", SignedIn),
    ("/clusters/:cluster/namespaces/:namespace/jobs/:name", Team(Viewer)),
    ("/pending", SignedIn),
    ("/quotas", SignedIn),
    ("/launch/deployment", SignedIn),
    ("/launch/job", SignedIn),
    ("/profile", SignedIn),
    ("/tokens", Person),
    ("/users", Admin),
    ("/teams", SignedIn),
    ("/teams/:id", Team(Viewer)),
    ("/audit", AnyTeamAdmin),
    ("/prices", SignedIn),
    ("/costs", SignedIn),
];

/// Server functions, by endpoint name (they live under `/fn/`).
pub const SERVER_FNS: &[(&str, Access)] = &[
    ("me", Public),
    ("login", Public),
    ("sign_in_options", Public),
    ("logout", SignedIn),
    ("change_password", Person),
    ("my_tokens", Person),
    ("create_token", Person),
    ("revoke_token", Person),
    ("list_users", Admin),
    ("sso_overview", Admin),
    ("set_group_mapping", Team(TeamAdmin)),
    ("remove_group_mapping", Team(TeamAdmin)),
    ("create_user", Admin),
    ("delete_user", Admin),
    ("set_admin", Admin),
    ("reset_password", Admin),
    ("list_teams", SignedIn),
    ("create_team", Admin),
    ("delete_team", Admin),
    ("team_page", Team(Viewer)),
    ("set_member", Team(TeamAdmin)),
    ("remove_member", Team(TeamAdmin)),
    ("list_namespaces", SignedIn),
    ("map_namespace", Admin),
    ("unmap_namespace", Admin),
    ("set_environments", Team(TeamAdmin)),
    ("set_budget", Team(TeamAdmin)),
    ("clear_budget", Team(TeamAdmin)),
    ("prices", SignedIn),
    ("set_price", Admin),
    ("delete_price", Admin),
    ("allocation", SignedIn),
    ("series", SignedIn),
    ("price_history", SignedIn),
    ("set_cluster_price", Admin),
    ("import_prices", Admin),
    ("set_webhook", Team(TeamAdmin)),
    ("set_prometheus", Admin),
    ("audit_log", AnyTeamAdmin),
    ("kubeconfig_contexts", Admin),
    ("add_cluster", Admin),
    ("remove_cluster", Admin),
    ("set_quota", Admin),
    ("overview", SignedIn),
    ("clusters", SignedIn),
    ("preparation", SignedIn),
    ("cluster_page", Team(Viewer)),
    ("node_page", Team(Viewer)),
    ("pods", SignedIn),
    ("jobs", SignedIn),
    ("job_page", Team(Viewer)),
    ("deployments", SignedIn),
    ("pending", SignedIn),
    ("quotas", SignedIn),
    ("launch_options", SignedIn),
    ("preview_fit", Team(Viewer)),
    ("launch_deployment", Team(Deployer)),
    ("launch_job", Team(Deployer)),
    ("deployment_page", Team(Viewer)),
    ("scale_deployment", Team(Deployer)),
    ("autoscale_deployment", Team(Deployer)),
    ("update_deployment", Team(Deployer)),
    ("rollback_deployment", Team(Deployer)),
    ("deployment_diff", Team(Viewer)),
    ("delete_deployment", Team(Deployer)),
    ("promote_deployment", Team(Deployer)),
    ("cancel_job", Team(Deployer)),
];

pub fn page_access(path: &str) -> Option<Access> {
    PAGES.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

pub fn server_fn_access(endpoint: &str) -> Option<Access> {
    SERVER_FNS.iter().find(|(e, _)| *e == endpoint).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules_round_trip_through_their_names() {
        for access in [Public, SignedIn, Person, Team(Viewer), Team(Deployer), Team(TeamAdmin), AnyTeamAdmin, Admin] {
            assert_eq!(Access::parse(&access.as_str()), Some(access));
        }
        assert_eq!(Access::parse("team:owner"), None);
        assert_eq!(Access::parse("everyone"), None);
    }
}
