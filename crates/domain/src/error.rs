//! The one error shape Gantry answers with: on the REST API (`{"error": …}`),
//! from server functions, and in the browser, which decodes the same type.
//! Its messages are safe to show to the user; internal failures carry only an
//! id that the server logged with the real cause.

use serde::{Deserialize, Serialize};

use crate::validate::Invalid;

/// What went wrong, from the caller's point of view. Each kind has one HTTP
/// status, here and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request itself could not be read (a malformed body, path or query).
    BadRequest,
    /// 401: not signed in, or a bad or expired credential.
    Unauthenticated,
    /// 403: signed in, but the policy says no.
    Forbidden,
    /// 404
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: already exists, or changed concurrently.
    Conflict,
    /// 413: the body is larger than Gantry accepts.
    TooLarge,
    /// 422: the input is wrong; the message says which field and why.
    Invalid,
    /// 429: too many attempts, or too busy to check another password now.
    TooManyRequests,
    /// 503: a cluster or the database cannot be reached.
    Unavailable,
    /// 500: a bug or an unexpected failure; the server log has the id.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Invalid => 422,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The kind an HTTP status stands for (for answers that did not come from Gantry's code).
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::TooLarge,
            422 => ErrorKind::Invalid,
            429 => ErrorKind::TooManyRequests,
            503 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Invalid => "invalid",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error as a user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Extra context a user can act on, e.g. the current state after a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per-field problems, for forms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Invalid>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), detail: None, fields: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadRequest, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// The opaque answer to an internal failure whose cause was logged under `id`.
    pub fn internal_with_id(id: &str) -> Error {
        Error::new(ErrorKind::Internal, format!("something went wrong on the server (error id {id})"))
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        let detail = detail.into();
        if !detail.is_empty() {
            self.detail = Some(detail);
        }
        self
    }

    pub fn with_fields(mut self, fields: Vec<Invalid>) -> Error {
        self.fields = fields;
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The problem with one form field, if the error names it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.field == name).map(|f| f.message.as_str())
    }

    pub fn is_signed_out(&self) -> bool {
        self.kind == ErrorKind::Unauthenticated
    }
}

impl From<Invalid> for Error {
    fn from(invalid: Invalid) -> Error {
        Error { kind: ErrorKind::Invalid, message: invalid.to_string(), detail: None, fields: vec![invalid] }
    }
}

/// The body of every error response of the REST API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorKind; 11] = [
        ErrorKind::BadRequest,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::TooLarge,
        ErrorKind::Invalid,
        ErrorKind::TooManyRequests,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    #[test]
    fn every_kind_has_one_status_and_one_name_and_round_trips() {
        for kind in ALL {
            assert_eq!(ErrorKind::from_status(kind.status()), kind, "{kind:?}");
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(serde_json::from_value::<ErrorKind>(json).unwrap(), kind);
        }
        assert_eq!(ErrorKind::from_status(418), ErrorKind::BadRequest);
        assert_eq!(ErrorKind::from_status(502), ErrorKind::Internal);
    }

    #[test]
    fn the_wire_shape_is_stable() {
        let error = Error::from(Invalid::new("replicas", "must not be negative")).with_detail("now: 3");
        let json = serde_json::to_value(ErrorBody { error }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "error": {
                "kind": "invalid",
                "message": "replicas: must not be negative",
                "detail": "now: 3",
                "fields": [ { "field": "replicas", "message": "must not be negative" } ]
            } })
        );
        let plain = serde_json::to_value(Error::forbidden("no")).unwrap();
        assert_eq!(plain, serde_json::json!({ "kind": "forbidden", "message": "no" }));
    }
}
