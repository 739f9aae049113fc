//! What both daemons agree on about OAuth: the claims of an access token, the one scope, and
//! the canonical form of a resource URL (the token's audience). The control plane signs these
//! claims; gateways verify them with the public keys in their snapshot.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only scope: calling the MCP server's tools.
pub const SCOPE: &str = "mcp";
/// `typ` of access tokens (RFC 9068), so no other JWT of ours passes for one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Prefix of refresh tokens, so leaked ones are recognisable.
pub const REFRESH_TOKEN_PREFIX: &str = "mcpr_";
/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "mcpc_";

/// The claims of an OAuth access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer (`CONTROL_PLANE_PUBLIC_URL`).
    pub iss: String,
    /// The user who approved.
    pub sub: Uuid,
    /// The MCP server's `mcp_url`, canonical.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    pub client_id: String,
    pub scope: String,
    /// The grant the token was issued under; gateways accept it only while the grant lives.
    pub gid: Uuid,
}

/// A resource URL in canonical form: lower-case scheme and host (the URL parser does both),
/// default port dropped, no trailing slash. `None` unless it is an absolute `http(s)` URL
/// without user info, query or fragment.
pub fn canonical_resource(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return None;
    }
    let host = parsed.host_str()?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    Some(format!("{}://{host}{port}{path}", parsed.scheme()))
}

/// A new opaque credential: `prefix` and 256 random bits in base64url.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_compare_in_canonical_form() {
        let canonical = Some("https://mcp1.example.com/mcp".to_owned());
        assert_eq!(
            canonical_resource("https://mcp1.example.com/mcp"),
            canonical
        );
        assert_eq!(
            canonical_resource("HTTPS://MCP1.Example.com:443/mcp/"),
            canonical
        );
        assert_eq!(
            canonical_resource("http://127.0.0.1:8081/mcp"),
            Some("http://127.0.0.1:8081/mcp".to_owned())
        );
        assert_eq!(canonical_resource("https://mcp1.example.com/mcp?x=1"), None);
        assert_eq!(canonical_resource("https://u:p@mcp1.example.com/mcp"), None);
        assert_eq!(canonical_resource("javascript:alert(1)"), None);
        assert_eq!(canonical_resource("mcp1.example.com/mcp"), None);
    }

    #[test]
    fn random_tokens_differ_and_carry_their_prefix() {
        let (a, b) = (random_token(CODE_PREFIX), random_token(CODE_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with(CODE_PREFIX) && a.len() == CODE_PREFIX.len() + 43);
    }
}
