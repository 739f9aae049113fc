//! Gateway benchmark: `./dev bench` (or `cargo bench -p gateway --bench gateway` with
//! `DATABASE_URL` pointing at a server where the role may create databases).
//!
//! Measures, against an in-process source that answers instantly:
//! 1. `tools/call search` throughput and p50/p99 latency with 1 and with 3 sources per server
//!    (closed loop, 32 concurrent clients), then p50/p99 at half the measured rate (open loop).
//!    Every call is audited; servers are called with an access key (checked and rate-limited
//!    on every request), and once more as a public server (no key) for comparison. The 3-source
//!    server is also called with an OAuth access token (signed by the control plane for a grant
//!    made in SQL, so no browser is needed), in rounds alternating with its access key
//!    (key, token, token, key, ...), and the medians of both and their ratio are printed;
//!    A bare rmcp server (the same `search` tool over the same in-process source, with no
//!    routing, keys, audit or metrics) is measured in the same run, in rounds alternating with
//!    the gateway, and the gateway's throughput is printed as a ratio of it (`baseline`);
//! 2. the time from a control-plane write (REST) to the gateway serving it;
//! 3. loading a snapshot of 100,000 servers: time and resident memory.
//!
//! Both daemons log as they do by default (`LOG_LEVEL`'s default, through the production
//! subscriber) to a file in the temporary directory, removed at the end with the database.
//! The load generator shares the machine (and its cores) with the gateway it measures.
//! Run by `cargo test` (without `--bench`), it does a short smoke run of each part instead.
//! 4. `search` over one federated remote MCP server (an `mcp` source; the instant upstream is
//!    the bare rmcp server of `baseline`, on loopback), in rounds alternating with the 1-source
//!    in-process server (`federated`).
//!
//! Parts, for `./dev bench -- <part>...`: `baseline` (against bare rmcp), `throughput` (closed
//! loop), `latency` (open loop), `federated`, `propagation`, `snapshot`.
//!
//! For a profiler, `BENCH_ONE_SIDE=gateway` (or `bare`) with `-- baseline` runs that side of
//! the baseline alone (see `one_side_alone`). On a shared machine whose speed swings between
//! minutes, instructions a call are the steadier measure of a change to the request path:
//! run the bench binary under `valgrind --tool=callgrind --instr-atstart=no`, turn collection
//! on with `callgrind_control -i on` once `ready` is printed, and divide the total by the calls
//! printed. (Callgrind runs one thread at a time: it shows the work, not contention.)

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gateway::{
    snapshot::{Loader, ServedSource},
    sources::{BoxFuture, Document, Hit, Lifecycle, Registry, SourceError, SourceHandler},
};
use serde_json::{Value, json};
use shared::{
    Settings,
    model::{SourceRules, source::BoxConfig},
    oauth::{AccessClaims, SCOPE, canonical_resource},
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

mod support;

use support::{ms, on_fresh_database, percentile, quick, rss_mb, wanted};

// The allocator the gateway daemon runs with (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 32;

/// How long each measurement runs.
fn run_time() -> Duration {
    if quick() {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    }
}

/// Rounds of each credential in the access key against OAuth token comparison, and their length.
fn comparison_rounds() -> (usize, Duration) {
    if quick() {
        (2, Duration::from_millis(150))
    } else {
        (4, Duration::from_secs(3))
    }
}

/// Where the load goes: a server's host and the bearer credential to send, an access key or an
/// OAuth access token (none: public server).
#[derive(Clone)]
struct Target {
    host: String,
    key: Option<String>,
}

struct Instant3;

/// What the in-process source answers: three hits at once.
fn instant_hits(source_id: Uuid, query: &str) -> Vec<Hit> {
    (1..=3)
        .map(|n| Hit {
            upstream_id: format!("{source_id}-{n}"),
            title: format!("{query} {n}"),
            url: format!("https://x.example/{n}"),
        })
        .collect()
}

impl Lifecycle for Instant3 {}

impl SourceHandler<BoxConfig> for Instant3 {
    fn search<'a>(
        &'a self,
        source: &'a ServedSource,
        _: &'a BoxConfig,
        query: &'a str,
        _: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>> {
        Box::pin(async move { Ok(instant_hits(source.id, query)) })
    }
    fn fetch<'a>(
        &'a self,
        _: &'a ServedSource,
        _: &'a BoxConfig,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>> {
        Box::pin(async move {
            Ok(Document {
                title: id.to_owned(),
                text: String::new(),
                url: String::new(),
                metadata: json!({}),
            })
        })
    }
}

