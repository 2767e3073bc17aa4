//! The site's files (issue 18): pages link the bundle (the wasm, its JS,
//! its per-page chunks and the stylesheet) under a folder named by its
//! content hash, which browsers may keep for a year; the fixed names under
//! /pkg are revalidated; vendored files under /assets, versioned by name,
//! are kept; another release's folder is a 404.
//! JSON and CSV answers are compressed for clients that accept it; pages and
//! streams are not.

mod common;

use common::Who;
use gantry_store::testing::TempDir;

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Gantry on SQLite, serving the site in `site`.
async fn serving(site: &TempDir) -> common::TestApp {
    let root = site.path.clone();
    common::spawn_app_configured(common::Backend::Sqlite, Default::default(), move |web| {
        gantry_server::web::WebConfig { site_root: root, ..web }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn assets_have_content_hashed_names_and_long_lived_caching() {
    let site = TempDir::new("gantry-site");
    let pkg = site.path.join("pkg");
    std::fs::create_dir_all(pkg.join("snippets/app-1/js")).unwrap();
    std::fs::create_dir_all(site.path.join("assets/uplot")).unwrap();
    std::fs::write(pkg.join("gantry.js"), "export default function() {}").unwrap();
    std::fs::write(pkg.join("gantry.wasm"), b"\0asm").unwrap();
    std::fs::write(pkg.join("gantry.css"), "body {}").unwrap();
    std::fs::write(pkg.join("snippets/app-1/js/chart.js"), "export {}").unwrap();
    std::fs::write(pkg.join("__wasm_split.______________________.js"), "export {}").unwrap();
    std::fs::write(pkg.join("login_route_1.wasm"), b"\0asm chunk").unwrap();
    std::fs::write(pkg.join("__wasm_split_manifest.json"), r#"{"__LoginRoute_view": ["login_route_1"]}"#).unwrap();
    std::fs::write(site.path.join("assets/uplot/uplot-1.6.32.min.js"), "export default 1").unwrap();
    let app = serving(&site).await;
    let http = reqwest::Client::new();

    let page = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let linked = |file: &str| -> String {
        page.match_indices("/pkg/")
            .find_map(|(i, _)| {
                let rest = &page[i..];
                let name = &rest[..rest.find(['"', '\'', ' ', '\\'])?];
                name.ends_with(&format!("/{file}")).then(|| name.to_string())
            })
            .unwrap_or_else(|| panic!("the page links no {file}: {page}"))
    };
    let css = linked("gantry.css");
    let folder = css.trim_end_matches("gantry.css").to_string();
    assert_eq!(folder.len(), "/pkg/".len() + 16 + 1, "{css}");
    assert_eq!(linked("gantry.js"), format!("{folder}gantry.js"), "the JS glue is in the same folder");
    let pkg_dir = &folder[1..folder.len() - 1];
    assert!(page.contains(&format!("\"{pkg_dir}\"")), "the hydration script loads the bundle from {pkg_dir}: {page}");
    assert_eq!(
        linked("__wasm_split.______________________.js"),
        format!("{folder}__wasm_split.______________________.js"),
        "a split bundle's loader is preloaded from the same folder (the page's chunks are not: the loader \
         fetches the page's bundle once the first wasm has arrived)"
    );

    for (file, body) in [
        ("gantry.js", "export default function() {}"),
        ("gantry.css", "body {}"),
        ("snippets/app-1/js/chart.js", "export {}"),
        ("__wasm_split.______________________.js", "export {}"),
    ] {
        let path = format!("{folder}{file}");
        let response = http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{path}");
        assert_eq!(response.text().await.unwrap(), body);
    }
    for file in ["gantry.wasm", "login_route_1.wasm"] {
        let response = http.get(app.url(&format!("{folder}{file}"))).send().await.unwrap();
        assert_eq!((response.status().as_u16(), header(&response, "cache-control").contains("immutable")), (200, true));
    }

    for path in ["/pkg/gantry.js", "/pkg/snippets/app-1/js/chart.js"] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path} is revalidated");
    }
    let response = http.get(app.url("/assets/uplot/uplot-1.6.32.min.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");

    let stale = http.get(app.url("/pkg/0123456789abcdef/gantry.js")).send().await.unwrap();
    assert_eq!(stale.status(), 404, "another release's folder is never today's file");
    assert_eq!(header(&stale, "cache-control"), "no-store");
    let missing = http.get(app.url(&format!("{folder}nothing.js"))).send().await.unwrap();
    assert_eq!((missing.status().as_u16(), header(&missing, "cache-control")), (404, "no-store".to_string()));
    let missing = http.get(app.url("/pkg/nothing.js")).send().await.unwrap();
    assert_eq!((missing.status().as_u16(), header(&missing, "cache-control")), (404, "no-store".to_string()));
}

/// A page's wasm chunks come as one file (crate::page_bundles): the loader
/// cargo-leptos generates is served with its chunk fetches going through
/// the page's bundle, and each lazy page's bundle holds its chunks in the
/// manifest's order, compressed with brotli for browsers that take it.
/// Each chunk stays reachable on its own (later pages fetch them one by one).
#[tokio::test]
async fn each_lazy_page_has_its_chunks_in_one_bundle() {
    let site = TempDir::new("gantry-bundled-site");
    let pkg = site.path.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("gantry.js"), "export default function() {}").unwrap();
    std::fs::write(pkg.join("gantry.wasm"), b"\0asm").unwrap();
    // The shape cargo-leptos 0.3's loader has (its fetches are what is patched).
    let loader = r#"import { initSync } from "./gantry.js";
const __chunk_1 = makeLoad(() => {
    const src = fetch(new URL("./chunk_1.wasm", import.meta.url));
    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));
}, []);
export const __wasm_split_load___login_route_view_7 = wrapAsyncCb(makeLoad(() => {
    const src = fetch(new URL("./split___login_route_view_7.wasm", import.meta.url));
    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));
}, [__chunk_1]));
"#;
    std::fs::write(pkg.join("__wasm_split.______________________.js"), loader).unwrap();
    std::fs::write(pkg.join("chunk_1.wasm"), b"\0asm one").unwrap();
    std::fs::write(pkg.join("split___login_route_view_7.wasm"), b"\0asm login").unwrap();
    std::fs::write(
        pkg.join("__wasm_split_manifest.json"),
        r#"{"__login_route_view_7": ["chunk_1", "split___login_route_view_7"]}"#,
    )
    .unwrap();
    let app = serving(&site).await;
    let http = reqwest::Client::new();
    let page = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let start = page.find("/pkg/").unwrap_or_else(|| panic!("no bundle linked: {page}"));
    let folder = page[start..start + "/pkg/".len() + 17].to_string();

    let response = http
        .get(app.url(&format!("{folder}pages/__login_route_view_7.wasm")))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-encoding"), "br");
    assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");
    let compressed = response.bytes().await.unwrap();
    let mut bundle = Vec::new();
    brotli::BrotliDecompress(&mut &compressed[..], &mut bundle).unwrap();
    let length = u32::from_le_bytes(bundle[..4].try_into().unwrap()) as usize;
    let index: serde_json::Value = serde_json::from_slice(&bundle[4..4 + length]).unwrap();
    assert_eq!(index, serde_json::json!([["chunk_1", 8], ["split___login_route_view_7", 10]]));
    assert_eq!(&bundle[4 + length..], b"\0asm one\0asm login");

    let plain = http.get(app.url(&format!("{folder}pages/__login_route_view_7.wasm"))).send().await.unwrap();
    assert_eq!(header(&plain, "content-encoding"), "", "not compressed for a client that did not ask");
    assert_eq!(plain.bytes().await.unwrap(), bundle);

    // The first wasm is offered as the dictionary for this release's page
    // bundles; a browser that has it gets the bundle compressed against it.
    let first = http.get(app.url(&format!("{folder}gantry.wasm"))).send().await.unwrap();
    assert_eq!(header(&first, "use-as-dictionary"), format!("match=\"{}pages/*\"", folder));
    let alone = http.get(app.url(&format!("{folder}chunk_1.wasm"))).send().await.unwrap();
    assert_eq!(header(&alone, "use-as-dictionary"), "", "only the first wasm is a dictionary");
    use base64::Engine;
    use sha2::Digest;
    let hash = sha2::Sha256::digest(b"\0asm");
    let offered = format!(":{}:", base64::engine::general_purpose::STANDARD.encode(hash));
    let against = http
        .get(app.url(&format!("{folder}pages/__login_route_view_7.wasm")))
        .header("accept-encoding", "gzip, br, zstd, dcb, dcz")
        .header("available-dictionary", &offered)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&against, "content-encoding"), "dcb");
    assert_eq!(header(&against, "vary"), "accept-encoding, available-dictionary");
    let body = against.bytes().await.unwrap();
    assert_eq!(body[..4], [0xff, 0x44, 0x43, 0x42], "dcb's magic number");
    assert_eq!(body[4..36], hash[..], "then the dictionary's hash");
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(
        &mut brotli::Decompressor::new_with_custom_dict(&body[36..], 4096, b"\0asm".to_vec().into()),
        &mut decoded,
    )
    .unwrap();
    assert_eq!(decoded, bundle, "the same bundle");
    let stale = http
        .get(app.url(&format!("{folder}pages/__login_route_view_7.wasm")))
        .header("accept-encoding", "br, dcb")
        .header("available-dictionary", format!(":{}:", base64::engine::general_purpose::STANDARD.encode([1u8; 32])))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&stale, "content-encoding"), "br", "another dictionary than this release's: brotli alone");

    let served = http.get(app.url(&format!("{folder}__wasm_split.______________________.js"))).send().await.unwrap();
    assert_eq!(header(&served, "content-type"), "text/javascript");
    let served = served.text().await.unwrap();
    assert!(served.contains(r#"const src = pageChunk("./chunk_1.wasm", import.meta.url);"#), "{served}");
    assert!(served.contains(r#"pageChunk("./split___login_route_view_7.wasm", import.meta.url);"#), "{served}");
    assert!(!served.contains("fetch(new URL(\"./"), "every chunk fetch goes through the bundle: {served}");

    let unknown = http.get(app.url(&format!("{folder}pages/__nowhere_route_view_7.wasm"))).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let alone = http.get(app.url(&format!("{folder}chunk_1.wasm"))).send().await.unwrap();
    assert_eq!((alone.status().as_u16(), alone.bytes().await.unwrap().to_vec()), (200, b"\0asm one".to_vec()));
}

/// Issue 13: the demo serves pages before its bundle is built. Until the
/// bundle is there, pages carry no hydration scripts (no links that 404);
/// once it is written, the next page links it, with no restart. The icon
/// browsers ask for is always there.
#[tokio::test]
async fn a_bundle_built_while_the_server_runs_is_linked_from_the_next_page() {
    let site = TempDir::new("gantry-late-site");
    let pkg = site.path.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let app = serving(&site).await;
    let http = reqwest::Client::new();

    let before = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(before.contains("<form"), "the page works without its bundle: {before}");
    assert!(!before.contains(".wasm"), "no bundle, no link to one: {before}");

    std::fs::write(pkg.join("gantry.js"), "export default function() {}").unwrap();
    std::fs::write(pkg.join("gantry.wasm"), b"\0asm").unwrap();
    let after = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let linked = after
        .match_indices("/pkg/")
        .filter_map(|(i, _)| after[i..].split(['"', '\'']).next())
        .find(|name| name.ends_with("/gantry.js"))
        .unwrap_or_else(|| panic!("the new bundle is not linked: {after}"))
        .to_string();
    let response = http.get(app.url(&linked)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{linked} is served");

    let icon = http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!((icon.status().as_u16(), header(&icon, "content-type")), (200, "image/x-icon".to_string()));
    assert!(!icon.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn json_csv_and_first_party_pages_are_compressed_when_asked_and_streams_are_not() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let token = app.token(Who::Admin).await.unwrap();
    let admin = app.state.cli_caller("admin").await.unwrap();
    for cents in 100..120 {
        let price = gantry_domain::cost::Amount::Typed(format!("{}.{:02}", cents / 100, cents % 100));
        app.state.set_gpu_price(&admin, "NVIDIA-H100-80GB-HBM3", "on-demand", &price).await.unwrap();
    }
    let http = reqwest::Client::new();
    let get = |path: &str, encoding: Option<&str>| {
        let mut request = http.get(app.url(path)).bearer_auth(&token);
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        request.send()
    };

    let plain = get("/api/openapi.json", None).await.unwrap();
    assert_eq!(header(&plain, "content-encoding"), "", "nothing compressed for a client that did not ask");
    let plain = plain.bytes().await.unwrap().len();
    for encoding in ["gzip", "br"] {
        let answer = get("/api/openapi.json", Some(encoding)).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(header(&answer, "content-encoding"), encoding);
        assert_eq!(header(&answer, "vary"), "accept-encoding");
        let sent = answer.bytes().await.unwrap().len();
        assert!(sent * 4 < plain, "{encoding}: {sent} bytes sent for {plain}");
    }
    for (path, content_type) in [("/api/v1/audit.csv", "text/csv"), ("/api/v1/audit", "application/json")] {
        let answer = get(path, Some("gzip")).await.unwrap();
        assert!(header(&answer, "content-type").starts_with(content_type), "{path}");
        assert_eq!(header(&answer, "content-encoding"), "gzip", "{path}");
    }

    let small = get("/api/v1/me", Some("gzip")).await.unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(header(&small, "content-encoding"), "", "an answer under 1 KiB is sent as it is");
    // A page carries the CSRF token beside input the requester chose: it is
    // compressed only when the browser says this site's own page or the
    // person asked for it, never when another site's page did (BREACH).
    let page_length = http.get(app.url("/login?next=/costs")).send().await.unwrap().bytes().await.unwrap().len();
    for (fetch_site, encoding) in [
        (Some("same-origin"), "br"),
        (Some("none"), "br"),
        (Some("cross-site"), ""),
        (Some("same-site"), ""),
        (None, ""),
    ] {
        let mut request = http.get(app.url("/login?next=/costs")).header("accept-encoding", "gzip, br");
        if let Some(fetch_site) = fetch_site {
            request = request.header("sec-fetch-site", fetch_site);
        }
        let page = request.send().await.unwrap();
        assert!(header(&page, "content-type").starts_with("text/html"));
        assert_eq!(header(&page, "content-encoding"), encoding, "a page asked for with Sec-Fetch-Site {fetch_site:?}");
        let sent = page.bytes().await.unwrap();
        if encoding.is_empty() {
            assert!(String::from_utf8_lossy(&sent).contains("</html>"), "{fetch_site:?}: the page is sent as it is");
        } else {
            assert!(sent.len() * 2 < page_length, "{fetch_site:?}: {} bytes sent for {page_length}", sent.len());
        }
    }
    let events = get("/api/v1/events", Some("gzip, br")).await.unwrap();
    assert_eq!(header(&events, "content-type"), "text/event-stream");
    assert_eq!(header(&events, "content-encoding"), "", "a stream's events are not held back in a compressor");
}
