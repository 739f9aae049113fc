//! The OAuth authorization pages as a browser without script uses them: what their session
//! opens (the consent page, nothing else), "Not you?" ending it on the server, and agents'
//! names shown without direction overrides or invisible characters. (The whole flow with real
//! MCP clients is in the gateway's tests; in Chromium in `browser.rs`.)

use std::sync::Arc;

use reqwest::{Method, StatusCode, cookie::CookieStore, header};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    console::{Page, Person, csrf},
    helpers::{PASSWORD, TestApp, spawn_app},
};

const EMAIL: &str = "ada@example.com";
const CALLBACK: &str = "http://127.0.0.1:9/callback";
/// RFC 7636's example S256 challenge (the pages never see the verifier).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// A name built to turn a page's text around and hide in it.
const TRICKY_NAME: &str = "\u{202E}Evil\u{2066}\u{2067}\u{2068}\u{2069}\u{200B}\u{200E}\u{200F}\
                           \u{202A}\u{202B}\u{202C}\u{202D} agent\u{FEFF}";
/// What is left of it.
const SHOWN_NAME: &str = "Evil agent";

/// A browser whose cookies the test can read.
struct Browser {
    person: Person,
    cookies: Arc<reqwest::cookie::Jar>,
    /// The origin the pages' forms check (the configured public URL, not the test's address).
    issuer: String,
}

impl Browser {
    async fn new(app: &TestApp) -> Self {
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(cookies.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let person = Person {
            base: app.address.clone(),
            client,
        };
        let metadata: Value = person
            .client
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                app.address
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let issuer = metadata["issuer"].as_str().unwrap().to_owned();
        Self {
            person,
            cookies,
            issuer,
        }
    }

    /// The value of the cookie `name` this browser sends to the authorization pages.
    fn cookie(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("{}/oauth/authorize", self.person.base)).unwrap();
        let header = self.cookies.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }

    /// Submits the authorization form on `page` with `action` and `fields`.
    async fn submit(&self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let request = hidden(&page.html, "request");
        let mut all = vec![("request", request.as_str()), ("action", action)];
        all.extend_from_slice(fields);
        self.person
            .post_with("/oauth/authorize", &csrf(&page.html), &self.issuer, &all)
            .await
    }

    /// Signs in on the authorization page of `authorize`; returns the consent page.
    async fn sign_in(&self, authorize: &str) -> Page {
        let form = self.person.get(authorize).await;
        assert!(form.html.contains("Sign in to connect"), "{}", form.html);
        let fields = [("email", EMAIL), ("password", PASSWORD)];
        let signed_in = self.submit(&form, "signin", &fields).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.html
        );
        let consent = self.person.get(&signed_in.location.unwrap()).await;
        assert!(consent.html.contains("Approve"), "{}", consent.html);
        consent
    }
}

/// A hidden field's value, unescaped as the browser would.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).expect("the field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

/// Registers a client named `name`; returns the registration's answer.
async fn register(app: &TestApp, name: &str) -> Value {
    let body = json!({"client_name": name, "redirect_uris": [CALLBACK]});
    let response = app.post_json("/oauth/register", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The owner's API token and a server of theirs named `server_name` (its JSON).
async fn owner_with_server(app: &TestApp, server_name: &str) -> (String, Value) {
    let token = app.user_token(EMAIL).await;
    let server = app.server(&token, server_name, &[]).await;
    (token, server)
}

/// The path of an authorization request of `client` for `server`.
fn authorize_path(client: &Value, server: &Value) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("redirect_uri", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
            ("resource", server["mcp_url"].as_str().unwrap()),
        ])
        .finish();
    format!("/oauth/authorize?{query}")
}

/// `GET path` with one cookie, as a browser that holds a copy of it.
async fn with_cookie(app: &TestApp, path: &str, name: &str, value: &str) -> reqwest::Response {
    app.request(Method::GET, path)
        .header(header::COOKIE, format!("{name}={value}"))
        .send()
        .await
        .unwrap()
}

