//! A page's wasm chunks in one file.
//!
//! With `--split`, cargo-leptos cuts the wasm into a first module and
//! hundreds of chunks, and a lazy page needs dozens to hundreds of them
//! (the overview 199). Fetched one by one, each is compressed alone: the
//! overview's chunks are 219 KB brotli that way and 143 KB as one file, and
//! they are 199 requests. So each lazy page gets a bundle: its chunks (the
//! split manifest's list for it) in one file, brotli at the highest quality,
//! served at `/pkg/<hash>/pages/<page>.wasm`. cargo-leptos's loader is
//! served with a prelude ([`LOADER_PRELUDE`]) that fetches the first page's
//! bundle and answers that page's chunks from it. Chunks a bundle lacks, and
//! every chunk after the first page (client-side navigation), are fetched
//! one by one as before, so navigating never downloads a chunk twice. The
//! manifest handed to Leptos names the bundle, so a page that Leptos writes
//! preloads for preloads its bundle instead of each chunk; it does not write
//! them for every page load (the lazy view must have registered before the
//! head is written), which is why the prelude finds the page by itself.
//!
//! A bundle is `u32` (little-endian) length of a JSON index, the index
//! (`[[name, length], …]`), then the chunks' bytes in that order.
//!
//! Compressing a bundle at quality 11 takes about a second, so it is done
//! once per bundle and release, in the background from start-up, and by the
//! first request that needs it before then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::body::Bytes;
use axum::response::Response;
use http::{HeaderValue, header};

/// Added to cargo-leptos's split loader: where it fetched `./NAME.wasm`,
/// it calls `pageChunk`, which answers from the first page's bundle when it
/// holds the chunk and fetches the chunk alone otherwise. Part of the
/// bundle's hash.
pub const LOADER_PRELUDE: &str = r#"
// Added by Gantry's server (server/src/page_bundles.rs): the first page
// takes the chunks it needs from one file, pages/<page>.wasm; chunks the
// bundle lacks, and those of pages opened later, are fetched one by one.
// The loader asks for a page's chunks and then the page's own module in the
// same turn, so the first turn's asks name the page.
let firstPage; // a promise of the first page's chunks, once anything is asked
let firstAsks = [];
function pageChunk(path, base) {
  const name = path.slice(2, -".wasm".length);
  if (firstPage === undefined) {
    firstPage = Promise.resolve().then(() => {
      const page = firstAsks.find((asked) => asked.startsWith("split_"));
      firstAsks = null;
      if (!page) return new Map();
      const bundle = new URL(`./pages/${page.slice("split_".length)}.wasm`, base);
      return fetch(bundle).then(readPageBundle).catch(() => new Map());
    });
  }
  firstAsks?.push(name);
  return firstPage.then((chunks) => {
    const bytes = chunks.get(name);
    if (!bytes) return fetch(new URL(path, base));
    chunks.delete(name); // the loader keeps what it instantiated; a retry fetches
    return new Response(bytes, { headers: { "content-type": "application/wasm" } });
  });
}
async function readPageBundle(response) {
  if (!response.ok) return new Map();
  const bytes = await response.arrayBuffer();
  const indexLength = new DataView(bytes).getUint32(0, true);
  const index = JSON.parse(new TextDecoder().decode(new Uint8Array(bytes, 4, indexLength)));
  const chunks = new Map();
  let at = 4 + indexLength;
  for (const [name, length] of index) {
    chunks.set(name, new Uint8Array(bytes, at, length));
    at += length;
  }
  return chunks;
}
"#;

/// How the loader cargo-leptos generates fetches a chunk.
const FETCH_OPEN: &str = r#"fetch(new URL("./"#;
const FETCH_CLOSE: &str = r#".wasm", import.meta.url))"#;

