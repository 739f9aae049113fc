//! `/oauth/authorize`: where an agent sends its user's browser. `GET` checks the request and
//! shows a sign-in form (no session) or the consent page (a session); `POST` takes the forms.
//!
//! A refused request gets an error page and the browser is sent nowhere (see [`Refusal`]);
//! only the person's own answer (Approve, with `code`, or Deny, with `access_denied`) goes back
//! to the client's redirect URI, with `state` and `iss`. A `resource` that is not one of the
//! signed-in user's live servers is `invalid_target`, whether it belongs to someone else or to
//! no one. The pages' session lives 15 minutes (enough for one connection, short on a shared
//! browser), and the consent page offers to switch accounts. Forms carry an anti-forgery token bound to a random cookie of this browser
//! and to the request, and a POST from another origin is refused.
//!
//! Anyone may send these requests, and each may name a client whose metadata document must
//! be fetched: they are limited per client address (IPv6: per /64) by
//! `OAUTH_AUTHORIZE_REQUESTS_PER_MINUTE_PER_CLIENT` (429 with a page and `Retry-After`), and
//! the fetches by [`crate::oauth::documents`].

use std::{collections::HashMap, net::IpAddr};

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shared::oauth::{CODE_PREFIX, SCOPE, canonical_resource, random_token};

use crate::{
    activity::{Action, Seen},
    db::oauth as db,
    domain::Email,
    extract::client_ip,
    oauth::{CODE_TTL, clients::Client},
    routes::oauth::{
        page_session,
        pages::{self, Consent, ErrorPage, SignIn},
    },
    session::{AuthUser, cookie::scoped_cookie, signin},
    state::AppState,
    web::next,
};

/// Random per-browser value the forms' anti-forgery tokens are bound to.
const FORM_COOKIE: &str = "mcpgw_oauth_form";
const COOKIE_PATH: &str = "/oauth";
/// Longest query accepted.
const MAX_QUERY: usize = 8 * 1024;

/// A checked authorization request.
struct Request {
    /// The query string as received: the forms carry it, and every POST checks it again.
    raw: String,
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    /// Canonical.
    resource: String,
}

/// Why a request cannot go on. Either way the person sees a page and the browser is sent
/// nowhere: anyone can register a client with any `https://` redirect URI, so redirecting on
/// an error would make this domain an open redirector (RFC 9700 §4.11.2). The client learns
/// of the refusal when its user comes back, and the page says what to tell its developers.
enum Refusal {
    /// The client or redirect URI is in doubt.
    Page(String),
    /// The request is wrong: OAuth's error code and why.
    Invalid {
        error: &'static str,
        description: &'static str,
    },
}

/// `GET /oauth/authorize`.
pub async fn show(
    State(state): State<AppState>,
    parts: Parts,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    let from = client_ip(&parts, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_authorize(from) {
        return too_many(wait);
    }
    let request = match check(&state, query.as_deref().unwrap_or_default(), from).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    let (jar, form_cookie) = form_cookie(jar, state.config.cookie_secure);
    match session(&state, &jar).await {
        Some(user) => (jar, consent(&state, &request, &user, &form_cookie).await).into_response(),
        None => (
            jar,
            sign_in(&state, &request, &form_cookie, "", None, StatusCode::OK),
        )
            .into_response(),
    }
}

/// `POST /oauth/authorize`: the sign-in form, or Approve / Deny.
pub async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    let from = client_ip(&parts, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_authorize(from) {
        return too_many(wait);
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let request = match check(&state, field("request"), from).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    let form_value = jar.get(FORM_COOKIE).map(|c| c.value().to_owned());
    let genuine = same_origin(&parts.headers, &state.oauth.issuer)
        && form_value.as_deref().is_some_and(|cookie| {
            state
                .tokens
                .check_form_token(field("csrf"), &binding(cookie, &request.raw))
        });
    if !genuine {
        tracing::warn!("authorization form refused: missing or forged anti-forgery token");
        return page_error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Start the connection again from the app.",
        );
    }
    let form_cookie = form_value.unwrap_or_default();
    match field("action") {
        "signin" => {
            let password = SecretString::from(field("password").to_owned());
            sign_in_submitted(
                &state,
                &parts,
                jar,
                &request,
                &form_cookie,
                field("email"),
                password,
            )
            .await
        }
        "approve" => match session(&state, &jar).await {
            Some(user) => {
                approve(
                    &state,
                    &request,
                    &user,
                    &Seen::of(&parts, state.config.trust_forwarded_for),
                )
                .await
            }
            None => sign_in(
                &state,
                &request,
                &form_cookie,
                "",
                Some("Your session ended; sign in again."),
                StatusCode::UNAUTHORIZED,
            ),
        },
        "switch" => {
            // "Not you?": end this browser's session and sign in again.
            let jar = page_session::end(&state, jar).await;
            let page = sign_in(&state, &request, &form_cookie, "", None, StatusCode::OK);
            (jar, page).into_response()
        }
        "deny" => {
            tracing::info!(client_id = %request.client.client_id, "authorization denied by the user");
            redirect_to_client(
                &state,
                &request.redirect_uri,
                request.state.as_deref(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "The user denied the request."),
                ],
            )
        }
        _ => page_error(StatusCode::BAD_REQUEST, "Unknown action."),
    }
}

