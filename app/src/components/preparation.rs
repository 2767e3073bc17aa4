//! The banner that says what is still being prepared while Gantry already
//! serves (the demo's fleet starting, its browser bundle building): the same
//! steps the terminal shows, updated live, gone when all is done.

use gantry_domain::view::{Preparation, ResourceKind, format_duration};
use leptos::prelude::*;

use crate::api::fleet::preparation;
use crate::live::use_live;

#[component]
pub fn PreparationBanner() -> impl IntoView {
    let live = use_live();
    let data = crate::loaded::load(
        move || live.version(&[ResourceKind::Preparation, ResourceKind::Cluster]),
        |_| preparation(),
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move { data.await.ok().flatten().map(banner) })}
        </Transition>
    }
}

fn banner(preparation: Preparation) -> impl IntoView {
    let (done, total) = preparation.counts();
    let headline = match (&preparation.failed, preparation.current()) {
        (Some(failure), _) => format!("{}: {} failed", preparation.title, failure.title),
        (None, Some(step)) => format!(
            "{}: step {} of {total}, {}{}",
            preparation.title,
            done + 1,
            step.title,
            step.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        (None, None) => format!("{}: {done} of {total} steps done", preparation.title),
    };
    let remaining = (preparation.failed.is_none() && preparation.remaining_seconds > 0)
        .then(|| format!("About {} to go.", format_duration(preparation.remaining_seconds)));
    let failure = preparation.failed.clone().map(|f| {
        view! {
            <p data-testid="preparing-failure">
                <strong>{f.why}</strong>
                " "
                {f.hint}
                " Full log: "
                <code>{f.log}</code>
            </p>
        }
    });
    let class = if preparation.failed.is_some() { "panel warn preparing failed" } else { "panel preparing" };
    let steps = preparation
        .steps
        .into_iter()
        .map(|step| {
            let took = match step.state.as_str() {
                "done" => format_duration(step.seconds.round() as i64),
                "skipped" => "already done".to_string(),
                "running" => format!("{} so far", format_duration(step.seconds.round() as i64)),
                _ if step.estimate_seconds > 0.0 => {
                    format!("about {}", format_duration(step.estimate_seconds.round() as i64))
                }
                _ => String::new(),
            };
            view! {
                <li class=format!("step {}", step.state) data-state=step.state.clone()>
                    <span class="step-title">{step.title}</span>
                    " "
                    <span class="muted">{took}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class=class role="status" aria-live="polite" data-testid="preparing">
            <p>
                <strong>{headline}</strong>
                " "
                {remaining}
                " Pages fill in as each part comes up; there is no need to reload."
            </p>
            {failure}
            <details>
                <summary>"All steps"</summary>
                <ol class="preparation-steps">{steps}</ol>
            </details>
        </section>
    }
}
