//! The site's static files: content-hashed names, and how long browsers
//! may keep them.
//!
//! `cargo leptos build` writes the bundle under fixed names in `pkg/`: the
//! wasm, its JS glue (`gantry.wasm`, `gantry.js`), the stylesheet
//! (`gantry.css`), wasm-bindgen's snippets, and with `--split` the chunks
//! split off per page with their loader and manifest. At start-up the server
//! hashes the whole bundle; pages link it under `/pkg/<hash>/`
//! ([`app::assets::SiteAssets`]), and requests under that folder are answered
//! from `pkg/` with `Cache-Control: public, max-age=31536000, immutable`: a
//! browser fetches each file once per release and never asks again. One hash
//! for the whole folder, rather than one per file, because the files import
//! each other by relative names (a chunk imports `./gantry.js`, the glue its
//! snippets): under one folder, one release's files only ever load each
//! other. A folder with another hash (a page from before a restart) is a
//! 404, never today's file under yesterday's immutable name. The fixed names
//! themselves stay reachable, `no-cache` (revalidated, 304 when unchanged).
//! Files under `/assets` are vendored ones whose names carry their version
//! (`uplot-1.6.32.min.js`), so they are immutable too.
//!
//! Split bundles get one more file per lazy page under the hashed folder:
//! the page's chunks in one file, and the split loader served with a prelude
//! that reads it ([`crate::page_bundles`]), compressed against the first
//! wasm for browsers that have it; pages preload neither.
//!
//! The bundle is read again when it changes (the sizes and modification
//! times of the glue, the wasm, the stylesheet and the split manifest are
//! looked at on each page and each `/pkg` request: four `stat` calls), so a
//! bundle built while the server runs (the demo starts its dashboard before
//! the bundle is built) is linked from the next page on, with no restart.
//!
//! Hashing at start-up, rather than renaming at build time (cargo-leptos's
//! `hash-files`), keeps one site directory valid for any server binary:
//! cargo-leptos would leave the hashes in a file beside the binary, which
//! every copy of the binary (tests, containers) would then have to carry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

pub use app::assets::SiteAssets;
use leptos::WasmSplitManifest;
use leptos::prelude::ArcStoredValue;

use crate::page_bundles::{LOADER_PRELUDE, PageBundles};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
/// cargo-leptos's manifest of the chunks each lazy page needs (`--split`).
const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";
/// The name cargo-leptos gives the split runtime's JS (fixed, beside the
/// chunks).
const SPLIT_LOADER: &str = "__wasm_split.______________________.js";

/// The bundle's hash and the names pages link it by.
#[derive(Clone, Debug, Default)]
pub struct HashedFiles {
    names: SiteAssets,
    /// The folder name under `/pkg` that stands for `pkg/` itself.
    hash: Option<String>,
    /// The split manifest under the bundle's folder, when it was built with
    /// `--split`: for each lazy page, the chunks the page preloads. Leptos
    /// would read it once per process from a fixed path; read here again
    /// with each new bundle, and given to each page render as it is.
    split: Option<WasmSplitManifest>,
    /// Each lazy page's chunks in one file, and the loader that reads them
    /// ([`crate::page_bundles`]); None unless split.
    bundles: Option<Arc<PageBundles>>,
}

/// FNV-1a, 64 bits: stable across builds and platforms, and plenty to
/// tell one release's bundle from another's.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Every file of the bundle under `dir`, by path relative to it, in a fixed
/// order. The `.br` and `.gz` twins follow their originals and are left out.
fn bundle_files(dir: &Path, relative: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir.join(relative)) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => bundle_files(dir, &path, files),
            Ok(kind) if kind.is_file() && !matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz")) => {
                files.push(path)
            }
            _ => {}
        }
    }
}

/// Whether `pkg` holds the bundle's wasm and its JS glue, without which
/// pages carry no hydration scripts.
pub fn has_bundle(pkg: &Path, output_name: &str) -> bool {
    ["js", "wasm"].iter().all(|ext| pkg.join(format!("{output_name}.{ext}")).is_file())
}

