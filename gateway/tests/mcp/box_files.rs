//! The Box handler against a local Box fake answering in Box's wire shapes
//! (`upstream-apis.md`): client-credentials tokens, search paging, representations (ready,
//! pending, not yet made), the `/content` fallback, errors and throttling.

use std::{sync::Arc, time::Duration};

use crate::handlers::{fetch_error, search_error, served};
use gateway::{
    snapshot::ServedSource,
    sources::{Registry, SourceError, box_files::BoxFiles, upstream},
};
use serde_json::{Value, json};
use shared::model::SourceType;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

const SECRET: &str = "box-client-secret-value";
const DEADLINE: Duration = Duration::from_secs(3);

fn source() -> ServedSource {
    let metadata =
        json!({"client_id": "boxclient1", "subject_type": "enterprise", "subject_id": "9001"});
    served(
        SourceType::Box,
        &metadata,
        &json!({"client_secret": SECRET}),
    )
}

fn registry(fake: &MockServer) -> Registry {
    let http = upstream::client(Duration::from_secs(2));
    let files = BoxFiles::new(
        http,
        &format!("{}/2.0", fake.uri()),
        &format!("{}/oauth2/token", fake.uri()),
    )
    .unwrap();
    Registry {
        box_files: Arc::new(files),
        ..crate::helpers::base_registry()
    }
}

async fn token_endpoint(fake: &MockServer, token: &str, expires_in: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=boxclient1"))
        .and(body_string_contains(format!("client_secret={SECRET}")))
        .and(body_string_contains("box_subject_type=enterprise"))
        .and(body_string_contains("box_subject_id=9001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "expires_in": expires_in, "restricted_to": [], "token_type": "bearer"})))
        .expect(times)
        .mount(fake)
        .await;
}

fn entry(id: &str, name: &str) -> Value {
    json!({"type": "file", "id": id, "etag": "1", "name": name, "description": "Budget", "size": 629_644,
        "modified_at": "2024-05-01T10:53:43-07:00",
        "path_collection": {"total_count": 2, "entries": [
            {"type": "folder", "id": "0", "name": "All Files"}, {"type": "folder", "id": "111", "name": "Plans"}]},
        "shared_link": null})
}

fn results(entries: &[Value], total: usize, offset: usize) -> Value {
    json!({"type": "search_results_items", "total_count": total, "limit": 30, "offset": offset, "entries": entries})
}

/// A file with an `extracted_text` representation in `state`.
fn file(fake: &MockServer, id: &str, name: &str, state: &str) -> Value {
    let mut file = entry(id, name);
    file["representations"] = json!({"entries": [representation(fake, id, state)]});
    file
}

fn representation(fake: &MockServer, id: &str, state: &str) -> Value {
    let base = format!(
        "{}/2.0/internal_files/{id}/versions/345/representations/extracted_text",
        fake.uri()
    );
    json!({"representation": "extracted_text", "properties": {},
        "info": {"url": base}, "status": {"state": state},
        "content": {"url_template": format!("{base}/content/{{+asset_path}}")}})
}

async fn serve_file(fake: &MockServer, file: Value) {
    let id = file["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/2.0/files/{id}")))
        .and(header("x-rep-hints", "[extracted_text]"))
        .and(query_param(
            "fields",
            "name,description,size,modified_at,path_collection,representations",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(file))
        .mount(fake)
        .await;
}

async fn serve_text(fake: &MockServer, id: &str, text: &str) {
    Mock::given(method("GET"))
        .and(path(format!(
            "/2.0/internal_files/{id}/versions/345/representations/extracted_text/content/"
        )))
        .and(header("authorization", "Bearer t"))
        .respond_with(ResponseTemplate::new(200).set_body_string(text))
        .mount(fake)
        .await;
}

#[tokio::test]
async fn search_and_fetch_speak_box() {
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    Mock::given(method("GET"))
        .and(path("/2.0/search"))
        .and(query_param("query", "q3 plan & budget"))
        .and(query_param("type", "file"))
        .and(query_param(
            "fields",
            "name,description,modified_at,size,path_collection,shared_link",
        ))
        .and(header("authorization", "Bearer t"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(
            &[
                entry("12345678901234", "Q3 plan.docx"),
                json!({"type": "folder", "id": "7", "name": "Plans"}),
            ],
            2,
            0,
        )))
        .mount(&fake)
        .await;
    serve_file(
        &fake,
        file(&fake, "12345678901234", "Q3 plan.docx", "success"),
    )
    .await;
    serve_text(&fake, "12345678901234", "The plan is to grow.").await;
    let (registry, source) = (registry(&fake), source());

    let hits = registry
        .search(&source, "q3 plan & budget", 10, DEADLINE)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "folders are not files: {hits:?}");
    assert_eq!(
        hits[0].upstream_id, "12345678901234",
        "ids beyond 32 bits survive"
    );
    assert_eq!(hits[0].title, "Q3 plan.docx");
    assert_eq!(hits[0].url, "https://app.box.com/file/12345678901234");

    let document = registry
        .fetch(&source, "12345678901234", DEADLINE)
        .await
        .unwrap();
    assert_eq!(document.text, "The plan is to grow.");
    assert_eq!(document.title, "Q3 plan.docx");
    assert_eq!(document.metadata["path"], "All Files/Plans");
    assert_eq!(document.metadata["size"], 629_644);
    assert_eq!(
        document.metadata["modified_at"],
        "2024-05-01T10:53:43-07:00"
    );
    assert_eq!(document.metadata["description"], "Budget");

    for bad in ["../files/1", "12a", ""] {
        assert_eq!(
            registry.fetch(&source, bad, DEADLINE).await.unwrap_err(),
            SourceError::NotFound
        );
    }
    Mock::given(method("GET"))
        .and(path("/2.0/files/404"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"type": "error", "status": 404,
            "code": "not_found", "message": "Not Found", "request_id": "abc"})),
        )
        .mount(&fake)
        .await;
    assert_eq!(
        registry.fetch(&source, "404", DEADLINE).await.unwrap_err(),
        SourceError::NotFound
    );
}

