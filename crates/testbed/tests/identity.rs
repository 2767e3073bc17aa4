//! The testbed's OpenID Connect provider (Ory Hydra and the testbed's login pages): a whole
//! authorization-code flow through the login form, as a browser would do it; a refresh after
//! the user's groups changed carries the new groups; a deactivated user can neither refresh nor
//! sign in; a wrong password shows the form's error.

use base64::Engine;
use gantry_testbed::{IdentityProvider, IdentityUser};
use reqwest::header::LOCATION;
use serde_json::Value;

const CLIENT: &str = "gantry";
const SECRET: &str = "gantry-client-secret";
const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";
const SIGNED_OUT: &str = "http://127.0.0.1:9/signed-out";

/// A browser: cookies kept, redirects not followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Follows redirects from `url` until one leads to `stop_at` (returned, not requested) or a
/// page answers 200 (its URL and text). Relative locations are resolved.
async fn follow(browser: &reqwest::Client, url: &str, stop_at: &str) -> (String, Option<String>) {
    let mut url = reqwest::Url::parse(url).unwrap();
    for _ in 0..20 {
        if url.as_str().starts_with(stop_at) {
            return (url.to_string(), None);
        }
        let response = browser.get(url.clone()).send().await.unwrap();
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()[LOCATION].to_str().unwrap().to_string();
            url = url.join(&location).unwrap();
            continue;
        }
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "GET {url}: {status}: {text}");
        return (url.to_string(), Some(text));
    }
    panic!("more than 20 redirects from {url}");
}

/// The `value` of the hidden input `name` of an HTML form.
fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no input {name} in {page}"));
    let rest = &page[at..];
    let value = &rest[rest.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_string()
}

/// A query parameter of a URL.
fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string())
}

/// The (unverified) payload of a JWT.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Starts an authorization request and follows it to the login form: (form page, its URL).
async fn login_form(idp: &IdentityProvider, browser: &reqwest::Client, state: &str, nonce: &str) -> (String, String) {
    let mut auth = reqwest::Url::parse(&format!("{}/oauth2/auth", idp.issuer())).unwrap();
    auth.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email groups offline_access")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", state)
        .append_pair("nonce", nonce);
    let (url, page) = follow(browser, auth.as_str(), REDIRECT).await;
    let page = page.unwrap_or_else(|| panic!("went straight to {url} without a login form"));
    assert!(url.starts_with(&format!("{}/login?login_challenge=", idp.pages_url())), "{url}");
    assert!(page.contains("<title>Testbed identity provider</title>") && page.contains("Sign in"), "{page}");
    (page, url)
}

/// Posts the login form; the response, not followed.
async fn submit(
    idp: &IdentityProvider,
    browser: &reqwest::Client,
    page: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let form = [
        ("login_challenge", hidden(page, "login_challenge")),
        ("username", user.into()),
        ("password", password.into()),
    ];
    browser.post(format!("{}/login", idp.pages_url())).form(&form).send().await.unwrap()
}

