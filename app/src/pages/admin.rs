//! Users (global admins), teams and members, the namespace mapping,
//! environments, and the audit log.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::admin::{
    AuditQuery, CreateTeam, CreateUser, DeleteTeam, DeleteUser, MapNamespace, RemoveGroupMapping, RemoveMember,
    ResetPassword, SetAdmin, SetEnvironments, SetGroupMapping, SetMember, TeamDetail as TeamData, UnmapNamespace,
    audit_log, list_teams, list_users, sso_overview, team_page,
};
use crate::api::costs::{ClearBudget, SetBudget};
use crate::components::common::{Csrf, loaded, loaded_quietly, outcome};
use crate::format;
use crate::pages::costs::{BudgetChart, BudgetMonth, BudgetNow};
use gantry_domain::records::{AuditRecord, Team, User};
use gantry_domain::sso::{Grant, SsoOverview};

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let set_admin = ServerAction::<SetAdmin>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let users = crate::loaded::load(
        move || (create.version().get(), delete.version().get(), set_admin.version().get()),
        |_| list_users(),
    );
    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        {loaded(users, move |list: Vec<User>| {
            view! {
                <table class="grid" data-testid="users">
                    <thead>
                        <tr>
                            <th>"Username"</th>
                            <th>"Global admin"</th>
                            <th>"Created"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {list
                            .into_iter()
                            .map(|u| {
                                view! {
                                    <tr data-user=u.username.clone()>
                                        <td>{u.username.clone()}</td>
                                        <td>{if u.global_admin { "yes" } else { "no" }}</td>
                                        <td>{format::timestamp(u.created_at)}</td>
                                        <td class="row-actions">
                                            <ActionForm action=set_admin attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="id" value=u.id />
                                                <input type="hidden" name="admin" value=(!u.global_admin).to_string() />
                                                <button type="submit" class="link">
                                                    {if u.global_admin { "Remove admin" } else { "Make admin" }}
                                                </button>
                                            </ActionForm>
                                            <ActionForm action=reset attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="id" value=u.id />
                                                <input type="password" name="password" placeholder="new password" minlength="12" required />
                                                <button type="submit" class="link">"Set password"</button>
                                            </ActionForm>
                                            <ActionForm action=delete attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="id" value=u.id />
                                                <button type="submit" class="danger">"Delete"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
        })}
        {outcome(set_admin.value(), |_| "Saved".to_string())}
        {outcome(reset.value(), |_| "Password set; the user's sessions ended".to_string())}
        {outcome(delete.value(), |_| "Deleted".to_string())}
        <SingleSignOn />
        <section class="panel">
            <h2>"New user"</h2>
            <ActionForm action=create attr:class="stack">
                <Csrf />
                <label>"Username" <input type="text" name="username" required pattern="[a-z0-9][a-z0-9._-]*" maxlength="64" /></label>
                <label>"Password (12+ characters)" <input type="password" name="password" required minlength="12" /></label>
                <label class="check"><input type="checkbox" name="admin" value="true" /> "Global admin"</label>
                <button type="submit">"Create user"</button>
            </ActionForm>
            {outcome(create.value(), |_| "User created".to_string())}
        </section>
    }
}

/// Single sign-on's effective configuration (never the secret), whether the
/// provider answers, and which provider groups give which roles.
#[component]
fn SingleSignOn() -> impl IntoView {
    let set = ServerAction::<SetGroupMapping>::new();
    let remove = ServerAction::<RemoveGroupMapping>::new();
    let overview = crate::loaded::load(move || (set.version().get(), remove.version().get()), |_| sso_overview());
    let teams = crate::loaded::load(|| (), |_| list_teams());
    view! {
        <section class="panel" data-testid="sso">
            <h2>"Single sign-on"</h2>
            {loaded(overview, move |overview: SsoOverview| {
                let settings = match overview.settings {
                    None => view! {
                        <p class="muted">
                            "Off: people sign in with Gantry passwords. Start Gantry with --oidc-issuer, --oidc-client-id and --oidc-client-secret-file to sign people in through your identity provider."
                        </p>
                    }
                    .into_any(),
                    Some(s) => view! {
                        {s.problem.map(|p| view! { <p class="error" role="alert">{p}</p> })}
                        <dl class="facts" data-testid="sso-settings">
                            <dt>"Provider"</dt><dd>{s.provider_name}</dd>
                            <dt>"Issuer"</dt><dd><code>{s.issuer}</code></dd>
                            <dt>"Client id"</dt><dd><code>{s.client_id}</code></dd>
                            <dt>"Client secret"</dt><dd>{if s.client_secret_set { "set (not shown)" } else { "not set" }}</dd>
                            <dt>"Scopes"</dt><dd>{s.scopes.join(" ")}</dd>
                            <dt>"Groups claim"</dt><dd><code>{s.groups_claim}</code></dd>
                            <dt>"Redirect URL"</dt><dd><code>{s.redirect_url}</code></dd>
                            <dt>"Groups re-read"</dt><dd>{format!("every {} min while a session lasts", s.refresh_minutes)}</dd>
                            <dt>"Passwords"</dt><dd>{if s.local_passwords { "everyone" } else { "global admins only (break-glass)" }}</dd>
                        </dl>
                    }
                    .into_any(),
                };
                let rows = overview
                    .mappings
                    .into_iter()
                    .map(|m| {
                        let (team, role, team_id) = match m.grant {
                            Grant::GlobalAdmin => ("—".to_string(), "Global admin".to_string(), String::new()),
                            Grant::Team { team_id, role } => {
                                (m.team_name.clone().unwrap_or_default(), role.label().to_string(), team_id.to_string())
                            }
                        };
                        let (group, label, key) = (m.group.clone(), m.group.clone(), m.group);
                        view! {
                            <tr data-group=key>
                                <td><code>{label}</code></td>
                                <td>{team}</td>
                                <td>{role}</td>
                                <td class="row-actions">
                                    <ActionForm action=remove attr:class="inline">
                                        <Csrf />
                                        <input type="hidden" name="group" value=group />
                                        <input type="hidden" name="team_id" value=team_id />
                                        <button type="submit" class="danger">"Remove"</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    {settings}
                    <h3>"Groups → roles"</h3>
                    <p class="muted">
                        "Roles from groups are given at each sign-in through the provider and re-read while a session lasts; a person who leaves a group loses its role. Roles given by hand stay."
                    </p>
                    <div class="table-scroll">
                        <table class="grid" data-testid="group-mappings">
                            <thead><tr><th>"Group"</th><th>"Team"</th><th>"Role"</th><th></th></tr></thead>
                            <tbody>
                                {rows}
                            </tbody>
                        </table>
                    </div>
                }
            })}
            {outcome(remove.value(), |_| "Mapping removed".to_string())}
            <ActionForm action=set attr:class="row">
                <Csrf />
                <label>"Group" <input type="text" name="group" required maxlength="256" placeholder="ml-vision-deployers" /></label>
                <label>
                    "Team"
                    {loaded_quietly(teams, |list: Vec<Team>| {
                        view! {
                            <select name="team_id">
                                <option value="">"— (global admin)"</option>
                                {list
                                    .into_iter()
                                    .map(|t| view! { <option value=t.id.to_string()>{t.name}</option> })
                                    .collect_view()}
                            </select>
                        }
                    })}
                </label>
                <label>
                    "Role"
                    <select name="role">
                        <option value="viewer">"Viewer"</option>
                        <option value="deployer">"Deployer"</option>
                        <option value="team_admin">"Team admin"</option>
                        <option value="global_admin">"Global admin"</option>
                    </select>
                </label>
                <button type="submit">"Map group"</button>
            </ActionForm>
            {outcome(set.value(), |_| "Mapping saved".to_string())}
        </section>
    }
}

#[component]
pub fn TeamsPage() -> impl IntoView {
    let create = ServerAction::<CreateTeam>::new();
    let teams = crate::loaded::load(move || create.version().get(), |_| list_teams());
    let session = crate::Session::use_context();
    view! {
        <Title text="Teams" />
        <h1>"Teams"</h1>
        {loaded(teams, |list: Vec<Team>| {
            view! {
                <table class="grid" data-testid="teams">
                    <thead>
                        <tr>
                            <th>"Team"</th>
                            <th>"Members"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.is_empty().then(|| view! { <tr><td colspan="2" class="muted empty">"No teams yet: a global admin creates teams, adds their members and gives them namespaces; until you are in one you see no namespaces."</td></tr> })}
                        {list
                            .into_iter()
                            .map(|t| view! {
                                <tr>
                                    <td><A href=format!("/teams/{}", t.id)>{t.name.clone()}</A></td>
                                    <td>{t.members}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
        })}
        {loaded(session.me, move |me| {
            let admin = me.is_some_and(|m| m.can.manage_teams);
            view! {
                <Show when=move || admin>
                    <section class="panel">
                        <h2>"New team"</h2>
                        <ActionForm action=create attr:class="inline">
                            <Csrf />
                            <input type="text" name="name" placeholder="team name (a-z, 0-9, -)" required />
                            <button type="submit">"Create team"</button>
                        </ActionForm>
                        {outcome(create.value(), |_| "Team created".to_string())}
                    </section>
                </Show>
            }
        })}
    }
}

#[component]
pub fn TeamPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1));
    let set_member = ServerAction::<SetMember>::new();
    let remove_member = ServerAction::<RemoveMember>::new();
    let map = ServerAction::<MapNamespace>::new();
    let unmap = ServerAction::<UnmapNamespace>::new();
    let envs = ServerAction::<SetEnvironments>::new();
    let set_budget = ServerAction::<SetBudget>::new();
    let clear_budget = ServerAction::<ClearBudget>::new();
    let delete = ServerAction::<DeleteTeam>::new();
    let set_group = ServerAction::<SetGroupMapping>::new();
    let remove_group = ServerAction::<RemoveGroupMapping>::new();
    let data = crate::loaded::load(
        move || {
            (
                id(),
                set_member.version().get()
                    + remove_member.version().get()
                    + map.version().get()
                    + unmap.version().get()
                    + envs.version().get()
                    + set_budget.version().get()
                    + clear_budget.version().get()
                    + set_group.version().get()
                    + remove_group.version().get(),
            )
        },
        |(id, _)| team_page(id),
    );
    view! {
        <Title text="Team" />
        {loaded(data, move |page: TeamData| {
            let team_id = page.team.id;
            let env_text = page
                .environments
                .iter()
                .map(|e| format!("{} {}/{}{}", e.name, e.cluster, e.namespace, if e.protected { " protected" } else { "" }))
                .collect::<Vec<_>>()
                .join("\n");
            let can_members = page.can_manage_members;
            let group_mappings = page.group_mappings.clone();
            let can_envs = page.can_manage_environments;
            let admin = page.can_manage_namespaces;
            view! {
                <h1>{format!("Team {}", page.team.name)}</h1>
                <h2>"Members"</h2>
                <table class="grid" data-testid="members">
                    <thead><tr><th>"User"</th><th>"Role"</th><th></th></tr></thead>
                    <tbody>
                        {page.members.is_empty().then(|| view! { <tr><td colspan="3" class="muted empty">"No members yet: the team's admins (or a global admin) add them below."</td></tr> })}
                        {page.members.iter().map(|m| {
                            let user_id = m.user_id;
                            view! {
                                <tr data-member=m.username.clone()>
                                    <td>{m.username.clone()}</td>
                                    <td>
                                        {m.role.label()}
                                        {m.from_group.clone().map(|g| view! { <span class="badge" title="Given at each sign-in through the identity provider">"from group " {g}</span> })}
                                    </td>
                                    <td>
                                        <Show when=move || can_members>
                                            <ActionForm action=remove_member attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="team_id" value=team_id />
                                                <input type="hidden" name="user_id" value=user_id />
                                                <button type="submit" class="link">"Remove"</button>
                                            </ActionForm>
                                        </Show>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <Show when=move || can_members>
                    <ActionForm action=set_member attr:class="inline">
                        <Csrf />
                        <input type="hidden" name="team_id" value=team_id />
                        <input type="text" name="username" placeholder="username" required />
                        <select name="role">
                            <option value="viewer">"viewer"</option>
                            <option value="deployer">"deployer"</option>
                            <option value="team_admin">"team admin"</option>
                        </select>
                        <button type="submit">"Add or change member"</button>
                    </ActionForm>
                    {outcome(set_member.value(), |_| "Saved".to_string())}
                    {outcome(remove_member.value(), |_| "Removed".to_string())}
                    <h3>"Identity-provider groups"</h3>
                    <p class="muted">"Members of these groups get the role here at each sign-in through single sign-on, and lose it when they leave the group."</p>
                    <table class="grid" data-testid="team-group-mappings">
                        <thead><tr><th>"Group"</th><th>"Role"</th><th></th></tr></thead>
                        <tbody>
                            {group_mappings.is_empty().then(|| view! { <tr><td colspan="3" class="muted empty">"No groups mapped: members are added by hand above."</td></tr> })}
                            {group_mappings.clone().into_iter().map(|m| {
                                let role = match m.grant { Grant::Team { role, .. } => role.label(), Grant::GlobalAdmin => "Global admin" };
                                let (key, label, group) = (m.group.clone(), m.group.clone(), m.group);
                                view! {
                                    <tr data-group=key>
                                        <td><code>{label}</code></td>
                                        <td>{role}</td>
                                        <td>
                                            <ActionForm action=remove_group attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="team_id" value=team_id.to_string() />
                                                <input type="hidden" name="group" value=group />
                                                <button type="submit" class="link">"Remove"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <ActionForm action=set_group attr:class="inline">
                        <Csrf />
                        <input type="hidden" name="team_id" value=team_id.to_string() />
                        <input type="text" name="group" placeholder="group" required maxlength="256" />
                        <select name="role">
                            <option value="viewer">"viewer"</option>
                            <option value="deployer">"deployer"</option>
                            <option value="team_admin">"team admin"</option>
                        </select>
                        <button type="submit">"Map group"</button>
                    </ActionForm>
                    {outcome(set_group.value(), |_| "Saved".to_string())}
                    {outcome(remove_group.value(), |_| "Removed".to_string())}
                </Show>
                <h2>"Namespaces"</h2>
                <table class="grid" data-testid="team-namespaces">
                    <thead><tr><th>"Cluster"</th><th>"Namespace"</th><th></th></tr></thead>
                    <tbody>
                        {page.namespaces.is_empty().then(|| view! { <tr><td colspan="3" class="muted empty">"No namespaces yet: until a global admin gives this team namespaces, its members see no workloads and no costs."</td></tr> })}
                        {page.namespaces.iter().map(|n| {
                            let (cluster, namespace) = (n.cluster.clone(), n.namespace.clone());
                            view! {
                                <tr>
                                    <td>{n.cluster.clone()}</td>
                                    <td>{n.namespace.clone()}</td>
                                    <td>
                                        {admin.then(|| view! {
                                            <ActionForm action=unmap attr:class="inline">
                                                <Csrf />
                                                <input type="hidden" name="cluster" value=cluster />
                                                <input type="hidden" name="namespace" value=namespace />
                                                <button type="submit" class="link">"Remove"</button>
                                            </ActionForm>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <Show when=move || admin>
                    <ActionForm action=map attr:class="inline">
                        <Csrf />
                        <input type="hidden" name="team_id" value=team_id />
                        <input type="text" name="cluster" placeholder="cluster" required />
                        <input type="text" name="namespace" placeholder="namespace" required />
                        <button type="submit">"Give namespace to this team"</button>
                    </ActionForm>
                    {outcome(map.value(), |_| "Saved".to_string())}
                </Show>
                <h2>"Environments"</h2>
                <p class="muted">"The promotion path, in order. Deployers promote into plain environments; protected ones need a team admin."</p>
                <pre data-testid="environments">{if env_text.is_empty() { "none".to_string() } else { env_text.clone() }}</pre>
                {can_envs.then(|| view! {
                    <ActionForm action=envs attr:class="stack">
                        <Csrf />
                        <input type="hidden" name="team_id" value=team_id />
                        <textarea name="lines" rows="4" placeholder="dev dev/vision-dev\nstaging staging/vision-staging\nprod prod/vision protected">{env_text.clone()}</textarea>
                        <button type="submit">"Save environments"</button>
                    </ActionForm>
                    {outcome(envs.value(), |_| "Saved".to_string())}
                })}
            }
        })}
        // The budget chart is made here, outside the part that waits for
        // the team (see BudgetChart), and the rest of the panel around it.
        <section class="panel" data-testid="budget">
            <h2>"GPU budget"</h2>
            {loaded_quietly(data, |page: TeamData| view! { <BudgetNow budget=page.budget /> })}
            <BudgetChart team=Signal::derive(id) />
            {loaded_quietly(data, move |page: TeamData| view! {
                <BudgetMonth budget=page.budget can_manage=page.can_manage_budget set=set_budget clear=clear_budget />
            })}
        </section>
        {loaded_quietly(data, move |page: TeamData| {
            let team_id = page.team.id;
            page.can_manage_namespaces.then(|| view! {
                <section class="panel danger-zone">
                    <ActionForm action=delete attr:class="inline">
                        <Csrf />
                        <input type="hidden" name="id" value=team_id />
                        <button type="submit" class="danger">"Delete team"</button>
                    </ActionForm>
                    {outcome(delete.value(), |_| "Deleted".to_string())}
                </section>
            })
        })}
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| {
            let text = |k: &str| p.get(k).filter(|v| !v.is_empty());
            AuditQuery {
                actor: text("actor"),
                team: text("team"),
                action: text("action"),
                from: text("from"),
                to: text("to"),
                limit: None,
            }
        })
    });
    let records = crate::loaded::load(move || query.get(), audit_log);
    let current = query.get_untracked();
    view! {
        <Title text="Audit log" />
        <h1>"Audit log"</h1>
        <form method="get" class="filters">
            <input type="text" name="actor" placeholder="user" value=current.actor.clone().unwrap_or_default() />
            <input type="text" name="team" placeholder="team" value=current.team.clone().unwrap_or_default() />
            <input type="text" name="action" placeholder="action, e.g. deployment.scale" value=current.action.clone().unwrap_or_default() />
            <label>"from" <input type="date" name="from" value=current.from.clone().unwrap_or_default() /></label>
            <label>"to" <input type="date" name="to" value=current.to.clone().unwrap_or_default() /></label>
            <button type="submit">"Filter"</button>
            <a href=move || format!("/api/v1/audit.csv?{}", query.get().to_query_string()) download="audit.csv">"Export CSV"</a>
        </form>
        {loaded(records, |list: Vec<AuditRecord>| {
            view! {
                <table class="grid small" data-testid="audit">
                    <thead>
                        <tr>
                            <th>"When (UTC)"</th>
                            <th>"Who"</th>
                            <th>"From"</th>
                            <th>"Action"</th>
                            <th>"Target"</th>
                            <th>"Before → after"</th>
                            <th>"Result"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.is_empty().then(|| view! { <tr><td colspan="7" class="muted empty">"No audit records match these filters: every sign-in and every change made through Gantry is recorded here."</td></tr> })}
                        {list.into_iter().map(|r| {
                            let target = [r.cluster.clone(), r.namespace.clone(), r.object.clone()].into_iter().flatten().collect::<Vec<_>>().join(" / ");
                            view! {
                                <tr class=format!("result-{}", r.result.as_str()) data-action=r.action.clone()>
                                    <td>{format::timestamp(r.at)}</td>
                                    <td>{r.actor.clone()}</td>
                                    <td>{r.source.clone().unwrap_or_default()}</td>
                                    <td class="mono">{r.action.clone()}</td>
                                    <td>{target}</td>
                                    <td>{format!("{} → {}", r.before.clone().unwrap_or_else(|| "—".into()), r.after.clone().unwrap_or_else(|| "—".into()))}</td>
                                    <td>{r.result.as_str()}{r.detail.clone().map(|d| format!(": {d}"))}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
        })}
    }
}
