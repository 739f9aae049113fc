//! What the OAuth endpoints and the gateway refuse, each answered as the RFCs say, leaving
//! nothing usable behind: tokens on the wrong server, expired or forged; PKCE and redirect
//! mistakes; replayed codes and refresh tokens (which end the grant); another user's server;
//! unsafe redirect URIs; and client metadata documents that are unsafe to use.

use std::time::Duration;

use axum::{
    Router,
    http::{StatusCode as AxumStatus, header},
    response::IntoResponse,
    routing::get,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};
use shared::oauth::AccessClaims;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    helpers::{Stack, eventually, spawn_oauth_stack},
    oauth_flow::{
        CALLBACK, EMAIL, accepted, approved_code, authorize_url, consent, field, owner_with_server,
        param, pkce, post_form, post_form_from, redeem, register, status_with, token_request,
        usual,
    },
};

/// An Ed25519 key that is not the control plane's (a test fixture: PKCS #8, base64 DER).
const FOREIGN_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIBfbLak6JEre0Sp9/7pqnvhogtQoBpbncPVECjLS0mcr";

/// Live grants in the database.
async fn grants(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from oauth_grants")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A browser that does not follow redirects; GETs `url`.
async fn open(url: &str) -> reqwest::Response {
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    browser.get(url).send().await.unwrap()
}

/// Claims like the control plane's, for `grant` (approved by `sub`) on `resource`.
fn claims(stack: &Stack, grant: Uuid, sub: Uuid, resource: &str, exp: i64) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: stack.origin.clone(),
        sub,
        aud: resource.to_owned(),
        exp,
        iat: now,
        jti: Uuid::new_v4(),
        client_id: "c".to_owned(),
        scope: "mcp".to_owned(),
        gid: grant,
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn tokens_work_only_on_their_server_unexpired_and_signed_by_the_control_plane(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (token, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, pkce) = approved_code(&stack, &mcp_url, EMAIL).await;
    let (status, issued) = redeem(&stack.origin, &client_id, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let access = issued["access_token"].as_str().unwrap();
    accepted(&mcp_url, access).await;

    // Server B of the same owner, on another host of the same gateway.
    let source = stack.files(&token, "1").await;
    let (_, host_b) = stack.server_without_key(&token, "B", &[&source]).await;
    let on_b = || async {
        reqwest::Client::new()
            .post(stack.mcp_url())
            .header("host", &host_b)
            .bearer_auth(access)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
            .send()
            .await
            .unwrap()
    };
    eventually(Duration::from_secs(2), "B served", || async {
        on_b().await.status() != StatusCode::NOT_FOUND
    })
    .await;
    let refused = on_b().await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("https://mcp2.example.com/.well-known/oauth-protected-resource/mcp"),
        "{challenge}"
    );

    // Expired (signed by the real key, for the real grant), and forged with another key.
    let (grant, person): (Uuid, Uuid) = sqlx::query_as("select id, user_id from oauth_grants")
        .fetch_one(&pool)
        .await
        .unwrap();
    let keyring = crate::helpers::settings().common.keyring().unwrap();
    let past = chrono::Utc::now().timestamp() - 60;
    let expired = control_plane::oauth::signing::sign(
        &pool,
        &keyring,
        &claims(&stack, grant, person, &mcp_url, past),
    )
    .await
    .unwrap();
    assert_eq!(
        status_with(&mcp_url, &expired).await,
        StatusCode::UNAUTHORIZED
    );
    let future = chrono::Utc::now().timestamp() + 600;
    let genuine = control_plane::oauth::signing::sign(
        &pool,
        &keyring,
        &claims(&stack, grant, person, &mcp_url, future),
    )
    .await
    .unwrap();
    assert_eq!(status_with(&mcp_url, &genuine).await, StatusCode::OK);
    // A token for the grant is good only for the person who approved it.
    let someone_else = control_plane::oauth::signing::sign(
        &pool,
        &keyring,
        &claims(&stack, grant, Uuid::new_v4(), &mcp_url, future),
    )
    .await
    .unwrap();
    assert_eq!(
        status_with(&mcp_url, &someone_else).await,
        StatusCode::UNAUTHORIZED
    );
    let header = jsonwebtoken::decode_header(&genuine).unwrap();
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&stack, grant, person, &mcp_url, future),
        &jsonwebtoken::EncodingKey::from_ed_der(&STANDARD.decode(FOREIGN_KEY).unwrap()),
    )
    .unwrap();
    assert_eq!(
        status_with(&mcp_url, &forged).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&mcp_url, "not.a-token.at-all").await,
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn pkce_must_be_s256(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;

    // `plain` is refused with a page; the browser is sent nowhere (no open redirect).
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let client_id = client["client_id"].as_str().unwrap();
    let p = pkce();
    let mut params = usual(client_id, &p, &mcp_url);
    params.retain(|(k, _)| *k != "code_challenge_method");
    params.push(("code_challenge_method", "plain"));
    let refused = open(&authorize_url(&stack.origin, &params)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.headers().get("location").is_none());
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("invalid_request") && page.contains("S256"),
        "{page}"
    );
}

