//! Which HTTP header an `mcp` source's `auth` `header` may set: a token (RFC 9110) that is not
//! one the gateway sets itself or that changes how the request travels.

/// What a header name must look like.
pub const HEADER_NAME_HINT: &str = "must be an HTTP header name (letters, digits and \
     !#$%&'*+.^_`|~-, at most 64) other than a reserved one (Host, Authorization — use auth \
     `bearer` —, Content-Length, Content-Type, Connection and other hop-by-hop headers, Cookie, \
     Accept, User-Agent, Origin, Referer, Forwarded, Via, X-Real-IP, Last-Event-ID, and any \
     name starting with Mcp-, Proxy-, Sec- or X-Forwarded-)";

/// The header name's syntax (RFC 9110 token), as a pattern; reserved names are refused too.
pub const HEADER_NAME_PATTERN: &str = r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}";

/// Header names the gateway sets itself or that change how the request travels, lowercase.
const RESERVED_HEADERS: [&str; 26] = [
    "host",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "cookie",
    "accept",
    "accept-encoding",
    "user-agent",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    // Who is asking and from where: a remote server (or a proxy before it) may trust these.
    "origin",
    "referer",
    "forwarded",
    "via",
    "x-real-ip",
];

/// Prefixes of reserved header names, lowercase: the protocol's own (`Mcp-Method`, …),
/// proxies', browsers' and forwarding headers.
const RESERVED_PREFIXES: [&str; 4] = ["mcp-", "proxy-", "sec-", "x-forwarded-"];

/// Checks a header name: its syntax and that it is not reserved.
pub fn check_header_name(value: &str) -> Result<(), String> {
    let token = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c));
    let lower = value.to_ascii_lowercase();
    let reserved = RESERVED_HEADERS.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p));
    if !token || reserved {
        return Err(HEADER_NAME_HINT.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_malformed_header_names_are_refused() {
        assert_eq!(check_header_name("X-Api-Key"), Ok(()));
        for bad in [
            "Host",
            "authorization",
            "Content-Length",
            "Mcp-Session-Id",
            "Mcp-Method",
            "X-Forwarded-For",
            "x-forwarded-host",
            "Forwarded",
            "Origin",
            "X-Real-IP",
            "Sec-Fetch-Site",
            "a b",
            "é",
            "",
        ] {
            assert!(check_header_name(bad).is_err(), "{bad}");
        }
    }
}
