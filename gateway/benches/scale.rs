//! Configuration at scale: `./dev bench -- scale burst` (or `cargo bench -p gateway --bench
//! scale` with `DATABASE_URL` pointing at a server where the role may create databases).
//!
//! Parts:
//! - `scale`: 1,000,000 servers with one source each; a gateway's first snapshot load (time
//!   and resident memory of this process, which is the gateway), then the propagation of single
//!   new servers (commit → served) while a background churn renames 100 servers a second;
//! - `burst`: 100,000 servers written in one transaction (beside the million when both parts
//!   run), then one more server right after: the time until all of the burst is served and
//!   until the one after it is.
//!
//! Changes are written in SQL, as the control plane's would be (the triggers notify); the
//! gateway runs in this process. Run by `cargo test` (without `--bench`), it does a smoke run
//! with 2,000 servers instead. The database is dropped at the end.

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use gateway::{snapshot::SnapshotStore, sources::Registry};
use serde_json::json;
use shared::{Settings, crypto::Keyring};
use sqlx::{PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

mod support;

use support::{ms, on_fresh_database, percentile, process_cpu, quick, rss_mb, wanted};

// The allocator the gateway daemon runs with (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn settings(database_url: &str) -> Settings {
    let mut settings = shared::testing::settings_at(database_url);
    settings.control_plane.mcp_gateway_url_pools = "https://*.scale.example.com".to_owned();
    settings.common.log_level = "warn".to_owned();
    settings.gateway.metrics_addr = String::new();
    settings
}