/// Asserts an `invalid_grant` answer.
fn invalid_grant((status, body): (StatusCode, Value)) {
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_wrong_verifier_leaves_the_code_to_the_right_one_and_a_replay_still_revokes(
    pool: PgPool,
) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, p) = approved_code(&stack, &mcp_url, EMAIL).await;
    invalid_grant(redeem(&stack.origin, &client_id, &code, &pkce().verifier).await);
    let (status, issued) = redeem(&stack.origin, &client_id, &code, &p.verifier).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    accepted(&mcp_url, issued["access_token"].as_str().unwrap()).await;

    // The redeemed code again: a replay, which ends the grant.
    invalid_grant(redeem(&stack.origin, &client_id, &code, &p.verifier).await);
    assert_eq!(grants(&pool).await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn three_wrong_verifiers_spend_the_code_without_ending_the_grant(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, p) = approved_code(&stack, &mcp_url, EMAIL).await;
    // Wrong redemptions concurrently: the count is exact all the same.
    let wrong = (0..3).map(|_| {
        let (origin, client_id, code) = (&stack.origin, &client_id, &code);
        async move { redeem(origin, client_id, code, &pkce().verifier).await }
    });
    for answer in futures::future::join_all(wrong).await {
        invalid_grant(answer);
    }
    invalid_grant(redeem(&stack.origin, &client_id, &code, &p.verifier).await);
    // No tokens came from the code: its end is no replay, and the grant stays.
    assert_eq!(grants(&pool).await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_unregistered_redirect_uri_gets_a_page_and_is_never_redirected_to(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let client_id = client["client_id"].as_str().unwrap();
    let p = pkce();
    let mut params = usual(client_id, &p, &mcp_url);
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "https://attacker.example/steal"));
    let page = open(&authorize_url(&stack.origin, &params)).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("not one this client registered")
    );

    // An unknown client likewise.
    let mut params = usual("no-such-client", &p, &mcp_url);
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", CALLBACK));
    let page = open(&authorize_url(&stack.origin, &params)).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_replayed_code_fails_and_ends_what_it_issued(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, p) = approved_code(&stack, &mcp_url, EMAIL).await;
    let (status, issued) = redeem(&stack.origin, &client_id, &code, &p.verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = issued["access_token"].as_str().unwrap();
    accepted(&mcp_url, access).await;

    let (status, body) = redeem(&stack.origin, &client_id, &code, &p.verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(grants(&pool).await, 0);
    eventually(
        Duration::from_secs(1),
        "the token of the replayed code is refused",
        || async { status_with(&mcp_url, access).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    let refresh = issued["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &stack.origin,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_reused_refresh_token_ends_the_grant(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, p) = approved_code(&stack, &mcp_url, EMAIL).await;
    let (_, issued) = redeem(&stack.origin, &client_id, &code, &p.verifier).await;
    let first = issued["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let (origin, client_id) = (stack.origin.clone(), client_id.clone());
        async move {
            token_request(
                &origin,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
            )
            .await
        }
    };
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    accepted(&mcp_url, &access).await;

    // The first one again: someone kept a copy. The grant ends with everything under it.
    let (status, body) = refresh(first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(grants(&pool).await, 0);
    let (status, _) = refresh(second).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    eventually(
        Duration::from_secs(1),
        "the grant's access token is refused",
        || async { status_with(&mcp_url, &access).await == StatusCode::UNAUTHORIZED },
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn another_users_server_is_refused_like_a_missing_one_and_its_owner_alone_approves(
    pool: PgPool,
) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, victim_url) = owner_with_server(&stack, EMAIL).await;
    stack.user("mallory@example.com").await;
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    // Mallory names the victim's server, then a server that does not exist: the same answer.
    let mut answers = Vec::new();
    for resource in [victim_url.as_str(), "https://mcp3.example.com/mcp"] {
        let p = pkce();
        let url = authorize_url(&stack.origin, &usual(&client_id, &p, resource));
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap();
        let html = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let request = field(&html, "request");
        let csrf = field(&html, "csrf");
        let form = [
            ("request", request.clone()),
            ("csrf", csrf.clone()),
            ("action", "signin".to_owned()),
            ("email", "mallory@example.com".to_owned()),
            ("password", crate::oauth_flow::PASSWORD.to_owned()),
        ];
        let signed_in = post_form(&browser, &stack.origin, &form).await;
        let back = signed_in.headers()["location"].to_str().unwrap().to_owned();
        let refused = browser
            .get(format!("{}{back}", stack.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.headers().get("location").is_none());
        let page = refused.text().await.unwrap();
        assert!(page.contains("invalid_target"), "{page}");
        answers.push(page);

        // Approving anyway (with the sign-in form's anti-forgery token) changes nothing.
        let form = [
            ("request", request),
            ("csrf", csrf),
            ("action", "approve".to_owned()),
        ];
        let approve = post_form(&browser, &stack.origin, &form).await;
        assert_eq!(approve.status(), StatusCode::BAD_REQUEST);
        assert!(approve.headers().get("location").is_none());
        assert!(approve.text().await.unwrap().contains("invalid_target"));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(grants(&pool).await, 0);
}

/// A browser whose requests come from `client` (the proxy's `X-Forwarded-For`).
pub fn browser_at(client: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Signs in on the authorization page at `url` with `password`; the status of the answer.
async fn sign_in_on_the_page(
    browser: &reqwest::Client,
    issuer: &str,
    url: &str,
    password: &str,
) -> StatusCode {
    let html = browser.get(url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("action", "signin".to_owned()),
        ("email", EMAIL.to_owned()),
        ("password", password.to_owned()),
    ];
    post_form(browser, issuer, &form).await.status()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn wrong_passwords_on_the_page_from_one_address_do_not_lock_the_owner_out(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |s| {
        s.control_plane.trust_forwarded_for = true;
        s.control_plane.signin_attempts_per_minute_per_email = 2;
    })
    .await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let p = pkce();
    let url = authorize_url(
        &stack.origin,
        &usual(client["client_id"].as_str().unwrap(), &p, &mcp_url),
    );

    let stranger = browser_at("203.0.113.66");
    for _ in 0..2 {
        assert_eq!(
            sign_in_on_the_page(&stranger, &stack.origin, &url, "guess guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in_on_the_page(&stranger, &stack.origin, &url, crate::oauth_flow::PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is refused, even with the right password"
    );
    let owner = browser_at("198.51.100.1");
    assert_eq!(
        sign_in_on_the_page(&owner, &stack.origin, &url, crate::oauth_flow::PASSWORD).await,
        StatusCode::SEE_OTHER,
        "the owner signs in from another address"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn forms_without_this_browsers_anti_forgery_token_are_refused(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (_, client) = register(&stack.origin, json!([CALLBACK])).await;
    let client_id = client["client_id"].as_str().unwrap();
    let p = pkce();
    let url = authorize_url(&stack.origin, &usual(client_id, &p, &mcp_url));
    // The attacker's browser gets a form; the victim's browser posts it.
    let attacker = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = attacker
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let victim = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    victim.get(&url).send().await.unwrap();
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("action", "approve".to_owned()),
    ];
    assert_eq!(
        post_form(&victim, &stack.origin, &form).await.status(),
        StatusCode::FORBIDDEN
    );
    // A post from another origin, even with a good token.
    let mine = victim.get(&url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("request", field(&mine, "request")),
        ("csrf", field(&mine, "csrf")),
        ("action", "deny".to_owned()),
    ];
    assert_eq!(
        post_form_from(&victim, &stack.origin, "https://evil.example", &form)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(grants(&pool).await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn registration_refuses_unsafe_redirect_uris_and_confidential_clients(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    for uris in [
        json!(["javascript:alert(1)"]),
        json!(["http://evil.example.com/cb"]),
        json!([]),
        json!("https://x.example/cb"),
        json!(["https://ok.example/cb", "data:text/html,hi"]),
    ] {
        let (status, body) = register(&stack.origin, uris.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uris}");
        assert_eq!(body["error"], "invalid_redirect_uri", "{uris}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/register", stack.origin))
        .json(&json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    let garbage = reqwest::Client::new()
        .post(format!("{}/oauth/register", stack.origin))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("select count(*) from oauth_clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

/// Serves `/client.json` (whatever the query) as `answer` makes it from the document's URL;
/// returns that URL.
pub async fn document_server<A>(
    answer: impl Fn(String) -> A + Clone + Send + Sync + 'static,
) -> String
where
    A: Future<Output = axum::response::Response> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let own = url.clone();
    let app = Router::new().route(
        "/client.json",
        get(move || {
            let (answer, own) = (answer.clone(), own.clone());
            async move { answer(own).await }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A good document for `client_id`.
pub fn document(client_id: &str) -> Value {
    json!({"client_id": client_id, "client_name": "Doc agent", "redirect_uris": [CALLBACK]})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn unsafe_or_wrong_metadata_documents_are_refused_with_a_page(pool: PgPool) {
    let stack = spawn_oauth_stack(pool.clone(), |settings| {
        settings.control_plane.oauth_cimd_allow_http_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let redirecting = document_server(|_| async {
        (
            AxumStatus::FOUND,
            [(header::LOCATION, "https://elsewhere.example/client.json")],
        )
            .into_response()
    })
    .await;
    let huge = document_server(|own| async move {
        let mut doc = document(&own);
        doc["padding"] = json!("x".repeat(20 * 1024));
        axum::Json(doc).into_response()
    })
    .await;
    let impostor = document_server(|_| async {
        axum::Json(document(
            "https://claude.ai/oauth/mcp-oauth-client-metadata",
        ))
        .into_response()
    })
    .await;
    let cases = [
        (redirecting, "redirect"),
        (huge, "larger than"),
        (impostor, "another client_id"),
        // Not listed for plain HTTP and private: refused before any connection.
        ("https://localhost:9/client.json".to_owned(), "non-public"),
        ("https://10.0.0.1/client.json".to_owned(), "non-public"),
        ("http://metadata.example/client.json".to_owned(), "https://"),
    ];
    for (client_id, reason) in cases {
        let p = pkce();
        let page = open(&authorize_url(
            &stack.origin,
            &usual(&client_id, &p, &mcp_url),
        ))
        .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{client_id}");
        assert!(page.headers().get("location").is_none());
        let text = page.text().await.unwrap();
        assert!(text.contains(reason), "{client_id}: {text}");
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from oauth_clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // The control surface still works: a good document completes the flow.
    let good =
        document_server(|own| async move { axum::Json(document(&own)).into_response() }).await;
    let p = pkce();
    let callback = consent(
        &stack.origin,
        &authorize_url(&stack.origin, &usual(&good, &p, &mcp_url)),
        EMAIL,
    )
    .await;
    assert!(param(&callback, "code").is_some(), "{callback}");
}