/// A token request with the client's basic auth: (status, JSON body).
async fn token(idp: &IdentityProvider, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth2/token", idp.issuer()))
        .basic_auth(CLIENT, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_user_signs_in_through_the_form_and_a_refresh_carries_their_current_groups() {
    let ada = IdentityUser::new("ada", &["ml-team", "admins"]);
    let started = std::time::Instant::now();
    let idp = IdentityProvider::start(vec![ada.clone(), IdentityUser::new("bob", &[])]).await.unwrap();
    eprintln!("identity provider ready in {:?} (Hydra built already)", started.elapsed());
    idp.register_client(CLIENT, SECRET, &[REDIRECT.to_string()], &[SIGNED_OUT.to_string()]).await.unwrap();

    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", idp.issuer())).await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], idp.issuer());
    assert_eq!(discovery["token_endpoint"], format!("{}/oauth2/token", idp.issuer()));

    // A wrong password: the form again, with the error.
    let browser = browser();
    let (page, _) = login_form(&idp, &browser, "state-1-0123456789", "nonce-1-0123456789").await;
    let wrong = submit(&idp, &browser, &page, "ada", "not-her-password").await;
    assert_eq!(wrong.status(), 200);
    let again = wrong.text().await.unwrap();
    assert!(again.contains("wrong username or password") && again.contains("Sign in"), "{again}");

    // The right one (on the form it showed again, same challenge): through consent to the
    // redirect URI with a code and the state.
    let signed_in = submit(&idp, &browser, &again, "ada", &ada.password).await;
    assert_eq!(signed_in.status(), 303, "{}", idp.log_tail(20));
    let location = signed_in.headers()[LOCATION].to_str().unwrap().to_string();
    let (callback, page) = follow(&browser, &location, REDIRECT).await;
    assert!(page.is_none(), "stopped at {callback}: {page:?}\n{}", idp.log_tail(20));
    assert_eq!(param(&callback, "state").as_deref(), Some("state-1-0123456789"), "{callback}");
    let code = param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));

    let (status, tokens) =
        token(&idp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(status, 200, "{tokens}\n{}", idp.log_tail(20));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], idp.issuer());
    assert_eq!(id["sub"], "ada-id");
    assert_eq!(id["nonce"], "nonce-1-0123456789");
    assert_eq!(id["aud"], serde_json::json!([CLIENT]));
    assert_eq!(id["groups"], serde_json::json!(["ml-team", "admins"]));
    assert_eq!(id["preferred_username"], "ada");
    assert_eq!(id["email"], "ada@example.com");
    assert!(id["sid"].is_string(), "{id}");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token (offline_access)").to_string();

    // RP-initiated logout (through the logout page) ends at the post-logout redirect URI.
    let mut logout = reqwest::Url::parse(&format!("{}/oauth2/sessions/logout", idp.issuer())).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", SIGNED_OUT)
        .append_pair("state", "logout-state-0123456789");
    let (signed_out, page) = follow(&browser, logout.as_str(), SIGNED_OUT).await;
    assert!(page.is_none(), "stopped at {signed_out}: {page:?}\n{}", idp.log_tail(20));
    assert_eq!(param(&signed_out, "state").as_deref(), Some("logout-state-0123456789"));

    // New groups at the provider: the refreshed ID token carries them.
    idp.set_groups("ada", vec!["viewers".into()]);
    let (status, refreshed) = token(&idp, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "{refreshed}\n{}", idp.log_tail(20));
    let id = claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!((id["sub"].clone(), id["groups"].clone()), ("ada-id".into(), serde_json::json!(["viewers"])));

    // Deactivated: the next refresh is refused, and so is signing in.
    idp.set_active("ada", false);
    let refresh = refreshed["refresh_token"].as_str().unwrap();
    let (status, refused) = token(&idp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert!(status.is_client_error(), "{status}: {refused}");
    assert_eq!(refused["error"], "access_denied", "{refused}");
    let browser = self::browser();
    let (page, _) = login_form(&idp, &browser, "state-2-0123456789", "nonce-2-0123456789").await;
    let disabled = submit(&idp, &browser, &page, "ada", &ada.password).await.text().await.unwrap();
    assert!(disabled.contains("account disabled"), "{disabled}");

    // Bob signs in: every sign-in shows the form (nothing is remembered).
    let (page, _) = login_form(&idp, &browser, "state-3-0123456789", "nonce-3-0123456789").await;
    let signed_in = submit(&idp, &browser, &page, "bob", "bob-password").await;
    let location = signed_in.headers()[LOCATION].to_str().unwrap().to_string();
    let (callback, _) = follow(&browser, &location, REDIRECT).await;
    let code = param(&callback, "code").unwrap();
    let (_, tokens) =
        token(&idp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!((id["sub"].clone(), id["groups"].clone()), ("bob-id".into(), serde_json::json!([])));

    // For the record (`--nocapture`): Hydra's memory after these flows.
    let status = std::fs::read_to_string(format!("/proc/{}/status", idp.pid().unwrap())).unwrap_or_default();
    let rss: Vec<&str> = status.lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM")).collect();
    eprintln!("hydra: {}", rss.join(", "));
}

#[tokio::test]
async fn two_providers_start_at_once_each_with_its_own_users() {
    let (a, b) = tokio::join!(
        IdentityProvider::start(vec![IdentityUser::new("ada", &["a"])]),
        IdentityProvider::start(vec![IdentityUser::new("bob", &["b"])]),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.issuer(), b.issuer());
    for idp in [&a, &b] {
        let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", idp.issuer()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], idp.issuer());
    }
    a.register_client(CLIENT, SECRET, &[REDIRECT.to_string()], &[]).await.unwrap();
    let browser = browser();
    let (page, _) = login_form(&a, &browser, "state-4-0123456789", "nonce-4-0123456789").await;
    let refused = submit(&a, &browser, &page, "bob", "bob-password").await.text().await.unwrap();
    assert!(refused.contains("wrong username or password"), "{refused}");
    let pid = a.pid().unwrap();
    drop(a);
    // Dropped: Hydra is gone (reaped), the other one still answers.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(reqwest::get(format!("{}/health/alive", b.admin_url())).await.unwrap().status().is_success());
}
