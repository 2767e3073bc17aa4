use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The fleet file is invalid; nothing was started.
    #[error("invalid fleet file {origin}: {message}{excerpt}")]
    Fleet {
        origin: String,
        /// serde_yaml's message: field path, reason, line and column.
        message: String,
        /// The offending line of the file, when known.
        excerpt: String,
        /// 1-based line and column.
        location: Option<(usize, usize)>,
    },

    /// A fleet built in code breaks a rule (fleet files are checked while parsing).
    #[error("invalid fleet: {0}")]
    FleetRules(String),

    /// The Kubernetes binaries are missing and could not be built.
    #[error("the Kubernetes binaries are not available: {0}")]
    Binaries(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),

    /// A control-plane process exited when it should be running.
    #[error("cluster `{cluster}`: {component} exited ({status}); last lines of {}:\n{tail}", log.display())]
    ComponentDied { cluster: String, component: &'static str, status: String, log: PathBuf, tail: String },

    #[error("cluster `{cluster}`: timed out after {seconds}s waiting for {what}{detail}")]
    Timeout {
        cluster: String,
        what: String,
        seconds: u64,
        /// Extra context, such as the tail of a component's log.
        detail: String,
    },

    #[error("cluster `{cluster}`: {context}: {source}")]
    Kube {
        cluster: String,
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("cluster `{cluster}`: {message}")]
    Cluster { cluster: String, message: String },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub(crate) fn kube(cluster: &str, context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let cluster = cluster.to_string();
        let context = context.into();
        move |source| Error::Kube { cluster, context, source }
    }
}
