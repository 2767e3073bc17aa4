//! The error every server function returns. On the server it comes from the
//! service layer's `ServiceError`; the HTTP status is set to match, so a
//! refusal is a 403 and bad input a 422, never a 500.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// unauthenticated, forbidden, not_found, invalid, conflict,
    /// too_many_requests, unavailable, internal or request.
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl AppError {
    pub fn new(kind: &str, message: impl Into<String>) -> AppError {
        AppError { kind: kind.to_string(), message: message.into(), detail: None, fields: Vec::new() }
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|f| f.field == name).map(|f| f.message.clone())
    }

    pub fn is_signed_out(&self) -> bool {
        self.kind == "unauthenticated"
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Malformed arguments and transport failures: say what happened
        // without internals.
        let message = match &value {
            ServerFnErrorErr::Args(e) => format!("the request was not understood: {e}"),
            ServerFnErrorErr::Request(_) => "the server could not be reached; check your connection".to_string(),
            ServerFnErrorErr::Response(_) => "the server's answer could not be read".to_string(),
            ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::Serialization(_) => {
                "the data could not be read".to_string()
            }
            other => other.to_string(),
        };
        AppError::new("request", message)
    }
}

#[cfg(feature = "ssr")]
impl From<gantry_service::ServiceError> for AppError {
    fn from(error: gantry_service::ServiceError) -> AppError {
        let kind =
            serde_json::to_value(error.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        AppError {
            kind,
            message: error.message,
            detail: error.detail,
            fields: error.fields.into_iter().map(|f| FieldError { field: f.field, message: f.message }).collect(),
        }
    }
}
