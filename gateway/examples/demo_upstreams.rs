//! DEMO ONLY, never for production: local stand-ins for Microsoft Graph and Box with a small
//! sample mailbox and folder, so `./dev up` shows real search results and fetched documents
//! before anyone owns vendor credentials. `./dev up` starts it and points `GRAPH_BASE_URL`,
//! `MICROSOFT_LOGIN_URL`, `BOX_API_URL` and `BOX_TOKEN_URL` at it (`./dev up --no-demo` does
//! not).
//!
//! It answers in the vendors' wire shapes (`../shared/upstream-apis.md`): client-credentials
//! tokens for any credentials, bearer checks on every data call, Graph's `$search` over
//! `/users/{mailbox}/messages`, Box's `/search`, file info with an `extracted_text`
//! representation and its content. Every mailbox and every Box account sees the same sample
//! data, and every item says it is a demo.
//!
//! ```text
//! cargo run -p gateway --example demo_upstreams -- 127.0.0.1:8090
//! ```

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

/// The bearer token every demo token endpoint issues and every data call requires.
const TOKEN: &str = "demo-access-token";

/// One sample message.
struct Message {
    id: &'static str,
    subject: &'static str,
    from_name: &'static str,
    from_address: &'static str,
    received: &'static str,
    body: &'static str,
}

const MAILBOX: &[Message] = &[
    Message {
        id: "AAMkADemo001=",
        subject: "[Demo] Q3 budget review",
        from_name: "Adele Vance",
        from_address: "adele@contoso.example",
        received: "2026-09-09T09:15:00Z",
        body: "Hi team,\n\nThe Q3 budget review is on Thursday. Marketing is 4% over budget because of \
             the trade show; engineering is 6% under. Please bring your revised forecasts.\n\nAdele",
    },
    Message {
        id: "AAMkADemo002=",
        subject: "[Demo] Travel policy update",
        from_name: "Megan Bowen",
        from_address: "megan@contoso.example",
        received: "2026-09-12T14:02:00Z",
        body: "From October, book flights through the travel portal at least 14 days ahead. Economy \
             class for flights under 6 hours. Hotel budget caps are listed per city.",
    },
    Message {
        id: "AAMkADemo003=",
        subject: "[Demo] Customer onboarding checklist",
        from_name: "Alex Wilber",
        from_address: "alex@contoso.example",
        received: "2026-10-01T08:30:00Z",
        body: "New customers get a kickoff call within 5 days, a shared Box folder, and a named \
             support contact. The checklist template is in the Onboarding folder.",
    },
    Message {
        id: "AAMkADemo004=",
        subject: "[Demo] Office move to Building 4",
        from_name: "Lynne Robbins",
        from_address: "lynne@contoso.example",
        received: "2026-10-20T16:45:00Z",
        body: "We move to Building 4 on November 14. Pack your desk by the 13th; IT will move \
             monitors and docks. Parking passes for the new garage are at reception.",
    },
];

/// One sample file.
struct File {
    id: &'static str,
    name: &'static str,
    folder: &'static str,
    description: &'static str,
    text: &'static str,
}

const FOLDER: &[File] = &[
    File {
        id: "900000000001",
        name: "Demo - FY27 budget plan.txt",
        folder: "Finance",
        description: "Annual budget plan (demo)",
        text: "FY27 budget plan (demo data).\nRevenue target: 12.4M. Operating budget: 9.1M, of which \
             engineering 4.2M, marketing 2.3M, sales 1.8M, G&A 0.8M. Headcount grows from 48 to 57.",
    },
    File {
        id: "900000000002",
        name: "Demo - Security handbook.md",
        folder: "Policies",
        description: "Security rules for staff (demo)",
        text: "# Security handbook (demo)\nUse the password manager. Turn on multi-factor \
             authentication. Report phishing to security@contoso.example within one hour.",
    },
    File {
        id: "900000000003",
        name: "Demo - Onboarding checklist.txt",
        folder: "Onboarding",
        description: "Steps for a new customer (demo)",
        text: "Onboarding checklist (demo).\n1. Kickoff call within 5 days.\n2. Create the shared \
             folder.\n3. Name a support contact.\n4. Review after 30 days.",
    },
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("demo upstreams (sample Graph mailbox and Box folder) on http://{addr}");
    axum::serve(listener, app()).await?;
    Ok(())
}

fn app() -> Router {
    Router::new()
        .route("/login/{tenant}/oauth2/v2.0/token", post(graph_token))
        .route("/graph/v1.0/users/{mailbox}/messages", get(graph_search))
        .route(
            "/graph/v1.0/users/{mailbox}/messages/{id}",
            get(graph_message),
        )
        .route("/box/oauth2/token", post(box_token))
        .route("/box/2.0/search", get(box_search))
        .route("/box/2.0/files/{id}", get(box_file))
        .route(
            "/box/2.0/internal_files/{id}/versions/1/representations/extracted_text/content/",
            get(box_text),
        )
}

