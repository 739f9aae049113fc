//! A database outage never turns a served host into a 404 or a hang; a gateway that never
//! loaded answers 503 and becomes ready when the database comes back. The outage is a TCP
//! proxy between the gateway and Postgres that the test cuts, dropping every connection, which
//! is what the gateway sees when the database goes away (other tests share the server, so it
//! cannot be stopped for real here).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::{net::TcpListener, sync::Notify};

use crate::helpers::{call, eventually, spawn_stack};

/// Forwards TCP to Postgres while `up`; cutting it closes every open connection.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Proxy {
    async fn start(target: (String, u16)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, cut) = (Arc::new(AtomicBool::new(true)), Arc::new(Notify::new()));
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let (target, cut) = (target.clone(), cut2.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A pool reaching the test database through `proxy`.
fn through(pool: &PgPool, proxy: &Proxy) -> PgPool {
    let options = (*pool.connect_options()).clone().port(proxy.port);
    PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy_with(options)
}

fn target(pool: &PgPool) -> (String, u16) {
    let options = pool.connect_options();
    (options.get_host().to_owned(), options.get_port())
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_outage_keeps_serving_the_last_snapshot_and_recovers(pool: PgPool) {
    let proxy = Proxy::start(target(&pool)).await;
    let stack = spawn_stack(pool.clone(), through(&pool, &proxy), |_| {}).await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (server_id, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    let client = stack.client(&host).await;

    proxy.down();
    eventually(Duration::from_secs(5), "outage noticed", || async {
        stack.store.is_stale()
    })
    .await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut calls = 0;
    while tokio::time::Instant::now() < until {
        let started = tokio::time::Instant::now();
        let result = call(&client, "search", json!({"query": "q"})).await;
        assert_ne!(result.is_error, Some(true), "served from the last snapshot");
        assert!(started.elapsed() < Duration::from_secs(1), "no hang");
        assert!(stack.serves(&host).await, "never a 404");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls > 10);
    let ready = stack
        .http
        .get(format!("http://127.0.0.1:{}/readyz", stack.gateway_port))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["stale"],
        true
    );

    proxy.restore();
    // The audit records of the calls made during the outage were kept and are written now.
    let calls_path = format!("/mcp-servers/{server_id}/calls");
    eventually(
        Duration::from_secs(15),
        "audit records written after the outage",
        || async {
            let (_, page) = stack
                .call(reqwest::Method::GET, &calls_path, &ada, None)
                .await;
            page["total"].as_u64() == Some(calls)
        },
    )
    .await;
    assert_eq!(
        stack.audit_drops.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let (_, second_host) = stack.server(&ada, "after", &[&files]).await;
    eventually(
        Duration::from_secs(15),
        "a change made after the outage is served",
        || stack.serves(&second_host),
    )
    .await;
    eventually(Duration::from_secs(1), "no longer stale", || async {
        !stack.store.is_stale()
    })
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_gateway_started_during_an_outage_is_503_until_the_database_returns(pool: PgPool) {
    let proxy = Proxy::start(target(&pool)).await;
    proxy.down();
    let stack = spawn_stack(pool.clone(), through(&pool, &proxy), |_| {}).await;
    let ready_url = format!("http://127.0.0.1:{}/readyz", stack.gateway_port);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = stack.http.get(&ready_url).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let mcp = stack.raw("mcp1.example.com", &list).await;
    assert_eq!(
        mcp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not a 404: the gateway does not know yet"
    );

    proxy.restore();
    eventually(Duration::from_secs(15), "ready", || async {
        stack
            .http
            .get(&ready_url)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_full_audit_queue_drops_records_not_calls(pool: PgPool) {
    let proxy = Proxy::start(target(&pool)).await;
    let stack = spawn_stack(pool.clone(), through(&pool, &proxy), |s| {
        s.gateway.audit_buffer = 100;
        s.gateway.key_requests_per_minute = 100_000;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    let files = stack.files(&ada, "1").await;
    let (_, host) = stack.server(&ada, "s", &[&files]).await;
    eventually(Duration::from_secs(1), "served", || stack.serves(&host)).await;
    proxy.down();
    let search = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "q"}}});
    // The writer holds one batch (up to 1,000 records gathered before its first attempt) and
    // retries it; the queue takes 100 more; beyond that records are dropped. No call waits on
    // any of it.
    let mut slowest = Duration::ZERO;
    for _ in 0..1500 {
        let started = tokio::time::Instant::now();
        let response = stack.raw(&host, &search).await;
        assert_eq!(response.status(), StatusCode::OK);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(400),
        "a call took {slowest:?} with the database away"
    );
    let dropped = stack.audit_drops.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (400..=1400).contains(&dropped),
        "the queue holds 100 records and the retried batch at most 1,000; dropped {dropped}"
    );
    proxy.restore();
}
