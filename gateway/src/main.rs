//! `gateway`: the MCP data plane. This first version only serves its probes; MCP serving,
//! the configuration snapshot and the source handlers come with their issues.

use std::path::PathBuf;

use axum::{Json, Router, http::StatusCode, routing::get};
use clap::Parser;
use shared::Settings;

/// MCP gateway data plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML settings file (also `MCP_GATEWAY_CONFIG`); the environment overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    shared::telemetry::init(settings.log_format, &settings.log_level);
    settings.validate_gateway()?;

    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"error": {"code": "not_found", "message": "No MCP server is served here yet."}})),
            )
        });
    let listener = tokio::net::TcpListener::bind(settings.gateway_addr).await?;
    tracing::info!(address = %settings.gateway_addr, "gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shared::shutdown::signal())
        .await?;
    Ok(())
}
