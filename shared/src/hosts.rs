//! Hosts a deployment lets sources reach ([`HostList`]: names and address blocks, each for any
//! port or one) and the product's own database ([`ProductDatabase`]), which no source may read.
//! Settings parse their host lists with these, and the `postgres` source type checks its host
//! against them on input and at connect time.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::egress::is_public;

/// Hosts a deployment setting lists: exact names and address blocks (a bare address is a block
/// of one), each for any port or for the one port the entry names (`db.internal:5432`,
/// `10.0.0.0/24:5432`, `[fd00::5]:5432`), so an operator can allow exactly a database's port
/// rather than every service on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList {
    names: Vec<(String, Option<u16>)>,
    nets: Vec<(IpNet, Option<u16>)>,
}

impl HostList {
    /// Parses entries such as `db.internal`, `10.0.0.5`, `10.0.0.0/24`, `::1`, each optionally
    /// with `:port` (IPv6 then in brackets: `[::1]:5432`); the error names the first entry that
    /// is none of these.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (host, port) = split_port(entry).ok_or_else(|| not_a_host(entry))?;
            if let Ok(net) = host.parse::<IpNet>() {
                list.nets.push((net, port));
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                list.nets.push((IpNet::from(ip), port));
            } else if is_host_name(host) {
                list.names.push((normal_host(host), port));
            } else {
                return Err(not_a_host(entry));
            }
        }
        Ok(list)
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    /// Whether an entry names `host` (for any port or for one).
    pub fn lists_host(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.nets.iter().any(|(net, _)| net.contains(&ip)),
            Err(_) => {
                let host = normal_host(host);
                self.names.iter().any(|(name, _)| *name == host)
            }
        }
    }

    /// Whether a source may name `host` and `port`: a listed name, or an address inside a
    /// listed block, with no port or this port.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.lists_address(ip, port),
            Err(_) => {
                let host = normal_host(host);
                self.names
                    .iter()
                    .any(|(name, only)| *name == host && port_fits(*only, port))
            }
        }
    }

    /// Whether a connection may go to `ip` and `port`, an address a listed host resolved to:
    /// public, or inside a listed block for this port (loopback, private and link-local
    /// addresses only when listed).
    pub fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        is_public(ip) || self.lists_address(ip, port)
    }

    fn lists_address(&self, ip: IpAddr, port: u16) -> bool {
        self.nets
            .iter()
            .any(|(net, only)| net.contains(&ip) && port_fits(*only, port))
    }
}

fn port_fits(only: Option<u16>, port: u16) -> bool {
    only.is_none_or(|only| only == port)
}

fn not_a_host(entry: &str) -> String {
    format!(
        "{entry:?} is not a host name, an IP address or a CIDR block (each optionally with \
         :port, IPv6 then in brackets)"
    )
}

/// `host:port` (one colon; `[v6]:port` in brackets) → the host and its port; anything else is a
/// host for any port. `None`: a port that is not 1 to 65535.
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest.split_once(']')?;
        (host, Some(port.strip_prefix(':')?))
    } else if entry.matches(':').count() == 1 {
        let (host, port) = entry.split_once(':')?;
        (host, Some(port))
    } else {
        (entry, None)
    };
    match port {
        None => Some((host, None)),
        Some(digits) => {
            let ok = !digits.is_empty()
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            let port = digits.parse::<u16>().ok().filter(|_| ok)?;
            Some((host, Some(port)))
        }
    }
}

/// The product's own database server, `DATABASE_URL`'s host and port: no source may point at
/// it, whatever `POSTGRES_ALLOWED_HOSTS` lists (a tenant would read every account's data and
/// the server's catalog with whatever role the operator's network lets in, e.g. `postgres`
/// under trust authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDatabase {
    /// The name or address `DATABASE_URL` gives, as [`normal_host`] writes it.
    host: String,
    port: u16,
    /// What the host resolved to when the daemon started.
    addresses: Vec<IpAddr>,
}

impl ProductDatabase {
    /// The server `database_url` names, its host resolved now (a daemon resolves it once, at
    /// start). A Unix socket path counts as `localhost` at the URL's port: the same server
    /// usually listens there on TCP too. `None` for a URL that does not parse.
    pub fn resolve(database_url: &str) -> Option<Self> {
        use std::net::ToSocketAddrs;
        let options: sqlx::postgres::PgConnectOptions = database_url.parse().ok()?;
        let port = options.get_port();
        let host = match options.get_host() {
            host if host.starts_with('/') || options.get_socket().is_some() => "localhost",
            host => host,
        };
        let host = normal_host(host.trim_start_matches('[').trim_end_matches(']'));
        let addresses = (host.as_str(), port)
            .to_socket_addrs()
            .map(|found| found.map(|a| canonical(a.ip())).collect())
            .unwrap_or_default();
        Some(Self {
            host,
            port,
            addresses,
        })
    }

    /// Whether a source naming `host` and `port` names this server: the same name, or an
    /// address it has.
    pub fn is_named_by(&self, host: &str, port: u16) -> bool {
        port == self.port
            && match host.parse::<IpAddr>() {
                Ok(ip) => self.has_address(ip),
                Err(_) => {
                    let host = normal_host(host);
                    host == self.host || (host == "localhost" && self.is_local())
                }
            }
    }

