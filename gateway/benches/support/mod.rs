//! What both benchmarks (`gateway.rs`, `scale.rs`) need: smoke-run detection, a database of
//! their own beside `DATABASE_URL`'s (dropped at the end), percentiles and resident memory.

#![allow(dead_code)] // each benchmark uses a part

use std::time::Duration;

use sqlx::Connection;

/// A smoke run: `cargo test` runs this binary without `--bench`.
pub fn quick() -> bool {
    static QUICK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *QUICK.get_or_init(|| !std::env::args().any(|a| a == "--bench"))
}

/// Whether to run the part named `part`: every part unless names are given after `--`
/// (`./dev bench -- throughput snapshot`; each benchmark's header lists its parts).
pub fn wanted(part: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    named.is_empty() || named.iter().any(|n| n == part)
}

pub fn master_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL (./dev bench sets it)")
}

pub fn database_name() -> String {
    format!("gateway_bench_{}", std::process::id())
}

/// A fresh database next to the one `DATABASE_URL` names; returns its URL.
async fn fresh_database() -> String {
    let master = master_url();
    let mut url = url::Url::parse(&master).unwrap();
    let name = database_name();
    let mut conn = sqlx::PgConnection::connect(&master).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    url.set_path(&name);
    url.to_string()
}

/// Runs `bench` on a fresh database ([`fresh_database`]) and drops the database afterwards,
/// also when `bench` panics (the panic goes on after the drop).
pub async fn on_fresh_database<B, F>(bench: B)
where
    B: FnOnce(String) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let url = fresh_database().await;
    let outcome = tokio::spawn(bench(url)).await;
    drop_database().await;
    if let Err(err) = outcome
        && err.is_panic()
    {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Drops the benchmark's database (connections still open are closed by the server).
async fn drop_database() {
    let mut conn = sqlx::PgConnection::connect(&master_url()).await.unwrap();
    let name = database_name();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1_048_576.0
}

/// CPU time (user and system) this process has used so far, from `/proc/self/stat`; zero
/// where there is none. On a shared machine it says what a step cost where wall time cannot.
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) end with `)`; utime and stime
    // are the 12th and 13th after it, in clock ticks (100 a second on Linux).
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
