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
//! manifest handed to Leptos lists no chunks for a page, so pages preload
//! neither chunks nor bundles; the prelude finds the page by itself.
//!
//! A bundle is `u32` (little-endian) length of a JSON index, the index
//! (`[[name, length], …]`), then the chunks' bytes in that order.
//!
//! Each bundle is also compressed against the first wasm
//! (`<output-name>.wasm`), Compression Dictionary Transport (RFC 9842):
//! the first wasm is served with `Use-As-Dictionary` matching the release's
//! `pages/*`, so a browser that has it (Chromium) asks for the page's bundle
//! with `Available-Dictionary: :<its SHA-256>:` and `dcb` in
//! `Accept-Encoding`, and gets it as `Content-Encoding: dcb` (a header of
//! the dictionary's hash, then brotli with the first wasm as a prefix
//! dictionary): the framework code the page's chunks repeat from the first
//! wasm costs almost nothing (the overview's bundle about 13 KB less). This
//! keeps the first wasm one file, cached once per release; only the bundle
//! has to come after it (the prelude asks for it once the first wasm is
//! running, and pages do not preload bundles). Other browsers get brotli.
//!
//! Compressing a bundle at quality 11 takes one to two seconds, so it is
//! done once per bundle, coding and release: against the dictionary in the
//! background from start-up (the way Chromium asks for it), brotli alone
//! when first asked for, and by the first request that needs either before
//! then.

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

/// `raw` compressed with brotli at the highest quality, against `dictionary`
/// as a prefix (what precedes the stream; empty for none).
fn brotli(raw: &[u8], dictionary: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    // Reading a slice and writing into a Vec cannot fail.
    let _ = brotli::enc::BrotliCompressCustomIoCustomDict(
        &mut brotli::IoReaderWrapper(&mut &raw[..]),
        &mut brotli::IoWriterWrapper(&mut out),
        &mut [0; 4096],
        &mut [0; 4096],
        &params,
        brotli::enc::StandardAlloc::default(),
        &mut |_, _, _, _| (),
        dictionary,
        std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
    );
    out
}

/// The magic number that opens a `dcb` body (RFC 9842, section 4).
const DCB_MAGIC: [u8; 4] = [0xff, 0x44, 0x43, 0x42];

/// The file every page's bundle is also compressed against.
#[derive(Debug)]
struct Dictionary {
    /// Its name under the bundle's folder (`gantry.wasm`).
    name: String,
    bytes: Vec<u8>,
    sha256: [u8; 32],
    /// The hash as `Available-Dictionary` carries it (a structured-field
    /// byte sequence, `:<base64>:`).
    available: String,
}

impl Dictionary {
    fn new(name: &str, bytes: Vec<u8>) -> Dictionary {
        use base64::Engine;
        use sha2::Digest;
        let sha256: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let available = format!(":{}:", base64::engine::general_purpose::STANDARD.encode(sha256));
        Dictionary { name: name.to_string(), bytes, sha256, available }
    }

    /// `raw` as a `dcb` body: the magic number, the dictionary's hash, then
    /// brotli against the dictionary.
    fn dcb(&self, raw: &[u8]) -> Vec<u8> {
        [&DCB_MAGIC[..], &self.sha256, &brotli(raw, &self.bytes)].concat()
    }

    /// Whether the request says it has this dictionary and takes `dcb`.
    fn offered_in(&self, request: &http::HeaderMap) -> bool {
        let available = request.get_all("available-dictionary").into_iter().filter_map(|value| value.to_str().ok());
        accepts(request, "dcb") && available.map(str::trim).any(|value| value == self.available)
    }
}

/// Whether the request's `Accept-Encoding` lists `coding` (and not at q=0).
pub fn accepts(headers: &http::HeaderMap, coding: &str) -> bool {
    let values = headers.get_all(header::ACCEPT_ENCODING).into_iter().filter_map(|value| value.to_str().ok());
    values.flat_map(|value| value.split(',')).any(|listed| {
        let mut parts = listed.split(';').map(str::trim);
        let weight = |part: &str| part.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok());
        parts.next() == Some(coding) && parts.all(|part| weight(part).is_none_or(|q| q > 0.0))
    })
}

/// A file made in memory, kept compressed only: brotli (a client that does
/// not take brotli, which no browser is, gets it decompressed), and for a
/// page's bundle also `dcb`.
#[derive(Debug)]
struct Made {
    content_type: &'static str,
    source: Source,
    compressed: OnceLock<Bytes>,
    against_dictionary: OnceLock<Bytes>,
}