#[tokio::test]
async fn search_follows_offsets_until_enough() {
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    Mock::given(method("GET"))
        .and(path("/2.0/search"))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(
            &[entry("1", "a"), entry("2", "b")],
            5,
            0,
        )))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/2.0/search"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(
            &[entry("3", "c"), entry("4", "d")],
            5,
            2,
        )))
        .mount(&fake)
        .await;
    let hits = registry(&fake)
        .search(&source(), "q", 3, DEADLINE)
        .await
        .unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.upstream_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
}

#[tokio::test]
async fn pending_and_missing_representations_are_waited_for() {
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    // `pending`: the info URL says pending once more, then success.
    serve_file(&fake, file(&fake, "10", "slides.pptx", "pending")).await;
    // `none`: the first info GET starts generation.
    serve_file(&fake, file(&fake, "20", "sheet.xlsx", "none")).await;
    for id in ["10", "20"] {
        let info = format!("/2.0/internal_files/{id}/versions/345/representations/extracted_text");
        Mock::given(method("GET"))
            .and(path(info.clone()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(representation(&fake, id, "pending")),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&fake)
            .await;
        Mock::given(method("GET"))
            .and(path(info))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(representation(&fake, id, "success")),
            )
            .mount(&fake)
            .await;
        serve_text(&fake, id, &format!("text of {id}")).await;
    }
    let (registry, source) = (registry(&fake), source());
    assert_eq!(
        registry.fetch(&source, "10", DEADLINE).await.unwrap().text,
        "text of 10"
    );
    assert_eq!(
        registry.fetch(&source, "20", DEADLINE).await.unwrap().text,
        "text of 20"
    );
    fake.verify().await;
}

#[tokio::test]
async fn plain_text_files_fall_back_to_content_and_foreign_links_get_no_token() {
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    // A text file Box made no representation for: `/content` answers 202 (preparing), then a
    // redirect to a pre-signed download URL, fetched without our token.
    serve_file(&fake, entry("30", "notes.md")).await;
    Mock::given(method("GET"))
        .and(path("/2.0/files/30/content"))
        .respond_with(ResponseTemplate::new(202).insert_header("Retry-After", "0.1"))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/2.0/files/30/content"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/d/30/notes.md", fake.uri())),
        )
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/d/30/notes.md"))
        .respond_with(ResponseTemplate::new(200).set_body_string("# Notes"))
        .mount(&fake)
        .await;
    // A representation pointing outside Box is not followed.
    let mut foreign = file(&fake, "40", "x.docx", "success");
    foreign["representations"]["entries"][0]["content"]["url_template"] =
        json!("https://evil.example/steal/{+asset_path}");
    serve_file(&fake, foreign).await;
    // A binary file without a representation.
    serve_file(&fake, entry("50", "photo.jpg")).await;

    let (registry, source) = (registry(&fake), source());
    assert_eq!(
        registry.fetch(&source, "30", DEADLINE).await.unwrap().text,
        "# Notes"
    );
    let requests = fake.received_requests().await.unwrap();
    let download = requests
        .iter()
        .find(|r| r.url.path() == "/d/30/notes.md")
        .unwrap();
    assert!(
        !download.headers.contains_key("authorization"),
        "pre-signed downloads get no token"
    );

    let err = fetch_error(&registry, &source, "40", DEADLINE).await;
    assert!(err.contains("outside Box"), "{err}");
    let err = fetch_error(&registry, &source, "50", DEADLINE).await;
    assert!(err.contains("no text"), "{err}");
}

