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
//! Outside a process (a plain tokio task) the waits use tokio timers, but
//! not a fresh one per wait: registering a timer that is the earliest the
//! runtime knows of wakes the timer driver (a system call and a thread
//! wake-up), and dropping it a microsecond later takes the wheel's lock.
//! Instead each thread keeps a few armed [`Sleep`]s and a wait borrows
//! one and gives it back when done. A timer due no later than the wait's
//! deadline that already holds the waiting task's waker (the timer of the
//! same task's last call) is left as it is: it fires early, and the wait
//! then reads the clock and re-arms it for its own deadline, about once
//! per timeout period. Otherwise the wait moves the timer's deadline
//! (later, which tokio does with one atomic operation) and registers its
//! waker. A pooled timer that really expires while idle wakes the task
//! that last waited on it once, which that task ignores.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

thread_local! {
    /// What is true of the poll of a process going on on this thread
    /// (the `POLL_` bits; none outside processes).
    static POLL: Cell<u8> = const { Cell::new(0) };
    /// The earliest deadline the process asked to be woken at during the
    /// current poll.
    static WAKE_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A process guard polls its process on this thread.
const POLL_IN_PROCESS: u8 = 1;
/// The process's node runs on a multi-thread runtime, whose clock cannot be
/// paused (tokio pauses only current-thread runtimes' clocks): its long
/// waits may take their deadlines from the coarse clock.
const POLL_COARSE_OK: u8 = 2;
/// The guard polls because the process's timer fired: only then can a wait
/// have passed its deadline (so only then is the clock read).
const POLL_TIMER_FIRED: u8 = 4;
/// The process yielded its worker during this poll (it took a slice of
/// messages without finding its mailbox empty): a wait that is `Pending`
/// then has not waited at all, so no timeout is judged on it.
const POLL_YIELDED: u8 = 8;

fn poll_is(bit: u8) -> bool {
    POLL.with(Cell::get) & bit != 0
}

/// How many idle timers a thread keeps for waits outside processes.
const POOLED_SLEEPS: usize = 16;

/// Idle armed timers of one runtime (the one whose id is kept).
type SleepPool = (Option<tokio::runtime::Id>, Vec<Pin<Box<Idle>>>);

thread_local! {
    /// Idle armed timers for waits outside processes on this thread.
    static SLEEPS: RefCell<SleepPool> = const { RefCell::new((None, Vec::new())) };
}

thread_local! {
    /// The task that last borrowed a timer on this thread, and its runtime.
    static LAST_TASK: Cell<Option<(tokio::task::Id, (tokio::runtime::Id, bool))>> =
        const { Cell::new(None) };
}

/// Timeouts at least this long take their deadline from the kernel's coarse
/// clock (see [`deadline_after`]).
const COARSE_FROM: Duration = Duration::from_secs(1);

/// The deadline of a wait of `timeout` starting now. With `coarse` (a
/// wait on a multi-thread runtime, whose clock tokio cannot pause), a long
/// timeout (a call's 5 seconds, say) reads the kernel's coarse monotonic
/// clock, which costs a quarter of the precise one (about 6 against 24 ns
/// here: a tenth of a local call); the deadline is then a few of the
/// kernel's ticks late at most (1 to 4 ms a tick), and early only if the
/// kernel's timekeeping itself stalled for more than two ticks when it was
/// read (a virtual CPU held off by its host, say), by that stall beyond
/// two ticks. Shorter timeouts, waits on a current-thread runtime, and
/// systems without the coarse clock read the precise one, and are never
/// early.
fn deadline_after(timeout: Duration, coarse: bool) -> Instant {
    if coarse
        && timeout >= COARSE_FROM
        && let Some(now) = coarse::now_or_later()
    {
        return now + timeout;
    }
    Instant::now() + timeout
}

/// Called when the process being polled yields its worker, so that the
/// waits it is inside do not take the yield for the end of a wait.
pub(crate) fn yielded() {
    POLL.with(|c| c.set(c.get() | POLL_YIELDED));
}

fn has_yielded() -> bool {
    poll_is(POLL_YIELDED)
}

#[cfg(target_os = "linux")]
mod coarse {
    use std::sync::OnceLock;
    use std::time::Duration;

    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// Where the coarse clock stood against the precise one, once.
    struct Base {
        /// The precise clock, read just after `coarse`.
        precise: std::time::Instant,
        coarse: Duration,
        /// Added to every reading: how far the coarse clock may trail the
        /// precise one, with a tick to spare.
        slack: Duration,
    }

    static BASE: OnceLock<Option<Base>> = OnceLock::new();

    fn duration(t: Timespec) -> Option<Duration> {
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }

    /// An instant at most three ticks of the kernel's clock after now (1
    /// to 4 ms a tick), and no earlier than now while the kernel's
    /// timekeeping keeps up (see `deadline_after`); `None` where the coarse
    /// clock is missing or too coarse to be worth it.
    ///
    /// The coarse clock is the precise one as the kernel last stored it,
    /// on the same base and normally less than a tick behind. `base.coarse`
    /// was read before `base.precise`, with no tick between it and a
    /// second coarse reading after, so `base.precise - base.coarse` is at
    /// least the clocks' true difference then and at most a tick more; a
    /// later reading plus the slack of two ticks is at least the precise
    /// time now.
    pub(super) fn now_or_later() -> Option<tokio::time::Instant> {
        let base = BASE
            .get_or_init(|| {
                let tick = duration(clock_getres(ClockId::MonotonicCoarse))?;
                if tick.is_zero() || tick > Duration::from_millis(10) {
                    return None;
                }
                // The pair read with no tick of the coarse clock between
                // its two readings around the precise one, so that a
                // preemption between them cannot make every deadline after
                // it late.
                for _ in 0..100 {
                    let coarse = duration(clock_gettime(ClockId::MonotonicCoarse))?;
                    let precise = std::time::Instant::now();
                    if duration(clock_gettime(ClockId::MonotonicCoarse))? == coarse {
                        return Some(Base {
                            precise,
                            coarse,
                            slack: 2 * tick,
                        });
                    }
                }
                None
            })
            .as_ref()?;
        let now = duration(clock_gettime(ClockId::MonotonicCoarse))?;
        let at = base.precise + now.saturating_sub(base.coarse) + base.slack;
        Some(tokio::time::Instant::from_std(at))
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    pub(super) fn now_or_later() -> Option<tokio::time::Instant> {
        None
    }
}

/// The id of the runtime the caller runs on. A task stays on one runtime
/// for its life and task ids are never reused, so a task waiting again on
/// the same thread is answered from [`LAST_TASK`]: asking tokio for the
/// current runtime takes and drops a reference to the runtime's handle,
/// which every worker shares (about a tenth of a local call from a task).
/// Also whether it is a multi-thread runtime (whose clock tokio cannot
/// pause).
fn current_runtime() -> (tokio::runtime::Id, bool) {
    let task = tokio::task::try_id();
    if let (Some(task), Some((last, runtime))) = (task, LAST_TASK.with(Cell::get))
        && task == last
    {
        return runtime;
    }
    let handle = tokio::runtime::Handle::current();
    let runtime = (
        handle.id(),
        handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread,
    );
    if let Some(task) = task {
        LAST_TASK.with(|c| c.set(Some((task, runtime))));
    }
    runtime
}

pin_project_lite::pin_project! {
    /// An armed timer of a thread's pool, with the waker it last
    /// registered (until the timer fires, it wakes that waker) and its
    /// runtime.
    struct Idle {
        #[pin]
        sleep: Sleep,
        waker: Option<Waker>,
        runtime: tokio::runtime::Id,
    }
}

/// A timer borrowed from this thread's pool, given back when dropped.
///
/// A borrowed timer that will fire no later than the wait's deadline and
/// already holds the waiting task's waker (a task's sequential calls, each
/// with a deadline a little later than the last) is left as it is: it
/// fires early for this wait, which then looks at the clock and re-arms it
/// for its own deadline. Re-arming and registering a timer on every wait
/// took about a fifth of a local call from a task.
struct PooledSleep {
    idle: Option<Pin<Box<Idle>>>,
    /// The timer holds the waker of the current poll and is set no later
    /// than the wait's deadline.
    registered: bool,
}

impl PooledSleep {
    /// A timer of the current runtime that wakes `waker` no later than
    /// `deadline`, once polled.
    fn until(deadline: Instant, runtime: tokio::runtime::Id, waker: &Waker) -> PooledSleep {
        let pooled = SLEEPS
            .try_with(|p| {
                let mut p = p.borrow_mut();
                if p.0 != Some(runtime) {
                    // Timers of another runtime (maybe one shut down) are
                    // of no use on this one.
                    p.1.clear();
                    p.0 = Some(runtime);
                }
                p.1.pop()
            })
            .ok()
            .flatten();
        let (idle, registered) = match pooled {
            Some(mut idle) => {
                let keeps = idle.sleep.deadline() <= deadline
                    && idle.waker.as_ref().is_some_and(|w| w.will_wake(waker))
                    && !idle.sleep.is_elapsed();
                if !keeps {
                    idle.as_mut().project().sleep.reset(deadline);
                }
                (idle, keeps)
            }
            None => (
                Box::pin(Idle {
                    sleep: tokio::time::sleep_until(deadline),
                    waker: None,
                    runtime,
                }),
                false,
            ),
        };
        PooledSleep {
            idle: Some(idle),
            registered,
        }
    }

    /// `Ready` once `deadline`, the wait's own, has passed.
    fn poll(&mut self, deadline: Instant, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let idle = self.idle.as_mut().expect("taken only on drop");
        let mut idle = idle.as_mut().project();
        loop {
            // A wait's waker does not change in a task, but may under a
            // combinator that hands each future a waker of its own.
            let same = idle.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
            let fired = if self.registered && same {
                idle.sleep.is_elapsed()
            } else {
                // Outside tokio's task budget: a `Sleep` polled on a spent
                // budget answers `Pending` without registering the waker,
                // and a timer kept as registered would then never fire.
                match std::pin::pin!(tokio::task::unconstrained(idle.sleep.as_mut())).poll(cx) {
                    Poll::Ready(()) => true,
                    Poll::Pending => {
                        if !same {
                            *idle.waker = Some(cx.waker().clone());
                        }
                        self.registered = true;
                        false
                    }
                }
            };
            if !fired {
                return Poll::Pending;
            }
            if idle.sleep.deadline() >= deadline || Instant::now() >= deadline {
                return Poll::Ready(());
            }
            // Fired early for this wait: set for its own deadline, and
            // registered again.
            idle.sleep.as_mut().reset(deadline);
            self.registered = false;
        }
    }
}

impl Drop for PooledSleep {
    fn drop(&mut self) {
        let Some(idle) = self.idle.take() else {
            return;
        };
        if idle.sleep.is_elapsed() {
            return;
        }
        let _ = SLEEPS.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.0 == Some(idle.runtime)
                && p.1.len() < POOLED_SLEEPS
            {
                p.1.push(idle);
            }
        });
    }
}