/// What a [`Made`] file is made from.
#[derive(Debug)]
enum Source {
    Loader(String),
    /// The chunk files, read when first needed.
    Bundle(Vec<PathBuf>),
}

impl Made {
    fn new(content_type: &'static str, source: Source) -> Made {
        Made { content_type, source, compressed: OnceLock::new(), against_dictionary: OnceLock::new() }
    }

    fn raw(&self) -> Vec<u8> {
        match &self.source {
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
        }
    }

    /// The file, brotli-compressed (made on the first call; a concurrent
    /// caller waits for it).
    fn compressed(&self) -> &Bytes {
        self.compressed.get_or_init(|| brotli(&self.raw(), &[]).into())
    }

    /// The file as a `dcb` body against `dictionary` (made on the first call).
    fn against(&self, dictionary: &Dictionary) -> &Bytes {
        self.against_dictionary.get_or_init(|| dictionary.dcb(&self.raw()).into())
    }
}

/// How an answer's body is encoded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coding {
    Dcb,
    Brotli,
    Identity,
}

/// The patched loader and every lazy page's bundle, for one release.
#[derive(Debug)]
pub struct PageBundles {
    loader: Made,
    /// The loader's file name under the bundle's folder.
    loader_name: String,
    pages: HashMap<String, Made>,
    /// The first wasm, which bundles are also compressed against; None when
    /// it cannot be read.
    dictionary: Option<Dictionary>,
}

