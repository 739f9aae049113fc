//! `postgres` sources through the REST API: structured fields validated field by field (every
//! bad one named, down to `tables[1].text_columns`), the port stored as a number, hosts only
//! from `POSTGRES_ALLOWED_HOSTS`, weak TLS only for `POSTGRES_ALLOW_INSECURE_HOSTS`, the
//! password write-only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{assert_error, snapshot, spawn_app, spawn_app_with};

const PASSWORD: &str = "db-password-never-shown-0815";

fn source(host: &str, sslmode: &str) -> Value {
    json!({"type": "postgres", "source_metadata": {
        "host": host, "port": "6543", "database": "crm", "user": "agent_reader",
        "password": PASSWORD, "sslmode": sslmode,
        "tables": [{"table": "public.tickets", "id_column": "id", "title_column": "subject",
                    "text_columns": ["subject", "body"],
                    "url_template": "https://crm.example.com/tickets/{id}"}]}})
}

fn fields(body: &Value) -> Vec<String> {
    body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// The error body of a `POST /sources` that must be refused with 422.
async fn refused(app: &crate::helpers::TestApp, token: &str, body: &Value) -> Value {
    let response = app
        .send_json(Method::POST, "/api/v1/sources", token, body)
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await
}

async fn app(pool: PgPool) -> crate::helpers::TestApp {
    spawn_app_with(pool, |s| {
        s.sources.postgres_allowed_hosts =
            vec!["db.internal.example".to_owned(), "10.0.0.0/24".to_owned()];
        s.sources.postgres_allow_insecure_hosts = vec!["10.0.0.5".to_owned()];
    })
    .await
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_postgres_source_keeps_its_port_as_a_number_and_never_shows_its_password(pool: PgPool) {
    let app = app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let created = app
        .send_json(
            Method::POST,
            "/api/v1/sources",
            &token,
            &source("DB.internal.example", "require"),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let metadata = &created["source_metadata"];
    assert_eq!(metadata["host"], "db.internal.example");
    assert_eq!(metadata["port"], 6543);
    assert_eq!(
        metadata["tables"][0]["text_columns"],
        json!(["subject", "body"])
    );
    assert_eq!(created["secrets"], json!({"password": true}));
    assert!(!created.to_string().contains(PASSWORD));
    let stored: String = sqlx::query_scalar("select source_metadata::text from sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !stored.contains(PASSWORD),
        "the password is only in the sealed secrets"
    );

    // Defaults: port 5432, sslmode require; a private address inside a listed block, with
    // weak TLS where that address is listed for it.
    let mut body = source("10.0.0.5", "disable");
    body["source_metadata"]
        .as_object_mut()
        .unwrap()
        .remove("port");
    let id = app.source(&token, &body).await;
    let fetched = app
        .json(Method::GET, &format!("/api/v1/sources/{id}"), &token)
        .await;
    assert_eq!(fetched["source_metadata"]["port"], 5432);
    assert_eq!(fetched["source_metadata"]["sslmode"], "disable");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_bad_postgres_field_is_named_and_nothing_is_stored(pool: PgPool) {
    let app = app(pool.clone()).await;
    let token = app.user_token("ada@example.com").await;
    let before = snapshot(&pool).await;
    let body = json!({"type": "postgres", "source_metadata": {
        "host": "10.0.1.9", "port": 70000, "database": "crm db", "user": "r",
        "sslmode": "verify-ca",
        "tables": [
            {"table": "public.tickets", "id_column": "id", "title_column": "subject", "text_columns": ["body"]},
            {"table": "tickets", "id_column": "id\"; drop table x; --", "title_column": "t",
             "text_columns": [], "url_template": "javascript:alert(1)", "where": "1=1"},
            "public.users"]}});
    let error = refused(&app, &token, &body).await;
    assert_eq!(
        fields(&error),
        [
            "source_metadata.host",
            "source_metadata.port",
            "source_metadata.database",
            "source_metadata.password",
            "source_metadata.sslmode",
            "source_metadata.tables[1].where",
            "source_metadata.tables[1].table",
            "source_metadata.tables[1].id_column",
            "source_metadata.tables[1].text_columns",
            "source_metadata.tables[1].url_template",
            "source_metadata.tables[2]",
        ]
    );
    // Weak TLS for a host not listed for it; the sslmode is named.
    let error = refused(&app, &token, &source("db.internal.example", "prefer")).await;
    assert_eq!(fields(&error), ["source_metadata.sslmode"]);
    assert_eq!(snapshot(&pool).await, before, "nothing stored");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn by_default_no_postgres_host_is_allowed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.user_token("ada@example.com").await;
    for host in [
        "db.example.com",
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "8.8.8.8",
    ] {
        let error = refused(&app, &token, &source(host, "require")).await;
        assert_eq!(fields(&error), ["source_metadata.host"], "{host}");
        assert!(
            error
                .to_string()
                .contains("POSTGRES_ALLOWED_HOSTS lists none"),
            "{error}"
        );
    }
}

/// The status and error body of a request that must be refused with 422.
async fn refused_with(
    app: &crate::helpers::TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> Value {
    let response = app.send_json(method, path, token, body).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_products_own_database_is_refused_even_where_the_list_allows_its_host(pool: PgPool) {
    // `./dev up`'s settings: loopback listed, without TLS; the product's database on loopback.
    let port = pool.connect_options().get_port();
    let app = spawn_app_with(pool.clone(), |s| {
        let local = ["127.0.0.1", "localhost", "::1"]
            .map(str::to_owned)
            .to_vec();
        s.sources.postgres_allowed_hosts = local.clone();
        s.sources.postgres_allow_insecure_hosts = local;
        s.common.database_url = format!("postgres://postgres@127.0.0.1:{port}/mcp_gateway").into();
    })
    .await;
    let token = app.user_token("ada@example.com").await;
    let at = |host: &str, port: u16| {
        let mut body = source(host, "disable");
        body["source_metadata"]["port"] = port.into();
        body["source_metadata"]["user"] = "postgres".into();
        body
    };
    for host in ["127.0.0.1", "localhost", "::1", "LOCALHOST."] {
        let error = refused(&app, &token, &at(host, port)).await;
        assert_eq!(fields(&error), ["source_metadata.host"], "{host}: {error}");
        assert!(
            error.to_string().contains("this product's own database"),
            "{host}: {error}"
        );
    }
    // Another server on the same host is a source like any other, and cannot be moved there.
    let other = at("127.0.0.1", if port == 5432 { 5433 } else { 5432 });
    let id = app.source(&token, &other).await;
    let error = refused_with(
        &app,
        &token,
        Method::PUT,
        &format!("/api/v1/sources/{id}"),
        &at("localhost", port),
    )
    .await;
    assert_eq!(fields(&error), ["source_metadata.host"], "{error}");
    assert!(error.to_string().contains("this product's own database"));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn system_schemas_cannot_be_searched(pool: PgPool) {
    let app = app(pool).await;
    let token = app.user_token("ada@example.com").await;
    let mut body = source("db.internal.example", "require");
    body["source_metadata"]["tables"] = json!([
        {"table": "public.tickets", "id_column": "id", "title_column": "subject", "text_columns": ["body"]},
        {"table": "pg_catalog.pg_authid", "id_column": "oid", "title_column": "rolname", "text_columns": ["rolpassword"]},
        {"table": "information_schema.tables", "id_column": "table_name", "title_column": "table_name", "text_columns": ["table_name"]},
        {"table": "pg_toast.pg_toast_2619", "id_column": "chunk_id", "title_column": "chunk_id", "text_columns": ["chunk_data"]},
    ]);
    let error = refused(&app, &token, &body).await;
    assert_eq!(
        fields(&error),
        [
            "source_metadata.tables[1].table",
            "source_metadata.tables[2].table",
            "source_metadata.tables[3].table",
        ]
    );
    assert!(error.to_string().contains("system schema"), "{error}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_allowed_host_may_be_allowed_for_one_port_only(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.sources.postgres_allowed_hosts = vec![
            "db.internal.example:5432".to_owned(),
            "10.0.0.0/24:6543".to_owned(),
        ];
    })
    .await;
    let token = app.user_token("ada@example.com").await;
    let at = |host: &str, port: u16| {
        let mut body = source(host, "require");
        body["source_metadata"]["port"] = port.into();
        body
    };
    app.source(&token, &at("db.internal.example", 5432)).await;
    app.source(&token, &at("10.0.0.7", 6543)).await;
    for (host, port) in [("db.internal.example", 22), ("10.0.0.7", 5432)] {
        let error = refused(&app, &token, &at(host, port)).await;
        assert_eq!(fields(&error), ["source_metadata.port"], "{host}:{port}");
        assert!(
            error.to_string().contains("POSTGRES_ALLOWED_HOSTS"),
            "{error}"
        );
    }
}
