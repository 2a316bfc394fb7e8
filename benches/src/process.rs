//! The process-runtime workloads shared by the criterion bench
//! (`benches/process.rs`) and the side-by-side runner
//! (`src/bin/process_side.rs`), matching what `erlang/process_bench.erl`
//! does on the Erlang side: a GenServer that answers an integer with the
//! integer plus one and counts casts, and the one-way stream of `{seq, N}`.

use std::time::{Duration, Instant};

use ergo::gen_server::{Flow, GenServer, Reply, ServerContext};
use ergo::{Reason, ServerRef, Term};

/// A call to [`Echo`].
#[derive(Term, Debug, Clone, PartialEq)]
pub enum Req {
    /// `{ping, N}`: replied with `N + 1`.
    Ping(i64),
    /// `count`: replied with the sum of the casts so far.
    Count,
}

/// A cast to [`Echo`].
#[derive(Term, Debug, Clone, PartialEq)]
pub enum Note {
    /// `{add, N}`: adds `N` to the count.
    Add(i64),
}

/// The one-way stream of the send figures: `{seq, N}`, then `stop`.
#[derive(Term, Debug, Clone, PartialEq)]
pub enum Stream {
    /// One message of the stream.
    Seq(i64),
    /// The end of the stream: the receiver reports its count.
    Stop,
}

/// The benchmark GenServer: calls `{ping, N}` are answered `N + 1`, casts
/// `{add, N}` are summed, and `count` answers the sum.
#[derive(Debug, Default)]
pub struct Echo {
    count: i64,
}

impl GenServer for Echo {
    type Args = ();
    type Call = Req;
    type Reply = i64;
    type Cast = Note;

    async fn init(_args: (), _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        Ok(Echo::default())
    }

    async fn handle_call(&mut self, req: Req, _ctx: &mut ServerContext<Self>) -> Reply<i64> {
        match req {
            Req::Ping(n) => Reply::Reply(n + 1),
            Req::Count => Reply::Reply(self.count),
        }
    }

    async fn handle_cast(&mut self, note: Note, _ctx: &mut ServerContext<Self>) -> Flow {
        match note {
            Note::Add(n) => self.count += n,
        }
        Flow::Continue
    }
}

/// `n` sequential `{ping, 1}` calls. Panics if a reply is wrong.
pub async fn calls(server: &ServerRef<Echo>, n: u64) {
    for _ in 0..n {
        let r = server.call(Req::Ping(1)).await.expect("call");
        assert_eq!(std::hint::black_box(r), 2);
    }
}

/// `n` casts of `{add, 1}` followed by one `count` call, so that all of
/// them have been handled when it returns. Returns the count.
pub async fn casts_then_sync(server: &ServerRef<Echo>, n: u64) -> i64 {
    for _ in 0..n {
        server.cast(Note::Add(1));
    }
    server.call(Req::Count).await.expect("count")
}

/// Async counterpart of [`crate::run_for`]: warms up for `warm`, then runs
/// `$body` (an expression that may `.await`) in batches of `$batch` until
/// `$secs` seconds have passed. Evaluates to (operations, elapsed).
#[macro_export]
macro_rules! timed_async {
    ($warm:expr, $secs:expr, $batch:expr, $body:expr) => {{
        let warm: ::std::time::Duration = $warm;
        let w = ::std::time::Instant::now();
        while w.elapsed() < warm {
            for _ in 0..$batch {
                $body;
            }
        }
        let secs: f64 = $secs;
        let deadline = ::std::time::Duration::from_secs_f64(secs);
        let start = ::std::time::Instant::now();
        let mut n: u64 = 0;
        loop {
            for _ in 0..$batch {
                $body;
            }
            n += $batch as u64;
            if start.elapsed() >= deadline {
                break;
            }
        }
        (n, start.elapsed())
    }};
}

/// Nanoseconds per operation.
pub fn ns_per(n: u64, d: Duration) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// Operations per second.
pub fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// The resident set size of this OS process, from `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Touches and releases 2 GiB, so that the kernel has backed pages ready
/// before a spawn figure (first touch of memory the host took back is slow
/// on this VM and made spawn rates swing run to run). `NOPREFAULT=1` skips
/// it. Returns whether it ran.
pub fn prefault() -> bool {
    if std::env::var_os("NOPREFAULT").is_some() {
        return false;
    }
    let v = vec![1u8; 2 << 30];
    std::hint::black_box(&v);
    drop(v);
    true
}

/// Waits, yielding to the runtime, until `done()` or `limit` has passed.
/// Returns whether `done()` became true.
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::task::yield_now().await;
    }
    true
}
