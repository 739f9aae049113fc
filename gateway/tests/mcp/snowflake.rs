//! The Snowflake handler against a local Snowflake fake answering in Snowflake's wire shapes
//! (`upstream-apis.md`): PAT headers, Cortex Search, Cortex Analyst, the SQL API's 202
//! polling and partitions, errors and throttling.

use std::{sync::Arc, time::Duration};

use crate::handlers::{fetch_error, search_error, served};
use gateway::{
    snapshot::ServedSource,
    sources::{Registry, SourceError, snowflake::Snowflake, upstream},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::{
    crypto::{Keyring, SecretKey},
    model::SourceType,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, query_param},
};

const PAT: &str = "snowflake-pat-value";
const DEADLINE: Duration = Duration::from_secs(3);
const SERVICE: &str =
    "/api/v2/databases/DOCS/schemas/PUBLIC/cortex-search-services/HR_SEARCH:query";
const ANALYST: &str = "/api/v2/cortex/analyst/message";
const STATEMENTS: &str = "/api/v2/statements";

fn source(extra: &Value) -> ServedSource {
    let mut metadata = json!({"account_url": "https://acme-prod.snowflakecomputing.com",
        "search_service": "DOCS.PUBLIC.HR_SEARCH", "id_column": "DOC_ID", "title_column": "TITLE",
        "text_column": "CHUNK", "url_column": "URL", "warehouse": "WH", "role": "ANALYST"});
    for (k, v) in extra.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    served(SourceType::Snowflake, &metadata, &json!({"pat": PAT}))
}

fn analyst_source() -> ServedSource {
    source(&json!({"semantic_model_file": "@DOCS.PUBLIC.MODELS/sales.yaml"}))
}

fn keyring() -> Arc<Keyring> {
    let key = SecretString::from("dGVzdC1zZWNyZXRzLWtleS1vZi0zMi1ieXRlcyEhISE=");
    Arc::new(Keyring::new(
        SecretKey::from_base64(&key, "SECRETS_KEY").unwrap(),
        vec![],
    ))
}

fn registry(fake: &MockServer) -> Registry {
    let snowflake = Snowflake::new(
        upstream::client(Duration::from_secs(2)),
        &fake.uri(),
        keyring(),
    )
    .unwrap();
    Registry {
        snowflake: Arc::new(snowflake),
        ..crate::helpers::base_registry()
    }
}

/// Every Snowflake call carries the PAT headers.
fn pat_call(verb: &str, at: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(at))
        .and(header("authorization", format!("Bearer {PAT}").as_str()))
        .and(header(
            "x-snowflake-authorization-token-type",
            "PROGRAMMATIC_ACCESS_TOKEN",
        ))
        .and(header("accept", "application/json"))
}

fn row(id: &Value, title: &str) -> Value {
    json!({"DOC_ID": id, "TITLE": title, "CHUNK": format!("Text of {title}."), "URL": format!("https://intranet/{title}"), "REGION": "US"})
}

#[tokio::test]
async fn search_and_fetch_documents_by_id_column() {
    let fake = MockServer::start().await;
    let odd_id = json!("hr/42 é+=?");
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "vacation policy", "columns": ["DOC_ID", "TITLE", "CHUNK", "URL"], "limit": 10})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            row(&odd_id, "HR Handbook"),
            // Key casing follows the service definition: matched case-insensitively.
            {"doc_id": 7, "title": "Benefits", "chunk": "…", "url": "https://intranet/b"},
            {"TITLE": "no id"}], "request_id": "r1"})))
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(
            json!({"filter": {"@eq": {"DOC_ID": odd_id}}, "limit": 1}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": [row(&odd_id, "HR Handbook")]})),
        )
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"filter": {"@eq": {"DOC_ID": 7}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), source(&json!({})));

    let hits = registry
        .search(&source, "vacation policy", 10, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "rows without an id are skipped: {hits:?}");
    assert_eq!(
        (hits[0].title.as_str(), hits[0].url.as_str()),
        ("HR Handbook", "https://intranet/HR Handbook")
    );
    assert_eq!(hits[1].title, "Benefits");

    let document = registry
        .fetch(&source, &hits[0].upstream_id, DEADLINE)
        .await
        .unwrap();
    assert_eq!(document.text, "Text of HR Handbook.");
    assert_eq!(
        document.metadata["REGION"], "US",
        "the remaining columns are metadata"
    );
    assert!(document.metadata.get("CHUNK").is_none());
    assert_eq!(
        registry
            .fetch(&source, &hits[1].upstream_id, DEADLINE)
            .await
            .unwrap_err(),
        SourceError::NotFound,
        "a numeric id is filtered as a number; gone rows are not found"
    );
    for bad in ["d.!!!", "x.abc", "nothing", "d."] {
        assert_eq!(
            registry.fetch(&source, bad, DEADLINE).await.unwrap_err(),
            SourceError::NotFound,
            "{bad}"
        );
    }
}

