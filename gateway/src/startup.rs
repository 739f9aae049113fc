//! Building and running the gateway. A bound [`Application`] is a few owned parts: its
//! [`Listeners`], the HTTP router ([`crate::ingress`]), the state its background tasks share
//! ([`Parts`]), those tasks ([`Background`]) and the audit writer ([`AuditWriter`]), all under
//! one cancellation tree ([`Stopping`]). A stop goes in this order:
//!
//! 1. at the stop signal the replica turns unready and keeps answering for
//!    `GATEWAY_DRAIN_SECS` (each response closing its connection), then stops accepting;
//! 2. calls in flight finish, for the grace period at most (the source deadline plus 2 s),
//!    after which the MCP event streams still open are closed (through rmcp's token);
//! 3. the background tasks stop (snapshot keeper, source retainer, usage flush, idle sweep,
//!    `/metrics`) and the sources' pooled upstream connections are closed;
//! 4. the audit writer stores what is queued, within [`AUDIT_DRAIN`]; key usage is flushed.

use std::{collections::HashSet, sync::Arc, time::Duration};

use shared::background::Background;
use shared::{Settings, model::SourceRules};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    ingress,
    ingress::access::{Access, Limits, Usage},
    ingress::edge::Draining,
    ingress::routing::Routing,
    mcp::Gateway,
    observe::audit::AuditLog,
    snapshot::{self, Loader, SnapshotStore},
    sources::Registry,
    tools::Tools,
    tools::fanout::UpstreamSlots,
};

/// How often key last-used times are written.
const USAGE_FLUSH: Duration = Duration::from_secs(15);
/// How often idle rate-limit entries are forgotten.
const FORGET_IDLE: Duration = Duration::from_secs(60);
/// How long the audit writer may take to store what is queued at shutdown.
const AUDIT_DRAIN: Duration = Duration::from_secs(3);

/// A bound, ready-to-run gateway.
pub struct Application {
    listeners: Listeners,
    router: ingress::Service,
    parts: Parts,
    background: Background,
    audit_writer: AuditWriter,
    stopping: Stopping,
}

/// Where the gateway listens.
struct Listeners {
    http: TcpListener,
    /// `/metrics`, when `GATEWAY_METRICS_ADDR` names an address.
    metrics: Option<TcpListener>,
    /// `HTTP_HEADER_TIMEOUT_SECS`.
    header_timeout: Duration,
}

/// What the request path shares with the background tasks and the last steps of a stop.
struct Parts {
    store: Arc<SnapshotStore>,
    pool: PgPool,
    audit: AuditLog,
    usage: Arc<Usage>,
    access: Access,
    registry: Registry,
}

/// The cancellation tree and the timings of a stop. Every token is a child of one root, so
/// nothing the application started outlives it: dropping an application (run or not, or a
/// run cut short) cancels the root, which stops every task and lets the audit writer drain.
struct Stopping {
    /// Cancels the root when dropped (at the end of a stop at the latest).
    root: DropGuard,
    /// rmcp's: closes the MCP event streams still open after the grace period.
    streams: CancellationToken,
    /// Set at the stop signal.
    draining: Draining,
    /// `GATEWAY_DRAIN_SECS`: how long a stopping replica keeps accepting.
    drain: Duration,
    /// How long calls in flight may take to finish once it no longer accepts.
    grace: Duration,
}

impl Application {
    /// Binds `settings.gateway.addr` (port 0 picks one) and starts loading the configuration.
    pub async fn build(
        settings: &Settings,
        pool: PgPool,
        registry: Registry,
    ) -> anyhow::Result<Self> {
        // Bound first: when a port is taken, nothing has been started.
        let listeners = Listeners::bind(settings).await?;
        let root = CancellationToken::new();
        let store = Arc::new(SnapshotStore::default());
        let loader = Loader {
            pool: pool.clone(),
            keyring: Arc::new(settings.common.keyring()?),
            rules: Arc::new(SourceRules::for_deployment(settings)),
        };
        let audit_stop = root.child_token();
        let (audit, writer) = AuditLog::new(
            pool.clone(),
            settings.gateway.audit_buffer,
            audit_stop.clone(),
        );
        let audit_writer = AuditWriter {
            stop: audit_stop,
            task: tokio::spawn(writer),
        };
        let usage = Arc::new(Usage::default());
        let limits = Limits {
            per_minute: settings.gateway.key_requests_per_minute,
            trust_forwarded_for: settings.gateway.trust_forwarded_for,
        };
        let access = Access::new(
            limits,
            usage.clone(),
            &settings.common.control_plane_public_url,
            store.clone(),
        );
        let mut background = Background::new(root.child_token());
        background.spawn(
            "snapshot keeper",
            snapshot::keep_current(
                store.clone(),
                loader,
                Duration::from_secs(settings.gateway.resync_secs),
            ),
        );
        background.spawn(
            "source retainer",
            crate::sources::retain_served(store.clone(), registry.clone()),
        );
        let stopping = Stopping {
            streams: root.child_token(),
            root: root.drop_guard(),
            draining: Draining::default(),
            drain: Duration::from_secs(settings.gateway.drain_secs),
            // The longest call is bounded by the source deadline.
            grace: Duration::from_millis(settings.gateway.source_timeout_ms)
                + Duration::from_secs(2),
        };
        let tools = Tools {
            registry: registry.clone(),
            source_timeout: Duration::from_millis(settings.gateway.source_timeout_ms),
            max_results: settings.gateway.max_results,
            slots: UpstreamSlots::new(settings.gateway.upstream_calls_per_server),
        };
        let routing = Routing {
            store: store.clone(),
            trust_forwarded_host: settings.gateway.trust_forwarded_host,
            allowed_origins: settings.gateway.allowed_origins.clone().into(),
        };
        let router = ingress::service(
            Gateway::new(tools, audit.clone()),
            routing,
            access.clone(),
            settings.common.control_plane_public_url.as_str().into(),
            stopping.draining.clone(),
            settings.gateway.sessions,
            stopping.streams.clone(),
        );
        Ok(Self {
            listeners,
            router,
            parts: Parts {
                store,
                pool,
                audit,
                usage,
                access,
                registry,
            },
            background,
            audit_writer,
            stopping,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listeners.http.local_addr().map_or(0, |a| a.port())
    }

    /// The snapshot holder (tests and benchmarks watch it).
    pub fn store(&self) -> Arc<SnapshotStore> {
        self.parts.store.clone()
    }

    /// The port of the `/metrics` listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        shared::prometheus::port(self.listeners.metrics.as_ref())
    }

    /// How many audit records were dropped because the queue was full.
    pub fn audit_drops(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.parts.audit.drops()
    }

    /// Serves until `shutdown` resolves, then stops in the order the module describes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listeners,
            router,
            parts,
            mut background,
            audit_writer,
            stopping,
        } = self;
        parts.start_housekeeping(&mut background, listeners.metrics);
        let result = shared::serve::serve(
            listeners.http,
            router,
            listeners.header_timeout,
            stopping.after(shutdown),
        )
        .await;
        // Steps 2 to 4, once the connections have closed (or the grace period has passed).
        stopping.streams.cancel();
        background.stop().await;
        // Connections a handler keeps (database pools) are closed.
        parts.registry.retain(&HashSet::new());
        // What was queued still gets written (unless the database is away too long).
        audit_writer.drain(AUDIT_DRAIN).await;
        parts.usage.flush(&parts.pool).await;
        stopping.done();
        result
    }
}

