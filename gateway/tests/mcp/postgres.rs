//! The `postgres` source against a real second database on the test server, read through a
//! role that may read two tables and nothing else, with the production handler and rmcp's
//! client: search and fetch across tables, an unreadable table, inert agent input (checked
//! against the statements the server recorded), read-only sessions, the statement timeout,
//! the allowed hosts, the pool's lifetime, and connection failures at listed addresses that
//! all read the same.

use std::{collections::BTreeSet, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    hosts::HostList,
    model::{SourceRules, SourceType},
};
use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::helpers::{Stack, call, error_text, eventually, settings, spawn_real_stack};

/// A database of its own on the test server, and a login role that may read `docs` and
/// `tickets` only. Dropped (with the role) by [`Company::drop`].
struct Company {
    database: String,
    role: String,
    /// The superuser, on the company database.
    admin: PgPool,
    port: u16,
}

const PASSWORD: &str = "role-password-never-shown";

const SCHEMA: &str = r"
create table public.docs (id bigint primary key, title text, body text, owner text);
create table public.tickets (code text primary key, subject text, description text, status text);
create table public.users (id int primary key, email text, password_hash text);
create table public.sessions (id int primary key, token text);
create table public.archive (id int primary key, body text);
insert into public.docs values
  (1, 'Invoice policy', 'How invoices are approved and paid.', 'finance'),
  (2, 'Travel policy', 'Book trains before flights; file each invoice within 30 days.', 'hr'),
  (3, 'Holiday calendar', 'Public holidays by country.', 'hr');
insert into public.tickets values
  ('T-1', 'Invoice missing', 'Customer says the invoice never arrived.', 'open'),
  ($$a'b;c--d\e/ü %2F x$$, 'Odd id', 'A ticket whose code is full of quotes and slashes: quirky.', 'open');
insert into public.users values (1, 'ada@example.com', 'invoice-hash-secret');
insert into public.sessions values (1, 'invoice-session-token');
insert into public.archive values (1, 'archived invoice secret');
create view public.slow_docs as select d.* from public.docs d cross join pg_sleep(5);
create extension if not exists pg_stat_statements;
";

impl Company {
    async fn create(pool: &PgPool) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let (database, role) = (format!("company_{suffix}"), format!("reader_{suffix}"));
        // One statement each: `create database` cannot run inside a transaction block.
        for statement in [
            format!("create database {database}"),
            format!("create role {role} login password '{PASSWORD}'"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await
                .expect("database and role");
        }
        let options = (*pool.connect_options()).clone().database(&database);
        let port = options.get_port();
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("the company database");
        sqlx::raw_sql(SCHEMA).execute(&admin).await.expect("schema");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "revoke all on database {database} from public;
             grant connect on database {database} to {role};
             grant usage on schema public to {role};
             grant select on public.docs, public.tickets, public.slow_docs to {role};"
        )))
        .execute(&admin)
        .await
        .expect("grants");
        Self {
            database,
            role,
            admin,
            port,
        }
    }

    /// Drops the database and the role.
    async fn drop(self, pool: &PgPool) {
        self.admin.close().await;
        for statement in [
            format!("drop database {} with (force)", self.database),
            format!("drop role {}", self.role),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await
                .expect("cleanup");
        }
    }

    /// A `POST /sources` body for these tables.
    fn source(&self, tables: &[Value]) -> Value {
        json!({"type": "postgres", "source_metadata": {
            "host": "127.0.0.1", "port": self.port.to_string(), "database": self.database,
            "user": self.role, "password": PASSWORD, "sslmode": "disable", "tables": tables}})
    }

    /// Connections the role has open now.
    async fn connections(&self) -> i64 {
        sqlx::query_scalar("select count(*) from pg_stat_activity where usename = $1")
            .bind(&self.role)
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    /// The statements the role ran here, as `pg_stat_statements` recorded them (constants
    /// normalised), with how often each ran.
    async fn statements(&self) -> Vec<(String, i64)> {
        sqlx::query_as(
            "select query, calls from pg_stat_statements s \
             join pg_roles r on r.oid = s.userid join pg_database d on d.oid = s.dbid \
             where r.rolname = $1 and d.datname = $2 order by query",
        )
        .bind(&self.role)
        .bind(&self.database)
        .fetch_all(&self.admin)
        .await
        .expect("pg_stat_statements is loaded (./dev test starts PostgreSQL with it)")
    }
}

