//! The activity log: every state-changing action is recorded with its actor, targets, client
//! address and request id; users read their own records, administrators everyone's; no secret
//! reaches it; a refused or failed change leaves no record claiming success.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::helpers::{
    PASSWORD, TestApp, assert_error, box_source, outlook, spawn_app, spawn_app_with,
};

/// One page of `GET /api/v1/activity{query}` as `token` sees it.
async fn activity(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .send(Method::GET, &format!("/api/v1/activity{query}"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON page")
}

/// The actions of a page, oldest first; failures as `action:error_code`.
fn actions(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| match item["error_code"].as_str() {
            Some(code) => format!("{}:{code}", item["action"].as_str().unwrap()),
            None => item["action"].as_str().unwrap().to_owned(),
        })
        .collect();
    names.reverse();
    names
}

/// The newest record of `action` in a page.
fn newest<'a>(page: &'a Value, action: &str) -> &'a Value {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {page}"))
}

/// Every stored record, as text.
async fn stored(pool: &PgPool) -> String {
    sqlx::query_scalar("select coalesce(json_agg(a)::text, '') from activity a")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// An administrator's token.
async fn admin(app: &TestApp) -> String {
    let token = app.user_token("root@example.com").await;
    app.grant_admin("root@example.com").await;
    token
}

async fn user_id(app: &TestApp, token: &str) -> String {
    app.json(Method::GET, "/api/v1/me", token).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn account_actions_are_recorded_with_actor_address_and_request_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    let signup = app
        .request(Method::POST, "/api/v1/signup")
        .header("x-request-id", "req-signup-1")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let ada: Value = signup.json().await.unwrap();
    let ada = ada["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.signin("ada@example.com", "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let token = app.token_for("ada@example.com", PASSWORD).await;
    let wrong = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            &token,
            &json!({"current_password": "not it at all", "new_password": "a new long password"}),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "wrong_password").await;
    let changed = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            &token,
            &json!({"current_password": PASSWORD, "new_password": "a new long password"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let token: Value = changed.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let signout = app.send(Method::POST, "/api/v1/signout", token).await;
    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    let signout_request = signout.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = app
        .token_for("ada@example.com", "a new long password")
        .await;

    let page = activity(&app, &token, "").await;

    assert_eq!(
        actions(&page),
        [
            "signup",
            "signin:invalid_credentials",
            "signin",
            "password_change:wrong_password",
            "password_change",
            "signout",
            "signin"
        ]
    );
    assert_eq!(page["total"], 7);
    assert_eq!(page["limit"], 50);
    assert_eq!(page["offset"], 0);
    let items = page["items"].as_array().unwrap();
    for item in items {
        assert_eq!(item["user_id"], ada.as_str(), "{item}");
        assert_eq!(item["client_ip"], "127.0.0.1", "{item}");
        assert!(item["request_id"].as_str().is_some(), "{item}");
    }
    let signed_up = newest(&page, "signup");
    assert_eq!(signed_up["actor_kind"], "user");
    assert_eq!(signed_up["actor_id"], ada.as_str());
    assert_eq!(signed_up["outcome"], "success");
    assert_eq!(signed_up["request_id"], "req-signup-1");
    let refused = &items[5];
    assert_eq!(refused["action"], "signin");
    assert_eq!(refused["outcome"], "failure");
    assert_eq!(
        refused["actor_kind"], "anonymous",
        "nobody signed in yet: {refused}"
    );
    assert_eq!(refused["actor_id"], Value::Null);
    assert_eq!(newest(&page, "signout")["request_id"], signout_request);
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_failed_signin_for_an_unknown_email_is_linked_to_no_account(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let root = admin(&app).await;

    let refused = app.signin("ghost@example.com", PASSWORD).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let page = activity(&app, &root, "?action=signin&outcome=failure").await;
    assert_eq!(page["total"], 1, "{page}");
    let record = &page["items"][0];
    assert_eq!(record["user_id"], Value::Null);
    assert_eq!(record["actor_kind"], "anonymous");
    assert_eq!(record["error_code"], "invalid_credentials");
    assert_eq!(record["client_ip"], "127.0.0.1");
    assert!(
        !stored(&pool).await.contains("ghost"),
        "the email typed is not stored"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_account_deletion_is_recorded_and_outlives_the_account(pool: PgPool) {
    let app = spawn_app(pool).await;
    let root = admin(&app).await;
    let token = app.user_token("ada@example.com").await;
    let ada = user_id(&app, &token).await;
    app.source(&token, &box_source()).await;

    let deleted = app.send(Method::DELETE, "/api/v1/me", &token).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let page = activity(&app, &root, &format!("?user_id={ada}")).await;
    assert_eq!(
        actions(&page),
        ["signup", "signin", "source_create", "account_delete"]
    );
    let record = newest(&page, "account_delete");
    assert_eq!(record["actor_id"], ada.as_str());
    assert_eq!(record["user_id"], ada.as_str());
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn source_and_server_changes_are_recorded_with_their_ids(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let ada = user_id(&app, &token).await;

    let source = app.source(&token, &outlook("first-secret")).await;
    let updated = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/sources/{source}"),
            &token,
            &outlook("second-secret"),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let server = app.server(&token, "Research", &[&source]).await;
    let server = server["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/mcp-servers/{server}");
    let renamed = app
        .send_json(
            Method::PUT,
            &path,
            &token,
            &json!({"name": "Sales", "public": true}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let link = format!("{path}/sources/{source}");
    for (method, expected) in [
        (Method::DELETE, StatusCode::OK),
        (Method::PUT, StatusCode::OK),
        (Method::DELETE, StatusCode::NO_CONTENT),
    ] {
        let target = if expected == StatusCode::NO_CONTENT {
            &path
        } else {
            &link
        };
        assert_eq!(app.send(method, target, &token).await.status(), expected);
    }
    let restored = app
        .send(Method::POST, &format!("{path}/restore"), &token)
        .await;
    assert_eq!(restored.status(), StatusCode::OK);
    let deleted = app
        .send(Method::DELETE, &format!("/api/v1/sources/{source}"), &token)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let page = activity(&app, &token, "?limit=200").await;
    assert_eq!(
        actions(&page)[2..],
        [
            "source_create",
            "source_update",
            "server_create",
            "server_update",
            "server_source_detach",
            "server_source_attach",
            "server_delete",
            "server_restore",
            "source_delete",
        ]
    );
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["actor_id"], ada.as_str());
        let action = item["action"].as_str().unwrap();
        if action.starts_with("source_") || action.starts_with("server_source_") {
            assert_eq!(item["source_id"], source.as_str(), "{item}");
        }
        if action.starts_with("server_") {
            assert_eq!(item["server_id"], server.as_str(), "{item}");
        }
    }
    assert_eq!(
        newest(&page, "source_create")["detail"],
        json!({"type": "outlook"})
    );
    assert_eq!(
        newest(&page, "server_update")["detail"],
        json!({"changed": ["name", "public"]})
    );
    assert_eq!(
        newest(&page, "server_create")["detail"]["endpoint"],
        "https://mcp1.example.com"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn key_creation_and_revocation_are_recorded_without_the_key(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "Research", &[]).await;
    let server = server["id"].as_str().unwrap().to_owned();
    let keys = format!("/api/v1/mcp-servers/{server}/keys");

    let created = app
        .send_json(Method::POST, &keys, &token, &json!({"name": "agent"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let key_id = created["id"].as_str().unwrap();
    let revoked = app
        .send(Method::DELETE, &format!("{keys}/{key_id}"), &token)
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let page = activity(&app, &token, "").await;
    assert_eq!(actions(&page)[3..], ["key_create", "key_revoke"]);
    for action in ["key_create", "key_revoke"] {
        let record = newest(&page, action);
        assert_eq!(record["key_id"], key_id);
        assert_eq!(record["server_id"], server.as_str());
    }
    let key = created["key"].as_str().unwrap();
    assert!(!stored(&pool).await.contains(key));
    assert!(!page.to_string().contains(key));
}

/// Where the hand-driven OAuth client is sent back to (nothing listens there).
const CALLBACK: &str = "http://127.0.0.1:9/callback";

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The value of a hidden form field in a page.
fn field(html: &str, name: &str) -> String {
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
}

async fn post_form(
    browser: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().copied())
        .finish();
    browser
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A person signs in on the authorization page and approves `client_id` for `mcp_url`;
/// returns the code and the PKCE verifier.
async fn approve(app: &TestApp, email: &str, client_id: &str, mcp_url: &str) -> (String, String) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = format!("{}/oauth/authorize", app.address);
    let url = format!(
        "{authorize}?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}\
         &code_challenge_method=S256&state=xyz&resource={}&scope=mcp",
        encode(client_id),
        encode(CALLBACK),
        encode(mcp_url),
    );
    let html = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (request, csrf) = (field(&html, "request"), field(&html, "csrf"));
    let signin = [
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("action", "signin"),
        ("email", email),
        ("password", PASSWORD),
    ];
    let signed_in = post_form(&browser, &authorize, &signin).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let back = signed_in.headers()["location"].to_str().unwrap().to_owned();
    let html = browser
        .get(format!("{}{back}", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (request, csrf) = (field(&html, "request"), field(&html, "csrf"));
    let approve = [
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("action", "approve"),
    ];
    let approved = post_form(&browser, &authorize, &approve).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let landed = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    (code, verifier)
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn oauth_approval_disconnection_and_client_revocation_are_recorded(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let ada = user_id(&app, &token).await;
    let server = app.server(&token, "Research", &[]).await;
    let (server_id, mcp_url) = (
        server["id"].as_str().unwrap().to_owned(),
        server["mcp_url"].as_str().unwrap().to_owned(),
    );
    let registered = app
        .post_json(
            "/oauth/register",
            &json!({"client_name": "Agent", "redirect_uris": [CALLBACK],
                    "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();

    // Approved, then disconnected by the owner.
    approve(&app, "ada@example.com", &client_id, &mcp_url).await;
    let grants = format!("/api/v1/mcp-servers/{server_id}/grants");
    let listed = app.json(Method::GET, &grants, &token).await;
    let first_grant = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let disconnected = app
        .send(Method::DELETE, &format!("{grants}/{first_grant}"), &token)
        .await;
    assert_eq!(disconnected.status(), StatusCode::NO_CONTENT);

    // Approved again, tokens issued, then revoked by the client itself.
    let (code, verifier) = approve(&app, "ada@example.com", &client_id, &mcp_url).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
        ("resource", mcp_url.as_str()),
    ];
    let plain = reqwest::Client::new();
    let tokens = post_form(&plain, &format!("{}/oauth/token", app.address), &exchange).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let revoke = [("token", refresh), ("client_id", client_id.as_str())];
    let revoked = post_form(&plain, &format!("{}/oauth/revoke", app.address), &revoke).await;
    assert_eq!(revoked.status(), StatusCode::OK);

    let page = activity(&app, &token, "").await;
    assert_eq!(
        actions(&page)[3..],
        [
            "signin",
            "grant_approve",
            "grant_delete",
            "signin",
            "grant_approve",
            "grant_revoke"
        ]
    );
    let items = page["items"].as_array().unwrap();
    let (revoke, second, delete, first) = (&items[0], &items[1], &items[3], &items[4]);
    assert_eq!(first["grant_id"], first_grant.as_str());
    assert_eq!(delete["grant_id"], first_grant.as_str());
    assert_eq!(first["detail"]["client_id"], client_id.as_str());
    assert_eq!(first["actor_id"], ada.as_str());
    assert_eq!(newest(&page, "signin")["detail"]["via"], "oauth");
    assert_eq!(revoke["grant_id"], second["grant_id"]);
    assert_eq!(revoke["actor_kind"], "oauth_client");
    assert_eq!(revoke["actor_id"], Value::Null);
    assert_eq!(revoke["user_id"], ada.as_str(), "the owner sees it");
    for item in items {
        if item["action"].as_str().unwrap().starts_with("grant_") {
            assert_eq!(item["server_id"], server_id.as_str());
        }
    }
    let all = stored(&pool).await;
    for secret in [code.as_str(), refresh, access, verifier.as_str(), PASSWORD] {
        assert!(!all.contains(secret), "{secret} is stored");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn command_line_actions_are_recorded_with_the_cli_as_actor(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let root = admin(&app).await;
    let token = app.user_token("ada@example.com").await;
    let ada = user_id(&app, &token).await;
    let keyring = shared::testing::settings().common.keyring().unwrap();

    control_plane::cli::set_role(&pool, "ada@example.com", true)
        .await
        .unwrap();
    control_plane::cli::set_role(&pool, "ada@example.com", false)
        .await
        .unwrap();
    control_plane::cli::rotate_secrets(&pool, &keyring)
        .await
        .unwrap();
    let kid = control_plane::oauth::signing::rotate(&pool, &keyring)
        .await
        .unwrap();

    let own = activity(&app, &token, "").await;
    assert_eq!(
        actions(&own),
        ["signup", "signin", "role_grant", "role_revoke"]
    );
    let all = activity(&app, &root, "").await;
    let granted = newest(&all, "role_grant");
    assert_eq!(granted["actor_kind"], "cli");
    assert_eq!(granted["actor_id"], Value::Null);
    assert_eq!(granted["user_id"], ada.as_str());
    assert_eq!(granted["client_ip"], Value::Null);
    assert_eq!(granted["detail"], json!({"role": "admin"}));
    assert_eq!(
        newest(&all, "role_revoke")["detail"],
        json!({"role": "user"})
    );
    let rotated = newest(&all, "secrets_rotate");
    assert_eq!(rotated["actor_kind"], "cli");
    assert_eq!(rotated["user_id"], Value::Null);
    assert_eq!(rotated["detail"]["resealed"], 0);
    assert_eq!(rotated["detail"]["key_id"], keyring.current().id());
    let rotated = newest(&all, "signing_key_rotate");
    assert_eq!(rotated["detail"], json!({"kid": kid}));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_hard_delete_is_recorded_for_the_administrator_and_shown_to_the_owner(pool: PgPool) {
    let app = spawn_app(pool).await;
    let root = admin(&app).await;
    let root_id = user_id(&app, &root).await;
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "Research", &[]).await;
    let server = server["id"].as_str().unwrap();

    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/v1/admin/mcp-servers/{server}"),
            &root,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let own = activity(&app, &token, "").await;
    let record = newest(&own, "server_hard_delete");
    assert_eq!(record["actor_id"], root_id.as_str());
    assert_eq!(record["server_id"], server);
    let admins = activity(&app, &root, &format!("?user_id={root_id}")).await;
    assert_eq!(
        actions(&admins),
        ["signup", "signin", "role_grant", "server_hard_delete"]
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn users_see_only_their_own_records_and_administrators_see_and_filter_everyones(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;
    let (ada_id, bob_id) = (user_id(&app, &ada).await, user_id(&app, &bob).await);
    app.source(&ada, &box_source()).await;
    app.server(&bob, "Bob's", &[]).await;
    let root = admin(&app).await;

    for (token, id) in [(&ada, &ada_id), (&bob, &bob_id)] {
        let page = activity(&app, token, "").await;
        assert_eq!(page["total"], 3, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["user_id"], id.as_str(), "{item}");
        }
    }
    let stranger = app
        .send(
            Method::GET,
            &format!("/api/v1/activity?user_id={ada_id}"),
            &bob,
        )
        .await;
    assert_error(stranger, StatusCode::FORBIDDEN, "admin_required").await;

    let everyone = activity(&app, &root, "").await;
    assert_eq!(everyone["total"], 9, "three users, three records each");
    let adas = activity(&app, &root, &format!("?user_id={ada_id}")).await;
    assert_eq!(actions(&adas), ["signup", "signin", "source_create"]);
    let created = activity(&app, &root, "?action=server_create").await;
    assert_eq!(created["total"], 1);
    assert_eq!(created["items"][0]["user_id"], bob_id.as_str());
    let paged = activity(&app, &root, "?limit=2&offset=1").await;
    assert_eq!(paged["items"].as_array().unwrap().len(), 2);
    assert_eq!(paged["total"], 9);
    assert_eq!(paged["items"][0], everyone["items"][1]);
    let later = (Utc::now() + Duration::minutes(1)).to_rfc3339();
    let earlier = (Utc::now() - Duration::minutes(10)).to_rfc3339();
    let window = |from: &str, to: &str| format!("?from={}&to={}", encode(from), encode(to));
    assert_eq!(
        activity(&app, &root, &window(&earlier, &later)).await["total"],
        9
    );
    assert_eq!(
        activity(&app, &root, &window(&later, &later)).await["total"],
        0
    );
    assert_eq!(activity(&app, &root, "?outcome=failure").await["total"], 0);
    for bad in ["?action=launch_missiles", "?outcome=maybe", "?limit=0"] {
        let response = app
            .send(Method::GET, &format!("/api/v1/activity{bad}"), &root)
            .await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let inverted = window(&later, &earlier);
    let response = app
        .send(Method::GET, &format!("/api/v1/activity{inverted}"), &root)
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let anonymous = app
        .request(Method::GET, "/api/v1/activity")
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_secret_password_or_token_reaches_the_activity_log(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let root = admin(&app).await;
    let token = app.user_token("ada@example.com").await;
    let source = app.source(&token, &outlook("outlook-secret-1")).await;
    app.send_json(
        Method::PUT,
        &format!("/api/v1/sources/{source}"),
        &token,
        &outlook("outlook-secret-2"),
    )
    .await;
    let snowflake = json!({"type": "snowflake", "source_metadata": {
        "account_url": "https://acme.snowflakecomputing.com", "pat": "snowflake-pat-3",
        "search_service": "DB.SCHEMA.SERVICE"}});
    app.source(&token, &snowflake).await;
    let server = app.server(&token, "Research", &[&source]).await;
    let created = app
        .send_json(
            Method::POST,
            &format!(
                "/api/v1/mcp-servers/{}/keys",
                server["id"].as_str().unwrap()
            ),
            &token,
            &json!({"name": "agent"}),
        )
        .await;
    let key: Value = created.json().await.unwrap();
    let changed = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            &token,
            &json!({"current_password": PASSWORD, "new_password": "the second password"}),
        )
        .await;
    let new_token: Value = changed.json().await.unwrap();
    let new_token = new_token["access_token"].as_str().unwrap();
    app.signin("ada@example.com", "a wrong guess here").await;

    let everything = format!(
        "{}{}{}",
        stored(&pool).await,
        activity(&app, &root, "?limit=200").await,
        activity(&app, new_token, "?limit=200").await,
    );
    assert!(everything.contains("source_update"), "{everything}");
    for secret in [
        "outlook-secret-1",
        "outlook-secret-2",
        "snowflake-pat-3",
        PASSWORD,
        "the second password",
        "a wrong guess here",
        &token,
        &root,
        new_token,
        key["key"].as_str().unwrap(),
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} reached the activity log"
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_refused_server_creation_records_a_failure_and_no_success(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |settings| {
        settings.control_plane.mcp_gateway_url_pools = "https://mcp1.example.com".to_owned();
    })
    .await;
    let token = app.user_token("ada@example.com").await;
    let first = app.server(&token, "First", &[]).await;

    let refused = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &token,
            &json!({"name": "Second"}),
        )
        .await;
    // With one fixed entry, a second server is past the account's share of the pool.
    assert_error(refused, StatusCode::CONFLICT, "endpoint_share_reached").await;

    let page = activity(&app, &token, "?action=server_create").await;
    assert_eq!(
        actions(&page),
        ["server_create", "server_create:endpoint_share_reached"]
    );
    assert_eq!(page["items"][1]["server_id"], first["id"]);
    let failure = &page["items"][0];
    assert_eq!(failure["outcome"], "failure");
    assert_eq!(failure["server_id"], Value::Null, "no server was made");
    let servers: i64 = sqlx::query_scalar("select count(*) from mcp_servers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(servers, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn rejected_changes_record_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let other = app.user_token("bob@example.com").await;
    let source = app.source(&token, &outlook("a-secret")).await;
    let before = activity(&app, &token, "").await["total"].clone();

    let invalid = json!({"type": "outlook", "source_metadata": {"tenant_id": "not a tenant!"}});
    let rejected = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/sources/{source}"),
            &token,
            &invalid,
        )
        .await;
    assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let strangers = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &other,
            &json!({"name": "Theft", "source_ids": [source]}),
        )
        .await;
    assert_error(strangers, StatusCode::NOT_FOUND, "source_not_found").await;
    let unknown = app
        .send(
            Method::DELETE,
            &format!("/api/v1/sources/{}", uuid::Uuid::new_v4()),
            &token,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    assert_eq!(activity(&app, &token, "").await["total"], before);
    let bobs = activity(&app, &other, "").await;
    assert_eq!(actions(&bobs), ["signup", "signin"]);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn records_past_retention_are_purged_and_retention_must_be_positive(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    sqlx::query(
        "update activity set created_at = now() - interval '91 days' where action = 'signup'",
    )
    .execute(&pool)
    .await
    .unwrap();

    let cutoff = Utc::now()
        - Duration::days(i64::from(
            shared::testing::settings()
                .control_plane
                .activity_retention_days,
        ));
    let purged = control_plane::db::activity::purge_before(&pool, cutoff)
        .await
        .unwrap();

    // The daemon's own housekeeping may have purged it a moment before: either way, it is gone.
    assert!(purged <= 1, "{purged}");
    let left: i64 = sqlx::query_scalar("select count(*) from activity where action = 'signup'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the record past retention is purged");
    assert_eq!(actions(&activity(&app, &token, "").await), ["signin"]);
    assert_eq!(
        shared::testing::settings()
            .control_plane
            .activity_retention_days,
        90
    );
    let mut settings = shared::testing::settings();
    settings.control_plane.activity_retention_days = 0;
    let refused = settings.validate_control_plane().expect_err("refused");
    assert!(
        refused.to_string().contains("ACTIVITY_RETENTION_DAYS"),
        "{refused}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_openapi_document_names_every_action_as_stored(pool: PgPool) {
    let app = spawn_app(pool).await;
    let doc: Value = app
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let documented: Vec<&str> = doc["components"]["schemas"]["Action"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("an Action enum in {}", doc["components"]["schemas"]))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let named: Vec<&str> = control_plane::activity::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(documented, named);
    for action in control_plane::activity::Action::ALL {
        let serialised = serde_json::to_value(action).unwrap();
        assert_eq!(serialised, action.as_str(), "serde and as_str agree");
        assert_eq!(
            control_plane::activity::Action::parse(action.as_str()),
            Some(action)
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_change_whose_record_cannot_be_written_is_rolled_back(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let source = app.source(&token, &box_source()).await;
    // From now on every activity insert fails.
    sqlx::query("alter table activity add constraint refuse_all check (false) not valid")
        .execute(&pool)
        .await
        .unwrap();

    let created = app
        .send_json(Method::POST, "/api/v1/sources", &token, &box_source())
        .await;
    let deleted = app
        .send(Method::DELETE, &format!("/api/v1/sources/{source}"), &token)
        .await;

    assert_error(created, StatusCode::INTERNAL_SERVER_ERROR, "internal_error").await;
    assert_error(deleted, StatusCode::INTERNAL_SERVER_ERROR, "internal_error").await;
    let sources: Vec<uuid::Uuid> = sqlx::query_scalar("select id from sources")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        sources,
        [source.parse::<uuid::Uuid>().unwrap()],
        "nothing changed"
    );
    let signin = app.signin("ada@example.com", PASSWORD).await;
    assert_eq!(
        signin.status(),
        StatusCode::OK,
        "an event recorded after the fact still succeeds"
    );
}
