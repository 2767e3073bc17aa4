//! The one error type of Gantry's operations. Its messages are safe to show
//! to the user; internal failures are logged with an id and shown only as
//! that id.

use gantry_cluster::ActionError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401: not signed in, or a bad or expired credential.
    Unauthenticated,
    /// 403: signed in, but the policy says no.
    Forbidden,
    /// 404
    NotFound,
    /// 400/422: the input is wrong; the message says which field and why.
    Invalid,
    /// 409: already exists, or changed concurrently.
    Conflict,
    /// 429: too many attempts.
    TooManyRequests,
    /// 503: a cluster or the database cannot be reached.
    Unavailable,
    /// 500: a bug or an unexpected failure; see the server log for the id.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Invalid => 422,
            ErrorKind::Conflict => 409,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    /// Extra context a user can act on, e.g. the current state after a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per-field problems for forms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<gantry_domain::validate::Invalid>,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError { kind, message: message.into(), detail: None, fields: Vec::new() }
    }

    pub fn unauthenticated(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Invalid, message)
    }

    pub fn conflict(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Conflict, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Unavailable, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ServiceError {
        let detail = detail.into();
        if !detail.is_empty() {
            self.detail = Some(detail);
        }
        self
    }

    /// Logs the real cause and returns an opaque error carrying a short id
    /// the operator can grep for.
    pub fn internal(cause: impl std::fmt::Display) -> ServiceError {
        let id = hex::encode(rand::random::<[u8; 4]>());
        tracing::error!(error_id = %id, "internal error: {cause}");
        ServiceError::new(ErrorKind::Internal, format!("something went wrong on the server (error id {id})"))
    }
}

impl From<gantry_domain::validate::Invalid> for ServiceError {
    fn from(invalid: gantry_domain::validate::Invalid) -> ServiceError {
        ServiceError { kind: ErrorKind::Invalid, message: invalid.to_string(), detail: None, fields: vec![invalid] }
    }
}

impl From<gantry_domain::manifest::Problems> for ServiceError {
    fn from(problems: gantry_domain::manifest::Problems) -> ServiceError {
        ServiceError { kind: ErrorKind::Invalid, message: problems.to_string(), detail: None, fields: problems.0 }
    }
}

impl From<gantry_store::Error> for ServiceError {
    fn from(error: gantry_store::Error) -> ServiceError {
        match error {
            gantry_store::Error::Conflict(message) => ServiceError::conflict(message),
            gantry_store::Error::NotFound => ServiceError::not_found("not found"),
            gantry_store::Error::Config(message) => ServiceError::unavailable(message),
            other => ServiceError::internal(other),
        }
    }
}

impl From<ActionError> for ServiceError {
    fn from(error: ActionError) -> ServiceError {
        match error {
            ActionError::NotFound(what) => ServiceError::not_found(format!("{what} was not found")),
            ActionError::AlreadyExists(what) => ServiceError::conflict(format!("{what} already exists")),
            ActionError::Conflict { message, current } => ServiceError::conflict(message)
                .with_detail(if current.is_empty() { String::new() } else { format!("now: {current}") }),
            ActionError::Invalid(message) => ServiceError::invalid(message),
            ActionError::Refused(message) => ServiceError::forbidden(format!("the cluster refused: {message}")),
            ActionError::Unavailable(message) => {
                ServiceError::unavailable(format!("the cluster is unreachable: {message}"))
            }
        }
    }
}
