//! The names pages link the site's wasm, its JS glue and its stylesheet by.
//! The server hashes the files' contents at start-up (`gantry_server::assets`)
//! and provides these names as context, so every release gets new names and
//! browsers may keep each one forever. Without that context (a server built
//! for tests, with no site), the fixed names cargo-leptos writes are used.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteAssets {
    /// `gantry.<hash>`: the JS glue is `/pkg/<this>.js`, the wasm `/pkg/<this>.wasm`.
    pub output_name: String,
    /// `/pkg/gantry.<hash>.css`
    pub stylesheet: String,
}

impl Default for SiteAssets {
    fn default() -> SiteAssets {
        SiteAssets { output_name: "gantry".into(), stylesheet: "/pkg/gantry.css".into() }
    }
}