impl Listeners {
    /// The gateway's listener and, if configured, the `/metrics` one.
    async fn bind(settings: &Settings) -> anyhow::Result<Self> {
        let http = TcpListener::bind(settings.gateway.addr)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot listen on {} (GATEWAY_ADDR): {err}",
                    settings.gateway.addr
                )
            })?;
        let metrics =
            shared::prometheus::bind("GATEWAY_METRICS_ADDR", &settings.gateway.metrics_addr)
                .await?;
        Ok(Self {
            http,
            metrics,
            header_timeout: Duration::from_secs(settings.common.http_header_timeout_secs),
        })
    }
}

impl Parts {
    /// The tasks that run while serving: `/metrics`, the key-usage flush and the sweep of idle
    /// rate-limit entries.
    fn start_housekeeping(&self, background: &mut Background, metrics: Option<TcpListener>) {
        if let Some(listener) = metrics {
            let store = self.store.clone();
            background.spawn("metrics", async move {
                let served = shared::prometheus::serve(listener, move || {
                    let store = store.clone();
                    async move { snapshot_gauges(&store) }
                });
                if let Err(err) = served.await {
                    tracing::warn!(error = %err, "the metrics listener stopped");
                }
            });
        }
        background.spawn(
            "usage flush",
            self.usage
                .clone()
                .flush_every(self.pool.clone(), USAGE_FLUSH),
        );
        let access = self.access.clone();
        background.spawn("idle sweep", async move {
            let mut tick = tokio::time::interval(FORGET_IDLE);
            loop {
                tick.tick().await;
                access.forget_idle();
            }
        });
    }
}

impl Stopping {
    /// Resolves, after `shutdown` and the drain window, when the listener is to stop
    /// accepting; from then on the calls in flight have the grace period before the event
    /// streams are closed.
    async fn after(&self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        // Unready at once; keep answering (each response closing its connection) while
        // proxies notice, then stop accepting.
        self.draining.start();
        tracing::info!(
            drain_ms = self.drain.as_millis() as u64,
            "stopping: draining connections"
        );
        tokio::time::sleep(self.drain).await;
        tracing::info!(
            grace_ms = self.grace.as_millis() as u64,
            "stopping: finishing calls in flight"
        );
        let (streams, grace) = (self.streams.clone(), self.grace);
        tokio::spawn(async move {
            // Ends early once the stop has gone on without waiting for the grace period.
            let _ = streams.run_until_cancelled(tokio::time::sleep(grace)).await;
            streams.cancel();
        });
    }

    /// Cancels the root: every token of the tree (each already cancelled in order by now).
    fn done(self) {
        drop(self.root);
    }
}

/// The audit log's writer, stopped last: every call has been recorded by then.
struct AuditWriter {
    /// A child of the root.
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AuditWriter {
    /// Stores what is queued, giving up after `deadline` (the database may be away).
    async fn drain(mut self, deadline: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(deadline, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            tracing::warn!("audit records still queued at shutdown were not written");
        }
    }
}

/// Snapshot health, read at each scrape.
fn snapshot_gauges(store: &SnapshotStore) {
    let snapshot = store.load();
    metrics::gauge!("snapshot_loaded").set(if snapshot.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!("snapshot_version").set(snapshot.as_ref().map_or(0.0, |s| s.version as f64));
    metrics::gauge!("snapshot_servers").set(snapshot.as_ref().map_or(0.0, |s| s.len() as f64));
    metrics::gauge!("snapshot_age_seconds").set(store.age_secs());
    metrics::gauge!("snapshot_stale").set(if store.is_stale() { 1.0 } else { 0.0 });
}
