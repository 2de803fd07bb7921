//! Error classes and their one HTTP status mapping.

use serde::{Deserialize, Serialize};

/// What kind of failure happened, independent of where. Every crate maps its errors onto one of these, and
/// [`ErrorClass::http_status`] is the only place that turns a class into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The request or upload was malformed or failed validation.
    InvalidInput,
    /// Missing or wrong API token.
    Unauthorized,
    /// The caller may not do this (a webhook origin that is not allowed).
    Forbidden,
    /// No such function, route or resource.
    NotFound,
    /// The method is not accepted at this path (a webhook takes POST and OPTIONS).
    MethodNotAllowed,
    /// The change conflicts with existing state (route taken, concurrent update).
    Conflict,
    /// Request body larger than the function's limit.
    PayloadTooLarge,
    /// The function ran past its timeout.
    Timeout,
    /// The guest trapped, exceeded its memory limit or returned no response.
    GuestFailure,
    /// The function's queue is full: retry later (429 with `Retry-After`).
    Overloaded,
    /// No instance became free in time, or the platform is shutting down (503).
    Unavailable,
    /// The node has no instance slot left (its pooling allocator is full of running or provisioned
    /// instances): 503 with `Retry-After`, never a guest failure.
    Capacity,
    /// A bug or an IO failure inside the platform.
    Internal,
}

impl ErrorClass {
    /// The HTTP status a client sees for this class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::InvalidInput => 400,
            ErrorClass::Unauthorized => 401,
            ErrorClass::Forbidden => 403,
            ErrorClass::NotFound => 404,
            ErrorClass::MethodNotAllowed => 405,
            ErrorClass::Conflict => 409,
            ErrorClass::PayloadTooLarge => 413,
            ErrorClass::Timeout => 504,
            ErrorClass::GuestFailure => 500,
            ErrorClass::Overloaded => 429,
            ErrorClass::Unavailable | ErrorClass::Capacity => 503,
            ErrorClass::Internal => 500,
        }
    }

    /// A short, stable code for JSON error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorClass::InvalidInput => "invalid_input",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::NotFound => "not_found",
            ErrorClass::MethodNotAllowed => "method_not_allowed",
            ErrorClass::Conflict => "conflict",
            ErrorClass::PayloadTooLarge => "payload_too_large",
            ErrorClass::Timeout => "timeout",
            ErrorClass::GuestFailure => "guest_failure",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Capacity => "capacity",
            ErrorClass::Internal => "internal",
        }
    }

    /// Whether the message may be shown to an invoking client. Guest and internal failures are shown only as
    /// an invocation id; the details go to the logs.
    pub fn client_visible(self) -> bool {
        !matches!(self, ErrorClass::GuestFailure | ErrorClass::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let table = [
            (ErrorClass::InvalidInput, 400),
            (ErrorClass::Unauthorized, 401),
            (ErrorClass::Forbidden, 403),
            (ErrorClass::NotFound, 404),
            (ErrorClass::MethodNotAllowed, 405),
            (ErrorClass::Conflict, 409),
            (ErrorClass::PayloadTooLarge, 413),
            (ErrorClass::Timeout, 504),
            (ErrorClass::GuestFailure, 500),
            (ErrorClass::Overloaded, 429),
            (ErrorClass::Unavailable, 503),
            (ErrorClass::Capacity, 503),
            (ErrorClass::Internal, 500),
        ];
        for (class, status) in table {
            assert_eq!(class.http_status(), status, "{class:?}");
        }
        assert!(!ErrorClass::GuestFailure.client_visible());
        assert!(ErrorClass::PayloadTooLarge.client_visible());
    }
}
