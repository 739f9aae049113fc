//! What a hostile remote MCP server can cost the gateway after a call: a binary of its own, so
//! that this process's CPU time and resident set are the gateway's alone (the hostile server
//! runs on a thread of its own, whose CPU time is taken out).
//!
//! The server speaks just enough streamable HTTP (2025-11-25, with a session) to be federated,
//! then floods: for [`FLOOD`] it streams notifications and `roots/list` requests on every stream
//! it is given, the answer stream of the `search` call (before and after the answer) and the
//! standalone GET stream a client may open, and accepts whatever is posted back.

#[path = "mcp/fake.rs"]
#[allow(dead_code)]
mod fake;
#[path = "mcp/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{eventually, spawn_real_stack};

/// How long the hostile server keeps streaming.
const FLOOD: Duration = Duration::from_secs(30);
/// Events the answer stream carries before the answer itself (about 1.5 MiB).
const EVENTS_BEFORE_ANSWER: usize = 2_000;
/// As many at `/overflow/mcp`: about 15 MiB, more than the gateway reads of one answer stream.
const OVERFLOWING_EVENTS: usize = 20_000;
/// The most CPU the gateway may use after the call, as a share of one core.
const MAX_CPU_SHARE: f64 = 0.05;
/// The most the resident set may stay above its level before the call.
const MAX_RSS_GROWTH: u64 = 10 * 1024 * 1024;
const SESSION: &str = "hostile-session-1";

/// What the hostile server saw.
#[derive(Default)]
struct Seen {
    gets: AtomicU64,
    posts: AtomicU64,
}

/// One SSE event of a notification or a server request (every third one), about 1 KiB.
fn flood_event(n: u64) -> String {
    let message = if n.is_multiple_of(3) {
        json!({"jsonrpc": "2.0", "id": format!("s{n}"), "method": "roots/list"})
    } else {
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "x".repeat(1000)}})
    };
    format!("data: {message}\n\n")
}

/// An SSE body: `before` flood events, then `answer` (if any), then flood events until
/// `until`, generated as they are sent in 64 KiB chunks.
fn flood(before: usize, answer: Option<Value>, until: Instant) -> Body {
    let head: String = (0..before as u64).map(flood_event).collect();
    let answer = answer.map(|a| format!("data: {a}\n\n")).unwrap_or_default();
    let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head + &answer))]);
    let rest = futures::stream::unfold(0u64, move |n| async move {
        if Instant::now() >= until {
            return None;
        }
        let chunk: String = (n..n + 64).map(flood_event).collect();
        Some((Ok(Bytes::from(chunk)), n + 64))
    });
    Body::from_stream(futures::StreamExt::chain(first, rest))
}

fn sse(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header("mcp-session-id", SESSION)
        .body(body)
        .unwrap()
}

async fn on_post(seen: Arc<Seen>, until: Instant, before: usize, body: Bytes) -> Response {
    seen.posts.fetch_add(1, Ordering::Relaxed);
    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = message["id"].clone();
    match message["method"].as_str() {
        // A server before 2026-07-28: the client falls back to `initialize`.
        Some("server/discover") => (
            StatusCode::BAD_REQUEST,
            "Bad Request: No valid session ID provided",
        )
            .into_response(),
        Some("initialize") => {
            let result = json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"}}});
            let mut response = axum::Json(result).into_response();
            response
                .headers_mut()
                .insert("mcp-session-id", SESSION.parse().unwrap());
            response
        }
        Some("tools/call") => {
            let hits = json!({"results": [
                {"id": "h1", "title": "Hostile hit", "url": "https://hostile.example/1"}]});
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                "content": [{"type": "text", "text": hits.to_string()}],
                "structuredContent": hits, "isError": false}});
            sse(flood(before, Some(answer), until))
        }
        // Notifications and answers to the server's own requests.
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

