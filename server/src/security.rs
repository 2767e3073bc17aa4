//! Request guards that apply to every route: client address, security
//! headers with a per-response CSP nonce, and the cross-site check for
//! state-changing requests.
//!
//! CSRF defence, in two parts:
//! 1. Origin check (here): a state-changing request that names an Origin
//!    (or Referer) must name this site, and one marked
//!    `Sec-Fetch-Site: cross-site` is refused.
//! 2. A synchronizer token: cookie-authenticated mutations must echo the
//!    session's CSRF token (a `csrf` argument of every mutating server
//!    function, or the `X-CSRF-Token` header on the REST API). Bearer-token
//!    requests need neither, since browsers never attach those on their own.
//!
//! Session cookies are also SameSite=Lax and HttpOnly.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};

use app::api::ssr::ClientAddress;

use crate::web::WebState;

/// The nonce of this response's Content-Security-Policy.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub const SESSION_COOKIE: &str = "gantry_session";

pub async fn client_address(State(web): State<WebState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let forwarded = web
        .trust_proxy
        .then(|| {
            request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
        })
        .flatten();
    request.extensions_mut().insert(ClientAddress(forwarded.or(peer)));
    next.run(request).await
}

pub async fn headers(State(web): State<WebState>, mut request: Request, next: Next) -> Response {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; style-src-attr 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
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

fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Refuses cross-site state-changing requests before they reach a handler.
pub async fn same_origin(State(web): State<WebState>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = web
        .trust_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let claimed = origin.filter(|o| *o != "null").or(referer);
    let allowed = match claimed.and_then(authority_of) {
        Some(authority) => authority.eq_ignore_ascii_case(&host),
        // "Origin: null" (sandboxed frames, some redirects) never passes.
        None if origin == Some("null") => false,
        // Browsers name the origin of every cross-site POST; a request that
        // names none comes from a script, which still needs the CSRF token
        // (or a bearer token) to change anything.
        None => !matches!(fetch_site, Some("cross-site") | Some("same-site")),
    };
    if allowed {
        next.run(request).await
    } else {
        crate::rest::ApiError::forbidden("cross-site request refused: the Origin does not match this site")
            .into_response()
    }
}

pub fn empty(status: http::StatusCode) -> Response {
    Response::builder().status(status).body(Body::empty()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority_of("http://127.0.0.1:3000"), Some("127.0.0.1:3000"));
        assert_eq!(authority_of("https://gantry.example.com/path?q"), Some("gantry.example.com"));
        assert_eq!(authority_of("garbage"), None);
    }
}