/// Whether `text` holds a Unicode format character of [`TRICKY_NAME`].
fn has_format_characters(text: &str) -> bool {
    TRICKY_NAME
        .chars()
        .filter(|c| !c.is_alphanumeric() && *c != ' ')
        .any(|c| text.contains(c))
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_pages_session_opens_the_consent_page_and_neither_the_api_nor_the_console(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let (_, server) = owner_with_server(&app, "Research").await;
    let client = register(&app, "Helper").await;
    let browser = Browser::new(&app).await;
    browser.sign_in(&authorize_path(&client, &server)).await;
    let token = browser.cookie("mcpgw_oauth").expect("the pages' session");

    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let as_cookie = with_cookie(&app, "/api/v1/me", "mcpgw_session", &token).await;
    assert_eq!(as_cookie.status(), StatusCode::UNAUTHORIZED);
    let console = with_cookie(&app, "/servers", "mcpgw_console", &token).await;
    assert_eq!(console.status(), StatusCode::SEE_OTHER);
    assert!(
        console.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn not_you_ends_the_pages_session_on_the_server(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, server) = owner_with_server(&app, "Research").await;
    let client = register(&app, "Helper").await;
    let authorize = authorize_path(&client, &server);
    let browser = Browser::new(&app).await;
    let consent = browser.sign_in(&authorize).await;
    let token = browser.cookie("mcpgw_oauth").expect("the pages' session");

    let switched = browser.submit(&consent, "switch", &[]).await;
    assert_eq!(switched.status, StatusCode::OK);
    assert!(
        switched.html.contains("Sign in to connect"),
        "{}",
        switched.html
    );
    assert_eq!(browser.cookie("mcpgw_oauth"), None);

    // A copy of the old cookie (another tab, someone who took it) is signed out too.
    let copy = with_cookie(&app, &authorize, "mcpgw_oauth", &token).await;
    assert_eq!(copy.status(), StatusCode::OK);
    let html = copy.text().await.unwrap();
    assert!(
        html.contains("Sign in to connect") && !html.contains("Approve"),
        "{html}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn agents_names_are_shown_without_direction_overrides_or_invisible_characters(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (token, server) = owner_with_server(&app, "Research\u{2067}\u{200B}").await;

    // Cleaned at registration...
    let client = register(&app, TRICKY_NAME).await;
    assert_eq!(client["client_name"], SHOWN_NAME);
    let client_id = client["client_id"].as_str().unwrap();
    let stored: String =
        sqlx::query_scalar("select client_name from oauth_clients where client_id = $1")
            .bind(client_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, SHOWN_NAME);

    // ...and where shown, for a name stored before the rule.
    sqlx::query("update oauth_clients set client_name = $1 where client_id = $2")
        .bind(TRICKY_NAME)
        .bind(client_id)
        .execute(&pool)
        .await
        .unwrap();
    let browser = Browser::new(&app).await;
    let consent = browser.sign_in(&authorize_path(&client, &server)).await;
    assert!(!has_format_characters(&consent.html), "{}", consent.html);
    assert!(consent.html.contains(SHOWN_NAME), "{}", consent.html);
    assert!(consent.html.contains("“Research”"), "{}", consent.html);
    let approved = browser.submit(&consent, "approve", &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);

    let id = server["id"].as_str().unwrap();
    let grants = app
        .json(
            Method::GET,
            &format!("/api/v1/mcp-servers/{id}/grants"),
            &token,
        )
        .await;
    assert_eq!(grants["items"][0]["client_name"], SHOWN_NAME, "{grants}");
    let owner = Person::new(&app);
    let signed_in = owner.sign_in(EMAIL, "/servers").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    for page in ["/servers".to_owned(), format!("/servers/{id}")] {
        let html = owner.get(&page).await.html;
        assert!(!has_format_characters(&html), "{page}: {html}");
        assert!(html.contains("Research"), "{page}: {html}");
    }
    let detail = owner.get(&format!("/servers/{id}")).await.html;
    assert!(detail.contains(SHOWN_NAME), "{detail}");
}
