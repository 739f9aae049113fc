//! What the gateway logs, seen through the production subscriber installed globally, as the
//! daemon does (a binary of its own, so no other test shares the subscriber).

#[path = "mcp/fake.rs"]
mod fake;
#[path = "mcp/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{sync::OnceLock, time::Duration};

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{eventually, spawn_stack};

static CAPTURED: OnceLock<shared::telemetry::CapturedLogs> = OnceLock::new();

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn log_lines_carry_host_server_and_request_id_and_no_secret(pool: PgPool) {
    let captured = CAPTURED.get_or_init(|| {
        let captured = shared::telemetry::CapturedLogs::default();
        let subscriber =
            shared::telemetry::subscriber(shared::LogFormat::Json, "info", captured.clone());
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this binary");
        captured
    });

    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let broken = stack.files(&ada, "500").await;
    let good = stack.files(&ada, "1").await;
    let (server_id, host) = stack.server(&ada, "s", &[&good, &broken]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let response = stack
        .raw(&host, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "q"}}}))
        .await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let logs = captured.contents();
    let line = logs
        .lines()
        .find(|l| l.contains("source search failed"))
        .unwrap_or_else(|| panic!("the failure is logged:\n{logs}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    let span = line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "tool_call"))
        .unwrap_or_else(|| panic!("the tool call's span is on the line: {line}"));
    assert_eq!(span["host"], host.as_str(), "{line}");
    assert_eq!(span["server_id"], server_id.as_str(), "{line}");
    assert_eq!(span["request_id"], request_id.as_str(), "{line}");
    assert_eq!(line["source_id"], broken.as_str());
    assert!(
        !logs.contains(crate::fake::SECRET),
        "secrets are never logged"
    );
}