/// `fut` until `deadline` on a pooled timer: `None` if the deadline
/// passed first.
async fn pooled_until<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer: Option<PooledSleep> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let timer = timer
            .get_or_insert_with(|| PooledSleep::until(deadline, current_runtime().0, cx.waker()));
        timer.poll(deadline, cx).map(|()| None)
    })
    .await
}

/// What [`enter`] replaced, for [`exit`] to put back.
pub(crate) struct Saved {
    poll: u8,
    wake_at: Option<Instant>,
}

/// Called by the process guard before it polls the process; `fired` when it
/// polls because the process's timer fired, `multi_thread` when the
/// process's node runs on a multi-thread runtime.
pub(crate) fn enter(fired: bool, multi_thread: bool) -> Saved {
    let mut poll = POLL_IN_PROCESS;
    if fired {
        poll |= POLL_TIMER_FIRED;
    }
    if multi_thread {
        poll |= POLL_COARSE_OK;
    }
    Saved {
        poll: POLL.with(|c| c.replace(poll)),
        wake_at: WAKE_AT.with(|c| c.replace(None)),
    }
}

/// Called by the process guard after polling: the earliest deadline a wait
/// asked for during the poll.
pub(crate) fn exit(saved: Saved) -> Option<Instant> {
    POLL.with(|c| c.set(saved.poll));
    WAKE_AT.with(|c| c.replace(saved.wake_at))
}

