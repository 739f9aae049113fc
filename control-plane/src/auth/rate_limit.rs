//! Signin attempt limits per client address and per email address, so neither one client
//! spraying many accounts nor many clients hammering one account get far.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

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
        let now = self.clock.now();
        self.per_client
            .check_key(&client)
            .map_err(|n| n.wait_time_from(now))?;
        self.per_email
            .check_key(&email.to_owned())
            .map_err(|n| n.wait_time_from(now))?;
        Ok(())
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_client.retain_recent();
        self.per_email.retain_recent();
        self.per_client.shrink_to_fit();
        self.per_email.shrink_to_fit();
    }
}
