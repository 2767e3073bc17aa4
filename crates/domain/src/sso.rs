//! Single sign-on's decisions, without IO: which team roles a person's
//! provider groups give them, the Gantry username a new person gets, and
//! reading the groups claim out of an ID token's claims.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::{Role, TeamId};
use crate::validate::Username;

/// What a provider group gives: a role in a team, or global admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Grant {
    Team { team_id: TeamId, role: Role },
    GlobalAdmin,
}

/// A group → grant rule, managed by global admins (and team admins for their team).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMapping {
    pub id: i64,
    pub group: String,
    /// The team's name; None for a global-admin mapping.
    pub team_name: Option<String>,
    pub grant: Grant,
    pub created_at: i64,
}

/// The effective single sign-on configuration, as global admins see it
/// (never the client secret), and whether the provider answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoSettings {
    pub provider_name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub redirect_url: String,
    /// How often an open session's groups are read again.
    pub refresh_minutes: u64,
    /// False: only global admins may sign in with a password (break-glass).
    pub local_passwords: bool,
    /// Why the provider could not be used when last asked; None: it answered.
    pub problem: Option<String>,
}

/// Single sign-on as global admins see it: the effective configuration and every mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoOverview {
    /// None: single sign-on is off (no --oidc-issuer).
    pub settings: Option<SsoSettings>,
    pub mappings: Vec<GroupMapping>,
}

/// What the sign-in page offers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// The identity provider's name, when single sign-on is on.
    pub provider: Option<String>,
    /// False: passwords are for global admins only (break-glass).
    pub local_passwords: bool,
    /// Why the last sign-in through the provider failed, said once.
    pub problem: Option<String>,
}

/// What a person's groups give them, with the group each came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRoles {
    /// The highest role any of their groups gives in each team.
    pub teams: BTreeMap<TeamId, (Role, String)>,
    /// The first group (by name) that makes them a global admin.
    pub admin_group: Option<String>,
}

/// The roles `groups` give under `mappings`. Where several groups map to
/// one team, the highest role wins; the group named is the first (by name)
/// that gives it.
pub fn roles_from_groups(mappings: &[GroupMapping], groups: &[String]) -> GroupRoles {
    let mut roles = GroupRoles::default();
    let mut sorted: Vec<&GroupMapping> = mappings.iter().filter(|m| groups.contains(&m.group)).collect();
    sorted.sort_by(|a, b| a.group.cmp(&b.group));
    for mapping in sorted {
        match mapping.grant {
            Grant::GlobalAdmin => {
                roles.admin_group.get_or_insert_with(|| mapping.group.clone());
            }
            Grant::Team { team_id, role } => {
                let entry = roles.teams.entry(team_id).or_insert((role, mapping.group.clone()));
                if role > entry.0 {
                    *entry = (role, mapping.group.clone());
                }
            }
        }
    }
    roles
}

/// Longest group name accepted in a mapping (providers' names are short).
pub const MAX_GROUP_CHARS: usize = 256;

/// Why the groups claim of a token could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupsClaimError(pub String);

/// The groups a token's claims carry under `claim`: absent is no groups; a
/// list of strings is the groups; anything else is an error naming the claim.
pub fn groups_claim(claims: &serde_json::Value, claim: &str) -> Result<Vec<String>, GroupsClaimError> {
    match claims.get(claim) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(group) if group.chars().count() <= MAX_GROUP_CHARS => Ok(group.clone()),
                _ => Err(GroupsClaimError(format!(
                    "the identity provider's {claim:?} claim holds something other than group names: {}",
                    excerpt(item)
                ))),
            })
            .collect(),
        Some(other) => Err(GroupsClaimError(format!(
            "the identity provider's {claim:?} claim is not a list of groups but {}; set the groups claim (--oidc-groups-claim) to one that is",
            excerpt(other)
        ))),
    }
}

fn excerpt(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}

