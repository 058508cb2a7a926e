//! A circuit breaker for calls to outside services (embedding providers now; chat, paging
//! and LLM clients later): after enough consecutive failures it fails calls fast, without
//! touching the network, until a cool-down has passed and one trial call has succeeded.
//!
//! Written here rather than taken from a crate: `failsafe`, the established one, reads time
//! from a hidden thread-local clock and does not expose its state or the time left open,
//! both of which readiness checks, metrics and fast tests need.
//!
//! ```text
//!   Closed ──(failure_threshold consecutive failures)──▶ Open ──(open_for elapsed)──▶ HalfOpen
//!     ▲                                                   ▲                              │
//!     └───────────────(trial call succeeds)───────────────┼──────────────────────────────┤
//!                                                         └─────(trial call fails)───────┘
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where a breaker (and a retry loop) reads the time and waits. Injected so that tests can
/// move time forward instead of sleeping through a cool-down or a back-off.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Instant;

    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: [`advance`](Self::advance) moves it, and
/// [`sleep`](Clock::sleep) moves it instead of blocking and records the wait. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Instant>,
    slept: Mutex<Vec<Duration>>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self { now: Mutex::new(Instant::now()), slept: Mutex::new(Vec::new()) }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now += by;
    }

    /// Every wait asked of [`sleep`](Clock::sleep), in order.
    pub fn slept(&self) -> Vec<Duration> {
        lock(&self.slept).clone()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *lock(&self.now)
    }

    fn sleep(&self, duration: Duration) {
        lock(&self.slept).push(duration);
        self.advance(duration);
    }
}

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls that open the circuit; 0 is read as 1.
    pub failure_threshold: u32,
    /// How long the circuit stays open before one trial call is let through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failure_threshold: 5, open_for: Duration::from_secs(30) }
    }
}

