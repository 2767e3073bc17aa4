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
pub mod loaded;
pub mod pages;
pub mod routes;

use gantry_domain::view::Me;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, lazy_route};
use leptos_router::{SsrMode, path};

/// The HTML document around the app. The stylesheet and the hydration
/// scripts are linked by their content-hashed names when the server knows
/// them ([`assets::SiteAssets`]).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let assets = use_context::<assets::SiteAssets>().unwrap_or_default();
    let mut options = options;
    options.site_pkg_dir = assets.pkg_dir.clone().into();
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
    pub me: loaded::Loaded<Option<Me>>,
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

/// Every page is a lazy route. Built with `cargo leptos build --split`, each
/// page's code (its view, its server-function calls, the decoding of what they
/// return) is a wasm chunk of its own, fetched when the page is first shown
/// (or preloaded with the page that the server renders), so the first page
/// loads the framework and itself, not all twenty-odd pages. Built without
/// `--split` it is all one wasm, as before.
macro_rules! lazy_pages {
    ($($route:ident => $page:path),* $(,)?) => {
        $(
            #[derive(Debug)]
            pub struct $route;

            #[lazy_route]
            impl LazyRoute for $route {
                fn data() -> Self {
                    $route
                }

                fn view(this: Self) -> AnyView {
                    let _ = this;
                    mark_hydrated();
                    $page().into_any()
                }
            }
        )*
    };
}

lazy_pages! {
    LoginRoute => pages::login::LoginPage,
    OverviewRoute => pages::overview::OverviewPage,
    ClustersRoute => pages::clusters::ClustersPage,
    ClusterRoute => pages::clusters::ClusterPage,
    NodeRoute => pages::clusters::NodePage,
    WorkloadsRoute => pages::workloads::WorkloadsPage,
    DeploymentRoute => pages::deployment::DeploymentPage,
    PodsRoute => pages::workloads::PodsPage,
    JobsRoute => pages::jobs::JobsPage,
    JobRoute => pages::jobs::JobPage,
    PendingRoute => pages::pending::PendingPage,
    QuotasRoute => pages::quotas::QuotasPage,
    LaunchDeploymentRoute => pages::launch::LaunchDeploymentPage,
    LaunchJobRoute => pages::launch::LaunchJobPage,
    ProfileRoute => pages::account::ProfilePage,
    TokensRoute => pages::account::TokensPage,
    UsersRoute => pages::admin::UsersPage,
    TeamsRoute => pages::admin::TeamsPage,
    TeamRoute => pages::admin::TeamPage,
    AuditRoute => pages::admin::AuditPage,
    PricesRoute => pages::costs::PricesPage,
    CostsRoute => pages::costs::CostsPage,
}

/// Marks `<body data-hydrated="true">` once the page's own view has hydrated;
/// the browser tests wait for it before they click. Each page route calls it
/// (and the not-found page), not `App`: a lazy page hydrates only once its
/// chunk has arrived, after the layout around it, so a mark set by `App` could
/// come before the page's forms listened, and a click then posted the form
/// without JavaScript. The effect runs after the page's view is built, and the
/// next animation frame after the tasks that hydrate its Suspense blocks from
/// the server's data.
pub fn mark_hydrated() {
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        request_animation_frame(|| {
            if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        });
    });
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me = loaded::load(|| (), |_| api::access::me());
    provide_context(Session { me });
    live::provide();

    view! {
        <Title formatter=|text: String| if text.is_empty() { "Gantry".to_string() } else { format!("{text} · Gantry") } />
        <Router>
            <components::layout::Layout>
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=path!("/login") view={Lazy::<LoginRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/") view={Lazy::<OverviewRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/clusters") view={Lazy::<ClustersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/clusters/:cluster") view={Lazy::<ClusterRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/clusters/:cluster/nodes/:node") view={Lazy::<NodeRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/workloads") view={Lazy::<WorkloadsRoute>::new()} ssr=SsrMode::Async />
                    <Route
                        path=path!("/clusters/:cluster/namespaces/:namespace/deployments/:name")
                        view={Lazy::<DeploymentRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/pods") view={Lazy::<PodsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/jobs") view={Lazy::<JobsRoute>::new()} ssr=SsrMode::Async />
                    <Route
                        path=path!("/clusters/:cluster/namespaces/:namespace/jobs/:name")
                        view={Lazy::<JobRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/pending") view={Lazy::<PendingRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/quotas") view={Lazy::<QuotasRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/launch/deployment") view={Lazy::<LaunchDeploymentRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/launch/job") view={Lazy::<LaunchJobRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/profile") view={Lazy::<ProfileRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/tokens") view={Lazy::<TokensRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/users") view={Lazy::<UsersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/teams") view={Lazy::<TeamsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/teams/:id") view={Lazy::<TeamRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/prices") view={Lazy::<PricesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/costs") view={Lazy::<CostsRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </components::layout::Layout>
        </Router>
    }
}
