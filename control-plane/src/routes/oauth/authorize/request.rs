//! Checking an authorization request: what it must name and why one is refused.

use super::*;

/// Longest query accepted.
pub(super) const MAX_QUERY: usize = 8 * 1024;

/// A checked authorization request.
pub(super) struct Request {
    /// The query string as received: the forms carry it, and every POST checks it again.
    pub(super) raw: String,
    pub(super) client: Client,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) code_challenge: String,
    /// Canonical.
    pub(super) resource: String,
}

/// Why a request cannot go on. Either way the person sees a page and the browser is sent
/// nowhere: anyone can register a client with any `https://` redirect URI, so redirecting on
/// an error would make this domain an open redirector (RFC 9700 §4.11.2). The client learns
/// of the refusal when its user comes back, and the page says what to tell its developers.
pub(super) enum Refusal {
    /// The client or redirect URI is in doubt.
    Page(String),
    /// The request is wrong: OAuth's error code and why.
    Invalid {
        error: &'static str,
        description: &'static str,
    },
}

/// Checks the query of an authorization request from `from`, in the order RFC 6749 asks.
pub(super) async fn check(state: &AppState, raw: &str, from: IpAddr) -> Result<Request, Refusal> {
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

pub(super) fn not_yours() -> Refusal {
    Refusal::Invalid {
        error: "invalid_target",
        description: "The MCP server named by this request is not one the signed-in account may connect to.",
    }
}
