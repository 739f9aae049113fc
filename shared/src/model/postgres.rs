//! The `postgres` source type's own rules, beyond the flat fields every type has: which hosts a
//! source may connect to, its `port` (a number or a numeric string), and its `tables` (a list
//! of objects, checked field by field so every bad one is named, e.g.
//! `source_metadata.tables[1].text_columns`).
//!
//! Hosts: a database host is a way into the operator's network (SSRF: a user could point the
//! gateway at an internal service and read what it answers, or probe what is listening). So no
//! host is allowed unless `POSTGRES_ALLOWED_HOSTS` lists it, and the addresses a name resolves
//! to must each be public or inside a listed address block (checked again at connect time, so
//! a name that later resolves to a private address is not followed there). An entry may name a
//! port, so the operator allows a database rather than every service of its host. The
//! product's own database ([`ProductDatabase`]) is refused whatever the list says, and so are
//! tables in the server's own schemas (`pg_catalog`, `information_schema`, `pg_*`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::source::is_dns_name;
use crate::egress::is_public;

/// Most tables one source may search.
pub const MAX_TABLES: usize = 20;
/// Most text columns of one table.
pub const MAX_TEXT_COLUMNS: usize = 16;
/// Longest URL template, in bytes.
pub const MAX_URL_TEMPLATE: usize = 2048;
/// Longest identifier PostgreSQL keeps (longer ones are cut silently, so they are refused).
const MAX_IDENTIFIER: usize = 63;
/// What a URL template must contain: the row id goes there, URL-encoded.
pub const ID_PLACEHOLDER: &str = "{id}";

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

/// A port from 1 to 65535 as a string, without leading zeros.
const PORT_PATTERN: &str =
    "[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]";
/// The default port.
pub const DEFAULT_PORT: u16 = 5432;

/// The `port` as given (absent or null: 5432), or what is wrong with it.
pub fn port(value: Option<&Value>) -> Result<u16, &'static str> {
    const WRONG: &str = "must be a port number from 1 to 65535 (a number or a string of digits)";
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_PORT),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (1.0..=65535.0).contains(f))
            .map(|f| f as u16)
            .ok_or(WRONG),
        Some(Value::String(s)) => {
            let digits =
                s.len() <= 5 && s.chars().all(|c| c.is_ascii_digit()) && !s.starts_with('0');
            match s.parse::<u16>() {
                Ok(port) if digits && port > 0 => Ok(port),
                _ => Err(WRONG),
            }
        }
        Some(_) => Err(WRONG),
    }
}

/// The schema of `port`.
pub fn port_schema() -> Value {
    json!({
        "description": "The server's port: a number or a string of digits, 1 to 65535. Default 5432. Stored as a number.",
        "type": ["integer", "string", "null"],
        "minimum": 1,
        "maximum": 65535,
        "pattern": format!("^(?:{PORT_PATTERN})$"),
    })
}

/// One table a source searches, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub id_column: String,
    pub title_column: String,
    pub text_columns: Vec<String>,
    pub url_template: Option<String>,
}

impl Table {
    /// `schema.table`, as configured (the name in result ids).
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Reads a table from its stored (validated) form.
    fn from_value(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key)?.as_str().map(str::to_owned);
        let (schema, name) = text("table")?
            .split_once('.')
            .map(|(s, n)| (s.to_owned(), n.to_owned()))?;
        Some(Self {
            schema,
            name,
            id_column: text("id_column")?,
            title_column: text("title_column")?,
            text_columns: value
                .get("text_columns")?
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            url_template: text("url_template"),
        })
    }
}

/// The tables of validated metadata (`tables` passed [`tables`]).
pub fn parse_tables(value: Option<&Value>) -> Vec<Table> {
    value
        .and_then(Value::as_array)
        .map(|tables| tables.iter().filter_map(Table::from_value).collect())
        .unwrap_or_default()
}

const TABLE_KEYS: [&str; 5] = [
    "table",
    "id_column",
    "title_column",
    "text_columns",
    "url_template",
];

/// Checks `tables` and returns its stored form, or every problem as `(path after the field
/// name, message)`, e.g. `("[1].text_columns", "…")`.
pub fn tables(value: &Value) -> Result<Value, Vec<(String, String)>> {
    let Some(list) = value
        .as_array()
        .filter(|l| (1..=MAX_TABLES).contains(&l.len()))
    else {
        return Err(vec![(
            String::new(),
            format!("must be an array of 1 to {MAX_TABLES} tables"),
        )]);
    };
    let mut problems = Vec::new();
    let mut stored = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let at = |key: &str| {
            if key.is_empty() {
                format!("[{index}]")
            } else {
                format!("[{index}].{key}")
            }
        };
        let Some(entry) = entry.as_object() else {
            problems.push((at(""), "must be an object".to_owned()));
            continue;
        };
        match table(entry) {
            Ok(table) => stored.push(table),
            Err(found) => problems.extend(found.into_iter().map(|(key, m)| (at(&key), m))),
        }
    }
    if problems.is_empty() {
        Ok(Value::Array(stored))
    } else {
        Err(problems)
    }
}

