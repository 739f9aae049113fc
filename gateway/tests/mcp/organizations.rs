//! A team organization's members each connect their own agent (rmcp's OAuth client) to the
//! organization's server: the grants, tokens and audit rows are theirs; removing a member,
//! lowering their role or leaving them off a `listed` server ends their connection on the
//! gateway within a second while the others keep working.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rmcp::{
    RoleClient,
    model::CallToolRequestParams,
    service::RunningService,
    transport::{AuthClient, auth::AuthorizationRequest},
};
use serde_json::{Value, json};
use shared::testing::id;
use sqlx::PgPool;

use crate::{
    fake::SECRET,
    helpers::{Stack, call, eventually, spawn_oauth_stack},
    oauth::{authorize_as, known_to_the_gateway, mcp_client, start},
    oauth_flow::{CALLBACK, signed_in, status_with},
};

const OWNER: &str = "owner@example.com";

/// A team organization with one server (one fake `box` source) on the gateway's own listener.
struct Team {
    owner: String,
    org: String,
    server_id: String,
    mcp_url: String,
}

impl Team {
    async fn new(stack: &Stack) -> Self {
        let api = stack.api();
        let owner = stack.user(OWNER).await;
        let org = api.organization(&owner, "contoso").await;
        let source = stack
            .source(
                &owner,
                json!({"type": "box", "organization_id": org, "source_metadata": {
                    "client_id": "abc", "client_secret": SECRET,
                    "subject_type": "enterprise", "subject_id": "42"}}),
            )
            .await;
        let server = api
            .server(
                &owner,
                &json!({"name": "Research", "source_ids": [source], "organization_id": org}),
            )
            .await;
        assert_eq!(server["organization_id"], org.as_str());
        let mcp_url = server["mcp_url"].as_str().unwrap().to_owned();
        assert!(mcp_url.starts_with("http://localhost:"), "{mcp_url}");
        eventually(
            Duration::from_secs(2),
            "the gateway serves the new server",
            || async { status_with(&mcp_url, "none").await != StatusCode::NOT_FOUND },
        )
        .await;
        Self {
            owner,
            org,
            server_id: id(&server),
            mcp_url,
        }
    }

    /// Invites `email` as `role`; they sign up and accept. Returns their session and user id.
    async fn member(&self, stack: &Stack, email: &str, role: &str) -> (String, String) {
        stack
            .api()
            .member(&self.owner, &self.org, email, role)
            .await
    }

    /// A path under the server.
    fn server_path(&self, rest: &str) -> String {
        format!("/mcp-servers/{}{rest}", self.server_id)
    }
}

/// A member's agent: rmcp's OAuth client authorized by `email`, and its current access token.
struct Agent {
    client: AuthClient<reqwest::Client>,
    token: String,
}

impl Agent {
    async fn connect(stack: &Stack, mcp_url: &str, email: &str) -> Self {
        let request = AuthorizationRequest::new(CALLBACK).with_client_name("Team agent");
        let manager = authorize_as(stack, mcp_url, request, email).await;
        let client = AuthClient::new(reqwest::Client::new(), manager);
        let token = client.get_access_token().await.unwrap();
        known_to_the_gateway(mcp_url, &token).await;
        Self { client, token }
    }

    async fn mcp(&self, mcp_url: &str) -> RunningService<RoleClient, ()> {
        mcp_client(mcp_url, self.client.clone()).await
    }

    /// Searches once through a new MCP session; the result must not be an error.
    async fn search(&self, mcp_url: &str, query: &str) {
        let mcp = self.mcp(mcp_url).await;
        let found = call(&mcp, "search", json!({ "query": query })).await;
        assert_ne!(found.is_error, Some(true), "{found:?}");
        mcp.cancel().await.unwrap();
    }
}

/// The calls of the server as `session` lists them, newest first.
async fn calls(stack: &Stack, team: &Team, session: &str, query: &str) -> (StatusCode, Value) {
    stack
        .call(
            Method::GET,
            &team.server_path(&format!("/calls{query}")),
            session,
            None,
        )
        .await
}

