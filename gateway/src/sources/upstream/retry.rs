//! The one retry policy for every upstream call, on [`backon`]: which answers are tried again,
//! the waits between attempts, and how the upstream's `Retry-After` changes them.
//!
//! - An HTTP upstream (Graph, Box, Snowflake) answering 429 or 503 is asked again up to 3 more
//!   times ([`THROTTLED`]), after 200, 400 and 800 ms, or after what its `Retry-After` asks
//!   (seconds, fractional included, or an HTTP date), at most 10 s a wait. A request that got no
//!   answer at all is not retried: its deadline is usually spent already.
//! - A remote MCP server answering a handshake or a call with 429 or 503 is asked again twice
//!   ([`MCP_BUSY`]), after 50 and 100 ms (rmcp does not pass on its `Retry-After`).
//! - A 401 on a cached token is sent once more, at once, with a new token ([`NEW_TOKEN`]).
//! - Waiting for an upstream's own work is polling on the same back-off: Box preparing a
//!   download ([`BOX_DOWNLOAD`], `Retry-After` honoured) or extracting text ([`BOX_TEXT`]),
//!   Snowflake running a statement ([`STATEMENT`]).
//!
//! The last answer is returned as it is once the attempts are spent, so the caller reports it
//! as it would any other. No wait outlives the caller's deadline: every source call runs under
//! a `tokio::time::timeout` (the source deadline), which drops a pending wait with the call and
//! reports it timed out.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use reqwest::{Response, StatusCode, header::HeaderMap};

/// How often one kind of answer is tried again, and the waits in between: `first`, then
/// multiplied by `factor`, none longer than `longest` (which also caps a `Retry-After`).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Attempts after the first (for a poll: waits at most).
    pub retries: usize,
    first: Duration,
    factor: f32,
    longest: Duration,
}

/// 429 and 503 from an HTTP upstream.
pub const THROTTLED: Policy = Policy {
    retries: 3,
    first: Duration::from_millis(200),
    factor: 2.0,
    longest: Duration::from_secs(10),
};

/// 429 and 503 from a remote MCP server: short pauses, since the deadline is short too.
pub const MCP_BUSY: Policy = Policy {
    retries: 2,
    first: Duration::from_millis(50),
    factor: 2.0,
    longest: Duration::from_secs(10),
};

/// A 401 on a cached token: once more with a new one, without waiting.
pub const NEW_TOKEN: Policy = Policy {
    retries: 1,
    first: Duration::ZERO,
    factor: 1.0,
    longest: Duration::ZERO,
};

/// Box answering 202 while it prepares a download: 20 requests, a second apart unless its
/// `Retry-After` says otherwise (at most 5 s).
pub const BOX_DOWNLOAD: Policy = Policy {
    retries: 19,
    first: Duration::from_secs(1),
    factor: 1.0,
    longest: Duration::from_secs(5),
};

/// Box extracting a file's text: status checks from 250 ms apart, up to 2 s apart.
pub const BOX_TEXT: Policy = Policy {
    retries: 20,
    first: Duration::from_millis(250),
    factor: 2.0,
    longest: Duration::from_secs(2),
};

/// A Snowflake statement still running: 50 status checks from 100 ms apart, up to 1 s apart.
pub const STATEMENT: Policy = Policy {
    retries: 50,
    first: Duration::from_millis(100),
    factor: 2.0,
    longest: Duration::from_secs(1),
};

impl Policy {
    fn backoff(self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_factor(self.factor)
            .with_max_delay(self.longest)
            .with_max_times(self.retries)
    }

    /// The waits between polls, in order; when none is left the poll gives up.
    pub fn waits(self) -> impl Iterator<Item = Duration> {
        self.backoff().build()
    }
}

/// What an attempt's outcome asks for.
pub enum Verdict {
    /// Keep it.
    Done,
    /// Try again: after what the upstream asked for, else after the policy's wait.
    Again(Option<Duration>),
}

