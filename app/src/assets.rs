//! The names pages link the site's wasm, its JS glue and its stylesheet by.
//! The server hashes the files' contents at start-up (`gantry_server::assets`)
//! and provides these names as context, so every release gets new names and
//! browsers may keep each one forever; a bundle built while the server runs
//! is picked up by the next page. Without that context (a server built
//! for tests, with no site), the fixed names cargo-leptos writes are used.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteAssets {
    /// `gantry.<hash>`: the JS glue is `/pkg/<this>.js`, the wasm `/pkg/<this>.wasm`.
    pub output_name: String,
    /// `/pkg/gantry.<hash>.css`
    pub stylesheet: String,
    /// Whether the site holds the wasm and its JS glue. While it does not
    /// (the demo serves pages before its bundle is built), pages are sent
    /// without the hydration scripts rather than with links that 404.
    pub hydrates: bool,
}

impl Default for SiteAssets {
    fn default() -> SiteAssets {
        SiteAssets { output_name: "gantry".into(), stylesheet: "/pkg/gantry.css".into(), hydrates: true }
    }
}
