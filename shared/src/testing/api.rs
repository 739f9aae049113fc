//! One client of the control plane's REST API for tests and benches: the calls every suite
//! repeats (sign up and in, create a source, a server, an access key), asserting success.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A password that meets the rules.
pub const PASSWORD: &str = "correct horse battery";

/// The REST API at `base` (`http://127.0.0.1:<port>/api/v1`).
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of the API at `base`, sending with `http`.
    pub fn new(base: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.into(),
            http,
        }
    }

    /// Any call; returns the status and the JSON body (`null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("control plane answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A `POST` that must create something (201); returns what was created.
    pub async fn create(&self, token: &str, path: &str, body: &Value) -> Value {
        let (status, created) = self.call(Method::POST, path, Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {created}");
        created
    }

    /// Signs `email` up (if it is new) with [`PASSWORD`] and in; returns a session token.
    pub async fn user(&self, email: &str) -> String {
        let credentials = json!({"email": email, "password": PASSWORD});
        self.call(Method::POST, "/signup", None, Some(&credentials))
            .await;
        let (status, body) = self
            .call(Method::POST, "/signin", None, Some(&credentials))
            .await;
        assert_eq!(status, StatusCode::OK, "signin: {body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Creates a source from a `POST /sources` body; returns its id.
    pub async fn source(&self, token: &str, body: &Value) -> String {
        id(&self.create(token, "/sources", body).await)
    }

    /// Creates a server from a `POST /mcp-servers` body; returns it.
    pub async fn server(&self, token: &str, body: &Value) -> Value {
        self.create(token, "/mcp-servers", body).await
    }

    /// A new access key for a server.
    pub async fn key(&self, token: &str, server_id: &str, name: &str) -> String {
        let created = self
            .create(
                token,
                &format!("/mcp-servers/{server_id}/keys"),
                &json!({ "name": name }),
            )
            .await;
        created["key"].as_str().expect("key").to_owned()
    }

    /// The caller's user id (`GET /me`).
    pub async fn user_id(&self, token: &str) -> String {
        let (status, me) = self.call(Method::GET, "/me", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "GET /me: {me}");
        id(&me)
    }

    /// Creates a team organization named and slugged `slug`; returns its id.
    pub async fn organization(&self, token: &str, slug: &str) -> String {
        id(&self
            .create(
                token,
                "/organizations",
                &json!({"name": slug, "slug": slug}),
            )
            .await)
    }

    /// Invites `email` with `role` to an organization; returns the invitation's token.
    pub async fn invite(
        &self,
        token: &str,
        organization_id: &str,
        email: &str,
        role: &str,
    ) -> String {
        let created = self
            .create(
                token,
                &format!("/organizations/{organization_id}/invitations"),
                &json!({"email": email, "role": role}),
            )
            .await;
        created["token"].as_str().expect("token").to_owned()
    }

    /// Accepts an invitation as the holder of `token`; returns the status and body.
    pub async fn accept(&self, token: &str, invitation: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/invitations/{invitation}/accept"),
            Some(token),
            None,
        )
        .await
    }

    /// Brings `email` into an organization with `role` the way people do: invited by the
    /// holder of `token`, signed up, accepted. Returns their session token and user id.
    pub async fn member(
        &self,
        token: &str,
        organization_id: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let invitation = self.invite(token, organization_id, email, role).await;
        let session = self.user(email).await;
        let (status, joined) = self.accept(&session, &invitation).await;
        assert_eq!(status, StatusCode::OK, "accept: {joined}");
        let user_id = self.user_id(&session).await;
        (session, user_id)
    }
}

/// The `id` of a created thing.
pub fn id(created: &Value) -> String {
    created["id"].as_str().expect("id").to_owned()
}

/// The host of a server's endpoint (what a client sends as `Host`).
pub fn host(server: &Value) -> String {
    server["endpoint"]
        .as_str()
        .expect("endpoint")
        .trim_start_matches("https://")
        .to_owned()
}