fn docs() -> Value {
    json!({"table": "public.docs", "id_column": "id", "title_column": "title",
        "text_columns": ["title", "body"], "url_template": "https://intranet.example.com/docs/{id}"})
}
fn tickets() -> Value {
    json!({"table": "public.tickets", "id_column": "code", "title_column": "subject",
        "text_columns": ["subject", "description"], "url_template": "https://crm.example.com/t/{id}"})
}
fn table(name: &str, text: &str) -> Value {
    json!({"table": name, "id_column": "id", "title_column": "id", "text_columns": [text]})
}

async fn stack(pool: &PgPool, timeout_ms: u64) -> Stack {
    spawn_real_stack(pool.clone(), |s| {
        s.sources.postgres_allowed_hosts = vec!["127.0.0.1".to_owned()];
        s.sources.postgres_allow_insecure_hosts = vec!["127.0.0.1".to_owned()];
        s.gateway.source_timeout_ms = timeout_ms;
    })
    .await
}

fn results(found: &rmcp::model::CallToolResult) -> Vec<Value> {
    assert_ne!(found.is_error, Some(true), "{found:?}");
    found.structured_content.as_ref().expect("structured")["results"]
        .as_array()
        .unwrap()
        .clone()
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn search_and_fetch_read_two_tables_and_nothing_else(pool: PgPool) {
    let company = Company::create(&pool).await;
    let stack = stack(&pool, 3000).await;
    let ada = stack.user("ada@example.com").await;
    let source = stack
        .source(
            &ada,
            company.source(&[docs(), tickets(), table("public.users", "password_hash")]),
        )
        .await;
    let (_, host) = stack.server(&ada, "db", &[&source]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    // Both readable tables answer; the unreadable one costs its own results only.
    let found = results(&call(&client, "search", json!({"query": "invoice"})).await);
    let found_ids = ids(&found);
    let prefix = format!("postgres:{source}:");
    assert!(
        found_ids.contains(&format!("{prefix}public.docs/1")),
        "{found_ids:?}"
    );
    assert!(
        found_ids.contains(&format!("{prefix}public.docs/2")),
        "{found_ids:?}"
    );
    assert!(
        found_ids.contains(&format!("{prefix}public.tickets/T-1")),
        "{found_ids:?}"
    );
    assert!(found_ids.iter().all(|id| !id.contains("public.users")));
    let first = found
        .iter()
        .find(|r| r["id"] == format!("{prefix}public.docs/1"))
        .unwrap();
    assert_eq!(first["title"], "Invoice policy");
    assert_eq!(first["url"], "https://intranet.example.com/docs/1");

    let doc = call(
        &client,
        "fetch",
        json!({"id": format!("{prefix}public.tickets/T-1")}),
    )
    .await;
    let doc = doc.structured_content.expect("a document");
    assert_eq!(doc["title"], "Invoice missing");
    assert_eq!(
        doc["text"],
        "Invoice missing\n\nCustomer says the invoice never arrived."
    );
    assert_eq!(doc["url"], "https://crm.example.com/t/T-1");
    assert_eq!(doc["metadata"]["status"], "open");
    assert_eq!(doc["metadata"]["code"], "T-1");
    assert_eq!(doc["metadata"]["table"], "public.tickets");
    assert!(
        doc["metadata"].get("description").is_none(),
        "text columns are the text"
    );

    // The configured table the role cannot read: a clear tool error naming it.
    let denied = call(
        &client,
        "fetch",
        json!({"id": format!("{prefix}public.users/1")}),
    )
    .await;
    let message = error_text(&denied);
    assert!(
        message.contains("table public.users: permission denied"),
        "{message}"
    );
    assert!(!message.contains("invoice-hash-secret"));
    // Tables that are not configured are not there at all, whatever the id says.
    for other in [
        "public.sessions/1",
        "public.archive/1",
        "pg_catalog.pg_authid/1",
    ] {
        let refused = call(&client, "fetch", json!({"id": format!("{prefix}{other}")})).await;
        assert!(error_text(&refused).contains("No item"), "{other}");
    }
    // A source whose only table is unreadable: the search is a tool error naming the table.
    let only_users = stack
        .source(&ada, company.source(&[table("public.users", "email")]))
        .await;
    let (_, users_host) = stack.server(&ada, "users", &[&only_users]).await;
    eventually(Duration::from_secs(2), "served", || {
        stack.serves(&users_host)
    })
    .await;
    let users_client = stack.client(&users_host).await;
    let refused = call(&users_client, "search", json!({"query": "ada"})).await;
    let message = error_text(&refused);
    assert!(
        message.contains("table public.users: permission denied"),
        "{message}"
    );

    // The role itself, on a session like the source's, reads none of the other tables.
    let session = session(&company, Duration::from_secs(2)).await;
    for table in ["public.users", "public.sessions", "public.archive"] {
        let err = sqlx::query(sqlx::AssertSqlSafe(format!("select * from {table}")))
            .fetch_all(&session)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{table}");
    }
    session.close().await;
    client.cancel().await.unwrap();
    users_client.cancel().await.unwrap();
    drop(stack);
    company.drop(&pool).await;
}

/// A pool on the role's sessions exactly as the handler opens them.
async fn session(company: &Company, statement_timeout: Duration) -> PgPool {
    let config = shared::model::source::SourceConfig::parse(
        SourceType::Postgres,
        company.source(&[docs()])["source_metadata"]
            .as_object()
            .unwrap(),
        json!({"password": PASSWORD}).as_object().unwrap(),
        &rules(),
    )
    .expect("valid settings");
    let shared::model::source::SourceConfig::Postgres(config) = config else {
        unreachable!()
    };
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(gateway::sources::postgres::session_options(
            &config,
            [127, 0, 0, 1].into(),
            statement_timeout,
        ))
        .await
        .expect("the role connects")
}

fn rules() -> SourceRules {
    let local = HostList::parse(&["127.0.0.1".to_owned()]).unwrap();
    SourceRules {
        postgres_hosts: local.clone(),
        postgres_insecure_hosts: local,
        ..SourceRules::from_settings(&settings().sources)
    }
}

fn code(err: &sqlx::Error) -> String {
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn agent_input_never_changes_the_sql_that_runs(pool: PgPool) {
    let company = Company::create(&pool).await;
    let stack = stack(&pool, 3000).await;
    let ada = stack.user("ada@example.com").await;
    let source = stack
        .source(&ada, company.source(&[docs(), tickets()]))
        .await;
    let (_, host) = stack.server(&ada, "db", &[&source]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    let prefix = format!("postgres:{source}:");

    // Plain calls first: the statements a search and a fetch of each table run.
    results(&call(&client, "search", json!({"query": "policy"})).await);
    for id in ["public.docs/1", "public.tickets/T-1"] {
        let fetched = call(&client, "fetch", json!({"id": format!("{prefix}{id}")})).await;
        assert_ne!(fetched.is_error, Some(true), "{fetched:?}");
    }
    let before = company.statements().await;
    let shapes = |statements: &[(String, i64)]| -> BTreeSet<String> {
        statements.iter().map(|(q, _)| q.clone()).collect()
    };
    let calls = |statements: &[(String, i64)]| -> i64 { statements.iter().map(|(_, n)| n).sum() };

    let hostile = [
        "'; drop table public.docs; --",
        "\" or 1=1 --",
        "policy') or ('1'='1",
        "back\\slash \\' \\\\",
        "nul\0byte",
        "ünïcødé 🦀 'quoted' \"double\"",
        "$1 $2 ; select pg_sleep(10)",
        "quirky",
    ];
    let mut searches = 0;
    for query in hostile {
        let found = call(&client, "search", json!({"query": query})).await;
        assert_ne!(found.is_error, Some(true), "{query:?}: {found:?}");
        searches += 1;
        if query == "quirky" {
            // The row with the odd id is found, and its id round-trips through fetch.
            let found = results(&found);
            let id = found[0]["id"].as_str().unwrap().to_owned();
            assert!(id.starts_with(&format!("{prefix}public.tickets/")), "{id}");
            let doc = call(&client, "fetch", json!({"id": id})).await;
            let doc = doc.structured_content.expect("the odd row");
            assert_eq!(doc["metadata"]["code"], "a'b;c--d\\e/ü %2F x");
            assert_eq!(
                doc["url"],
                "https://crm.example.com/t/a%27b%3Bc--d%5Ce%2F%C3%BC%20%252F%20x"
            );
        }
    }
    let mut fetches = 1; // the odd row's
    for row in hostile {
        for table in ["public.docs", "public.tickets"] {
            let id = format!("{prefix}{table}/{}", utf8_percent_encode(row));
            let missing = call(&client, "fetch", json!({"id": id})).await;
            assert!(error_text(&missing).contains("No item"), "{row:?}");
            // Recorded: statements that ran to the end. An id holding NUL is refused before
            // any statement, and `docs` ids are cast to bigint, which refuses these (a
            // failed statement is not recorded, and reads nothing).
            if table == "public.tickets" && !row.contains('\0') {
                fetches += 1;
            }
        }
    }

    let after = company.statements().await;
    assert_eq!(
        shapes(&after),
        shapes(&before),
        "hostile input ran no statement of another shape"
    );
    assert_eq!(
        calls(&after) - calls(&before),
        searches * 2 + fetches,
        "one statement per table per search, one per fetch: {after:#?}"
    );
    let intact: i64 = sqlx::query_scalar("select count(*) from public.docs")
        .fetch_one(&company.admin)
        .await
        .unwrap();
    assert_eq!(intact, 3);
    client.cancel().await.unwrap();
    drop(stack);
    company.drop(&pool).await;
}

fn utf8_percent_encode(row: &str) -> String {
    url::form_urlencoded::byte_serialize(row.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn sessions_are_read_only_and_slow_statements_are_cut_without_holding_up_others(
    pool: PgPool,
) {
    let company = Company::create(&pool).await;
    // The role may write to docs: only the session's read-only default stops it.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "grant insert, update, delete on public.docs to {}",
        company.role
    )))
    .execute(&company.admin)
    .await
    .unwrap();
    let session = session(&company, Duration::from_secs(2)).await;
    for write in [
        "insert into public.docs values (9, 'x', 'y', 'z')",
        "update public.docs set title = 'changed'",
        "delete from public.docs",
    ] {
        let err = sqlx::query(write).execute(&session).await.unwrap_err();
        assert_eq!(code(&err), "25006", "{write}: read-only transaction");
    }
    session.close().await;

    let stack = stack(&pool, 2000).await;
    let ada = stack.user("ada@example.com").await;
    let fast = stack.source(&ada, company.source(&[docs()])).await;
    let slow_table = json!({"table": "public.slow_docs", "id_column": "id", "title_column": "title", "text_columns": ["body"]});
    let slow = stack.source(&ada, company.source(&[slow_table])).await;
    let (_, host) = stack.server(&ada, "db", &[&fast, &slow]).await;
    let (_, slow_host) = stack.server(&ada, "slow", &[&slow]).await;
    eventually(Duration::from_secs(2), "served", || {
        stack.serves(&slow_host)
    })
    .await;
    let client = stack.client(&host).await;

    let started = std::time::Instant::now();
    let found = results(&call(&client, "search", json!({"query": "policy"})).await);
    let took = started.elapsed();
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|r| r["id"].as_str().unwrap().contains(&fast))
    );
    assert!(
        took < Duration::from_millis(1900),
        "the fast source was not held up: {took:?}"
    );

    // Alone, the slow source fails with the server's statement timeout (1,600 ms of the
    // 2,000 ms deadline), not the gateway's.
    let slow_client = stack.client(&slow_host).await;
    let started = std::time::Instant::now();
    let cut = call(&slow_client, "search", json!({"query": "policy"})).await;
    let took = started.elapsed();
    let message = error_text(&cut);
    assert!(message.contains("timed out"), "{message}");
    // The figure is the statement timeout that cut it, not the deadline it came before.
    assert!(message.contains("timed out after 1600 ms"), "{message}");
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(1950)).contains(&took),
        "cut by the statement timeout, before the deadline: {took:?}"
    );
    // The server stopped the statement itself (pg_sleep(5) would otherwise run for seconds).
    eventually(
        Duration::from_millis(500),
        "no statement left running",
        || async {
            let running: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where usename = $1 and state = 'active'",
            )
            .bind(&company.role)
            .fetch_one(&company.admin)
            .await
            .unwrap();
            running == 0
        },
    )
    .await;
    client.cancel().await.unwrap();
    slow_client.cancel().await.unwrap();
    drop(stack);
    company.drop(&pool).await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn hosts_outside_the_allowed_set_are_refused_and_stop_being_served(pool: PgPool) {
    let company = Company::create(&pool).await;
    let mut stack = stack(&pool, 3000).await;
    let ada = stack.user("ada@example.com").await;

    for (host, sslmode, field) in [
        ("10.1.2.3", "require", "source_metadata.host"),
        ("localhost", "require", "source_metadata.host"),
        ("169.254.169.254", "require", "source_metadata.host"),
        ("db.example.com", "require", "source_metadata.host"),
    ] {
        let mut body = company.source(&[docs()]);
        body["source_metadata"]["host"] = host.into();
        body["source_metadata"]["sslmode"] = sslmode.into();
        let (status, reply) = stack.call(Method::POST, "/sources", &ada, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {reply}");
        let fields: Vec<&str> = reply["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{host}: {reply}");
    }

    let source = stack.source(&ada, company.source(&[docs()])).await;
    let (_, host) = stack.server(&ada, "db", &[&source]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    results(&call(&client, "search", json!({"query": "policy"})).await);
    assert!(
        company.connections().await >= 1,
        "the pool holds a connection"
    );

    // The source leaves the server: its pool is closed.
    let (status, _) = stack
        .call(
            Method::DELETE,
            &format!(
                "/mcp-servers/{}/sources/{source}",
                server_id(&stack, &ada, "db").await
            ),
            &ada,
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    eventually(Duration::from_secs(5), "the pool closed", || async {
        company.connections().await == 0
    })
    .await;
    client.cancel().await.unwrap();

    // Attached again, then the gateway restarts with 127.0.0.1 no longer allowed.
    let (_, again) = stack.server(&ada, "again", &[&source]).await;
    stack.stop_gateway.take().unwrap().send(()).unwrap();
    (&mut stack.gateway_task).await.unwrap().unwrap();
    let mut narrowed = settings();
    narrowed.sources.postgres_allowed_hosts = vec!["db.example.com".to_owned()];
    let gw = gateway::Application::build(
        &narrowed,
        pool.clone(),
        gateway::sources::Registry::new(&narrowed).unwrap(),
    )
    .await
    .unwrap();
    stack.gateway_port = gw.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gw.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(2), "served again", || {
        stack.serves(&again)
    })
    .await;
    let client = stack.client(&again).await;
    let refused = call(&client, "search", json!({"query": "policy"})).await;
    let message = error_text(&refused);
    assert!(message.contains("host"), "{message}");
    assert!(message.contains("POSTGRES_ALLOWED_HOSTS"), "{message}");
    assert!(!message.contains(PASSWORD));
    assert_eq!(company.connections().await, 0, "nothing was opened");
    client.cancel().await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    company.drop(&pool).await;
}

async fn server_id(stack: &Stack, token: &str, name: &str) -> String {
    let (_, list) = stack.call(Method::GET, "/mcp-servers", token, None).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_listed_name_that_resolves_to_an_unlisted_private_address_is_not_followed(pool: PgPool) {
    // `localhost` is listed, its address is not: the name passes at creation, the connection
    // is refused when the gateway resolves it (as a name whose DNS answer turned internal).
    let stack = spawn_real_stack(pool.clone(), |s| {
        s.sources.postgres_allowed_hosts = vec!["localhost".to_owned()];
        s.sources.postgres_allow_insecure_hosts = vec!["localhost".to_owned()];
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let body = json!({"type": "postgres", "source_metadata": {
        "host": "localhost", "database": "postgres", "user": "postgres",
        "password": PASSWORD, "sslmode": "disable", "tables": [docs()]}});
    let source = stack.source(&ada, body).await;
    let (_, host) = stack.server(&ada, "db", &[&source]).await;
    eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;
    let refused = call(&client, "search", json!({"query": "policy"})).await;
    let message = error_text(&refused);
    assert!(
        message.contains(
            "host localhost resolves to an address POSTGRES_ALLOWED_HOSTS does not allow"
        ),
        "{message}"
    );
    client.cancel().await.unwrap();
}

/// A port on 127.0.0.1 where `answer` is done with every connection: nothing listening
/// (`None`), or a listener that does something other than PostgreSQL.
async fn port_that(answer: Option<&'static [u8]>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    match answer {
        None => drop(listener),
        Some(answer) => {
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((mut socket, _)) = listener.accept().await {
                    use tokio::io::AsyncWriteExt;
                    let _ = socket.write_all(answer).await;
                    // Kept open: a silent service holds the connection without answering.
                    held.push(socket);
                }
            });
        }
    }
    port
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn at_a_listed_address_a_closed_port_and_an_open_one_of_another_service_read_the_same(
    pool: PgPool,
) {
    let stack = stack(&pool, 1000).await;
    let ports = [
        ("closed", port_that(None).await),
        ("silent", port_that(Some(b"")).await),
        (
            "http",
            port_that(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n")).await,
        ),
    ];
    let mut messages = BTreeSet::new();
    for (what, port) in ports {
        // An account each: one holds only two of the pool's three fixed endpoints.
        let ada = stack.user(&format!("{what}@example.com")).await;
        let mut body = json!({"type": "postgres", "source_metadata": {
            "host": "127.0.0.1", "port": port, "database": "crm", "user": "reader",
            "password": PASSWORD, "sslmode": "disable", "tables": [docs()]}});
        let source = stack.source(&ada, body.take()).await;
        let (_, host) = stack.server(&ada, what, &[&source]).await;
        eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
        let client = stack.client(&host).await;
        let failed = call(&client, "search", json!({"query": "policy"})).await;
        let message = error_text(&failed).replace(&source, "<source>");
        eprintln!("{what}: {message}");
        messages.insert(message);
        client.cancel().await.unwrap();
    }
    assert_eq!(
        messages.len(),
        1,
        "one reason for every port: {messages:#?}"
    );
    let message = messages.pop_first().unwrap();
    assert!(
        message.contains("cannot connect to the database server"),
        "{message}"
    );
}
