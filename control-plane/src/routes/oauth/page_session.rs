//! The session the authorization pages' sign-in form opens: a token of its own audience
//! (`mcp-gateway/oauth-pages`, see [`crate::auth::jwt`]) in a cookie sent to `/oauth` only,
//! living 15 minutes (enough for one connection, short on a shared browser). The API and the
//! console refuse it, as a cookie and as a bearer token: it can approve a connection on the
//! consent page and nothing else. "Not you?" revokes it on the server before the browser
//! forgets it, so a copy of the cookie stops working too.

use std::time::Duration;

use axum_extra::extract::{CookieJar, cookie::Cookie};
use uuid::Uuid;

use crate::{
    db::users,
    session::{AuthUser, cookie::scoped_cookie},
    state::AppState,
};

/// The cookie's name.
const COOKIE: &str = "mcpgw_oauth";
/// Where the browser sends it: the authorization pages.
const PATH: &str = "/oauth";
/// How long the session lives.
const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The cookie of a new session for `user_id` (under its current `token_version`).
pub fn start(
    state: &AppState,
    user_id: Uuid,
    token_version: i32,
) -> anyhow::Result<Cookie<'static>> {
    let token = state.tokens.issue_pages(user_id, token_version, LIFETIME)?;
    Ok(cookie(state, token, LIFETIME.as_secs()))
}

/// The signed-in user of this browser's session, if it is live.
pub async fn current(state: &AppState, jar: &CookieJar) -> Option<AuthUser> {
    let claims = state.tokens.verify_pages(jar.get(COOKIE)?.value())?;
    AuthUser::from_claims(state, claims).await.ok()
}

/// Ends this browser's session: its token is revoked, then the cookie dropped.
pub async fn end(state: &AppState, jar: CookieJar) -> CookieJar {
    let claims = jar
        .get(COOKIE)
        .and_then(|c| state.tokens.verify_pages(c.value()));
    if let Some(claims) = claims {
        let revoked =
            users::revoke_token(&state.pool, claims.jti, claims.sub, claims.expires_at()).await;
        match revoked {
            Ok(()) => tracing::info!(user_id = %claims.sub, "authorization pages' session ended"),
            Err(err) => tracing::error!(error = %err, "cannot revoke the pages' session"),
        }
    }
    jar.remove(cookie(state, String::new(), 0))
}

fn cookie(state: &AppState, token: String, max_age_secs: u64) -> Cookie<'static> {
    scoped_cookie(
        COOKIE,
        token,
        PATH,
        max_age_secs,
        state.config.cookie_secure,
    )
}
