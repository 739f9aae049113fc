//! Client ID metadata documents: a `client_id` that is an `https://` URL names a JSON document
//! the client hosts, saying its name and redirect URIs. Fetching it makes the control plane
//! connect to a URL anyone can choose, so the fetch is an egress boundary:
//! - `https://` only, unless the host is listed in `OAUTH_CIMD_ALLOW_HTTP_HOSTS` (local
//!   development and tests), with a path other than `/`;
//! - public addresses only: the resolver drops loopback, private, link-local and other
//!   non-public answers (checked on the addresses actually connected to, so a DNS answer that
//!   changes between check and use gains nothing), and IP literals are checked the same way;
//!   a listed host may be anything;
//! - no redirects, a 5 s deadline, at most 16 KiB read;
//! - the document must name itself as `client_id` and give `client_name` and `redirect_uris`.
//!
//! Good documents are cached for five minutes, failures for one (so a URL cannot be made to
//! fetch on every request), and at most eight fetches run at once.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use shared::egress::{PublicOnly, is_public};

use crate::oauth::clients::{Client, check_redirect_uris, clean_name};

/// Largest document read.
const MAX_BYTES: usize = 16 * 1024;
/// Whole fetch deadline.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a good document is reused.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// How long a failure is remembered.
const FAILURE_CACHE_FOR: Duration = Duration::from_secs(60);
/// Most documents cached (the cache is cleared when full: documents are few).
const CACHE_MAX: usize = 1000;
/// Fetches running at once at most; more wait for a place (within the fetch deadline).
const CONCURRENT_FETCHES: usize = 8;

/// What a fetch found: the client, or why its document cannot be used.
type Known = Result<Client, String>;

/// Fetches and caches metadata documents.
pub struct Documents {
    http: reqwest::Client,
    allow_http_hosts: Arc<[String]>,
    cache: Mutex<HashMap<String, (Instant, Known)>>,
    fetches: tokio::sync::Semaphore,
}

impl Documents {
    /// A fetcher for the deployment's `OAUTH_CIMD_ALLOW_HTTP_HOSTS`.
    pub fn new(allow_http_hosts: &[String]) -> anyhow::Result<Self> {
        let allow: Arc<[String]> = allow_http_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .no_proxy()
            .user_agent("mcp-gateway-oauth/1")
            .dns_resolver(PublicOnly {
                allow: allow.clone(),
            })
            .build()?;
        Ok(Self {
            http,
            allow_http_hosts: allow,
            cache: Mutex::default(),
            fetches: tokio::sync::Semaphore::new(CONCURRENT_FETCHES),
        })
    }

    /// The client the document at `url` describes; `Err` says why it cannot be used.
    pub async fn client(&self, url: &str) -> Result<Client, String> {
        if let Some(known) = self.cached(url) {
            return known;
        }
        let fetched = match tokio::time::timeout(TIMEOUT, self.fetches.acquire()).await {
            Ok(Ok(_permit)) => self.fetch(url).await,
            _ => {
                return Err(
                    "Too many client metadata documents are being fetched; try again shortly."
                        .to_owned(),
                );
            }
        };
        let mut cache = self.cache.lock().expect("document cache lock");
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(url.to_owned(), (Instant::now(), fetched.clone()));
        fetched
    }

    /// A remembered answer: a good document for five minutes, a failure for one.
    fn cached(&self, url: &str) -> Option<Known> {
        let cache = self.cache.lock().expect("document cache lock");
        let (at, known) = cache.get(url)?;
        let keep = if known.is_ok() {
            CACHE_FOR
        } else {
            FAILURE_CACHE_FOR
        };
        (at.elapsed() < keep).then(|| known.clone())
    }

    async fn fetch(&self, url: &str) -> Result<Client, String> {
        let target = self.check_url(url)?;
        let mut response = self
            .http
            .get(target)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| {
                tracing::info!(error = %err, "client metadata document unreachable");
                "The client's metadata document could not be fetched (unreachable, too slow, or at a non-public address).".to_owned()
            })?;
        if response.status().is_redirection() {
            return Err("The client's metadata document answered with a redirect; redirects are not followed.".to_owned());
        }
        if !response.status().is_success() {
            return Err(format!(
                "The client's metadata document answered HTTP {}.",
                response.status().as_u16()
            ));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| "The client's metadata document could not be read.".to_owned())?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        parse(url, &body)
    }

    /// The URL to fetch, if its scheme, host and path are acceptable.
    fn check_url(&self, url: &str) -> Result<url::Url, String> {
        let parsed =
            url::Url::parse(url).map_err(|_| "client_id is not a valid URL.".to_owned())?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let listed = self.allow_http_hosts.contains(&host);
        let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && listed);
        if !scheme_ok {
            return Err("A client_id URL must use https://.".to_owned());
        }
        if parsed.path() == "/" || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(
                "A client_id URL must have a path and no fragment or user info.".to_owned(),
            );
        }
        // IP literals never reach the resolver: judge them here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !listed
            && !is_public(ip)
        {
            return Err("The client's metadata document is at a non-public address.".to_owned());
        }
        Ok(parsed)
    }
}

fn too_large() -> String {
    format!("The client's metadata document is larger than {MAX_BYTES} bytes.")
}

/// Checks the document's content.
fn parse(url: &str, body: &[u8]) -> Result<Client, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| "The client's metadata document is not JSON.".to_owned())?;
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(
            "The client's metadata document names another client_id than its own URL.".to_owned(),
        );
    }
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .ok_or("The client's metadata document has no client_name.")?;
    // `token_endpoint_auth_method` is not checked: this server offers `none` with PKCE only
    // (its metadata says so), and real documents name other preferences (ChatGPT's says
    // `private_key_jwt` while also supporting `none`). A client that cannot do without its
    // method fails at the token endpoint, not here.
    let redirect_uris = check_redirect_uris(doc.get("redirect_uris"))
        .map_err(|reason| format!("The client's metadata document is not usable: {reason}."))?;
    Ok(Client {
        client_id: url.to_owned(),
        client_name: clean_name(name),
        redirect_uris,
        from_document: true,
    })
}
