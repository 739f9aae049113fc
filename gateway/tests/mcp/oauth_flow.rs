//! The OAuth flow as a person and an agent go through it, over plain HTTP: shared by the
//! OAuth tests and the log test.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Stack, eventually};

pub const EMAIL: &str = "owner@example.com";
pub const PASSWORD: &str = "correct horse battery";

/// A user with a server (one fake `box` source) on the first pool entry; returns its id and
/// MCP URL.
pub async fn owner_with_server(stack: &Stack, email: &str) -> (String, String, String) {
    let token = stack.user(email).await;
    let source = stack.files(&token, "42").await;
    let (id, _) = stack
        .server_without_key(&token, "Research", &[&source])
        .await;
    let (_, server) = stack
        .call(
            reqwest::Method::GET,
            &format!("/mcp-servers/{id}"),
            &token,
            None,
        )
        .await;
    let mcp_url = server["mcp_url"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(2),
        "the gateway serves the new server",
        || async { status_with(&mcp_url, "none").await != StatusCode::NOT_FOUND },
    )
    .await;
    (token, id, mcp_url)
}

/// The 401 challenge of an MCP request without credentials.
pub async fn challenge(mcp_url: &str) -> String {
    let response = reqwest::Client::new()
        .post(mcp_url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of a hidden form field in a page (askama escapes `&`, quotes and angle brackets).
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
}

/// A person in a browser: opens `authorize_url`, signs in, approves. Returns the URL the
/// browser is finally sent to (the client's redirect URI with `code`, `state` and `iss`).
pub async fn consent(issuer: &str, authorize_url: &str, email: &str) -> String {
    let (browser, page) = signed_in(issuer, authorize_url, email).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Approve"), "{html}");
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("action", "approve".to_owned()),
    ];
    let approved = post_form(&browser, issuer, &form).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    location(&approved)
}

/// A person in a browser: opens `authorize_url` and signs in. Returns the browser (with its
/// session) and the page it is sent back to: the consent page, or a refusal.
pub async fn signed_in(
    issuer: &str,
    authorize_url: &str,
    email: &str,
) -> (reqwest::Client, reqwest::Response) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in"), "{html}");
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("action", "signin".to_owned()),
        ("email", email.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let signed_in = post_form(&browser, issuer, &form).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let back = location(&signed_in);
    let page = browser.get(format!("{issuer}{back}")).send().await.unwrap();
    (browser, page)
}

pub async fn post_form(
    browser: &reqwest::Client,
    issuer: &str,
    form: &[(&str, String)],
) -> reqwest::Response {
    post_form_from(browser, issuer, issuer, form).await
}

/// The form POST a page of `origin` would make to the issuer's authorization endpoint.
pub async fn post_form_from(
    browser: &reqwest::Client,
    issuer: &str,
    origin: &str,
    form: &[(&str, String)],
) -> reqwest::Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    browser
        .post(format!("{issuer}/oauth/authorize"))
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// A raw `tools/list` with a bearer credential; the status.
pub async fn status_with(mcp_url: &str, bearer: &str) -> StatusCode {
    reqwest::Client::new()
        .post(mcp_url)
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap()
        .status()
}

/// The redirect URI of the hand-driven client (nothing listens there: the tests read the
/// `Location` the browser would follow).
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// Registers a public client; returns the response status and body.
pub async fn register(issuer: &str, redirect_uris: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/oauth/register"))
        .json(&json!({"client_name": "Hand-driven agent", "redirect_uris": redirect_uris}))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `/oauth/authorize?…` with the given parameters.
pub fn authorize_url(issuer: &str, params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{issuer}/oauth/authorize?{query}")
}

/// The usual parameters of a request for `resource` by `client_id`.
pub fn usual<'a>(client_id: &'a str, pkce: &'a Pkce, resource: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("resource", resource),
        ("scope", "mcp"),
    ]
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A registered client, an approved code and its verifier, for `resource` owned by `email`.
pub async fn approved_code(stack: &Stack, resource: &str, email: &str) -> (String, String, Pkce) {
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let pkce = pkce();
    let url = authorize_url(&stack.origin, &usual(&client_id, &pkce, resource));
    let callback = consent(&stack.origin, &url, email).await;
    let code = param(&callback, "code").unwrap_or_else(|| panic!("a code in {callback}"));
    (client_id, code, pkce)
}

/// A token request; returns the status and body.
pub async fn token_request(issuer: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Redeems a code; returns the status and body.
pub async fn redeem(
    issuer: &str,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    token_request(
        issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Waits until the gateway accepts `token` (its grant reaches the gateway's snapshot through a
/// change notification, a few milliseconds after the approval).
pub async fn accepted(mcp_url: &str, token: &str) {
    eventually(
        Duration::from_secs(2),
        "the gateway accepts the new token",
        || async { status_with(mcp_url, token).await == StatusCode::OK },
    )
    .await;
}
