/// What can go wrong talking to a Prometheus. Each reads as one line a person can act on,
/// and none holds the bearer token or a password from a URL.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PrometheusError {
    /// The URL cannot name a Prometheus; the text says why.
    #[error("invalid Prometheus URL: {0}")]
    InvalidUrl(String),

    /// The bearer token cannot travel in an HTTP header (it is not shown).
    #[error("invalid Prometheus bearer token: {0}")]
    InvalidToken(&'static str),

    /// Nothing answered: the connection was refused, the name did not resolve, or no answer
    /// came in time. The text names the URL and the cause.
    #[error("Prometheus is unreachable: {0}")]
    Unreachable(String),

    /// Something answered, but not a Prometheus HTTP API: what came back, and from where.
    #[error("not a Prometheus: {0}")]
    NotPrometheus(String),

    /// Prometheus (or a proxy in front of it) refused with this HTTP status; the message is
    /// Prometheus's own error text where it gave one.
    #[error("Prometheus refused ({0}): {1}")]
    Refused(u16, String),

    /// A Prometheus answer Gantry cannot read: what was wrong with it.
    #[error("unreadable answer from Prometheus: {0}")]
    BadAnswer(String),
}

pub type Result<T, E = PrometheusError> = std::result::Result<T, E>;
