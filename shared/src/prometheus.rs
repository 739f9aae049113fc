//! Prometheus metrics: the process-wide recorder (installed once, whichever daemon asks
//! first), an HTTP middleware counting requests by route and status with a latency histogram,
//! and the `/metrics` listener each daemon serves on an address of its own.

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{LazyLock, OnceLock, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics::{Counter, Histogram, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Latency buckets in seconds: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder handle; installs the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Counts every request by matched route (the template, never the raw path: ids would make
/// unbounded series), method and status, and records its duration.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    record_http(route, &method, response.status(), started);
    response
}

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Counts one request to `route` (a template, or [`UNMATCHED`]) and records its duration since
/// `started`: what [`track_http`] does, for a service that knows the route itself.
pub fn record_http(route: &str, method: &Method, status: StatusCode, started: Instant) {
    let method = method_label(method);
    let elapsed = started.elapsed().as_secs_f64();
    THREAD_METERS.with_borrow_mut(|known| {
        let found = known
            .iter()
            .find(|(r, m, s, _)| **r == *route && *m == method && *s == status);
        if let Some((_, _, _, (count, duration))) = found {
            count.increment(1);
            duration.record(elapsed);
            return;
        }
        let meters = http_meters(route, method, status);
        meters.0.increment(1);
        meters.1.record(elapsed);
        if known.len() < THREAD_METERS_MAX {
            known.push((route.into(), method, status, meters));
        }
    });
}

/// The meters of one route, method and status.
type KnownMeters = (Box<str>, &'static str, StatusCode, HttpMeters);

/// Combinations a thread keeps its own handles for (beyond them, it asks the shared map).
const THREAD_METERS_MAX: usize = 64;

thread_local! {
    /// The handles this thread has used, by route, method and status: a request then touches
    /// nothing another thread writes but the meters themselves (not the shared map's lock, whose
    /// every read is a write to one cache line, nor the handles' reference counts).
    static THREAD_METERS: std::cell::RefCell<Vec<KnownMeters>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The counter and histogram of one route, method and status.
type HttpMeters = (Counter, Histogram);
/// Per route: the meters of each method and status seen.
type ByRoute = HashMap<Box<str>, Vec<(&'static str, StatusCode, HttpMeters)>>;

/// Handles by route, then by method and status: each combination's metric key is built and
/// registered once. Building a key on every request (labels allocated, hashed, looked up in
/// the recorder) cost more than the rest of this middleware. Bounded: routes are templates,
/// methods and statuses few.
fn http_meters(route: &str, method: &'static str, status: StatusCode) -> HttpMeters {
    static METERS: LazyLock<RwLock<ByRoute>> = LazyLock::new(RwLock::default);
    let find = |by_route: &ByRoute| {
        by_route.get(route).and_then(|known| {
            known
                .iter()
                .find(|(m, s, _)| *m == method && *s == status)
                .map(|(_, _, meters)| meters.clone())
        })
    };
    if let Some(meters) = find(&METERS.read().unwrap_or_else(PoisonError::into_inner)) {
        return meters;
    }
    let mut by_route = METERS.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(meters) = find(&by_route) {
        return meters;
    }
    let labels = [
        ("route", SharedString::from(route.to_owned())),
        ("method", SharedString::const_str(method)),
        ("status", SharedString::from(status.as_str().to_owned())),
    ];
    let meters = (
        metrics::counter!("http_requests_total", &labels),
        metrics::histogram!("http_request_duration_seconds", &labels),
    );
    by_route
        .entry(route.into())
        .or_default()
        .push((method, status, meters.clone()));
    meters
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Binds the metrics listener, if an address is configured.
pub async fn bind(name: &'static str, address: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = crate::config::listen_address(name, address)? else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {address} ({name}): {err}"))?;
    // Installed now, before any request: handles registered later all reach it.
    handle();
    Ok(Some(listener))
}

/// Serves `GET /metrics` on `listener` until the process ends. `refresh` runs before each
/// scrape, to set gauges that are read rather than counted (snapshot age, pool usage).
pub async fn serve<F, Fut>(listener: TcpListener, refresh: F) -> std::io::Result<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let handle = handle();
    let scrape_handle = handle.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let (handle, refresh) = (scrape_handle.clone(), refresh.clone());
            async move {
                refresh().await;
                metrics::counter!("log_lines_dropped_total")
                    .absolute(crate::telemetry::dropped_lines());
                handle.run_upkeep();
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    );
    // Histogram samples pile up in the recorder until drained: drain them on a timer, not
    // only at scrapes, so memory stays flat whether or not anyone scrapes.
    let upkeep = async {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    };
    tokio::select! {
        served = axum::serve(listener, app.into_make_service()) => served,
        () = upkeep => Ok(()),
    }
}

/// The port a listener is bound to (0 if unknown).
pub fn port(listener: Option<&TcpListener>) -> Option<u16> {
    listener
        .and_then(|l| l.local_addr().ok())
        .map(|a: SocketAddr| a.port())
}