fn analyst_reply(content: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"message": {"role": "analyst", "content": content},
        "request_id": "r", "warnings": []}))
}

const SQL: &str = "SELECT region, SUM(revenue) AS total FROM sales GROUP BY region";

#[tokio::test]
async fn analyst_answers_run_their_sql_through_the_statements_api() {
    let fake = MockServer::start().await;
    pat_call("POST", SERVICE)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": [row(&json!("d1"), "Sales memo")]})),
        )
        .mount(&fake)
        .await;
    pat_call("POST", ANALYST)
        .and(body_partial_json(json!({"semantic_model_file": "@DOCS.PUBLIC.MODELS/sales.yaml", "stream": false,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Revenue by region?"}]}]})))
        .respond_with(analyst_reply(&json!([
            {"type": "text", "text": "This is our interpretation of your question:\n\nTotal revenue by region"},
            {"type": "sql", "statement": SQL, "confidence": {"verified_query_used": null}}])))
        .mount(&fake)
        .await;
    let handle = "01b4f9d4-3202-9f46-0000-0001cf56d011";
    pat_call("POST", STATEMENTS)
        .and(body_partial_json(json!({"statement": SQL, "database": "DOCS", "schema": "PUBLIC", "warehouse": "WH", "role": "ANALYST",
            "parameters": {"MULTI_STATEMENT_COUNT": "1"}})))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"code": "333334",
            "message": "Asynchronous execution in progress.", "statementHandle": handle,
            "statementStatusUrl": format!("/api/v2/statements/{handle}")})))
        .expect(1)
        .mount(&fake)
        .await;
    pat_call("GET", &format!("{STATEMENTS}/{handle}"))
        .and(query_param("partition", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [["APAC", null]]})))
        .mount(&fake)
        .await;
    pat_call("GET", &format!("{STATEMENTS}/{handle}"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"code": "333334", "statementHandle": handle})),
        )
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    pat_call("GET", &format!("{STATEMENTS}/{handle}"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resultSetMetaData": {"numRows": 3, "format": "jsonv2",
                "rowType": [{"name": "REGION", "type": "text"}, {"name": "TOTAL", "type": "fixed"}],
                "partitionInfo": [{"rowCount": 2}, {"rowCount": 1}]},
            "data": [["EMEA", "42"], ["AMER|US", "7"]], "code": "090001", "statementHandle": handle,
            "message": "Statement executed successfully."})))
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), analyst_source());

    let hits = registry
        .search(&source, "Revenue by region?", 10, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].title, "This is our interpretation of your question:",
        "the answer comes first"
    );
    assert!(hits[0].upstream_id.starts_with("a."));
    assert!(
        !hits[0].upstream_id.contains("SELECT"),
        "the SQL is sealed, not readable"
    );

    let document = registry
        .fetch(&source, &hits[0].upstream_id, DEADLINE)
        .await
        .unwrap();
    assert!(
        document.text.starts_with("Question: Revenue by region?"),
        "{}",
        document.text
    );
    assert!(document.text.contains(SQL));
    assert!(
        document.text.contains("| REGION | TOTAL |"),
        "{}",
        document.text
    );
    assert!(document.text.contains("| EMEA | 42 |"));
    assert!(
        document.text.contains("| AMER\\|US | 7 |"),
        "pipes are escaped"
    );
    assert!(
        document.text.contains("| APAC | NULL |"),
        "the second partition is read"
    );
    assert_eq!(document.metadata["statement_handle"], handle);
    assert_eq!(document.metadata["rows"], 3);
    fake.verify().await;

    // The sealed answer is bound to its source and cannot be altered.
    let other = analyst_source();
    assert_eq!(
        registry
            .fetch(&other, &hits[0].upstream_id, DEADLINE)
            .await
            .unwrap_err(),
        SourceError::NotFound
    );
    // One character changed in the middle of the sealed part.
    let id = &hits[0].upstream_id;
    let middle = id.len() - 20;
    let flipped = if &id[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{flipped}{}", &id[..middle], &id[middle + 1..]);
    assert_eq!(
        registry
            .fetch(&source, &forged, DEADLINE)
            .await
            .unwrap_err(),
        SourceError::NotFound
    );
}

