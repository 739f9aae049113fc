//! `X-Request-Id`: a client's own id is kept (so its logs and ours share it) only when it is
//! short and plain: at most 128 characters of letters, digits and `-_.:+=/`. Anything else is
//! dropped and the daemon makes a new id, so a client can neither inflate every log line nor
//! write into it.

use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, Request},
};
use tower::{
    ServiceBuilder,
    layer::util::{Identity, Stack},
    util::MapRequestLayer,
};
use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};

/// Longest id kept.
pub const MAX_LEN: usize = 128;
/// The header that carries the id, on requests and responses.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a client's id may be kept.
pub fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+=/".contains(b))
}

/// The client's id, if it sent exactly one and it may be kept.
fn kept<B>(request: &Request<B>) -> Option<&HeaderValue> {
    let mut values = request.headers().get_all(&HEADER).iter();
    match (values.next(), values.next()) {
        (Some(first), None) if acceptable(first) => Some(first),
        _ => None,
    }
}

/// Removes an unacceptable `X-Request-Id` (and any repeated one) before the id layer runs.
pub fn sanitize<B>(mut request: Request<B>) -> Request<B> {
    if kept(&request).is_none() {
        request.headers_mut().remove(&HEADER);
    }
    request
}

/// The request's id after [`sanitize`]: the client's, or a new UUID set on the request. The
/// same as the [`assign`] layers, for a service that does it inline.
pub fn ensure<B>(request: &mut Request<B>) -> HeaderValue {
    if let Some(id) = kept(request) {
        return id.clone();
    }
    let headers = request.headers_mut();
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    let value = HeaderValue::from_str(id).expect("a UUID is a valid header value");
    headers.insert(HEADER, value.clone());
    value
}

/// The layers that give every request its id, outermost first: [`sanitize`], then a new UUID
/// where none is left. Both daemons put their trace layer (whose span shows the id) and the
/// layer that copies the id onto the response right after these.
pub type Assign = ServiceBuilder<
    Stack<SetRequestIdLayer<MakeRequestUuid>, Stack<MapRequestLayer<Sanitize>, Identity>>,
>;
type Sanitize = fn(Request<Body>) -> Request<Body>;

/// See [`Assign`].
pub fn assign() -> Assign {
    ServiceBuilder::new()
        .layer(MapRequestLayer::new(sanitize::<Body> as Sanitize))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_ids_are_kept_and_others_dropped() {
        for good in ["abc", "3f2c9a1e-0b7d-4f0e-9d55-1b2c3d4e5f60", "req:42/a+b="] {
            assert!(acceptable(&HeaderValue::from_static(good)), "{good}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "with space", "new\tline", "ünï", long.as_str()] {
            let value = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            assert!(!acceptable(&value), "{bad}");
        }
    }

    #[test]
    fn ensure_keeps_one_plain_id_and_replaces_anything_else() {
        let with = |values: &[&str]| {
            let mut request = Request::new(());
            for value in values {
                request
                    .headers_mut()
                    .append(HEADER, HeaderValue::from_str(value).unwrap());
            }
            let id = ensure(&mut request);
            let on_request: Vec<_> = request.headers().get_all(HEADER).iter().cloned().collect();
            assert_eq!(
                on_request,
                std::slice::from_ref(&id),
                "exactly the returned id is on the request"
            );
            id
        };
        assert_eq!(with(&["client-id-1"]), "client-id-1");
        for replaced in [&[][..], &["with space"], &["a", "b"]] {
            let id = with(replaced);
            assert!(
                uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
                "{replaced:?}"
            );
        }
    }
}
