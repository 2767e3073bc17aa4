//! The one place that answers "may this user do this, here?".
//!
//! Every server function, REST handler and live-update stream asks [`may`] (or
//! [`Visibility::of`] for reads that span namespaces). The UI also asks it, but
//! only to hide controls: the server's answer is the one that counts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub type TeamId = i64;
pub type UserId = i64;

/// A user's role in one team. Ordered: each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    TeamAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Deployer, Role::TeamAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::TeamAdmin => "team_admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Deployer => "Deployer",
            Role::TeamAdmin => "Team admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    pub team_id: TeamId,
    pub team_name: String,
    pub role: Role,
}

/// Who is asking, with the rights they carry in this request. For an API
/// token these are already narrowed to the token's scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub global_admin: bool,
    pub memberships: Vec<Membership>,
    /// The rights come from an API token, not from a signed-in person.
    #[serde(default)]
    pub via_token: bool,
}

impl Principal {
    pub fn role_in(&self, team: TeamId) -> Option<Role> {
        self.memberships.iter().find(|m| m.team_id == team).map(|m| m.role)
    }

    /// The rights an API token grants: never more than its owner has now.
    /// `max_role` caps every team role; `teams`, when set, keeps only those
    /// teams; `admin` keeps global admin rights if the owner has them. The
    /// result is marked as a token's, so it cannot manage tokens (see [`may`]).
    pub fn narrowed(&self, max_role: Role, teams: Option<&[TeamId]>, admin: bool) -> Principal {
        let memberships = self
            .memberships
            .iter()
            .filter(|m| teams.is_none_or(|allowed| allowed.contains(&m.team_id)))
            .map(|m| Membership { role: m.role.min(max_role), ..m.clone() })
            .collect();
        Principal {
            user_id: self.user_id,
            username: self.username.clone(),
            global_admin: self.global_admin && admin,
            memberships,
            via_token: true,
        }
    }
}

/// Something a user may try to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read a namespace's pods, jobs, deployments, quotas, events and logs.
    ViewNamespace,
    /// Read a cluster's node and GPU inventory.
    ViewCluster,
    LaunchDeployment,
    ScaleDeployment,
    UpdateDeployment,
    RollbackDeployment,
    DeleteDeployment,
    LaunchJob,
    CancelJob,
    /// Promote into an ordinary environment.
    Promote,
    /// Promote into an environment marked as protected (for example prod).
    PromoteProtected,
    ManageEnvironments,
    ManageMembers,
    ManageBudget,
    ViewTeamAudit,
    ManageUsers,
    ManageTeams,
    ManageClusters,
    ManageNamespaces,
    ManagePrices,
    SetQuota,
    ViewAllAudit,
    /// Own password and API tokens. Needs a signed-in person: an API token
    /// may not mint, list or revoke tokens, nor change the password.
    ManageSelf,
    /// Read the GPU price list (every signed-in user: costs are shown to viewers).
    ViewPrices,
    /// Read how far this instance's preparation has come (a demo still
    /// building its fleet): every signed-in user.
    ViewPreparation,
}

impl Action {
    pub const ALL: [Action; 25] = [
        Action::ViewNamespace,
        Action::ViewCluster,
        Action::LaunchDeployment,
        Action::ScaleDeployment,
        Action::UpdateDeployment,
        Action::RollbackDeployment,
        Action::DeleteDeployment,
        Action::LaunchJob,
        Action::CancelJob,
        Action::Promote,
        Action::PromoteProtected,
        Action::ManageEnvironments,
        Action::ManageMembers,
        Action::ManageBudget,
        Action::ViewTeamAudit,
        Action::ManageUsers,
        Action::ManageTeams,
        Action::ManageClusters,
        Action::ManageNamespaces,
        Action::ManagePrices,
        Action::SetQuota,
        Action::ViewAllAudit,
        Action::ManageSelf,
        Action::ViewPrices,
        Action::ViewPreparation,
    ];

