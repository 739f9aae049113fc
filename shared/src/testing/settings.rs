//! The one settings builder of tests and benches.

use secrecy::SecretString;

use crate::Settings;

/// The session-token key of test daemons (tests forge tokens with and without it).
pub const JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// The secrets key of test daemons (32 bytes, base64).
pub const SECRETS_KEY: &str = "dGVzdC1zZWNyZXRzLWtleS1vZi0zMi1ieXRlcyEhISE=";

/// Valid settings for daemons under test: every listener on port 0, known keys, the cheapest
/// bcrypt cost, plain-HTTP cookies and a pool of three fixed endpoints. Tests hand the
/// daemons a pool of their own database, so the database URL is the default; change the rest
/// by struct update or through `&mut`.
pub fn settings() -> Settings {
    let mut settings = Settings::default();
    let control_plane = &mut settings.control_plane;
    control_plane.addr = ([127, 0, 0, 1], 0).into();
    control_plane.metrics_addr = "127.0.0.1:0".to_owned();
    control_plane.jwt_secret = Some(SecretString::from(JWT_SECRET));
    control_plane.mcp_gateway_url_pools =
        "https://mcp1.example.com,https://mcp2.example.com,https://mcp3.example.com".to_owned();
    control_plane.bcrypt_cost = 4;
    control_plane.cookie_secure = false;
    settings.gateway.addr = ([127, 0, 0, 1], 0).into();
    settings.gateway.metrics_addr = "127.0.0.1:0".to_owned();
    settings.common.secrets_key = Some(SecretString::from(SECRETS_KEY));
    // Tests hand the daemons their pool, so this URL only names the server `postgres` sources
    // may not point at: a documentation address (no DNS lookup), not the default
    // `localhost:5432`, which tests use as an ordinary source host. Tests of that rule set it.
    settings.common.database_url =
        SecretString::from("postgres://192.0.2.1:5432/mcp_gateway".to_owned());
    settings
}

/// [`settings`] for daemons that open their own pool on the database at `database_url` (the
/// benches).
pub fn settings_at(database_url: &str) -> Settings {
    let mut settings = settings();
    settings.common.database_url = SecretString::from(database_url.to_owned());
    settings
}