impl PageBundles {
    /// Bundles for the pages of `manifest` (page → chunk names) in `pkg`,
    /// with the loader at `pkg/<loader>` and the first wasm at
    /// `pkg/<first_wasm>`; None when the loader is missing or not of the
    /// expected shape.
    pub fn read(
        pkg: &Path,
        loader: &str,
        first_wasm: &str,
        manifest: &HashMap<String, Vec<String>>,
    ) -> Option<Arc<PageBundles>> {
        let patched = patch_loader(&std::fs::read_to_string(pkg.join(loader)).ok()?)?;
        let pages = manifest
            .iter()
            .map(|(page, chunks)| {
                let paths = chunks.iter().map(|chunk| pkg.join(format!("{chunk}.wasm"))).collect();
                (page.clone(), Made::new("application/octet-stream", Source::Bundle(paths)))
            })
            .collect();
        let dictionary = std::fs::read(pkg.join(first_wasm)).ok().map(|bytes| Dictionary::new(first_wasm, bytes));
        let bundles = Arc::new(PageBundles {
            loader: Made::new("text/javascript", Source::Loader(patched)),
            loader_name: loader.to_string(),
            pages,
            dictionary,
        });
        // Compress ahead of the first visits, one at a time, in the
        // background: the loader, then every bundle the way Chromium asks
        // for it (against the dictionary). Brotli alone is made when first
        // asked for: doing both ahead kept a core busy for a minute after
        // each start, which the chart bench's frames showed.
        let ahead = Arc::downgrade(&bundles);
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let Some(bundles) = ahead.upgrade() else { return };
            bundles.loader.compressed();
            let pages: Vec<String> = bundles.pages.keys().cloned().collect();
            drop(bundles);
            for page in &pages {
                // A newer release replaced this one: stop.
                let Some(bundles) = ahead.upgrade() else { return };
                if let Some(made) = bundles.pages.get(page) {
                    match &bundles.dictionary {
                        Some(dictionary) => made.against(dictionary),
                        None => made.compressed(),
                    };
                }
            }
            // The end of the start-up's work (the chart bench waits for it).
            tracing::info!("{} page bundles compressed ahead in {:.1} s", pages.len(), started.elapsed().as_secs_f64());
        });
        Some(bundles)
    }

    /// `Use-As-Dictionary` for the answer to `name` under the bundle's
    /// folder `folder` (`/pkg/<hash>`), when it is the dictionary: it
    /// matches that release's page bundles only.
    pub fn use_as_dictionary(&self, folder: &str, name: &str) -> Option<HeaderValue> {
        self.dictionary.as_ref().filter(|dictionary| dictionary.name == name)?;
        HeaderValue::from_str(&format!("match=\"{folder}/pages/*\"")).ok()
    }

    /// The answer for `name` under the bundle's folder when it is one of the
    /// files made here (the loader or `pages/<page>.wasm`): a page's bundle
    /// as `dcb` when the request offers the dictionary, else brotli when it
    /// accepts brotli, else plain.
    pub async fn answer(self: &Arc<Self>, name: &str, request: &http::HeaderMap) -> Option<Response> {
        let page = match name.strip_prefix("pages/").and_then(|rest| rest.strip_suffix(".wasm")) {
            Some(page) if self.pages.contains_key(page) => Some(page.to_string()),
            Some(_) => return None,
            None if name == self.loader_name => None,
            None => return None,
        };
        let coding = match &self.dictionary {
            Some(dictionary) if page.is_some() && dictionary.offered_in(request) => Coding::Dcb,
            _ if accepts(request, "br") => Coding::Brotli,
            _ => Coding::Identity,
        };
        let bundles = self.clone();
        let (content_type, body) = tokio::task::spawn_blocking(move || {
            let made = page.as_ref().map_or(&bundles.loader, |page| &bundles.pages[page]);
            let body = match coding {
                // Chosen only when there is a dictionary.
                Coding::Dcb => made.against(bundles.dictionary.as_ref()?).clone(),
                Coding::Brotli => made.compressed().clone(),
                Coding::Identity => {
                    let mut raw = Vec::new();
                    brotli::BrotliDecompress(&mut &made.compressed()[..], &mut raw).ok()?;
                    raw.into()
                }
            };
            Some((made.content_type, body))
        })
        .await
        .ok()??;
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        let vary = if name == self.loader_name { "accept-encoding" } else { "accept-encoding, available-dictionary" };
        headers.insert(header::VARY, HeaderValue::from_static(vary));
        let encoding = match coding {
            Coding::Dcb => Some("dcb"),
            Coding::Brotli => Some("br"),
            Coding::Identity => None,
        };
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
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

    fn request(headers: &[(&'static str, &str)]) -> http::HeaderMap {
        headers.iter().map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap())).collect()
    }

    #[test]
    fn a_coding_is_taken_when_listed_and_not_refused() {
        let asks = |value: &str, coding: &str| accepts(&request(&[("accept-encoding", value)]), coding);
        assert!(asks("gzip, deflate, br, zstd", "br"));
        assert!(asks("br;q=0.5, gzip", "br"));
        assert!(!asks("gzip, deflate", "br"));
        assert!(!asks("br;q=0, gzip", "br"));
        assert!(!asks("br; q=0.0", "br"));
        assert!(asks("gzip, deflate, br, zstd, dcb, dcz", "dcb"));
        assert!(!asks("gzip, deflate, br, zstd", "dcb"));
        assert!(!asks("brotli", "br"), "a coding is a whole name");
        assert!(!accepts(&http::HeaderMap::new(), "br"));
    }

    #[test]
    fn a_dcb_body_is_the_dictionary_hash_then_brotli_against_it() {
        // A page's chunks repeat much of the first wasm.
        let first: Vec<u8> = (0..20_000u32).flat_map(|i| (i * 7919 % 65_521).to_le_bytes()).collect();
        let page: Vec<u8> = [&first[1_000..30_000], b"the page's own code", &first[50_000..70_000]].concat();
        let dictionary = Dictionary::new("gantry.wasm", first.clone());
        let body = dictionary.dcb(&page);
        assert_eq!(body[..4], DCB_MAGIC);
        use sha2::Digest;
        assert_eq!(body[4..36], sha2::Sha256::digest(&first)[..]);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(
            &mut brotli::Decompressor::new_with_custom_dict(&body[36..], 4096, first.into()),
            &mut decoded,
        )
        .unwrap();
        assert_eq!(decoded, page);
        let alone = brotli(&page, &[]).len();
        assert!(body.len() * 10 < alone, "against the dictionary {} bytes, alone {alone}", body.len());
    }

    #[test]
    fn the_dictionary_is_used_only_when_the_request_has_it_and_takes_dcb() {
        let dictionary = Dictionary::new("gantry.wasm", b"\0asm first".to_vec());
        use base64::Engine;
        use sha2::Digest;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"\0asm first"));
        let has = format!(":{hash}:");
        assert!(dictionary.offered_in(&request(&[("accept-encoding", "br, dcb"), ("available-dictionary", &has)])));
        assert!(!dictionary.offered_in(&request(&[("accept-encoding", "br"), ("available-dictionary", &has)])));
        assert!(!dictionary.offered_in(&request(&[("accept-encoding", "br, dcb")])));
        let other = format!(":{}:", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        assert!(
            !dictionary.offered_in(&request(&[("accept-encoding", "br, dcb"), ("available-dictionary", &other)])),
            "another release's first wasm"
        );
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