#[tokio::test]
async fn suggestions_become_the_text_and_non_queries_are_not_run() {
    let fake = MockServer::start().await;
    pat_call("POST", SERVICE)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&fake)
        .await;
    pat_call("POST", ANALYST)
        .and(body_partial_json(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "revenue?"}]}]})))
        .respond_with(analyst_reply(&json!([
            {"type": "text", "text": "Your question is ambiguous."},
            {"type": "suggestions", "suggestions": ["Revenue by region in 2024?", "Revenue by month?"]}])))
        .mount(&fake)
        .await;
    pat_call("POST", ANALYST)
        .and(body_partial_json(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "drop it"}]}]})))
        .respond_with(analyst_reply(&json!([{"type": "text", "text": "Sure"}, {"type": "sql", "statement": "DROP TABLE sales"}])))
        .mount(&fake)
        .await;
    pat_call("POST", ANALYST)
        .and(body_partial_json(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "select and drop"}]}]})))
        .respond_with(analyst_reply(&json!([{"type": "text", "text": "Sure"}, {"type": "sql", "statement": "SELECT 1; DROP TABLE t"}])))
        .mount(&fake)
        .await;
    pat_call("POST", STATEMENTS)
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), analyst_source());

    let hits = registry
        .search(&source, "revenue?", 10, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    let document = registry
        .fetch(&source, &hits[0].upstream_id, DEADLINE)
        .await
        .unwrap();
    assert!(
        document
            .text
            .contains("- Revenue by region in 2024?\n- Revenue by month?"),
        "{}",
        document.text
    );

    let hits = registry
        .search(&source, "drop it", 10, DEADLINE)
        .await
        .unwrap();
    let err = fetch_error(&registry, &source, &hits[0].upstream_id, DEADLINE).await;
    assert!(err.contains("not a query"), "{err}");

    // A query followed by another statement: the first word is a query, the text is not.
    let hits = registry
        .search(&source, "select and drop", 10, DEADLINE)
        .await
        .unwrap();
    let err = fetch_error(&registry, &source, &hits[0].upstream_id, DEADLINE).await;
    assert_eq!(
        err,
        "Cortex Analyst proposed more than one statement; not run"
    );
    // Nothing reached the statements endpoint (its mock expects no call).
    fake.verify().await;
}

#[tokio::test]
async fn throttling_errors_slowness_and_garbage_become_short_reasons() {
    let fake = MockServer::start().await;
    // Snowflake's 429 has no Retry-After: exponential backoff, then success.
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "busy"})))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"code": "390505", "message": "Too many requests."})),
        )
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "busy"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"results": [row(&json!("1"), "a")]})),
        )
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "down"})))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"message": "unavailable", "code": "390189"})),
        )
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "refused"})))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code": "390303", "message": format!("Invalid OAuth access token. {PAT}")}),
        ))
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "slow"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": []}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&fake)
        .await;
    pat_call("POST", SERVICE)
        .and(body_partial_json(json!({"query": "garbage"})))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"results\": [{"))
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), source(&json!({})));

    assert_eq!(
        registry
            .search(&source, "busy", 5, DEADLINE)
            .await
            .unwrap()
            .len(),
        1
    );
    let started = std::time::Instant::now();
    let err = search_error(&registry, &source, "down", 5, DEADLINE).await;
    assert_eq!(err, "Cortex Search failed: HTTP 503 (390189)");
    assert!(
        started.elapsed() < DEADLINE,
        "retries stop before the deadline"
    );
    let err = search_error(&registry, &source, "refused", 5, DEADLINE).await;
    assert_eq!(err, "Cortex Search refused: HTTP 401 (390303)");
    let err = search_error(&registry, &source, "slow", 5, Duration::from_millis(300)).await;
    assert!(err.contains("timed out"), "{err}");
    let err = search_error(&registry, &source, "garbage", 5, DEADLINE).await;
    assert_eq!(err, "upstream answered malformed JSON");

    // An account host outside the allowed suffixes is refused before any request.
    let foreign = self::source(&json!({"account_url": "https://evil.example"}));
    let before = fake.received_requests().await.unwrap().len();
    let err = search_error(&registry, &foreign, "q", 5, DEADLINE).await;
    assert!(err.starts_with("account_url host must end with"), "{err}");
    assert_eq!(fake.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn a_failing_statement_is_a_short_reason() {
    let fake = MockServer::start().await;
    pat_call("POST", SERVICE)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&fake)
        .await;
    pat_call("POST", ANALYST)
        .respond_with(analyst_reply(
            &json!([{"type": "text", "text": "Revenue"}, {"type": "sql", "statement": SQL}]),
        ))
        .mount(&fake)
        .await;
    pat_call("POST", STATEMENTS)
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"code": "000904",
            "message": "SQL compilation error: invalid identifier 'REVENUE'", "sqlState": "42000"})))
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), analyst_source());
    let hits = registry
        .search(&source, "revenue", 10, DEADLINE)
        .await
        .unwrap();
    let err = fetch_error(&registry, &source, &hits[0].upstream_id, DEADLINE).await;
    assert_eq!(err, "Snowflake statement failed: HTTP 422 (000904)");
}
