//! `postgres` source benchmark: `./dev bench -- postgres` (or `cargo bench -p gateway --bench
//! postgres` with `DATABASE_URL` pointing at a server where the role may create databases).
//!
//! Builds a table of 1,000,000 rows (generate_series, a few seconds) with the GIN index the
//! README recommends, then measures the handler's `search` (the statement, its round trip and
//! the result mapping; the gateway's own cost per call is what `gateway`'s parts measure) one
//! call at a time: p50/p99 per call for a rare term, a common term (about 1% of the rows
//! match; the first 1,000 are ranked), a two-word query and a phrase that nearly every row
//! matches, then `fetch` by id, then 4 callers at once. Prints the `EXPLAIN ANALYZE` plan of
//! each query. Run by `cargo test` (without `--bench`), it does a smoke run on 10,000 rows.
//! Part: `postgres`.

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use gateway::{
    snapshot::ServedSource,
    sources::{Registry, postgres::Postgres},
};
use serde_json::json;
use shared::{
    hosts::HostList,
    model::{SourceRules, SourceType, source::postgres::tables::parse_tables},
};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

mod support;

use support::{ms, on_fresh_database, percentile, quick, wanted};

const DEADLINE: Duration = Duration::from_secs(8);

/// Rows in the table.
fn rows() -> i64 {
    if quick() { 10_000 } else { 1_000_000 }
}

/// Calls measured per query.
fn calls() -> usize {
    if quick() { 20 } else { 400 }
}

/// 1,000,000 rows in one statement: a title and a body from a 200-word vocabulary (each row
/// gets words by its number, so every word is in about 1% of the rows), and a unique word.
const BUILD: &str = "
create table public.docs (id bigint primary key, title text not null, body text not null);
insert into public.docs
select i,
       'Document ' || i || ' about ' || w[1 + (i * 7) % 200],
       w[1 + i % 200] || ' ' || w[1 + (i / 200) % 200] || ' ' || w[1 + (i * 13) % 197] || ' '
         || w[1 + (i * 31) % 199] || ' report number r' || i || ' for the quarterly review'
from generate_series(1, $1::bigint) as i,
     (select array_agg('word' || n) as w from generate_series(1, 200) as n) as words;
";

/// `p50 …, p99 … (n calls)` of the call times.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        times.len()
    )
}

/// `explain analyze` of a statement (the benchmark's own SQL).
fn explain(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("explain (analyze, costs off) {sql}"))
}

/// Prints a plan (not in a smoke run).
fn show(plan: &[(String,)]) {
    if !quick() {
        println!("  plan:");
        for (line,) in plan {
            println!("    {line}");
        }
    }
}

#[tokio::main]
async fn main() {
    if !wanted("postgres") {
        return;
    }
    on_fresh_database(run).await;
}

async fn run(url: String) {
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let started = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        BUILD.replace("$1::bigint", &rows().to_string()),
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let filled = started.elapsed();
    let table_json = json!({"table": "public.docs", "id_column": "id", "title_column": "title",
        "text_columns": ["title", "body"], "url_template": "https://intranet.example.com/docs/{id}"});
    let table = parse_tables(Some(&json!([table_json]))).remove(0);
    let index = gateway::sources::postgres::index_sql(&table);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{index}; analyze public.docs;"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    println!(
        "postgres: {} rows filled in {:.1} s, index ({index}) built and analysed in {:.1} s",
        rows(),
        filled.as_secs_f64(),
        (started.elapsed() - filled).as_secs_f64()
    );

    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let hosts = HostList::parse(&["127.0.0.1".to_owned(), "::1".to_owned()]).unwrap();
    let rules = SourceRules {
        postgres_hosts: hosts.clone(),
        postgres_insecure_hosts: hosts.clone(),
        ..SourceRules::default()
    };
    let metadata = json!({"host": "127.0.0.1", "port": options.get_port(),
        "database": options.get_database().unwrap(), "user": options.get_username(),
        "sslmode": "disable", "tables": [table_json]});
    let source = ServedSource::parse(
        Uuid::new_v4(),
        SourceType::Postgres,
        metadata.as_object().unwrap(),
        Ok(json!({"password": "unused-with-trust-auth"})
            .as_object()
            .unwrap()
            .clone()),
        &rules,
    );
    let registry = Registry {
        postgres: Arc::new(Postgres::new(hosts, DEADLINE)),
        ..Registry::new(&shared::testing::settings()).unwrap()
    };
    let registry = Arc::new(registry);
    let source = Arc::new(source);

    for (label, query) in [
        ("rare term (1 row)", "r777777"),
        ("common term (~1% of rows match; 1,000 ranked)", "word42"),
        ("two words (AND)", "word42 word17"),
        (
            "phrase matching ~99% of rows (websearch syntax)",
            "\"quarterly review\" -word3",
        ),
    ] {
        let mut times = Vec::with_capacity(calls());
        let mut found = 0;
        for _ in 0..calls() {
            let t = Instant::now();
            let hits = registry
                .search(&source, query, 10, DEADLINE)
                .await
                .expect("search");
            times.push(t.elapsed());
            found = hits.len();
        }
        println!(
            "postgres search, {label}: {} ({found} results)",
            summary(&mut times)
        );
        let plan = sqlx::query_as(explain(&gateway::sources::postgres::search_sql(&table)))
            .bind(query)
            .bind(10_i64)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        show(&plan);
    }

    // fetch: one row by id (the id column's own type, so its primary key index serves it).
    let mut times = Vec::with_capacity(calls());
    for n in 0..calls() {
        let id = format!("public.docs/{}", 1 + (n as i64 * 7919) % rows());
        let t = Instant::now();
        registry.fetch(&source, &id, DEADLINE).await.expect("fetch");
        times.push(t.elapsed());
    }
    println!("postgres fetch by id: {}", summary(&mut times));
    let plan = sqlx::query_as(explain(&gateway::sources::postgres::fetch_sql(
        &table, "bigint",
    )))
    .bind("777")
    .bind(vec!["title".to_owned(), "body".to_owned()])
    .fetch_all(&mut conn)
    .await
    .unwrap();
    show(&plan);

    // Four callers at once (the pool's size), the common term.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (registry, source) = (registry.clone(), source.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for _ in 0..calls() / 4 {
                let t = Instant::now();
                registry
                    .search(&source, "word42", 10, DEADLINE)
                    .await
                    .expect("search");
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    let rate = times.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "postgres search, common term, 4 callers: {}, {rate:.0} calls/s",
        summary(&mut times)
    );
    conn.close().await.unwrap();
    registry.retain(&std::collections::HashSet::new());
    tokio::time::sleep(Duration::from_millis(100)).await;
}
