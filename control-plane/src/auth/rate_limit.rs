//! Signin attempt limits per client address and per email address, so neither one client
//! spraying many accounts nor many clients hammering one account get far.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// Both signin limiters.
pub struct SigninLimiter {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    per_email: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl SigninLimiter {
    /// Limits of `per_client` and `per_email` attempts a minute (at least 1 each).
    pub fn new(per_client: u32, per_email: u32) -> Arc<Self> {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            per_client: RateLimiter::keyed(quota(per_client)),
            per_email: RateLimiter::keyed(quota(per_email)),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one attempt; `Err(wait)` when either limit is spent.
    pub fn check(&self, client: IpAddr, email: &str) -> Result<(), Duration> {
        self.check_client(client)?;
        self.check_account(email)
    }

    /// Counts one attempt from `client` (signin, signup). IPv6 clients are counted per /64,
    /// the block one subscriber usually holds, so rotating addresses does not help.
    pub fn check_client(&self, client: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        self.per_client
            .check_key(&client_key(client))
            .map_err(|n| n.wait_time_from(now))
    }

    /// Counts one attempt on an account (signin by email, password change).
    pub fn check_account(&self, email: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        self.per_email
            .check_key(&email.to_owned())
            .map_err(|n| n.wait_time_from(now))
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_client.retain_recent();
        self.per_email.retain_recent();
        self.per_client.shrink_to_fit();
        self.per_email.shrink_to_fit();
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
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
        let limiter = SigninLimiter::new(2, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check_client(ip).is_ok() && limiter.check_client(ip).is_ok());
        let wait = limiter.check_client(ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
    }
}
