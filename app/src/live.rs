//! Live updates: the server streams "something of kind K changed" over
//! Server-Sent Events (`/api/v1/events`), already filtered to what this user
//! may see. Pages read [`Live::version`] for the kinds they show, so their
//! resources re-fetch on a change and the page updates without a reload.

use gantry_domain::view::ResourceKind;
use leptos::prelude::*;

/// One counter per kind: sized by the list, so a new kind cannot index past it.
const KINDS: usize = ResourceKind::ALL.len();

fn index(kind: ResourceKind) -> usize {
    ResourceKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

#[derive(Clone, Copy)]
pub struct Live {
    counters: RwSignal<[u64; KINDS]>,
    /// True while the stream is connected (shown in the header).
    pub connected: RwSignal<bool>,
}

impl Live {
    /// A number that changes whenever any of `kinds` changes.
    pub fn version(&self, kinds: &[ResourceKind]) -> u64 {
        let counters = self.counters.get();
        kinds.iter().map(|k| counters[index(*k)]).sum()
    }

    pub fn bump(&self, kinds: &[ResourceKind]) {
        self.counters.update(|c| {
            for kind in kinds {
                c[index(*kind)] += 1;
            }
        });
    }
}

pub fn use_live() -> Live {
    expect_context::<Live>()
}

/// The message the server sends on each change.
#[derive(serde::Deserialize)]
pub struct ChangeMessage {
    pub kinds: Vec<ResourceKind>,
}

pub fn provide() {
    let live = Live { counters: RwSignal::new([0; KINDS]), connected: RwSignal::new(false) };
    provide_context(live);
    // Only signed-in users have a stream to follow.
    #[cfg(feature = "hydrate")]
    {
        let session = crate::Session::use_context();
        Effect::new(move |started: Option<bool>| {
            if started == Some(true) {
                return true;
            }
            let signed_in = matches!(session.me.get(), Some(Ok(Some(_))));
            if signed_in {
                connect(live);
            }
            signed_in
        });
    }
}

#[cfg(feature = "hydrate")]
fn connect(live: Live) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let Ok(source) = web_sys::EventSource::new("/api/v1/events") else { return };
    let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        let message =
            event.data().as_string().and_then(|text| serde_json::from_slice::<ChangeMessage>(text.as_bytes()).ok());
        if let Some(message) = message {
            live.bump(&message.kinds);
        }
    });
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| live.connected.set(true));
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| live.connected.set(false));
    let _ = source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The stream lives as long as the page; EventSource reconnects by itself.
    on_change.forget();
    on_open.forget();
    on_error.forget();
    std::mem::forget(source);
}