fn settings(database_url: &str) -> Settings {
    let mut settings = shared::testing::settings_at(database_url);
    settings.common.database_max_connections = 20;
    settings.control_plane.mcp_gateway_url_pools = "https://*.bench.example.com".to_owned();
    settings.control_plane.max_servers_per_user = 1000;
    // The benchmark measures the check, not the default budget of 600 calls a minute.
    settings.gateway.key_requests_per_minute = 100_000_000;
    // The federated part's upstream listens on loopback.
    settings.sources.mcp_allowed_hosts = vec!["127.0.0.1".to_owned()];
    settings
}

/// The control plane's REST API with the bench user's session token.
struct Api {
    rest: shared::testing::Api,
    token: String,
}

impl Api {
    /// Creates something with a `POST`; returns it.
    async fn post(&self, path: &str, body: Value) -> Value {
        self.rest.create(&self.token, path, &body).await
    }
}

async fn server_with_sources(api: &Api, n: usize, public: bool) -> Target {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"type": "box", "source_metadata": {"client_id": "abc", "client_secret": "s",
            "subject_type": "enterprise", "subject_id": i.to_string()}});
        ids.push(api.rest.source(&api.token, &body).await);
    }
    let body = json!({"name": format!("{n} sources"), "source_ids": ids, "public": public});
    let server = api.rest.server(&api.token, &body).await;
    let key = if public {
        None
    } else {
        let id = shared::testing::id(&server);
        Some(api.rest.key(&api.token, &id, "bench").await)
    };
    Target {
        host: shared::testing::host(&server),
        key,
    }
}

fn search_body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "quarterly report"}}}))
    .unwrap()
}

