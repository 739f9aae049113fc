//! The OpenAPI document is valid OpenAPI 3 and lists every route the router serves.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::spawn_app;

/// Every implemented route: `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /api/v1/checks",
    "GET /api/v1/me",
    "DELETE /api/v1/me",
    "PUT /api/v1/me/password",
    "GET /api/v1/me/grants",
    "GET /api/v1/organizations",
    "POST /api/v1/organizations",
    "GET /api/v1/organizations/{id}",
    "PUT /api/v1/organizations/{id}",
    "DELETE /api/v1/organizations/{id}",
    "GET /api/v1/organizations/{id}/members",
    "PUT /api/v1/organizations/{id}/members/{user_id}",
    "DELETE /api/v1/organizations/{id}/members/{user_id}",
    "GET /api/v1/organizations/{id}/invitations",
    "POST /api/v1/organizations/{id}/invitations",
    "DELETE /api/v1/organizations/{id}/invitations/{invitation_id}",
    "GET /api/v1/invitations/{token}",
    "POST /api/v1/invitations/{token}/accept",
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
    "GET /api/v1/mcp-servers/{id}/calls/series",
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

/// The viewer runs only its own files from this origin (no inline script), cannot be framed,
/// and never asks swagger.io's validator about the document.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_docs_viewer_carries_a_strict_policy_and_cannot_be_framed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let inline = regex::Regex::new(r"<script>|<script [^>]*>[^<\s]").unwrap();
    for path in [
        "/docs/",
        "/docs/swagger-initializer.js",
        "/docs/swagger-ui.css",
    ] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self';",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
        let body = response.text().await.unwrap();
        if path == "/docs/" {
            assert!(!inline.is_match(&body), "no inline script: {body}");
        } else if path.ends_with(".js") {
            assert!(body.contains(r#""validatorUrl": "none""#), "{body}");
        }
    }
}

/// The document states the rules the handlers apply, so a client (or a fuzzer) that follows
/// it is not refused: ranges of `limit`/`offset`, lengths and patterns of names and passwords,
/// the required `domain`, and one `source_metadata` schema per source type.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_openapi_document_states_the_rules_the_server_applies(pool: PgPool) {
    let app = spawn_app(pool).await;
    let doc: Value = app
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has {name}"))
            .clone()
    };
    for path in [
        "/api/v1/sources",
        "/api/v1/mcp-servers",
        "/api/v1/users",
        "/api/v1/activity",
        "/api/v1/mcp-servers/{id}/calls",
    ] {
        let limit = param(path, "limit");
        assert_eq!(limit["schema"]["minimum"], 1, "{path}");
        assert_eq!(limit["schema"]["maximum"], 200, "{path}");
        assert_eq!(param(path, "offset")["schema"]["minimum"], 0, "{path}");
    }
    let tool = param("/api/v1/mcp-servers/{id}/calls", "tool");
    assert_eq!(
        tool["schema"]["enum"],
        serde_json::json!(["search", "fetch"])
    );
    let domain = param("/api/v1/tls/ask", "domain");
    assert_eq!(domain["required"], true);
    assert_eq!(domain["schema"]["minLength"], 1);
    assert_eq!(domain["schema"]["maxLength"], 253);
    let summary_from = param("/api/v1/mcp-servers/{id}/calls/summary", "from");
    assert!(
        summary_from["description"]
            .as_str()
            .unwrap()
            .contains("93 days")
    );

    let schemas = &doc["components"]["schemas"];
    let password = &schemas["Credentials"]["properties"]["password"];
    assert_eq!(password["minLength"], 8);
    assert_eq!(password["maxLength"], 72);
    assert_eq!(
        schemas["Credentials"]["properties"]["email"]["format"],
        "email"
    );
    assert_eq!(
        schemas["PasswordChange"]["properties"]["new_password"]["maxLength"],
        72
    );
    let key = &schemas["KeyInput"];
    assert_eq!(key["additionalProperties"], false);
    assert!(key["required"].as_array().unwrap().contains(&"name".into()));
    assert_eq!(key["properties"]["name"]["maxLength"], 100);
    assert!(
        key["properties"]["expires_at"]["description"]
            .as_str()
            .unwrap()
            .contains("future")
    );
    let new_server = &schemas["NewServer"];
    assert!(
        new_server["required"]
            .as_array()
            .unwrap()
            .contains(&"name".into())
    );
    for name in [
        &new_server["properties"]["name"],
        &key["properties"]["name"],
    ] {
        let pattern = regex::Regex::new(name["pattern"].as_str().unwrap()).unwrap();
        assert!(pattern.is_match("Sales research"));
        assert!(
            !pattern.is_match("a\u{7}b"),
            "control characters are refused"
        );
        assert!(!pattern.is_match("   "), "a blank name is refused");
    }

    // Sources: one schema per type, chosen by `type`.
    let create = &doc["paths"]["/api/v1/sources"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    let input = &schemas[create.as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(input["oneOf"].as_array().unwrap().len(), 5);
    assert_eq!(input["discriminator"]["propertyName"], "type");
    for (name, required) in [
        (
            "OutlookSource",
            vec!["tenant_id", "client_id", "client_secret", "user_id"],
        ),
        (
            "BoxSource",
            vec!["client_id", "client_secret", "subject_type", "subject_id"],
        ),
        (
            "SnowflakeSource",
            vec!["account_url", "pat", "search_service"],
        ),
        (
            "PostgresSource",
            vec!["host", "database", "user", "password", "tables"],
        ),
        ("McpSource", vec!["url"]),
    ] {
        let schema = &schemas[name];
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let metadata = &schema["properties"]["source_metadata"];
        assert_eq!(metadata["additionalProperties"], false, "{name}");
        let listed: Vec<&str> = metadata["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, required, "{name}");
    }
    let subject =
        &schemas["BoxSource"]["properties"]["source_metadata"]["properties"]["subject_id"];
    let digits = regex::Regex::new(subject["pattern"].as_str().unwrap()).unwrap();
    assert!(digits.is_match("42") && !digits.is_match("4x2"));
    // The structured `postgres` fields keep their whole schema through the document.
    let postgres = &schemas["PostgresSource"]["properties"]["source_metadata"]["properties"];
    assert_eq!(postgres["port"]["maximum"], 65535);
    assert_eq!(
        postgres["port"]["type"],
        serde_json::json!(["integer", "string", "null"])
    );
    let tables = &postgres["tables"];
    assert_eq!(
        (tables["minItems"].as_u64(), tables["maxItems"].as_u64()),
        (Some(1), Some(20))
    );
    let table = &tables["items"];
    assert_eq!(table["additionalProperties"], false);
    assert_eq!(table["properties"]["text_columns"]["maxItems"], 16);
    let qualified =
        regex::Regex::new(table["properties"]["table"]["pattern"].as_str().unwrap()).unwrap();
    assert!(qualified.is_match("public.docs") && !qualified.is_match("docs; drop"));
    // A remote MCP server's URL: https on a public name only (the default MCP_ALLOWED_HOSTS).
    let url = &schemas["McpSource"]["properties"]["source_metadata"]["properties"]["url"];
    let url = regex::Regex::new(url["pattern"].as_str().unwrap()).unwrap();
    assert!(url.is_match("https://mcp.example.com/mcp?team=a"));
    for refused in [
        "http://mcp.example.com/mcp",
        "https://127.0.0.1/mcp",
        "https://localhost/mcp",
        "https://u:p@mcp.example.com/",
    ] {
        assert!(!url.is_match(refused), "{refused}");
    }
}
