//! Where pages find the site's bundle: its wasm, the JS glue, the chunks
//! split off per page, and the stylesheet. The server hashes the bundle's
//! contents at start-up (`gantry_server::assets`) and provides these names
//! as context: everything is linked under `/pkg/<hash>/`, so every release
//! gets new names, browsers may keep each file forever, and a bundle built
//! while the server runs is picked up by the next page. Without that
//! context (a server built for tests, with no site), the fixed names
//! cargo-leptos writes are used.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteAssets {
    /// The bundle's folder as the page links it, without the leading slash:
    /// `pkg/<hash>` (or `pkg`). Relative imports inside the bundle (the
    /// per-page chunks import `./gantry.js`) resolve in the same folder, so
    /// one release's files only ever load each other.
    pub pkg_dir: String,
    /// `/<pkg_dir>/gantry.css`
    pub stylesheet: String,
    /// Whether the site holds the wasm and its JS glue. While it does not
    /// (the demo serves pages before its bundle is built), pages are sent
    /// without the hydration scripts rather than with links that 404.
    pub hydrates: bool,
}

impl Default for SiteAssets {
    fn default() -> SiteAssets {
        SiteAssets { pkg_dir: "pkg".into(), stylesheet: "/pkg/gantry.css".into(), hydrates: true }
    }
}