fn mcp_request(
    http: &reqwest::Client,
    url: &str,
    target: &Target,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let request = http
        .post(url)
        .header("host", &target.host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    match &target.key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

async fn one_call(http: &reqwest::Client, url: &str, target: &Target, body: Vec<u8>) -> Duration {
    let started = Instant::now();
    let response = mcp_request(http, url, target, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.windows(9).any(|w| w == b"\"results\""),
        "a search result"
    );
    started.elapsed()
}

/// CPU time the whole machine spent busy so far (user, system, interrupts: every process,
/// the database included), from `/proc/stat`; zero where there is none.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        // user, nice, system, (idle, iowait), irq, softirq
        .filter(|(i, _)| matches!(i, 0 | 1 | 2 | 5 | 6))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Closed loop: CONCURRENCY clients calling back to back for `length`. Returns calls/s, the
/// latencies (sorted) and the machine's CPU time per call.
async fn closed_loop(
    url: &str,
    target: &Target,
    length: Duration,
) -> (f64, Vec<Duration>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let busy = machine_busy();
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (stop, url, target) = (stop.clone(), url.to_owned(), target.clone());
            tokio::spawn(
                async move { calls_until(&stop, &reqwest::Client::new(), &url, &target).await },
            )
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let cpu_per_call = (machine_busy() - busy) / all.len().max(1) as u32;
    all.sort();
    (rate, all, cpu_per_call)
}

/// One client calling back to back until `stop`; the latency of each call.
async fn calls_until(
    stop: &AtomicBool,
    http: &reqwest::Client,
    url: &str,
    target: &Target,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        latencies.push(one_call(http, url, target, search_body(latencies.len())).await);
    }
    latencies
}

/// Open loop at `rate` calls/s for the run time over 64 connections: worker k takes the scheduled
/// slots k, k+64, ...; latency counts from each call's scheduled start, so queueing behind a
/// slow call is included (no coordinated omission). Each worker's client is built and its
/// connection opened before the clock starts: building 64 clients (each parses the TLS root
/// store) at the first slots used to delay about 1 % of the calls by tens of milliseconds, a
/// tail of the load generator, not of the gateway.
async fn open_loop(url: &str, target: &Target, rate: f64) -> Vec<Duration> {
    const WORKERS: usize = 64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let slots = (run_time().as_secs_f64() * rate) as usize;
    let mut clients = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        clients.push(reqwest::Client::new());
    }
    let warm = clients
        .iter()
        .map(|http| one_call(http, url, target, search_body(0)));
    futures::future::join_all(warm).await;
    let started = tokio::time::Instant::now() + Duration::from_millis(20);
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, http)| {
            let (url, target) = (url.to_owned(), target.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for slot in (k..slots).step_by(WORKERS) {
                    let due = started + interval.mul_f64(slot as f64);
                    tokio::time::sleep_until(due).await;
                    one_call(&http, &url, &target, search_body(slot)).await;
                    latencies.push(due.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort();
    all
}

/// An OAuth access token for the server behind `target`, as the token endpoint issues one after
/// the owner's consent: a registered client, a grant, and claims signed with the control plane's
/// active key. Returns `target` with the token in place of its key, once the gateway accepts it.
async fn with_oauth_token(
    gateway_url: &str,
    pool: &PgPool,
    settings: &Settings,
    target: &Target,
) -> Target {
    let (server_id, organization_id, user_id, endpoint): (Uuid, Uuid, Uuid, String) =
        sqlx::query_as(
            "select s.id, s.organization_id, m.user_id, s.endpoint from mcp_servers s \
         join organization_members m on m.organization_id = s.organization_id and m.role = 'owner' \
         where s.endpoint_host = $1 and s.deleted_at is null limit 1",
        )
        .bind(&target.host)
        .fetch_one(pool)
        .await
        .unwrap();
    let (client_id, redirect_uri) = ("bench-client", "http://127.0.0.1/cb");
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'registered', 'bench', array[$2])",
    )
    .bind(client_id)
    .bind(redirect_uri)
    .execute(pool)
    .await
    .unwrap();
    let grant_id: Uuid = sqlx::query_scalar(
        "insert into oauth_grants (user_id, server_id, client_id, redirect_uri, scope, organization_id) \
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(user_id)
    .bind(server_id)
    .bind(client_id)
    .bind(redirect_uri)
    .bind(SCOPE)
    .bind(organization_id)
    .fetch_one(pool)
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: settings.common.control_plane_public_url.clone(),
        sub: user_id,
        aud: canonical_resource(&format!("{endpoint}/mcp")).unwrap(),
        iat: now,
        exp: now + 3600,
        jti: Uuid::new_v4(),
        client_id: client_id.to_owned(),
        scope: SCOPE.to_owned(),
        gid: grant_id,
    };
    let token =
        control_plane::oauth::signing::sign(pool, &settings.common.keyring().unwrap(), &claims)
            .await
            .unwrap();
    let with_token = Target {
        host: target.host.clone(),
        key: Some(token),
    };
    // The grant reaches the gateway with its change notification.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = mcp_request(&http, gateway_url, &with_token, search_body(0));
        let status = request.send().await.unwrap().status();
        if status == 200 {
            return with_token;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway refuses the OAuth token: {status}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Closed-loop rounds of N sides alternating (A, B, B, A, A, B, ... for two; forwards and
/// backwards in turn for more: a drift of the machine's speed weighs on every side alike): per
/// side, each round's calls/s and machine CPU per call (µs), and every latency.
struct Rounds<const N: usize> {
    rates: [Vec<f64>; N],
    cpus: [Vec<f64>; N],
    latencies: [Vec<Duration>; N],
    length: Duration,
}

impl<const N: usize> Rounds<N> {
    /// `rounds` rounds of `length` for each side, a side being a URL and a target.
    async fn alternate(sides: [(&str, &Target); N], rounds: usize, length: Duration) -> Self {
        let mut measured = Self {
            rates: std::array::from_fn(|_| Vec::new()),
            cpus: std::array::from_fn(|_| Vec::new()),
            latencies: std::array::from_fn(|_| Vec::new()),
            length,
        };
        for round in 0..rounds {
            let mut order: [usize; N] = std::array::from_fn(|i| i);
            if round % 2 == 1 {
                order.reverse();
            }
            for which in order {
                let (url, target) = sides[which];
                let (rate, latencies, cpu) = closed_loop(url, target, length).await;
                measured.rates[which].push(rate);
                measured.latencies[which].extend(latencies);
                measured.cpus[which].push(cpu.as_secs_f64() * 1e6);
            }
        }
        measured
    }

    /// One side's medians, range of rates and latency percentiles, as a line's end.
    fn summary(&mut self, which: usize) -> String {
        let (rates, length) = (&self.rates[which], self.length);
        let sorted = &mut self.latencies[which];
        sorted.sort();
        format!(
            "{CONCURRENCY} concurrent clients, median of {} alternating rounds of {length:?}: {:.0} calls/s (rounds {:.0}–{:.0}), p50 {:.2} ms, p99 {:.2} ms, machine CPU {:.1} µs a call",
            rates.len(),
            median(rates),
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99)),
            median(&self.cpus[which]),
        )
    }
}

/// The same server called with its access key and with an OAuth token, in alternating closed-loop
/// rounds (key, token, token, key, key, token, ...: a drift of the machine's speed weighs on
/// both alike). Prints the medians of each and the ratio token/key.
async fn key_against_token(gateway_url: &str, sources: usize, key: &Target, token: &Target) {
    let (rounds, length) = comparison_rounds();
    // The token's first use pays its signature check; the gateway then remembers it verified.
    let _ = closed_loop(gateway_url, token, length / 2).await;
    let mut measured =
        Rounds::alternate([(gateway_url, key), (gateway_url, token)], rounds, length).await;
    for (which, access) in ["with key", "with OAuth token"].into_iter().enumerate() {
        println!(
            "search, {sources} source(s), {access}, {}",
            measured.summary(which)
        );
    }
    let (rates, cpus) = (&measured.rates, &measured.cpus);
    // Each round's token rate over the key rate of the same round (measured next to each other).
    let pairs: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(t, k)| t / k).collect();
    println!(
        "search, {sources} source(s), OAuth token / key: calls/s ×{:.3} (round by round ×{:.3}–×{:.3}), machine CPU a call ×{:.3}",
        median(&rates[1]) / median(&rates[0]),
        pairs.iter().copied().fold(f64::INFINITY, f64::min),
        pairs.iter().copied().fold(0.0, f64::max),
        median(&cpus[1]) / median(&cpus[0]),
    );
}

async fn throughput(gateway_url: &str, api: &Api, pool: &PgPool, settings: &Settings) {
    for (sources, public) in [(1, false), (3, false), (3, true)] {
        let target = server_with_sources(api, sources, public).await;
        let access = if public { "public, no key" } else { "with key" };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Warm up connections and code paths.
        let _ = closed_loop(gateway_url, &target, run_time()).await;
        let (rate, latencies, cpu) = closed_loop(gateway_url, &target, run_time()).await;
        println!(
            "search, {sources} source(s), {access}, {CONCURRENCY} concurrent clients: {rate:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, machine CPU {:.1} µs a call",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            cpu.as_secs_f64() * 1e6
        );
        if sources == 3 && !public && wanted("throughput") {
            let token = with_oauth_token(gateway_url, pool, settings, &target).await;
            key_against_token(gateway_url, sources, &target, &token).await;
        }
        if public || !wanted("latency") {
            continue;
        }
        // Half the measured maximum, and half the 5,000 calls/s target.
        for rate in [rate / 2.0, 2500.0] {
            let latencies = open_loop(gateway_url, &target, rate).await;
            println!(
                "search, {sources} source(s), {access}, open loop at {rate:.0} calls/s: p50 {:.2} ms, p99 {:.2} ms",
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            );
        }
    }
}

/// The gateway (one source, access key, audit, metrics, logging at the default level) against
/// a bare rmcp server with the same tool over the same source, in alternating closed-loop rounds
/// (gateway, bare, bare, gateway, ...). Prints the medians and the ratio gateway/bare (issue
/// 15's target). A third side, the same bare server behind `shared::serve` (the gateway's
/// listener: header-read deadline, graceful stop), shows what that listener's defences cost
/// apart from everything else the gateway does.
async fn against_bare_rmcp(gateway_url: &str, api: &Api) {
    let (rounds, length) = comparison_rounds();
    let gateway = server_with_sources(api, 1, false).await;
    let bare = Target {
        host: "bare.example.com".to_owned(),
        key: None,
    };
    let bare_url = format!("http://127.0.0.1:{}/mcp", bare::spawn(false).await);
    let served_url = format!("http://127.0.0.1:{}/mcp", bare::spawn(true).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = closed_loop(gateway_url, &gateway, length / 2).await;
    let _ = closed_loop(&bare_url, &bare, length / 2).await;
    let _ = closed_loop(&served_url, &bare, length / 2).await;
    if let Ok(side) = std::env::var("BENCH_ONE_SIDE") {
        let (url, target) = match side.as_str() {
            "bare" => (bare_url.as_str(), &bare),
            _ => (gateway_url, &gateway),
        };
        return one_side_alone(&side, url, target).await;
    }
    let sides = [
        (gateway_url, &gateway),
        (bare_url.as_str(), &bare),
        (served_url.as_str(), &bare),
    ];
    let mut measured = Rounds::alternate(sides, rounds * 2, length).await;
    for (which, what) in [
        "gateway (key, audit, metrics, default log level)",
        "bare rmcp",
        "bare rmcp behind the gateway's listener (shared::serve)",
    ]
    .into_iter()
    .enumerate()
    {
        println!(
            "baseline: search, 1 source, {what}, {}",
            measured.summary(which)
        );
    }
    let rates = &measured.rates;
    let pairs: Vec<f64> = rates[0].iter().zip(&rates[1]).map(|(g, b)| g / b).collect();
    println!(
        "baseline: gateway / bare rmcp: calls/s ×{:.3} (round by round ×{:.3}–×{:.3}; target ≥ ×0.8)",
        median(&rates[0]) / median(&rates[1]),
        pairs.iter().copied().fold(f64::INFINITY, f64::min),
        pairs.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "baseline: bare rmcp behind the gateway's listener / bare rmcp: calls/s ×{:.3}; gateway / that: ×{:.3}",
        median(&rates[2]) / median(&rates[1]),
        median(&rates[0]) / median(&rates[2]),
    );
}

/// One side of `baseline` alone, for a profiler: its clients are built and connected first
/// (building a client reads the system's root certificates, which under callgrind takes longer
/// than the run), then `ready` is printed to standard error, and two seconds later (time to
/// turn a profiler's collection on) 32 clients call it for `BENCH_ONE_SIDE_SECS` (default 12).
/// Prints the calls made: divide a profile's totals by them.
async fn one_side_alone(side: &str, url: &str, target: &Target) {
    let secs = std::env::var("BENCH_ONE_SIDE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let clients: Vec<_> = (0..CONCURRENCY).map(|_| reqwest::Client::new()).collect();
    for http in &clients {
        one_call(http, url, target, search_body(0)).await;
    }
    eprintln!("one side ({side}): ready");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|http| {
            let (stop, url, target) = (stop.clone(), url.to_owned(), target.clone());
            tokio::spawn(async move { calls_until(&stop, &http, &url, &target).await.len() })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for worker in workers {
        calls += worker.await.unwrap();
    }
    println!(
        "one side ({side}): {calls} calls, {:.0} calls/s",
        calls as f64 / started.elapsed().as_secs_f64()
    );
}

/// The baseline: rmcp's streamable HTTP service configured as the gateway configures it
/// (stateless, JSON responses), serving one `search` tool over [`instant_hits`], and nothing
/// else.
mod bare {
    use rmcp::{
        ErrorData, RoleServer, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
            PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
        },
        service::RequestContext,
        transport::streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
        },
    };
    use serde_json::json;
    use std::sync::Arc;
    use uuid::Uuid;

    #[derive(Clone)]
    struct Bare {
        source_id: Uuid,
    }

    fn search_tool() -> Tool {
        gateway::tools::definitions()
            .iter()
            .find(|t| t.name == "search")
            .cloned()
            .expect("the gateway's search tool")
    }

    impl ServerHandler for Bare {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        }

        async fn list_tools(
            &self,
            _: Option<PaginatedRequestParams>,
            _: RequestContext<RoleServer>,
        ) -> Result<ListToolsResult, ErrorData> {
            Ok(ListToolsResult::with_all_items(vec![search_tool()]))
        }

        fn get_tool(&self, name: &str) -> Option<Tool> {
            (name == "search").then(search_tool)
        }

        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            _: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let args = request.arguments.unwrap_or_default();
            let query = args
                .get("query")
                .and_then(|q| q.as_str())
                .unwrap_or_default();
            let results: Vec<_> = super::instant_hits(self.source_id, query)
                .into_iter()
                .map(|hit| {
                    json!({"id": format!("box:{}:{}", self.source_id, hit.upstream_id),
                        "title": hit.title, "url": hit.url})
                })
                .collect();
            Ok(CallToolResult::structured(json!({"results": results})).into())
        }
    }

    /// Serves the bare server on a port of its own, with `axum::serve` or, `behind_listener`,
    /// with the gateway's `shared::serve` at the default header-read deadline; returns the port.
    pub async fn spawn(behind_listener: bool) -> u16 {
        let handler = Bare {
            source_id: Uuid::new_v4(),
        };
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_legacy_session_mode(false)
            .with_json_response(true);
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
        let router = axum::Router::new().route_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        if behind_listener {
            let timeout = std::time::Duration::from_secs(
                shared::Settings::default().common.http_header_timeout_secs,
            );
            tokio::spawn(shared::serve::serve(
                listener,
                router,
                timeout,
                std::future::pending(),
            ));
        } else {
            tokio::spawn(async move { axum::serve(listener, router).await });
        }
        port
    }
}

