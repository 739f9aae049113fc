//! The OpenAPI document is valid OpenAPI 3 and lists every route the router serves.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::spawn_app;

/// Every implemented route: `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /api/v1/checks",
    "GET /api/v1/me",
    "DELETE /api/v1/me",
    "PUT /api/v1/me/password",
    "POST /api/v1/signin",
    "POST /api/v1/signout",
    "POST /api/v1/signup",
    "GET /api/v1/users",
    "GET /api/v1/admin/pool",
    "DELETE /api/v1/admin/mcp-servers/{id}",
    "DELETE /api/v1/admin/users/{id}/endpoint-reservations",
    "GET /api/v1/sources",
    "POST /api/v1/sources",
    "GET /api/v1/sources/{id}",
    "PUT /api/v1/sources/{id}",
    "DELETE /api/v1/sources/{id}",
    "GET /api/v1/mcp-servers",
    "POST /api/v1/mcp-servers",
    "GET /api/v1/mcp-servers/{id}",
    "PUT /api/v1/mcp-servers/{id}",
    "DELETE /api/v1/mcp-servers/{id}",
    "POST /api/v1/mcp-servers/{id}/restore",
    "PUT /api/v1/mcp-servers/{id}/sources/{source_id}",
    "DELETE /api/v1/mcp-servers/{id}/sources/{source_id}",
    "GET /api/v1/mcp-servers/{id}/keys",
    "POST /api/v1/mcp-servers/{id}/keys",
    "DELETE /api/v1/mcp-servers/{id}/keys/{key_id}",
    "GET /api/v1/mcp-servers/{id}/grants",
    "DELETE /api/v1/mcp-servers/{id}/grants/{grant_id}",
    "GET /api/v1/mcp-servers/{id}/calls",
    "GET /api/v1/mcp-servers/{id}/calls/summary",
    "GET /api/v1/activity",
    "GET /api/v1/tls/ask",
    "GET /healthz",
    "GET /readyz",
];

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_openapi_document_is_valid_and_complete(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();

    let spec = oas3::from_json(&text).expect("parses as an OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3."), "{}", spec.openapi);

    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            listed.insert(format!("{} {path}", method.to_uppercase()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents its responses"
            );
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status} uses the shared error body"
                    );
                }
            }
        }
    }
    let expected: BTreeSet<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(listed, expected);

    // Every listed route is really served (none answers route_not_found or 405).
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{source_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{key_id}", &uuid::Uuid::new_v4().to_string());
        let response = app
            .request(method.parse().unwrap(), &path)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(
            body["error"]["code"] != "route_not_found" && status != StatusCode::METHOD_NOT_ALLOWED,
            "{route} answered {status}"
        );
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_interactive_docs_are_served(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.request(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
}
