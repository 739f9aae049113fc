//! Local fakes of Microsoft Graph, Box and Snowflake answering one document each in their wire
//! shapes, and the source bodies that point at them, for the end-to-end tests of all three
//! production handlers together. The wire shapes are those of `upstream-apis.md`.

use crate::Settings;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, path_regex},
};

pub const GRAPH_SECRET: &str = "graph-client-secret-e2e";
pub const BOX_SECRET: &str = "box-client-secret-e2e";
pub const PAT: &str = "snowflake-pat-e2e";
pub const GRAPH_TOKEN: &str = "graph-access-token-e2e";
pub const BOX_TOKEN: &str = "box-access-token-e2e";

/// Every credential and token the fakes know: none may leave the gateway.
pub const SECRETS: [&str; 5] = [GRAPH_SECRET, BOX_SECRET, PAT, GRAPH_TOKEN, BOX_TOKEN];

const TENANT: &str = "contoso.onmicrosoft.com";
const MAILBOX: &str = "ada@contoso.com";
const SNOWFLAKE_SERVICE: &str =
    "/api/v2/databases/DOCS/schemas/PUBLIC/cortex-search-services/HR_SEARCH:query";

pub struct Upstreams {
    pub graph: MockServer,
    pub files: MockServer,
    pub snowflake: MockServer,
}

impl Upstreams {
    /// The three fakes, each serving one document about the budget.
    pub async fn start() -> Self {
        let upstreams = Self {
            graph: MockServer::start().await,
            files: MockServer::start().await,
            snowflake: MockServer::start().await,
        };
        upstreams.mount_graph().await;
        upstreams.mount_box().await;
        upstreams.mount_snowflake().await;
        upstreams
    }

    /// Points a gateway's upstream settings at the fakes.
    pub fn point(&self, settings: &mut Settings) {
        settings.upstreams.graph_base_url = format!("{}/v1.0", self.graph.uri());
        settings.upstreams.microsoft_login_url = self.graph.uri();
        settings.upstreams.box_api_url = format!("{}/2.0", self.files.uri());
        settings.upstreams.box_token_url = format!("{}/oauth2/token", self.files.uri());
        settings.upstreams.snowflake_base_url = self.snowflake.uri();
    }

    async fn mount_graph(&self) {
        Mock::given(method("POST"))
            .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "Bearer", "expires_in": 3599, "access_token": GRAPH_TOKEN})))
            .mount(&self.graph)
            .await;
        // A tenant whose app secret was revoked: Entra's answer echoes the secret.
        Mock::given(method("POST"))
            .and(path("/revoked.onmicrosoft.com/oauth2/v2.0/token"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client",
                "error_description": format!("AADSTS7000215: Invalid client secret provided: {GRAPH_SECRET}")})))
            .mount(&self.graph)
            .await;
        let message = json!({"id": "AAMk+ab/C=", "subject": "Budget review",
            "from": {"emailAddress": {"name": "Adele Vance", "address": "adelev@contoso.com"}},
            "toRecipients": [{"emailAddress": {"name": "Ada", "address": MAILBOX}}],
            "receivedDateTime": "2024-09-09T03:15:08Z", "hasAttachments": false, "conversationId": "c1",
            "webLink": "https://outlook.office365.com/owa/?ItemID=1",
            "body": {"contentType": "text", "content": "The mail about the budget."}});
        let messages = format!("/v1.0/users/{MAILBOX}/messages");
        Mock::given(method("GET"))
            .and(path(format!("{messages}/AAMk_ab-C=")))
            .and(header(
                "authorization",
                format!("Bearer {GRAPH_TOKEN}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(message.clone()))
            .mount(&self.graph)
            .await;
        Mock::given(method("GET"))
            .and(path(messages))
            .and(header(
                "authorization",
                format!("Bearer {GRAPH_TOKEN}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [message]})))
            .mount(&self.graph)
            .await;
    }

    async fn mount_box(&self) {
        let bearer = format!("Bearer {BOX_TOKEN}");
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": BOX_TOKEN, "expires_in": 3992, "restricted_to": [], "token_type": "bearer"})))
            .mount(&self.files)
            .await;
        let file = json!({"type": "file", "id": "12345678901", "name": "Budget 2025.xlsx", "size": 1024,
            "modified_at": "2024-05-01T10:53:43-07:00", "description": "",
            "path_collection": {"total_count": 1, "entries": [{"type": "folder", "id": "0", "name": "All Files"}]}});
        Mock::given(method("GET"))
            .and(path("/2.0/search"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"type": "search_results_items",
                "total_count": 1, "limit": 20, "offset": 0, "entries": [file.clone()]})),
            )
            .mount(&self.files)
            .await;
        let rep = format!(
            "{}/2.0/internal_files/12345678901/versions/1/representations/extracted_text",
            self.files.uri()
        );
        let mut with_text = file;
        with_text["representations"] = json!({"entries": [{"representation": "extracted_text",
            "info": {"url": rep}, "status": {"state": "success"},
            "content": {"url_template": format!("{rep}/content/{{+asset_path}}")}}]});
        Mock::given(method("GET"))
            .and(path("/2.0/files/12345678901"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(with_text))
            .mount(&self.files)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("/extracted_text/content/$"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string("Budget sheet: 42 rows."))
            .mount(&self.files)
            .await;
    }

    async fn mount_snowflake(&self) {
        let row = json!({"DOC_ID": "hr-42", "TITLE": "Budget policy", "CHUNK": "Budgets are set yearly.",
            "URL": "https://intranet/hr-42"});
        // The fetch (filtered) answers the same row; a mock for it alone (mounted first, so it
        // wins) proves the filter.
        Mock::given(method("POST"))
            .and(path(SNOWFLAKE_SERVICE))
            .and(body_partial_json(
                json!({"filter": {"@eq": {"DOC_ID": "hr-42"}}}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [row]})))
            .expect(1..)
            .mount(&self.snowflake)
            .await;
        Mock::given(method("POST"))
            .and(path(SNOWFLAKE_SERVICE))
            .and(header("authorization", format!("Bearer {PAT}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"results": [row], "request_id": "r"})),
            )
            .mount(&self.snowflake)
            .await;
    }
}

/// `POST /sources` bodies of one source per type, pointing at the fakes.
pub fn outlook_source(tenant: &str) -> Value {
    json!({"type": "outlook", "source_metadata": {"tenant_id": tenant,
        "client_id": "11111111-2222-3333-4444-555555555555", "client_secret": GRAPH_SECRET, "user_id": MAILBOX}})
}

pub fn box_source() -> Value {
    json!({"type": "box", "source_metadata": {"client_id": "boxclient1",
        "client_secret": BOX_SECRET, "subject_type": "enterprise", "subject_id": "9001"}})
}

pub fn snowflake_source() -> Value {
    json!({"type": "snowflake", "source_metadata": {
        "account_url": "https://acme-prod.snowflakecomputing.com", "pat": PAT,
        "search_service": "DOCS.PUBLIC.HR_SEARCH", "id_column": "DOC_ID", "url_column": "URL"}})
}

pub const GOOD_TENANT: &str = TENANT;
pub const REVOKED_TENANT: &str = "revoked.onmicrosoft.com";