    /// What the action needs. Team requirements apply to the team that owns
    /// the target; global ones ignore team roles entirely.
    pub fn requirement(self) -> Requirement {
        use Action::*;
        match self {
            ViewNamespace | ViewCluster => Requirement::Team(Role::Viewer),
            LaunchDeployment | ScaleDeployment | UpdateDeployment | RollbackDeployment | DeleteDeployment
            | LaunchJob | CancelJob | Promote => Requirement::Team(Role::Deployer),
            PromoteProtected | ManageEnvironments | ManageMembers | ManageBudget | ViewTeamAudit => {
                Requirement::Team(Role::TeamAdmin)
            }
            ManageUsers | ManageTeams | ManageClusters | ManageNamespaces | ManagePrices | SetQuota | ViewAllAudit => {
                Requirement::GlobalAdmin
            }
            ManageSelf => Requirement::Person,
            ViewPrices | ViewPreparation => Requirement::SignedIn,
        }
    }

    pub fn is_mutation(self) -> bool {
        !matches!(
            self,
            Action::ViewNamespace
                | Action::ViewCluster
                | Action::ViewTeamAudit
                | Action::ViewAllAudit
                | Action::ViewPrices
                | Action::ViewPreparation
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    SignedIn,
    /// Signed in as a person (a session), not through an API token: what a
    /// token could do here would let it outgrow its own scope.
    Person,
    Team(Role),
    GlobalAdmin,
}

/// What an action is aimed at, resolved to its owning team by the caller
/// (see [`Ownership::namespace`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Nothing in particular: global settings, or the caller's own account.
    Global,
    Team(TeamId),
    /// A namespace in a cluster; `owner` is None when no team owns it.
    /// `protected` marks a namespace that is a protected environment of its
    /// team (for example prod): changing anything there needs a team admin.
    Namespace {
        cluster: String,
        namespace: String,
        owner: Option<TeamId>,
        protected: bool,
    },
    /// A whole cluster, with the teams that own a namespace in it.
    Cluster {
        cluster: String,
        teams: Vec<TeamId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// The answer to "may `who` do `action` on `target`?".
pub fn may(who: &Principal, action: Action, target: &Target) -> Decision {
    let requirement = action.requirement();
    // Before the global-admin shortcut: an admin's token is still a token.
    if requirement == Requirement::Person && who.via_token {
        return Decision::Deny(format!("{} needs you to sign in; API tokens cannot do it", describe(action)));
    }
    if who.global_admin {
        return Decision::Allow;
    }
    match requirement {
        Requirement::SignedIn | Requirement::Person => Decision::Allow,
        Requirement::GlobalAdmin => Decision::Deny(format!("{} needs a global admin", describe(action))),
        Requirement::Team(needed) => {
            // A protected environment takes a team admin for any change.
            let protected = matches!(target, Target::Namespace { protected: true, .. });
            let needed = if protected && action.is_mutation() { needed.max(Role::TeamAdmin) } else { needed };
            let best = match target {
                Target::Global => None,
                Target::Team(team) => who.role_in(*team),
                Target::Namespace { owner, .. } => owner.and_then(|team| who.role_in(team)),
                Target::Cluster { teams, .. } => teams.iter().filter_map(|team| who.role_in(*team)).max(),
            };
            match best {
                Some(role) if role >= needed => Decision::Allow,
                Some(role) => Decision::Deny(format!(
                    "{}{} needs the {} role; you are a {}",
                    describe(action),
                    if protected && action.is_mutation() { " in a protected environment" } else { "" },
                    needed.label().to_lowercase(),
                    role.label().to_lowercase()
                )),
                None => Decision::Deny(format!("{} needs membership in the owning team", describe(action))),
            }
        }
    }
}

/// Whether `who` may see a team at all (its name, members, budget and
/// namespaces): its members and global admins.
pub fn sees_team(who: &Principal, team: TeamId) -> bool {
    may(who, Action::ViewNamespace, &Target::Team(team)).is_allowed()
}

/// What a principal may do beyond their teams' namespaces, for showing or
/// hiding controls and navigation. The server asks [`may`] again on every
/// request; these only decide what the UI offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub manage_users: bool,
    pub manage_teams: bool,
    pub manage_clusters: bool,
    pub manage_namespaces: bool,
    pub manage_prices: bool,
    pub set_quotas: bool,
    /// Some of the audit log (all of it, or their teams' part).
    pub view_audit: bool,
}

pub fn capabilities(who: &Principal) -> Capabilities {
    let global = |action| may(who, action, &Target::Global).is_allowed();
    Capabilities {
        manage_users: global(Action::ManageUsers),
        manage_teams: global(Action::ManageTeams),
        manage_clusters: global(Action::ManageClusters),
        manage_namespaces: global(Action::ManageNamespaces),
        manage_prices: global(Action::ManagePrices),
        set_quotas: global(Action::SetQuota),
        view_audit: audit_scope(who).is_some(),
    }
}

/// Which part of the audit log `who` may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditScope {
    All,
    /// The records of these teams (the ones `who` is a team admin of).
    Teams(Vec<TeamId>),
}

/// Global admins read all of the audit log, team admins their teams' part,
/// everyone else nothing.
pub fn audit_scope(who: &Principal) -> Option<AuditScope> {
    if may(who, Action::ViewAllAudit, &Target::Global).is_allowed() {
        return Some(AuditScope::All);
    }
    let teams: Vec<TeamId> = who
        .memberships
        .iter()
        .filter(|m| may(who, Action::ViewTeamAudit, &Target::Team(m.team_id)).is_allowed())
        .map(|m| m.team_id)
        .collect();
    (!teams.is_empty()).then_some(AuditScope::Teams(teams))
}

/// The rights a new API token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenScope {
    pub max_role: Role,
    /// None: every team of the owner, now and later.
    pub teams: Option<Vec<TeamId>>,
    pub admin: bool,
}

