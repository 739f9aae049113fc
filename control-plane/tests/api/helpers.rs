//! Spawning the real application on port 0 and talking to it over HTTP.

use std::sync::Once;

use control_plane::Application;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use shared::Settings;
use sqlx::PgPool;

pub use shared::testing::{JWT_SECRET, PASSWORD, SECRETS_KEY};

static TRACING: Once = Once::new();

/// Logs are silent unless `TEST_LOG` is set.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            shared::telemetry::init(shared::LogFormat::Human, "debug");
        }
    });
}

/// A running control plane.
pub struct TestApp {
    pub address: String,
    /// The `/metrics` listener.
    pub metrics: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
}

/// Starts the application with test settings on `pool`.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

/// Starts the application with test settings changed by `tweak`.
pub async fn spawn_app_with(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    init_tracing();
    let mut settings = shared::testing::settings();
    tweak(&mut settings);
    settings
        .validate_control_plane()
        .expect("test settings are valid");
    let app = Application::build(&settings, pool.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!(
        "http://127.0.0.1:{}/metrics",
        app.metrics_port().unwrap_or_default()
    );
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address,
        metrics,
        pool,
        client,
    }
}

impl TestApp {
    /// A request to `path` under the API root.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/signup",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn signin(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/signin",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up `email` with [`PASSWORD`] and returns a session token.
    pub async fn user_token(&self, email: &str) -> String {
        assert_eq!(
            self.signup(email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        self.token_for(email, PASSWORD).await
    }

    /// Signs in and returns the token.
    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let response = self.signin(email, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn authed(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    /// `GET /api/v1/me` with a bearer token.
    pub async fn me(&self, token: &str) -> Response {
        self.authed(Method::GET, "/api/v1/me", token)
            .send()
            .await
            .expect("request sent")
    }

    /// Makes `email` an administrator the way an operator does.
    pub async fn grant_admin(&self, email: &str) {
        control_plane::cli::set_role(&self.pool, email, true)
            .await
            .expect("grant admin");
    }
}

/// Asserts the status and the shared error body, and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers().get("content-type").cloned();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "content type of {body}"
    );
    assert_eq!(body["error"]["code"], code, "code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    body
}

/// Every row of the tables the API writes, to compare before and after a request.
pub async fn snapshot(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select 'users:' || coalesce(json_agg(u order by u.id)::text, '') from users u \
         union all select 'revoked:' || coalesce(json_agg(r order by r.jti)::text, '') from revoked_tokens r \
         union all select 'sources:' || coalesce(json_agg(s order by s.id)::text, '') from sources s \
         union all select 'servers:' || coalesce(json_agg(m order by m.id)::text, '') from mcp_servers m",
    )
    .fetch_all(pool)
    .await
    .expect("snapshot")
}

/// Valid Outlook metadata with `secret` as the client secret.
pub fn outlook(secret: &str) -> Value {
    json!({"type": "outlook", "source_metadata": {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": secret,
        "user_id": "ada@contoso.com",
    }})
}

/// Valid Box metadata.
pub fn box_source() -> Value {
    json!({"type": "box", "source_metadata": {
        "client_id": "abc123def456", "client_secret": "box-secret", "subject_type": "enterprise", "subject_id": "42",
    }})
}

impl TestApp {
    /// A JSON request with a bearer token.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Response {
        self.authed(method, path, token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A request without body with a bearer token.
    pub async fn send(&self, method: Method, path: &str, token: &str) -> Response {
        self.authed(method, path, token)
            .send()
            .await
            .expect("request sent")
    }

    /// The JSON body of a request without body.
    pub async fn json(&self, method: Method, path: &str, token: &str) -> Value {
        self.send(method, path, token)
            .await
            .json()
            .await
            .expect("JSON body")
    }

    /// The REST API through the shared test client.
    pub fn api(&self) -> shared::testing::Api {
        shared::testing::Api::new(format!("{}/api/v1", self.address), self.client.clone())
    }

    /// Creates a source and returns its id.
    pub async fn source(&self, token: &str, body: &Value) -> String {
        self.api().source(token, body).await
    }

    /// Creates a server and returns its JSON.
    pub async fn server(&self, token: &str, name: &str, source_ids: &[&str]) -> Value {
        self.api()
            .server(token, &json!({"name": name, "source_ids": source_ids}))
            .await
    }
}

/// Signs `claims` with HS256 and `key`, as a forger would.
pub fn sign(claims: &Value, key: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// Claims exactly like a real session token's, for the user `sub`, expiring in `exp_offset` s.
pub fn claims(sub: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub, "jti": uuid::Uuid::new_v4(), "iat": now, "exp": now + exp_offset, "ver": 0,
        "iss": "mcp-gateway/control-plane", "aud": "mcp-gateway/api",
    })
}
