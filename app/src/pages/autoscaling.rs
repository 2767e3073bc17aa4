//! A cluster's node autoscaling, on its page: the node pools with their
//! size against their limits, the nodes being made or removed, and the
//! autoscaler's recent events.

use gantry_domain::view::{Autoscaling, NodeClaimRow, NodePoolRow, Provisioning};
use leptos::prelude::*;
use leptos_router::components::A;

use crate::format;
use crate::pages::workloads::EventList;

fn or_dash(text: Option<String>) -> String {
    text.filter(|t| !t.is_empty()).unwrap_or_else(|| "—".into())
}

fn listed(items: &[String]) -> String {
    if items.is_empty() { "any".into() } else { items.join(", ") }
}

/// "16 / 32" against a limit, or the amount alone.
fn against(used: String, limit: Option<String>) -> String {
    match limit {
        Some(limit) => format!("{used} / {limit}"),
        None => used,
    }
}

#[component]
pub fn AutoscalingPanel(autoscaling: Autoscaling) -> impl IntoView {
    let Autoscaling { karpenter, refused, pools, claims, events } = autoscaling;
    let about = if karpenter {
        "Karpenter runs here: its NodePools, the nodes it is creating or removing (NodeClaims), and its recent decisions."
    } else {
        "Nodes grouped by their pool label. No node autoscaler that Gantry reads (Karpenter) is installed in this cluster."
    };
    view! {
        <section data-testid="autoscaling">
            <h2>"Node pools"</h2>
            <p class="muted">{about}</p>
            {refused.map(|why| view! {
                <p class="panel warn" data-testid="autoscaling-refused">
                    "This cluster runs Karpenter, but Gantry's credentials may not read its NodePools and NodeClaims (with the Helm chart: rbac.karpenter=true): " {why}
                </p>
            })}
            <div class="table-scroll">
                <table class="grid" data-testid="node-pools">
                    <thead>
                        <tr>
                            <th>"Pool"</th>
                            <th>"GPU model"</th>
                            <th>"Nodes"</th>
                            <th>"GPUs / limit"</th>
                            <th>"CPU / limit"</th>
                            <th>"Instance types"</th>
                            <th>"Capacity"</th>
                            <th>"Scales down"</th>
                            <th>"Status"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {pools.is_empty().then(|| view! {
                            <tr><td colspan="9" class="muted empty">"No node pools: Karpenter's NodePools, and nodes labelled with a pool (karpenter.sh/nodepool, GKE's, EKS's or AKS's pool label), are listed here."</td></tr>
                        })}
                        {pools.into_iter().map(pool_row).collect_view()}
                    </tbody>
                </table>
            </div>
            {karpenter.then(|| view! {
                <h2>"Nodes on their way in or out"</h2>
                <div class="table-scroll">
                    <table class="grid" data-testid="node-claims">
                        <thead>
                            <tr>
                                <th>"NodeClaim"</th>
                                <th>"Pool"</th>
                                <th>"Instance type"</th>
                                <th>"Capacity"</th>
                                <th>"GPUs"</th>
                                <th>"State"</th>
                                <th>"Node"</th>
                                <th>"Age"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {claims.is_empty().then(|| view! {
                                <tr><td colspan="8" class="muted empty">"No NodeClaims: Karpenter makes one for each node it launches, when pods wait that no node can take."</td></tr>
                            })}
                            {claims.into_iter().map(claim_row).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
            <h2>"Scale events"</h2>
            <EventList events />
        </section>
    }
}

fn pool_row(p: NodePoolRow) -> impl IntoView {
    let gpus = against(p.gpus.to_string(), p.gpu_limit.map(|l| l.to_string()));
    let cpu = against(format::cores(p.cpu_millis), p.cpu_limit_millis.map(format::cores));
    let status = match (p.ready, p.message.clone()) {
        (Some(true), _) => view! { <span class="badge node-ready">"Ready"</span> }.into_any(),
        (Some(false), message) => {
            view! { <span class="badge bad" title=message.clone().unwrap_or_default()>"NotReady"</span> " " {message} }
                .into_any()
        }
        (None, _) => view! { <span class="muted">{p.source.clone()}</span> }.into_any(),
    };
    view! {
        <tr data-pool=p.name.clone()>
            <td>{p.name.clone()}</td>
            <td>{or_dash(p.gpu_model.clone())}</td>
            <td data-testid="pool-nodes">{p.nodes}</td>
            <td data-testid="pool-gpus">{gpus}</td>
            <td>{cpu}</td>
            <td>{listed(&p.instance_types)}</td>
            <td>{listed(&p.capacity_types)}</td>
            <td>{or_dash(p.consolidation.clone())}</td>
            <td>{status}</td>
        </tr>
    }
}

fn claim_row(c: NodeClaimRow) -> impl IntoView {
    let node = c.node.clone().map(|node| {
        let href = format!("/clusters/{}/nodes/{node}", c.cluster);
        view! { <A href=href>{node}</A> }
    });
    let state_class = match c.state.as_str() {
        "Ready" => "badge node-ready",
        "Failed" => "badge bad",
        "Deleting" => "badge warn",
        _ => "badge",
    };
    view! {
        <tr data-claim=c.name.clone()>
            <td>{c.name.clone()}</td>
            <td>{or_dash(c.pool.clone())}</td>
            <td data-testid="claim-instance-type">{or_dash(c.instance_type.clone())}</td>
            <td>{or_dash(c.capacity_type.clone())}</td>
            <td>{c.gpus}</td>
            <td data-testid="claim-state">
                <span class=state_class>{c.state.clone()}</span>
                {c.message.clone().map(|m| view! { <div class="muted small">{m}</div> })}
            </td>
            <td>{node}{c.node.is_none().then_some("—")}</td>
            <td>{format::ago(c.created)}</td>
        </tr>
    }
}

/// What the autoscaler says of a pod that waits, in one line.
pub fn provisioning_line(p: &Provisioning) -> String {
    match (&p.node_claim, p.creating) {
        (Some(claim), _) => {
            let mut line = format!("A node is being created for it (NodeClaim {claim}");
            if let Some(instance) = &p.instance_type {
                line.push_str(&format!(", instance type {instance}"));
            }
            if let Some(capacity) = &p.capacity_type {
                line.push_str(&format!(", {capacity}"));
            }
            if let Some(state) = &p.state {
                line.push_str(&format!(", {}", state.to_lowercase()));
            }
            line.push(')');
            line
        }
        (None, true) => format!("Scaling up: {}", p.message),
        (None, false) => format!("The autoscaler makes no node for it: {}", p.message),
    }
}