async fn on_get(seen: Arc<Seen>, until: Instant, headers: HeaderMap) -> Response {
    seen.gets.fetch_add(1, Ordering::Relaxed);
    if headers.get("mcp-session-id").is_none() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    sse(flood(0, None, until))
}

/// Starts the hostile server on a thread of its own; returns its URL and that thread's
/// `/proc/self/task/<tid>/stat` path.
fn hostile_server(seen: Arc<Seen>, until: Instant) -> (String, String) {
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let task = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/mcp", listener.local_addr().unwrap());
            let route = |before: usize| {
                let (post_seen, get_seen) = (seen.clone(), seen.clone());
                post(move |body: Bytes| on_post(post_seen.clone(), until, before, body))
                    .get(move |headers: HeaderMap| on_get(get_seen.clone(), until, headers))
                    .delete(|| async { StatusCode::OK })
            };
            let app = Router::new()
                .route("/mcp", route(EVENTS_BEFORE_ANSWER))
                .route("/overflow/mcp", route(OVERFLOWING_EVENTS));
            ready
                .send((url, format!("/proc/{}/stat", task.display())))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    started.recv().unwrap()
}

/// CPU time (user + system) in clock ticks from a `stat` file of `/proc`.
fn cpu_ticks(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// The host of a new server (`name`) whose one source is the remote MCP server at `url`,
/// once served.
async fn served(stack: &helpers::Stack, token: &str, url: &str, name: &str) -> String {
    let source = stack
        .source(
            token,
            json!({"type": "mcp", "source_metadata": {"url": url}}),
        )
        .await;
    let (_, host) = stack.server(token, name, &[&source]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    host
}

fn search() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "budget"}}})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_flooding_remote_mcp_server_costs_no_cpu_or_memory_after_the_call(pool: PgPool) {
    let stack = spawn_real_stack(pool, |s| {
        s.sources.mcp_allowed_hosts = vec!["127.0.0.1".to_owned()];
        s.gateway.source_timeout_ms = 3_000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let seen = Arc::new(Seen::default());
    let until = Instant::now() + FLOOD;
    let (url, server_stat) = hostile_server(seen.clone(), until);
    let host = served(&stack, &ada, &url, "hostile").await;
    let rss_before = rss_bytes();

    let answer: Value = stack.raw(&host, &search()).await.json().await.unwrap();
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    assert!(
        text.contains("Hostile hit"),
        "the answer came through: {answer}"
    );

    // Everything after the call, until the flood is over.
    let (process, ticks_per_second) = ("/proc/self/stat", clock_ticks_per_second());
    let (cpu_start, server_start, clock) =
        (cpu_ticks(process), cpu_ticks(&server_stat), Instant::now());
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    let gateway_ticks =
        (cpu_ticks(process) - cpu_start).saturating_sub(cpu_ticks(&server_stat) - server_start);
    let share = gateway_ticks as f64 / ticks_per_second / clock.elapsed().as_secs_f64();
    let growth = rss_bytes().saturating_sub(rss_before);
    eprintln!(
        "after the call: gateway CPU {:.1} % of a core over {:.1} s, resident set {:+.1} MiB; \
         the server saw {} GETs and {} POSTs",
        share * 100.0,
        clock.elapsed().as_secs_f64(),
        growth as f64 / 1024.0 / 1024.0,
        seen.gets.load(Ordering::Relaxed),
        seen.posts.load(Ordering::Relaxed),
    );
    assert!(share < MAX_CPU_SHARE, "CPU {:.1} %", share * 100.0);
    assert!(
        growth < MAX_RSS_GROWTH,
        "resident set grew by {growth} bytes"
    );

    // An answer stream that runs past its byte budget before the answer: a clear tool error.
    let overflowing = url.replace("/mcp", "/overflow/mcp");
    let host = served(&stack, &ada, &overflowing, "overflowing").await;
    let answer: Value = stack.raw(&host, &search()).await.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("over 8 MiB"), "{text}");
}