/// The scope of a token `who` asks for: by default capped at their best
/// role; only teams they are in; admin rights only if they have them. A
/// token is always narrowed to its owner's rights again when it is used.
pub fn token_scope(
    who: &Principal,
    max_role: Option<Role>,
    teams: Option<&[TeamId]>,
    admin: bool,
) -> Result<TokenScope, crate::validate::Invalid> {
    use crate::validate::Invalid;
    let best = who.memberships.iter().map(|m| m.role).max().unwrap_or(Role::Viewer);
    if let Some(foreign) = teams.into_iter().flatten().find(|t| !sees_team(who, **t)) {
        return Err(Invalid::new("teams", format!("you are not a member of team {foreign}")));
    }
    if admin && !who.global_admin {
        return Err(Invalid::new("admin", "only global admins can make admin tokens"));
    }
    Ok(TokenScope { max_role: max_role.unwrap_or(best), teams: teams.map(<[TeamId]>::to_vec), admin })
}

fn describe(action: Action) -> &'static str {
    use Action::*;
    match action {
        ViewNamespace => "Viewing this namespace",
        ViewCluster => "Viewing this cluster",
        LaunchDeployment => "Launching a deployment",
        ScaleDeployment => "Scaling a deployment",
        UpdateDeployment => "Updating a deployment",
        RollbackDeployment => "Rolling back a deployment",
        DeleteDeployment => "Deleting a deployment",
        LaunchJob => "Launching a job",
        CancelJob => "Cancelling a job",
        Promote => "Promoting",
        PromoteProtected => "Promoting into a protected environment",
        ManageEnvironments => "Managing environments",
        ManageMembers => "Managing team members",
        ManageBudget => "Managing budgets",
        ViewTeamAudit => "Viewing the team's audit log",
        ManageUsers => "Managing users",
        ManageTeams => "Managing teams",
        ManageClusters => "Managing clusters",
        ManageNamespaces => "Managing the namespace mapping",
        ManagePrices => "Managing prices",
        SetQuota => "Setting GPU quotas",
        ViewAllAudit => "Viewing the whole audit log",
        ManageSelf => "Managing your account",
        ViewPrices => "Viewing prices",
        ViewPreparation => "Viewing what is being prepared",
    }
}

/// Which team owns which namespace in which cluster, and which of those
/// namespaces are protected environments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ownership {
    owners: BTreeMap<(String, String), TeamId>,
    #[serde(default)]
    protected: BTreeSet<(String, String)>,
}

impl Ownership {
    pub fn new(entries: impl IntoIterator<Item = (String, String, TeamId)>) -> Ownership {
        Ownership {
            owners: entries.into_iter().map(|(c, ns, team)| ((c, ns), team)).collect(),
            protected: BTreeSet::new(),
        }
    }

