//! Our extractors: axum's `Json`, `Path` and `Query` whose rejections are problems with a
//! fixed, helpful detail (never serde's text), and strict parsing of known query parameters
//! (a bad value is a 400 naming the parameter; unknown parameters are ignored).

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// A JSON body in, a JSON document out.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let detail = match &rejection {
            JsonRejection::MissingJsonContentType(_) => "the body must be sent as Content-Type: application/json",
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON",
            JsonRejection::JsonDataError(_) => "the body is JSON but not the document this route expects",
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => "the body is larger than this route accepts",
            _ => "the body could not be read",
        };
        ApiError::new(rejection.status(), detail)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        let PathRejection::FailedToDeserializePathParams(failed) = &rejection else {
            // The route and its handler disagree: a bug of ours, not of the caller.
            return ApiError::internal(rejection);
        };
        let detail = match failed.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => format!("path parameter {key} is not valid UTF-8"),
            ErrorKind::ParseErrorAtKey { key, expected_type, .. } if is_integer(expected_type) => {
                format!("path parameter {key} must be an integer")
            }
            ErrorKind::ParseErrorAtKey { key, .. } => format!("path parameter {key} has the wrong form"),
            ErrorKind::ParseError { expected_type, .. } if is_integer(expected_type) => {
                "the identifier in the path must be an integer".to_owned()
            }
            _ => "a path parameter has the wrong form".to_owned(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "the query string cannot be read")
    }
}

fn is_integer(type_name: &str) -> bool {
    ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize"].contains(&type_name)
}

/// The query string as name → value (the last of repeated names wins).
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        Ok(Params(map))
    }
}

impl Params {
    /// The raw value of `name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `name` parsed as `T`; given but unparsable is a 400 that says what was expected.
    pub fn parse<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("{name} must be {expected}"))),
        }
    }

    /// `name` as `true` or `false` exactly; empty means not given (a form's empty choice).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.text(name) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be true or false"),
            )),
        }
    }
}
