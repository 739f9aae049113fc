//! The endpoint pool from `MCP_GATEWAY_URL_POOLS`: fixed URLs such as
//! `https://mcp1.example.com` and wildcards such as `https://*.mcp.example.com` (an unlimited
//! supply of generated subdomains). The routing key of an endpoint is its host name,
//! lower-case, without port or trailing dot: what the gateway matches `Host` against.

use std::collections::HashSet;

/// One pool entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEntry {
    /// One endpoint.
    Fixed {
        /// `scheme://host[:port]`, as given servers.
        url: String,
        /// Routing key.
        host: String,
    },
    /// Any `<generated>.<base>` endpoint.
    Wildcard {
        /// `http` or `https`.
        scheme: String,
        /// The domain under which names are generated (routing form).
        base: String,
        /// Explicit port, if any.
        port: Option<u16>,
    },
}

/// The parsed pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPool {
    pub entries: Vec<PoolEntry>,
}

/// Lower-case host name without port or trailing dot.
pub fn routing_key(host: &str) -> String {
    let without_port = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

impl EndpointPool {
    /// Parses the comma-separated setting; the error names the bad entry.
    pub fn parse(setting: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        let mut hosts = HashSet::new();
        for raw in setting.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let entry = parse_entry(raw).map_err(|why| format!("pool entry {raw:?} {why}"))?;
            let key = match &entry {
                PoolEntry::Fixed { host, .. } => host.clone(),
                PoolEntry::Wildcard { base, .. } => format!("*.{base}"),
            };
            if !hosts.insert(key.clone()) {
                return Err(format!("pool entry {raw:?} repeats the host name {key}"));
            }
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// Routing keys of the fixed entries, in configuration order.
    pub fn fixed_hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                PoolEntry::Fixed { host, .. } => Some(host.clone()),
                PoolEntry::Wildcard { .. } => None,
            })
            .collect()
    }

    /// The URL of the fixed entry with routing key `host`.
    pub fn fixed_url(&self, host: &str) -> Option<&str> {
        self.entries.iter().find_map(|e| match e {
            PoolEntry::Fixed { url, host: h } if h == host => Some(url.as_str()),
            _ => None,
        })
    }

    /// The wildcard entries.
    pub fn wildcards(&self) -> impl Iterator<Item = &PoolEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e, PoolEntry::Wildcard { .. }))
    }

    /// Whether an endpoint host is (still) covered by the configured pool.
    pub fn covers(&self, host: &str) -> bool {
        self.entries.iter().any(|e| match e {
            PoolEntry::Fixed { host: h, .. } => h == host,
            PoolEntry::Wildcard { base, .. } => host
                .strip_suffix(base.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        })
    }
}

fn parse_entry(raw: &str) -> Result<PoolEntry, &'static str> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or("is not a URL (expected https://host)")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err("must use http or https");
    }
    let (wildcard, rest) = match rest.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let url = url::Url::parse(&format!("{scheme}://{rest}")).map_err(|_| "is not a valid URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials");
    }
    if url.path() != "/" {
        return Err("must not have a path (the gateway serves /mcp on every pool domain)");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query string or fragment");
    }
    let Some(url::Host::Domain(domain)) = url.host() else {
        return Err("must name a host by domain name, not an IP address");
    };
    let host = domain.trim_end_matches('.').to_ascii_lowercase();
    if host.contains('*') || host.is_empty() {
        return Err("may only use * as the whole first label, as in https://*.mcp.example.com");
    }
    let port = url.port();
    if wildcard {
        return Ok(PoolEntry::Wildcard {
            scheme,
            base: host,
            port,
        });
    }
    let url = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(PoolEntry::Fixed { url, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_wildcard_entries_parse_to_routing_keys() {
        let pool = EndpointPool::parse(" https://MCP1.example.com , http://mcp2.localhost:8081/,https://*.Agents.example.com. ").unwrap();
        assert_eq!(
            pool.entries,
            [
                PoolEntry::Fixed {
                    url: "https://mcp1.example.com".into(),
                    host: "mcp1.example.com".into()
                },
                PoolEntry::Fixed {
                    url: "http://mcp2.localhost:8081".into(),
                    host: "mcp2.localhost".into()
                },
                PoolEntry::Wildcard {
                    scheme: "https".into(),
                    base: "agents.example.com".into(),
                    port: None
                },
            ]
        );
        assert!(pool.covers("abc123def456gh.agents.example.com"));
        assert!(!pool.covers("a.b.agents.example.com"));
        assert!(!pool.covers("mcp3.example.com"));
    }

    #[test]
    fn bad_entries_stop_with_the_entry_named() {
        for bad in [
            "mcp1.example.com",
            "ftp://mcp1.example.com",
            "https://mcp1.example.com/path",
            "https://mcp1.example.com?x=1",
            "https://user:pw@mcp1.example.com",
            "https://10.0.0.1",
            "https://mcp*.example.com",
            "https://*",
            "https://a.*.example.com",
        ] {
            let err = EndpointPool::parse(&format!("https://ok.example.com,{bad}")).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn duplicate_host_names_are_refused_whatever_the_scheme_or_port() {
        let err = EndpointPool::parse("https://mcp1.example.com,http://MCP1.example.com:8080")
            .unwrap_err();
        assert!(
            err.contains("repeats the host name mcp1.example.com"),
            "{err}"
        );
    }

    #[test]
    fn routing_keys_drop_port_case_and_trailing_dot() {
        assert_eq!(routing_key("MCP1.Example.com.:443"), "mcp1.example.com");
        assert_eq!(routing_key("mcp1.example.com"), "mcp1.example.com");
        assert_eq!(routing_key("mcp1.example.com."), "mcp1.example.com");
    }
}