/// The statuses of an upstream asking to be called later.
pub const BUSY: &[StatusCode] = &[
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// Whether `status` is one of [`BUSY`].
pub fn is_busy(status: u16) -> bool {
    BUSY.iter().any(|busy| *busy == status)
}

/// [`Verdict::Again`] for an answer with one of `statuses`, after its `Retry-After` if any.
pub fn on_status<E>(statuses: &[StatusCode]) -> impl Fn(&Result<Response, E>) -> Verdict {
    move |outcome| match outcome {
        Ok(response) if statuses.contains(&response.status()) => {
            Verdict::Again(retry_after(response.headers()))
        }
        _ => Verdict::Done,
    }
}

/// Runs `attempt`, and again as `verdict` asks and `policy` allows; returns the outcome of the
/// last attempt made. `what` names the upstream in the log line of each retry.
pub async fn run<T, E, Fut>(
    policy: Policy,
    what: &str,
    mut attempt: impl FnMut() -> Fut,
    verdict: impl Fn(&Result<T, E>) -> Verdict,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    /// An outcome to try again, as backon's error.
    struct Again<T, E> {
        outcome: Result<T, E>,
        asked: Option<Duration>,
    }
    let verdict = &verdict;
    let once = || {
        let call = attempt();
        async move {
            let outcome = call.await;
            match verdict(&outcome) {
                Verdict::Done => Ok(outcome),
                Verdict::Again(asked) => Err(Again { outcome, asked }),
            }
        }
    };
    let last = once
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .adjust(|again, wait| wait.map(|wait| again.asked.unwrap_or(wait).min(policy.longest)))
        .notify(|_, wait| {
            tracing::debug!(
                upstream = what,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
        })
        .await;
    match last {
        Ok(outcome) | Err(Again { outcome, .. }) => outcome,
    }
}

/// `Retry-After` as a wait: seconds (`2`, `2.128`) or an HTTP date (a past one is no wait).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use reqwest::header::{HeaderValue, RETRY_AFTER};

    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        HeaderMap::from_iter([(RETRY_AFTER, HeaderValue::from_str(value).unwrap())])
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let in_a_minute = chrono::Utc::now() + chrono::Duration::seconds(60);
        let date = in_a_minute.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let wait = retry_after(&with_retry_after(&date)).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            retry_after(&with_retry_after("2.5")),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            retry_after(&with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with_retry_after("-1")), None);
        assert_eq!(retry_after(&with_retry_after("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn the_policies_wait_as_documented() {
        let ms = |policy: Policy| policy.waits().map(|w| w.as_millis()).collect::<Vec<_>>();
        assert_eq!(ms(THROTTLED), [200, 400, 800]);
        assert_eq!(ms(MCP_BUSY), [50, 100]);
        assert_eq!(ms(NEW_TOKEN), [0]);
        assert_eq!(ms(BOX_DOWNLOAD), [1000; 19]);
        assert_eq!(ms(BOX_TEXT)[..5], [250, 500, 1000, 2000, 2000]);
        assert_eq!(ms(STATEMENT)[..6], [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(ms(STATEMENT).len(), 50);
    }

    /// [`THROTTLED`] at a twentieth of its pace.
    const QUICK: Policy = Policy {
        retries: 3,
        first: Duration::from_millis(10),
        factor: 2.0,
        longest: Duration::from_millis(500),
    };

    #[tokio::test]
    async fn an_outcome_asking_again_is_retried_until_the_attempts_are_spent() {
        let calls = AtomicUsize::new(0);
        let started = std::time::Instant::now();
        let last: Result<usize, ()> = run(
            QUICK,
            "test",
            || async { Ok(calls.fetch_add(1, Ordering::Relaxed)) },
            |_| Verdict::Again(None),
        )
        .await;
        assert_eq!(last, Ok(3), "the fourth attempt's outcome");
        assert!(started.elapsed() >= Duration::from_millis(70));
    }

    #[tokio::test]
    async fn a_wait_the_upstream_asks_for_replaces_the_back_off_within_the_cap() {
        let started = std::time::Instant::now();
        let asked = [Duration::from_secs(60), Duration::ZERO];
        let calls = AtomicUsize::new(0);
        let last: Result<usize, ()> = run(
            QUICK,
            "test",
            || async { Ok(calls.fetch_add(1, Ordering::Relaxed)) },
            |outcome| match outcome {
                Ok(n) if *n < 2 => Verdict::Again(Some(asked[*n])),
                _ => Verdict::Done,
            },
        )
        .await;
        assert_eq!(last, Ok(2), "the third attempt was kept");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
