//! Cross-site request forgery guard: a state-changing request that carries the session cookie
//! must come from this API's own origin or an origin allowed in `CORS_ALLOWED_ORIGINS`.
//! Requests authenticated with an `Authorization` header are not at risk (a browser never adds
//! that header on its own), and neither are requests without the cookie.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use axum_extra::extract::CookieJar;

use crate::{error::ApiError, session::cookie::SESSION_COOKIE, state::AppState};

/// Middleware applying the rule above.
pub async fn require_same_origin_for_cookies(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if is_state_changing(request.method())
        && uses_session_cookie(request.headers())
        && !origin_allowed(request.headers(), &state.config.cors_allowed_origins)
    {
        return ApiError::forbidden(
            "cross_origin_request",
            "A cookie-authenticated request from another origin was refused.",
        )
        .into_response();
    }
    next.run(request).await
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn uses_session_cookie(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION)
        && CookieJar::from_headers(headers)
            .get(SESSION_COOKIE)
            .is_some()
}

/// An absent `Origin` is allowed (non-browser clients; browsers always send it on cross-site
/// writes). `Sec-Fetch-Site: cross-site` is refused whatever `Origin` says.
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v == "cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    // Same origin: the Origin's authority is the Host this request was sent to.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, authority), (Some(h), Some(a)) if h.eq_ignore_ascii_case(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn same_origin_and_listed_origins_pass() {
        assert!(origin_allowed(
            &headers(&[
                ("host", "cp.example.com"),
                ("origin", "https://cp.example.com")
            ]),
            &[]
        ));
        assert!(origin_allowed(
            &headers(&[
                ("host", "cp.example.com"),
                ("origin", "https://ui.example.com")
            ]),
            &["https://ui.example.com".to_owned()]
        ));
        assert!(origin_allowed(&headers(&[("host", "cp.example.com")]), &[]));
    }

    #[test]
    fn foreign_origins_fail() {
        assert!(!origin_allowed(
            &headers(&[
                ("host", "cp.example.com"),
                ("origin", "https://evil.example")
            ]),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(&[("host", "cp.example.com"), ("origin", "null")]),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(&[("host", "cp.example.com"), ("sec-fetch-site", "cross-site")]),
            &[]
        ));
    }
}
