//! The Outlook handler against a local Microsoft Graph fake answering in Graph's wire shapes
//! (`upstream-apis.md`): tokens, search, fetch, paging, errors and throttling.

use std::{sync::Arc, time::Duration};

use crate::handlers::{search_error, served};
use gateway::{
    snapshot::ServedSource,
    sources::{Registry, SourceError, outlook::Outlook, upstream},
};
use serde_json::{Value, json};
use shared::model::SourceType;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

const TENANT: &str = "contoso.onmicrosoft.com";
const SECRET: &str = "graph-client-secret-value";
const MAILBOX: &str = "ada@contoso.com";
const DEADLINE: Duration = Duration::from_secs(2);

fn source() -> ServedSource {
    let metadata = json!({"tenant_id": TENANT, "client_id": "11111111-2222-3333-4444-555555555555", "user_id": MAILBOX});
    served(
        SourceType::Outlook,
        &metadata,
        &json!({"client_secret": SECRET}),
    )
}

fn registry(graph: &MockServer) -> Registry {
    let http = upstream::client(Duration::from_secs(2));
    let outlook = Outlook::new(http, &format!("{}/v1.0", graph.uri()), &graph.uri()).unwrap();
    Registry {
        outlook: Arc::new(outlook),
        ..crate::helpers::base_registry()
    }
}

async fn token_endpoint(graph: &MockServer, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(format!("client_secret={SECRET}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})))
        .expect(times)
        .mount(graph)
        .await;
}

fn message(id: &str, subject: &str) -> Value {
    json!({"id": id, "subject": subject, "bodyPreview": "Numbers attached",
        "from": {"emailAddress": {"name": "Adele Vance", "address": "adelev@contoso.com"}},
        "toRecipients": [{"emailAddress": {"name": "Alex Wilber", "address": "alexw@contoso.com"}}],
        "receivedDateTime": "2024-09-09T03:15:08Z", "hasAttachments": false, "conversationId": "AAQkADOUpag6yWs=",
        "webLink": format!("https://outlook.office365.com/owa/?ItemID={id}")})
}

const MESSAGES: &str = "/v1.0/users/ada@contoso.com/messages";

#[tokio::test]
async fn search_and_fetch_speak_graph() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "token-1", 1).await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .and(query_param("$search", "\"q3 \\\"budget\\\"\""))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"@odata.context": "x", "value": [
            message("AAMk+ab/C=", "Q3 report"), message("AAMk+AB/c=", "")]})),
        )
        .mount(&graph)
        .await;
    // The REST form of the first id: `/` → `-`, `+` → `_`.
    Mock::given(method("GET"))
        .and(path(format!("{MESSAGES}/AAMk_ab-C=")))
        .and(header("prefer", "outlook.body-content-type=\"text\""))
        .respond_with(ResponseTemplate::new(200).set_body_json({
            let mut m = message("AAMk+ab/C=", "Q3 report");
            m["body"] = json!({"contentType": "text", "content": "The numbers are in."});
            m["ccRecipients"] =
                json!([{"emailAddress": {"name": "", "address": "cfo@contoso.com"}}]);
            m
        }))
        .mount(&graph)
        .await;
    let registry = registry(&graph);
    let source = source();

    let hits = registry
        .search(&source, "q3 \"budget\"", 10, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        (hits[0].upstream_id.as_str(), hits[0].title.as_str()),
        ("AAMk+ab/C=", "Q3 report")
    );
    assert_eq!(
        hits[1].upstream_id, "AAMk+AB/c=",
        "ids differing only by case stay distinct"
    );
    assert_eq!(hits[1].title, "(no subject)");

    let document = registry
        .fetch(&source, "AAMk+ab/C=", DEADLINE)
        .await
        .unwrap();
    assert!(
        document
            .text
            .contains("From: Adele Vance <adelev@contoso.com>"),
        "{}",
        document.text
    );
    assert!(
        document.text.contains("Cc: cfo@contoso.com")
            && document.text.ends_with("The numbers are in.")
    );
    assert_eq!(document.metadata["conversation_id"], "AAQkADOUpag6yWs=");
    assert_eq!(document.metadata["has_attachments"], false);
    assert_eq!(
        registry
            .fetch(&source, "AAMk+AB/c=", DEADLINE)
            .await
            .unwrap_err(),
        SourceError::NotFound,
        "the other case is another id"
    );
    assert_eq!(
        registry
            .fetch(&source, "../../me", DEADLINE)
            .await
            .unwrap_err(),
        SourceError::NotFound,
        "not a Graph id"
    );
}

