//! Upstream failures are recorded by class (the audit log's per-source `error_class`), and
//! what the gateway holds in memory prints no secret.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path},
};

use crate::helpers::{call, eventually, spawn_real_stack};

/// A Box source whose subject id picks its behaviour on the fake.
fn box_source(client_id: &str, subject_id: &str) -> Value {
    json!({"type": "box", "source_metadata": {"client_id": client_id,
        "client_secret": "box-secret-of-the-class-test", "subject_type": "enterprise",
        "subject_id": subject_id}})
}

/// Box's token endpoint refusing `deny` and granting `tok-<subject>` to the others, and its
/// search answering per token: 429 for ever, too slowly, or not JSON.
async fn box_fake() -> MockServer {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("client_id=deny"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .with_priority(1)
        .mount(&fake)
        .await;
    for subject in ["429", "300", "777"] {
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .and(body_string_contains(
                format!("box_subject_id={subject}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"access_token": format!("tok-{subject}"), "expires_in": 3600}),
            ))
            .mount(&fake)
            .await;
    }
    let search = |subject: &str| {
        Mock::given(method("GET"))
            .and(path("/2.0/search"))
            .and(header(
                "authorization",
                format!("Bearer tok-{subject}").as_str(),
            ))
    };
    search("429")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .mount(&fake)
        .await;
    search("300")
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&fake)
        .await;
    search("777")
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&fake)
        .await;
    fake
}

/// An address nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn each_upstream_failure_is_audited_with_its_class(pool: PgPool) {
    let fake = box_fake().await;
    let refused = closed_port_url().await;
    let stack = spawn_real_stack(pool, |settings| {
        settings.upstreams.box_api_url = format!("{}/2.0", fake.uri());
        settings.upstreams.box_token_url = format!("{}/oauth2/token", fake.uri());
        settings.upstreams.graph_base_url = format!("{refused}/v1.0");
        settings.upstreams.microsoft_login_url = refused.clone();
        settings.gateway.source_timeout_ms = 1500;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let mut expected = Vec::new();
    for (body, class) in [
        (box_source("deny", "1"), "authentication"),
        (box_source("abc", "429"), "throttled"),
        (box_source("abc", "300"), "timeout"),
        (box_source("abc", "777"), "bad_response"),
        (
            json!({"type": "outlook", "source_metadata": {"tenant_id": "contoso.onmicrosoft.com",
                "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s",
                "user_id": "ada@contoso.com"}}),
            "unreachable",
        ),
    ] {
        expected.push((stack.source(&ada, body).await, class));
    }
    let ids: Vec<&str> = expected.iter().map(|(id, _)| id.as_str()).collect();
    let (server_id, host) = stack.server(&ada, "failing", &ids).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;

    let client = stack.client(&host).await;
    let result = call(&client, "search", json!({"query": "budget"})).await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.unwrap();

    let path = format!("/mcp-servers/{server_id}/calls");
    eventually(Duration::from_secs(2), "the call is recorded", || async {
        let (_, page) = stack.call(Method::GET, &path, &ada, None).await;
        page["total"].as_u64() == Some(1)
    })
    .await;
    let (_, page) = stack.call(Method::GET, &path, &ada, None).await;
    let sources = page["items"][0]["sources"].as_array().unwrap().clone();
    for (source_id, class) in expected {
        let record = sources
            .iter()
            .find(|s| s["source_id"] == source_id.as_str())
            .unwrap_or_else(|| panic!("{source_id} is in {sources:?}"));
        assert_eq!(record["error_class"], class, "{record}");
        let outcome = if class == "timeout" {
            "timeout"
        } else {
            "error"
        };
        assert_eq!(record["outcome"], outcome, "{record}");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_snapshot_and_a_served_source_print_no_secret(pool: PgPool) {
    const SECRET: &str = "box-secret-that-must-not-print";
    let stack = spawn_real_stack(pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let mut body = box_source("abc", "1");
    body["source_metadata"]["client_secret"] = json!(SECRET);
    let source = stack.source(&ada, body).await;
    let (_, host) = stack.server(&ada, "s", &[&source]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;

    let snapshot = stack.store.load().expect("a snapshot");
    let server = snapshot.server(&host).expect("the server");
    let served = server.source(source.parse().unwrap()).expect("the source");
    assert!(served.config.is_ok(), "{served:?}");
    for printed in [
        format!("{snapshot:?}"),
        format!("{snapshot:#?}"),
        format!("{served:?}"),
    ] {
        assert!(printed.contains(&source), "the source is there: {printed}");
        assert!(!printed.contains(SECRET), "a secret printed: {printed}");
    }
}
