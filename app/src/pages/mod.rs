pub mod account;
pub mod admin;
pub mod autoscaling;
pub mod clusters;
pub mod costs;
pub mod deployment;
pub mod jobs;
pub mod launch;
pub mod login;
pub mod overview;
pub mod pending;
pub mod quotas;
pub mod workloads;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    crate::mark_hydrated();
    view! {
        <Title text="Not found" />
        <h1>"Not found"</h1>
        <p>"There is no page here. " <a href="/">"Go to the overview"</a></p>
    }
}

/// Loads the whole page again, so the signed-in state is read afresh.
pub fn reload_to(path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}