fn in_process() -> bool {
    poll_is(POLL_IN_PROCESS)
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
/// runs from that poll. [`Timed::deadline`] then gives the deadline, so
/// that a caller can wait for something else up to the same moment.
///
/// Written out rather than as an `async fn` choosing between a process's
/// wait and a pooled timer: that one kept the futures of both, and the
/// layer cost a local call from a process about 18 ns.
pub(crate) fn within<F: Future>(timeout: Duration, fut: F) -> Timed<F> {
    Timed {
        fut,
        timeout,
        deadline: None,
        timer: None,
    }
}

pin_project_lite::pin_project! {
    /// The wait [`within`] returns: in a process, on the process's timer;
    /// elsewhere, on a pooled one.
    pub(crate) struct Timed<F> {
        #[pin]
        fut: F,
        timeout: Duration,
        deadline: Option<Instant>,
        // Outside processes, once a poll found `fut` pending.
        timer: Option<PooledSleep>,
    }
}

impl<F> Timed<F> {
    /// The wait's deadline, once a poll found `fut` pending (the clock is
    /// not read before).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = Option<F::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.fut.poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending if in_process() => {
                std::task::ready!(process_wait(this.deadline, *this.timeout));
                Poll::Ready(None)
            }
            Poll::Pending => {
                let timer = match this.timer {
                    Some(timer) => timer,
                    None => {
                        let (runtime, multi_thread) = current_runtime();
                        let at = *this
                            .deadline
                            .insert(deadline_after(*this.timeout, multi_thread));
                        this.timer
                            .insert(PooledSleep::until(at, runtime, cx.waker()))
                    }
                };
                std::task::ready!(timer.poll(this.deadline.expect("set with the timer"), cx));
                Poll::Ready(None)
            }
        }
    }
}

