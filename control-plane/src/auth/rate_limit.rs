//! Limits per client address ([`PerClient`], IPv6 per /64), and the signin limits. Attempts are counted per client address, so one client spraying many
//! accounts does not get far. For an account, only *failures* count, and per (email, client)
//! pair: a stranger guessing someone's password from their address spends their own budget,
//! never the owner's. A looser cap over all addresses stops guessing spread over many
//! addresses: once it is spent, each address gets one try a minute for that email, so the
//! right password from an address that has not failed still gets through at once.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// Window of the per (email, client) failure count.
const PAIR_WINDOW: Duration = Duration::from_secs(60);
/// Window of the per-email failure count over all clients.
const EMAIL_WINDOW: Duration = Duration::from_secs(60 * 60);

/// A rate limit per client address. IPv6 clients are counted per /64, the block one
/// subscriber usually holds, so rotating addresses does not help.
pub struct PerClient {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl PerClient {
    /// `n` requests a minute per address (at least 1), in bursts of up to `n`.
    pub fn per_minute(n: u32) -> Self {
        Self::new(Quota::per_minute(at_least_one(n)))
    }

    /// `n` requests an hour per address (at least 1), in bursts of up to `n`.
    pub fn per_hour(n: u32) -> Self {
        Self::new(Quota::per_hour(at_least_one(n)))
    }

    fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request from `client`; `Err(wait)` if it is over the limit.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        self.limiter
            .check_key(&client_key(client))
            .map_err(|n| n.wait_time_from(now))
    }

    /// Forgets addresses whose budget has fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The signin limiters.
pub struct SigninLimiter {
    per_client: PerClient,
    failures: Mutex<Failures>,
}

/// Failure counts in fixed windows that start at the first failure.
struct Failures {
    per_pair: HashMap<(String, IpAddr), Window>,
    per_email: HashMap<String, Window>,
    pair_limit: u32,
    email_limit: u32,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    /// The failures counted at `now` (none once the window has ended).
    fn count_at(&self, now: Instant, length: Duration) -> u32 {
        if now < self.started + length {
            self.count
        } else {
            0
        }
    }

    fn remaining(&self, now: Instant, length: Duration) -> Duration {
        (self.started + length).saturating_duration_since(now)
    }
}

impl SigninLimiter {
    /// `per_client` attempts a minute per address, `per_email` failures a minute per (email,
    /// address) pair and `per_email_hourly` failures an hour per email (at least 1 each).
    pub fn new(per_client: u32, per_email: u32, per_email_hourly: u32) -> Arc<Self> {
        Arc::new(Self {
            per_client: PerClient::per_minute(per_client),
            failures: Mutex::new(Failures {
                per_pair: HashMap::new(),
                per_email: HashMap::new(),
                pair_limit: per_email.max(1),
                email_limit: per_email_hourly.max(1),
            }),
        })
    }

    /// Counts one attempt from `client` (signin, signup).
    pub fn check_client(&self, client: IpAddr) -> Result<(), Duration> {
        self.per_client.check(client)
    }

    /// Whether `client` may have a password for `email` checked now; `Err(wait)` if not.
    /// Counts nothing: call [`Self::record_failure`] when the password was wrong.
    pub fn check_account(&self, email: &str, client: IpAddr) -> Result<(), Duration> {
        self.lock().check(email, client_key(client), Instant::now())
    }

    /// Counts a wrong password for `email` from `client`.
    pub fn record_failure(&self, email: &str, client: IpAddr) {
        self.lock()
            .record(email, client_key(client), Instant::now());
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_client.forget_idle();
        let now = Instant::now();
        let mut failures = self.lock();
        failures
            .per_pair
            .retain(|_, w| w.count_at(now, PAIR_WINDOW) > 0);
        failures
            .per_email
            .retain(|_, w| w.count_at(now, EMAIL_WINDOW) > 0);
        failures.per_pair.shrink_to_fit();
        failures.per_email.shrink_to_fit();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        // The counts stay meaningful even if a holder panicked: nothing is half-written.
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Failures {
    fn check(&self, email: &str, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let pair = self.per_pair.get(&(email.to_owned(), client));
        let pair_count = pair.map_or(0, |w| w.count_at(now, PAIR_WINDOW));
        let email_spent = self
            .per_email
            .get(email)
            .is_some_and(|w| w.count_at(now, EMAIL_WINDOW) >= self.email_limit);
        // Under the email-wide cap an address keeps one try a minute: its first.
        let allowed = if email_spent { 1 } else { self.pair_limit };
        match pair {
            Some(window) if pair_count >= allowed => Err(window.remaining(now, PAIR_WINDOW)),
            _ => Ok(()),
        }
    }

    fn record(&mut self, email: &str, client: IpAddr, now: Instant) {
        bump(
            self.per_pair
                .entry((email.to_owned(), client))
                .or_insert(Window {
                    started: now,
                    count: 0,
                }),
            now,
            PAIR_WINDOW,
        );
        bump(
            self.per_email.entry(email.to_owned()).or_insert(Window {
                started: now,
                count: 0,
            }),
            now,
            EMAIL_WINDOW,
        );
    }
}

/// Adds a failure, starting a new window when the last one has ended.
fn bump(window: &mut Window, now: Instant, length: Duration) {
    if window.count_at(now, length) == 0 {
        *window = Window {
            started: now,
            count: 0,
        };
    }
    window.count = window.count.saturating_add(1);
}

fn client_key(ip: IpAddr) -> IpAddr {
    shared::client::block(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn an_exhausted_client_is_told_how_long_to_wait() {
        let limiter = SigninLimiter::new(2, 100, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check_client(ip).is_ok() && limiter.check_client(ip).is_ok());
        let wait = limiter.check_client(ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
    }

    fn failures(pair_limit: u32, email_limit: u32) -> Failures {
        Failures {
            per_pair: HashMap::new(),
            per_email: HashMap::new(),
            pair_limit,
            email_limit,
        }
    }

    const EMAIL: &str = "ada@example.com";

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_pair_is_refused_after_its_failures_until_its_window_ends() {
        let mut f = failures(3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(f.check(EMAIL, ip(1), t0).is_ok());
            f.record(EMAIL, ip(1), t0);
        }
        let wait = f.check(EMAIL, ip(1), t0).unwrap_err();
        assert_eq!(wait, PAIR_WINDOW);
        assert!(
            f.check(EMAIL, ip(2), t0).is_ok(),
            "another address is not affected"
        );
        assert!(
            f.check(EMAIL, ip(1), t0 + PAIR_WINDOW).is_ok(),
            "the window ends"
        );
    }

    #[test]
    fn past_the_email_cap_each_address_keeps_its_first_try_a_minute() {
        let mut f = failures(10, 4);
        let t0 = Instant::now();
        for last in 1..=4 {
            f.record(EMAIL, ip(last), t0);
        }
        assert!(
            f.check(EMAIL, ip(1), t0).is_err(),
            "an address that failed waits"
        );
        assert!(f.check(EMAIL, ip(9), t0).is_ok(), "a fresh address may try");
        f.record(EMAIL, ip(9), t0);
        assert!(f.check(EMAIL, ip(9), t0).is_err());
        assert!(
            f.check(EMAIL, ip(9), t0 + PAIR_WINDOW).is_ok(),
            "one try a minute"
        );
        assert!(
            f.check("bob@example.com", ip(1), t0).is_ok(),
            "other emails are not affected"
        );
        assert!(
            f.check(EMAIL, ip(1), t0 + EMAIL_WINDOW).is_ok()
                && f.check(EMAIL, ip(1), t0 + PAIR_WINDOW).is_ok()
        );
    }
}