/// `search` over one remote MCP server (the gateway as its client, over loopback HTTP) against
/// one in-process source, in alternating closed-loop rounds. Prints both and the ratio.
async fn federated(gateway_url: &str, api: &Api) {
    let (rounds, length) = comparison_rounds();
    let port = bare::spawn(false).await;
    let source = api
        .post(
            "/sources",
            json!({"type": "mcp", "source_metadata": {"url": format!("http://127.0.0.1:{port}/mcp")}}),
        )
        .await;
    let server = api
        .post(
            "/mcp-servers",
            json!({"name": "federated", "source_ids": [source["id"]]}),
        )
        .await;
    let id = server["id"].as_str().unwrap();
    let key = api
        .post(&format!("/mcp-servers/{id}/keys"), json!({"name": "bench"}))
        .await;
    let remote = Target {
        host: server["endpoint"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://")
            .to_owned(),
        key: Some(key["key"].as_str().unwrap().to_owned()),
    };
    let local = server_with_sources(api, 1, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Warm up: the first call connects and negotiates with the upstream.
    let _ = closed_loop(gateway_url, &remote, length / 2).await;
    let mut measured = Rounds::alternate(
        [(gateway_url, &remote), (gateway_url, &local)],
        rounds,
        length,
    )
    .await;
    for (which, what) in ["1 remote MCP source (mcp)", "1 in-process source"]
        .into_iter()
        .enumerate()
    {
        println!("federated: search, {what}, {}", measured.summary(which));
    }
    let rates = &measured.rates;
    println!(
        "federated: remote / in-process: calls/s ×{:.3}",
        median(&rates[0]) / median(&rates[1]),
    );
}

async fn propagation(api: &Api, store: &Arc<gateway::snapshot::SnapshotStore>) {
    let mut delays = Vec::new();
    let writes = if quick() { 5 } else { 50 };
    for i in 0..writes {
        let written = Instant::now();
        let server = api
            .post(
                "/mcp-servers",
                json!({"name": format!("p{i}"), "source_ids": []}),
            )
            .await;
        let host = server["endpoint"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://")
            .to_owned();
        while store
            .load()
            .and_then(|s| s.server(&host).cloned())
            .is_none()
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(written.elapsed());
    }
    delays.sort();
    println!(
        "propagation, REST create → served by the gateway ({writes} writes): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1])
    );
}

async fn large_snapshot(pool: &PgPool, settings: &Settings) {
    let servers: usize = if quick() { 10_000 } else { 100_000 };
    let keyring = settings.common.keyring().unwrap();
    let account: uuid::Uuid = sqlx::query_scalar("insert into users (email, hashed_password) values ('big@example.com', '$2b$04$x') returning id")
        .fetch_one(pool).await.unwrap();
    // Its personal organization (made with the account) holds the servers.
    let user: uuid::Uuid =
        sqlx::query_scalar("select id from organizations where personal_user_id = $1")
            .bind(account)
            .fetch_one(pool)
            .await
            .unwrap();
    let started = Instant::now();
    for chunk in 0..(servers / 10_000) {
        let (mut source_ids, mut sealed, mut key_ids, mut hosts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..10_000 {
            let id = uuid::Uuid::new_v4();
            let secrets = json!({"client_secret": "s"}).as_object().unwrap().clone();
            let (ciphertext, key_id) = keyring.seal_source(id, &secrets);
            source_ids.push(id);
            sealed.push(ciphertext);
            key_ids.push(key_id);
            hosts.push(format!("s{}.big.example.com", chunk * 10_000 + i));
        }
        sqlx::query(
            "with src as (insert into sources (id, organization_id, type, source_metadata, secrets, secrets_key_id) \
               select s.id, $1, 'box', '{\"client_id\": \"abc\", \"subject_type\": \"enterprise\", \"subject_id\": \"1\"}'::jsonb, s.sealed, s.key_id \
               from unnest($2::uuid[], $3::bytea[], $4::text[]) as s(id, sealed, key_id) returning id), \
             srv as (insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
               select $1, 'big ' || h.host, 'https://' || h.host, h.host from unnest($5::text[]) with ordinality as h(host, n) \
               returning id, endpoint_host) \
             insert into mcp_server_sources (server_id, source_id, organization_id) \
               select srv.id, s.id, $1 from (select id, row_number() over () as n from srv) srv \
               join (select id, row_number() over () as n from unnest($2::uuid[]) as id) s using (n)",
        )
        .bind(user).bind(&source_ids).bind(&sealed).bind(&key_ids).bind(&hosts)
        .execute(pool).await.unwrap();
    }
    println!(
        "(inserted {servers} servers with one source each in {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let loader = Loader {
        pool: pool.clone(),
        keyring: Arc::new(keyring),
        rules: Arc::new(SourceRules::from_settings(&settings.sources)),
    };
    let before = rss_mb();
    let started = Instant::now();
    let snapshot = loader.full(1).await.unwrap();
    let elapsed = started.elapsed();
    let after = rss_mb();
    assert!(snapshot.len() >= servers);
    println!(
        "snapshot of {} servers: loaded in {:.2} s; resident memory {:.0} MB before, {:.0} MB after ({:+.0} MB)",
        snapshot.len(),
        elapsed.as_secs_f64(),
        before,
        after,
        after - before
    );
}

/// Where the daemons' log lines go during the run.
fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gateway-bench-{}.log", std::process::id()))
}

#[tokio::main]
async fn main() {
    let log = std::fs::File::create(log_path()).unwrap();
    let defaults = Settings::default();
    shared::telemetry::init_with(defaults.common.log_format, &defaults.common.log_level, log);
    on_fresh_database(run).await;
    shared::telemetry::flush();
    let logged = std::fs::metadata(log_path()).map_or(0, |m| m.len());
    println!(
        "(logged {:.1} MB at the default level; {} lines dropped)",
        logged as f64 / 1e6,
        shared::telemetry::dropped_lines()
    );
    let _ = std::fs::remove_file(log_path());
}

/// Both daemons on `database_url`, then the parts asked for.
async fn run(database_url: String) {
    let settings = settings(&database_url);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect(&database_url)
        .await
        .unwrap();
    shared::db::MIGRATOR.run(&pool).await.unwrap();

    let cp = control_plane::Application::build(&settings, pool.clone())
        .await
        .unwrap();
    let api_base = format!("http://127.0.0.1:{}/api/v1", cp.port());
    tokio::spawn(cp.run_until_stopped(std::future::pending()));
    let mcp = gateway::sources::mcp::Mcp::new(
        Duration::from_secs(5),
        Duration::from_millis(settings.gateway.source_timeout_ms),
        &settings.sources.mcp_allowed_hosts,
    )
    .unwrap();
    let registry = Registry {
        box_files: Arc::new(Instant3),
        mcp: Arc::new(mcp),
        ..Registry::new(&settings).unwrap()
    };
    let gw = gateway::Application::build(&settings, pool.clone(), registry)
        .await
        .unwrap();
    let gateway_url = format!("http://127.0.0.1:{}/mcp", gw.port());
    let store = gw.store();
    tokio::spawn(gw.run_until_stopped(std::future::pending()));

    let rest = shared::testing::Api::new(api_base, reqwest::Client::new());
    let api = Api {
        token: rest.user("bench@example.com").await,
        rest,
    };
    while store.load().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    if wanted("baseline") {
        against_bare_rmcp(&gateway_url, &api).await;
    }
    if wanted("throughput") || wanted("latency") {
        throughput(&gateway_url, &api, &pool, &settings).await;
    }
    if wanted("federated") {
        federated(&gateway_url, &api).await;
    }
    if wanted("propagation") {
        propagation(&api, &store).await;
    }
    if wanted("snapshot") {
        large_snapshot(&pool, &settings).await;
    }
    pool.close().await;
}
