//! Timeouts inside processes without a timer per wait.
//!
//! A `gen_server` call waits at most 5 seconds by default, and most calls
//! are answered in microseconds. Arming a tokio timer for each call (and
//! disarming it a microsecond later) was the largest cost of a local call
//! and, with two workers, a point of lock contention. Instead, a wait inside
//! a process notes its deadline here; the process guard, which polls the
//! process, keeps one timer per process armed no later than the earliest
//! deadline it has been told of. Deadlines of sequential calls only move
//! later, so that one timer is re-armed about once per timeout period, not
//! once per call. When it fires, the guard polls the process again, and a
//! wait past its deadline ends with a timeout.
//!
//! Outside a process (a plain tokio task) the waits fall back to tokio's
//! own timeout.

use std::cell::Cell;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

thread_local! {
    /// Set while a process guard polls its process on this thread.
    static IN_PROCESS: Cell<bool> = const { Cell::new(false) };
    /// The earliest deadline the process asked to be woken at during the
    /// current poll.
    static WAKE_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set when the guard polls because the process's timer fired: only
    /// then can a wait have passed its deadline (so only then is the clock
    /// read).
    static TIMER_FIRED: Cell<bool> = const { Cell::new(false) };
}

/// What [`enter`] replaced, for [`exit`] to put back.
pub(crate) struct Saved {
    in_process: bool,
    wake_at: Option<Instant>,
    fired: bool,
}

/// Called by the process guard before it polls the process; `fired` when it
/// polls because the process's timer fired.
pub(crate) fn enter(fired: bool) -> Saved {
    Saved {
        in_process: IN_PROCESS.with(|c| c.replace(true)),
        wake_at: WAKE_AT.with(|c| c.replace(None)),
        fired: TIMER_FIRED.with(|c| c.replace(fired)),
    }
}

/// Called by the process guard after polling: the earliest deadline a wait
/// asked for during the poll.
pub(crate) fn exit(saved: Saved) -> Option<Instant> {
    IN_PROCESS.with(|c| c.set(saved.in_process));
    TIMER_FIRED.with(|c| c.set(saved.fired));
    WAKE_AT.with(|c| c.replace(saved.wake_at))
}

fn in_process() -> bool {
    IN_PROCESS.with(Cell::get)
}

fn wake_at(deadline: Instant) {
    WAKE_AT.with(|c| {
        let earliest = match c.get() {
            Some(d) if d <= deadline => d,
            _ => deadline,
        };
        c.set(Some(earliest));
    });
}

/// Runs `fut` for at most `timeout`: `None` if the time ran out first.
///
/// The clock is read only if `fut` is not ready on its first poll (a call
/// answered at once, a message already waiting), and then once: the time
/// runs from that poll. When the clock was read, `*deadline_out` is set to
/// the deadline, so that a caller can wait for something else up to the
/// same moment.
pub(crate) async fn within<F: Future>(
    timeout: Duration,
    deadline_out: &mut Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    if !in_process() {
        let deadline = Instant::now() + timeout;
        *deadline_out = Some(deadline);
        return tokio::time::timeout_at(deadline, fut).await.ok();
    }
    let mut fut = std::pin::pin!(fut);
    let mut deadline: Option<Instant> = None;
    let out = std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let at = match deadline {
            // Only the process's timer firing can take a wait past its
            // deadline.
            Some(at) if TIMER_FIRED.with(Cell::get) && Instant::now() >= at => {
                return Poll::Ready(None);
            }
            Some(at) => at,
            // `after 0` gives up at once rather than waiting for the timer
            // wheel's next tick.
            None if timeout.is_zero() => return Poll::Ready(None),
            None => *deadline.insert(Instant::now() + timeout),
        };
        wake_at(at);
        Poll::Pending
    })
    .await;
    *deadline_out = deadline;
    out
}

/// Runs `fut` until `deadline`: `None` if the deadline passed first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    if !in_process() {
        return tokio::time::timeout_at(deadline, fut).await.ok();
    }
    let mut fut = std::pin::pin!(fut);
    let mut first = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        // Only the process's timer firing can take a wait past its
        // deadline; the first poll comes right after the deadline was set.
        if !first && TIMER_FIRED.with(Cell::get) && Instant::now() >= deadline {
            return Poll::Ready(None);
        }
        // A deadline that has already passed gives up at once rather than
        // waiting for the timer wheel's next tick.
        if first && Instant::now() >= deadline {
            return Poll::Ready(None);
        }
        first = false;
        wake_at(deadline);
        Poll::Pending
    })
    .await
}