/// What a breaker would do with a call made now; for readiness checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed { consecutive_failures: u32 },
    /// Calls fail fast for `retry_after` more.
    Open { retry_after: Duration },
    /// The cool-down is over: the next call is a trial (or one is in flight).
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`: a stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Why a breaker refused a call without making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The circuit is open for `retry_after` more.
    Open { retry_after: Duration },
    /// The circuit is half-open and its one trial call has not finished yet.
    TrialInFlight,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { retry_after } => write!(f, "circuit open: retry after {}s", whole_seconds_up(*retry_after)),
            Self::TrialInFlight => f.write_str("circuit half-open: a trial call is in flight, retry shortly"),
        }
    }
}

impl std::error::Error for Rejected {}

/// The result of [`CircuitBreaker::call`]: refused, or made and failed.
#[derive(Debug)]
pub enum BreakerError<E> {
    Rejected(Rejected),
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(rejected) => rejected.fmt(f),
            Self::Failed(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            Self::Failed(error) => Some(error),
        }
    }
}

/// A circuit breaker shared by every call to one outside service; cheap to consult.
#[derive(Debug)]
pub struct CircuitBreaker {
    /// Names the service in log lines.
    name: String,
    failure_threshold: u32,
    open_for: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<Inner>,
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

impl CircuitBreaker {
    /// `name` says which service the breaker guards, in log lines.
    pub fn new(name: impl Into<String>, settings: BreakerSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            name: name.into(),
            failure_threshold: settings.failure_threshold.max(1),
            open_for: settings.open_for,
            clock,
            state: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// What a call made now would meet. Does not change the state.
    pub fn state(&self) -> BreakerState {
        let now = self.clock.now();
        match *lock(&self.state) {
            Inner::Closed { failures } => BreakerState::Closed { consecutive_failures: failures },
            Inner::Open { until } if now < until => BreakerState::Open { retry_after: until - now },
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call. The permit records the call's outcome: report it with
    /// [`Permit::succeeded`] or [`Permit::failed`]; a permit dropped without a verdict (the
    /// call panicked or was cancelled) counts as a failure, so a half-open trial never
    /// leaves the breaker stuck.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        match *state {
            Inner::Closed { .. } => {}
            Inner::Open { until } if now < until => return Err(Rejected::Open { retry_after: until - now }),
            Inner::Open { .. } | Inner::HalfOpen { trial_in_flight: false } => {
                tracing::info!(service = %self.name, "circuit half-open: letting one trial call through");
                *state = Inner::HalfOpen { trial_in_flight: true };
            }
            Inner::HalfOpen { trial_in_flight: true } => return Err(Rejected::TrialInFlight),
        }
        Ok(Permit { breaker: self, settled: false })
    }

    /// Makes `call` unless the circuit is open. An error counts against the service only
    /// when `counts_as_failure` says so: a refusal of a malformed request shows the service
    /// is up.
    pub fn call<T, E>(
        &self,
        call: impl FnOnce() -> Result<T, E>,
        counts_as_failure: impl FnOnce(&E) -> bool,
    ) -> Result<T, BreakerError<E>> {
        let permit = self.try_acquire().map_err(BreakerError::Rejected)?;
        match call() {
            Ok(value) => {
                permit.succeeded();
                Ok(value)
            }
            Err(error) => {
                if counts_as_failure(&error) {
                    permit.failed();
                } else {
                    permit.succeeded();
                }
                Err(BreakerError::Failed(error))
            }
        }
    }

    fn record_success(&self) {
        let mut state = lock(&self.state);
        if !matches!(*state, Inner::Closed { .. }) {
            tracing::info!(service = %self.name, "circuit closed: the service answered again");
        }
        *state = Inner::Closed { failures: 0 };
    }

    fn record_failure(&self) {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        match *state {
            Inner::Closed { failures } if failures.saturating_add(1) < self.failure_threshold => {
                *state = Inner::Closed { failures: failures + 1 };
            }
            Inner::Closed { .. } | Inner::HalfOpen { .. } => {
                tracing::warn!(
                    service = %self.name,
                    open_for_secs = self.open_for.as_secs_f64(),
                    "circuit open: calls fail fast until the cool-down has passed"
                );
                *state = Inner::Open { until: now + self.open_for };
            }
            // A call let through before the circuit opened; the cool-down already runs.
            Inner::Open { .. } => {}
        }
    }
}

/// Leave to make one call; see [`CircuitBreaker::try_acquire`].
#[derive(Debug)]
#[must_use = "a permit dropped without a verdict counts as a failure"]
pub struct Permit<'breaker> {
    breaker: &'breaker CircuitBreaker,
    settled: bool,
}

impl Permit<'_> {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.record_success();
    }

    pub fn failed(mut self) {
        self.settled = true;
        self.breaker.record_failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.record_failure();
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data; the value
/// is still a valid state, so carry on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whole seconds, rounded up, so "retry after 0s" is never said of a circuit still open.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(30);

    fn breaker(failure_threshold: u32) -> (CircuitBreaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let breaker = CircuitBreaker::new(
            "test service",
            BreakerSettings { failure_threshold, open_for: OPEN_FOR },
            clock.clone(),
        );
        (breaker, clock)
    }

    fn fail(breaker: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
        breaker.call(|| Err::<(), _>("boom"), |_| true)
    }

    fn succeed(breaker: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
        breaker.call(|| Ok::<(), &str>(()), |_| true)
    }

    #[test]
    fn default_settings_open_after_five_failures_for_thirty_seconds() {
        assert_eq!(BreakerSettings::default(), BreakerSettings { failure_threshold: 5, open_for: OPEN_FOR });
    }

    #[test]
    fn stays_closed_below_the_threshold_and_counts_failures() {
        let (breaker, _) = breaker(3);
        assert!(matches!(fail(&breaker), Err(BreakerError::Failed("boom"))));
        assert!(matches!(fail(&breaker), Err(BreakerError::Failed("boom"))));
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 2 });
    }

    #[test]
    fn a_success_resets_the_count_of_consecutive_failures() {
        let (breaker, _) = breaker(3);
        fail(&breaker).ok();
        fail(&breaker).ok();
        succeed(&breaker).ok();
        fail(&breaker).ok();
        fail(&breaker).ok();
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 2 });
    }

    #[test]
    fn opens_at_the_threshold_and_then_refuses_without_calling() {
        let (breaker, clock) = breaker(3);
        for _ in 0..3 {
            fail(&breaker).ok();
        }
        assert_eq!(breaker.state(), BreakerState::Open { retry_after: OPEN_FOR });

        clock.advance(Duration::from_millis(10_500));
        let mut called = false;
        let outcome = breaker.call(
            || {
                called = true;
                Ok::<(), &str>(())
            },
            |_| true,
        );
        assert!(!called);
        let Err(BreakerError::Rejected(rejected)) = outcome else { panic!("expected a refusal, got {outcome:?}") };
        assert_eq!(rejected, Rejected::Open { retry_after: Duration::from_millis(19_500) });
        assert_eq!(rejected.to_string(), "circuit open: retry after 20s");
    }

    #[test]
    fn half_opens_after_the_cool_down_and_a_successful_trial_closes_it() {
        let (breaker, clock) = breaker(1);
        fail(&breaker).ok();
        clock.advance(OPEN_FOR);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);

        assert!(succeed(&breaker).is_ok());
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 0 });
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cool_down() {
        let (breaker, clock) = breaker(2);
        fail(&breaker).ok();
        fail(&breaker).ok();
        clock.advance(OPEN_FOR + Duration::from_secs(5));

        assert!(matches!(fail(&breaker), Err(BreakerError::Failed(_))));
        assert_eq!(breaker.state(), BreakerState::Open { retry_after: OPEN_FOR });
    }

    #[test]
    fn lets_only_one_trial_through_while_half_open() {
        let (breaker, clock) = breaker(1);
        fail(&breaker).ok();
        clock.advance(OPEN_FOR);

        let trial = breaker.try_acquire().expect("the trial is let through");
        assert_eq!(breaker.try_acquire().err(), Some(Rejected::TrialInFlight));
        trial.succeeded();
        assert!(breaker.try_acquire().is_ok());
    }

    #[test]
    fn a_permit_dropped_without_a_verdict_counts_as_a_failure() {
        let (breaker, clock) = breaker(1);
        fail(&breaker).ok();
        clock.advance(OPEN_FOR);

        drop(breaker.try_acquire().expect("the trial is let through"));
        assert_eq!(breaker.state(), BreakerState::Open { retry_after: OPEN_FOR });
    }

    #[test]
    fn errors_the_caller_does_not_count_leave_the_circuit_closed() {
        let (breaker, _) = breaker(1);
        let outcome = breaker.call(|| Err::<(), _>("bad request"), |_| false);
        assert!(matches!(outcome, Err(BreakerError::Failed("bad request"))));
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 0 });
    }

    #[test]
    fn a_zero_threshold_is_read_as_one() {
        let (breaker, _) = breaker(0);
        succeed(&breaker).ok();
        assert_eq!(breaker.state().label(), "closed");
        fail(&breaker).ok();
        assert_eq!(breaker.state().label(), "open");
    }

    #[test]
    fn the_manual_clock_sleeps_by_moving_forward() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.sleep(Duration::from_secs(2));
        clock.sleep(Duration::from_millis(5));
        assert_eq!(clock.now() - start, Duration::from_millis(2_005));
        assert_eq!(clock.slept(), vec![Duration::from_secs(2), Duration::from_millis(5)]);
    }
}