/// Checks the query of an authorization request from `from`, in the order RFC 6749 asks.
async fn check(state: &AppState, raw: &str, from: IpAddr) -> Result<Request, Refusal> {
    if raw.len() > MAX_QUERY {
        return Err(Refusal::Page(
            "The authorization request is too long.".to_owned(),
        ));
    }
    let mut params: HashMap<String, String> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if params
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(Refusal::Page(format!(
                "The parameter {name} is given more than once."
            )));
        }
    }
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client_id = get("client_id").ok_or_else(|| {
        Refusal::Page("The request names no client (client_id is missing).".to_owned())
    })?;
    let client = state
        .oauth
        .client(&state.pool, client_id, from)
        .await
        .map_err(Refusal::Page)?;
    let redirect_uri = match get("redirect_uri") {
        Some(uri) if client.accepts_redirect(uri) => uri.to_owned(),
        Some(_) => {
            return Err(Refusal::Page(
                "The redirect URI is not one this client registered, so this page will not send you there.".to_owned(),
            ));
        }
        None => return Err(Refusal::Page("The request has no redirect_uri.".to_owned())),
    };
    let state_param = get("state").map(str::to_owned);
    let fail =
        |error: &'static str, description: &'static str| Refusal::Invalid { error, description };
    if get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    let challenge = get("code_challenge").ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        )
    })?;
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "Only the S256 code_challenge_method is supported.",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters).",
        ));
    }
    if get("scope").is_some_and(|scope| scope.split(' ').any(|s| !s.is_empty() && s != SCOPE)) {
        return Err(fail("invalid_scope", "The only scope is mcp."));
    }
    let resource = get("resource").ok_or_else(|| {
        fail(
            "invalid_target",
            "Name the MCP server: send resource=<its MCP URL>.",
        )
    })?;
    let resource = canonical_resource(resource)
        .ok_or_else(|| fail("invalid_target", "resource is not a valid MCP server URL."))?;
    Ok(Request {
        raw: raw.to_owned(),
        client,
        redirect_uri,
        state: state_param,
        code_challenge: challenge.to_owned(),
        resource,
    })
}

/// The signed-in user of the pages' session cookie.
async fn session(state: &AppState, jar: &CookieJar) -> Option<AuthUser> {
    page_session::current(state, jar).await
}

/// The browser's form cookie, created if it has none.
fn form_cookie(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(existing) = jar.get(FORM_COOKIE) {
        let value = existing.value().to_owned();
        return (jar, value);
    }
    let value = random_token("");
    let cookie = scoped_cookie(FORM_COOKIE, value.clone(), COOKIE_PATH, 24 * 3600, secure);
    (jar.add(cookie), value)
}

/// What a form token is bound to: this browser's form cookie and this request.
fn binding(form_cookie: &str, raw_request: &str) -> String {
    let digest = Sha256::digest(format!("{form_cookie}\n{raw_request}"));
    URL_SAFE_NO_PAD.encode(digest)
}

