//! The signed-in user's own pages: profile and password, API tokens.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::Session;
use crate::api::access::{ChangePassword, CreateToken, RevokeToken, my_tokens};
use crate::components::common::{Csrf, ErrorNote, loaded, outcome};
use crate::format;
use gantry_domain::records::TokenRecord;

#[component]
pub fn ProfilePage() -> impl IntoView {
    let session = Session::use_context();
    let change = ServerAction::<ChangePassword>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            super::reload_to("/login?changed=1");
        }
    });
    view! {
        <Title text="Profile" />
        <h1>"Profile"</h1>
        {loaded(session.me, move |me| match me {
            None => view! { <ErrorNote error=crate::error::AppError::new(crate::error::ErrorKind::Unauthenticated, "sign in to continue") /> }.into_any(),
            Some(me) => view! {
                <dl class="facts">
                    <dt>"Username"</dt>
                    <dd>{me.username.clone()}</dd>
                    <dt>"Global admin"</dt>
                    <dd>{if me.global_admin { "yes" } else { "no" }}</dd>
                    <dt>"Teams"</dt>
                    <dd data-testid="my-teams">
                        {if me.teams.is_empty() {
                            "none".to_string()
                        } else {
                            me.teams.iter().map(|t| format!("{} ({})", t.team, t.role.label())).collect::<Vec<_>>().join(", ")
                        }}
                    </dd>
                </dl>
            }.into_any(),
        })}
        <section class="panel">
            <h2>"Change password"</h2>
            <p class="muted">"At least 12 characters. Every session of yours ends, and you sign in again."</p>
            <ActionForm action=change attr:class="stack">
                <Csrf />
                <label>"Current password" <input type="password" name="current" autocomplete="current-password" required /></label>
                <label>"New password" <input type="password" name="new" autocomplete="new-password" minlength="12" required /></label>
                <label>"New password again" <input type="password" name="confirm" autocomplete="new-password" minlength="12" required /></label>
                <button type="submit">"Change password"</button>
            </ActionForm>
            {move || change.value().get().and_then(|r| r.err()).map(|error| view! { <ErrorNote error /> })}
        </section>
    }
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = crate::loaded::load(move || (create.version().get(), revoke.version().get()), |_| my_tokens());
    view! {
        <Title text="API tokens" />
        <h1>"API tokens"</h1>
        <p class="muted">
            "Tokens let CI/CD call Gantry's API as you, with at most your rights: "
            <code>"curl -H 'Authorization: Bearer gantry_…' /api/v1/me"</code>
            ". A token is shown once; Gantry keeps only its hash."
        </p>
        <section class="panel">
            <h2>"New token"</h2>
            <ActionForm action=create attr:class="stack">
                <Csrf />
                <label>"Name" <input type="text" name="name" required placeholder="ci-deploy" /></label>
                <label>
                    "Most it may do"
                    <select name="max_role">
                        <option value="">"everything my roles allow"</option>
                        <option value="viewer">"only look (viewer)"</option>
                        <option value="deployer">"deploy (deployer)"</option>
                        <option value="team_admin">"team admin"</option>
                    </select>
                </label>
                <label>"Expires in days (empty: never)" <input type="number" name="expires_in_days" min="1" value="90" /></label>
                <label class="check"><input type="checkbox" name="admin" value="true" /> "Keep global admin rights (admins only)"</label>
                <button type="submit">"Create token"</button>
            </ActionForm>
            {outcome(create.value(), |t: &crate::api::access::NewTokenView| format!("Token {} created. Copy it now, it is not shown again: {}", t.name, t.secret))}
        </section>
        {loaded(tokens, move |list: Vec<TokenRecord>| {
            view! {
                <table class="grid" data-testid="tokens">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Starts with"</th>
                            <th>"Rights"</th>
                            <th>"Created"</th>
                            <th>"Expires"</th>
                            <th>"Last used"</th>
                            <th>"State"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.is_empty().then(|| view! { <tr><td colspan="8" class="muted empty">"No API tokens yet: create one above for a script or a CI/CD pipeline."</td></tr> })}
                        {list
                            .into_iter()
                            .map(|t| {
                                let active = t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > format::now_ms());
                                view! {
                                    <tr data-token=t.name.clone()>
                                        <td>{t.name.clone()}</td>
                                        <td class="mono">{format!("{}…", t.prefix)}</td>
                                        <td>{format!("{}{}", t.max_role.as_str(), if t.admin { " + admin" } else { "" })}</td>
                                        <td>{format::timestamp(t.created_at)}</td>
                                        <td>{t.expires_at.map(format::timestamp).unwrap_or_else(|| "never".into())}</td>
                                        <td>{t.last_used_at.map(format::timestamp).unwrap_or_else(|| "never".into())}</td>
                                        <td>{if t.revoked_at.is_some() { "revoked" } else if active { "active" } else { "expired" }}</td>
                                        <td>
                                            <Show when=move || t.revoked_at.is_none()>
                                                <ActionForm action=revoke attr:class="inline">
                                                    <Csrf />
                                                    <input type="hidden" name="id" value=t.id />
                                                    <button type="submit" class="danger">"Revoke"</button>
                                                </ActionForm>
                                            </Show>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
        })}
    }
}
