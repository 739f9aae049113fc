//! `control-plane`: see `cli.rs` for the commands.

use clap::Parser;
use control_plane::{
    Application,
    cli::{self, AdminAction, Cli, Command, OAuthAction, SecretsAction},
};
use shared::Settings;

// The same allocator as the gateway (see `gateway/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    shared::telemetry::init(settings.common.log_format, &settings.common.log_level);
    let result = run(cli, settings).await;
    // Lines still queued for standard error are written before the process ends.
    shared::telemetry::flush();
    result
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let pool = shared::db::pool(&settings)?;

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => cli::migrate(&pool, &settings).await,
        Command::Admin {
            action: AdminAction::Grant { email },
        } => cli::set_role(&pool, &email, true).await,
        Command::Admin {
            action: AdminAction::Revoke { email },
        } => cli::set_role(&pool, &email, false).await,
        Command::Secrets {
            action: SecretsAction::Rotate,
        } => {
            let resealed = cli::rotate_secrets(&pool, &settings.common.keyring()?).await?;
            tracing::info!(resealed, "rotation finished");
            Ok(())
        }
        Command::Oauth {
            action: OAuthAction::RotateSigningKey,
        } => {
            let kid =
                control_plane::oauth::signing::rotate(&pool, &settings.common.keyring()?).await?;
            tracing::info!(kid = %kid, "OAuth signing key rotated; gateways verify with the new key at once");
            Ok(())
        }
        Command::Serve => {
            settings.validate_control_plane()?;
            cli::migrate(&pool, &settings).await?;
            let app = Application::build(&settings, pool).await?;
            tracing::info!(
                address = %settings.control_plane.addr,
                port = app.port(),
                docs = control_plane::openapi::DOCS_PATH,
                "control plane listening"
            );
            app.run_until_stopped(shared::shutdown::signal()).await?;
            Ok(())
        }
    }
}