/// Writes `count` servers named `<prefix><n>`, each with a `box` source of its own, in
/// transactions of `per_transaction` servers.
async fn write_servers(
    pool: &PgPool,
    keyring: &Keyring,
    user: Uuid,
    prefix: &str,
    count: usize,
    per_transaction: usize,
) {
    let secrets = json!({"client_secret": "s"}).as_object().unwrap().clone();
    let mut tx = pool.begin().await.unwrap();
    for start in (0..count).step_by(10_000) {
        let n = 10_000.min(count - start);
        let sources: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let (sealed, key_ids): (Vec<Vec<u8>>, Vec<String>) = sources
            .iter()
            .map(|id| keyring.seal_source(*id, &secrets))
            .unzip();
        let hosts: Vec<String> = (start..start + n)
            .map(|i| format!("{prefix}{i}.scale.example.com"))
            .collect();
        sqlx::query(
            "with src as (insert into sources (id, organization_id, type, source_metadata, secrets, secrets_key_id) \
               select s.id, $1, 'box', '{\"client_id\": \"abc\", \"subject_type\": \"enterprise\", \"subject_id\": \"1\"}'::jsonb, \
                      s.sealed, s.key_id \
               from unnest($2::uuid[], $3::bytea[], $4::text[]) with ordinality as s(id, sealed, key_id, n)), \
             srv as (insert into mcp_servers (id, organization_id, name, endpoint, endpoint_host, public) \
               select gen_random_uuid(), $1, h.host, 'https://' || h.host, h.host, true \
               from unnest($5::text[]) as h(host) returning id, endpoint_host) \
             insert into mcp_server_sources (server_id, source_id, organization_id) \
               select srv.id, s.id, $1 from srv \
               join unnest($5::text[], $2::uuid[]) as s(host, id) on s.host = srv.endpoint_host",
        )
        .bind(user)
        .bind(&sources)
        .bind(&sealed)
        .bind(&key_ids)
        .bind(&hosts)
        .execute(&mut *tx)
        .await
        .unwrap();
        if (start + n) % per_transaction == 0 || start + n == count {
            tx.commit().await.unwrap();
            tx = pool.begin().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// One more server (no source), committed; returns its host.
async fn one_server(pool: &PgPool, user: Uuid, name: &str) -> String {
    let host = format!("{name}.scale.example.com");
    sqlx::query(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host, public) \
         values ($1, $2, 'https://' || $2, $2, true)",
    )
    .bind(user)
    .bind(&host)
    .execute(pool)
    .await
    .unwrap();
    host
}

async fn served_after(store: &SnapshotStore, host: &str, since: Instant) -> Duration {
    while store.load().and_then(|s| s.server(host).cloned()).is_none() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    since.elapsed()
}

/// A gateway running in this process.
struct Running {
    store: Arc<SnapshotStore>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops it and waits until it has let go of its snapshot.
    async fn stop(self) {
        drop(self.store);
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts a gateway on `pool`; returns it once its first snapshot is loaded, and how long that
/// took.
async fn gateway(settings: &Settings, pool: &PgPool) -> (Running, Duration) {
    let started = Instant::now();
    let app = gateway::Application::build(settings, pool.clone(), Registry::default())
        .await
        .unwrap();
    let store = app.store();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    while store.load().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (Running { store, stop, task }, started.elapsed())
}

async fn scale(settings: &Settings, pool: &PgPool, user: Uuid) {
    let servers = if quick() { 2_000 } else { 1_000_000 };
    let keyring = settings.common.keyring().unwrap();
    let started = Instant::now();
    write_servers(pool, &keyring, user, "s", servers, 100_000).await;
    println!(
        "scale: wrote {servers} servers with one source each in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (before, cpu) = (rss_mb(), process_cpu());
    let (gateway, load) = gateway(settings, pool).await;
    let store = Arc::clone(&gateway.store);
    println!(
        "scale: first snapshot of {} servers loaded in {:.2} s ({:.2} s of the gateway's CPU); resident memory {:.0} MB (+{:.0} MB)",
        store.load().unwrap().len(),
        load.as_secs_f64(),
        (process_cpu() - cpu).as_secs_f64(),
        rss_mb(),
        rss_mb() - before
    );

    // Background churn: 100 renames a second of random existing servers.
    let churn_pool = pool.clone();
    let churn = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for i in 0u64.. {
            tick.tick().await;
            sqlx::query(
                "update mcp_servers set name = 'churn ' || $1 \
                 where endpoint_host = 's' || $2 || '.scale.example.com'",
            )
            .bind(i.to_string())
            .bind((i * 7919 % servers as u64).to_string())
            .execute(&churn_pool)
            .await
            .unwrap();
        }
    });
    let samples = if quick() { 10 } else { 200 };
    let mut delays = Vec::with_capacity(samples);
    for i in 0..samples {
        let written = Instant::now();
        let host = one_server(pool, user, &format!("p{i}")).await;
        delays.push(served_after(&store, &host, written).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    churn.abort();
    drop(store);
    gateway.stop().await;
    delays.sort();
    println!(
        "scale: propagation at {servers} servers under 100 changes/s ({samples} new servers): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1])
    );
}

async fn burst(settings: &Settings, pool: &PgPool, user: Uuid) {
    let servers = if quick() { 2_000 } else { 100_000 };
    let (gateway, _) = gateway(settings, pool).await;
    let store = Arc::clone(&gateway.store);
    let base = store.load().unwrap().len();
    let keyring = settings.common.keyring().unwrap();
    let started = Instant::now();
    write_servers(pool, &keyring, user, "b", servers, servers).await;
    let committed = Instant::now();
    let host = one_server(pool, user, "after-burst").await;
    let next = served_after(&store, &host, committed).await;
    while store.load().unwrap().len() < base + servers + 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let all = committed.elapsed();
    drop(store);
    gateway.stop().await;
    println!(
        "burst: {servers} servers in one transaction beside {base} served (written in {:.1} s): all served {:.2} s after commit; \
         the server created right after served after {:.2} s",
        (committed - started).as_secs_f64(),
        all.as_secs_f64(),
        next.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    on_fresh_database(run).await;
}

async fn run(database_url: String) {
    let settings = settings(&database_url);
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(&database_url)
        .await
        .unwrap();
    shared::db::MIGRATOR.run(&pool).await.unwrap();
    let account: Uuid = sqlx::query_scalar(
        "insert into users (email, hashed_password) values ('scale@example.com', '$2b$04$x') \
         returning id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // Its personal organization (made with the account) holds the servers.
    let user: Uuid = sqlx::query_scalar("select id from organizations where personal_user_id = $1")
        .bind(account)
        .fetch_one(&pool)
        .await
        .unwrap();
    // Scale first: its memory figure is then that of one gateway alone; the burst then lands
    // beside the million servers.
    if wanted("scale") {
        scale(&settings, &pool, user).await;
    }
    if wanted("burst") {
        burst(&settings, &pool, user).await;
    }
    pool.close().await;
}
