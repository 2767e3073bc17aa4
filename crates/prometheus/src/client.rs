//! The HTTP side: one client per Prometheus URL, its two calls, and what each kind of answer
//! means.

use std::fmt;
use std::time::{Duration, Instant};

use gantry_domain::usage::Span;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::utilisation::{
    DEV_GPU_UTIL, PROF_GR_ENGINE_ACTIVE, PodUtilisation, Series, evaluation_time, per_pod, promql,
};
use crate::{PrometheusError, Result};

/// How long [`Client::probe`] waits for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long each query may take, all told.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// What Prometheus is asked to give up after, a second before we do, so that a slow query
/// ends with its own "query timed out" rather than a silent hang-up.
const SERVER_TIMEOUT: &str = "9s";
/// The most an answer may be: per-pod means of a large fleet are a few MiB; anything bigger
/// is not such an answer.
const MAX_BODY: usize = 64 << 20;
/// How much of a foreign answer an error quotes.
const QUOTE_CHARS: usize = 120;

/// A Prometheus HTTP API at one base URL (`http(s)://host[:port][/prefix]`). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// Ends with `/`, without user, password, query or fragment.
    base: Url,
    /// `Bearer <token>`, marked sensitive.
    authorization: Option<HeaderValue>,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base.as_str())
            .field("bearer", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the Prometheus at `url`, sending `bearer` (surrounding whitespace
    /// trimmed; empty means none) as `Authorization: Bearer`. Refuses a URL that is not http
    /// or https with a host, or that holds a user name or password (credentials belong in the
    /// token, which is kept secret, not in a URL that is shown). Contacts nothing.
    pub fn new(url: &str, bearer: Option<String>) -> Result<Client> {
        let base = base_url(url)?;
        let authorization = match bearer.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| PrometheusError::InvalidToken("it holds a line break or another control character"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            // A fresh connection per request. Gantry asks a few times an hour, so a pool saves
            // nothing, and a kept-alive connection to a Prometheus that has since stopped fails
            // with "connection closed before message completed" instead of "connection refused".
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| PrometheusError::InvalidUrl(format!("cannot build an HTTP client for it: {e}")))?;
        Ok(Client { base, authorization, http })
    }

    /// The base URL, as normalised (ending with `/`).
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Proves a Prometheus answers at the URL, within [`PROBE_TIMEOUT`]: its
    /// `/api/v1/status/buildinfo` gives its version, which this returns. A query front-end
    /// that does not serve that endpoint fails as [`PrometheusError::NotPrometheus`].
    pub async fn probe(&self) -> Result<String> {
        let path = "api/v1/status/buildinfo";
        let data = self.get(path, &[], PROBE_TIMEOUT).await?;
        match data.get("version").and_then(Value::as_str) {
            Some(version) if !version.is_empty() => Ok(version.to_string()),
            _ => Err(PrometheusError::NotPrometheus(format!(
                "{} answered without a version: `{}`",
                self.endpoint(path),
                quote(data.to_string().as_bytes())
            ))),
        }
    }

    /// The mean GPU utilisation of each pod over `span` (Unix ms, `[start, end)`), from the
    /// samples Prometheus holds in it; an empty span has none. Two instant queries (see
    /// [`promql`]) run at once, each within [`QUERY_TIMEOUT`]. A pod that ran for part of the
    /// span has the mean of that part.
    pub async fn utilisation(&self, span: Span) -> Result<Vec<PodUtilisation>> {
        if span.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let (prof, util) = tokio::try_join!(self.vector(PROF_GR_ENGINE_ACTIVE, span), self.vector(DEV_GPU_UTIL, span))?;
        let pods = per_pod(&prof, &util);
        tracing::debug!(
            url = %self.base,
            span_ms = span.len(),
            series = prof.len() + util.len(),
            pods = pods.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "GPU utilisation read from Prometheus"
        );
        Ok(pods)
    }

    /// The instant query of `metric` for `span`: its series.
    async fn vector(&self, metric: &str, span: Span) -> Result<Vec<Series>> {
        let query = promql(metric, span);
        let at = evaluation_time(span);
        let data = self
            .get("api/v1/query", &[("query", &query), ("time", &at), ("timeout", SERVER_TIMEOUT)], QUERY_TIMEOUT)
            .await?;
        vector_of(&data).map_err(|what| {
            PrometheusError::BadAnswer(format!("{} for `{query}`: {what}", self.endpoint("api/v1/query")))
        })
    }

    fn endpoint(&self, path: &str) -> Url {
        // `path` is one of ours, relative and plain, and the base is absolute.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// GETs an API endpoint within `timeout`; the `data` of a successful answer.
    async fn get(&self, path: &str, params: &[(&str, &str)], timeout: Duration) -> Result<Value> {
        let url = self.endpoint(path);
        let mut request = self.http.get(url.clone()).query(params).timeout(timeout);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let started = Instant::now();
        let mut response = request.send().await.map_err(|e| unreachable(&url, &e, timeout))?;
        let status = response.status();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&url, &e, timeout))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(PrometheusError::BadAnswer(format!("{url} answered more than {} MiB", MAX_BODY >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::trace!(%url, status = status.as_u16(), bytes = body.len(), elapsed_ms, "Prometheus answered");
        interpret(&url, status, &content_type, &body, self.authorization.is_some())
    }
}

/// `text` as a base URL ending with `/`, or why it cannot be one.
fn base_url(text: &str) -> Result<Url> {
    let text = text.trim();
    let invalid = |problem: String| PrometheusError::InvalidUrl(problem);
    let example = "write it like http://prometheus.monitoring.svc:9090";
    if !text.contains("://") {
        return Err(invalid(format!("`{}` does not start with http:// or https://; {example}", shown(text))));
    }
    let mut url =
        Url::parse(text).map_err(|e| invalid(format!("`{}` cannot be read as a URL ({e}); {example}", shown(text))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("`{}` is {}://, not http:// or https://", shown(text), url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("`{}` has no host; {example}", shown(text))));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "`{}` holds a user name or password; give the bearer token separately",
            shown(text)
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "`{}` has a query or fragment; give only the address and any path prefix",
            shown(text)
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A URL as typed, for an error: whatever precedes an `@` in it may be a password.
fn shown(text: &str) -> String {
    match (text.split_once("://"), text.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://…@{host}")
        }
        (None, Some(_)) => "…".to_string(),
        _ => text.to_string(),
    }
}

/// A failure before any answer: the cause in words, after the URL.
fn unreachable(url: &Url, error: &reqwest::Error, timeout: Duration) -> PrometheusError {
    if error.is_timeout() {
        return PrometheusError::Unreachable(format!("{url}: no answer within {} s", timeout.as_secs()));
    }
    let mut innermost: &dyn std::error::Error = error;
    let mut io_kind = None;
    while let Some(source) = innermost.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = source;
    }
    let cause = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (is it running, and is the port right?)".into()
        }
        Some(std::io::ErrorKind::TimedOut) => format!("no answer within {} s", timeout.as_secs()),
        _ => one_line(&innermost.to_string()),
    };
    PrometheusError::Unreachable(format!("{url}: {cause}"))
}

/// The envelope of every Prometheus HTTP API answer.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// What an answer means: Prometheus's `data`, or the error that says what came back.
/// `with_token`: whether a bearer token was sent, which is what a 401 or 403 is about.
fn interpret(url: &Url, status: StatusCode, content_type: &str, body: &[u8], with_token: bool) -> Result<Value> {
    let envelope =
        serde_json::from_slice::<Envelope>(body).ok().filter(|e| matches!(e.status.as_str(), "success" | "error"));
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    match envelope {
        Some(Envelope { status, data: Some(data), warnings, .. }) if status == "success" && code < 300 => {
            for warning in warnings {
                tracing::warn!(%url, "Prometheus warns: {warning}");
            }
            Ok(data)
        }
        Some(Envelope { status, error_type, error, .. }) if status == "error" => {
            let kind = error_type.filter(|t| !t.is_empty()).map(|t| format!("{t}: ")).unwrap_or_default();
            Err(PrometheusError::Refused(code, one_line(&format!("{kind}{}", error.unwrap_or_default()))))
        }
        _ if code < 300 => Err(PrometheusError::NotPrometheus(format!(
            "{url} answered {code} {reason} with {}, not Prometheus's API",
            describe(content_type, body)
        ))),
        _ if code == 404 => Err(PrometheusError::NotPrometheus(format!(
            "{url} answered 404 Not Found: no Prometheus API at this address (is the path prefix right?)"
        ))),
        _ if code == 401 || code == 403 => {
            let advice = if with_token {
                "is the bearer token right, and allowed to query?"
            } else {
                "it wants credentials: give the cluster a bearer token"
            };
            Err(PrometheusError::Refused(code, format!("{}; {advice}", refusal(reason, content_type, body))))
        }
        _ => Err(PrometheusError::Refused(code, refusal(reason, content_type, body))),
    }
}

/// A refusal that is not Prometheus's own: the status's reason, and what came with it
/// unless that only says the same.
fn refusal(reason: &str, content_type: &str, body: &[u8]) -> String {
    let described = describe(content_type, body);
    if described.trim_matches('`').eq_ignore_ascii_case(reason) {
        reason.to_string()
    } else {
        format!("{reason} ({described})")
    }
}

/// A foreign answer in a few words.
fn describe(content_type: &str, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start();
    if text.is_empty() {
        "an empty body".into()
    } else if content_type.contains("html") || text.starts_with('<') {
        "an HTML page".into()
    } else {
        format!("`{}`", quote(body))
    }
}

/// The first line of `body`, shortened.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.trim().lines().next().unwrap_or_default();
    let mut quoted: String = line.chars().take(QUOTE_CHARS).collect();
    if line.chars().count() > QUOTE_CHARS {
        quoted.push('…');
    }
    one_line(&quoted)
}

