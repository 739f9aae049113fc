//! `/api/v1/mcp-servers` and the endpoint pool: allocation, exhaustion, concurrency, cooldown,
//! restore, wildcards, hard delete, and entries removed from the settings.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{
    PASSWORD, TestApp, assert_error, box_source, outlook, spawn_app, spawn_app_with,
};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn server_crud_round_trip(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let mail = app.source(&token, &outlook("s")).await;
    let files = app.source(&token, &box_source()).await;

    let server = app.server(&token, "  Research  ", &[&mail, &mail]).await;
    assert_eq!(server["name"], "Research");
    assert_eq!(server["endpoint"], "https://mcp1.example.com");
    assert_eq!(server["mcp_url"], "https://mcp1.example.com/mcp");
    assert_eq!(server["source_ids"], json!([mail]), "duplicates collapse");
    assert!(server["deleted_at"].is_null());
    let id = server["id"].as_str().unwrap();
    let path = format!("/api/v1/mcp-servers/{id}");

    let updated: Value = app
        .send_json(
            Method::PUT,
            &path,
            &token,
            &json!({"name": "Renamed", "source_ids": [files]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["source_ids"].clone()),
        (Some("Renamed"), json!([files]))
    );
    assert_eq!(updated["endpoint"], server["endpoint"]);
    let renamed_only: Value = app
        .send_json(Method::PUT, &path, &token, &json!({"name": "Again"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        renamed_only["source_ids"],
        json!([files]),
        "leaving source_ids out keeps them"
    );

    let attached: Value = app
        .json(Method::PUT, &format!("{path}/sources/{mail}"), &token)
        .await;
    assert_eq!(attached["source_ids"], json!([files, mail]));
    let again = app
        .send(Method::PUT, &format!("{path}/sources/{mail}"), &token)
        .await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "attaching twice is harmless"
    );
    let detached: Value = app
        .json(Method::DELETE, &format!("{path}/sources/{files}"), &token)
        .await;
    assert_eq!(detached["source_ids"], json!([mail]));
    assert_error(
        app.send(Method::DELETE, &format!("{path}/sources/{files}"), &token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Deleting a source removes it from the server.
    app.send(Method::DELETE, &format!("/api/v1/sources/{mail}"), &token)
        .await;
    let fetched: Value = app.json(Method::GET, &path, &token).await;
    assert_eq!(fetched["source_ids"], json!([]));

    let endpoint_change = app
        .send_json(
            Method::PUT,
            &path,
            &token,
            &json!({"endpoint": "https://mine.example.com"}),
        )
        .await;
    let body = assert_error(
        endpoint_change,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["fields"][0]["field"], "endpoint");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "a\u{0}b"}),
    ] {
        assert_error(
            app.send_json(Method::PUT, &path, &token, &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_error(
        app.send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &token,
            &json!({"source_ids": []}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let unknown = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &token,
            &json!({"name": "x", "source_ids": [uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "source_not_found").await;

    assert_eq!(
        app.send(Method::DELETE, &path, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.send(Method::GET, &path, &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let deleted: Value = app
        .json(Method::GET, &format!("{path}?include_deleted=true"), &token)
        .await;
    assert!(deleted["deleted_at"].is_string());
    let live: Value = app.json(Method::GET, "/api/v1/mcp-servers", &token).await;
    assert_eq!(live["total"], 0);
    let all: Value = app
        .json(
            Method::GET,
            "/api/v1/mcp-servers?include_deleted=true",
            &token,
        )
        .await;
    assert_eq!(all["total"], 1);
    assert_error(
        app.send(Method::PUT, &format!("{path}/sources/{files}"), &token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.send(Method::DELETE, &path, &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let restored: Value = app
        .json(Method::POST, &format!("{path}/restore"), &token)
        .await;
    assert_eq!(
        restored["endpoint"], "https://mcp1.example.com",
        "its endpoint was still free"
    );
    assert!(restored["deleted_at"].is_null());
    assert_error(
        app.send(Method::POST, &format!("{path}/restore"), &token)
            .await,
        StatusCode::CONFLICT,
        "not_deleted",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_exhausted_pool_is_409_with_advice(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools = "https://only.example.com".to_owned();
    })
    .await;
    let token = app.user_token("ada@example.com").await;
    app.server(&token, "first", &[]).await;
    let bob = app.user_token("bob@example.com").await;
    let refused = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &bob,
            &json!({"name": "second"}),
        )
        .await;
    let body = assert_error(refused, StatusCode::CONFLICT, "pool_exhausted").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_GATEWAY_URL_POOLS")
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn fifty_concurrent_creations_share_ten_endpoints_exactly(pool: PgPool) {
    let hosts: Vec<String> = (1..=10)
        .map(|i| format!("https://mcp{i}.example.com"))
        .collect();
    let app = spawn_app_with(pool.clone(), |s| {
        s.control_plane.mcp_gateway_url_pools = hosts.join(",");
    })
    .await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(app.user_token(&format!("user{i}@example.com")).await);
    }
    // Fire all 50 at once: each task owns its request, the server handles them concurrently.
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let request = app
                .authed(Method::POST, "/api/v1/mcp-servers", &tokens[i % 5])
                .json(&json!({"name": format!("server {i}")}));
            tokio::spawn(request.send())
        })
        .collect();
    let mut responses = Vec::new();
    for handle in handles {
        responses.push(handle.await.unwrap().unwrap());
    }
    let mut created = 0;
    let mut exhausted = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                // Each user may hold two of the ten (FIXED_ENDPOINTS_PER_USER).
                let body: Value = response.json().await.unwrap();
                let code = body["error"]["code"].as_str().unwrap().to_owned();
                assert!(
                    code == "pool_exhausted" || code == "endpoint_share_reached",
                    "{code}"
                );
                exhausted += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, exhausted), (10, 40));
    let held: Vec<String> =
        sqlx::query_scalar("select endpoint_host from mcp_servers where deleted_at is null")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(held.len(), 10);
    assert_eq!(
        held.iter().collect::<HashSet<_>>().len(),
        10,
        "no endpoint is held twice"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_freed_endpoint_goes_to_another_user_only_after_the_cooldown(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://mcp2.example.com".to_owned();
        s.control_plane.endpoint_cooldown_secs = 3600;
    })
    .await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;

    let first = app.server(&ada, "a", &[]).await;
    assert_eq!(first["endpoint"], "https://mcp1.example.com");
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", first["id"].as_str().unwrap()),
        &ada,
    )
    .await;

    let bobs = app.server(&bob, "b", &[]).await;
    assert_eq!(
        bobs["endpoint"], "https://mcp2.example.com",
        "mcp1 is cooling down for strangers"
    );
    let carol = app.user_token("carol@example.com").await;
    let refused = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &carol,
            &json!({"name": "c"}),
        )
        .await;
    assert_error(refused, StatusCode::CONFLICT, "pool_exhausted").await;
    let adas = app.server(&ada, "a2", &[]).await;
    assert_eq!(
        adas["endpoint"], "https://mcp1.example.com",
        "the same user gets it back at once"
    );

    // Once the cooldown has passed (moved into the past here), anyone may have it.
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", adas["id"].as_str().unwrap()),
        &ada,
    )
    .await;
    sqlx::query("update endpoint_releases set released_at = now() - interval '2 hours'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app.server(&carol, "c2", &[]).await["endpoint"],
        "https://mcp1.example.com"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_deleted_account_s_endpoints_cool_down_too(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools = "https://mcp1.example.com".to_owned();
        s.control_plane.endpoint_cooldown_secs = 3600;
    })
    .await;
    let ada = app.user_token("ada@example.com").await;
    app.server(&ada, "a", &[]).await;
    app.send(Method::DELETE, "/api/v1/me", &ada).await;
    let bob = app.user_token("bob@example.com").await;
    let refused = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &bob,
            &json!({"name": "b"}),
        )
        .await;
    assert_error(refused, StatusCode::CONFLICT, "pool_exhausted").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn restoring_after_the_endpoint_was_taken_gets_another_or_409(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://mcp2.example.com".to_owned();
        s.control_plane.endpoint_cooldown_secs = 0;
    })
    .await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;
    let server = app.server(&ada, "a", &[]).await;
    let path = format!("/api/v1/mcp-servers/{}", server["id"].as_str().unwrap());
    app.send(Method::DELETE, &path, &ada).await;
    assert_eq!(
        app.server(&bob, "b", &[]).await["endpoint"],
        "https://mcp1.example.com"
    );

    let restored: Value = app
        .json(Method::POST, &format!("{path}/restore"), &ada)
        .await;
    assert_eq!(restored["endpoint"], "https://mcp2.example.com");

    app.send(Method::DELETE, &path, &ada).await;
    let carol = app.user_token("carol@example.com").await;
    app.server(&carol, "c", &[]).await;
    let refused = app
        .send(Method::POST, &format!("{path}/restore"), &ada)
        .await;
    assert_error(refused, StatusCode::CONFLICT, "pool_exhausted").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn wildcard_entries_generate_unguessable_subdomains(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://fixed.example.com,https://*.agents.example.com".to_owned();
    })
    .await;
    let token = app.user_token("ada@example.com").await;
    assert_eq!(
        app.server(&token, "fixed", &[]).await["endpoint"],
        "https://fixed.example.com",
        "fixed entries first"
    );
    let mut seen = HashSet::new();
    for i in 0..5 {
        let server = app.server(&token, &format!("w{i}"), &[]).await;
        let endpoint = server["endpoint"].as_str().unwrap();
        let label = endpoint
            .strip_prefix("https://")
            .and_then(|h| h.strip_suffix(".agents.example.com"))
            .expect(endpoint);
        assert!(
            label.len() >= 12
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{label}"
        );
        assert_eq!(server["mcp_url"], format!("{endpoint}/mcp"));
        assert!(seen.insert(label.to_owned()));
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn admins_see_pool_status_and_orphans_and_can_hard_delete(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ada = app.user_token("ada@example.com").await;
    let server = app.server(&ada, "a", &[]).await;
    let other = app.server(&ada, "b", &[]).await;
    app.user_token("root@example.com").await;
    app.grant_admin("root@example.com").await;
    let root = app.token_for("root@example.com", PASSWORD).await;

    assert_error(
        app.send(Method::GET, "/api/v1/admin/pool", &ada).await,
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;
    let status: Value = app.json(Method::GET, "/api/v1/admin/pool", &root).await;
    assert_eq!(
        (
            status["total"].as_i64(),
            status["used"].as_i64(),
            status["free"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(status["orphaned"], json!([]));

    // The same database behind a control plane whose pool no longer lists mcp1.
    let shrunk = spawn_app_with(pool.clone(), |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp2.example.com,https://mcp3.example.com".to_owned();
    })
    .await;
    let status: Value = shrunk
        .send(Method::GET, "/api/v1/admin/pool", &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["orphaned"],
        json!([{"server_id": server["id"], "endpoint": "https://mcp1.example.com"}])
    );
    assert_eq!(
        (status["total"].as_i64(), status["used"].as_i64()),
        (Some(2), Some(1))
    );

    let path = format!(
        "/api/v1/admin/mcp-servers/{}",
        other["id"].as_str().unwrap()
    );
    assert_error(
        app.send(Method::DELETE, &path, &ada).await,
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", other["id"].as_str().unwrap()),
        &ada,
    )
    .await;
    let releases = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from endpoint_releases")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(releases().await, 1);
    assert_eq!(
        app.send(Method::DELETE, &path, &root).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        releases().await,
        1,
        "hard-deleting a soft-deleted server frees nothing twice"
    );
    assert_error(
        app.send(Method::DELETE, &path, &root).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let live = format!(
        "/api/v1/admin/mcp-servers/{}",
        server["id"].as_str().unwrap()
    );
    assert_eq!(
        app.send(Method::DELETE, &live, &root).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        releases().await,
        2,
        "hard-deleting a live server releases its endpoint"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn one_account_cannot_drain_the_pool_by_creating_and_deleting(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools = (1..=5)
            .map(|i| format!("https://mcp{i}.example.com"))
            .collect::<Vec<_>>()
            .join(",");
        s.control_plane.endpoint_cooldown_secs = 3600;
        s.control_plane.max_servers_per_user = 2;
    })
    .await;
    let mallory = app.user_token("mallory@example.com").await;
    let first = app.server(&mallory, "1", &[]).await;
    app.server(&mallory, "2", &[]).await;
    let third = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &mallory,
            &json!({"name": "3"}),
        )
        .await;
    assert_error(third, StatusCode::CONFLICT, "server_limit_reached").await;

    // Deleting and creating again takes back the endpoint reserved for mallory, not a new one.
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", first["id"].as_str().unwrap()),
        &mallory,
    )
    .await;
    let again = app.server(&mallory, "1 again", &[]).await;
    assert_eq!(again["endpoint"], first["endpoint"]);

    let ada = app.user_token("ada@example.com").await;
    for _ in 0..2 {
        app.server(&ada, "a", &[]).await;
    }
    let status: Value = {
        app.grant_admin("ada@example.com").await;
        let admin = app.token_for("ada@example.com", PASSWORD).await;
        app.json(Method::GET, "/api/v1/admin/pool", &admin).await
    };
    assert_eq!(
        status["free"], 1,
        "mallory holds at most two endpoints, live or cooling"
    );
}

/// Creates servers for `token` until one is refused; their ids and the refusal's code.
async fn create_until_refused(app: &TestApp, token: &str) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    loop {
        let response = app
            .send_json(
                Method::POST,
                "/api/v1/mcp-servers",
                token,
                &json!({"name": "hog", "source_ids": []}),
            )
            .await;
        let body: Value = response.json().await.unwrap();
        match body["id"].as_str() {
            Some(id) => ids.push(id.to_owned()),
            None => return (ids, body["error"]["code"].as_str().unwrap().to_owned()),
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn one_account_cannot_lock_another_out_of_the_fixed_pool(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools = (1..=9)
            .map(|i| format!("https://mcp{i}.example.com"))
            .collect::<Vec<_>>()
            .join(",");
    })
    .await;
    let hog = app.user_token("hog@example.com").await;
    let (ids, refusal) = create_until_refused(&app, &hog).await;
    assert_eq!(ids.len(), 2, "the default share is two fixed endpoints");
    assert_eq!(refusal, "endpoint_share_reached");
    for id in &ids {
        app.send(Method::DELETE, &format!("/api/v1/mcp-servers/{id}"), &hog)
            .await;
    }
    let (again, refusal) = create_until_refused(&app, &hog).await;
    assert_eq!(
        (again.len(), refusal.as_str()),
        (2, "endpoint_share_reached"),
        "deleting frees nothing more for the hog: its endpoints are reserved for it"
    );

    let ada = app.user_token("ada@example.com").await;
    let (adas, _) = create_until_refused(&app, &ada).await;
    assert_eq!(adas.len(), 2, "the other user gets a full share");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_share_never_covers_the_whole_fixed_pool(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://mcp2.example.com".to_owned();
        s.control_plane.fixed_endpoints_per_user = 10;
    })
    .await;
    let hog = app.user_token("hog@example.com").await;
    let (ids, refusal) = create_until_refused(&app, &hog).await;
    assert_eq!((ids.len(), refusal.as_str()), (1, "endpoint_share_reached"));
    let ada = app.user_token("ada@example.com").await;
    assert_eq!(
        app.server(&ada, "a", &[]).await["endpoint"],
        "https://mcp2.example.com"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn past_its_share_a_user_gets_wildcard_names(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://mcp2.example.com,https://mcp3.example.com,https://*.agents.example.com"
                .to_owned();
    })
    .await;
    let ada = app.user_token("ada@example.com").await;
    let endpoints: Vec<Value> = {
        let mut all = Vec::new();
        for name in ["1", "2", "3"] {
            all.push(app.server(&ada, name, &[]).await["endpoint"].clone());
        }
        all
    };
    assert_eq!(
        endpoints[..2],
        [
            json!("https://mcp1.example.com"),
            json!("https://mcp2.example.com")
        ]
    );
    assert!(
        endpoints[2]
            .as_str()
            .unwrap()
            .ends_with(".agents.example.com"),
        "{endpoints:?}"
    );
    let bob = app.user_token("bob@example.com").await;
    assert_eq!(
        app.server(&bob, "b", &[]).await["endpoint"],
        "https://mcp3.example.com"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn restoring_does_not_take_a_fixed_endpoint_beyond_the_share(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.control_plane.endpoint_cooldown_secs = 0).await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;
    let first = app.server(&ada, "1", &[]).await;
    app.server(&ada, "2", &[]).await;
    let path = format!("/api/v1/mcp-servers/{}", first["id"].as_str().unwrap());
    app.send(Method::DELETE, &path, &ada).await;
    let bobs = app.server(&bob, "b", &[]).await;
    assert_eq!(bobs["endpoint"], first["endpoint"]);
    app.server(&ada, "3", &[]).await;
    // Ada holds two again; her first server's old endpoint comes free.
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", bobs["id"].as_str().unwrap()),
        &bob,
    )
    .await;
    assert_error(
        app.send(Method::POST, &format!("{path}/restore"), &ada)
            .await,
        StatusCode::CONFLICT,
        "endpoint_share_reached",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_admin_can_end_the_cooldowns_of_one_user_s_endpoints(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.control_plane.mcp_gateway_url_pools =
            "https://mcp1.example.com,https://mcp2.example.com".to_owned();
    })
    .await;
    let hog = app.user_token("hog@example.com").await;
    let ada = app.user_token("ada@example.com").await;
    let held = app.server(&hog, "h", &[]).await;
    app.server(&ada, "a", &[]).await;
    app.send(
        Method::DELETE,
        &format!("/api/v1/mcp-servers/{}", held["id"].as_str().unwrap()),
        &hog,
    )
    .await;
    let bob = app.user_token("bob@example.com").await;
    let (_, refusal) = create_until_refused(&app, &bob).await;
    assert_eq!(refusal, "pool_exhausted", "mcp1 is reserved for the hog");
    let me: Value = app.json(Method::GET, "/api/v1/me", &hog).await;
    let path = format!(
        "/api/v1/admin/users/{}/endpoint-reservations",
        me["id"].as_str().unwrap()
    );
    assert_error(
        app.send(Method::DELETE, &path, &hog).await,
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;

    app.user_token("root@example.com").await;
    app.grant_admin("root@example.com").await;
    let root = app.token_for("root@example.com", PASSWORD).await;
    let freed: Value = app.json(Method::DELETE, &path, &root).await;
    assert_eq!(freed, json!({"freed": ["mcp1.example.com"]}));
    assert_eq!(
        app.server(&bob, "b", &[]).await["endpoint"],
        "https://mcp1.example.com",
        "no longer reserved for the hog"
    );
    let again: Value = app.json(Method::DELETE, &path, &root).await;
    assert_eq!(again, json!({"freed": []}));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn endpoint_is_refused_even_as_null_and_sources_are_capped(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let refused = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &token,
            &json!({"name": "x", "endpoint": null}),
        )
        .await;
    let body = assert_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["fields"][0]["field"], "endpoint");

    let server = app.server(&token, "full", &[]).await;
    let server_id: uuid::Uuid = server["id"].as_str().unwrap().parse().unwrap();
    let user_id: uuid::Uuid = sqlx::query_scalar("select organization_id from mcp_servers")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "with s as (insert into sources (organization_id, type) select $1, 'box' from generate_series(1, 100) returning id, organization_id) \
         insert into mcp_server_sources (server_id, source_id, organization_id) select $2, id, organization_id from s",
    )
    .bind(user_id)
    .bind(server_id)
    .execute(&pool)
    .await
    .unwrap();
    let extra = app.source(&token, &box_source()).await;
    let refused = app
        .send(
            Method::PUT,
            &format!("/api/v1/mcp-servers/{server_id}/sources/{extra}"),
            &token,
        )
        .await;
    assert_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}
