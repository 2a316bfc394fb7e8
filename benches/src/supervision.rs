//! The supervision workloads shared by the criterion bench
//! (`benches/supervisor.rs`) and the side-by-side runner
//! (`src/bin/supervisor_side.rs`), matching `erlang/supervisor_bench.erl`:
//!
//! - restart latency: a `one_for_one` supervisor runs one GenServer that
//!   reports its pid from `init`; the client kills it and waits for the
//!   replacement's report (crash → replacement running);
//! - 10,000 children: a `simple_one_for_one` supervisor is started and
//!   given 10,000 GenServer children, one `start_child` after another.

use std::time::{Duration, Instant};

use ergo::etf::{Pid, Term};
use ergo::gen_server::{GenServer, Reply, ServerContext};
use ergo::{ChildSpec, Node, Reason, Strategy, SupRef, SupervisorSpec};
use tokio::sync::mpsc;

/// How many children the `simple_one_for_one` figure starts.
pub const CHILDREN: usize = 10_000;

/// A GenServer that tells `Args` its pid once `init` has run.
#[derive(Debug)]
pub struct Reporter;

impl GenServer for Reporter {
    type Args = Option<mpsc::UnboundedSender<Pid>>;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(report: Self::Args, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        if let Some(tx) = report {
            let _ = tx.send(ctx.pid());
        }
        Ok(Reporter)
    }

    async fn handle_call(&mut self, _: (), _ctx: &mut ServerContext<Self>) -> Reply<()> {
        Reply::Reply(())
    }
}

/// Restarts per round of the restart figure: each round has a supervisor
/// of its own, whose intensity allows exactly that many restarts, so that
/// neither side's restart history grows past what a real intensity holds.
pub const RESTARTS_PER_ROUND: u32 = 100;

/// A supervisor with one [`Reporter`] that may restart
/// [`RESTARTS_PER_ROUND`] times a second, and the channel its incarnations
/// report on. Returns the first child's pid.
pub async fn restart_fixture(node: &Node) -> (SupRef, mpsc::UnboundedReceiver<Pid>, Pid) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(RESTARTS_PER_ROUND, Duration::from_secs(1))
        .child(ChildSpec::server::<Reporter>("reporter", Some(tx)));
    let sup = node.start_supervisor(spec).await.expect("supervisor");
    let first = rx.recv().await.expect("first child");
    (sup, rx, first)
}

/// One round of the restart figure: a fresh supervisor, its child killed
/// [`RESTARTS_PER_ROUND`] times (each time waiting for the replacement),
/// then the supervisor stopped. Returns the time the restarts took.
pub async fn restart_round(node: &Node) -> Duration {
    let (sup, mut rx, first) = restart_fixture(node).await;
    let (_, took) = restarts(node, &mut rx, first, u64::from(RESTARTS_PER_ROUND)).await;
    stop(&sup).await;
    took
}

/// Kills the running child `times` times, each time waiting until its
/// replacement has run `init`. Returns the last child and the time taken.
pub async fn restarts(
    node: &Node,
    rx: &mut mpsc::UnboundedReceiver<Pid>,
    mut child: Pid,
    times: u64,
) -> (Pid, Duration) {
    let t = Instant::now();
    for _ in 0..times {
        node.exit(child, child, Reason::Kill);
        child = rx.recv().await.expect("replacement");
    }
    (child, t.elapsed())
}

/// A `simple_one_for_one` supervisor of [`Reporter`]s (that report to no
/// one), as Erlang's `{simple_one_for_one, 0, 1}` with a worker template.
pub fn simple_spec() -> SupervisorSpec {
    SupervisorSpec::simple(|ctx, _arg| {
        Box::pin(async move {
            ctx.start_server_link::<Reporter>(None)
                .await
                .and_then(|s| s.pid().ok_or(ergo::Reason::NoProc))
        })
    })
    .intensity(0, Duration::from_secs(1))
}

/// Starts a `simple_one_for_one` supervisor and [`CHILDREN`] children,
/// returning it and the time that took.
pub async fn start_many(node: &Node) -> (SupRef, Duration) {
    let t = Instant::now();
    let sup = node
        .start_supervisor(simple_spec())
        .await
        .expect("supervisor");
    for _ in 0..CHILDREN {
        sup.start_child_with(Term::NIL).await.expect("child");
    }
    (sup, t.elapsed())
}

/// Stops a supervisor (its children in reverse start order) and waits
/// until it has gone; returns the time that took.
pub async fn stop(sup: &SupRef) -> Duration {
    let t = Instant::now();
    sup.stop(Reason::Shutdown).await.expect("supervisor alive");
    t.elapsed()
}