/// The split loader with its chunk fetches going through `pageChunk`, or
/// None when it does not fetch chunks the way this expects (another
/// cargo-leptos): then pages preload each chunk as before. The loader's
/// one-line comments (each chunk's list of the pages that use it, half the
/// file and 2.7 of its 6.8 KB brotli) are left out.
pub fn patch_loader(loader: &str) -> Option<String> {
    let opens = loader.matches(FETCH_OPEN).count();
    if opens == 0 || opens != loader.matches(FETCH_CLOSE).count() {
        return None;
    }
    let mut patched = String::with_capacity(loader.len() + LOADER_PRELUDE.len());
    for line in loader.lines() {
        let comment = line.strip_prefix("/*").and_then(|rest| rest.strip_suffix("*/"));
        if comment.is_some_and(|inner| !inner.contains("*/")) {
            continue;
        }
        patched.push_str(
            &line.replace(FETCH_OPEN, r#"pageChunk("./"#).replace(FETCH_CLOSE, r#".wasm", import.meta.url)"#),
        );
        patched.push('\n');
    }
    Some(patched + LOADER_PRELUDE)
}

/// The bundle of `chunks` (name and bytes), in the format the prelude reads.
pub fn bundle(chunks: &[(String, Vec<u8>)]) -> Vec<u8> {
    let index: Vec<(&str, usize)> = chunks.iter().map(|(name, bytes)| (name.as_str(), bytes.len())).collect();
    let index = serde_json::to_vec(&index).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + index.len() + chunks.iter().map(|c| c.1.len()).sum::<usize>());
    out.extend_from_slice(&u32::try_from(index.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&index);
    for (_, bytes) in chunks {
        out.extend_from_slice(bytes);
    }
    out
}

fn brotli(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    // Writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &raw[..], &mut out, &params);
    out
}

/// A file made in memory, kept brotli-compressed only (a client that does
/// not take brotli, which no browser is, gets it decompressed).
#[derive(Debug)]
struct Made {
    content_type: &'static str,
    source: Source,
    compressed: OnceLock<Bytes>,
}

/// What a [`Made`] file is made from.
#[derive(Debug)]
enum Source {
    Loader(String),
    /// The chunk files, read when first needed.
    Bundle(Vec<PathBuf>),
}

impl Made {
    /// The file, compressed (made on the first call; a concurrent caller
    /// waits for it).
    fn compressed(&self) -> &Bytes {
        self.compressed.get_or_init(|| {
            let raw = match &self.source {
                Source::Loader(text) => text.clone().into_bytes(),
                Source::Bundle(paths) => {
                    let chunks: Vec<(String, Vec<u8>)> = paths
                        .iter()
                        .filter_map(|path| {
                            let name = path.file_stem()?.to_str()?.to_string();
                            Some((name, std::fs::read(path).ok()?))
                        })
                        .collect();
                    bundle(&chunks)
                }
            };
            brotli(&raw).into()
        })
    }
}

/// The patched loader and every lazy page's bundle, for one release.
#[derive(Debug)]
pub struct PageBundles {
    loader: Made,
    /// The loader's file name under the bundle's folder.
    loader_name: String,
    pages: HashMap<String, Made>,
}

impl PageBundles {
    /// Bundles for the pages of `manifest` (page → chunk names) in `pkg`,
    /// with the loader at `pkg/<loader>`; None when the loader is missing
    /// or not of the expected shape.
    pub fn read(pkg: &Path, loader: &str, manifest: &HashMap<String, Vec<String>>) -> Option<Arc<PageBundles>> {
        let patched = patch_loader(&std::fs::read_to_string(pkg.join(loader)).ok()?)?;
        let pages = manifest
            .iter()
            .map(|(page, chunks)| {
                let paths = chunks.iter().map(|chunk| pkg.join(format!("{chunk}.wasm"))).collect();
                (
                    page.clone(),
                    Made {
                        content_type: "application/octet-stream",
                        source: Source::Bundle(paths),
                        compressed: OnceLock::new(),
                    },
                )
            })
            .collect();
        let bundles = Arc::new(PageBundles {
            loader: Made {
                content_type: "text/javascript",
                source: Source::Loader(patched),
                compressed: OnceLock::new(),
            },
            loader_name: loader.to_string(),
            pages,
        });
        // Compress ahead of the first visits, one at a time, in the background.
        let ahead = Arc::downgrade(&bundles);
        std::thread::spawn(move || {
            let Some(bundles) = ahead.upgrade() else { return };
            bundles.loader.compressed();
            let pages: Vec<String> = bundles.pages.keys().cloned().collect();
            drop(bundles);
            for page in pages {
                // A newer release replaced this one: stop.
                let Some(bundles) = ahead.upgrade() else { return };
                if let Some(made) = bundles.pages.get(&page) {
                    made.compressed();
                }
            }
        });
        Some(bundles)
    }

    /// The name a page's bundle has under the bundle's folder, without
    /// `.wasm` (Leptos adds it when it writes the preload).
    pub fn bundle_name(page: &str) -> String {
        format!("pages/{page}")
    }

    /// The answer for `name` under the bundle's folder when it is one of the
    /// files made here (the loader or `pages/<page>.wasm`), compressed when
    /// the request accepts brotli.
    pub async fn answer(self: &Arc<Self>, name: &str, accepts_brotli: bool) -> Option<Response> {
        let page = match name.strip_prefix("pages/").and_then(|rest| rest.strip_suffix(".wasm")) {
            Some(page) if self.pages.contains_key(page) => Some(page.to_string()),
            Some(_) => return None,
            None if name == self.loader_name => None,
            None => return None,
        };
        let bundles = self.clone();
        let (content_type, body) = tokio::task::spawn_blocking(move || {
            let made = page.as_ref().map_or(&bundles.loader, |page| &bundles.pages[page]);
            let compressed = made.compressed().clone();
            let body = if accepts_brotli {
                compressed
            } else {
                let mut raw = Vec::new();
                brotli::BrotliDecompress(&mut &compressed[..], &mut raw).ok()?;
                raw.into()
            };
            Some((made.content_type, body))
        })
        .await
        .ok()??;
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if accepts_brotli {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADER: &str = r#"/* __a_route_view_1, __b_route_view_1 */
const src = fetch(new URL("./chunk_1.wasm", import.meta.url));
const first = fetch(new URL("./split___a_route_view_1.wasm", import.meta.url)); /* kept */
"#;

    #[test]
    fn the_loader_fetches_every_chunk_through_the_page_bundle() {
        let patched = patch_loader(LOADER).unwrap();
        assert!(!patched.contains("fetch(new URL(\"./"), "{patched}");
        assert!(patched.contains(r#"const src = pageChunk("./chunk_1.wasm", import.meta.url);"#), "{patched}");
        assert!(
            patched.contains(r#"const first = pageChunk("./split___a_route_view_1.wasm", import.meta.url);"#),
            "{patched}"
        );
        assert!(!patched.contains("__b_route_view_1"), "the comment listing a chunk's pages is left out: {patched}");
        assert!(patched.contains("/* kept */"), "a comment after code stays: {patched}");
        assert!(patched.ends_with(LOADER_PRELUDE));
        assert_eq!(patch_loader("export const x = 1;"), None, "a loader of another shape is left alone");
    }

    #[test]
    fn a_bundle_is_its_index_then_its_chunks() {
        let made = bundle(&[("chunk_1".into(), vec![1, 2, 3]), ("split_a".into(), vec![9])]);
        let length = u32::from_le_bytes(made[..4].try_into().unwrap()) as usize;
        let index: Vec<(String, usize)> = serde_json::from_slice(&made[4..4 + length]).unwrap();
        assert_eq!(index, [("chunk_1".to_string(), 3), ("split_a".to_string(), 1)]);
        assert_eq!(&made[4 + length..], &[1, 2, 3, 9]);
    }
}