/// `(user_id, argument)` of each call in a page.
fn callers(page: &Value) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["user_id"].as_str().unwrap_or("none").to_owned(),
                c["argument"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Waits until the gateway refuses `token` (401); returns how long that took.
async fn refused_within_a_second(mcp_url: &str, token: &str, what: &str) -> Duration {
    let took = eventually(Duration::from_secs(1), what, || async {
        status_with(mcp_url, token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took < Duration::from_secs(1), "{what}: {took:?}");
    took
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn two_members_connect_their_own_agents_and_a_removed_member_is_refused_within_a_second(
    pool: PgPool,
) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    let team = Team::new(&stack).await;
    let (ada, ada_id) = team.member(&stack, "ada@example.com", "member").await;
    let (_, bob_id) = team.member(&stack, "bob@example.com", "member").await;

    // Each member approves their own agent with their own session.
    let ada_agent = Agent::connect(&stack, &team.mcp_url, "ada@example.com").await;
    let bob_agent = Agent::connect(&stack, &team.mcp_url, "bob@example.com").await;
    ada_agent.search(&team.mcp_url, "ada's budget").await;
    let bob_mcp = bob_agent.mcp(&team.mcp_url).await;
    let found = call(&bob_mcp, "search", json!({"query": "bob's budget"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");

    let (status, grants) = stack
        .call(Method::GET, &team.server_path("/grants"), &team.owner, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut holders: Vec<&str> = grants["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["user_id"].as_str().unwrap())
        .collect();
    holders.sort_unstable();
    let mut expected = vec![ada_id.as_str(), bob_id.as_str()];
    expected.sort_unstable();
    assert_eq!(holders, expected, "two grants, one per member: {grants}");

    // Every call is attributed to the member whose agent made it.
    let attributed = vec![
        (ada_id.clone(), "ada's budget".to_owned()),
        (bob_id.clone(), "bob's budget".to_owned()),
    ];
    let mut attributed_sorted = attributed.clone();
    attributed_sorted.sort();
    eventually(
        Duration::from_secs(3),
        "the audit records reach the database",
        || async { callers(&calls(&stack, &team, &team.owner, "").await.1).len() == 2 },
    )
    .await;
    let (_, all) = calls(&stack, &team, &team.owner, "").await;
    assert_eq!(callers(&all), attributed_sorted, "{all}");

    // A member reads only their own calls, and may not ask for another's.
    let (status, own) = calls(&stack, &team, &ada, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(callers(&own), [attributed[0].clone()], "{own}");
    assert_eq!(own["total"], 1);
    let (status, own) = calls(&stack, &team, &ada, &format!("?user_id={ada_id}")).await;
    assert_eq!((status, callers(&own).len()), (StatusCode::OK, 1));
    let (status, other) = calls(&stack, &team, &ada, &format!("?user_id={bob_id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(other["error"]["code"], "role_required");
    // The owner may filter by member.
    let (_, bobs) = calls(&stack, &team, &team.owner, &format!("?user_id={bob_id}")).await;
    assert_eq!(callers(&bobs), [attributed[1].clone()]);

    // Removing Bob ends his agent's access on the gateway within a second; Ada's goes on.
    let asked = tokio::time::Instant::now();
    let (status, _) = stack
        .call(
            Method::DELETE,
            &format!("/organizations/{}/members/{bob_id}", team.org),
            &team.owner,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took =
        refused_within_a_second(&team.mcp_url, &bob_agent.token, "removed member refused").await;
    eprintln!(
        "removed member's token refused {took:?} after the removal answered ({:?} after it was asked)",
        asked.elapsed()
    );
    // Bob's open session fails on its next call.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        bob_mcp.call_tool(
            CallToolRequestParams::new("search".to_owned())
                .with_arguments(json!({"query": "after"}).as_object().unwrap().clone()),
        ),
    )
    .await
    .expect("the refused call answers");
    assert!(next.is_err(), "{next:?}");
    assert_eq!(
        status_with(&team.mcp_url, &ada_agent.token).await,
        StatusCode::OK
    );
    ada_agent.search(&team.mcp_url, "ada again").await;
    let (_, grants) = stack
        .call(Method::GET, &team.server_path("/grants"), &team.owner, None)
        .await;
    assert_eq!(grants["items"].as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants["items"][0]["user_id"], ada_id.as_str());
    // Nor can Bob refresh his way back in.
    assert!(
        bob_agent
            .client
            .auth_manager
            .lock()
            .await
            .refresh_token()
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn on_a_listed_server_only_listed_members_connect_and_unlisting_ends_a_connection(
    pool: PgPool,
) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    let team = Team::new(&stack).await;
    let (_, ada_id) = team.member(&stack, "ada@example.com", "member").await;
    team.member(&stack, "bob@example.com", "member").await;
    // Bob connects while the server is open to every member.
    let bob_agent = Agent::connect(&stack, &team.mcp_url, "bob@example.com").await;

    let (status, server) = stack
        .call(
            Method::PUT,
            &team.server_path(""),
            &team.owner,
            Some(json!({"member_access": "listed", "listed_members": [ada_id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{server}");
    assert_eq!(server["member_access"], "listed");
    assert_eq!(server["listed_members"], json!([ada_id]));
    refused_within_a_second(&team.mcp_url, &bob_agent.token, "unlisted member refused").await;

    // Bob's next authorization is refused: an error page, no redirect, no code.
    let request = AuthorizationRequest::new(CALLBACK).with_client_name("Team agent");
    let (_oauth, url) = start(&team.mcp_url, request).await;
    let (_, page) = signed_in(&stack.origin, &url, "bob@example.com").await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    let html = page.text().await.unwrap();
    assert!(html.contains("invalid_target"), "{html}");
    assert!(!html.contains("Approve"), "{html}");

    // Ada, listed, connects and works.
    let ada_agent = Agent::connect(&stack, &team.mcp_url, "ada@example.com").await;
    ada_agent.search(&team.mcp_url, "budget").await;
    let (_, grants) = stack
        .call(Method::GET, &team.server_path("/grants"), &team.owner, None)
        .await;
    let holders: Vec<&Value> = grants["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["user_id"])
        .collect();
    assert_eq!(holders, [&json!(ada_id)], "{grants}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn lowering_a_members_role_ends_their_connections_within_a_second(pool: PgPool) {
    let stack = spawn_oauth_stack(pool, |_| {}).await;
    let team = Team::new(&stack).await;
    let (_, ada_id) = team.member(&stack, "ada@example.com", "admin").await;
    let ada_agent = Agent::connect(&stack, &team.mcp_url, "ada@example.com").await;
    let owner_agent = Agent::connect(&stack, &team.mcp_url, OWNER).await;
    ada_agent.search(&team.mcp_url, "budget").await;

    let (status, member) = stack
        .call(
            Method::PUT,
            &format!("/organizations/{}/members/{ada_id}", team.org),
            &team.owner,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["role"], "member");
    refused_within_a_second(&team.mcp_url, &ada_agent.token, "lowered member refused").await;
    assert_eq!(
        status_with(&team.mcp_url, &owner_agent.token).await,
        StatusCode::OK
    );
    let (_, grants) = stack
        .call(
            Method::GET,
            &format!("/mcp-servers/{}/grants?user_id={ada_id}", team.server_id),
            &team.owner,
            None,
        )
        .await;
    assert_eq!(grants["items"], json!([]), "{grants}");

    // As a member of an `all` server she may connect again, under her new role.
    let again = Agent::connect(&stack, &team.mcp_url, "ada@example.com").await;
    again.search(&team.mcp_url, "budget").await;
}