#[tokio::test]
async fn one_token_serves_many_concurrent_calls() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "token-1", 1).await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [message("A", "a")]}))
                .set_delay(Duration::from_millis(20)),
        )
        .mount(&graph)
        .await;
    let registry = registry(&graph);
    let source = source();
    let calls = (0..10).map(|_| registry.search(&source, "q", 5, DEADLINE));
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().len(), 1);
    }
    graph.verify().await;
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "stale", "expires_in": 3599})),
        )
        .up_to_n_times(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "fresh", "expires_in": 3599})),
        )
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer stale"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [message("A", "a")]})),
        )
        .mount(&graph)
        .await;
    let hits = registry(&graph)
        .search(&source(), "q", 5, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn throttling_is_honoured_then_succeeds() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "t", 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.2")
            .set_body_json(json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}})))
        .up_to_n_times(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [message("A", "a")]})),
        )
        .mount(&graph)
        .await;
    let started = std::time::Instant::now();
    let hits = registry(&graph)
        .search(&source(), "q", 5, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited as asked"
    );
}

#[tokio::test]
async fn upstream_trouble_becomes_a_short_reason_without_secrets() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "t", 1).await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"code": "generalException", "message": "internal detail"}}),
        ))
        .mount(&graph)
        .await;
    let graph_registry = registry(&graph);
    let started = std::time::Instant::now();
    let err = search_error(&graph_registry, &source(), "q", 5, DEADLINE).await;
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(err, "Graph request failed: HTTP 500 (generalException)");

    let bad_secret = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client",
            "error_description": format!("AADSTS7000215: Invalid client secret provided: {SECRET}"), "error_codes": [7000215]})))
        .mount(&bad_secret)
        .await;
    let err = search_error(&registry(&bad_secret), &source(), "q", 5, DEADLINE).await;
    assert_eq!(err, "authentication failed (invalid_client)");
    assert!(!err.contains(SECRET));
}

#[tokio::test]
async fn slow_and_malformed_answers_fail_cleanly() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "t", 1).await;
    Mock::given(method("GET"))
        .and(query_param("$search", "\"slow\""))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": []}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(query_param("$search", "\"broken\""))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"value\": [ not json"))
        .mount(&graph)
        .await;
    let (registry, source) = (registry(&graph), source());
    let err = search_error(&registry, &source, "slow", 5, Duration::from_millis(300)).await;
    assert!(err.contains("timed out"), "{err}");
    let err = search_error(&registry, &source, "broken", 5, DEADLINE).await;
    assert_eq!(err, "upstream answered malformed JSON");
}

#[tokio::test]
async fn next_links_are_followed_on_the_graph_host_only() {
    let graph = MockServer::start().await;
    token_endpoint(&graph, "t", 1).await;
    let next = format!(
        "{}{MESSAGES}?%24search=%22q%22&%24skiptoken=page2",
        graph.uri()
    );
    Mock::given(method("GET"))
        .and(query_param("$skiptoken", "page2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [message("B", "b")],
            "@odata.nextLink": "https://evil.example/v1.0/users/x/messages?%24skiptoken=3"})),
        )
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(query_param("$top", "5"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [message("A", "a")], "@odata.nextLink": next})),
        )
        .mount(&graph)
        .await;
    let hits = registry(&graph)
        .search(&source(), "q", 5, DEADLINE)
        .await
        .unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.upstream_id.as_str()).collect();
    assert_eq!(
        ids,
        ["A", "B"],
        "page two came from the Graph host; the foreign link was not followed"
    );
}

#[tokio::test]
async fn a_hostile_retry_after_cannot_hold_a_call_past_its_deadline() {
    // Every answer is 429 with a Retry-After a year away (as an HTTP date, which is honoured):
    // waits are capped, and the call ends with its deadline, not with the upstream's wish.
    let graph = MockServer::start().await;
    token_endpoint(&graph, "t", 1).await;
    let next_year = (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", next_year.as_str()))
        .mount(&graph)
        .await;
    let deadline = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = registry(&graph)
        .search(&source(), "q", 5, deadline)
        .await
        .unwrap_err();
    assert_eq!(err, SourceError::TimedOut(deadline));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "held for {:?}",
        started.elapsed()
    );
}