/// One table entry: its stored form, or its problems by key.
fn table(entry: &Map<String, Value>) -> Result<Value, Vec<(String, String)>> {
    let mut problems = Vec::new();
    for key in entry.keys() {
        if !TABLE_KEYS.contains(&key.as_str()) {
            problems.push((
                key.clone(),
                format!(
                    "is not a table setting (expected: {})",
                    TABLE_KEYS.join(", ")
                ),
            ));
        }
    }
    let mut string = |key: &str, ok: fn(&str) -> bool, what: &str| match entry.get(key) {
        Some(Value::String(s)) if ok(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.push((key.to_owned(), what.to_owned()));
            None
        }
        None | Some(Value::Null) => {
            problems.push((key.to_owned(), "is required".to_owned()));
            None
        }
        Some(_) => {
            problems.push((key.to_owned(), "must be a string".to_owned()));
            None
        }
    };
    let name = string("table", is_qualified, QUALIFIED_HINT);
    let id_column = string("id_column", is_identifier, IDENTIFIER_HINT);
    let title_column = string("title_column", is_identifier, IDENTIFIER_HINT);
    let name = name.filter(|name| {
        let system = is_system_table(name);
        if system {
            problems.push(("table".to_owned(), SYSTEM_SCHEMA_HINT.to_owned()));
        }
        !system
    });
    let text_columns = match entry.get("text_columns") {
        Some(Value::Array(columns))
            if (1..=MAX_TEXT_COLUMNS).contains(&columns.len())
                && columns
                    .iter()
                    .all(|c| c.as_str().is_some_and(is_identifier)) =>
        {
            Some(columns.clone())
        }
        None | Some(Value::Null) => {
            problems.push(("text_columns".to_owned(), "is required".to_owned()));
            None
        }
        Some(_) => {
            problems.push(("text_columns".to_owned(), TEXT_COLUMNS_HINT.to_owned()));
            None
        }
    };
    let url_template = match entry.get("url_template") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_url_template(s) => Some(s.clone()),
        Some(_) => {
            problems.push(("url_template".to_owned(), URL_TEMPLATE_HINT.to_owned()));
            None
        }
    };
    match (name, id_column, title_column, text_columns) {
        (Some(table), Some(id_column), Some(title_column), Some(text_columns))
            if problems.is_empty() =>
        {
            let mut stored = json!({"table": table, "id_column": id_column,
                "title_column": title_column, "text_columns": text_columns});
            if let Some(template) = url_template {
                stored["url_template"] = template.into();
            }
            Ok(stored)
        }
        _ => Err(problems),
    }
}

const IDENTIFIER_HINT: &str = "must be a plain identifier (letters, digits, _ and $, not starting with a digit, at most 63 characters)";
const QUALIFIED_HINT: &str =
    "must be schema.table, two plain identifiers (letters, digits, _ and $; at most 63 each)";
const TEXT_COLUMNS_HINT: &str =
    "must be an array of 1 to 16 plain identifiers (letters, digits, _ and $; at most 63 each)";
const URL_TEMPLATE_HINT: &str = "must be an http(s) URL of at most 2048 characters (letters, digits and -._~:/?#@!$&'()*+,;=%) containing {id}, e.g. https://crm.example.com/tickets/{id}";

/// What `tables` must look like, in a sentence (forms show it).
pub const TABLES_HINT: &str = "must be a JSON array of 1 to 20 tables, each {\"table\": \"schema.table\", \"id_column\", \"title_column\", \"text_columns\": [...], \"url_template\" (optional, with {id})}";

const SYSTEM_SCHEMA_HINT: &str = "must not be in a system schema (pg_catalog, information_schema, pg_toast or any pg_* schema): they describe the server and its roles, not a tenant's data";

/// A table of the server's own schemas: the catalog (`pg_catalog.pg_authid` holds password
/// hashes), `information_schema`, `pg_toast` and the rest of `pg_*`. A role may read much of
/// them by default, so a source's role being least-privilege does not keep them out.
fn is_system_table(qualified: &str) -> bool {
    qualified.split_once('.').is_some_and(|(schema, _)| {
        let schema = schema.to_ascii_lowercase();
        schema.starts_with("pg_") || schema == "information_schema"
    })
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && value.len() <= MAX_IDENTIFIER
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn is_qualified(value: &str) -> bool {
    value
        .split_once('.')
        .is_some_and(|(schema, table)| is_identifier(schema) && is_identifier(table))
}

/// Characters a URL template may hold besides `{id}`: RFC 3986's unreserved and reserved
/// characters and `%`, without `[` and `]` (an IPv6 host is not worth the ambiguity).
const URL_CHARS: &str = "-._~:/?#@!$&'()*+,;=%";

fn is_url_template(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return false;
    };
    value.len() <= MAX_URL_TEMPLATE
        && value.contains(ID_PLACEHOLDER)
        && rest
            .split(ID_PLACEHOLDER)
            .flat_map(str::chars)
            .all(|c| c.is_ascii_alphanumeric() || URL_CHARS.contains(c))
}