/// The words of a query, lower-cased, quotes and escapes dropped.
fn words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether any word of the query occurs in any of `texts`.
fn matches(query: &[String], texts: &[&str]) -> bool {
    let haystack = texts.join(" ").to_lowercase();
    query.iter().any(|w| haystack.contains(w.as_str()))
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(&format!("bearer {TOKEN}")))
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

fn graph_unauthorized() -> Response {
    let message = "Access token is empty.";
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
}

async fn graph_token() -> Json<Value> {
    Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": TOKEN}),
    )
}

fn graph_message_json(message: &Message, mailbox: &str, with_body: bool) -> Value {
    let Message {
        id,
        subject,
        body,
        received,
        ..
    } = *message;
    let from = json!({"name": message.from_name, "address": message.from_address});
    let mut value = json!({
        "id": id, "subject": subject, "bodyPreview": body.chars().take(80).collect::<String>(),
        "from": {"emailAddress": from},
        "toRecipients": [{"emailAddress": {"name": "Demo mailbox", "address": mailbox}}],
        "receivedDateTime": received, "hasAttachments": false,
        "conversationId": format!("conv-{id}"),
        "webLink": format!("https://outlook.office365.com/owa/?ItemID={id}&demo=1"),
    });
    if with_body {
        value["body"] = json!({"contentType": "text", "content": body});
        value["ccRecipients"] = json!([]);
        value["sentDateTime"] = json!(received);
    }
    value
}

async fn graph_search(
    headers: HeaderMap,
    Path(mailbox): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return graph_unauthorized();
    }
    let query = words(params.get("$search").map_or("", String::as_str));
    let value: Vec<Value> = MAILBOX
        .iter()
        .filter(|m| matches(&query, &[m.subject, m.from_name, m.body]))
        .map(|m| graph_message_json(m, &mailbox, false))
        .collect();
    Json(json!({"@odata.context": "demo", "value": value})).into_response()
}

async fn graph_message(
    headers: HeaderMap,
    Path((mailbox, id)): Path<(String, String)>,
) -> Response {
    if !authorized(&headers) {
        return graph_unauthorized();
    }
    match MAILBOX.iter().find(|m| m.id == id) {
        Some(message) => Json(graph_message_json(message, &mailbox, true)).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
    }
}

fn box_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"type": "error", "status": status.as_u16(), "code": code,
                      "message": message, "request_id": "demo"});
    (status, Json(body)).into_response()
}

fn box_unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="Service", error="invalid_token""#,
        )],
    )
        .into_response()
}

async fn box_token() -> Json<Value> {
    Json(
        json!({"access_token": TOKEN, "expires_in": 3600, "restricted_to": [],
                "token_type": "bearer"}),
    )
}

fn path_collection(folder: &str) -> Value {
    json!({"total_count": 2, "entries": [
        {"type": "folder", "id": "0", "name": "All Files"},
        {"type": "folder", "id": "800000000001", "name": folder}]})
}

async fn box_search(headers: HeaderMap, Query(params): Query<HashMap<String, String>>) -> Response {
    if !authorized(&headers) {
        return box_unauthorized();
    }
    let query = words(params.get("query").map_or("", String::as_str));
    let entries: Vec<Value> = FOLDER
        .iter()
        .filter(|f| matches(&query, &[f.name, f.description, f.text]))
        .map(|f| {
            json!({"type": "file", "id": f.id, "etag": "1", "name": f.name,
                   "description": f.description, "size": f.text.len(),
                   "modified_at": "2026-10-01T10:00:00-07:00",
                   "path_collection": path_collection(f.folder), "shared_link": null})
        })
        .collect();
    Json(
        json!({"type": "search_results_items", "total_count": entries.len(),
                "limit": 30, "offset": 0, "entries": entries}),
    )
    .into_response()
}

/// File info with a ready `extracted_text` representation served by this process.
async fn box_file(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&headers) {
        return box_unauthorized();
    }
    let Some(file) = FOLDER.iter().find(|f| f.id == id) else {
        return box_error(StatusCode::NOT_FOUND, "not_found", "Not Found");
    };
    let origin = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8090");
    let base = format!("http://{origin}/box/2.0/internal_files/{id}/versions/1/representations");
    Json(json!({
        "type": "file", "id": file.id, "name": file.name, "description": file.description,
        "size": file.text.len(), "modified_at": "2026-10-01T10:00:00-07:00",
        "path_collection": path_collection(file.folder),
        "representations": {"entries": [{
            "representation": "extracted_text",
            "info": {"url": format!("{base}/extracted_text")},
            "status": {"state": "success"},
            "content": {"url_template": format!("{base}/extracted_text/content/{{+asset_path}}")},
        }]},
    }))
    .into_response()
}

async fn box_text(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&headers) {
        return box_unauthorized();
    }
    match FOLDER.iter().find(|f| f.id == id) {
        Some(file) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            file.text,
        )
            .into_response(),
        None => box_error(StatusCode::NOT_FOUND, "not_found", "Not Found"),
    }
}
