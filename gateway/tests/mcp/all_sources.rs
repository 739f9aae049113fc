//! One server with an Outlook, a Box and a Snowflake source, created through the control plane,
//! served by the production handlers against the local fakes: `search` merges all three and
//! `fetch` reads an item of each.

use std::time::Duration;

use serde_json::json;
use shared::testing::upstreams::{self, Upstreams};
use sqlx::PgPool;

use crate::helpers::{call, eventually, spawn_real_stack};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn search_merges_all_three_types_and_fetch_reads_each(pool: PgPool) {
    let fakes = Upstreams::start().await;
    let stack = spawn_real_stack(pool, |settings| fakes.point(settings)).await;
    let ada = stack.user("ada@example.com").await;
    let mail = stack
        .source(&ada, upstreams::outlook_source(upstreams::GOOD_TENANT))
        .await;
    let files = stack.source(&ada, upstreams::box_source()).await;
    let warehouse = stack.source(&ada, upstreams::snowflake_source()).await;
    // A fourth source whose credentials were revoked costs only its own results.
    let revoked = stack
        .source(&ada, upstreams::outlook_source(upstreams::REVOKED_TENANT))
        .await;
    let (_, host) = stack
        .server(&ada, "all", &[&mail, &files, &warehouse, &revoked])
        .await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    let found = call(&client, "search", json!({"query": "budget"})).await;
    assert_ne!(found.is_error, Some(true), "{found:?}");
    let results = found.structured_content.unwrap()["results"].clone();
    let results = results.as_array().unwrap();
    let titles: Vec<&str> = results
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 3, "{results:?}");
    for title in ["Budget review", "Budget 2025.xlsx", "Budget policy"] {
        assert!(titles.contains(&title), "{title} in {titles:?}");
    }

    let expected = [
        (&mail, "The mail about the budget."),
        (&files, "Budget sheet: 42 rows."),
        (&warehouse, "Budgets are set yearly."),
    ];
    for (source, text) in expected {
        let result = results
            .iter()
            .find(|r| r["id"].as_str().unwrap().contains(source.as_str()))
            .unwrap();
        let fetched = call(&client, "fetch", json!({"id": result["id"]})).await;
        assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
        let document = fetched.structured_content.unwrap();
        assert!(
            document["text"].as_str().unwrap().contains(text),
            "{document}"
        );
        assert_eq!(document["url"], result["url"]);
        let whole = serde_json::to_string(&document).unwrap();
        for secret in upstreams::SECRETS {
            assert!(!whole.contains(secret), "a credential leaked into a result");
        }
    }
    client.cancel().await.unwrap();
    fakes.snowflake.verify().await;

    // The agent's access key stays at the gateway.
    let key = stack.key_of(&host).unwrap();
    for fake in [&fakes.graph, &fakes.files, &fakes.snowflake] {
        let requests = fake.received_requests().await.unwrap();
        assert!(!requests.is_empty());
        for request in requests {
            let leaked = request.headers.values().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.contains(&key) || v.contains("mcpk_"))
            }) || String::from_utf8_lossy(&request.body).contains(&key);
            assert!(!leaked, "the agent key was sent to {}", request.url);
        }
    }
}
