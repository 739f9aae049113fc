//! Where an `mcp` source's URL may point: an egress boundary, since the gateway connects
//! wherever a user says.
//!
//! The URL is `https://` on a public DNS name (at least two labels, the last not numeric), or
//! `http(s)://` on a host listed in `MCP_ALLOWED_HOSTS`; an IP literal or a single-label name
//! such as `localhost` must be listed. Public names that resolve to non-public addresses are
//! refused by the gateway when it connects. The grammar is small on purpose, so that the
//! OpenAPI pattern states exactly what is accepted.

use super::super::field::regex_escape;

/// What the URL must look like.
pub const URL_HINT: &str = "must be the https:// URL of a remote MCP server's streamable HTTP \
     endpoint on a public DNS name (IP addresses, single-label names and plain http only for \
     hosts listed in MCP_ALLOWED_HOSTS; stdio commands are refused: a multi-tenant gateway never \
     starts a user-given command)";

const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const LAST_LABEL: &str = "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const PORT: &str =
    "(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))";
/// Path and query characters: RFC 3986 unreserved, sub-delims, `:@/?` and `%`.
const TAIL: &str = "(?:[/?][A-Za-z0-9._~!$&'()*+,;=:@/?%-]*)";

fn is_tail_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._~!$&'()*+,;=:@/?%-".contains(c)
}

/// Checks a remote MCP server URL against the grammar above and `allowed_hosts`.
pub fn check_url(value: &str, allowed_hosts: &[String]) -> Result<(), String> {
    let (https, rest) = match (
        value.strip_prefix("https://"),
        value.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(URL_HINT.to_owned()),
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if !tail.chars().all(is_tail_char) {
        return Err(
            "may contain only letters, digits and ._~!$&'()*+,;=:@/?%- after the host (no spaces, no #fragment)"
                .to_owned(),
        );
    }
    let (host, port) = split_port(authority);
    if let Some(port) = port
        && !(port.len() <= 5 && !port.starts_with('0') && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err("must have a port between 1 and 65535, if any".to_owned());
    }
    let host = host.to_ascii_lowercase();
    let port = port.map_or(if https { 443 } else { 80 }, |p| p.parse().unwrap_or(0));
    let listed = match listing(allowed_hosts, &host, port) {
        Listing::Listed => true,
        Listing::NotListed => false,
        Listing::OtherPorts => {
            return Err(format!(
                "port {port} is not allowed for this host (MCP_ALLOWED_HOSTS lists it with \
                 other ports only)"
            ));
        }
    };
    if !listed {
        if !https {
            return Err("must use https (http only for hosts in MCP_ALLOWED_HOSTS)".to_owned());
        }
        if !is_public_name(&host) {
            return Err(
                "host must be a public DNS name such as mcp.example.com (IP addresses, \
                 single-label names such as localhost and user info are refused unless the host \
                 is listed in MCP_ALLOWED_HOSTS)"
                    .to_owned(),
            );
        }
    }
    url::Url::parse(value)
        .map(|_| ())
        .map_err(|_| URL_HINT.to_owned())
}

/// What `MCP_ALLOWED_HOSTS` says of a host at a port.
enum Listing {
    /// An entry names the host without a port, or with this one.
    Listed,
    /// No entry names the host.
    NotListed,
    /// Entries name the host with other ports only: it may not be used at this one, not even
    /// as a public name (the gateway's resolver lets listed names reach non-public addresses,
    /// and it sees names, not ports).
    OtherPorts,
}

fn listing(allowed_hosts: &[String], host: &str, port: u16) -> Listing {
    let mut named = false;
    for entry in allowed_hosts {
        let (listed_host, listed_port) = allowed_entry(entry);
        if listed_host == host {
            named = true;
            if listed_port.is_none_or(|p| p == port) {
                return Listing::Listed;
            }
        }
    }
    if named {
        Listing::OtherPorts
    } else {
        Listing::NotListed
    }
}

/// An `MCP_ALLOWED_HOSTS` entry (lowercase): its host (IPv6 in brackets) and its port, if it
/// names one.
pub fn allowed_entry(entry: &str) -> (&str, Option<u16>) {
    let (host, port) = split_port(entry);
    (host, port.and_then(|p| p.parse().ok()))
}

/// The hosts `MCP_ALLOWED_HOSTS` lists, without ports: what a resolver that sees only names
/// may let reach non-public addresses (URLs naming them at other ports are refused).
pub fn allowed_host_names(allowed_hosts: &[String]) -> Vec<String> {
    allowed_hosts
        .iter()
        .map(|entry| allowed_entry(entry).0.to_owned())
        .collect()
}

/// `host[:port]`, a bracketed IPv6 host kept whole.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    match rest.strip_prefix(':') {
        Some(port) => (host, Some(port)),
        None if rest.is_empty() => (host, None),
        // Anything else after the host (`@`, a second `]`) makes the port check fail.
        None => (host, Some(rest)),
    }
}