/// A POST is genuine only from this origin (browsers send `Origin` on form posts).
fn same_origin(headers: &HeaderMap, issuer: &str) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin.eq_ignore_ascii_case(issuer),
        // Old browsers and non-browser clients: the anti-forgery token still has to match.
        None => true,
    }
}

fn sign_in(
    state: &AppState,
    request: &Request,
    form_cookie: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.tokens.form_token(&binding(form_cookie, &request.raw));
    let page = SignIn {
        client_name: &request.client.client_name,
        redirect_host: &host_of(&request.redirect_uri),
        request: &request.raw,
        csrf: &csrf,
        email,
        error,
    };
    pages::render(status, &page, None)
}

async fn sign_in_submitted(
    state: &AppState,
    parts: &Parts,
    jar: CookieJar,
    request: &Request,
    form_cookie: &str,
    email: &str,
    password: SecretString,
) -> Response {
    let again =
        |error: &str, status| sign_in(state, request, form_cookie, email, Some(error), status);
    let Ok(email) = Email::parse(email) else {
        return again(
            "Enter a valid email address.",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let client = client_ip(parts, state.config.trust_forwarded_for);
    let activity = Seen::of(parts, state.config.trust_forwarded_for)
        .activity(Action::Signin)
        .detail("via", "oauth");
    let (user_id, version) = match signin::authenticate(state, client, &email, password).await {
        Ok(signed_in) => signed_in,
        Err(signin::Refusal::TooMany(wait)) => {
            let message = format!(
                "Too many attempts; wait {} seconds and try again.",
                wait.as_secs().max(1)
            );
            return again(&message, StatusCode::TOO_MANY_REQUESTS);
        }
        Err(signin::Refusal::WrongCredentials(account)) => {
            // Linked only to an existing account, like `POST /signin`.
            activity
                .on_user(account)
                .failed("invalid_credentials")
                .record_now(&state.pool)
                .await;
            return again("The email or password is wrong.", StatusCode::UNAUTHORIZED);
        }
        Err(signin::Refusal::Failed(err)) => {
            tracing::error!(error = %err.code(), "signin failed (authorization page)");
            return again(
                "Signing in is not possible right now; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let cookie = match page_session::start(state, user_id, version) {
        Ok(cookie) => cookie,
        Err(err) => {
            tracing::error!(error = %err, "cannot issue a session");
            return again(
                "Signing in is not possible right now; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    activity.by(user_id).record_now(&state.pool).await;
    tracing::info!(%user_id, "signed in (authorization page)");
    // Back to the same request, now with a session: the consent page.
    let back = format!("/oauth/authorize?{}", request.raw);
    (jar.add(cookie), next::back_to(&back, "/oauth/authorize")).into_response()
}

/// The live server `user` may connect to whose canonical `mcp_url` is the request's
/// `resource`; otherwise the response that refuses it (`invalid_target`, the same for a server
/// of another organization, or one not open to this member, as for none), or says the database
/// is away.
async fn connectable_server(
    state: &AppState,
    user: &AuthUser,
    request: &Request,
) -> Result<db::ResourceServer, Response> {
    let servers = db::live_servers_of(&state.pool, user.user.id)
        .await
        .map_err(|err| unavailable(&err))?;
    servers
        .into_iter()
        .find(|server| {
            canonical_resource(&format!("{}/mcp", server.endpoint)).as_deref()
                == Some(request.resource.as_str())
        })
        .ok_or_else(|| {
            tracing::info!(user_id = %user.user.id, "resource is not a server the user may connect to");
            refuse(not_yours())
        })
}

async fn consent(
    state: &AppState,
    request: &Request,
    user: &AuthUser,
    form_cookie: &str,
) -> Response {
    let server = match connectable_server(state, user, request).await {
        Ok(server) => server,
        Err(refused) => return refused,
    };
    let sources = match db::source_labels(&state.pool, server.id).await {
        Ok(sources) => sources,
        Err(err) => return unavailable(&err),
    };
    let csrf = state.tokens.form_token(&binding(form_cookie, &request.raw));
    let redirect_origin = origin_of(&request.redirect_uri);
    let page = Consent {
        client_name: &request.client.client_name,
        client_host: &host_of(&request.client.client_id),
        from_document: request.client.from_document,
        redirect_host: &host_of(&request.redirect_uri),
        server_name: &server.name,
        organization_name: (!server.personal).then_some(server.organization_name.as_str()),
        mcp_url: &request.resource,
        sources,
        email: &user.user.email,
        request: &request.raw,
        csrf: &csrf,
    };
    pages::render(StatusCode::OK, &page, redirect_origin.as_deref())
}

/// Approve: the grant (reused if this client already has one on this server) and a code.
async fn approve(state: &AppState, request: &Request, user: &AuthUser, seen: &Seen) -> Response {
    let server = match connectable_server(state, user, request).await {
        Ok(server) => server,
        Err(refused) => return refused,
    };
    let code = random_token(CODE_PREFIX);
    let stored: Result<Option<uuid::Uuid>, sqlx::Error> = async {
        let mut tx = state.pool.begin().await?;
        if !db::still_connectable(&mut tx, user.user.id, server.organization_id, server.id).await? {
            return Ok(None);
        }
        let client = &request.client;
        if client.from_document {
            db::upsert_document_client(
                &mut *tx,
                &client.client_id,
                &client.client_name,
                &client.redirect_uris,
            )
            .await?;
        } else {
            db::touch_client(&mut *tx, &client.client_id).await?;
        }
        let grant = db::upsert_grant(
            &mut *tx,
            user.user.id,
            server.organization_id,
            server.id,
            &client.client_id,
            &request.redirect_uri,
            SCOPE,
        )
        .await?;
        let expires = Utc::now() + CODE_TTL;
        let hash = shared::access_key::hash(&code);
        db::insert_code(
            &mut *tx,
            &hash,
            grant,
            &request.redirect_uri,
            &request.code_challenge,
            &request.resource,
            expires,
        )
        .await?;
        seen.activity(Action::GrantApprove)
            .by(user.user.id)
            .in_org(server.organization_id)
            .server(server.id)
            .grant(grant)
            .detail("client_id", client.client_id.as_str())
            .record(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(grant))
    }
    .await;
    let grant = match stored {
        Ok(Some(grant)) => grant,
        // Removed, lowered or unlisted since the consent page was shown.
        Ok(None) => return refuse(not_yours()),
        Err(err) => return unavailable(&err),
    };
    tracing::info!(user_id = %user.user.id, server_id = %server.id, grant_id = %grant, "agent connection approved");
    redirect_to_client(
        state,
        &request.redirect_uri,
        request.state.as_deref(),
        &[("code", &code)],
    )
}

fn not_yours() -> Refusal {
    Refusal::Invalid {
        error: "invalid_target",
        description: "The MCP server named by this request is not one the signed-in account may connect to.",
    }
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => page_error(StatusCode::BAD_REQUEST, &message),
        Refusal::Invalid { error, description } => page_error(
            StatusCode::BAD_REQUEST,
            &format!("{description} (OAuth error: {error})"),
        ),
    }
}

/// 429 with `Retry-After`: this address sent too many authorization requests.
fn too_many(wait_secs: u64) -> Response {
    let mut response = page_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many authorization requests from this address; wait a minute and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response
}

fn page_error(status: StatusCode, message: &str) -> Response {
    pages::render(status, &ErrorPage { message }, None)
}

fn unavailable(err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "authorization page failed");
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The authorization server cannot answer right now; try again shortly.",
    )
}

/// 303 to the client's redirect URI with `params`, `state` and `iss` (RFC 9207) added to its
/// own query.
fn redirect_to_client(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page_error(StatusCode::BAD_REQUEST, "The redirect URI is not a URL.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(client_state) = client_state {
            query.append_pair("state", client_state);
        }
        query.append_pair("iss", &state.oauth.issuer);
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    pages::secure(&mut response, origin_of(redirect_uri).as_deref());
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}
