//! Errors, retries with jittered exponential backoff, and request-rate limits.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A collector error: transient ones (throttling, 5xx, timeouts, network) are retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CollectError {
    pub transient: bool,
    pub throttled: bool,
    pub message: String,
}

impl CollectError {
    pub fn transient(message: impl Into<String>) -> Self {
        CollectError {
            transient: true,
            throttled: false,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        CollectError {
            transient: false,
            throttled: false,
            message: message.into(),
        }
    }

    /// The error used when shutdown interrupts a poll.
    pub fn stopped() -> Self {
        CollectError::permanent("stopped")
    }
}

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes that mean "try again later" without being throttling.
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Classifies an SDK error. `op` names the call in the message.
pub fn sdk_error<E>(op: &str, e: SdkError<E, HttpResponse>) -> CollectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (transient, throttled) = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (true, false)
        }
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("");
            let status = ctx.raw().status().as_u16();
            let throttled = THROTTLING_CODES.contains(&code) || status == 429;
            (
                throttled || TRANSIENT_CODES.contains(&code) || status >= 500,
                throttled,
            )
        }
        _ => (false, false),
    };
    let message = match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            match (ctx.err().code(), ctx.err().message()) {
                (Some(c), Some(m)) => format!("{op}: {c}: {m} (HTTP {status})"),
                (Some(c), None) => format!("{op}: {c} (HTTP {status})"),
                _ => format!("{op}: HTTP {status} with an unreadable response"),
            }
        }
        SdkError::TimeoutError(_) => format!("{op}: timed out"),
        other => format!("{op}: {}", DisplayErrorContext(other)),
    };
    CollectError {
        transient,
        throttled,
        message: shorten(&message, 400),
    }
}

/// At most `n` characters, on one line.
fn shorten(s: &str, n: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= n {
        one_line
    } else {
        let mut t: String = one_line.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter" backoff: a uniform delay in [0, min(max, base * 2^attempt)], at least
    /// a tenth of the cap so retries never hammer.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let cap_ms = cap.as_millis().max(1) as u64;
        let floor = cap_ms / 10;
        Duration::from_millis(floor + fastrand::u64(0..=(cap_ms - floor)))
    }
}

/// At most `rate` requests per second, shared by every caller holding the same limiter.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now().max(*next) + self.interval;
    }

    /// The limiter for a key (e.g. `cloudtrail:ACCOUNT:REGION`), shared process-wide so
    /// that two collectors on one account and region share its API quota.
    pub fn shared(key: &str, per_second: f64) -> Arc<RateLimiter> {
        static R: OnceLock<Mutex<HashMap<String, Arc<RateLimiter>>>> = OnceLock::new();
        let reg = R.get_or_init(Default::default);
        let mut map = match reg.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::new(per_second)))
            .clone()
    }
}

/// Sleeps for `d` unless shutdown comes first; false when shutting down.
pub async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    let slept = tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|v| *v) => false,
    };
    slept && !*stop.borrow()
}

/// Runs one request with rate limiting and retries of transient errors.
pub async fn call<T, F, Fut>(
    policy: &RetryPolicy,
    limiter: Option<&RateLimiter>,
    stop: &watch::Receiver<bool>,
    op: &str,
    mut f: F,
) -> Result<T, CollectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CollectError>>,
{
    let mut stop = stop.clone();
    let mut attempt = 0u32;
    loop {
        if *stop.borrow() {
            return Err(CollectError::stopped());
        }
        if let Some(l) = limiter {
            l.acquire().await;
        }
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.transient && attempt + 1 < policy.max_attempts.max(1) => {
                let d = policy.delay(attempt);
                tracing::warn!(op, attempt = attempt + 1, delay_ms = d.as_millis() as u64, error = %e.message, "Transient error; retrying");
                attempt += 1;
                if !sleep_or_stop(d, &mut stop).await {
                    return Err(CollectError::stopped());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for attempt in 0..10 {
            let d = p.delay(attempt);
            let cap = (100u64 << attempt.min(20)).min(1000);
            assert!(d.as_millis() as u64 <= cap, "{attempt}: {d:?}");
            assert!(d.as_millis() as u64 >= cap / 10);
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| p.delay(5)).collect();
        assert!(spread.len() > 5, "jitter");
    }

    #[tokio::test]
    async fn limiter_spaces_requests() {
        let l = RateLimiter::new(20.0);
        let t = Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t.elapsed()
        );
    }
}
