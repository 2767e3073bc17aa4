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

/// Room for the wasm splitter to give each page's chunks their own data.
///
/// cargo-leptos's splitter moves each constant (a page's text, its HTML
/// templates, its tables) into the chunk whose code alone uses it, and lays
/// them out again chunk by chunk inside the read-only data's address range.
/// That layout needs a little more room than the linker's (alignment, and
/// constants that overlap but land in different chunks); without it the
/// splitter keeps every constant in the first wasm, every page's included
/// (about 34 KB brotli more on every first load, measured). This block is in
/// the linker's range but used by no code, so the splitter drops it: it
/// reaches no browser. `scripts/build-site.sh` fails if it ever does, which
/// is how a splitter that fell back again shows.
#[used]
static SPLIT_DATA_SLACK: [u8; 8192] = [0xA5; 8192];
