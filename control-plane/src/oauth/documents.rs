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
//! Anyone can name a new, slow URL, so fetches are shared fairly and cannot push out the
//! documents real clients use:
//! - each client address (IPv6: per /64) may have `OAUTH_DOCUMENT_FETCHES_PER_MINUTE_PER_CLIENT`
//!   documents fetched a minute and two at a time; all addresses together 32 at a time (a
//!   fetch waits for a place within the fetch deadline, first come first served);
//! - good documents are cached for five minutes in a space of their own: failures (cached a
//!   minute, so a URL cannot be made to fetch on every request) are bounded separately and
//!   never evict a good document; when the good space is full, the least recently used goes;
//! - a good document up to an hour old is used again when a new fetch cannot run now (this
//!   address's or everyone's fetches are busy), so known clients keep working under a flood.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde_json::Value;
use shared::egress::{PublicOnly, is_public};

use crate::{
    auth::rate_limit::PerClient,
    oauth::clients::{Client, check_redirect_uris, clean_name},
};

/// Largest document read.
const MAX_BYTES: usize = 16 * 1024;
/// Whole fetch deadline, and longest wait for a place to fetch.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a good document is reused.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// How long a good document stands in when it cannot be fetched again now.
const STALE_FOR: Duration = Duration::from_secs(3600);
/// How long a failure is remembered.
const FAILURE_CACHE_FOR: Duration = Duration::from_secs(60);
/// Most good documents cached.
const GOOD_MAX: usize = 1000;
/// Most failures remembered.
const FAILURES_MAX: usize = 1000;
/// Fetches running at once at most, over all client addresses.
const CONCURRENT_FETCHES: usize = 32;
/// Fetches running at once at most for one client address (IPv6: /64).
const CONCURRENT_FETCHES_PER_CLIENT: usize = 2;

/// Fetches and caches metadata documents.
pub struct Documents {
    http: reqwest::Client,
    allow_http_hosts: Arc<[String]>,
    cache: Mutex<Cache>,
    fetches: tokio::sync::Semaphore,
    per_client: PerClient,
    running: Mutex<HashMap<IpAddr, usize>>,
}

/// Good documents and failures, each bounded on its own.
#[derive(Default)]
struct Cache {
    good: HashMap<String, Good>,
    failures: HashMap<String, (Instant, String)>,
}

struct Good {
    fetched: Instant,
    used: Instant,
    client: Client,
}

/// What the cache knows of a URL.
enum Cached {
    /// A fresh answer (a good document, or why it cannot be used).
    Fresh(Result<Client, String>),
    /// A good document past its freshness, to use if it cannot be fetched again now.
    Stale(Client),
    Unknown,
}

impl Cache {
    fn get(&mut self, url: &str, now: Instant) -> Cached {
        if let Some((at, reason)) = self.failures.get(url)
            && now.duration_since(*at) < FAILURE_CACHE_FOR
        {
            return Cached::Fresh(Err(reason.clone()));
        }
        match self.good.get_mut(url) {
            Some(good) if now.duration_since(good.fetched) < CACHE_FOR => {
                good.used = now;
                Cached::Fresh(Ok(good.client.clone()))
            }
            Some(good) if now.duration_since(good.fetched) < STALE_FOR => {
                Cached::Stale(good.client.clone())
            }
            _ => Cached::Unknown,
        }
    }

    fn put(&mut self, url: &str, fetched: &Result<Client, String>, now: Instant) {
        match fetched {
            Ok(client) => {
                self.failures.remove(url);
                if !self.good.contains_key(url) {
                    make_room(&mut self.good, GOOD_MAX, |g| {
                        (now.duration_since(g.fetched) >= STALE_FOR, g.used)
                    });
                }
                let good = Good {
                    fetched: now,
                    used: now,
                    client: client.clone(),
                };
                self.good.insert(url.to_owned(), good);
            }
            Err(reason) => {
                // A good document that now fails is no longer good.
                self.good.remove(url);
                if !self.failures.contains_key(url) {
                    make_room(&mut self.failures, FAILURES_MAX, |(at, _)| {
                        (now.duration_since(*at) >= FAILURE_CACHE_FOR, *at)
                    });
                }
                self.failures.insert(url.to_owned(), (now, reason.clone()));
            }
        }
    }
}

/// Makes room for one more entry in `map` if it holds `max`: forgets the expired entries,
/// then, if it is still full, the one used longest ago. `judge` says whether an entry has
/// expired and when it was last used.
fn make_room<V>(map: &mut HashMap<String, V>, max: usize, judge: impl Fn(&V) -> (bool, Instant)) {
    if map.len() < max {
        return;
    }
    map.retain(|_, v| !judge(v).0);
    if map.len() >= max
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| judge(v).1)
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

/// A place among one client address's running fetches, given back when dropped.
struct Place<'a> {
    running: &'a Mutex<HashMap<IpAddr, usize>>,
    client: IpAddr,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut running = lock(self.running);
        if let Some(n) = running.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.client);
            }
        }
    }
}

