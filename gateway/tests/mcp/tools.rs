//! `initialize`, `tools/list`, `search` and `fetch` through a real MCP client, per Host.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{call, error_text, spawn_stack};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_server_created_through_the_control_plane_is_searchable_on_its_host(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "42").await;
    let (_, host) = stack.server(&ada, "Ada's research", &[&files]).await;
    crate::helpers::eventually(std::time::Duration::from_secs(1), "server served", || {
        stack.serves(&host)
    })
    .await;

    let client = stack.client(&host).await;
    let info = client.peer_info().expect("initialized");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("Ada's research")
    );
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(instructions.contains("box (1)"), "{instructions}");

    let tools = client.list_all_tools().await.unwrap();
    let tools: Value = serde_json::to_value(&tools).unwrap();
    let by_name = |name: &str| {
        tools
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap()
    };
    let search = by_name("search");
    assert_eq!(
        search["inputSchema"],
        json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
    );
    assert_eq!(search["annotations"]["readOnlyHint"], true);
    assert_eq!(search["outputSchema"]["required"], json!(["results"]));
    let fetch = by_name("fetch");
    assert_eq!(
        fetch["inputSchema"],
        json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]})
    );
    assert_eq!(fetch["annotations"]["readOnlyHint"], true);
    assert!(fetch["outputSchema"]["properties"]["metadata"].is_object());

    let found = call(&client, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true));
    let structured = found.structured_content.clone().expect("structuredContent");
    let text = found.content[0]
        .as_text()
        .expect("one text item")
        .text
        .clone();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        structured,
        "text item is the same JSON"
    );
    let results = structured["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let id = results[0]["id"].as_str().unwrap();
    assert_eq!(id, format!("box:{files}:42/Doc+1=:x"));
    assert_eq!(results[0]["title"], "budget #1 in 42");

    let document = call(&client, "fetch", json!({"id": id})).await;
    let document = document.structured_content.expect("structuredContent");
    assert_eq!(document["id"], id);
    assert_eq!(document["text"], "The text of 42/Doc+1=:x.");
    assert_eq!(document["metadata"], json!({"subject": "42"}));

    for (args, message) in [
        (json!({"query": ""}), "must not be empty"),
        (json!({"query": "   "}), "must not be empty"),
        (json!({"query": "q".repeat(1001)}), "too long"),
        (json!({"query": 5}), "must be a string"),
        (json!({}), "is required"),
    ] {
        assert!(error_text(&call(&client, "search", args).await).contains(message));
    }
    let case_changed = id.replace("Doc", "doc");
    assert!(
        error_text(&call(&client, "fetch", json!({"id": ""})).await).contains("must not be empty")
    );
    for bad in [
        "nonsense",
        "box:not-a-uuid:x",
        &format!("outlook:{files}:42/Doc+1=:x"),
        &case_changed,
        &format!("box:{files}:other/x"),
    ] {
        let text = error_text(&call(&client, "fetch", json!({"id": bad})).await);
        assert!(text.starts_with("No item with id"), "{bad:?}: {text}");
    }
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn each_host_sees_only_its_own_server_s_sources(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let adas = stack.files(&ada, "1").await;
    let bobs = stack.files(&bob, "2").await;
    let (_, ada_host) = stack.server(&ada, "ada", &[&adas]).await;
    let (_, bob_host) = stack.server(&bob, "bob", &[&bobs]).await;
    crate::helpers::eventually(std::time::Duration::from_secs(1), "both served", || async {
        stack.serves(&ada_host).await && stack.serves(&bob_host).await
    })
    .await;

    let ada_client = stack.client(&ada_host).await;
    let bob_client = stack.client(&bob_host).await;
    let ada_results = call(&ada_client, "search", json!({"query": "q"}))
        .await
        .structured_content
        .unwrap();
    let bob_results = call(&bob_client, "search", json!({"query": "q"}))
        .await
        .structured_content
        .unwrap();
    assert!(
        ada_results["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_str().unwrap().contains(&adas))
    );
    assert!(
        bob_results["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_str().unwrap().contains(&bobs))
    );

    // Ada's id, presented on Bob's host, is refused exactly like an unknown id.
    let adas_id = ada_results["results"][0]["id"].as_str().unwrap();
    let foreign = error_text(&call(&bob_client, "fetch", json!({"id": adas_id})).await);
    let unknown_id = format!("box:{}:1/Doc+1=:x", uuid::Uuid::new_v4());
    let unknown = error_text(&call(&bob_client, "fetch", json!({"id": unknown_id})).await);
    assert_eq!(
        foreign.replace(adas_id, "ID"),
        unknown.replace(&unknown_id, "ID")
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_failing_or_slow_source_costs_only_its_own_results(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let good = stack.files(&ada, "7").await;
    let broken = stack.files(&ada, "500").await;
    let slow = stack.files(&ada, "999").await;
    let (_, host) = stack.server(&ada, "mixed", &[&good, &broken, &slow]).await;
    let (_, dead_host) = stack.server(&ada, "dead", &[&broken, &slow]).await;
    crate::helpers::eventually(std::time::Duration::from_secs(1), "served", || async {
        stack.serves(&host).await && stack.serves(&dead_host).await
    })
    .await;

    let client = stack.client(&host).await;
    let started = std::time::Instant::now();
    let result = call(&client, "search", json!({"query": "q"})).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the slow source is cut off at its deadline"
    );
    let results = result.structured_content.unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 3, "the good source's results arrive");

    let dead = stack.client(&dead_host).await;
    let text = error_text(&call(&dead, "search", json!({"query": "q"})).await);
    assert!(
        text.contains(&broken) && text.contains("HTTP 500"),
        "{text}"
    );
    assert!(text.contains(&slow) && text.contains("timed out"), "{text}");
    assert!(!text.contains(crate::fake::SECRET), "no secret in errors");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn results_are_merged_fairly_and_capped(pool: PgPool) {
    let stack = spawn_stack(pool.clone(), pool, |s| s.gateway.max_results = 4).await;
    let ada = stack.user("ada@example.com").await;
    let a = stack.files(&ada, "1").await;
    let b = stack.files(&ada, "2").await;
    let (_, host) = stack.server(&ada, "two", &[&a, &b]).await;
    crate::helpers::eventually(std::time::Duration::from_secs(1), "served", || {
        stack.serves(&host)
    })
    .await;
    let client = stack.client(&host).await;
    let results = call(&client, "search", json!({"query": "q"}))
        .await
        .structured_content
        .unwrap();
    let ids: Vec<&str> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let source_of = |id: &str| id.split(':').nth(1).unwrap().to_owned();
    let sources: Vec<String> = ids.iter().map(|id| source_of(id)).collect();
    assert_ne!(sources[0], sources[1], "the sources take turns: {ids:?}");
    assert_eq!(
        (&sources[0], &sources[1]),
        (&sources[2], &sources[3]),
        "{ids:?}"
    );
    assert!([&a, &b].contains(&&sources[0]));
}
