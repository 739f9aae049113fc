//! OAuth end to end: rmcp's OAuth client discovers the authorization server from the
//! gateway's 401, registers (or uses a client ID metadata document), sends the user through
//! sign-in and consent (driven over HTTP here; a real browser in the control plane's browser
//! test), exchanges the code with PKCE, calls `search` and `fetch`, refreshes, and loses
//! access within a second of a revocation.

use std::{sync::Arc, time::Duration};

use axum::{Json, Router, routing::get};
use reqwest::StatusCode;
use rmcp::{
    ServiceExt,
    transport::{
        AuthClient, AuthorizationManager, StreamableHttpClientTransport,
        auth::{AuthorizationRequest, OAuthState},
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    helpers::{Stack, call, eventually, spawn_oauth_stack},
    oauth_flow::{CALLBACK, EMAIL, challenge, consent, owner_with_server, status_with},
};

/// Runs the whole authorization with rmcp's client; returns the authorized manager.
async fn authorize(
    stack: &Stack,
    mcp_url: &str,
    request: AuthorizationRequest,
) -> AuthorizationManager {
    authorize_as(stack, mcp_url, request, EMAIL).await
}

/// rmcp's client up to the authorization URL it sends its user's browser to.
pub async fn start(mcp_url: &str, request: AuthorizationRequest) -> (OAuthState, String) {
    let mut oauth = OAuthState::new(mcp_url, None).await.expect("OAuth client");
    oauth
        .start_authorization(request.with_challenge(challenge(mcp_url).await))
        .await
        .expect("discovery and registration");
    let url = oauth.get_authorization_url().await.unwrap();
    (oauth, url)
}

/// The whole authorization with rmcp's client, approved by the person with `email`.
pub async fn authorize_as(
    stack: &Stack,
    mcp_url: &str,
    request: AuthorizationRequest,
    email: &str,
) -> AuthorizationManager {
    let (mut oauth, url) = start(mcp_url, request).await;
    let callback = consent(&stack.origin, &url, email).await;
    assert!(callback.starts_with(CALLBACK), "{callback}");
    assert!(
        callback.contains(&format!("iss={}", urlencode(&stack.origin))),
        "{callback}"
    );
    oauth
        .handle_callback_url(&callback)
        .await
        .expect("code exchange");
    oauth.into_authorization_manager().unwrap()
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The refresh token of stored credentials (the token response serialises as RFC 6749 says).
fn refresh_token_of(credentials: Option<impl serde::Serialize>) -> String {
    let value = serde_json::to_value(credentials.expect("credentials")).unwrap();
    value["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

/// Waits until the gateway accepts `token`: a new grant (and, on first use, the signing key)
/// reaches it through a change notification, which a busy machine may deliver after the
/// client's first call.
pub async fn known_to_the_gateway(mcp_url: &str, token: &str) {
    eventually(
        Duration::from_secs(2),
        "the gateway knows the grant",
        || async { status_with(mcp_url, token).await != StatusCode::UNAUTHORIZED },
    )
    .await;
}

/// An MCP client that sends the manager's access token.
pub async fn mcp_client(
    mcp_url: &str,
    client: AuthClient<reqwest::Client>,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned()),
    );
    ().serve(transport)
        .await
        .expect("MCP client connects with its token")
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_oauth_client_registers_signs_in_searches_fetches_refreshes_and_is_revoked(
    pool: PgPool,
) {
    let stack = spawn_oauth_stack(pool.clone(), |_| {}).await;
    let (token, server_id, mcp_url) = owner_with_server(&stack, EMAIL).await;

    let request = AuthorizationRequest::new(CALLBACK).with_client_name("rmcp test agent");
    let manager = authorize(&stack, &mcp_url, request).await;
    let client = AuthClient::new(reqwest::Client::new(), manager);
    let first_token = client.get_access_token().await.unwrap();
    known_to_the_gateway(&mcp_url, &first_token).await;

    let mcp = mcp_client(&mcp_url, client.clone()).await;
    let found = call(&mcp, "search", json!({"query": "budget"})).await;
    let results = found.structured_content.unwrap()["results"].clone();
    let id = results[0]["id"].as_str().expect("a result").to_owned();
    let document = call(&mcp, "fetch", json!({"id": id})).await;
    assert_ne!(document.is_error, Some(true), "{document:?}");
    mcp.cancel().await.unwrap();

    // The grant is listed for the owner, and the audit records carry it.
    let (status, grants) = stack
        .call(
            reqwest::Method::GET,
            &format!("/mcp-servers/{server_id}/grants"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let grant = &grants["items"][0];
    assert_eq!(grant["client_name"], "rmcp test agent");
    assert_eq!(grant["redirect_host"], "127.0.0.1");
    let grant_id = grant["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(3),
        "audit records name the grant",
        || async {
            let (_, calls) = stack
                .call(
                    reqwest::Method::GET,
                    &format!("/mcp-servers/{server_id}/calls"),
                    &token,
                    None,
                )
                .await;
            calls["items"].as_array().is_some_and(|items| {
                items.len() == 2 && items.iter().all(|c| c["grant_id"] == grant_id.as_str())
            })
        },
    )
    .await;

    // Refresh: a new access token that works, and a rotated refresh token.
    let (_, before) = client
        .auth_manager
        .lock()
        .await
        .get_credentials()
        .await
        .unwrap();
    let old_refresh = refresh_token_of(before);
    client
        .auth_manager
        .lock()
        .await
        .refresh_token()
        .await
        .expect("refresh");
    let second_token = client.get_access_token().await.unwrap();
    assert_ne!(first_token, second_token);
    assert_eq!(status_with(&mcp_url, &second_token).await, StatusCode::OK);
    let (_, after) = client
        .auth_manager
        .lock()
        .await
        .get_credentials()
        .await
        .unwrap();
    assert_ne!(refresh_token_of(after), old_refresh);

    // Disconnect: the token stops working within a second.
    let (status, _) = stack
        .call(
            reqwest::Method::DELETE,
            &format!("/mcp-servers/{server_id}/grants/{grant_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = eventually(Duration::from_secs(1), "revoked token refused", || async {
        status_with(&mcp_url, &second_token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took < Duration::from_secs(1));
    assert!(
        client
            .auth_manager
            .lock()
            .await
            .refresh_token()
            .await
            .is_err()
    );
}

/// Serves a client ID metadata document at `/client.json` on a local port; returns its URL.
async fn metadata_document(redirect_uris: Value, name_itself: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let client_id = if name_itself {
        url.clone()
    } else {
        "https://other.example/client.json".to_owned()
    };
    let document = Arc::new(json!({
        "client_id": client_id,
        "client_name": "Metadata Document Agent",
        "redirect_uris": redirect_uris,
        // As ChatGPT's document does: a preference for private_key_jwt, `none` supported too.
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "grant_types": ["authorization_code", "refresh_token"],
    }));
    let app = Router::new().route(
        "/client.json",
        get(move || async move { Json((*document).clone()) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_client_id_metadata_document_is_fetched_and_the_flow_completes(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |settings| {
        settings.control_plane.oauth_cimd_allow_http_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    let (token, server_id, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let document = metadata_document(json!([CALLBACK]), true).await;

    // rmcp insists on https for its own metadata-document mode; a plain-HTTP document (allowed
    // here by the setting) is used the same way by naming it as the client id.
    let request = AuthorizationRequest::new(CALLBACK).with_preregistered_client(document.clone());
    let manager = authorize(&stack, &mcp_url, request).await;
    let client = AuthClient::new(reqwest::Client::new(), manager);
    known_to_the_gateway(&mcp_url, &client.get_access_token().await.unwrap()).await;
    let mcp = mcp_client(&mcp_url, client).await;
    let found = call(&mcp, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true));
    mcp.cancel().await.unwrap();

    let (_, grants) = stack
        .call(
            reqwest::Method::GET,
            &format!("/mcp-servers/{server_id}/grants"),
            &token,
            None,
        )
        .await;
    assert_eq!(grants["items"][0]["client_id"], document.as_str());
    assert_eq!(grants["items"][0]["client_name"], "Metadata Document Agent");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn chatgpt_and_claude_redirect_uris_are_accepted_at_registration(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    for uris in [
        json!(["https://chatgpt.com/connector_platform_oauth_redirect"]),
        json!(["https://chatgpt.com/connector/oauth/abc123XYZ"]),
        json!([
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.com/api/mcp/auth_callback"
        ]),
        json!([
            "http://localhost:6274/oauth/callback",
            "http://127.0.0.1:33418/callback"
        ]),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/oauth/register", stack.origin))
            .json(&json!({"client_name": "Agent", "redirect_uris": uris, "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "scope": "mcp"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{uris}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["redirect_uris"], uris);
        assert_eq!(body["token_endpoint_auth_method"], "none");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn discovery_documents_describe_the_resource_and_the_authorization_server(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    let (_, _, mcp_url) = owner_with_server(&stack, EMAIL).await;
    let endpoint = mcp_url.trim_end_matches("/mcp");

    let www = challenge(&mcp_url).await;
    assert_eq!(
        www,
        format!(
            "Bearer resource_metadata=\"{endpoint}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\""
        )
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata: Value = reqwest::get(format!("{endpoint}{path}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["resource"], mcp_url.as_str());
        assert_eq!(metadata["authorization_servers"], json!([stack.origin]));
        assert_eq!(metadata["scopes_supported"], json!(["mcp"]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
        assert_eq!(metadata["resource_name"], "Research");
    }
    // An unknown host has no metadata.
    let unknown = reqwest::Client::new()
        .get(format!(
            "{endpoint}/.well-known/oauth-protected-resource/mcp"
        ))
        .header("host", "nobody.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let server: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        stack.origin
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(server["issuer"], stack.origin.as_str());
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        server["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(server["client_id_metadata_document_supported"], true);
    assert_eq!(
        server["authorization_response_iss_parameter_supported"],
        true
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            server[endpoint]
                .as_str()
                .unwrap()
                .starts_with(&stack.origin),
            "{endpoint}"
        );
    }
}