#[tokio::test]
async fn one_token_for_many_calls_renewed_on_expiry_and_on_401() {
    let fake = MockServer::start().await;
    // Ten concurrent calls share one token.
    token_endpoint(&fake, "t", 3992, 1).await;
    Mock::given(method("GET"))
        .and(path("/2.0/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(results(&[entry("1", "a")], 1, 0))
                .set_delay(Duration::from_millis(20)),
        )
        .mount(&fake)
        .await;
    let (registry_a, source_a) = (registry(&fake), source());
    let calls = (0..10).map(|_| registry_a.search(&source_a, "q", 5, DEADLINE));
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().len(), 1);
    }
    fake.verify().await;

    // A 2-second token is renewed once it is past half its life.
    let short = MockServer::start().await;
    token_endpoint(&short, "t", 2, 2).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(&[entry("1", "a")], 1, 0)))
        .mount(&short)
        .await;
    let (registry_b, source_b) = (registry(&short), source());
    registry_b
        .search(&source_b, "q", 5, DEADLINE)
        .await
        .unwrap();
    registry_b
        .search(&source_b, "q", 5, DEADLINE)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    registry_b
        .search(&source_b, "q", 5, DEADLINE)
        .await
        .unwrap();
    short.verify().await;

    // A 401 (empty body, as Box sends) drops the token and retries once with a new one.
    let revoked = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "old", "expires_in": 3992})),
        )
        .up_to_n_times(1)
        .mount(&revoked)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "new", "expires_in": 3992})),
        )
        .mount(&revoked)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer old"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            "Bearer realm=\"Service\", error=\"invalid_token\"",
        ))
        .mount(&revoked)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(&[entry("1", "a")], 1, 0)))
        .mount(&revoked)
        .await;
    assert_eq!(
        registry(&revoked)
            .search(&source(), "q", 5, DEADLINE)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn throttling_errors_slowness_and_garbage_become_short_reasons() {
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    Mock::given(method("GET"))
        .and(query_param("query", "busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0.2")
            .set_body_json(json!({"type": "error", "status": 429, "code": "rate_limit_exceeded", "message": "Request rate limit exceeded"})))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "busy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(&[entry("1", "a")], 1, 0)))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "down"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"type": "error", "status": 500,
            "code": "internal_server_error", "message": "Internal Server Error", "request_id": "r"})))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(results(&[], 0, 0))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"entries\": [oops"))
        .mount(&fake)
        .await;
    let (registry, source) = (registry(&fake), source());

    let started = std::time::Instant::now();
    assert_eq!(
        registry
            .search(&source, "busy", 5, DEADLINE)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited as asked"
    );

    let started = std::time::Instant::now();
    let err = search_error(&registry, &source, "down", 5, DEADLINE).await;
    assert_eq!(err, "Box request failed: HTTP 500 (internal_server_error)");
    assert!(started.elapsed() < DEADLINE);

    let err = search_error(&registry, &source, "slow", 5, Duration::from_millis(300)).await;
    assert!(err.contains("timed out"), "{err}");
    let err = search_error(&registry, &source, "garbage", 5, DEADLINE).await;
    assert_eq!(err, "upstream answered malformed JSON");

    let refused = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant",
            "error_description": format!("Grant credentials are invalid: {SECRET}")})),
        )
        .mount(&refused)
        .await;
    let err = search_error(&self::registry(&refused), &source, "q", 5, DEADLINE).await;
    assert_eq!(err, "authentication failed (invalid_grant)");
}

#[tokio::test]
async fn a_download_that_is_never_ready_cannot_hold_a_fetch_past_its_deadline() {
    // `/content` answers 202 forever and asks for a day's wait each time: the waits are capped
    // and the fetch ends with its deadline.
    let fake = MockServer::start().await;
    token_endpoint(&fake, "t", 3992, 1).await;
    serve_file(&fake, entry("60", "never.txt")).await;
    Mock::given(method("GET"))
        .and(path("/2.0/files/60/content"))
        .respond_with(ResponseTemplate::new(202).insert_header("Retry-After", "86400"))
        .mount(&fake)
        .await;
    let deadline = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = registry(&fake)
        .fetch(&source(), "60", deadline)
        .await
        .unwrap_err();
    assert_eq!(err, SourceError::TimedOut(deadline));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "held for {:?}",
        started.elapsed()
    );
}
