//! Who the client is: a registration made through `POST /oauth/register` (RFC 7591, public
//! clients only), or a client ID metadata document (the `client_id` is its `https://` URL).
//! Both end as a [`Client`] with a name and the exact redirect URIs it may use.

use serde_json::Value;

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