    /// Marks these (cluster, namespace) pairs as protected environments.
    pub fn with_protected(mut self, namespaces: impl IntoIterator<Item = (String, String)>) -> Ownership {
        self.protected.extend(namespaces);
        self
    }

    pub fn is_protected(&self, cluster: &str, namespace: &str) -> bool {
        self.protected.contains(&(cluster.to_string(), namespace.to_string()))
    }

    pub fn owner(&self, cluster: &str, namespace: &str) -> Option<TeamId> {
        self.owners.get(&(cluster.to_string(), namespace.to_string())).copied()
    }

    pub fn namespace(&self, cluster: &str, namespace: &str) -> Target {
        Target::Namespace {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            owner: self.owner(cluster, namespace),
            protected: self.is_protected(cluster, namespace),
        }
    }

    pub fn cluster(&self, cluster: &str) -> Target {
        let teams: BTreeSet<TeamId> =
            self.owners.iter().filter(|((c, _), _)| c == cluster).map(|(_, team)| *team).collect();
        Target::Cluster { cluster: cluster.to_string(), teams: teams.into_iter().collect() }
    }

    pub fn namespaces_of(&self, team: TeamId) -> impl Iterator<Item = (&str, &str)> {
        self.owners.iter().filter(move |(_, t)| **t == team).map(|((c, ns), _)| (c.as_str(), ns.as_str()))
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, TeamId)> {
        self.owners.iter().map(|((c, ns), t)| (c.as_str(), ns.as_str(), *t))
    }
}

/// The namespaces a principal may read: every query and every stream filters
/// through this. Lookups take `&str` and allocate nothing, because a list of
/// 30,000 pods asks once per pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    Everything,
    Only(BTreeMap<String, BTreeSet<String>>),
}

impl Visibility {
    pub fn of(who: &Principal, ownership: &Ownership) -> Visibility {
        if who.global_admin {
            return Visibility::Everything;
        }
        let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for membership in &who.memberships {
            for (cluster, namespace) in ownership.namespaces_of(membership.team_id) {
                seen.entry(cluster.to_string()).or_default().insert(namespace.to_string());
            }
        }
        Visibility::Only(seen)
    }

    pub fn namespace(&self, cluster: &str, namespace: &str) -> bool {
        match self {
            Visibility::Everything => true,
            Visibility::Only(seen) => seen.get(cluster).is_some_and(|names| names.contains(namespace)),
        }
    }

    pub fn cluster(&self, cluster: &str) -> bool {
        match self {
            Visibility::Everything => true,
            Visibility::Only(seen) => seen.contains_key(cluster),
        }
    }

