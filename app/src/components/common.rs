//! Small pieces shared by pages.

use gantry_domain::view::{ConnectionState, JobStatus, RolloutState};
use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Session;
use crate::error::AppError;
use crate::loaded::Loaded;

/// The hidden CSRF field every state-changing form carries. It reads the
/// session synchronously (a Suspense here would be created inside other
/// resolved branches and upset the order in which hydration matches
/// server-rendered resources). Where the session is still loading when the
/// server renders the field, the token the server read for the page
/// ([`PageCsrf`](crate::PageCsrf)) fills it; in the browser, hydration keeps
/// the server's value until the session has loaded.
#[component]
pub fn Csrf() -> impl IntoView {
    let session = Session::use_context();
    let page = use_context::<crate::PageCsrf>();
    let token = move || {
        let loaded = session.me.get().and_then(Result::ok).flatten().map(|me| me.csrf);
        loaded.or_else(|| page.as_ref().map(|p| p.0.clone())).unwrap_or_default()
    };
    view! { <input type="hidden" name="csrf" value=token /> }
}

/// Whether a launch or scale would fit now, and what its GPUs would cost.
#[component]
pub fn FitNote(preview: gantry_domain::fit::FitPreview) -> impl IntoView {
    let cost = preview.cost.as_ref().map(|c| c.label());
    view! {
        <p class=if preview.fits { "fit ok" } else { "fit warn" } data-testid="fit">{preview.summary.clone()}</p>
        {cost.map(|c| view! { <p class="fit cost" data-testid="fit-cost">{format!("Cost at current prices: {c}")}</p> })}
    }
}

/// An error as the user should read it, with per-field messages.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    let signed_out = error.is_signed_out();
    let fields = error.fields.clone();
    let has_fields = !fields.is_empty();
    view! {
        <div class="error" role="alert" data-kind=error.kind.as_str()>
            <strong>{error.message.clone()}</strong>
            {error.detail.clone().map(|d| view! { <div class="detail">{d}</div> })}
            <Show when=move || has_fields>
                <ul>
                    {fields.iter().map(|f| view! { <li>{format!("{}: {}", f.field, f.message)}</li> }).collect_view()}
                </ul>
            </Show>
            <Show when=move || signed_out>
                <a href="/login">"Sign in"</a>
            </Show>
        </div>
    }
}

/// Renders a resource's value with `render`, or its error; keeps showing the
/// previous value while a live update re-fetches.
pub fn loaded<T, V, F>(resource: Loaded<T>, render: F) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(value) => render(value).into_any(),
                        Err(error) => view! { <ErrorNote error /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// Like [`loaded`] for a second part of a page whose first part already
/// shows the resource's error: an error here shows nothing.
pub fn loaded_quietly<T, V, F>(resource: Loaded<T>, render: F) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| ()>
            {move || {
                let render = render.clone();
                Suspend::new(async move { resource.await.ok().map(|value| render(value).into_any()) })
            }}
        </Transition>
    }
}

/// The outcome of a form's last submission.
pub fn outcome<T, S>(value: S, success: impl Fn(&T) -> String + Send + Sync + 'static) -> impl IntoView
where
    T: Send + Sync + 'static,
    S: With<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || {
        value.with(|v| match v {
            Some(Ok(done)) => view! { <div class="ok" role="status">{success(done)}</div> }.into_any(),
            Some(Err(error)) => view! { <ErrorNote error=error.clone() /> }.into_any(),
            None => ().into_any(),
        })
    }
}

#[component]
pub fn StateBadge(state: ConnectionState) -> impl IntoView {
    view! { <span class=format!("badge state-{}", state.label())>{state.label()}</span> }
}

#[component]
pub fn JobBadge(status: JobStatus) -> impl IntoView {
    view! { <span class=format!("badge job-{}", status.label())>{status.label()}</span> }
}

#[component]
pub fn RolloutBadge(state: RolloutState) -> impl IntoView {
    let (class, text) = match &state {
        RolloutState::Complete => ("badge ok", "complete".to_string()),
        RolloutState::Progressing(m) => ("badge warn", format!("rolling out: {m}")),
        RolloutState::Failed(m) => ("badge bad", format!("failed: {m}")),
    };
    view! { <span class=class>{text}</span> }
}

/// Allocated of total GPUs as a bar.
#[component]
pub fn GpuBar(allocated: i64, total: i64) -> impl IntoView {
    let percent = if total > 0 { (allocated as f64 / total as f64 * 100.0).clamp(0.0, 100.0) } else { 0.0 };
    view! {
        <span class="gpubar" title=format!("{allocated} of {total} GPUs allocated")>
            <span class="fill" style=format!("width: {percent:.0}%")></span>
            <span class="text">{format!("{allocated}/{total}")}</span>
        </span>
    }
}

/// A value fetched in the browser only, again whenever `source` changes;
/// None on the server and until the first answer. For previews that follow
/// the user's typing: kept out of server rendering (an Effect never runs
/// there), and an older answer never overwrites a newer one.
pub fn browser_fetch<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetch: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> ReadSignal<Option<T>>
where
    S: Send + Sync + 'static,
    T: Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let (value, set_value) = signal(None::<T>);
    #[cfg(feature = "hydrate")]
    {
        let latest = StoredValue::new(0u64);
        Effect::new(move |_| {
            let input = source();
            latest.update_value(|n| *n += 1);
            let ticket = latest.get_value();
            let request = fetch(input);
            leptos::task::spawn_local(async move {
                let answer = request.await;
                if latest.get_value() == ticket {
                    set_value.set(Some(answer));
                }
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (source, fetch, set_value);
    value
}
