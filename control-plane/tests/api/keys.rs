//! Access keys and the audit log through the REST API: lifecycle, validation, limits, owner
//! isolation, listing and summarising calls, retention.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn setup(app: &TestApp) -> (String, String) {
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "s", &[]).await;
    (token, server["id"].as_str().unwrap().to_owned())
}

async fn create_key(app: &TestApp, token: &str, server: &str, body: &Value) -> reqwest::Response {
    app.send_json(
        Method::POST,
        &format!("/api/v1/mcp-servers/{server}/keys"),
        token,
        body,
    )
    .await
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_key_is_shown_once_listed_without_itself_and_revoked(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (token, server) = setup(&app).await;
    let expires = (Utc::now() + Duration::days(30)).to_rfc3339();

    let response = create_key(
        &app,
        &token,
        &server,
        &json!({"name": " ChatGPT ", "expires_at": expires}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("mcpk_") && key.len() == 48, "{key}");
    assert_eq!(created["name"], "ChatGPT");
    assert_eq!(created["status"], "active");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let stored: Vec<u8> = sqlx::query_scalar("select key_hash from mcp_server_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        stored,
        shared::access_key::hash(key),
        "only the hash is stored"
    );

    let path = format!("/api/v1/mcp-servers/{server}/keys");
    let listed = app.json(Method::GET, &path, &token).await;
    let text = listed.to_string();
    assert!(!text.contains(key), "the key is never shown again");
    assert_eq!(listed["items"][0]["id"], created["id"]);
    assert_eq!(listed["items"][0]["last_used_at"], Value::Null);

    let key_path = format!("{path}/{}", created["id"].as_str().unwrap());
    for _ in 0..2 {
        let response = app.send(Method::DELETE, &key_path, &token).await;
        assert_eq!(
            response.status(),
            StatusCode::NO_CONTENT,
            "revoking is idempotent"
        );
    }
    let listed = app.json(Method::GET, &path, &token).await;
    assert_eq!(listed["items"][0]["status"], "revoked");
    assert!(listed["items"][0]["revoked_at"].is_string());

    let unknown = format!("{path}/{}", uuid::Uuid::new_v4());
    assert_error(
        app.send(Method::DELETE, &unknown, &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn bad_keys_requests_are_named_and_the_count_is_capped(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, server) = setup(&app).await;
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let far = (Utc::now() + Duration::days(6 * 366)).to_rfc3339();
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "a\u{7}b"}), "name"),
        (json!({"name": "k", "expires_at": past}), "expires_at"),
        (json!({"name": "k", "expires_at": far}), "expires_at"),
    ] {
        let body = assert_error(
            create_key(&app, &token, &server, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["fields"][0]["field"], field, "{body}");
    }
    assert_error(
        create_key(
            &app,
            &token,
            &server,
            &json!({"name": "k", "expires_at": "tomorrow"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    for n in 0..20 {
        let response = create_key(&app, &token, &server, &json!({"name": format!("k{n}")})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_error(
        create_key(&app, &token, &server, &json!({"name": "one too many"})).await,
        StatusCode::CONFLICT,
        "key_limit_reached",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn keys_and_calls_of_another_user_do_not_exist(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (ada, server) = setup(&app).await;
    let created: Value = create_key(&app, &ada, &server, &json!({"name": "k"}))
        .await
        .json()
        .await
        .unwrap();
    let bob = app.user_token("bob@example.com").await;
    let keys = format!("/api/v1/mcp-servers/{server}/keys");
    let key = format!("{keys}/{}", created["id"].as_str().unwrap());
    for (method, path) in [
        (Method::GET, keys.clone()),
        (Method::DELETE, key),
        (Method::GET, format!("/api/v1/mcp-servers/{server}/calls")),
        (
            Method::GET,
            format!("/api/v1/mcp-servers/{server}/calls/summary"),
        ),
    ] {
        assert_error(
            app.send(method, &path, &bob).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert_error(
        create_key(&app, &bob, &server, &json!({"name": "mine now"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let revoked: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select revoked_at from mcp_server_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(revoked.is_none(), "bob's DELETE changed nothing");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn servers_are_private_unless_made_public(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let server = app.server(&token, "s", &[]).await;
    assert_eq!(server["public"], false, "private by default");
    let path = format!("/api/v1/mcp-servers/{}", server["id"].as_str().unwrap());
    let updated: Value = app
        .send_json(Method::PUT, &path, &token, &json!({"public": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["public"], true);
    assert_eq!(updated["name"], "s");
    let created: Value = app
        .send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &token,
            &json!({"name": "open", "public": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["public"], true);
}

/// Inserts an audit record as a gateway would.
async fn record(
    pool: &PgPool,
    server: &str,
    minutes_ago: i64,
    tool: &str,
    status: &str,
    duration_ms: i32,
    sources: Value,
) {
    sqlx::query(
        "insert into tool_calls (server_id, called_at, tool, argument, status, error_class, \
         result_count, duration_ms, sources) \
         values ($1::uuid, now() - make_interval(mins => $2::int), $3, 'q', $4, \
                 case when $4 = 'error' then 'all_sources_failed' end, 1, $5, $6)",
    )
    .bind(server)
    .bind(minutes_ago as i32)
    .bind(tool)
    .bind(status)
    .bind(duration_ms)
    .bind(sources)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn calls_are_listed_filtered_and_summarised(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (token, server) = setup(&app).await;
    let a = uuid::Uuid::new_v4();
    let ok = |ms: u64| json!([{"source_id": a, "type": "box", "outcome": "ok", "latency_ms": ms, "results": 1}]);
    let failed = json!([{"source_id": a, "type": "box", "outcome": "timeout", "latency_ms": 8000, "results": 0}]);
    for (minutes, tool, status, ms, sources) in [
        (1, "search", "ok", 100, ok(90)),
        (2, "search", "ok", 200, ok(190)),
        (3, "search", "error", 8000, failed.clone()),
        (4, "fetch", "ok", 50, ok(40)),
        (60 * 30, "search", "ok", 10, ok(5)),
    ] {
        record(&pool, &server, minutes, tool, status, ms, sources).await;
    }

    let base = format!("/api/v1/mcp-servers/{server}/calls");
    let all = app.json(Method::GET, &base, &token).await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["items"][0]["duration_ms"], 100, "newest first");
    assert_eq!(all["items"][0]["sources"][0]["outcome"], "ok");
    let errors = app
        .json(
            Method::GET,
            &format!("{base}?status=error&tool=search"),
            &token,
        )
        .await;
    assert_eq!(errors["total"], 1);
    assert_eq!(errors["items"][0]["error_class"], "all_sources_failed");
    let since = (Utc::now() - Duration::minutes(150))
        .to_rfc3339()
        .replace('+', "%2B");
    let recent = app
        .json(Method::GET, &format!("{base}?from={since}&limit=2"), &token)
        .await;
    assert_eq!(
        (
            recent["total"].as_i64(),
            recent["items"].as_array().unwrap().len()
        ),
        (Some(4), 2)
    );
    for bad in ["tool=delete", "status=meh", "limit=0", "from=yesterday"] {
        let response = app
            .send(Method::GET, &format!("{base}?{bad}"), &token)
            .await;
        assert!(
            response.status().is_client_error(),
            "{bad}: {}",
            response.status()
        );
    }

    let summary = app
        .json(Method::GET, &format!("{base}/summary"), &token)
        .await;
    assert_eq!(
        summary["calls"], 4,
        "the last 24 hours by default: {summary}"
    );
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["error_rate"], 0.25);
    let search = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "search")
        .unwrap();
    assert_eq!(search["calls"], 3);
    assert_eq!(search["p50_ms"], 200.0);
    let source = &summary["sources"][0];
    assert_eq!(source["name"], a.to_string());
    assert_eq!(source["source_type"], "box");
    assert_eq!(
        (source["calls"].as_i64(), source["errors"].as_i64()),
        (Some(4), Some(1))
    );
    let inverted = format!(
        "{base}/summary?from={}&to={}",
        Utc::now().to_rfc3339().replace('+', "%2B"),
        (Utc::now() - Duration::hours(1))
            .to_rfc3339()
            .replace('+', "%2B")
    );
    assert_error(
        app.send(Method::GET, &inverted, &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn records_past_retention_are_purged(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (_, server) = setup(&app).await;
    record(&pool, &server, 60 * 24 * 31, "search", "ok", 1, json!([])).await;
    record(&pool, &server, 60 * 24 * 29, "search", "ok", 1, json!([])).await;
    let cutoff = Utc::now() - Duration::days(30);
    let purged = control_plane::db::calls::purge_before(&pool, cutoff)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left: i64 = sqlx::query_scalar("select count(*) from tool_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
}

/// The audit table has no foreign key (inserts stay cheap, see migration 0005): a trigger
/// removes a server's calls when the server is deleted for good, by an administrator or with
/// its owner's account. Other servers' calls stay.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn calls_go_with_their_server_and_with_their_owners_account(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ada = app.user_token("ada@example.com").await;
    let bob = app.user_token("bob@example.com").await;
    let mut ids = Vec::new();
    for (token, name) in [(&ada, "a1"), (&ada, "a2"), (&bob, "b1")] {
        let id = app.server(token, name, &[]).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for minutes in [1, 2] {
            record(&pool, &id, minutes, "search", "ok", 1, json!([])).await;
        }
        ids.push(id);
    }
    let calls_of = |server: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from tool_calls where server_id = $1::uuid",
            )
            .bind(server)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    app.grant_admin("bob@example.com").await;
    let admin = app
        .token_for("bob@example.com", crate::helpers::PASSWORD)
        .await;
    let response = app
        .send(
            Method::DELETE,
            &format!("/api/v1/admin/mcp-servers/{}", ids[0]),
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(calls_of(ids[0].clone()).await, 0, "hard-deleted server");
    assert_eq!(calls_of(ids[1].clone()).await, 2);

    let response = app.send(Method::DELETE, "/api/v1/me", &ada).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(calls_of(ids[1].clone()).await, 0, "deleted account");
    assert_eq!(
        calls_of(ids[2].clone()).await,
        2,
        "another owner's calls stay"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn revoked_keys_are_bounded_per_server_and_forgotten_after_thirty_days(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (token, server) = setup(&app).await;
    // 199 keys revoked 29 days ago (as if created and revoked in a loop) and one recent one.
    // Not yet 30 days: the app's own housekeeping, whose first round may run at any moment,
    // must not purge them while the limit is checked.
    sqlx::query(
        "insert into mcp_server_keys (server_id, organization_id, name, prefix, key_hash, revoked_at) \
         select s.id, s.organization_id, 'old', 'mcpk_x', sha256(i::text::bytea), now() - interval '29 days' \
         from mcp_servers s, generate_series(1, 199) i where s.id = $1::uuid",
    )
    .bind(&server)
    .execute(&pool)
    .await
    .unwrap();
    let response = create_key(&app, &token, &server, &json!({"name": "recent"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_error(
        create_key(&app, &token, &server, &json!({"name": "one too many"})).await,
        StatusCode::CONFLICT,
        "key_limit_reached",
    )
    .await;

    sqlx::query(
        "update mcp_server_keys set revoked_at = now() - interval '40 days' where name = 'old'",
    )
    .execute(&pool)
    .await
    .unwrap();
    control_plane::db::keys::purge_stopped(&pool).await.unwrap();
    // Counted, not taken from the purge's answer: the housekeeping round may have run first.
    let names: Vec<String> =
        sqlx::query_scalar("select name from mcp_server_keys where server_id = $1::uuid")
            .bind(&server)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        names,
        ["recent"],
        "only keys that stopped working over 30 days ago are deleted"
    );
    let response = create_key(&app, &token, &server, &json!({"name": "again"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
