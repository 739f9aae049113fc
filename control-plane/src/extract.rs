//! Extractors whose rejections use the shared error body: a malformed request is a clear 4xx,
//! never axum's plain-text rejection; and the caller's address ([`client_ip`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    extract::{
        ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection,
        rejection::QueryRejection,
    },
    http::{HeaderMap, StatusCode, request::Parts},
};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};

use crate::error::ApiError;

/// `axum::Json` with rejections in the shared shape. The body must be a JSON object (serde
/// would otherwise accept an array of field values for a struct); request types also deny
/// unknown fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Deserializes `T` from a JSON object only.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visitor(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<ObjectOnly<T>>::from_request(req, state).await {
            Ok(axum::Json(ObjectOnly(value))) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        JsonRejection::JsonSyntaxError(err) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "The body is not valid JSON: {}",
                inner_message(&err.body_text())
            ),
        ),
        JsonRejection::JsonDataError(err) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!(
                "The JSON body does not have the expected fields and types: {}",
                without_values(inner_message(&err.body_text()))
            ),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than this API accepts.",
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("The request body could not be read ({}).", other.status()),
        ),
    }
}

/// axum prefixes serde's message with a sentence of its own; keep serde's part.
fn inner_message(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(_, rest)| rest)
}

/// serde quotes the offending value in "invalid type/value" messages. A wrongly typed password
/// must not come back in a response (or reach a log), so keep only what was expected.
fn without_values(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(start) = message.find(marker) {
            let path = message[..start].trim_end_matches([':', ' ']);
            let expected = message[start..]
                .find(", expected ")
                .map_or("", |i| &message[start + i + 2..]);
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            };
            return format!("{prefix}wrong type or value, {expected}")
                .trim_end_matches(", ")
                .to_owned();
        }
    }
    message.to_owned()
}

/// `axum::extract::Path` with rejections in the shared shape: a malformed id is a 400.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "An id in the path is not a valid UUID.",
            )),
        }
    }
}

/// `axum::extract::Query` with rejections in the shared shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!(
            "The query string is invalid: {}",
            inner_message(&rejection.body_text())
        ),
    )
}

/// The caller's address: the socket peer, or the last `X-Forwarded-For` hop when the proxy in
/// front is trusted (the last hop is the one the proxy itself appended, so it cannot be forged).
pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    client_address(peer, &parts.headers, trust_forwarded_for)
}

/// [`client_ip`] from the socket peer and the headers.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    shared::client::address(peer, headers, trust_forwarded_for)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrongly_typed_values_are_not_echoed() {
        let msg = without_values(
            "password: invalid type: integer `12345678`, expected a string at line 1 column 30",
        );
        assert_eq!(
            msg,
            "password: wrong type or value, expected a string at line 1 column 30"
        );
        assert!(!msg.contains("12345678"));
    }

    #[test]
    fn other_messages_are_kept() {
        assert_eq!(
            without_values("missing field `email`"),
            "missing field `email`"
        );
    }
}
