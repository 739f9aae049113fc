//! The console at scale: one user with 1,000 servers and 100,000 audit records (100 a server,
//! all in the last day). Every page is timed (median of five after a warm-up) and printed;
//! each must stay far below what an N+1 query over 1,000 servers would cost. The figures in
//! the README come from `./dev test -p control-plane --test api console_scale -- --nocapture`
//! (debug build, shared 2-core machine).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::{console::Person, helpers::spawn_app};

/// Seeds the servers, their links to one source, and the calls; returns the first server.
async fn seed(pool: &PgPool, user: &str, source: &str) -> String {
    sqlx::query(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host) \
         select $1::uuid, 'server ' || n, 'https://s' || n || '.example.com', 's' || n || '.example.com' \
         from generate_series(1, 1000) n",
    )
    .bind(user)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into mcp_server_sources (server_id, source_id, organization_id) \
         select id, $2::uuid, organization_id from mcp_servers where organization_id = $1::uuid",
    )
    .bind(user)
    .bind(source)
    .execute(pool)
    .await
    .unwrap();
    let busy: String = sqlx::query_scalar(
        "select id::text from mcp_servers where organization_id = $1::uuid order by name limit 1",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap();
    let calls = "insert into tool_calls (server_id, called_at, tool, argument, status, error_class, \
         result_count, duration_ms, sources) \
         select s.id, now() - (n % 1440) * interval '1 minute', \
                case when n % 5 = 0 then 'fetch' else 'search' end, 'query ' || n, \
                case when n % 10 = 0 then 'error' when n % 10 = 1 then 'partial' else 'ok' end, \
                case when n % 10 = 0 then 'all_sources_failed' when n % 10 = 1 then 'source_failed' end, \
                3, n % 400, json_build_array(json_build_object('source_id', $2::text, 'type', 'box', \
                'outcome', 'ok', 'latency_ms', n % 300, 'results', 3)) \
         from mcp_servers s cross join generate_series(1, $3) n \
         where s.organization_id = $1::uuid and ($4 = (s.id::text = $5))";
    // 100 calls on each server: one user's 100,000 audit records (the first server gets
    // `CONSOLE_SCALE_HOT_CALLS` instead, when set).
    for (per_server, busy_only) in [(hot_calls().unwrap_or(100), true), (100, false)] {
        sqlx::query(calls)
            .bind(user)
            .bind(source)
            .bind(per_server)
            .bind(busy_only)
            .bind(&busy)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("analyze").execute(pool).await.unwrap();
    busy
}

/// `CONSOLE_SCALE_HOT_CALLS=50000`: that many calls on the first server, to time a hot
/// server's usage page (printed only: the summary's per-source percentiles read every call
/// of the window, see the README).
fn hot_calls() -> Option<i32> {
    std::env::var("CONSOLE_SCALE_HOT_CALLS").ok()?.parse().ok()
}

async fn median(person: &Person, path: &str) -> Duration {
    let page = person.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}");
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let page = person.get(path).await;
        times.push(started.elapsed());
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    times.sort();
    times[2]
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
// The figures are the point: printed for `--nocapture`.
#[allow(clippy::print_stdout)]
async fn pages_stay_fast_with_a_thousand_servers_and_a_hundred_thousand_calls(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let source = ada.box_source("box-secret").await;
    let user: String = sqlx::query_scalar("select id::text from organizations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let busy = seed(&app.pool, &user, &source).await;
    let count: i64 = sqlx::query_scalar("select count(*) from tool_calls")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, i64::from(hot_calls().unwrap_or(100)) + 999 * 100);

    let pages = [
        "/servers".to_owned(),
        "/servers?offset=950".to_owned(),
        "/sources".to_owned(),
        format!("/servers/{busy}"),
        format!("/servers/{busy}/usage"),
        format!("/servers/{busy}/usage?bucket=day"),
        format!("/servers/{busy}/usage?tool=fetch&status=error&offset=100"),
        format!("/sources/{source}/delete"),
    ];
    let token = app
        .token_for("ada@example.com", crate::helpers::PASSWORD)
        .await;
    for api in [
        "calls/series?bucket=hour",
        "calls/summary",
        "calls?limit=50",
        "calls?tool=fetch&status=error&offset=100",
    ] {
        let path = format!("/api/v1/mcp-servers/{busy}/{api}");
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let response = app.send(reqwest::Method::GET, &path, &token).await;
            assert_eq!(response.status(), StatusCode::OK);
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "API {api}: median {:.1} ms",
            times[2].as_secs_f64() * 1000.0
        );
    }
    for page in &pages {
        let took = median(&ada, page).await;
        println!(
            "console page {page}: median {:.1} ms",
            took.as_secs_f64() * 1000.0
        );
        assert!(
            hot_calls().is_some() || took < Duration::from_millis(250),
            "{page} took {took:?}"
        );
    }
}
