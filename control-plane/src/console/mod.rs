//! The web console at `/`: server-rendered pages for people, on the same origin as the API.
//! Every page is a client of the REST API in process ([`api`]), so the console offers what the
//! API offers and refuses what it refuses. Forms POST and redirect; each works without
//! script; destructive actions ask first; every form carries an anti-forgery token and must
//! come from this origin ([`forms`]).

pub mod account;
pub mod admin;
pub mod api;
pub mod connections;
pub mod forms;
pub mod invitations;
pub mod items;
pub mod members;
pub mod org_page;
pub mod org_settings;
pub mod organizations;
pub mod pages;
pub mod server;
pub mod server_access;
pub mod servers;
pub mod session;
pub mod sources;
pub mod usage;

use axum::{
    Extension, Router,
    routing::{get, post},
};

use crate::state::AppState;

/// The console's routes and its assets.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/signin", get(account::sign_in_page).post(account::sign_in))
        .route("/signup", get(account::sign_up_page).post(account::sign_up))
        .route("/signout", post(account::sign_out))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route(
            "/account/delete",
            get(account::delete_page).post(account::delete),
        )
        .merge(source_routes())
        .merge(server_routes())
        .merge(organization_routes())
        .route("/connections", get(connections::list))
        .route(
            "/connections/{grant_id}/disconnect",
            get(connections::disconnect_page).post(connections::disconnect),
        )
        .route("/admin", get(admin::overview))
        .route("/admin/servers/delete", get(admin::hard_delete_page))
        .route("/admin/servers/{id}/delete", post(admin::hard_delete))
        .layer(Extension(api::Api::new(state.clone())))
        .merge(crate::web::assets::router())
}

fn source_routes() -> Router<AppState> {
    Router::new()
        .route("/sources", get(sources::list))
        .route("/sources/new", get(sources::new_page).post(sources::create))
        .route(
            "/sources/{id}/edit",
            get(sources::edit_page).post(sources::update),
        )
        .route(
            "/sources/{id}/delete",
            get(sources::delete_page).post(sources::delete),
        )
}

fn organization_routes() -> Router<AppState> {
    let member = "/organizations/{id}/members/{user_id}";
    Router::new()
        .route(
            "/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route("/organizations/{id}", get(org_page::show_org))
        .route("/organizations/{id}/settings", post(org_settings::rename))
        .route(
            "/organizations/{id}/delete",
            get(org_settings::delete_page).post(org_settings::delete),
        )
        .route(
            &format!("{member}/role"),
            get(members::role_page).post(members::change_role),
        )
        .route(
            &format!("{member}/remove"),
            get(members::remove_page).post(members::remove),
        )
        .route(
            &format!("{member}/transfer"),
            get(members::transfer_page).post(members::transfer),
        )
        .route("/organizations/{id}/invitations", post(invitations::create))
        .route(
            "/organizations/{id}/invitations/{invitation_id}/revoke",
            get(invitations::revoke_page).post(invitations::revoke),
        )
        .route("/invitations/{token}", get(invitations::accept_page))
        .route("/invitations/{token}/accept", post(invitations::accept))
}

fn server_routes() -> Router<AppState> {
    Router::new()
        .route("/servers", get(servers::list))
        .route("/servers/new", get(servers::new_page).post(servers::create))
        .route("/servers/{id}", get(server::show_server))
        .route("/servers/{id}/usage", get(usage::usage))
        .route("/servers/{id}/rename", post(server::rename))
        .route("/servers/{id}/attach", post(server::attach))
        .route("/servers/{id}/access", post(server::update))
        .route(
            "/servers/{id}/sources/{source_id}/detach",
            get(server::detach_page).post(server::detach),
        )
        .route(
            "/servers/{id}/public",
            get(server::public_page).post(server::toggle_public),
        )
        .route(
            "/servers/{id}/delete",
            get(server::delete_page).post(server::delete),
        )
        .route("/servers/{id}/restore", post(server::restore))
        .route("/servers/{id}/keys", post(server::create_key))
        .route(
            "/servers/{id}/keys/{key_id}/revoke",
            get(server::revoke_page).post(server::revoke),
        )
        .route(
            "/servers/{id}/grants/{grant_id}/disconnect",
            get(connections::server_disconnect_page).post(connections::server_disconnect),
        )
}