/// `text` without line breaks or other control characters.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The series of an instant query's `data`, or what is wrong with it.
fn vector_of(data: &Value) -> Result<Vec<Series>, String> {
    #[derive(Deserialize)]
    struct Sample {
        metric: std::collections::BTreeMap<String, String>,
        value: (Value, String),
    }
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {}
        other => return Err(format!("a result of type {other:?}, not a vector")),
    }
    let samples: Vec<Sample> = serde_json::from_value(data.get("result").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("a vector Gantry cannot read ({e})"))?;
    samples
        .into_iter()
        .map(|s| {
            let value =
                s.value.1.parse::<f64>().map_err(|_| format!("a value `{}` that is not a number", s.value.1))?;
            Ok(Series { labels: s.metric, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://prom:9090/api/v1/query").unwrap()
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        for (text, expected) in [
            ("http://prom:9090", "http://prom:9090/"),
            (" https://example.com/prometheus ", "https://example.com/prometheus/"),
            ("https://example.com/prometheus/", "https://example.com/prometheus/"),
        ] {
            assert_eq!(base_url(text).unwrap().as_str(), expected);
        }
        for (text, problem) in [
            ("ftp://x", "`ftp://x` is ftp://, not http:// or https://"),
            ("http://", "`http://` cannot be read as a URL (empty host)"),
            ("not a url", "`not a url` does not start with http:// or https://"),
            ("prom:9090", "`prom:9090` does not start with http:// or https://"),
            ("http://prom:99999", "invalid port number"),
            ("https://admin:hunter2@prom", "`https://…@prom` holds a user name or password"),
            ("http://prom/?x=1", "has a query or fragment"),
        ] {
            let err = base_url(text).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, PrometheusError::InvalidUrl(_)), "{text}: {err:?}");
            assert!(message.contains(problem), "{text}: {message}");
            assert!(!message.contains("hunter2") && !message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn the_token_is_sent_but_never_shown() {
        let client = Client::new("http://prom:9090", Some(" s3cret\n".into())).unwrap();
        let header = client.authorization.as_ref().unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
        assert!(header.is_sensitive());
        let debug = format!("{client:?}");
        assert!(!debug.contains("s3cret") && debug.contains("<redacted>"), "{debug}");
        assert!(Client::new("http://prom:9090", Some("  ".into())).unwrap().authorization.is_none());
        let err = Client::new("http://prom:9090", Some("a\nb".into())).unwrap_err();
        assert!(matches!(err, PrometheusError::InvalidToken(_)) && !err.to_string().contains("a\nb"), "{err}");
    }

    #[test]
    fn answers_read_as_one_actionable_line() {
        let ok =
            |code: u16, body: &str| interpret(&url(), StatusCode::from_u16(code).unwrap(), "", body.as_bytes(), false);
        let html = |code: u16, body: &str| {
            interpret(&url(), StatusCode::from_u16(code).unwrap(), "text/html; charset=utf-8", body.as_bytes(), true)
        };
        assert_eq!(ok(200, r#"{"status":"success","data":{"version":"3.1.0"}}"#).unwrap()["version"], "3.1.0");
        let cases = [
            (
                ok(400, r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error:\nunexpected"}"#),
                PrometheusError::Refused(400, "bad_data: 1:5: parse error: unexpected".into()),
            ),
            (
                ok(503, r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#),
                PrometheusError::Refused(503, "timeout: query timed out in expression evaluation".into()),
            ),
            (
                html(200, "<!doctype html><title>Grafana</title>"),
                PrometheusError::NotPrometheus(
                    "http://prom:9090/api/v1/query answered 200 OK with an HTML page, not Prometheus's API".into(),
                ),
            ),
            (
                ok(200, "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE …"),
                PrometheusError::NotPrometheus(
                    "http://prom:9090/api/v1/query answered 200 OK with `# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).`, not Prometheus's API".into(),
                ),
            ),
            (
                ok(200, r#"{"status":"ok"}"#),
                PrometheusError::NotPrometheus(
                    "http://prom:9090/api/v1/query answered 200 OK with `{\"status\":\"ok\"}`, not Prometheus's API".into(),
                ),
            ),
            (
                ok(404, ""),
                PrometheusError::NotPrometheus(
                    "http://prom:9090/api/v1/query answered 404 Not Found: no Prometheus API at this address (is the path prefix right?)".into(),
                ),
            ),
            (
                ok(401, "Unauthorized\n"),
                PrometheusError::Refused(401, "Unauthorized; it wants credentials: give the cluster a bearer token".into()),
            ),
            (
                html(403, "<html>Forbidden</html>"),
                PrometheusError::Refused(
                    403,
                    "Forbidden (an HTML page); is the bearer token right, and allowed to query?".into(),
                ),
            ),
            (html(502, "<html>bad gateway</html>"), PrometheusError::Refused(502, "Bad Gateway (an HTML page)".into())),
        ];
        for (got, want) in cases {
            assert_eq!(got.unwrap_err(), want);
        }
    }

    #[test]
    fn vectors_are_read_and_other_results_refused() {
        let data = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"namespace": "ml", "pod": "a"}, "value": [1.5, "0.25"]},
            {"metric": {"namespace": "ml", "pod": "b"}, "value": [1.5, "NaN"]},
        ]});
        let series = vector_of(&data).unwrap();
        assert_eq!(series[0].value, 0.25);
        assert_eq!(series[0].labels["pod"], "a");
        assert!(series[1].value.is_nan());
        assert!(vector_of(&serde_json::json!({"resultType": "matrix", "result": []})).unwrap_err().contains("matrix"));
        let bad = serde_json::json!({"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]});
        assert!(vector_of(&bad).unwrap_err().contains("`x`"));
    }
}
