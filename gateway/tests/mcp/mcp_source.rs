//! `mcp` sources end to end: real rmcp servers started here on port 0 (stateless 2026-07-28 and
//! session-based 2025-11-25), each recording the requests it receives, federated by the real
//! gateway next to a Box source (the wiremock fake), created through the real control plane.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use reqwest::{Method, StatusCode};
use rmcp::{
    ErrorData, RoleClient, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::{RequestContext, RunningService},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
        session::{local::LocalSessionManager, never::NeverSessionManager},
    },
};
use serde_json::{Value, json};
use shared::testing::upstreams::{self, Upstreams};
use sqlx::PgPool;

use crate::helpers::{Stack, call, error_text, eventually, spawn_real_stack};

const TOKEN: &str = "remote-bearer-token-e2e";
const HEADER_VALUE: &str = "remote-header-value-e2e";
const WRONG_TOKEN: &str = "wrong-remote-token-e2e";

/// What a test upstream answers.
#[derive(Clone, Copy, PartialEq)]
enum Answers {
    Good,
    NoFetch,
    MissingId,
}

#[derive(Clone)]
struct Remote {
    answers: Answers,
}

fn tools(answers: Answers) -> Vec<Tool> {
    gateway::tools::definitions()
        .iter()
        .filter(|t| answers != Answers::NoFetch || t.name == "search")
        .cloned()
        .collect()
}

