//! Configuration at scale: `./dev bench -- scale burst` (or `cargo bench -p gateway --bench
//! scale` with `DATABASE_URL` pointing at a server where the role may create databases).
//!
//! Parts:
//! - `scale`: 1,000,000 servers with one source each; a gateway's first snapshot load (time
//!   and resident memory of this process, which is the gateway), then the propagation of single
//!   new servers (commit → served) while a background churn renames 100 servers a second;
//! - `burst`: 100,000 servers written in one transaction (beside the million when both parts
//!   run), then one more server right after: the time until all of the burst is served and
//!   until the one after it is;
//! - `orgs`: 100,000 people in 10,000 team organizations (ten each), one server per
//!   organization and one agent connection (grant) per person: a gateway's first snapshot load
//!   (time and memory), then membership changes: a member removed (their grant ends in the
//!   database) until the gateway no longer accepts it, p50/p99/max.
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
    let app = gateway::Application::build(settings, pool.clone(), Registry::new(settings).unwrap())
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

/// Writes `people` accounts in team organizations of ten (each with a personal organization,
/// as signup makes), one server per team and a grant per member; returns the team count.
async fn write_organizations(pool: &PgPool, people: i64) -> i64 {
    let teams = people / 10;
    let statements = [
        "insert into users (email, hashed_password) \
         select 'u' || n || '@orgs.example.com', '$2b$04$x' from generate_series(1, $1) n",
        "insert into organizations (name, slug) \
         select 'Team ' || n, 'team-' || n from generate_series(1, $1 / 10) n",
        "insert into organization_members (organization_id, user_id, role) \
         select o.id, u.id, case when u.n % 10 = 1 then 'owner' else 'member' end \
         from (select id, row_number() over (order by id) as n from users \
               where email like '%@orgs.example.com') u \
         join (select id, row_number() over (order by id) as n from organizations \
               where slug like 'team-%') o on o.n = (u.n - 1) / 10 + 1 \
         where $1 > 0",
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
         select id, slug, 'https://' || slug || '.orgs.example.com', slug || '.orgs.example.com' \
         from organizations where slug like 'team-%' and $1 > 0",
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         select 'bench-agent', 'registered', 'Agent', array['https://agent.example.com/cb'] \
         where $1 > 0",
        "insert into oauth_grants (user_id, server_id, client_id, redirect_uri, scope, organization_id) \
         select m.user_id, s.id, 'bench-agent', 'https://agent.example.com/cb', 'mcp', m.organization_id \
         from organization_members m join mcp_servers s on s.organization_id = m.organization_id \
         join organizations o on o.id = m.organization_id where o.slug like 'team-%' and $1 > 0",
    ];
    for statement in statements {
        sqlx::query(statement)
            .bind(people)
            .execute(pool)
            .await
            .unwrap();
    }
    teams
}

async fn organizations(settings: &Settings, pool: &PgPool) {
    let people: i64 = if quick() { 1_000 } else { 100_000 };
    let started = Instant::now();
    let teams = write_organizations(pool, people).await;
    println!(
        "orgs: wrote {people} people in {teams} team organizations (a server each, a grant per member) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = rss_mb();
    let (gateway, load) = gateway(settings, pool).await;
    let store = Arc::clone(&gateway.store);
    let snapshot = store.load().unwrap();
    let grants: usize = ["team-1.orgs.example.com"]
        .iter()
        .filter_map(|host| snapshot.server(host))
        .map(|server| server.grants.len())
        .sum();
    assert_eq!(grants, 10, "each team server carries its members' grants");
    drop(snapshot);
    println!(
        "orgs: first snapshot ({teams} team servers, {people} grants) loaded in {:.2} s; resident memory {:.0} MB (+{:.0} MB)",
        load.as_secs_f64(),
        rss_mb(),
        rss_mb() - before
    );

    // One member at a time, from different teams: removed, then polled until the gateway's
    // snapshot no longer holds their grant (so their tokens are refused).
    let samples: i64 = if quick() { 10 } else { 200 };
    let leaving: Vec<(Uuid, Uuid, Uuid, String)> = sqlx::query_as(
        "select distinct on (m.organization_id) m.organization_id, m.user_id, g.id, s.endpoint_host \
         from organization_members m join oauth_grants g on g.user_id = m.user_id \
         join mcp_servers s on s.id = g.server_id \
         where m.role = 'member' and s.endpoint_host like 'team-%' \
         order by m.organization_id limit $1",
    )
    .bind(samples)
    .fetch_all(pool)
    .await
    .unwrap();
    // Interleaved with each removal, the baseline of the same run: a new server in the same
    // organization, commit to served (the path `scale` measures).
    let mut delays = Vec::with_capacity(leaving.len());
    let mut baseline = Vec::with_capacity(leaving.len());
    for (n, (organization, user, grant, host)) in leaving.into_iter().enumerate() {
        let removed = Instant::now();
        sqlx::query("delete from organization_members where organization_id = $1 and user_id = $2")
            .bind(organization)
            .bind(user)
            .execute(pool)
            .await
            .unwrap();
        while store
            .load()
            .and_then(|s| {
                s.server(&host)
                    .map(|server| server.grants.contains_key(&grant))
            })
            .unwrap_or(true)
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(removed.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let written = Instant::now();
        let new_host = one_server(pool, organization, &format!("o{n}")).await;
        baseline.push(served_after(&store, &new_host, written).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
    gateway.stop().await;
    delays.sort();
    baseline.sort();
    println!(
        "orgs: membership change (member removed) until refused by the gateway, {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1])
    );
    println!(
        "orgs: baseline, a new server until served, interleaved: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; removal/baseline p50 x{:.2}",
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99)),
        ms(baseline[baseline.len() - 1]),
        ms(percentile(&delays, 0.5)) / ms(percentile(&baseline, 0.5)).max(0.001)
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
    if wanted("orgs") {
        organizations(&settings, &pool).await;
    }
    pool.close().await;
}