/// What a process's timed wait does when what it waits for is pending:
/// `Pending`, with the process's timer asked for the deadline (made now,
/// on the first such poll), or `Ready` once the deadline has passed.
fn process_wait(deadline: &mut Option<Instant>, timeout: Duration) -> Poll<()> {
    // The process yielded its worker: it has not waited yet.
    if has_yielded() {
        if let Some(at) = *deadline {
            wake_at(at);
        }
        return Poll::Pending;
    }
    let at = match *deadline {
        // Only the process's timer firing can take a wait past its
        // deadline.
        Some(at) if poll_is(POLL_TIMER_FIRED) && Instant::now() >= at => return Poll::Ready(()),
        Some(at) => at,
        // `after 0` gives up at once rather than waiting for the timer
        // wheel's next tick.
        None if timeout.is_zero() => return Poll::Ready(()),
        None => *deadline.insert(deadline_after(timeout, poll_is(POLL_COARSE_OK))),
    };
    wake_at(at);
    Poll::Pending
}

/// [`within`] for a caller that runs in a process (a behaviour's own
/// loop). Written out rather than as an `async fn`: its future is the
/// waited one and three words, where the compiler's layout kept the waited
/// future twice and each local apart, and a `gen_server` holds it in every
/// process's task.
pub(crate) fn within_process<F: Future>(timeout: Duration, fut: F) -> Within<F> {
    debug_assert!(in_process(), "a process-only wait outside a process");
    Within {
        fut,
        timeout,
        deadline: None,
    }
}

pin_project_lite::pin_project! {
    /// The wait [`within_process`] returns.
    pub(crate) struct Within<F> {
        #[pin]
        fut: F,
        timeout: Duration,
        deadline: Option<Instant>,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.fut.poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => {
                std::task::ready!(process_wait(this.deadline, *this.timeout));
                Poll::Ready(None)
            }
        }
    }
}

/// Runs `fut` until `deadline`: `None` if the deadline passed first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    if !in_process() {
        return pooled_until(deadline, fut).await;
    }
    let mut fut = std::pin::pin!(fut);
    let mut first = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        // The process yielded its worker: it has not waited yet.
        if has_yielded() {
            wake_at(deadline);
            return Poll::Pending;
        }
        // Only the process's timer firing can take a wait past its
        // deadline; the first poll comes right after the deadline was set.
        if !first && poll_is(POLL_TIMER_FIRED) && Instant::now() >= deadline {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_timeouts_deadline_is_never_early_and_at_most_a_few_ticks_late() {
        for _ in 0..10_000 {
            let before = Instant::now();
            let at = deadline_after(Duration::from_secs(5), true);
            let after = Instant::now();
            assert!(
                at >= before + Duration::from_secs(5),
                "a deadline {:?} before the timeout",
                (before + Duration::from_secs(5)) - at
            );
            // Three ticks of a 10 ms clock at most, and the reads between.
            assert!(
                at <= after + Duration::from_secs(5) + Duration::from_millis(35),
                "a deadline {:?} past the timeout",
                at - (after + Duration::from_secs(5))
            );
        }
    }

    #[test]
    fn a_short_timeouts_deadline_reads_the_precise_clock() {
        let before = Instant::now();
        let at = deadline_after(Duration::from_millis(10), true);
        let after = Instant::now();
        assert!(at >= before + Duration::from_millis(10));
        assert!(at <= after + Duration::from_millis(10));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_coarse_clock_is_used_on_linux_and_runs_with_the_precise_one() {
        let first = coarse::now_or_later().expect("Linux has a coarse clock");
        std::thread::sleep(Duration::from_millis(50));
        let second = coarse::now_or_later().expect("still there");
        let moved = second - first;
        assert!(
            moved >= Duration::from_millis(35) && moved <= Duration::from_millis(200),
            "the coarse reading moved {moved:?} over 50 ms"
        );
    }
}
