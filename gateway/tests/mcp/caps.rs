//! Size caps on what upstreams send and what the tools return: an answer over the read cap is
//! refused with a short reason, and long titles, URLs and texts are cut before they reach the
//! agent. (What an oversized answer costs in memory is measured in `tests/memory.rs`.)

use std::time::Duration;

use gateway::{
    caps,
    sources::{SourceError, upstream::MAX_JSON_BYTES},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::{call, error_text, eventually, spawn_real_stack};

const TENANT: &str = "contoso.onmicrosoft.com";
const MESSAGES: &str = "/v1.0/users/ada@contoso.com/messages";

/// Graph with a token for anyone and `message` as the only message, searched and fetched.
async fn graph_serving(message: &Value) -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "t"}),
        ))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{MESSAGES}/m1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(message))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [message]})))
        .mount(&graph)
        .await;
    graph
}

fn mailbox() -> Value {
    json!({"type": "outlook", "source_metadata": {"tenant_id": TENANT,
        "client_id": "11111111-2222-3333-4444-555555555555", "client_secret": "s",
        "user_id": "ada@contoso.com"}})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn long_titles_urls_and_texts_are_cut_before_they_reach_the_agent(pool: PgPool) {
    let message = json!({"id": "m1", "subject": "é".repeat(10_000),
        "webLink": format!("https://outlook.office365.com/owa/?ItemID={}", "x".repeat(5000)),
        "body": {"contentType": "text", "content": "b".repeat(2 * 1024 * 1024)}});
    let graph = graph_serving(&message).await;
    let stack = spawn_real_stack(pool, |s| {
        s.upstreams.graph_base_url = format!("{}/v1.0", graph.uri());
        s.upstreams.microsoft_login_url = graph.uri();
        s.gateway.source_timeout_ms = 5000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let source = stack.source(&ada, mailbox()).await;
    let (_, host) = stack.server(&ada, "mail", &[&source]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    let found = call(&client, "search", json!({"query": "q"})).await;
    let results = found.structured_content.unwrap()["results"].clone();
    let hit = &results[0];
    let title = hit["title"].as_str().unwrap();
    assert!(title.len() <= caps::MAX_TITLE_BYTES, "{}", title.len());
    assert!(title.ends_with('…'), "a cut title says so");
    assert_eq!(hit["url"], "", "a URL too long to keep whole is left out");

    let fetched = call(&client, "fetch", json!({"id": hit["id"]})).await;
    assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
    let document = fetched.structured_content.unwrap();
    let text = document["text"].as_str().unwrap();
    assert!(text.starts_with("Subject: é"), "{}", &text[..40]);
    assert!(text.ends_with(caps::TEXT_CUT_NOTE));
    assert_eq!(text.len(), caps::MAX_TEXT_BYTES + caps::TEXT_CUT_NOTE.len());
    assert!(document["title"].as_str().unwrap().len() <= caps::MAX_TITLE_BYTES);
    assert!(serde_json::to_vec(&document).unwrap().len() <= caps::MAX_RESULT_BYTES);
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_answer_over_the_read_cap_is_a_short_reason(pool: PgPool) {
    // Just over the cap, with its `Content-Length`: refused before it is read.
    let message = json!({"id": "m1", "subject": "a".repeat(MAX_JSON_BYTES)});
    let graph = graph_serving(&message).await;
    let stack = spawn_real_stack(pool, |s| {
        s.upstreams.graph_base_url = format!("{}/v1.0", graph.uri());
        s.upstreams.microsoft_login_url = graph.uri();
        s.gateway.source_timeout_ms = 5000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let source = stack.source(&ada, mailbox()).await;
    let (_, host) = stack.server(&ada, "mail", &[&source]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    let found = call(&client, "search", json!({"query": "q"})).await;
    let reason = error_text(&found);
    let expected = SourceError::TooLarge(MAX_JSON_BYTES).to_string();
    assert!(reason.contains(&expected), "{reason}");
    assert!(expected.contains("8 MiB"), "{expected}");
    client.cancel().await.unwrap();
}