const IDENTIFIER_PATTERN: &str = r"[A-Za-z_][A-Za-z0-9_$]{0,62}";
/// One character of a URL template, or `{id}`, as the schema states it ([`URL_CHARS`]).
const URL_PART: &str = r"(?:[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]|\{id\})";

/// The schema of `tables`.
pub fn tables_schema() -> Value {
    let identifier = format!("^{IDENTIFIER_PATTERN}$");
    json!({
        "description": format!("The tables searched: 1 to {MAX_TABLES}. Identifiers are plain (unquoted) names, matched as written (they are quoted in SQL, so case matters). `url_template` builds each row's URL: `{{id}}` is replaced by the URL-encoded row id."),
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_TABLES,
        "items": {
            "type": "object",
            "properties": {
                "table": {"type": "string", "description": "schema.table", "pattern": format!("^{IDENTIFIER_PATTERN}\\.{IDENTIFIER_PATTERN}$")},
                "id_column": {"type": "string", "pattern": identifier},
                "title_column": {"type": "string", "pattern": identifier},
                "text_columns": {"type": "array", "minItems": 1, "maxItems": MAX_TEXT_COLUMNS,
                    "items": {"type": "string", "pattern": identifier}},
                "url_template": {"type": ["string", "null"], "maxLength": MAX_URL_TEMPLATE,
                    "pattern": format!("^https?://{URL_PART}*\\{{id\\}}{URL_PART}*$")},
            },
            "required": ["table", "id_column", "title_column", "text_columns"],
            "additionalProperties": false,
        },
    })
}

/// The row's URL from a table's template: `{id}` replaced by the id, percent-encoded.
pub fn row_url(template: &str, row_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(row_id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    template.replace(ID_PLACEHOLDER, &encoded)
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

    #[test]
    fn system_schemas_are_refused() {
        for system in [
            "pg_catalog.pg_authid",
            "information_schema.tables",
            "pg_toast.pg_toast_1",
            "PG_temp_3.t",
            "Information_Schema.x",
        ] {
            let problems = tables(&json!([{"table": system, "id_column": "oid", "title_column": "rolname", "text_columns": ["rolname"]}])).unwrap_err();
            assert_eq!(problems.len(), 1, "{system}");
            assert_eq!(problems[0].0, "[0].table", "{system}");
            assert!(problems[0].1.contains("system schema"), "{system}");
        }
        assert!(tables(&json!([{"table": "pgdata.docs", "id_column": "id", "title_column": "t", "text_columns": ["t"]}])).is_ok());
    }

    #[test]
    fn ports_are_numbers_or_digit_strings() {
        assert_eq!(port(None), Ok(5432));
        assert_eq!(port(Some(&json!(6543))), Ok(6543));
        assert_eq!(port(Some(&json!("6543"))), Ok(6543));
        for bad in [
            json!(0),
            json!(65536),
            json!("065"),
            json!(" 5432"),
            json!(1.5),
            json!(true),
        ] {
            assert!(port(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_table_field_is_named_by_its_path() {
        let problems = tables(&json!([
            {"table": "public.docs", "id_column": "id", "title_column": "title", "text_columns": ["body"]},
            {"table": "docs", "id_column": "id\"; drop", "title_column": 5, "text_columns": [], "extra": 1},
        ]))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "[1].extra",
                "[1].table",
                "[1].id_column",
                "[1].title_column",
                "[1].text_columns"
            ]
        );
        assert!(tables(&json!([])).is_err());
        assert!(tables(&json!("public.docs")).is_err());
    }

    #[test]
    fn url_templates_are_plain_urls_with_the_placeholder() {
        for good in [
            "https://x.example/t/{id}",
            "http://x.example/?a={id}&b=%20{id}",
        ] {
            assert!(is_url_template(good), "{good}");
        }
        for bad in [
            "https://x.example/t/",
            "ftp://x.example/{id}",
            "http://[{id}",
            "https://x.example/{id} ",
            "https://x.example/{i}{id}",
            "javascript:alert({id})",
        ] {
            assert!(!is_url_template(bad), "{bad}");
        }
    }

    #[test]
    fn row_urls_encode_the_id() {
        assert_eq!(
            row_url("https://x.example/t/{id}", "a b/c?d"),
            "https://x.example/t/a%20b%2Fc%3Fd"
        );
    }
}
