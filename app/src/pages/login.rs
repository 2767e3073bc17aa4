use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::access::{Login, sign_in_options};
use crate::components::common::ErrorNote;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".to_string()));
    let changed = move || query.with(|q| q.get("changed").is_some());
    let reveal = RwSignal::new(false);
    let options = crate::loaded::load(|| (), |_| sign_in_options());
    Effect::new(move |_| {
        if let Some(Ok(())) = login.value().get() {
            // The same check as the server's redirect: only a path on this site.
            super::reload_to(gantry_domain::validate::redirect_target(&next()));
        }
    });
    view! {
        <Title text="Sign in" />
        <section class="login">
            <h1>"Sign in to Gantry"</h1>
            <Show when=changed>
                <p class="ok">"Your password was changed. Sign in with the new one."</p>
            </Show>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let options = options.await.unwrap_or_default();
                    let problem = options.problem.map(|problem| {
                        view! { <p class="error" role="alert" data-testid="sso-problem">{problem}</p> }
                    });
                    let provider = options.provider.map(|provider| {
                        let href = format!("/auth/sso/start?next={}", gantry_domain::view::encode(&next()));
                        view! {
                            <a class="button primary sso" rel="external" href=href data-testid="sso">
                                "Sign in with " {provider}
                            </a>
                            <p class="muted">{if options.local_passwords { "or with a Gantry password:" } else { "Passwords are kept for administrators (break-glass):" }}</p>
                        }
                    });
                    view! { {problem} {provider} }
                })}
            </Suspense>
            <ActionForm action=login attr:class="stack">
                <input type="hidden" name="next" value=next />
                <label>
                    "Username" <input type="text" name="username" autocomplete="username" required autofocus />
                </label>
                <label>
                    "Password"
                    <input
                        type=move || if reveal.get() { "text" } else { "password" }
                        name="password"
                        autocomplete="current-password"
                        required
                        data-testid="password"
                    />
                </label>
                <button type="button" class="link" data-testid="reveal" on:click=move |_| reveal.update(|r| *r = !*r)>
                    {move || if reveal.get() { "Hide password" } else { "Show password" }}
                </button>
                <button type="submit" disabled=move || login.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            {move || login.value().get().and_then(|r| r.err()).map(|error| view! { <ErrorNote error /> })}
        </section>
    }
}
