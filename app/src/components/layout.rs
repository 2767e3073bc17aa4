//! The frame around every page: navigation, who is signed in, sign out.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;

use crate::Session;
use crate::api::access::Logout;
use crate::components::common::Csrf;
use crate::live::use_live;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let session = Session::use_context();
    let live = use_live();
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                "Gantry"
            </A>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match session.me.await {
                        Ok(Some(me)) => {
                            let audit = me.can.view_audit;
                            let users = me.can.manage_users;
                            view! {
                                <nav class="mainnav">
                                    <A href="/">"Overview"</A>
                                    <A href="/clusters">"Clusters"</A>
                                    <A href="/workloads">"Deployments"</A>
                                    <A href="/jobs">"Jobs"</A>
                                    <A href="/pods">"Pods"</A>
                                    <A href="/pending">"Pending"</A>
                                    <A href="/quotas">"Quotas"</A>
                                    <A href="/teams">"Teams"</A>
                                    <A href="/costs">"Costs"</A>
                                    <A href="/prices">"Prices"</A>
                                    <Show when=move || audit>
                                        <A href="/audit">"Audit"</A>
                                    </Show>
                                    <Show when=move || users>
                                        <A href="/users">"Users"</A>
                                    </Show>
                                </nav>
                                <div class="who">
                                    <span
                                        class="live-dot"
                                        class:on=move || live.connected.get()
                                        title=move || if live.connected.get() { "Live updates on" } else { "Live updates off" }
                                    ></span>
                                    <A href="/profile" attr:class="username">
                                        {me.username.clone()}
                                    </A>
                                    <A href="/tokens">"Tokens"</A>
                                    // A plain form post, JavaScript or not: signing out
                                    // changes who is signed in for every part of the page,
                                    // so the sign-in page it lands on is loaded afresh.
                                    <form method="post" action=Logout::url() class="inline">
                                        <Csrf />
                                        <button type="submit" class="link" data-testid="sign-out">
                                            "Sign out"
                                        </button>
                                    </form>
                                </div>
                            }
                                .into_any()
                        }
                        _ => {
                            send_to_sign_in();
                            view! { <div class="who"><A href="/login">"Sign in"</A></div> }.into_any()
                        }
                    }
                })}
            </Transition>
        </header>
        <main class="content">{children()}</main>
    }
}

/// Every page but sign-in needs a signed-in user: send anyone else to the
/// sign-in page, remembering where they wanted to go.
fn send_to_sign_in() {
    let location = leptos_router::hooks::use_location();
    let path = location.pathname.get_untracked();
    if path.starts_with("/login") {
        return;
    }
    let query = location.search.get_untracked();
    let wanted = if query.is_empty() { path } else { format!("{path}?{query}") };
    let target = format!("/login?next={}", gantry_domain::view::encode(&wanted));
    #[cfg(feature = "ssr")]
    leptos_axum::redirect(&target);
    #[cfg(feature = "hydrate")]
    crate::pages::reload_to(&target);
}
