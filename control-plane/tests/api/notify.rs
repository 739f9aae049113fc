//! Every change that affects what the gateway serves sends `NOTIFY mcp_config` naming the
//! server, after commit and never on rollback.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::{PgPool, postgres::PgListener};

use crate::helpers::{box_source, outlook, spawn_app};

/// The next notification's payload, waiting at most two seconds.
async fn next(listener: &mut PgListener) -> String {
    let notification = tokio::time::timeout(Duration::from_secs(2), listener.recv())
        .await
        .expect("a notification arrives")
        .expect("listener works");
    assert_eq!(notification.channel(), "mcp_config");
    notification.payload().to_owned()
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