/// The lock, even if a holder panicked: the maps stay consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Documents {
    /// A fetcher for the deployment's `OAUTH_CIMD_ALLOW_HTTP_HOSTS`, with `per_client`
    /// limiting the fetches one client address may cause.
    pub fn new(allow_http_hosts: &[String], per_client: PerClient) -> anyhow::Result<Self> {
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
            per_client,
            running: Mutex::default(),
        })
    }

    /// The client the document at `url` describes, for a request from `from`; `Err` says why
    /// it cannot be used.
    pub async fn client(&self, url: &str, from: IpAddr) -> Result<Client, String> {
        let stale = match lock(&self.cache).get(url, Instant::now()) {
            Cached::Fresh(known) => return known,
            Cached::Stale(client) => Some(client),
            Cached::Unknown => None,
        };
        let fetched = match self.fetch_in_turn(url, from).await {
            Ok(fetched) => fetched,
            // Busy: a known client stands in; nothing is cached.
            Err(busy) => return stale.ok_or(busy),
        };
        lock(&self.cache).put(url, &fetched, Instant::now());
        fetched
    }

    /// Fetches `url` once `from` and everyone's limits allow; `Err` (outer) if they do not now.
    async fn fetch_in_turn(
        &self,
        url: &str,
        from: IpAddr,
    ) -> Result<Result<Client, String>, String> {
        let target = match self.check_url(url) {
            Ok(target) => target,
            // Refused without a connection: costs no one's budget.
            Err(reason) => return Ok(Err(reason)),
        };
        let _place = self.place_of(from).ok_or_else(|| {
            "Client metadata documents are already being fetched for this address; try again shortly."
                .to_owned()
        })?;
        super::limited(&self.per_client, from, "oauth_document_fetch").map_err(|wait| {
            format!(
                "Too many new client metadata documents were requested from this address; try again in {wait} seconds."
            )
        })?;
        let Ok(Ok(_permit)) = tokio::time::timeout(TIMEOUT, self.fetches.acquire()).await else {
            return Err(
                "Too many client metadata documents are being fetched; try again shortly."
                    .to_owned(),
            );
        };
        Ok(self.fetch(url, target).await)
    }

    /// A place among the running fetches of `client`'s address, if it has one left.
    fn place_of(&self, client: IpAddr) -> Option<Place<'_>> {
        let client = shared::client::block(client);
        let mut running = lock(&self.running);
        let n = running.entry(client).or_default();
        if *n >= CONCURRENT_FETCHES_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(Place {
            running: &self.running,
            client,
        })
    }

    /// Forgets idle limiter state.
    pub fn forget_idle(&self) {
        self.per_client.forget_idle();
    }

    async fn fetch(&self, url: &str, target: url::Url) -> Result<Client, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client {
            client_id: url.to_owned(),
            client_name: "Agent".to_owned(),
            redirect_uris: vec!["https://agent.example/cb".to_owned()],
            from_document: true,
        }
    }

    fn is_fresh_good(cache: &mut Cache, url: &str, now: Instant) -> bool {
        matches!(cache.get(url, now), Cached::Fresh(Ok(_)))
    }

    #[test]
    fn failures_never_push_out_a_good_document() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        cache.put("https://good.example/c", &Ok(client("g")), t0);
        for i in 0..3 * FAILURES_MAX {
            cache.put(
                &format!("https://bad.example/{i}"),
                &Err("no".to_owned()),
                t0,
            );
        }
        assert!(is_fresh_good(&mut cache, "https://good.example/c", t0));
        assert_eq!(cache.failures.len(), FAILURES_MAX);
    }

    #[test]
    fn a_full_good_space_lets_the_least_recently_used_go() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        for i in 0..GOOD_MAX {
            let at = t0 + Duration::from_millis(i as u64);
            cache.put(&format!("https://a.example/{i}"), &Ok(client("a")), at);
        }
        // The first one is in use again; the second is now the least recently used.
        let later = t0 + Duration::from_secs(2);
        assert!(is_fresh_good(&mut cache, "https://a.example/0", later));
        cache.put("https://new.example/c", &Ok(client("n")), later);
        assert_eq!(cache.good.len(), GOOD_MAX);
        assert!(is_fresh_good(&mut cache, "https://a.example/0", later));
        assert!(matches!(
            cache.get("https://a.example/1", later),
            Cached::Unknown
        ));
    }

    #[test]
    fn a_good_document_past_its_freshness_stands_in_for_an_hour() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        cache.put("https://good.example/c", &Ok(client("g")), t0);
        let url = "https://good.example/c";
        assert!(matches!(cache.get(url, t0 + CACHE_FOR), Cached::Stale(_)));
        assert!(matches!(cache.get(url, t0 + STALE_FOR), Cached::Unknown));
        // A document that now fails is forgotten as good.
        cache.put(url, &Err("gone".to_owned()), t0 + CACHE_FOR);
        assert!(matches!(
            cache.get(url, t0 + CACHE_FOR),
            Cached::Fresh(Err(_))
        ));
    }
}
