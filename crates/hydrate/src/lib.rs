//! The browser side: hydrates the server-rendered HTML so pages become
//! interactive.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Every page is a lazy route (its own wasm chunk with `--split`):
    // hydration must wait for the chunk of the page the server rendered, or
    // it meets markup it has no code for yet and panics.
    leptos::mount::hydrate_lazy(app::App);
}