impl HashedFiles {
    /// Hashes every file of the bundle in `pkg` (names and contents). While
    /// the wasm or its JS glue is missing, pages link the fixed names and
    /// carry no hydration scripts.
    pub fn read(pkg: &Path, output_name: &str) -> HashedFiles {
        let mut files = HashedFiles {
            names: SiteAssets {
                hydrates: false,
                stylesheet: format!("/pkg/{output_name}.css"),
                ..SiteAssets::default()
            },
            hash: None,
            split: None,
            bundles: None,
        };
        if !has_bundle(pkg, output_name) {
            return files;
        }
        let mut paths = Vec::new();
        bundle_files(pkg, Path::new(""), &mut paths);
        let hash = paths.iter().fold(FNV_OFFSET, |hash, path| {
            let hash = fnv1a(hash, path.to_string_lossy().as_bytes());
            fnv1a(hash, &std::fs::read(pkg.join(path)).unwrap_or_default())
        });
        let chunks = std::fs::read(pkg.join(SPLIT_MANIFEST))
            .ok()
            .and_then(|text| serde_json::from_slice::<HashMap<String, Vec<String>>>(&text).ok());
        files.bundles = chunks
            .as_ref()
            .and_then(|chunks| PageBundles::read(pkg, SPLIT_LOADER, &format!("{output_name}.wasm"), chunks));
        // The loader is served changed: the change is part of the release.
        let hash = if files.bundles.is_some() { fnv1a(hash, LOADER_PRELUDE.as_bytes()) } else { hash };
        let hash = format!("{hash:016x}");
        files.split = chunks.map(|chunks| {
            // With bundles, a page preloads none of its chunks: the loader
            // fetches its bundle once the first wasm has arrived, so that
            // the bundle can come compressed against it (page_bundles).
            let preloads = if files.bundles.is_some() {
                chunks.into_keys().map(|page| (page, Vec::new())).collect()
            } else {
                chunks
            };
            WasmSplitManifest(ArcStoredValue::new((format!("/pkg/{hash}"), preloads, SPLIT_LOADER.into())))
        });
        files.names = SiteAssets {
            pkg_dir: format!("pkg/{hash}"),
            stylesheet: format!("/pkg/{hash}/{output_name}.css"),
            hydrates: true,
        };
        files.hash = Some(hash);
        files
    }

    /// The names pages link.
    pub fn names(&self) -> SiteAssets {
        self.names.clone()
    }

    /// The chunks of each lazy page, for its preloads; None unless split.
    pub fn split_manifest(&self) -> Option<WasmSplitManifest> {
        self.split.clone()
    }
}

