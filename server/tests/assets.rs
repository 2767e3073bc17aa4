//! The site's files (issue 18): pages link the wasm, its JS and the
//! stylesheet by content-hashed names that browsers may keep for a year;
//! everything else under /pkg is revalidated; vendored files under /assets,
//! versioned by name, are kept; a hashed name of another release is a 404.

mod common;

use gantry_store::testing::TempDir;

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
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
    std::fs::write(site.path.join("assets/uplot/uplot-1.6.32.min.js"), "export default 1").unwrap();
    let root = site.path.clone();
    let app = common::spawn_app_configured(common::Backend::Sqlite, Default::default(), move |web| {
        gantry_server::web::WebConfig { site_root: root, ..web }
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();

    let page = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let named = |ext: &str| -> String {
        page.match_indices("/pkg/gantry.")
            .find_map(|(i, _)| {
                let rest = &page[i..];
                let name = &rest[..rest.find(['"', '\'', ' ', '\\'])?];
                name.ends_with(&format!(".{ext}")).then(|| name.to_string())
            })
            .unwrap_or_else(|| panic!("the page links no hashed .{ext}: {page}"))
    };
    let (js, wasm, css) = (named("js"), named("wasm"), named("css"));
    assert_eq!(js.len(), "/pkg/gantry.".len() + 16 + ".js".len(), "{js}");
    assert_eq!(js.trim_end_matches(".js"), wasm.trim_end_matches(".wasm"), "one stem for the JS and its wasm");
    assert_ne!(css, "/pkg/gantry.css");

    for (path, body) in [(&js, "export default function() {}"), (&css, "body {}")] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{path}");
        assert_eq!(response.text().await.unwrap(), body);
    }
    let response = http.get(app.url(&wasm)).send().await.unwrap();
    assert_eq!((response.status().as_u16(), header(&response, "cache-control").contains("immutable")), (200, true));

    for path in ["/pkg/gantry.js", "/pkg/snippets/app-1/js/chart.js"] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path} is revalidated");
    }
    let response = http.get(app.url("/assets/uplot/uplot-1.6.32.min.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");

    let stale = http.get(app.url("/pkg/gantry.0123456789abcdef.js")).send().await.unwrap();
    assert_eq!(stale.status(), 404, "another release's name is never today's file");
    assert_eq!(header(&stale, "cache-control"), "no-store");
    let missing = http.get(app.url("/pkg/nothing.js")).send().await.unwrap();
    assert_eq!((missing.status().as_u16(), header(&missing, "cache-control")), (404, "no-store".to_string()));
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
    let root = site.path.clone();
    let app = common::spawn_app_configured(common::Backend::Sqlite, Default::default(), move |web| {
        gantry_server::web::WebConfig { site_root: root, ..web }
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();

    let before = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(before.contains("<form"), "the page works without its bundle: {before}");
    assert!(!before.contains(".wasm"), "no bundle, no link to one: {before}");

    std::fs::write(pkg.join("gantry.js"), "export default function() {}").unwrap();
    std::fs::write(pkg.join("gantry.wasm"), b"\0asm").unwrap();
    let after = http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let linked = after
        .match_indices("/pkg/gantry.")
        .filter_map(|(i, _)| after[i..].split(['"', '\'']).next())
        .find(|name| name.ends_with(".js"))
        .unwrap_or_else(|| panic!("the new bundle is not linked: {after}"))
        .to_string();
    let response = http.get(app.url(&linked)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{linked} is served");

    let icon = http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!((icon.status().as_u16(), header(&icon, "content-type")), (200, "image/x-icon".to_string()));
    assert!(!icon.bytes().await.unwrap().is_empty());
}
