//! The web console through its forms, as a browser without script would use it: pages,
//! redirects, field errors, sign-in and back, anti-forgery, secrets and other users' objects.
//! (The walk in a real browser is in `console_browser.rs`.)

use regex::Regex;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, box_source, outlook, spawn_app, spawn_app_with};

/// A person's browser: its own cookies, redirects not followed (the tests check them).
pub struct Person {
    pub base: String,
    pub client: reqwest::Client,
}

/// A page: status, where it redirects, and its HTML.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl Person {
    pub fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            base: app.address.clone(),
            client,
        }
    }

    async fn read(response: reqwest::Response) -> Page {
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("location").to_owned());
        Page {
            status,
            location,
            html: response.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self.client.get(format!("{}{path}", self.base)).send();
        Self::read(response.await.expect("GET")).await
    }

    /// Posts `fields` to `action` as the form on `page` would (its token, this origin).
    pub async fn post(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(page).await;
        let token = csrf(&form.html);
        self.post_with(action, &token, &self.base, fields).await
    }

    /// A POST with a chosen token and Origin.
    pub async fn post_with(
        &self,
        action: &str,
        token: &str,
        origin: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut body: Vec<(&str, &str)> = vec![("csrf", token)];
        body.extend_from_slice(fields);
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body)
            .finish();
        let response = self
            .client
            .post(format!("{}{action}", self.base))
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encoded)
            .send();
        Self::read(response.await.expect("POST")).await
    }

    /// Signs up and is signed in.
    pub async fn sign_up(&self, email: &str) {
        let page = self
            .post(
                "/signup",
                "/signup",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert_eq!(page.location.as_deref(), Some("/servers"));
    }

    /// Signs in with [`PASSWORD`] through the form, asking to go to `next` afterwards.
    pub async fn sign_in(&self, email: &str, next: &str) -> Page {
        let fields = [("email", email), ("password", PASSWORD), ("next", next)];
        self.post("/signin", "/signin", &fields).await
    }

    /// Creates a Box source through the form; returns its id.
    pub async fn box_source(&self, secret: &str) -> String {
        let page = self
            .post(
                "/sources/new?type=box",
                "/sources/new",
                &[
                    ("type", "box"),
                    ("client_id", "abc123"),
                    ("client_secret", secret),
                    ("subject_type", "enterprise"),
                    ("subject_id", "42"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        let list = self.get("/sources").await;
        let id = Regex::new(r"/sources/([0-9a-f-]{36})/edit").unwrap();
        id.captures(&list.html).expect("a source in the list")[1].to_owned()
    }

    /// Creates a server with `sources` through the form; returns its id.
    pub async fn server(&self, name: &str, sources: &[&str]) -> String {
        let mut fields = vec![("name", name)];
        fields.extend(sources.iter().map(|s| ("source_ids", *s)));
        let page = self.post("/servers/new", "/servers/new", &fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        let location = page.location.expect("redirect to the server");
        location.trim_start_matches("/servers/").to_owned()
    }
}

/// The form token on a page.
pub fn csrf(html: &str) -> String {
    let re = Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
    re.captures(html)
        .map(|c| c[1].to_owned())
        .unwrap_or_default()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_new_user_signs_up_and_builds_a_server_through_the_forms(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let source = ada.box_source("box-secret").await;
    let server = ada.server("Research", &[&source]).await;

    let page = ada.get(&format!("/servers/{server}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "Research",
        "https://mcp1.example.com/mcp",
        "box · 42",
        "ChatGPT",
        "Claude",
        "MCP Inspector",
        "curl",
    ] {
        assert!(page.html.contains(shown), "server page lacks {shown}");
    }
    let key = ada
        .post(
            &format!("/servers/{server}"),
            &format!("/servers/{server}/keys"),
            &[("name", "script")],
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED);
    let shown = Regex::new(r#"<code id="new-key">(mcpk_[^<]+)</code>"#).unwrap();
    let secret_key = shown.captures(&key.html).expect("the key, once")[1].to_owned();
    let again = ada.get(&format!("/servers/{server}")).await;
    assert!(
        !again.html.contains(&secret_key),
        "the key is shown once only"
    );
    let list = ada.get("/servers").await;
    assert!(list.html.contains("Research"));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_remote_mcp_server_is_added_through_the_form_without_showing_its_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let form = ada.get("/sources/new?type=mcp").await;
    assert!(form.html.contains(r#"name="search_tool""#), "{}", form.html);
    let page = ada
        .post(
            "/sources/new?type=mcp",
            "/sources/new",
            &[
                ("type", "mcp"),
                ("url", "https://mcp.vendor.example/mcp"),
                ("auth", "bearer"),
                ("token", "console-mcp-token"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let list = ada.get("/sources").await;
    assert!(
        list.html.contains("mcp · https://mcp.vendor.example/mcp"),
        "{}",
        list.html
    );
    assert!(!list.html.contains("console-mcp-token"));

    let refused = ada
        .post(
            "/sources/new?type=mcp",
            "/sources/new",
            &[
                ("type", "mcp"),
                ("url", "http://10.0.0.1/mcp"),
                ("auth", "none"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains(r#"id="f-url-error""#),
        "{}",
        refused.html
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn validation_errors_appear_beside_the_field_they_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let page = ada
        .post(
            "/sources/new?type=box",
            "/sources/new",
            &[
                ("type", "box"),
                ("client_id", "abc123"),
                ("client_secret", "x"),
                ("subject_type", "enterprise"),
                ("subject_id", "not-a-number"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let beside = Regex::new(r#"(?s)id="f-subject_id".*?<p class="field-error" id="f-subject_id-error">Subject ID must be a numeric id</p>"#).unwrap();
    assert!(beside.is_match(&page.html), "{}", page.html);
    assert!(
        page.html.contains(r#"value="not-a-number""#),
        "the typed value stays"
    );

    let blank = ada
        .post("/servers/new", "/servers/new", &[("name", "  ")])
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.html.contains(r#"id="name-error""#), "{}", blank.html);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_postgres_source_with_its_tables_is_made_and_edited_through_the_form(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.sources.postgres_allowed_hosts = vec!["db.internal.example".to_owned()];
    })
    .await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let form = ada.get("/sources/new?type=postgres").await;
    assert!(
        form.html
            .contains(r#"<textarea id="f-tables" name="tables""#),
        "the tables are a JSON text area: {}",
        form.html
    );
    let fields = |tables: &'static str| {
        [
            ("type", "postgres"),
            ("host", "db.internal.example"),
            ("port", "6543"),
            ("database", "crm"),
            ("user", "agent_reader"),
            ("password", "pg-secret-4711"),
            ("tables", tables),
        ]
    };
    let refused = ada
        .post(
            "/sources/new?type=postgres",
            "/sources/new",
            &fields(r#"[{"table": "public.tickets", "id_column": "id", "title_column": "subject", "text_columns": []}]"#),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains(r#"<p class="field-error" id="f-tables-error">Tables [0].text_columns: must be an array"#),
        "the error is beside the tables: {}",
        refused.html
    );
    let made = ada
        .post(
            "/sources/new?type=postgres",
            "/sources/new",
            &fields(r#"[{"table": "public.tickets", "id_column": "id", "title_column": "subject", "text_columns": ["subject", "body"]}]"#),
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let list = ada.get("/sources").await;
    assert!(list.html.contains("postgres · crm"), "{}", list.html);
    let id = Regex::new(r"/sources/([0-9a-f-]{36})/edit").unwrap();
    let id = id.captures(&list.html).expect("the source")[1].to_owned();
    let edit = ada.get(&format!("/sources/{id}/edit")).await;
    assert!(
        edit.html.contains(r#"value="6543""#),
        "the port: {}",
        edit.html
    );
    assert!(
        edit.html.contains("public.tickets"),
        "the tables: {}",
        edit.html
    );
    assert!(!edit.html.contains("pg-secret-4711"));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_lost_session_goes_to_sign_in_and_back_to_the_page(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let server = ada.server("Research", &[]).await;
    let path = format!("/servers/{server}/usage?bucket=day");

    let stranger = Person::new(&app);
    let away = stranger.get(&path).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    let to = away.location.expect("to sign-in");
    assert!(to.starts_with("/signin?next=%2Fservers%2F"), "{to}");
    let form = stranger.get(&to).await;
    assert!(
        form.html.contains(&format!(
            r#"name="next" value="{}""#,
            path.replace('&', "&#38;")
        )) || form.html.contains(&path),
        "{}",
        form.html
    );
    let back = stranger
        .post(
            &to,
            "/signin",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", &path),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some(path.as_str()));
    assert_eq!(stranger.get(&path).await.status, StatusCode::OK);

    // Never to another site.
    let offsite = stranger.sign_in("ada@example.com", "//evil.example/").await;
    assert_eq!(offsite.location.as_deref(), Some("/servers"));
}

/// `next` values that lead a browser elsewhere (it drops tabs and line breaks and reads `\`
/// as `/`) or are no valid `Location` at all: sign-in shows its form and then goes home.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn sign_in_never_leads_off_site_nor_fails_on_a_crafted_next(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let stranger = Person::new(&app);
    for next in [
        "/%09/evil.example",
        "/%0a/x",
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/servers\u{1}",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let form = stranger.get(&format!("/signin?next={encoded}")).await;
        assert_eq!(form.status, StatusCode::OK, "{next:?}");
        assert!(
            form.html.contains(r#"name="next" value="/servers""#),
            "{next:?}: {}",
            form.html
        );
        let signed_in = stranger.sign_in("ada@example.com", next).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(signed_in.location.as_deref(), Some("/servers"), "{next:?}");
    }
    let page = "/servers?offset=0";
    let kept = stranger.sign_in("ada@example.com", page).await;
    assert_eq!(kept.location.as_deref(), Some(page));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn cookie_authenticated_forms_from_a_foreign_origin_or_without_token_are_refused(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let server = ada.server("Research", &[]).await;
    let page = ada.get(&format!("/servers/{server}")).await;
    let token = csrf(&page.html);
    let delete = format!("/servers/{server}/delete");

    let foreign = ada
        .post_with(&delete, &token, "https://evil.example", &[])
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let tokenless = ada.post_with(&delete, "", &app.address, &[]).await;
    assert_eq!(tokenless.status, StatusCode::FORBIDDEN);
    let forged = ada
        .post_with(&delete, "eyJhbGciOiJIUzI1NiJ9.e30.x", &app.address, &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another browser's token is no good here either.
    let mallory = Person::new(&app);
    mallory.sign_up("mallory@example.com").await;
    let theirs = csrf(&mallory.get("/servers").await.html);
    let stolen = ada.post_with(&delete, &theirs, &app.address, &[]).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
    let alive: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select deleted_at from mcp_servers where id = $1::uuid")
            .bind(&server)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(alive.is_none(), "the server survived every refused form");

    let genuine = ada.post_with(&delete, &token, &app.address, &[]).await;
    assert_eq!(genuine.status, StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_secret_value_ever_reaches_a_page(pool: PgPool) {
    const SECRET: &str = "s3cret-VALUE-9f8e7d";
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let source = ada.box_source(SECRET).await;
    let server = ada.server("Research", &[&source]).await;
    let mut pages = Vec::new();
    for path in [
        "/sources",
        &format!("/sources/{source}/edit"),
        &format!("/sources/{source}/delete"),
        "/servers",
        &format!("/servers/{server}"),
        &format!("/servers/{server}/usage"),
        "/account",
    ] {
        let page = ada.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        pages.push((path.to_owned(), page.html));
    }
    // A form refused with the secret in it comes back without it.
    let refused = ada
        .post(
            &format!("/sources/{source}/edit"),
            &format!("/sources/{source}/edit"),
            &[
                ("client_id", "abc123"),
                ("client_secret", "new-SECRET-typed-1a2b"),
                ("subject_type", "nobody"),
                ("subject_id", "42"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    pages.push(("refused edit".into(), refused.html));
    let created = ada
        .post(
            "/sources/new?type=outlook",
            "/sources/new",
            &[
                ("type", "outlook"),
                ("tenant_id", "bad tenant"),
                ("client_id", "x"),
                ("client_secret", "typed-SECRET-3c4d"),
                ("user_id", "ada@contoso.com"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY);
    pages.push(("refused create".into(), created.html));
    for (path, html) in &pages {
        for secret in [SECRET, "new-SECRET-typed-1a2b", "typed-SECRET-3c4d"] {
            assert!(!html.contains(secret), "{path} shows a secret");
        }
    }
    let edit = &pages[1].1;
    assert!(
        edit.contains("secret · set"),
        "the edit form says the secret is set"
    );
    // The secret was kept by the edit that left it blank (and refused the other).
    let kept = ada
        .post(
            &format!("/sources/{source}/edit"),
            &format!("/sources/{source}/edit"),
            &[
                ("client_id", "abc999"),
                ("client_secret", ""),
                ("subject_type", "enterprise"),
                ("subject_id", "42"),
            ],
        )
        .await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.html);
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("select secrets from sources where id = $1::uuid")
            .bind(&source)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(sealed.is_some());
}

/// Every console route that names an object, as (GET page, POST action).
fn routes_naming(
    server: &str,
    source: &str,
    key: &str,
    grant: &str,
) -> Vec<(Option<String>, Option<String>)> {
    let s = format!("/servers/{server}");
    vec![
        (Some(s.clone()), None),
        (Some(format!("{s}/usage")), None),
        (None, Some(format!("{s}/rename"))),
        (None, Some(format!("{s}/attach"))),
        (
            Some(format!("{s}/sources/{source}/detach")),
            Some(format!("{s}/sources/{source}/detach")),
        ),
        (Some(format!("{s}/public")), Some(format!("{s}/public"))),
        (Some(format!("{s}/delete")), Some(format!("{s}/delete"))),
        (None, Some(format!("{s}/restore"))),
        (None, Some(format!("{s}/keys"))),
        (
            Some(format!("{s}/keys/{key}/revoke")),
            Some(format!("{s}/keys/{key}/revoke")),
        ),
        (
            Some(format!("{s}/grants/{grant}/disconnect")),
            Some(format!("{s}/grants/{grant}/disconnect")),
        ),
        (
            Some(format!("/sources/{source}/edit")),
            Some(format!("/sources/{source}/edit")),
        ),
        (
            Some(format!("/sources/{source}/delete")),
            Some(format!("/sources/{source}/delete")),
        ),
    ]
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn another_users_objects_are_not_found_through_every_console_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada_token = app.user_token("ada@example.com").await;
    let source = app.source(&ada_token, &outlook("ada-secret")).await;
    let server = app.server(&ada_token, "Ada's", &[&source]).await;
    let server = server["id"].as_str().unwrap().to_owned();
    let key: Value = app
        .send_json(
            Method::POST,
            &format!("/api/v1/mcp-servers/{server}/keys"),
            &ada_token,
            &serde_json::json!({"name": "k"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let key = key["id"].as_str().unwrap().to_owned();
    let grant = uuid::Uuid::new_v4().to_string();

    let mallory = Person::new(&app);
    mallory.sign_up("mallory@example.com").await;
    let own = mallory.box_source("m-secret").await;
    let before = crate::helpers::snapshot(&app.pool).await;
    let token = csrf(&mallory.get("/servers").await.html);
    for (page, action) in routes_naming(&server, &source, &key, &grant) {
        if let Some(page) = page {
            let seen = mallory.get(&page).await;
            assert_eq!(seen.status, StatusCode::NOT_FOUND, "GET {page}");
            assert!(
                !seen.html.contains("Ada's") && !seen.html.contains("ada@contoso.com"),
                "GET {page} leaks"
            );
        }
        if let Some(action) = action {
            let fields = [
                ("name", "Mallory's now"),
                ("source_id", own.as_str()),
                ("client_id", "abc"),
                ("client_secret", "x"),
                ("subject_type", "user"),
                ("subject_id", "1"),
            ];
            let done = mallory
                .post_with(&action, &token, &app.address, &fields)
                .await;
            assert_eq!(
                done.status,
                StatusCode::NOT_FOUND,
                "POST {action}: {}",
                done.html
            );
        }
    }
    assert_eq!(
        crate::helpers::snapshot(&app.pool).await,
        before,
        "nothing of Ada's changed"
    );
    // And not an administrator: the admin pages refuse.
    assert_eq!(mallory.get("/admin").await.status, StatusCode::FORBIDDEN);
    let hard = mallory
        .post_with(
            &format!("/admin/servers/{server}/delete"),
            &token,
            &app.address,
            &[],
        )
        .await;
    assert_eq!(hard.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_console_page_carries_a_strict_policy_and_its_assets_are_served_here(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.request(Method::GET, "/signin").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    assert!(
        !Regex::new(r"<script>|<script [^>]*>[^<]")
            .unwrap()
            .is_match(&html),
        "no inline script"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    for (asset, kind) in [
        ("/assets/console.js", "text/javascript"),
        ("/assets/console.css", "text/css"),
    ] {
        let response = app.request(Method::GET, asset).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    let _ = box_source();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn password_change_sign_out_and_account_deletion_work_through_the_forms(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let wrong = ada
        .post(
            "/account",
            "/account/password",
            &[
                ("current_password", "not it at all"),
                ("new_password", "another good one"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        wrong.html.contains(r#"id="current_password-error""#),
        "{}",
        wrong.html
    );
    let changed = ada
        .post(
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another good one"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.html);
    assert!(changed.html.contains("Password changed."));
    // The new token replaced the cookie: still signed in.
    assert_eq!(ada.get("/servers").await.status, StatusCode::OK);

    let out = ada.post("/servers", "/signout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/signin"));
    assert_eq!(ada.get("/servers").await.status, StatusCode::SEE_OTHER);

    let back = ada
        .post(
            "/signin",
            "/signin",
            &[
                ("email", "ada@example.com"),
                ("password", "another good one"),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let confirm = ada.get("/account/delete").await;
    assert!(confirm.html.contains("Delete your account?"));
    let gone = ada.post("/account/delete", "/account/delete", &[]).await;
    assert_eq!(gone.location.as_deref(), Some("/signin"));
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}
