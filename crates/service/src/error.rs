//! The error of Gantry's operations: the domain's wire error
//! ([`gantry_domain::error::Error`], one shape and one kind → status mapping
//! for every adapter), plus what only the service knows: how the store's and
//! the cluster's failures look to a user, and that an internal failure is
//! logged with an id and shown only as that id.

use std::ops::Deref;

use gantry_cluster::ActionError;
pub use gantry_domain::error::{Error as WireError, ErrorKind};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(WireError);

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError(WireError::new(kind, message))
    }

    pub fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::BadRequest, message)
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

    pub fn with_detail(self, detail: impl Into<String>) -> ServiceError {
        ServiceError(self.0.with_detail(detail))
    }

    /// Logs the real cause and returns an opaque error carrying a short id
    /// the operator can grep for.
    pub fn internal(cause: impl std::fmt::Display) -> ServiceError {
        let id = hex::encode(rand::random::<[u8; 4]>());
        tracing::error!(error_id = %id, "internal error: {cause}");
        ServiceError(WireError::internal_with_id(&id))
    }

    /// The error as it goes on the wire.
    pub fn into_wire(self) -> WireError {
        self.0
    }
}

impl Deref for ServiceError {
    type Target = WireError;

    fn deref(&self) -> &WireError {
        &self.0
    }
}

impl From<ServiceError> for WireError {
    fn from(error: ServiceError) -> WireError {
        error.0
    }
}

impl From<WireError> for ServiceError {
    fn from(error: WireError) -> ServiceError {
        ServiceError(error)
    }
}

impl From<gantry_domain::validate::Invalid> for ServiceError {
    fn from(invalid: gantry_domain::validate::Invalid) -> ServiceError {
        ServiceError(invalid.into())
    }
}

impl From<gantry_domain::manifest::Problems> for ServiceError {
    fn from(problems: gantry_domain::manifest::Problems) -> ServiceError {
        ServiceError(WireError::new(ErrorKind::Invalid, problems.to_string()).with_fields(problems.0))
    }
}

impl From<gantry_store::Error> for ServiceError {
    fn from(error: gantry_store::Error) -> ServiceError {
        match error {
            gantry_store::Error::Conflict(message) => ServiceError::conflict(message),
            gantry_store::Error::NotFound => ServiceError::not_found("not found"),
            gantry_store::Error::Config(message) => ServiceError::unavailable(message),
            other if other.is_disk_full() => {
                tracing::error!("the database's disk is full: {other}");
                ServiceError::unavailable("the database's disk is full: nothing can be saved until space is freed")
            }
            other if other.is_unreachable() => {
                tracing::warn!("the database is unreachable: {other}");
                ServiceError::unavailable("the database cannot be reached; try again in a moment")
            }
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
