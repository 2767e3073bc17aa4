//! Server-side tables: the URL carries filter, sort and page, so a view can
//! be shared, and only one page of rows ever reaches the browser.

use gantry_domain::view::ListQuery;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The list query in the current URL.
pub fn use_list_query() -> Memo<ListQuery> {
    let params = use_query_map();
    Memo::new(move |_| {
        params.with(|p| {
            let text = |key: &str| p.get(key).filter(|v| !v.is_empty());
            ListQuery {
                q: text("q"),
                cluster: text("cluster"),
                namespace: text("namespace"),
                status: text("status"),
                node: text("node"),
                sort: text("sort"),
                desc: text("desc").is_some_and(|d| d == "true"),
                page: text("page").and_then(|v| v.parse().ok()),
                per_page: text("per_page").and_then(|v| v.parse().ok()),
            }
        })
    })
}

fn href(query: &ListQuery) -> String {
    let q = query.to_query_string();
    if q.is_empty() { "?".to_string() } else { format!("?{q}") }
}

/// A column header that sorts by `column`, flipping direction when it
/// already does.
#[component]
pub fn SortHeader(query: Memo<ListQuery>, column: &'static str, label: &'static str) -> impl IntoView {
    let link = move || {
        let current = query.get();
        let desc = current.sort.as_deref() == Some(column) && !current.desc;
        href(&ListQuery { sort: Some(column.to_string()), desc, page: None, ..current })
    };
    let marker = move || {
        let current = query.get();
        match (current.sort.as_deref() == Some(column), current.desc) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        }
    };
    view! {
        <th>
            <a href=link>{label}{marker}</a>
        </th>
    }
}

/// Previous/next links and the position in the list.
#[component]
pub fn Pager(query: Memo<ListQuery>, page: usize, pages: usize, total: usize) -> impl IntoView {
    let to = move |n: usize| href(&ListQuery { page: Some(n), ..query.get() });
    view! {
        <nav class="pager" aria-label="pages">
            <span>{format!("{total} in total · page {page} of {pages}")}</span>
            <Show when=move || { page > 1 }>
                <a href=move || to(page - 1) rel="prev">"← Previous"</a>
            </Show>
            <Show when=move || { page < pages }>
                <a href=move || to(page + 1) rel="next">"Next →"</a>
            </Show>
        </nav>
    }
}

/// A GET form for the text filter (and an optional status choice); it
/// submits to the same page, so the URL carries the filter.
#[component]
pub fn FilterBar(
    query: Memo<ListQuery>,
    #[prop(optional)] statuses: &'static [&'static str],
    /// Offer cluster and namespace filters (not on a page about one cluster).
    #[prop(default = true)]
    places: bool,
) -> impl IntoView {
    let current = query.get_untracked();
    let (cluster, namespace) =
        (current.cluster.clone().unwrap_or_default(), current.namespace.clone().unwrap_or_default());
    view! {
        <form method="get" class="filters">
            <input type="search" name="q" placeholder="Filter by name" value=current.q.clone().unwrap_or_default() />
            {places.then(|| view! {
                <input type="text" name="cluster" placeholder="cluster" value=cluster />
                <input type="text" name="namespace" placeholder="namespace" value=namespace />
            })}
            <Show when=move || !statuses.is_empty()>
                <select name="status">
                    <option value="">"any status"</option>
                    {statuses
                        .iter()
                        .map(|s| {
                            let selected = current.status.as_deref() == Some(*s);
                            view! { <option value=*s selected=selected>{*s}</option> }
                        })
                        .collect_view()}
                </select>
            </Show>
            <button type="submit">"Filter"</button>
        </form>
    }
}
