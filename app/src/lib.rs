//! Gantry's UI: one Leptos app rendered on the server and hydrated in the
//! browser. Pages read through server functions (`api`), which call the
//! service layer; nothing here decides who may do what.

#![recursion_limit = "512"]

pub mod api;
pub mod assets;
pub mod components;
pub mod error;
pub mod format;
pub mod live;
pub mod pages;
pub mod routes;

use gantry_domain::view::Me;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::error::AppError;

/// The HTML document around the app. The stylesheet and the hydration
/// scripts are linked by their content-hashed names when the server knows
/// them ([`assets::SiteAssets`]).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let assets = use_context::<assets::SiteAssets>().unwrap_or_default();
    let mut options = options;
    options.output_name = assets.output_name.clone().into();
    let hydration = assets.hydrates.then(move || view! { <HydrationScripts options /> });
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="stylesheet" id="gantry" href=assets.stylesheet />
                <link rel="icon" href="/favicon.ico" sizes="any" />
                {hydration}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Who is signed in, shared by every page.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: Resource<Result<Option<Me>, AppError>>,
}

impl Session {
    pub fn use_context() -> Session {
        expect_context::<Session>()
    }
}

/// The session's CSRF token as the server read it before rendering the page
/// (server side only): what a form's hidden field carries while
/// [`Session::me`] is still loading, which it may be for any part of a page
/// rendered outside a Suspense.
#[derive(Clone, Debug)]
pub struct PageCsrf(pub String);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me = Resource::new(|| (), |_| api::access::me());
    provide_context(Session { me });
    live::provide();
    // Marks the page once the browser has hydrated it (tests wait for this).
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|text: String| if text.is_empty() { "Gantry".to_string() } else { format!("{text} · Gantry") } />
        <Router>
            <components::layout::Layout>
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/") view=pages::overview::OverviewPage ssr=SsrMode::Async />
                    <Route path=path!("/clusters") view=pages::clusters::ClustersPage ssr=SsrMode::Async />
                    <Route path=path!("/clusters/:cluster") view=pages::clusters::ClusterPage ssr=SsrMode::Async />
                    <Route path=path!("/clusters/:cluster/nodes/:node") view=pages::clusters::NodePage ssr=SsrMode::Async />
                    <Route path=path!("/workloads") view=pages::workloads::WorkloadsPage ssr=SsrMode::Async />
                    <Route
                        path=path!("/clusters/:cluster/namespaces/:namespace/deployments/:name")
                        view=pages::deployment::DeploymentPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/pods") view=pages::workloads::PodsPage ssr=SsrMode::Async />
                    <Route path=path!("/jobs") view=pages::jobs::JobsPage ssr=SsrMode::Async />
                    <Route
                        path=path!("/clusters/:cluster/namespaces/:namespace/jobs/:name")
                        view=pages::jobs::JobPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/pending") view=pages::pending::PendingPage ssr=SsrMode::Async />
                    <Route path=path!("/quotas") view=pages::quotas::QuotasPage ssr=SsrMode::Async />
                    <Route path=path!("/launch/deployment") view=pages::launch::LaunchDeploymentPage ssr=SsrMode::Async />
                    <Route path=path!("/launch/job") view=pages::launch::LaunchJobPage ssr=SsrMode::Async />
                    <Route path=path!("/profile") view=pages::account::ProfilePage ssr=SsrMode::Async />
                    <Route path=path!("/tokens") view=pages::account::TokensPage ssr=SsrMode::Async />
                    <Route path=path!("/users") view=pages::admin::UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/teams") view=pages::admin::TeamsPage ssr=SsrMode::Async />
                    <Route path=path!("/teams/:id") view=pages::admin::TeamPage ssr=SsrMode::Async />
                    <Route path=path!("/audit") view=pages::admin::AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/prices") view=pages::costs::PricesPage ssr=SsrMode::Async />
                    <Route path=path!("/costs") view=pages::costs::CostsPage ssr=SsrMode::Async />
                </Routes>
            </components::layout::Layout>
        </Router>
    }
}
