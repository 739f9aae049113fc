//! Who the client is: a registration made through `POST /oauth/register` (RFC 7591, public
//! clients only), or a client ID metadata document (the `client_id` is its `https://` URL).
//! Both end as a [`Client`] with a name and the exact redirect URIs it may use.

use std::net::IpAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{db::oauth as db, error::oauth::OAuthError, state::AppState};

/// Most redirect URIs a client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI.
const MAX_URI_LEN: usize = 2000;
/// Longest client name kept (longer names are cut, not refused).
const MAX_NAME_CHARS: usize = 100;
/// Registered clients with no grant are deleted after this many days without use. A use is
/// an approved consent or tokens issued to the client; an authorization request naming it is
/// not (anyone can send one, so it would keep every registration alive).
pub const IDLE_CLIENT_DAYS: i32 = 30;

/// A client the authorization endpoint can talk to.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// Known by its metadata document (recorded when a grant is made).
    pub from_document: bool,
}

impl Client {
    /// Whether `candidate` is one of the client's redirect URIs: exact string match, except
    /// that a loopback `http` redirect may use any port (RFC 8252 §7.3; native apps pick one
    /// at run time).
    pub fn accepts_redirect(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|registered| {
            registered == candidate || same_loopback_redirect(registered, candidate)
        })
    }
}

fn same_loopback_redirect(registered: &str, candidate: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(candidate)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback_host(&a)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks one redirect URI: absolute `https://`, or `http://` on a loopback host; no
/// fragment, no user info. The reason is returned for the error description.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!(
            "a redirect URI is longer than {MAX_URI_LEN} characters"
        ));
    }
    let url = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    let host = url.host_str().unwrap_or_default();
    let allowed = match url.scheme() {
        "https" => !host.is_empty(),
        "http" => is_loopback_host(&url),
        _ => false,
    };
    if !allowed {
        return Err(format!(
            "{uri:?} is not allowed: redirect URIs must be https:// or http:// on a loopback address"
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{uri:?} must not have a fragment or user info"));
    }
    Ok(())
}

/// Checks a list of redirect URIs from a registration or a metadata document.
pub fn check_redirect_uris(value: Option<&Value>) -> Result<Vec<String>, String> {
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or("redirect_uris must be a non-empty array of URLs")?;
    if list.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs are allowed"
        ));
    }
    list.iter()
        .map(|v| {
            let uri = v.as_str().ok_or("redirect_uris must be strings")?;
            check_redirect_uri(uri)?;
            Ok(uri.to_owned())
        })
        .collect()
}

/// A client name fit to show: control and format characters (direction overrides, invisible
/// characters: see [`crate::web::text`]) dropped, cut to a sane length.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && !crate::web::text::is_format(*c))
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "Unnamed client".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Whether a `client_id` names a metadata document rather than a registration.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// The client behind `client_id`, for a request from `from`; `Err` with a sentence for the
/// error page. Reading a registration does not count as its use (see [`IDLE_CLIENT_DAYS`]).
pub async fn resolve(state: &AppState, client_id: &str, from: IpAddr) -> Result<Client, String> {
    if is_document_url(client_id) {
        return state.oauth.documents.client(client_id, from).await;
    }
    match db::registered_client(&state.pool, client_id).await {
        Ok(Some(row)) => Ok(Client {
            client_id: row.client_id,
            client_name: row.client_name,
            redirect_uris: row.redirect_uris,
            from_document: false,
        }),
        Ok(None) => Err("This client is not registered here (unknown client_id).".to_owned()),
        Err(err) => {
            tracing::error!(error = %err, "cannot read OAuth client");
            Err("The authorization server cannot answer right now; try again shortly.".to_owned())
        }
    }
}

/// A registration request; fields beyond these are ignored, as RFC 7591 asks.
#[derive(Deserialize)]
struct Registration {
    redirect_uris: Option<Value>,
    client_name: Option<Value>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
}

/// `POST /oauth/register`: dynamic client registration of a public client.
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client =
        crate::extract::client_address(peer.ip(), &headers, state.config.trust_forwarded_for);
    if let Err(wait) = state.oauth.check_registration(client) {
        return OAuthError::slow_down(wait);
    }
    match registration(&state.pool, &body).await {
        Ok(created) => {
            let mut response = (StatusCode::CREATED, Json(created)).into_response();
            crate::error::oauth::no_store(&mut response);
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn registration(pool: &sqlx::PgPool, body: &[u8]) -> Result<Value, OAuthError> {
    let request: Registration = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_client_metadata("The body must be a JSON object of client metadata.")
    })?;
    let redirect_uris = check_redirect_uris(request.redirect_uris.as_ref())
        .map_err(OAuthError::invalid_redirect_uri)?;
    match request.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "Only public clients are supported: token_endpoint_auth_method must be \"none\".",
            ));
        }
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".to_owned(), "refresh_token".to_owned()]);
    if grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types may contain only authorization_code and refresh_token.",
        ));
    }
    if request
        .response_types
        .as_ref()
        .is_some_and(|r| r.iter().any(|t| t != "code"))
    {
        return Err(OAuthError::invalid_client_metadata(
            "response_types may contain only code.",
        ));
    }
    let client_name = clean_name(
        request
            .client_name
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("MCP client"),
    );
    let client_id = shared::oauth::random_token("mcpcl_");
    db::insert_client(pool, &client_id, &client_name, &redirect_uris).await?;
    tracing::info!(client_name = %client_name, "OAuth client registered");
    Ok(json!({
        "client_id": client_id,
        "client_id_issued_at": chrono::Utc::now().timestamp(),
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": shared::oauth::SCOPE,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http() {
        for good in [
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "https://chatgpt.com/connector/oauth/abc123",
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.com/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:8080/cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "http://evil.example.com/cb",
            "data:text/html,hi",
            "https://example.com/cb#frag",
            "https://user@example.com/cb",
            "/relative",
            "file:///etc/passwd",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_others_exactly() {
        let client = Client {
            client_id: "c".to_owned(),
            client_name: "c".to_owned(),
            redirect_uris: vec![
                "http://127.0.0.1:1000/cb".to_owned(),
                "https://app.example.com/cb".to_owned(),
            ],
            from_document: false,
        };
        assert!(client.accepts_redirect("http://127.0.0.1:5555/cb"));
        assert!(!client.accepts_redirect("http://127.0.0.1:5555/other"));
        assert!(client.accepts_redirect("https://app.example.com/cb"));
        assert!(!client.accepts_redirect("https://app.example.com/cb/"));
        assert!(!client.accepts_redirect("https://app.example.com:444/cb"));
    }
}