    /// Whether a connection to `ip` and `port` reaches this server.
    pub fn is_at(&self, ip: IpAddr, port: u16) -> bool {
        port == self.port && self.has_address(ip)
    }

    /// One of its addresses; when it is on this machine, any loopback or unspecified address
    /// (`127.0.0.2` and `0.0.0.0` reach a server listening on all of them).
    fn has_address(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.addresses.contains(&ip) || (self.is_local() && is_local(ip))
    }

    fn is_local(&self) -> bool {
        self.host == "localhost" || self.addresses.iter().copied().any(is_local)
    }
}

/// What a source is told when it names the product's database.
pub const PRODUCT_DATABASE: &str = "is this product's own database (the server DATABASE_URL \
    names): a source may not read it, whatever POSTGRES_ALLOWED_HOSTS lists";

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// A host as compared and stored: lowercase, without a trailing dot.
pub fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS name (one label or more) or an IP address literal (IPv6 without brackets).
pub fn is_host(value: &str) -> bool {
    value.parse::<IpAddr>().is_ok() || is_host_name(value)
}

fn is_host_name(value: &str) -> bool {
    is_dns_name(value.strip_suffix('.').unwrap_or(value))
}

/// A host, as the schema states it (names and IPv4/IPv6 literals).
pub const HOST_PATTERN: &str = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*";

/// One or more DNS labels (letters, digits, inner `-`), at most 253 characters in all.
pub fn is_dns_name(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> HostList {
        HostList::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn only_listed_hosts_and_listed_or_public_addresses_are_allowed() {
        let hosts = list(&["DB.example.com.", "10.0.0.0/24", "127.0.0.1"]);
        assert!(hosts.allows_host("db.example.com", 5432));
        assert!(hosts.allows_host("10.0.0.7", 5432));
        assert!(hosts.allows_host("127.0.0.1", 5432));
        assert!(!hosts.allows_host("127.0.0.2", 5432));
        assert!(!hosts.allows_host("other.example.com", 5432));
        assert!(hosts.allows_address("8.8.8.8".parse().unwrap(), 5432));
        assert!(hosts.allows_address("10.0.0.9".parse().unwrap(), 5432));
        assert!(!hosts.allows_address("10.0.1.9".parse().unwrap(), 5432));
        assert!(!hosts.allows_address("169.254.169.254".parse().unwrap(), 5432));
        assert!(!list(&[]).allows_host("db.example.com", 5432));
        assert!(HostList::parse(&["not a host".to_owned()]).is_err());
    }

    #[test]
    fn entries_may_name_one_port() {
        let hosts = list(&[
            "db.example.com:5432",
            "10.0.0.0/24:6543",
            "[fd00::5]:5432",
            "10.1.0.0/16",
            "fd00:1::/64",
        ]);
        assert!(hosts.allows_host("db.example.com", 5432));
        assert!(!hosts.allows_host("db.example.com", 22));
        assert!(hosts.lists_host("db.example.com"));
        assert!(hosts.allows_address("10.0.0.7".parse().unwrap(), 6543));
        assert!(!hosts.allows_address("10.0.0.7".parse().unwrap(), 5432));
        assert!(hosts.allows_address("fd00::5".parse().unwrap(), 5432));
        assert!(!hosts.allows_address("fd00::5".parse().unwrap(), 80));
        // Without a port: any port, as before ports could be given.
        assert!(hosts.allows_address("10.1.2.3".parse().unwrap(), 22));
        assert!(hosts.allows_address("fd00:1::9".parse().unwrap(), 80));
        for bad in [
            "db:0",
            "db:65536",
            "db:05432",
            "db:",
            "[::1]",
            "[::1]5432",
            "a:b:c:d",
        ] {
            assert!(HostList::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_product_database_is_named_by_its_name_or_any_of_its_addresses() {
        let db = ProductDatabase::resolve("postgres://u:p@127.0.0.1:54329/mcp_gateway").unwrap();
        for (host, port) in [
            ("127.0.0.1", 54329),
            ("127.0.0.2", 54329),
            ("::1", 54329),
            ("localhost", 54329),
            ("0.0.0.0", 54329),
            ("::ffff:127.0.0.1", 54329),
        ] {
            assert!(db.is_named_by(host, port), "{host}:{port}");
        }
        assert!(!db.is_named_by("127.0.0.1", 5432));
        assert!(!db.is_named_by("10.0.0.1", 54329));
        assert!(db.is_at("127.0.0.1".parse().unwrap(), 54329));
        let remote = ProductDatabase::resolve("postgres://u@10.0.0.9/app").unwrap();
        assert!(remote.is_named_by("10.0.0.9", 5432));
        assert!(!remote.is_named_by("127.0.0.1", 5432));
        let socket = ProductDatabase::resolve("postgres:///app?host=/var/run/postgresql").unwrap();
        assert!(socket.is_named_by("127.0.0.1", 5432));
    }
}
