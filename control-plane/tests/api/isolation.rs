//! Tenant isolation: user B calling every route with user A's ids gets 404, exactly as for ids
//! that do not exist, and A's data is unchanged afterwards.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{assert_error, box_source, outlook, snapshot, spawn_app};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn another_user_s_sources_and_servers_behave_as_if_they_did_not_exist(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;
    let source = app.source(&ada, &outlook("ada-secret")).await;
    let server = app.server(&ada, "ada's", &[&source]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = app.server(&ada, "ada's old", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{deleted}"),
        &ada,
    )
    .await;
    let bobs_source = app.source(&bob, &box_source()).await;
    let bobs_server = app.server(&bob, "bob's", &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(&pool).await;

    let missing = uuid::Uuid::new_v4().to_string();
    let calls = |foreign_source: &str,
                 foreign_server: &str,
                 deleted_server: &str|
     -> Vec<(Method, String, Option<Value>)> {
        vec![
            (
                Method::GET,
                format!("/api/v1/sources/{foreign_source}"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/sources/{foreign_source}"),
                Some(outlook("stolen")),
            ),
            (
                Method::DELETE,
                format!("/api/v1/sources/{foreign_source}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/mcp-servers/{foreign_server}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/mcp-servers/{deleted_server}?include_deleted=true"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/mcp-servers/{foreign_server}"),
                Some(json!({"name": "mine now"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/mcp-servers/{foreign_server}"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/mcp-servers/{deleted_server}/restore"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/mcp-servers/{foreign_server}/sources/{bobs_source}"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/mcp-servers/{foreign_server}/sources/{foreign_source}"),
                None,
            ),
            (
                Method::DELETE,
                format!("/api/v1/mcp-servers/{foreign_server}/sources/{foreign_source}"),
                None,
            ),
            // Bob's own server with Ada's source: attach, replace, create.
            (
                Method::PUT,
                format!("/api/v1/mcp-servers/{bobs_server}/sources/{foreign_source}"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/v1/mcp-servers/{bobs_server}"),
                Some(json!({"source_ids": [foreign_source]})),
            ),
            (
                Method::POST,
                "/api/v1/mcp-servers".to_owned(),
                Some(json!({"name": "x", "source_ids": [foreign_source]})),
            ),
        ]
    };

    let foreign = calls(&source, &server, &deleted);
    let nonexistent = calls(&missing, &missing, &missing);
    for ((method, path, body), (_, missing_path, _)) in foreign.into_iter().zip(nonexistent) {
        let mut request = app.authed(method.clone(), &path, &bob);
        let mut control = app.authed(method.clone(), &missing_path, &bob);
        if let Some(body) = body {
            request = request.json(&body);
            control = control.json(&body);
        }
        let response = request.send().await.unwrap();
        let control = control.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let (status, body) = (control.status(), control.text().await.unwrap());
        assert_eq!(
            (response.status(), response.text().await.unwrap()),
            (status, body),
            "{method} {path} looks exactly like a missing id"
        );
    }

    let bobs_sources: Value = app.json(Method::GET, "/api/v1/sources", &bob).await;
    assert_eq!(bobs_sources["total"], 1);
    let bobs_servers: Value = app
        .json(
            Method::GET,
            "/api/v1/mcp-servers?include_deleted=true",
            &bob,
        )
        .await;
    assert_eq!(bobs_servers["total"], 1);

    // Bob's own server was left as it was by the refused changes; so was everything of Ada's.
    let after = snapshot(&pool).await;
    assert_eq!(before, after, "nothing changed");
    let links: i64 = sqlx::query_scalar("select count(*) from mcp_server_sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(links, 1);
    assert_error(
        app.send(Method::GET, &format!("/api/v1/mcp-servers/{server}"), &bob)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
