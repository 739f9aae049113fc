//! The consent page and the person's answer: the server the request names must be one they may
//! connect; Approve makes (or reuses) a grant and a code, and the browser goes back to the
//! client.

use super::{request::not_yours, *};

/// The live server `user` may connect to whose canonical `mcp_url` is the request's
/// `resource`; otherwise the response that refuses it (`invalid_target`, the same for a server
/// of another organization, or one not open to this member, as for none), or says the database
/// is away.
pub(super) async fn connectable_server(
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

pub(super) async fn consent(
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
pub(super) async fn approve(
    state: &AppState,
    request: &Request,
    user: &AuthUser,
    seen: &Seen,
) -> Response {
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

/// 303 to the client's redirect URI with `params`, `state` and `iss` (RFC 9207) added to its
/// own query.
pub(super) fn redirect_to_client(
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

pub(super) fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}