    pub fn is_everything(&self) -> bool {
        matches!(self, Visibility::Everything)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISION: TeamId = 1;
    const NLP: TeamId = 2;

    fn user(global_admin: bool, memberships: &[(TeamId, Role)]) -> Principal {
        Principal {
            via_token: false,
            user_id: 7,
            username: "u".into(),
            global_admin,
            memberships: memberships
                .iter()
                .map(|(team_id, role)| Membership { team_id: *team_id, team_name: format!("t{team_id}"), role: *role })
                .collect(),
        }
    }

    /// Team vision has dev/vision-dev and prod/vision, prod being protected.
    fn ownership() -> Ownership {
        Ownership::new([
            ("prod".to_string(), "vision".to_string(), VISION),
            ("dev".to_string(), "vision-dev".to_string(), VISION),
            ("prod".to_string(), "nlp".to_string(), NLP),
        ])
        .with_protected([("prod".to_string(), "vision".to_string())])
    }

    /// The expected answer for every action, role, credential and target
    /// kind, written out from the issues' role descriptions rather than
    /// derived from `requirement`, so a change to either shows up here.
    fn expected(
        action: Action,
        role: Option<Role>,
        own_team: bool,
        protected: bool,
        global_admin: bool,
        via_token: bool,
    ) -> bool {
        use Action::*;
        if action == ManageSelf {
            return !via_token;
        }
        if global_admin {
            return true;
        }
        let role = if own_team { role } else { None };
        match action {
            ManageSelf => unreachable!(),
            ViewPrices | ViewPreparation => true,
            ViewNamespace | ViewCluster => role.is_some(),
            LaunchDeployment | ScaleDeployment | UpdateDeployment | RollbackDeployment | DeleteDeployment
            | LaunchJob | CancelJob | Promote
                if protected =>
            {
                role == Some(Role::TeamAdmin)
            }
            LaunchDeployment | ScaleDeployment | UpdateDeployment | RollbackDeployment | DeleteDeployment
            | LaunchJob | CancelJob | Promote => matches!(role, Some(Role::Deployer | Role::TeamAdmin)),
            PromoteProtected | ManageEnvironments | ManageMembers | ManageBudget | ViewTeamAudit => {
                role == Some(Role::TeamAdmin)
            }
            ManageUsers | ManageTeams | ManageClusters | ManageNamespaces | ManagePrices | SetQuota | ViewAllAudit => {
                false
            }
        }
    }

    #[test]
    fn every_action_for_every_role_credential_and_target() {
        let own = ownership();
        let mut checked = 0;
        for action in Action::ALL {
            for role in [None, Some(Role::Viewer), Some(Role::Deployer), Some(Role::TeamAdmin)] {
                for (global_admin, via_token) in [(false, false), (true, false), (false, true), (true, true)] {
                    let memberships: Vec<(TeamId, Role)> = role.map(|r| vec![(VISION, r)]).unwrap_or_default();
                    let who = Principal { via_token, ..user(global_admin, &memberships) };
                    let targets = [
                        (own.namespace("prod", "vision"), true, true),
                        (own.namespace("dev", "vision-dev"), true, false),
                        (own.namespace("prod", "nlp"), false, false),
                        (own.namespace("prod", "unowned"), false, false),
                        (Target::Team(VISION), true, false),
                        (Target::Team(NLP), false, false),
                    ];
                    for (target, own_team, protected) in targets {
                        let got = may(&who, action, &target).is_allowed();
                        let want = expected(action, role, own_team, protected, global_admin, via_token);
                        assert_eq!(
                            got, want,
                            "{action:?} by {role:?} (admin={global_admin}, token={via_token}) on {target:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, Action::ALL.len() * 4 * 4 * 6);
    }

    #[test]
    fn a_protected_environment_says_why_a_deployer_is_refused() {
        let own = ownership();
        let deployer = user(false, &[(VISION, Role::Deployer)]);
        let Decision::Deny(reason) = may(&deployer, Action::ScaleDeployment, &own.namespace("prod", "vision")) else {
            panic!("a deployer may not scale in a protected environment")
        };
        assert_eq!(
            reason,
            "Scaling a deployment in a protected environment needs the team admin role; you are a deployer"
        );
        assert!(may(&deployer, Action::ViewNamespace, &own.namespace("prod", "vision")).is_allowed());
        assert!(may(&deployer, Action::ScaleDeployment, &own.namespace("dev", "vision-dev")).is_allowed());
    }

    #[test]
    fn a_token_cannot_manage_tokens_even_an_admins() {
        let admin_token = user(true, &[]).narrowed(Role::TeamAdmin, None, true);
        assert!(admin_token.via_token && admin_token.global_admin);
        let Decision::Deny(reason) = may(&admin_token, Action::ManageSelf, &Target::Global) else {
            panic!("a token may not mint tokens")
        };
        assert!(reason.contains("API tokens cannot"), "{reason}");
        assert!(may(&admin_token, Action::ManageUsers, &Target::Global).is_allowed());
    }

    #[test]
    fn cluster_view_needs_a_namespace_in_that_cluster() {
        let own = ownership();
        let vision_viewer = user(false, &[(VISION, Role::Viewer)]);
        let nlp_viewer = user(false, &[(NLP, Role::Viewer)]);
        assert!(may(&vision_viewer, Action::ViewCluster, &own.cluster("dev")).is_allowed());
        assert!(may(&vision_viewer, Action::ViewCluster, &own.cluster("prod")).is_allowed());
        assert!(!may(&nlp_viewer, Action::ViewCluster, &own.cluster("dev")).is_allowed());
        assert!(!may(&nlp_viewer, Action::ViewCluster, &own.cluster("staging")).is_allowed());
    }

    #[test]
    fn denial_says_what_is_missing() {
        let own = ownership();
        let viewer = user(false, &[(VISION, Role::Viewer)]);
        let Decision::Deny(reason) = may(&viewer, Action::ScaleDeployment, &own.namespace("dev", "vision-dev")) else {
            panic!("viewer may not scale")
        };
        assert_eq!(reason, "Scaling a deployment needs the deployer role; you are a viewer");
        let Decision::Deny(reason) = may(&viewer, Action::ScaleDeployment, &own.namespace("prod", "nlp")) else {
            panic!("outsider may not scale")
        };
        assert!(reason.contains("membership"), "{reason}");
    }

    #[test]
    fn token_scope_never_exceeds_the_owner() {
        let owner = user(false, &[(VISION, Role::TeamAdmin), (NLP, Role::Viewer)]);
        let read_only = owner.narrowed(Role::Viewer, None, true);
        assert_eq!(read_only.role_in(VISION), Some(Role::Viewer));
        assert_eq!(read_only.role_in(NLP), Some(Role::Viewer));
        assert!(!read_only.global_admin, "admin flag cannot be granted by a token");

        let vision_only = owner.narrowed(Role::TeamAdmin, Some(&[VISION]), false);
        assert_eq!(vision_only.role_in(VISION), Some(Role::TeamAdmin));
        assert_eq!(vision_only.role_in(NLP), None);

        let admin = user(true, &[]);
        assert!(admin.narrowed(Role::Viewer, None, true).global_admin);
        assert!(!admin.narrowed(Role::TeamAdmin, None, false).global_admin);
    }

    #[test]
    fn capabilities_follow_the_policy() {
        let admin = capabilities(&user(true, &[]));
        assert!(admin.manage_users && admin.manage_clusters && admin.set_quotas && admin.view_audit);
        let team_admin = capabilities(&user(false, &[(VISION, Role::TeamAdmin)]));
        assert_eq!(team_admin, Capabilities { view_audit: true, ..Capabilities::default() });
        assert_eq!(capabilities(&user(false, &[(VISION, Role::Deployer)])), Capabilities::default());
    }

    #[test]
    fn audit_scope_follows_team_admin_roles() {
        assert_eq!(audit_scope(&user(true, &[])), Some(AuditScope::All));
        let admin_of_nlp = user(false, &[(VISION, Role::Deployer), (NLP, Role::TeamAdmin)]);
        assert_eq!(audit_scope(&admin_of_nlp), Some(AuditScope::Teams(vec![NLP])));
        assert_eq!(audit_scope(&user(false, &[(VISION, Role::Deployer)])), None);
    }

    #[test]
    fn token_scopes_stay_within_the_owner() {
        let deployer = user(false, &[(VISION, Role::Deployer)]);
        let scope = token_scope(&deployer, None, None, false).unwrap();
        assert_eq!((scope.max_role, scope.teams, scope.admin), (Role::Deployer, None, false));
        assert_eq!(
            token_scope(&deployer, Some(Role::Viewer), Some(&[VISION]), false).unwrap().teams,
            Some(vec![VISION])
        );
        assert_eq!(token_scope(&deployer, None, Some(&[NLP]), false).unwrap_err().field, "teams");
        assert_eq!(token_scope(&deployer, None, None, true).unwrap_err().field, "admin");
        assert!(token_scope(&user(true, &[]), None, Some(&[NLP]), true).unwrap().admin);
    }

    #[test]
    fn visibility_lists_exactly_the_team_namespaces() {
        let own = ownership();
        let viewer = user(false, &[(VISION, Role::Viewer)]);
        let seen = Visibility::of(&viewer, &own);
        assert!(seen.namespace("prod", "vision"));
        assert!(seen.namespace("dev", "vision-dev"));
        assert!(!seen.namespace("prod", "nlp"));
        assert!(!seen.namespace("dev", "vision"), "same name in another cluster is another namespace");
        assert!(seen.cluster("dev") && seen.cluster("prod") && !seen.cluster("staging"));
        assert!(Visibility::of(&user(true, &[]), &own).is_everything());
        let nobody = Visibility::of(&user(false, &[]), &own);
        assert!(!nobody.cluster("prod") && !nobody.namespace("prod", "vision"));
    }

    #[test]
    fn roles_round_trip_and_order() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
        assert!(Role::Viewer < Role::Deployer && Role::Deployer < Role::TeamAdmin);
    }
}