/// Whether `folder` has the shape of a bundle's hash.
fn looks_hashed(folder: &str) -> bool {
    folder.len() == 16 && folder.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The site's files as they are now: [`HashedFiles`], read again whenever
/// the bundle changes on disk.
#[derive(Debug)]
pub struct SiteFiles {
    pkg: PathBuf,
    output_name: String,
    read: RwLock<(Stamp, Arc<HashedFiles>)>,
}

/// The size and modification time of the files a new build rewrites.
type Stamp = [Option<(u64, SystemTime)>; 4];

impl SiteFiles {
    pub fn new(pkg: &Path, output_name: &str) -> SiteFiles {
        let stamp = Self::stamp(pkg, output_name);
        SiteFiles {
            pkg: pkg.to_path_buf(),
            output_name: output_name.to_string(),
            read: RwLock::new((stamp, Arc::new(HashedFiles::read(pkg, output_name)))),
        }
    }

    fn stamp(pkg: &Path, output_name: &str) -> Stamp {
        [
            format!("{output_name}.js"),
            format!("{output_name}.wasm"),
            format!("{output_name}.css"),
            SPLIT_MANIFEST.into(),
        ]
        .map(|name| {
            let meta = std::fs::metadata(pkg.join(name)).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
    }

    /// The files as they are now (read again if they changed since last asked).
    pub fn current(&self) -> Arc<HashedFiles> {
        let stamp = Self::stamp(&self.pkg, &self.output_name);
        if let Ok(read) = self.read.read()
            && read.0 == stamp
        {
            return read.1.clone();
        }
        let files = Arc::new(HashedFiles::read(&self.pkg, &self.output_name));
        if let Ok(mut read) = self.read.write() {
            *read = (stamp, files.clone());
        }
        files
    }
}

/// Serves the bundle's hashed folder from the fixed files and sets how long
/// each answer under `/pkg` and `/assets` may be kept. Runs before routing,
/// so the file service sees the fixed name.
pub async fn cache_control(State(site): State<Arc<SiteFiles>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    // The first wasm, which page bundles are compressed against.
    let mut dictionary = None;
    let policy = if let Some(name) = path.strip_prefix("/pkg/") {
        let files = site.current();
        match name.split_once('/') {
            Some((folder, rest)) if files.hash.as_deref() == Some(folder) => {
                if let Some(bundles) = &files.bundles {
                    if let Some(mut made) = bundles.answer(rest, request.headers()).await {
                        made.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
                        return made;
                    }
                    dictionary = bundles.use_as_dictionary(&format!("/pkg/{folder}"), rest);
                }
                let fixed = format!("/pkg/{rest}");
                let Ok(uri) = fixed.parse() else { return StatusCode::NOT_FOUND.into_response() };
                *request.uri_mut() = uri;
                IMMUTABLE
            }
            Some((folder, _)) if looks_hashed(folder) => {
                let mut gone =
                    (StatusCode::NOT_FOUND, "this file belongs to another release of Gantry; reload the page")
                        .into_response();
                gone.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return gone;
            }
            _ => REVALIDATE,
        }
    } else if path.starts_with("/assets/") {
        IMMUTABLE
    } else {
        return next.run(request).await;
    };
    let mut response = next.run(request).await;
    let kept = if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        policy
    } else {
        "no-store"
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(kept));
    if let Some(dictionary) = dictionary
        && response.status().is_success()
    {
        response.headers_mut().insert("use-as-dictionary", dictionary);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use leptos::prelude::ReadValue;

    #[test]
    fn the_folder_name_follows_every_file_of_the_bundle() {
        let dir = std::env::temp_dir().join(format!("gantry-assets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("snippets/app-1")).unwrap();
        let none = HashedFiles::read(&dir, "gantry");
        assert_eq!(
            none.names(),
            SiteAssets { hydrates: false, ..SiteAssets::default() },
            "no site: the fixed names, and no hydration scripts"
        );
        std::fs::write(dir.join("gantry.js"), "js").unwrap();
        std::fs::write(dir.join("gantry.wasm"), "wasm").unwrap();
        std::fs::write(dir.join("gantry.css"), "css").unwrap();
        std::fs::write(dir.join("snippets/app-1/chart.js"), "chart").unwrap();
        let first = HashedFiles::read(&dir, "gantry");
        let hash = first.hash.clone().unwrap();
        assert!(looks_hashed(&hash), "{hash}");
        assert_eq!(first.names().pkg_dir, format!("pkg/{hash}"));
        assert_eq!(first.names().stylesheet, format!("/pkg/{hash}/gantry.css"));
        assert!(first.split_manifest().is_none(), "not split: nothing to preload");

        std::fs::write(dir.join("gantry.wasm.br"), "compressed twin").unwrap();
        assert_eq!(HashedFiles::read(&dir, "gantry").hash, first.hash, "the twins follow their originals");
        std::fs::write(dir.join("snippets/app-1/chart.js"), "another chart").unwrap();
        let second = HashedFiles::read(&dir, "gantry");
        assert_ne!(second.hash, first.hash, "any file of the bundle changed, a new folder");

        std::fs::write(dir.join(SPLIT_MANIFEST), r#"{"login_route": ["chunk_1", "shared_2"]}"#).unwrap();
        let split = HashedFiles::read(&dir, "gantry");
        let manifest = split.split_manifest().unwrap().0.read_value().clone();
        assert_eq!(manifest.1["login_route"], ["chunk_1", "shared_2"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