/// The username a person signing in for the first time gets: the
/// provider's preferred username (or the e-mail's local part), lowercased
/// and cut to what Gantry accepts. When `taken` says that name belongs to
/// someone else (a local account is never taken over), a short suffix from
/// the provider's subject tells the two apart.
pub fn username_for(hints: &[Option<&str>], subject: &str, taken: impl Fn(&str) -> bool) -> Option<Username> {
    let base = hints
        .iter()
        .flatten()
        .map(|hint| clean_username(hint.split('@').next().unwrap_or(hint)))
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "user".to_string());
    let suffix = short_hash(subject);
    let candidates = [base.clone(), format!("{}-{suffix}", truncate(&base, 64 - 7))];
    candidates.into_iter().filter_map(|name| Username::parse(&name).ok()).find(|name| !taken(name.as_str()))
}

fn clean_username(hint: &str) -> String {
    let cleaned: String = hint
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    let trimmed = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    truncate(trimmed, 64)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Six hex digits of a stable (FNV-1a) hash: a suffix, not a secret.
fn short_hash(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{:06x}", hash & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(group: &str, grant: Grant) -> GroupMapping {
        GroupMapping { id: 0, group: group.into(), team_name: None, grant, created_at: 0 }
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|g| g.to_string()).collect()
    }

    #[test]
    fn the_highest_role_of_a_persons_groups_wins_per_team() {
        let mappings = [
            mapping("ml-vision-viewers", Grant::Team { team_id: 1, role: Role::Viewer }),
            mapping("ml-vision-deployers", Grant::Team { team_id: 1, role: Role::Deployer }),
            mapping("nlp", Grant::Team { team_id: 2, role: Role::TeamAdmin }),
            mapping("platform-admins", Grant::GlobalAdmin),
        ];
        let roles = roles_from_groups(&mappings, &groups(&["ml-vision-viewers", "ml-vision-deployers", "other"]));
        assert_eq!(roles.teams.len(), 1);
        assert_eq!(roles.teams[&1], (Role::Deployer, "ml-vision-deployers".to_string()));
        assert_eq!(roles.admin_group, None);

        let admin = roles_from_groups(&mappings, &groups(&["platform-admins"]));
        assert!(admin.teams.is_empty());
        assert_eq!(admin.admin_group.as_deref(), Some("platform-admins"));
        assert_eq!(roles_from_groups(&mappings, &[]), GroupRoles::default(), "no groups, no roles");
    }

    #[test]
    fn the_groups_claim_is_a_list_of_strings_or_an_error_naming_it() {
        let claims = serde_json::json!({"groups": ["a", "b"], "role": "admin", "nested": [["x"]]});
        assert_eq!(groups_claim(&claims, "groups").unwrap(), groups(&["a", "b"]));
        assert_eq!(groups_claim(&claims, "missing").unwrap(), Vec::<String>::new());
        let not_a_list = groups_claim(&claims, "role").unwrap_err();
        assert!(not_a_list.0.contains("\"role\" claim is not a list"), "{not_a_list:?}");
        assert!(groups_claim(&claims, "nested").is_err());
    }

    #[test]
    fn a_new_persons_username_never_takes_over_a_taken_one() {
        let free = |_: &str| false;
        let name = username_for(&[Some("Alice.Smith"), Some("alice@example.com")], "sub-1", free).unwrap();
        assert_eq!(name.as_str(), "alice.smith");
        let from_email = username_for(&[None, Some("Bob@example.com")], "sub-2", free).unwrap();
        assert_eq!(from_email.as_str(), "bob");
        let odd = username_for(&[Some("_Zoë Ünïcode")], "sub-3", free).unwrap();
        assert_eq!(odd.as_str(), "zo---n-code");

        let taken = |name: &str| name == "alice";
        let other = username_for(&[Some("alice")], "sub-4", taken).unwrap();
        assert!(other.as_str().starts_with("alice-") && other.as_str().len() == "alice-".len() + 6, "{other:?}");
        assert_eq!(username_for(&[Some("alice")], "sub-4", taken), Some(other), "stable for one subject");
        assert_eq!(username_for(&[Some("alice")], "sub-4", |_| true), None, "every candidate taken");
        assert_eq!(username_for(&[None, None], "sub-5", free).unwrap().as_str(), "user");
        let long = "x".repeat(100);
        let cut = username_for(&[Some(&long)], "s", |n| !n.contains('-')).unwrap();
        assert_eq!(cut.as_str().len(), 64, "{cut:?}");
    }
}
