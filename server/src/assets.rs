//! The site's static files: content-hashed names, and how long browsers
//! may keep them.
//!
//! `cargo leptos build` writes the wasm, its JS glue and the stylesheet
//! under fixed names (`gantry.wasm`, `gantry.js`, `gantry.css`). At start-up
//! the server hashes their contents; pages link `gantry.<hash>.js`,
//! `gantry.<hash>.wasm` and `gantry.<hash>.css` ([`app::assets::SiteAssets`]),
//! and requests for those names are answered from the fixed files with
//! `Cache-Control: public, max-age=31536000, immutable`: a browser fetches
//! each once per release and never asks again. A name with another hash (a
//! page from before a restart) is a 404, never today's file under
//! yesterday's immutable name. Every other file under `/pkg` (wasm-bindgen's
//! snippets, whose names do not follow their content) is `no-cache`:
//! revalidated each time, 304 when unchanged. Files under `/assets` are
//! vendored ones whose names carry their version (`uplot-1.6.32.min.js`), so
//! they are immutable too.
//!
//! The names are re-read when the files change (their sizes and modification
//! times are looked at on each page and each `/pkg` request: three `stat`
//! calls), so a bundle built while the server runs (the demo starts its
//! dashboard before the bundle is built) is linked from the next page on,
//! with no restart.
//!
//! Hashing at start-up, rather than renaming at build time (cargo-leptos's
//! `hash-files`), keeps one site directory valid for any server binary:
//! cargo-leptos would leave the hashes in a file beside the binary, which
//! every copy of the binary (tests, containers) would then have to carry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

pub use app::assets::SiteAssets;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The hashed names of the site's files, and what each stands for.
#[derive(Clone, Debug, Default)]
pub struct HashedFiles {
    names: SiteAssets,
    /// `gantry.<hash>.js` → `gantry.js`, and so on.
    aliases: BTreeMap<String, String>,
    output_name: String,
}

/// FNV-1a, 64 bits: stable across builds and platforms, and plenty to
/// tell one release's file from another's.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

impl HashedFiles {
    /// Hashes `<pkg>/<output>.js`, `.wasm` and `.css`. The JS glue and the
    /// wasm share one hash of both (the hydration script names them by one
    /// stem). Files that are missing keep their fixed names.
    pub fn read(pkg: &Path, output_name: &str) -> HashedFiles {
        let read = |ext: &str| std::fs::read(pkg.join(format!("{output_name}.{ext}"))).ok();
        let mut files = HashedFiles { output_name: output_name.to_string(), ..HashedFiles::default() };
        files.names = SiteAssets {
            output_name: output_name.to_string(),
            stylesheet: format!("/pkg/{output_name}.css"),
            hydrates: false,
        };
        if let (Some(js), Some(wasm)) = (read("js"), read("wasm")) {
            let hash = format!("{:016x}", fnv1a(&[fnv1a(&js).to_le_bytes(), fnv1a(&wasm).to_le_bytes()].concat()));
            let stem = format!("{output_name}.{hash}");
            for ext in ["js", "wasm"] {
                files.aliases.insert(format!("{stem}.{ext}"), format!("{output_name}.{ext}"));
            }
            files.names.output_name = stem;
            files.names.hydrates = true;
        }
        if let Some(css) = read("css") {
            let name = format!("{output_name}.{:016x}.css", fnv1a(&css));
            files.names.stylesheet = format!("/pkg/{name}");
            files.aliases.insert(name, format!("{output_name}.css"));
        }
        files
    }

    /// The names pages link.
    pub fn names(&self) -> SiteAssets {
        self.names.clone()
    }

    /// Whether `name` has the shape of a hashed name of one of the files.
    fn looks_hashed(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(&format!("{}.", self.output_name)) else { return false };
        let Some((hash, ext)) = rest.split_once('.') else { return false };
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && ["js", "wasm", "css"].contains(&ext)
    }
}

/// The site's files as they are now: [`HashedFiles`], read again whenever
/// the files change on disk.
#[derive(Debug)]
pub struct SiteFiles {
    pkg: PathBuf,
    output_name: String,
    read: RwLock<(Stamp, Arc<HashedFiles>)>,
}

/// The size and modification time of each of the hashed files.
type Stamp = [Option<(u64, SystemTime)>; 3];

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
        ["js", "wasm", "css"].map(|ext| {
            let meta = std::fs::metadata(pkg.join(format!("{output_name}.{ext}"))).ok()?;
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

/// Serves hashed names from the fixed files and sets how long each answer
/// under `/pkg` and `/assets` may be kept. Runs before routing, so the file
/// service sees the fixed name.
pub async fn cache_control(State(site): State<Arc<SiteFiles>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let policy = if let Some(name) = path.strip_prefix("/pkg/") {
        let files = site.current();
        match files.aliases.get(name) {
            Some(real) => {
                let fixed = format!("/pkg/{real}");
                let Ok(uri) = fixed.parse() else { return StatusCode::NOT_FOUND.into_response() };
                *request.uri_mut() = uri;
                IMMUTABLE
            }
            None if files.looks_hashed(name) => {
                let mut gone =
                    (StatusCode::NOT_FOUND, "this file belongs to another release of Gantry; reload the page")
                        .into_response();
                gone.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return gone;
            }
            None => REVALIDATE,
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
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contents() {
        let dir = std::env::temp_dir().join(format!("gantry-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let none = HashedFiles::read(&dir, "gantry");
        assert_eq!(
            none.names(),
            SiteAssets { hydrates: false, ..SiteAssets::default() },
            "no site: the fixed names, and no hydration scripts"
        );
        std::fs::write(dir.join("gantry.js"), "js").unwrap();
        std::fs::write(dir.join("gantry.wasm"), "wasm").unwrap();
        std::fs::write(dir.join("gantry.css"), "css").unwrap();
        let first = HashedFiles::read(&dir, "gantry");
        assert!(first.names().output_name.starts_with("gantry.") && first.names().output_name.len() == 23);
        let alias = format!("{}.wasm", first.names().output_name);
        assert_eq!(first.aliases.get(&alias).map(String::as_str), Some("gantry.wasm"));
        assert!(first.names().stylesheet.starts_with("/pkg/gantry.") && first.names().stylesheet.ends_with(".css"));
        std::fs::write(dir.join("gantry.wasm"), "other wasm").unwrap();
        let second = HashedFiles::read(&dir, "gantry");
        assert_ne!(first.names().output_name, second.names().output_name, "a new wasm, a new name");
        assert_eq!(first.names().stylesheet, second.names().stylesheet, "the same stylesheet, the same name");
        assert!(second.looks_hashed(&alias), "the old name still looks like one, so it is refused");
        assert!(!second.looks_hashed("snippets/app-0123/js/chart.js"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
