//! The error every server function returns: the domain's one wire error
//! ([`gantry_domain::error::Error`]), wrapped only because the server-function
//! framework's trait must be implemented on a type of this crate. It carries
//! the same JSON both ways; the HTTP status comes from its kind, so a refusal
//! is a 403 and bad input a 422, never a 500.

use std::ops::Deref;

use gantry_domain::error::Error;
pub use gantry_domain::error::ErrorKind;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct AppError(pub Error);

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError(Error::new(kind, message))
    }
}

impl Deref for AppError {
    type Target = Error;

    fn deref(&self) -> &Error {
        &self.0
    }
}

impl From<Error> for AppError {
    fn from(error: Error) -> AppError {
        AppError(error)
    }
}

impl From<gantry_domain::validate::Invalid> for AppError {
    fn from(invalid: gantry_domain::validate::Invalid) -> AppError {
        AppError(invalid.into())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Malformed arguments and transport failures: say what happened
        // without internals. On the server these are the caller's mistake.
        let message = match &value {
            ServerFnErrorErr::Args(e) => format!("the request was not understood: {e}"),
            ServerFnErrorErr::Request(_) => "the server could not be reached; check your connection".to_string(),
            ServerFnErrorErr::Response(_) => "the server's answer could not be read".to_string(),
            ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::Serialization(_) => {
                "the data could not be read".to_string()
            }
            other => other.to_string(),
        };
        AppError::new(ErrorKind::BadRequest, message)
    }
}

#[cfg(feature = "ssr")]
impl From<gantry_service::ServiceError> for AppError {
    fn from(error: gantry_service::ServiceError) -> AppError {
        AppError(error.into_wire())
    }
}
