//! Request guards that apply to every route: client address, security
//! headers with a per-response CSP nonce, the allowed hosts, and the
//! cross-site check for state-changing requests.
//!
//! CSRF defence, in two parts:
//! 1. Origin check (here): a state-changing request that names an Origin
//!    (or Referer) must name this site exactly (scheme, host and port), and
//!    one marked `Sec-Fetch-Site: cross-site` is refused.
//! 2. A synchronizer token: cookie-authenticated mutations must echo the
//!    session's CSRF token (a `csrf` argument of every mutating server
//!    function, or the `X-CSRF-Token` header on the REST API); the service
//!    compares it. Bearer-token requests need neither, since browsers never
//!    attach those on their own.
//!
//! Session cookies are also SameSite=Lax and HttpOnly.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gantry_service::ClientAddress;
use http::{HeaderMap, HeaderValue, Method, header};

use crate::web::WebState;

/// The nonce of this response's Content-Security-Policy.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub const SESSION_COOKIE: &str = "gantry_session";

/// The client's address. Behind `hops` trusted reverse proxies, each of
/// which appends the address it received the request from to
/// X-Forwarded-For, the client is the `hops`-th entry from the right:
/// anything further left was written by the client itself and proves
/// nothing. Without trusted proxies, the peer.
pub fn client_address(peer: Option<&str>, forwarded_for: &[&str], hops: usize) -> Option<String> {
    if hops == 0 {
        return peer.map(str::to_string);
    }
    let entries: Vec<&str> =
        forwarded_for.iter().flat_map(|h| h.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
    match entries.len().checked_sub(hops) {
        Some(index) => Some(entries[index].to_string()),
        // Fewer entries than proxies: the leftmost one is the nearest to the client we know.
        None => entries.first().map(|e| e.to_string()).or_else(|| peer.map(str::to_string)),
    }
}

pub async fn client_address_layer(State(web): State<WebState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let forwarded: Vec<&str> =
        request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let address = client_address(peer.as_deref(), &forwarded, web.proxy_hops);
    request.extensions_mut().insert(ClientAddress(address));
    next.run(request).await
}

pub async fn headers(State(web): State<WebState>, mut request: Request, next: Next) -> Response {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // Signing out of a session made through the identity provider ends at
    // its end-session endpoint: a redirect after the sign-out form.
    let provider = web.sso_origin.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; style-src-attr 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'{provider}; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages carry a user's data and their CSRF token: never keep them in a
    // shared or back-navigation cache.
    let is_html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if web.secure_cookies {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    response
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://host[:port]` of a URL, lower-cased, without a path; None for
/// anything that is not an absolute http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The origins this request may come from: the configured public origins,
/// or else the scheme Gantry is served with and the Host the request names.
fn expected_origins(web: &WebState, headers: &HeaderMap) -> Vec<String> {
    if !web.public_origins.is_empty() {
        return web.public_origins.clone();
    }
    let forwarded = |name: &str| {
        (web.proxy_hops > 0).then(|| headers.get(name)).flatten().and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let scheme =
        forwarded("x-forwarded-proto").unwrap_or_else(|| if web.secure_cookies { "https" } else { "http" }.into());
    vec![format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())]
}

/// Whether a request that names `origin` (an Origin or Referer header) comes
/// from this site.
fn same_site(origin: Option<&str>, referer: Option<&str>, fetch_site: Option<&str>, expected: &[String]) -> bool {
    let claimed = origin.filter(|o| *o != "null").or(referer);
    match claimed {
        Some(url) => origin_of(url).is_some_and(|o| expected.contains(&o)),
        // "Origin: null" (sandboxed frames, some redirects) never passes.
        None if origin == Some("null") => false,
        // Browsers name the origin of every cross-site POST; a request that
        // names none comes from a script, which still needs the CSRF token
        // (or a bearer token) to change anything.
        None => !matches!(fetch_site, Some("cross-site") | Some("same-site")),
    }
}

/// Refuses cross-site state-changing requests before they reach a handler,
/// and, when public origins are configured, requests for any other host
/// (DNS rebinding). Probes and metrics answer on any host: the kubelet and
/// Prometheus reach a pod by its address.
/// Reads the session's CSRF token before a page renders, for the pages'
/// hidden form fields: a field rendered while the session resource was
/// still loading would otherwise go out empty (see `app::PageCsrf`).
pub async fn page_csrf(mut request: Request, next: Next) -> Response {
    if let Some(session) = request.extensions().get::<tower_sessions::Session>().cloned()
        && let Ok(Some(token)) = session.get::<String>(gantry_service::SESSION_CSRF).await
    {
        request.extensions_mut().insert(app::PageCsrf(token));
    }
    next.run(request).await
}

pub async fn same_origin(State(web): State<WebState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let any_host = matches!(path, "/healthz" | "/readyz" | "/metrics");
    if !any_host && !web.public_origins.is_empty() {
        let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let host = host.to_ascii_lowercase();
        if !web.public_origins.iter().any(|o| o.split_once("://").is_some_and(|(_, authority)| authority == host)) {
            return crate::rest::ApiError(gantry_service::WireError::bad_request(format!(
                "this Gantry answers for {}, not for the host {host:?}",
                web.public_origins.join(", ")
            )))
            .into_response();
        }
    }
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let allowed =
        same_site(text(header::ORIGIN), text(header::REFERER), fetch_site(headers), &expected_origins(&web, headers));
    if allowed {
        next.run(request).await
    } else {
        crate::rest::ApiError::forbidden("cross-site request refused: the Origin does not match this site")
            .into_response()
    }
}

/// Marks the answer to a request the browser says came from this site's own
/// pages (`Sec-Fetch-Site: same-origin`) or from the person (`none`: typed,
/// a bookmark, a reload). Another site can choose neither, so such a page is
/// safe to compress. Browsers that send no `Sec-Fetch-Site` get pages as they
/// are.
#[derive(Clone, Copy)]
pub struct FirstParty;

pub async fn mark_first_party(request: Request, next: Next) -> Response {
    let first_party = matches!(fetch_site(request.headers()), Some("same-origin" | "none"));
    let mut response = next.run(request).await;
    if first_party {
        response.extensions_mut().insert(FirstParty);
    }
    response
}

/// What the browser says about who started a request (`Sec-Fetch-Site`).
fn fetch_site(headers: &HeaderMap) -> Option<&str> {
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
}

pub fn empty(status: http::StatusCode) -> Response {
    Response::builder().status(status).body(Body::empty()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_scheme_host_and_port() {
        assert_eq!(origin_of("http://127.0.0.1:3000").as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(origin_of("HTTPS://Gantry.Example.com/path?q").as_deref(), Some("https://gantry.example.com"));
        assert_eq!(origin_of("https://user@evil.example/"), None);
        assert_eq!(origin_of("javascript://x"), None);
        assert_eq!(origin_of("garbage"), None);
    }

    #[test]
    fn the_origin_must_match_in_scheme_host_and_port() {
        let expected = vec!["https://gantry.example".to_string()];
        let ok = |origin: Option<&str>, referer: Option<&str>, site: Option<&str>| {
            same_site(origin, referer, site, &expected)
        };
        assert!(ok(Some("https://gantry.example"), None, Some("same-origin")));
        assert!(ok(None, Some("https://gantry.example/workloads"), None));
        assert!(!ok(Some("http://gantry.example"), None, None), "another scheme is another origin");
        assert!(!ok(Some("https://gantry.example:8443"), None, None), "another port too");
        assert!(!ok(Some("https://gantry.example.evil.example"), None, None));
        assert!(!ok(Some("null"), None, None));
        assert!(!ok(None, None, Some("cross-site")));
        assert!(ok(None, None, None), "scripts name no origin and still need a token");
    }

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let peer = Some("10.0.0.9");
        // The client wrote "1.2.3.4"; the trusted proxy appended what it saw.
        assert_eq!(client_address(peer, &["1.2.3.4, 203.0.113.7"], 1).as_deref(), Some("203.0.113.7"));
        assert_eq!(client_address(peer, &["1.2.3.4, 203.0.113.7, 10.1.1.1"], 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(client_address(peer, &["1.2.3.4", "203.0.113.7"], 1).as_deref(), Some("203.0.113.7"));
        assert_eq!(
            client_address(peer, &["1.2.3.4, 203.0.113.7"], 0).as_deref(),
            Some("10.0.0.9"),
            "no proxy: the peer"
        );
        assert_eq!(client_address(peer, &[], 1).as_deref(), Some("10.0.0.9"));
        assert_eq!(client_address(peer, &["203.0.113.7"], 3).as_deref(), Some("203.0.113.7"));
    }
}
