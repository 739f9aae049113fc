//! Malformed requests of every shape get the right 4xx with the shared body, and leave the
//! database exactly as it was.

use reqwest::{Method, StatusCode};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, assert_error, snapshot, spawn_app};

struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

fn case(
    what: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
    code: &'static str,
) -> Case {
    Case {
        what,
        method: Method::POST,
        path,
        content_type,
        body: body.into(),
        status,
        code,
    }
}

fn cases() -> Vec<Case> {
    const JSON: Option<&str> = Some("application/json");
    const SIGNUP: &str = "/api/v1/signup";
    const SIGNIN: &str = "/api/v1/signin";
    let huge = format!(
        r#"{{"email":"x@example.com","password":"{}"}}"#,
        "a".repeat(200_000)
    );
    let mut all = vec![
        case(
            "bad JSON",
            SIGNUP,
            JSON,
            r#"{"email": "a@example.com", "password": "#,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        case(
            "not JSON at all",
            SIGNIN,
            JSON,
            "email=a&password=b",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        case(
            "empty body",
            SIGNUP,
            JSON,
            "",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        case(
            "invalid UTF-8",
            SIGNUP,
            JSON,
            b"{\"email\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        case(
            "wrong type",
            SIGNUP,
            JSON,
            r#"{"email": 5, "password": "correct horse battery"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "wrongly typed password",
            SIGNIN,
            JSON,
            r#"{"email": "a@example.com", "password": 12345678}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "null field",
            SIGNUP,
            JSON,
            r#"{"email": null, "password": "correct horse battery"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "array body",
            SIGNUP,
            JSON,
            r#"["a@example.com", "correct horse battery"]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "missing field",
            SIGNUP,
            JSON,
            r#"{"email": "a@example.com"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "unknown field",
            SIGNUP,
            JSON,
            r#"{"email": "a@example.com", "password": "correct horse battery", "role": "admin"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        case(
            "huge body",
            SIGNUP,
            JSON,
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        case(
            "no content type",
            SIGNUP,
            None,
            r#"{"email": "a@example.com", "password": "correct horse battery"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        case(
            "wrong content type",
            SIGNIN,
            Some("text/plain"),
            r#"{"email": "a@example.com", "password": "x"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        case(
            "form content type",
            SIGNUP,
            Some("application/x-www-form-urlencoded"),
            "email=a%40example.com&password=x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        case(
            "unknown route",
            "/api/v1/nope",
            JSON,
            "{}",
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        case(
            "unknown version",
            "/api/v2/signup",
            JSON,
            "{}",
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
    ];
    all.push(Case {
        method: Method::GET,
        ..case(
            "wrong method",
            SIGNUP,
            None,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
    });
    all.push(Case {
        method: Method::PATCH,
        ..case(
            "unsupported method",
            "/api/v1/me",
            JSON,
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
    });
    all
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn malformed_requests_get_a_clear_4xx_and_change_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let before = snapshot(&pool).await;

    for case in cases() {
        let mut request = app
            .request(case.method.clone(), case.path)
            .body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), case.status, "{}", case.what);
        let body = assert_error(response, case.status, case.code).await;
        assert!(
            !body.to_string().contains("12345678"),
            "{}: a wrongly typed secret is not echoed: {body}",
            case.what
        );
    }

    // The same shapes against an authenticated route.
    for (body, status, code) in [
        (
            r#"{"current_password": "#,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            r#"{"current_password": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            r#"{"current_password": "x", "new_password": "yyyyyyyy", "extra": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let response = app
            .authed(Method::PUT, "/api/v1/me/password", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, status, code).await;
    }

    assert_eq!(snapshot(&pool).await, before, "stored data is unchanged");
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.token_for("ada@example.com", PASSWORD).await;
}

/// The OAuth endpoints answer what a layer refuses (wrong method, body over the limit) in
/// OAuth's own error shape, which their clients parse, and change nothing either.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn oauth_endpoints_refuse_in_oauths_own_shape(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let before = snapshot(&pool).await;
    let form = "a=".to_owned() + &"x".repeat(200_000);
    let json = format!(r#"{{"client_name":"{}"}}"#, "x".repeat(200_000));
    for (path, content_type, huge) in [
        ("/oauth/token", "application/x-www-form-urlencoded", &form),
        ("/oauth/register", "application/json", &json),
        ("/oauth/revoke", "application/x-www-form-urlencoded", &form),
    ] {
        let wrong_method = app.request(Method::GET, path).send().await.unwrap();
        let too_large = app
            .request(Method::POST, path)
            .header("content-type", content_type)
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        for (response, status) in [
            (wrong_method, StatusCode::METHOD_NOT_ALLOWED),
            (too_large, StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            assert_eq!(response.status(), status, "{path}");
            let headers = response.headers().clone();
            assert_eq!(headers["content-type"], "application/json", "{path}");
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert!(
                    headers.contains_key("allow"),
                    "{path}: the allowed method is named"
                );
            }
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{path}: {body}");
            assert!(body["error_description"].is_string(), "{path}: {body}");
        }
    }
    assert_eq!(snapshot(&pool).await, before);
}