/// A DNS name of two or more labels whose last label starts with a letter (so no IP literal).
fn is_public_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    labels.len() >= 2
        && labels.iter().all(|l| label_ok(l))
        && labels
            .last()
            .is_some_and(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// The URL as the url crate writes it (lowercase host, default port dropped, `/` path).
pub fn normalise_url(value: String) -> String {
    url::Url::parse(&value).map_or(value, |url| url.to_string())
}

/// The pattern [`check_url`] accepts (without anchors).
pub fn url_pattern(allowed_hosts: &[String]) -> String {
    let public = format!("https://(?:{LABEL}\\.)+{LAST_LABEL}{PORT}?{TAIL}?");
    if allowed_hosts.is_empty() {
        return public;
    }
    let listed: Vec<String> = allowed_hosts
        .iter()
        .map(|entry| match allowed_entry(entry) {
            (host, None) => format!("https?://{}{PORT}?{TAIL}?", any_case(host)),
            (host, Some(port)) => {
                let host = any_case(host);
                // The default port of a scheme may also be left out.
                let implied = match port {
                    443 => format!("|https://{host}{TAIL}?"),
                    80 => format!("|http://{host}{TAIL}?"),
                    _ => String::new(),
                };
                format!("https?://{host}:{port}{TAIL}?{implied}")
            }
        })
        .collect();
    format!("{public}|{}", listed.join("|"))
}

/// A literal as a pattern matching it in any letter case.
fn any_case(literal: &str) -> String {
    literal
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                regex_escape(&c.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
    }

    #[test]
    fn public_https_names_pass_and_everything_else_needs_a_listing() {
        for good in [
            "https://mcp.example.com/mcp",
            "https://MCP.Example.com:8443/v1/mcp?team=a",
            "https://a.b.example.co",
        ] {
            assert_eq!(check_url(good, &[]), Ok(()), "{good}");
        }
        for bad in [
            "http://mcp.example.com/mcp",
            "https://127.0.0.1/mcp",
            "https://10.0.0.1/mcp",
            "https://[::1]/mcp",
            "https://localhost/mcp",
            "https://user:pw@mcp.example.com/mcp",
            "https://mcp.example.com:0/mcp",
            "https://mcp.example.com:99999/mcp",
            "https://mcp.example.com/a b",
            "https://mcp.example.com/mcp#frag",
            "https://1.2.3.4.5/",
            "stdio:///usr/bin/server",
            "/usr/bin/server --stdio",
            "ftp://mcp.example.com/",
        ] {
            assert!(check_url(bad, &[]).is_err(), "{bad}");
        }
        for listed in ["http://127.0.0.1:4000/mcp", "http://LOCALHOST:9/mcp"] {
            assert_eq!(check_url(listed, &allowed()), Ok(()), "{listed}");
        }
        assert!(check_url("http://10.0.0.1/mcp", &allowed()).is_err());
    }

    #[test]
    fn a_host_listed_with_a_port_is_allowed_at_that_port_only() {
        let allowed = vec![
            "10.0.0.5:8080".to_owned(),
            "internal.corp:443".to_owned(),
            "[fd00::1]:9000".to_owned(),
        ];
        for good in [
            "http://10.0.0.5:8080/mcp",
            "https://internal.corp/mcp",
            "https://internal.corp:443/mcp",
            "http://[fd00::1]:9000/mcp",
        ] {
            assert_eq!(check_url(good, &allowed), Ok(()), "{good}");
        }
        for bad in [
            "http://10.0.0.5/mcp",
            "http://10.0.0.5:22/mcp",
            // A public-looking name listed with a port is not usable at another one either.
            "https://internal.corp:8443/mcp",
            "http://internal.corp/mcp",
            "http://[fd00::1]:9001/mcp",
        ] {
            let refused = check_url(bad, &allowed).expect_err(bad);
            assert!(refused.contains("port"), "{bad}: {refused}");
        }
        assert_eq!(
            allowed_host_names(&allowed),
            ["10.0.0.5", "internal.corp", "[fd00::1]"]
        );
        let pattern = url_pattern(&allowed);
        assert!(pattern.contains(r"https?://10\.0\.0\.5:8080"), "{pattern}");
        assert!(!pattern.contains(r"https?://10\.0\.0\.5(?::"), "{pattern}");
        assert!(pattern.contains("|https://[iI]"), "{pattern}");
    }

    #[test]
    fn the_url_pattern_states_what_the_check_accepts() {
        let pattern = url_pattern(&allowed());
        assert!(pattern.contains("[lL][oO]"), "{pattern}");
        assert!(pattern.starts_with("https://(?:"));
    }
}
