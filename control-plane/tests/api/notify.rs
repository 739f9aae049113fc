//! Every change that affects what the gateway serves sends `NOTIFY mcp_config` naming the
//! server, after commit and never on rollback; a statement changing many rows sends one
//! notification per 100 servers, not one per row.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::{PgPool, postgres::PgListener};

use crate::helpers::{box_source, outlook, spawn_app};

/// The next notification's server ids (its payload without the `@` timestamp), waiting at
/// most two seconds.
async fn next(listener: &mut PgListener) -> String {
    let notification = tokio::time::timeout(Duration::from_secs(2), listener.recv())
        .await
        .expect("a notification arrives")
        .expect("listener works");
    assert_eq!(notification.channel(), "mcp_config");
    let (ids, at) = notification
        .payload()
        .rsplit_once('@')
        .expect("a payload ends with @ and the transaction's time");
    let at: i64 = at.parse().expect("milliseconds since the epoch");
    let age = chrono::Utc::now().timestamp_millis() - at;
    assert!(
        (0..60_000).contains(&age),
        "the time is the transaction's ({age} ms ago)"
    );
    ids.to_owned()
}

/// Every notification waiting (ids only), until none comes for 300 ms.
async fn drain(listener: &mut PgListener) -> Vec<String> {
    let mut all = Vec::new();
    while let Ok(Ok(Some(n))) =
        tokio::time::timeout(Duration::from_millis(300), listener.try_recv()).await
    {
        all.push(n.payload().rsplit_once('@').unwrap().0.to_owned());
    }
    all
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_bulk_statement_notifies_per_hundred_servers_not_per_row(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let source = app.source(&token, &box_source()).await;
    let server = app.server(&token, "seed", &[&source]).await;
    let user_id: uuid::Uuid = sqlx::query_scalar("select id from organizations limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    // 250 more servers in one statement, all on the one source (written directly: the rows
    // only have to exist, not to hold pool endpoints).
    sqlx::query(
        "insert into mcp_servers (id, organization_id, name, endpoint, endpoint_host) \
         select gen_random_uuid(), $1, 'bulk ' || n, 'http://bulk' || n || '.example.com', \
                'bulk' || n || '.example.com' from generate_series(1, 250) n",
    )
    .bind(user_id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into mcp_server_sources (server_id, source_id, organization_id) \
         select id, $1::uuid, organization_id from mcp_servers where name like 'bulk %'",
    )
    .bind(&source)
    .execute(&pool)
    .await
    .unwrap();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("mcp_config").await.unwrap();

    // One statement changes the source of 251 servers: three notifications (100, 100, 51).
    let changed = app
        .authed(Method::PUT, &format!("/api/v1/sources/{source}"), &token)
        .json(
            &json!({"type": "box", "source_metadata": {"client_id": "other1",
            "client_secret": "box-secret", "subject_type": "enterprise", "subject_id": "42"}}),
        )
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success());
    let batches = drain(&mut listener).await;
    let mut sizes: Vec<usize> = batches.iter().map(|b| b.split(',').count()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [51, 100, 100], "{batches:?}");
    let mut named: Vec<&str> = batches.iter().flat_map(|b| b.split(',')).collect();
    named.sort_unstable();
    named.dedup();
    assert_eq!(named.len(), 251, "every server once");
    assert!(named.contains(&server["id"].as_str().unwrap()));

    // Deleting them all in one statement: again per hundred.
    sqlx::query("delete from mcp_servers where name like 'bulk %'")
        .execute(&pool)
        .await
        .unwrap();
    let batches = drain(&mut listener).await;
    let ids: usize = batches.iter().map(|b| b.split(',').count()).sum();
    assert!(
        batches.len() <= 6,
        "a few notifications, not 250: {}",
        batches.len()
    );
    assert!(ids >= 250, "{ids}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn each_serving_change_notifies_its_server(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("mcp_config").await.unwrap();
    let token = app.user_token("ada@example.com").await;
    let source = app.source(&token, &outlook("s")).await;
    let other_source = app.source(&token, &box_source()).await;

    let server = app.server(&token, "a", &[&source]).await;
    let id = server["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/mcp-servers/{id}");
    assert_eq!(
        next(&mut listener).await,
        id,
        "created (with its source, in one transaction: one notification)"
    );

    let steps: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::PUT, path.clone(), Some(json!({"name": "renamed"}))),
        (Method::PUT, format!("{path}/sources/{other_source}"), None),
        (
            Method::DELETE,
            format!("{path}/sources/{other_source}"),
            None,
        ),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"source_ids": [other_source]})),
        ),
        (
            Method::PUT,
            format!("/api/v1/sources/{other_source}"),
            Some(box_source()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/sources/{other_source}"),
            None,
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/restore"), None),
    ];
    for (method, step_path, body) in steps {
        let mut request = app.authed(method.clone(), &step_path, &token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert!(
            request.send().await.unwrap().status().is_success(),
            "{method} {step_path}"
        );
        assert_eq!(next(&mut listener).await, id, "{method} {step_path}");
        // A transaction's identical notifications arrive once; drain any extra of this step.
        while let Ok(Ok(Some(extra))) =
            tokio::time::timeout(Duration::from_millis(50), listener.try_recv()).await
        {
            assert_eq!(extra.payload(), id);
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_rolled_back_change_notifies_nobody(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let first = app.server(&token, "first", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = app.server(&token, "second", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("mcp_config").await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("update mcp_servers set name = 'never' where id = $1::uuid")
        .bind(&first)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // Not seen before commit: the notification of an open transaction waits for its commit.
    let mut open = pool.begin().await.unwrap();
    sqlx::query("update mcp_servers set name = 'later' where id = $1::uuid")
        .bind(&second)
        .execute(&mut *open)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.recv())
            .await
            .is_err(),
        "nothing before commit"
    );
    open.commit().await.unwrap();

    assert_eq!(
        next(&mut listener).await,
        second,
        "the first notification is the committed change, not the rolled-back one"
    );
}
