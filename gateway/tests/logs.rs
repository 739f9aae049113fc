//! What the gateway logs, seen through the production subscriber installed globally, as the
//! daemon does (a binary of its own, so no other test shares the subscriber).

#[path = "mcp/fake.rs"]
mod fake;
#[path = "mcp/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "mcp/oauth_flow.rs"]
#[allow(dead_code)]
mod oauth_flow;

use std::{sync::OnceLock, time::Duration};

use serde_json::json;
use shared::testing::upstreams::{self, Upstreams};
use sqlx::PgPool;

use crate::{
    helpers::{call, eventually, spawn_oauth_stack, spawn_real_stack, spawn_stack},
    oauth_flow::{
        EMAIL, PASSWORD, approved_code, owner_with_server, redeem, status_with, token_request,
    },
};

static CAPTURED: OnceLock<shared::telemetry::CapturedLogs> = OnceLock::new();

/// The log output of this binary, at debug level (so a leak at any level shows).
fn captured() -> &'static shared::telemetry::CapturedLogs {
    CAPTURED.get_or_init(|| {
        let captured = shared::telemetry::CapturedLogs::default();
        let subscriber =
            shared::telemetry::subscriber(shared::LogFormat::Json, "debug", captured.clone());
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this binary");
        captured
    })
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn log_lines_carry_host_server_and_request_id_and_no_secret(pool: PgPool) {
    let captured = captured();

    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let broken = stack.files(&ada, "500").await;
    let good = stack.files(&ada, "1").await;
    let (server_id, host) = stack.server(&ada, "s", &[&good, &broken]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let response = stack
        .raw(&host, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "q"}}}))
        .await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let logs = captured.contents();
    // The capture is shared by the tests of this binary, which run at the same time: this
    // test's line is the one naming its failing source.
    let line = logs
        .lines()
        .find(|l| l.contains("source search failed") && l.contains(broken.as_str()))
        .unwrap_or_else(|| panic!("the failure is logged:\n{logs}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    let span = line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "tool_call"))
        .unwrap_or_else(|| panic!("the tool call's span is on the line: {line}"));
    assert_eq!(span["host"], host.as_str(), "{line}");
    assert_eq!(span["server_id"], server_id.as_str(), "{line}");
    assert_eq!(span["request_id"], request_id.as_str(), "{line}");
    assert_eq!(line["source_id"], broken.as_str());
    assert!(
        !logs.contains(crate::fake::SECRET),
        "secrets are never logged"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_request_logs_one_access_line_and_no_library_chatter(pool: PgPool) {
    let captured = captured();
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let good = stack.files(&ada, "1").await;
    let (server_id, host) = stack.server(&ada, "s", &[&good]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;

    let response = stack
        .raw(&host, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "q"}}}))
        .await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let logs = captured.contents();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.contains(&request_id))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let access: Vec<_> = lines.iter().filter(|l| l["target"] == "access").collect();
    assert_eq!(access.len(), 1, "one access line per request:\n{logs}");
    // The line carries the request's context itself (no span is made per request at the
    // default level).
    let line = access[0];
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["server_id"], server_id.as_str(), "{line}");
    assert_eq!(line["host"], host.as_str(), "{line}");
    assert_eq!(line["method"], "POST", "{line}");
    assert_eq!(line["path"], "/mcp", "{line}");
    assert!(line["latency_us"].is_u64(), "{line}");
    // rmcp's `input stream terminated` and `serve finished` (INFO, every request) are off by
    // default, even at the debug level this binary logs at.
    let chatter: Vec<_> = logs
        .lines()
        .filter(|l| l.contains(r#""target":"rmcp"#) || l.contains(r#""target":"hyper"#))
        .filter(|l| l.contains(r#""level":"INFO""#) || l.contains(r#""level":"DEBUG""#))
        .collect();
    assert!(chatter.is_empty(), "library chatter: {chatter:?}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_handler_logs_or_returns_a_credential_or_token(pool: PgPool) {
    let captured = captured();
    let fakes = Upstreams::start().await;
    let stack = spawn_real_stack(pool, |settings| fakes.point(settings)).await;
    let ada = stack.user("ada@example.com").await;
    let revoked = stack
        .source(&ada, upstreams::outlook_source(upstreams::REVOKED_TENANT))
        .await;
    let mut sources = vec![revoked.clone()];
    for body in [
        upstreams::outlook_source(upstreams::GOOD_TENANT),
        upstreams::box_source(),
        upstreams::snowflake_source(),
    ] {
        sources.push(stack.source(&ada, body).await);
    }
    let ids: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (_, host) = stack.server(&ada, "all", &ids).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    let found = call(&client, "search", json!({"query": "budget"})).await;
    let mut answers = serde_json::to_string(&found).unwrap();
    let results = found.structured_content.unwrap()["results"].clone();
    assert_eq!(results.as_array().unwrap().len(), 3, "{results}");
    for result in results.as_array().unwrap() {
        let fetched = call(&client, "fetch", json!({"id": result["id"]})).await;
        assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
        answers.push_str(&serde_json::to_string(&fetched).unwrap());
    }
    client.cancel().await.unwrap();

    let logs = captured.contents();
    let failure = logs
        .lines()
        .find(|l| l.contains(&revoked) && l.contains("source search failed"))
        .unwrap_or_else(|| panic!("the revoked source's failure is logged:\n{logs}"));
    assert!(
        failure.contains("authentication failed (invalid_client)"),
        "{failure}"
    );
    for secret in upstreams::SECRETS {
        assert!(!logs.contains(secret), "a credential or token was logged");
        assert!(
            !answers.contains(secret),
            "a credential or token reached an agent"
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_oauth_code_token_refresh_token_or_signing_key_is_logged(pool: PgPool) {
    let captured = captured();
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let (client_id, code, pkce) = approved_code(&stack, &mcp_url, EMAIL).await;
    let (_, issued) = redeem(&stack.origin, &client_id, &code, &pkce.verifier).await;
    let access = issued["access_token"].as_str().unwrap().to_owned();
    let refresh = issued["refresh_token"].as_str().unwrap().to_owned();
    // A call, a refused replay, a refresh, a refused token and a revocation: every path that
    // handles a credential logs something.
    oauth_flow::accepted(&mcp_url, &access).await;
    redeem(&stack.origin, &client_id, &code, &pkce.verifier).await;
    let (client_id, code, pkce) = approved_code(&stack, &mcp_url, EMAIL).await;
    let (_, issued) = redeem(&stack.origin, &client_id, &code, &pkce.verifier).await;
    let second_refresh = issued["refresh_token"].as_str().unwrap().to_owned();
    let (_, rotated) = token_request(
        &stack.origin,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    let rotated_access = rotated["access_token"].as_str().unwrap().to_owned();
    let rotated_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    status_with(&mcp_url, &format!("{access}x")).await;
    let revoked = reqwest::Client::new()
        .post(format!("{}/oauth/revoke", stack.origin))
        .form(&[
            ("token", rotated_refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), reqwest::StatusCode::OK);

    // The signing key's private half, as the control plane holds it.
    let (kid, sealed, key_id): (String, Vec<u8>, String) =
        sqlx::query_as("select kid, private_key, private_key_key_id from oauth_signing_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
    let keyring = helpers::settings().common.keyring().unwrap();
    let aad = format!("mcp-gateway/oauth-signing-key/{kid}");
    let seed = keyring.open(&sealed, &key_id, aad.as_bytes()).unwrap();
    use base64::Engine;
    let encodings = [
        base64::engine::general_purpose::STANDARD.encode(&seed),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&seed),
        seed.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ];

    let logs = captured.contents();
    assert!(logs.contains("OAuth tokens issued"), "the flow is logged");
    for (what, secret) in [
        ("code", code.as_str()),
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated access token", rotated_access.as_str()),
        ("rotated refresh token", rotated_refresh.as_str()),
        ("password", PASSWORD),
    ] {
        assert!(!logs.contains(secret), "the {what} was logged");
    }
    for encoded in encodings {
        assert!(!logs.contains(&encoded), "the signing key was logged");
    }
}
