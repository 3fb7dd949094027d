//! Every wait is a poll with a deadline: it says what it waited for and, when it gives up, what
//! it saw last. Retries go through `backon`, not hand-written loops.

use std::sync::Mutex;
use std::time::Duration;

use backon::{ConstantBuilder, Retryable as _};

/// Multiplies every deadline: a slow CI runner raises it (`MESHTRUST_PATIENCE=3`) instead of
/// every test growing its own timeouts.
pub const PATIENCE_ENV: &str = "MESHTRUST_PATIENCE";

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    pub deadline: Duration,
    pub interval: Duration,
}

impl Patience {
    pub const fn new(deadline: Duration, interval: Duration) -> Self {
        Patience { deadline, interval }
    }

    /// This patience, scaled by `MESHTRUST_PATIENCE` when it is set to a number >= 1.
    pub fn scaled(self) -> Self {
        let factor = std::env::var(PATIENCE_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|f| *f >= 1.0 && f.is_finite())
            .unwrap_or(1.0);
        Patience {
            deadline: self.deadline.mul_f64(factor),
            interval: self.interval,
        }
    }
}

/// One look at the world.
#[derive(Debug)]
pub enum Check<T> {
    Done(T),
    /// Not there yet; the text is what was seen, shown if the wait gives up.
    NotYet(String),
}

/// A wait that ran out of patience.
#[derive(Debug, thiserror::Error)]
#[error("gave up waiting for {what} after {}; last seen: {last_seen}", super::process::human_duration(*.after))]
pub struct WaitError {
    pub what: String,
    pub after: Duration,
    pub last_seen: String,
}

/// Calls `check` every `patience.interval` until it is done or `patience.deadline` has passed
/// (a check that itself hangs is cut off by the same deadline).
pub async fn poll<T, F, Fut>(
    what: impl Into<String>,
    patience: Patience,
    mut check: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let what = what.into();
    let last = Mutex::new(String::from(
        "nothing yet (the first check had not answered)",
    ));
    let attempts = (patience.deadline.as_millis() / patience.interval.as_millis().max(1)) as usize;
    let backoff = ConstantBuilder::default()
        .with_delay(patience.interval)
        .with_max_times(attempts.max(1));
    let attempt = || {
        let look = check();
        let last = &last;
        async move {
            match look.await {
                Check::Done(value) => Ok(value),
                Check::NotYet(seen) => {
                    tracing::debug!(%seen, "still waiting");
                    if let Ok(mut last) = last.lock() {
                        *last = seen;
                    }
                    Err(())
                }
            }
        }
    };
    tracing::info!(%what, deadline_s = patience.deadline.as_secs(), "waiting");
    let outcome = tokio::time::timeout(
        patience.deadline,
        attempt.retry(backoff).sleep(tokio::time::sleep),
    )
    .await;
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(())) | Err(_) => Err(WaitError {
            what,
            after: patience.deadline,
            last_seen: last.lock().map(|l| l.clone()).unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Patience = Patience::new(Duration::from_millis(300), Duration::from_millis(20));

    #[tokio::test]
    async fn a_wait_returns_as_soon_as_the_check_is_done() {
        let mut n = 0;
        let value = poll("the third look", QUICK, || {
            n += 1;
            let n = n;
            async move {
                if n == 3 {
                    Check::Done(n)
                } else {
                    Check::NotYet(format!("look {n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_wait_that_gives_up_says_what_it_waited_for_and_saw_last() {
        let err = poll("istiod to be Ready", QUICK, || async {
            Check::<()>::NotYet("0/1 replicas ready".into())
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting for istiod to be Ready after 300ms; last seen: 0/1 replicas ready"
        );
    }

    #[tokio::test]
    async fn a_check_that_hangs_is_cut_off_by_the_deadline() {
        let started = std::time::Instant::now();
        let err = poll("a hung API call", QUICK, || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Check::Done(())
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.last_seen.starts_with("nothing yet"), "{err}");
    }
}
