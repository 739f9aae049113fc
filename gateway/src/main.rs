//! `gateway`: see `lib.rs`.

use std::path::PathBuf;

use clap::Parser;
use gateway::Application;
use shared::Settings;

// mimalloc rather than the system allocator: a call allocates and frees thousands of small
// objects across threads (hyper, rmcp, serde, the audit queue), where glibc's malloc took a
// quarter of the gateway's CPU and made throughput swing by ±30 % from run to run. Measured
// with `./dev bench`: see the README's benchmark section.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    shared::telemetry::init(settings.common.log_format, &settings.common.log_level);
    settings.validate_gateway()?;
    let pool = shared::db::pool(&settings)?;
    let app =
        Application::build(&settings, pool, gateway::sources::Registry::new(&settings)?).await?;
    tracing::info!(address = %settings.gateway.addr, port = app.port(), "gateway listening");
    let stopped = app.run_until_stopped(shared::shutdown::signal()).await;
    shared::telemetry::flush();
    Ok(stopped?)
}