impl ServerHandler for Remote {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools(self.answers)))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools(self.answers).into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = match (request.name.as_ref(), self.answers) {
            ("search", Answers::MissingId) => {
                CallToolResult::structured(json!({"results": [{"title": "no id"}]}))
            }
            ("search", _) => CallToolResult::structured(json!({"results": [
                {"id": "doc-1", "title": "Remote budget", "url": "https://remote.example/1"},
                {"id": "a:b/2", "title": "Remote plan", "url": "https://remote.example/2"},
            ]})),
            // ChatGPT-style: the document as one JSON text item.
            ("fetch", Answers::Good) => {
                let id = args["id"].as_str().unwrap_or_default();
                let doc = json!({"id": id, "title": "Remote budget",
                    "text": format!("Remote text of {id}"), "url": "https://remote.example/1",
                    "metadata": {"owner": "team"}});
                CallToolResult::success(vec![ContentBlock::text(doc.to_string())])
            }
            (other, _) => {
                return Err(ErrorData::invalid_params(
                    format!("tool not found: {other}"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    method: String,
}

/// How the upstream's HTTP layer behaves, switchable while it runs.
#[derive(Default)]
struct Behaviour {
    seen: Mutex<Vec<Seen>>,
    /// The one header (name, value) every request must carry, else 401.
    required: Option<(&'static str, &'static str)>,
    delay: Option<Duration>,
    unavailable: AtomicBool,
    /// Requests still to be answered 503 (then served as usual).
    busy_for: AtomicUsize,
    /// Answers `server/discover` as servers before 2026-07-28 do (HTTP 400, no session).
    legacy: bool,
    /// Sessions forgotten by the server: a request naming one gets 404.
    expired: Mutex<HashSet<String>>,
}

struct Upstream {
    url: String,
    behaviour: Arc<Behaviour>,
}

impl Upstream {
    /// A stateless 2026-07-28 server, or (`sessions`) one of 2025-11-25 with sessions that
    /// does not know `server/discover`.
    async fn start(answers: Answers, sessions: bool, behaviour: Behaviour) -> Self {
        let behaviour = Arc::new(Behaviour {
            legacy: sessions,
            ..behaviour
        });
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_legacy_session_mode(sessions)
            .with_json_response(!sessions);
        let remote = Remote { answers };
        let router = if sessions {
            axum::Router::new().route_service(
                "/mcp",
                StreamableHttpService::new(
                    move || Ok(remote.clone()),
                    Arc::new(LocalSessionManager::default()),
                    config,
                ),
            )
        } else {
            axum::Router::new().route_service(
                "/mcp",
                StreamableHttpService::new(
                    move || Ok(remote.clone()),
                    Arc::new(NeverSessionManager::default()),
                    config,
                ),
            )
        };
        let state = behaviour.clone();
        let router = router.layer(middleware::from_fn(move |request, next| {
            observe(state.clone(), request, next)
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://127.0.0.1:{port}/mcp"),
            behaviour,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.behaviour.seen.lock().unwrap().clone()
    }

    /// The JSON-RPC methods received, in order.
    fn methods(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.method).collect()
    }

    /// Forgets every session handed out so far.
    fn expire_sessions(&self) {
        let ids = self.seen().into_iter().flat_map(|s| {
            s.headers
                .into_iter()
                .filter(|(n, _)| n == "mcp-session-id")
                .map(|(_, v)| v)
        });
        self.behaviour.expired.lock().unwrap().extend(ids);
    }
}

async fn observe(behaviour: Arc<Behaviour>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let method = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_owned))
        .unwrap_or_else(|| parts.method.to_string());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let discover = method == "server/discover";
    behaviour
        .seen
        .lock()
        .unwrap()
        .push(Seen { headers, method });
    if discover && behaviour.legacy {
        return (
            StatusCode::BAD_REQUEST,
            "Bad Request: No valid session ID provided",
        )
            .into_response();
    }
    if let Some((name, value)) = behaviour.required
        && parts.headers.get(name).and_then(|v| v.to_str().ok()) != Some(value)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if behaviour.unavailable.load(Ordering::Relaxed)
        || behaviour
            .busy_for
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    if session.is_some_and(|s| behaviour.expired.lock().unwrap().contains(s)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(delay) = behaviour.delay {
        tokio::time::sleep(delay).await;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn mcp_source(url: &str, auth: &Value) -> Value {
    let mut metadata = json!({"url": url});
    metadata
        .as_object_mut()
        .unwrap()
        .extend(auth.as_object().unwrap().clone());
    json!({"type": "mcp", "source_metadata": metadata})
}

/// Both daemons with the production handlers, Box pointed at its fake, 127.0.0.1 allowed.
async fn stack(pool: PgPool, fakes: &Upstreams) -> Stack {
    // Only the Box fake is used here: Snowflake's expects a call.
    fakes.snowflake.reset().await;
    spawn_real_stack(pool, |settings| {
        fakes.point(settings);
        settings.sources.mcp_allowed_hosts = vec!["127.0.0.1".to_owned()];
        // A server per failure case: more than the default test pool's three endpoints.
        settings.control_plane.mcp_gateway_url_pools = "https://*.remote.example.com".to_owned();
    })
    .await
}

/// An MCP client of a new server (named `name`, of a new user) whose one source is `upstream`
/// without a credential, once served.
async fn client_of_one(
    stack: &Stack,
    upstream: &Upstream,
    name: &str,
) -> RunningService<RoleClient, ()> {
    let ada = stack.user("ada@example.com").await;
    let source = stack
        .source(&ada, mcp_source(&upstream.url, &json!({})))
        .await;
    let host = served(stack, &ada, name, &[&source]).await;
    stack.client(&host).await
}

/// A server of `sources`, served; returns its host.
async fn served(stack: &Stack, token: &str, name: &str, sources: &[&str]) -> String {
    let (_, host) = stack.server(token, name, sources).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    host
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn remote_servers_of_both_eras_are_federated_with_only_their_own_credential(pool: PgPool) {
    let (logs, _logging) = captured_logs();
    let fakes = Upstreams::start().await;
    let stack = stack(pool.clone(), &fakes).await;
    let stateless = Upstream::start(
        Answers::Good,
        false,
        Behaviour {
            required: Some(("authorization", "Bearer remote-bearer-token-e2e")),
            ..Behaviour::default()
        },
    )
    .await;
    let sessions = Upstream::start(
        Answers::Good,
        true,
        Behaviour {
            required: Some(("x-api-key", HEADER_VALUE)),
            ..Behaviour::default()
        },
    )
    .await;
    let ada = stack.user("ada@example.com").await;
    let bearer = json!({"auth": "bearer", "token": TOKEN});
    let header =
        json!({"auth": "header", "header_name": "X-Api-Key", "header_value": HEADER_VALUE});
    let first = stack
        .source(&ada, mcp_source(&stateless.url, &bearer))
        .await;
    let second = stack.source(&ada, mcp_source(&sessions.url, &header)).await;
    let files = stack.source(&ada, upstreams::box_source()).await;
    let host = served(&stack, &ada, "federated", &[&first, &second, &files]).await;
    let client = stack.client(&host).await;

    // Search twice: the protocol is negotiated once per upstream.
    call(&client, "search", json!({"query": "budget"})).await;
    let found = call(&client, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    let results = found.structured_content.unwrap()["results"].clone();
    let ids: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // Merged fairly: one of each source in turn, then the second of each remote server.
    assert_eq!(ids.len(), 5, "{ids:?}");
    let source_of = |id: &str| id.split(':').nth(1).unwrap().to_owned();
    let round: HashSet<String> = ids[..3].iter().map(|id| source_of(id)).collect();
    assert_eq!(
        round,
        HashSet::from([first.clone(), second.clone(), files.clone()])
    );
    let round: HashSet<String> = ids[3..].iter().map(|id| source_of(id)).collect();
    assert_eq!(round, HashSet::from([first.clone(), second.clone()]));
    for source in [&first, &second] {
        assert!(
            ids.contains(&format!("mcp:{source}:doc-1").as_str()),
            "{ids:?}"
        );
    }
    let federated = format!("mcp:{second}:a:b/2");
    assert!(ids.contains(&federated.as_str()), "{ids:?}");

    // Fetch of a federated id, with a `:` and a `/` in the upstream id.
    let fetched = call(&client, "fetch", json!({"id": federated})).await;
    assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
    let document = fetched.structured_content.unwrap();
    assert_eq!(document["id"], federated.as_str());
    assert_eq!(document["text"], "Remote text of a:b/2");
    assert_eq!(document["metadata"]["owner"], "team");
    client.cancel().await.unwrap();

    // 2026-07-28 discovered once, no session; 2025-11-25 initialized once, with a session.
    let methods = stateless.methods();
    assert_eq!(
        methods.iter().filter(|m| *m == "server/discover").count(),
        1,
        "{methods:?}"
    );
    assert!(!methods.contains(&"initialize".to_owned()), "{methods:?}");
    let methods = sessions.methods();
    assert_eq!(
        methods.iter().filter(|m| *m == "initialize").count(),
        1,
        "{methods:?}"
    );
    assert!(
        sessions
            .seen()
            .iter()
            .any(|s| s.headers.iter().any(|(n, _)| n == "mcp-session-id")),
        "the session-based upstream was used with its session"
    );

    // Only the configured credential reaches an upstream, never the agent's access key.
    let key = stack.key_of(&host).unwrap();
    for upstream in [&stateless, &sessions] {
        for seen in upstream.seen() {
            for (name, value) in &seen.headers {
                assert!(
                    !value.contains(&key) && !value.contains("mcpk_"),
                    "the agent's key reached an upstream in {name}"
                );
            }
        }
    }
    assert!(
        sessions
            .seen()
            .iter()
            .all(|s| s.headers.iter().all(|(n, _)| n != "authorization"))
    );

    // The upstream credentials appear in no response and no audit row.
    let (_, listed) = stack.call(Method::GET, "/sources", &ada, None).await;
    eventually(Duration::from_secs(2), "audit written", || async {
        let n: i64 = sqlx::query_scalar("select count(*) from tool_calls")
            .fetch_one(&pool)
            .await
            .unwrap();
        n == 3
    })
    .await;
    let audit: Vec<String> = sqlx::query_scalar("select row_to_json(c)::text from tool_calls c")
        .fetch_all(&pool)
        .await
        .unwrap();
    let everything = format!("{listed} {audit:?} {document} {results}");
    for secret in [TOKEN, HEADER_VALUE] {
        assert!(!everything.contains(secret), "a credential leaked");
    }
    assert_no_credential_logged(&logs, &[TOKEN, HEADER_VALUE]);
}

/// The daemons' logs at the default level, captured for the rest of the test (the daemons run
/// on the test's one thread).
fn captured_logs() -> (
    shared::telemetry::CapturedLogs,
    tracing::subscriber::DefaultGuard,
) {
    let captured = shared::telemetry::CapturedLogs::default();
    let subscriber = shared::telemetry::subscriber(
        shared::LogFormat::Json,
        &shared::Settings::default().common.log_level,
        captured.clone(),
    );
    let guard = tracing::subscriber::set_default(subscriber);
    // Call sites cache whether anyone listens; one that other tests (running alongside on
    // other threads) registered while this subscriber was being installed may have cached
    // "nobody". Asking every call site again closes that window.
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
}

/// The MCP calls were logged, and no credential with them.
fn assert_no_credential_logged(logs: &shared::telemetry::CapturedLogs, secrets: &[&str]) {
    let logs = logs.contents();
    assert!(
        logs.contains("request served") && logs.contains("/mcp"),
        "the calls were logged: {logs}"
    );
    for secret in secrets {
        assert!(!logs.contains(secret), "a credential was logged");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn failing_upstreams_are_clear_tool_errors_and_audited_by_class(pool: PgPool) {
    let (logs, _logging) = captured_logs();
    let fakes = Upstreams::start().await;
    let stack = stack(pool.clone(), &fakes).await;
    let guarded = Behaviour {
        required: Some(("authorization", "Bearer right")),
        ..Behaviour::default()
    };
    let slow = Behaviour {
        delay: Some(Duration::from_secs(3)),
        ..Behaviour::default()
    };
    let cases = [
        (
            Answers::Good,
            guarded,
            json!({"auth": "bearer", "token": WRONG_TOKEN}),
            "refused the credentials (HTTP 401)",
        ),
        (Answers::Good, slow, json!({}), "timed out after 500 ms"),
        (
            Answers::Good,
            Behaviour::default(),
            json!({}),
            "unavailable (HTTP 503)",
        ),
        (
            Answers::MissingId,
            Behaviour::default(),
            json!({}),
            "result 1 of the remote MCP server's `search` tool has no valid `id`",
        ),
    ];
    let ada = stack.user("ada@example.com").await;
    let mut upstreams = Vec::new();
    for (n, (answers, behaviour, auth, expected)) in cases.into_iter().enumerate() {
        let upstream = Upstream::start(answers, n % 2 == 0, behaviour).await;
        if expected.contains("503") {
            upstream
                .behaviour
                .unavailable
                .store(true, Ordering::Relaxed);
        }
        let source = stack.source(&ada, mcp_source(&upstream.url, &auth)).await;
        let host = served(&stack, &ada, &format!("s{n}"), &[&source]).await;
        let client = stack.client(&host).await;
        let found = call(&client, "search", json!({"query": "budget"})).await;
        let text = error_text(&found);
        assert!(text.contains(expected), "{expected} in {text}");
        client.cancel().await.unwrap();
        upstreams.push(upstream);
    }

    // An upstream without `fetch`: a fetch says what is missing.
    let upstream = Upstream::start(Answers::NoFetch, false, Behaviour::default()).await;
    let source = stack
        .source(&ada, mcp_source(&upstream.url, &json!({})))
        .await;
    let (server_id, host) = stack.server(&ada, "nofetch", &[&source]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    let fetched = call(
        &client,
        "fetch",
        json!({"id": format!("mcp:{source}:doc-1")}),
    )
    .await;
    assert!(
        error_text(&fetched).contains("has no `fetch` tool"),
        "{fetched:?}"
    );
    client.cancel().await.unwrap();

    // The audit record shows the upstream's outcome and latency like any other source.
    let path = format!("/mcp-servers/{server_id}/calls");
    eventually(Duration::from_secs(2), "audit written", || async {
        let (_, page) = stack.call(Method::GET, &path, &ada, None).await;
        page["total"].as_u64() == Some(1)
    })
    .await;
    let (_, page) = stack.call(Method::GET, &path, &ada, None).await;
    let record = &page["items"][0]["sources"][0];
    assert_eq!(record["source_id"], source.as_str());
    assert_eq!(record["outcome"], "error", "{record}");
    assert_eq!(record["error_class"], "bad_response", "{record}");
    assert!(record["latency_ms"].is_number(), "{record}");
    assert_no_credential_logged(&logs, &[WRONG_TOKEN]);
}

/// A remote MCP server answering 503 for a moment (its handshake, then a call) is tried again
/// twice; one still busy after that is a clear tool error.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_busy_upstream_is_tried_again_twice(pool: PgPool) {
    let fakes = Upstreams::start().await;
    let stack = stack(pool.clone(), &fakes).await;
    let upstream = Upstream::start(Answers::Good, false, Behaviour::default()).await;
    let busy = |requests| {
        upstream
            .behaviour
            .busy_for
            .store(requests, Ordering::Relaxed);
    };
    let client = client_of_one(&stack, &upstream, "busy").await;
    let search = || call(&client, "search", json!({"query": "budget"}));

    busy(2);
    let found = search().await;
    assert_ne!(
        found.is_error,
        Some(true),
        "after a busy handshake: {found:?}"
    );
    let discovers = upstream
        .methods()
        .iter()
        .filter(|m| *m == "server/discover")
        .count();
    assert_eq!(discovers, 3, "the handshake was tried three times");
    busy(1);
    let found = search().await;
    assert_ne!(found.is_error, Some(true), "after a busy call: {found:?}");
    busy(3);
    let found = search().await;
    assert!(
        error_text(&found).contains("unavailable (HTTP 503)"),
        "{found:?}"
    );
    assert_eq!(upstream.behaviour.busy_for.load(Ordering::Relaxed), 0);
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_expired_upstream_session_is_renewed_and_the_call_retried(pool: PgPool) {
    let fakes = Upstreams::start().await;
    let stack = stack(pool, &fakes).await;
    let upstream = Upstream::start(Answers::Good, true, Behaviour::default()).await;
    let client = client_of_one(&stack, &upstream, "sessions").await;
    let found = call(&client, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");

    upstream.expire_sessions();
    let found = call(&client, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    let initialized = upstream
        .methods()
        .iter()
        .filter(|m| *m == "initialize")
        .count();
    assert_eq!(initialized, 2, "{:?}", upstream.methods());
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn private_addresses_and_stdio_are_refused_at_creation(pool: PgPool) {
    let stack = spawn_real_stack(pool, |settings| {
        settings.sources.mcp_allowed_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    for (metadata, field, words) in [
        (
            json!({"url": "http://10.0.0.7/mcp"}),
            "source_metadata.url",
            "MCP_ALLOWED_HOSTS",
        ),
        (
            json!({"url": "https://169.254.169.254/latest"}),
            "source_metadata.url",
            "IP addresses",
        ),
        (
            json!({"url": "http://mcp.example.com/mcp"}),
            "source_metadata.url",
            "must use https",
        ),
        (
            json!({"url": "https://localhost:8080/mcp"}),
            "source_metadata.url",
            "localhost",
        ),
        (
            json!({"url": "https://mcp.example.com/mcp", "command": "npx", "args": "server"}),
            "source_metadata.command",
            "never starts a user-given command",
        ),
        (
            json!({"url": "stdio:///usr/bin/server"}),
            "source_metadata.url",
            "stdio",
        ),
    ] {
        let (status, body) = stack
            .call(
                Method::POST,
                "/sources",
                &ada,
                Some(json!({"type": "mcp", "source_metadata": metadata})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let named = body.to_string();
        assert!(
            named.contains(field) && named.contains(words),
            "{field} {words}: {body}"
        );
    }
    let (_, listed) = stack.call(Method::GET, "/sources", &ada, None).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
}
