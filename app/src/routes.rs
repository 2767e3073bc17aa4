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
    /// At least this role in the team that owns the target.
    Team(Role),
    /// A team admin of some team (sees that team's part), or a global admin.
    AnyTeamAdmin,
    /// Global admins only.
    Admin,
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
    ("/tokens", SignedIn),
    ("/users", Admin),
    ("/teams", SignedIn),
    ("/teams/:id", Team(Viewer)),
    ("/audit", AnyTeamAdmin),
    ("/prices", SignedIn),
];

/// Server functions, by endpoint name (they live under `/fn/`).
pub const SERVER_FNS: &[(&str, Access)] = &[
    ("me", Public),
    ("login", Public),
    ("logout", SignedIn),
    ("change_password", SignedIn),
    ("my_tokens", SignedIn),
    ("create_token", SignedIn),
    ("revoke_token", SignedIn),
    ("list_users", Admin),
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
    ("audit_log", AnyTeamAdmin),
    ("kubeconfig_contexts", Admin),
    ("add_cluster", Admin),
    ("remove_cluster", Admin),
    ("set_quota", Admin),
    ("overview", SignedIn),
    ("clusters", SignedIn),
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
