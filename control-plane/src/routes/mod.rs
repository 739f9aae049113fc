//! Every route of the control plane, grouped by what it owns. Each REST module exposes
//! `fn router() -> OpenApiRouter<AppState>`, so a route and its OpenAPI entry are one thing;
//! [`docs`] serves the viewer of that document.

pub mod account;
pub mod activity;
pub mod admin;
pub mod auth;
pub mod call_series;
pub mod calls;
pub mod docs;
pub mod grants;
pub mod health;
pub mod invitations;
pub mod keys;
pub mod mcp_servers;
pub mod me;
pub mod members;
pub mod oauth;
pub mod organizations;
pub mod responses;
pub mod sources;
pub mod tls;
pub mod write;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The versioned REST API, mounted at `/api/v1`.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(organizations::router())
        .merge(members::router())
        .merge(invitations::router())
        .merge(admin::router())
        .merge(sources::router())
        .merge(mcp_servers::router())
        .merge(keys::router())
        .merge(grants::router())
        .merge(calls::router())
        .merge(call_series::router())
        .merge(activity::router())
        .merge(tls::router())
        .merge(health::api_router())
}
