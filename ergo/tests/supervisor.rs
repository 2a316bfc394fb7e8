//! The Supervisor behaviour, one test per rule of OTP's `supervisor`, in the
//! spirit of `supervisor_SUITE`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ergo::etf::{Atom, Pid, Term};
use ergo::gen_server::{GenServer, Reply, ServerContext};
use ergo::supervisor::{AutoShutdown, ChildCounts, ChildType, SupError};
use ergo::{
    ChildSpec, Node, Reason, Restart, Shutdown, Strategy, SupervisorSpec, Term as DeriveTerm,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

type Events = mpsc::UnboundedSender<String>;

/// A worker that reports its starts and ends.
struct Tracked {
    id: Atom,
    events: Events,
}

#[derive(DeriveTerm, Debug, Clone)]
enum Cmd {
    Crash,
    StopNormal,
    Ping,
}

impl GenServer for Tracked {
    type Args = (Atom, Events);
    type Call = Cmd;
    type Reply = Atom;
    type Cast = ();

    async fn init((id, events): Self::Args, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        // Trapping exits lets `terminate` run when the supervisor stops it.
        ctx.set_trap_exit(true);
        let _ = events.send(format!("start {id}"));
        Ok(Tracked { id, events })
    }

    async fn handle_call(&mut self, cmd: Cmd, _ctx: &mut ServerContext<Self>) -> Reply<Atom> {
        match cmd {
            Cmd::Crash => Reply::Stop(Reason::atom("boom"), Some(Atom::OK)),
            Cmd::StopNormal => Reply::Stop(Reason::Normal, Some(Atom::OK)),
            Cmd::Ping => Reply::Reply(Atom::from("pong")),
        }
    }

    async fn terminate(&mut self, reason: &Reason, _ctx: &mut ServerContext<Self>) {
        let _ = self.events.send(format!("terminate {} {reason}", self.id));
    }
}

fn tracked(id: &str, events: &Events) -> ChildSpec {
    ChildSpec::named_server::<Tracked>(id, id, (Atom::from(id), events.clone()))
}

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

/// `f`'s output, failing the test if it takes longer than [`WAIT`].
async fn within<F: std::future::Future>(f: F) -> F::Output {
    timeout(WAIT, f).await.expect("done in time")
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
}

/// Sends `cmd` to the child registered as `id`: `Crash` and `StopNormal`
/// are answered `ok` before the child ends.
async fn tell(node: &Node, id: &str, cmd: Cmd) {
    let pid = node.whereis(id).expect("child is registered");
    tell_pid(node, pid, cmd).await;
}

/// Sends `cmd` to the child `pid` and checks its answer.
async fn tell_pid(node: &Node, pid: Pid, cmd: Cmd) {
    let expected = match cmd {
        Cmd::Crash | Cmd::StopNormal => Atom::OK,
        Cmd::Ping => Atom::from("pong"),
    };
    let s = ergo::ServerRef::<Tracked>::new(node, pid);
    let reply = timeout(WAIT, s.call(cmd))
        .await
        .expect("the child answers in time");
    assert_eq!(reply, Ok(expected));
}

async fn wait_registered(node: &Node, id: &str, not: Option<Pid>) -> Pid {
    timeout(WAIT, async {
        loop {
            if let Some(p) = node.whereis(id)
                && Some(p) != not
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("registered in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_start_in_order_and_one_for_one_restarts_only_the_crashed_child() {
    let node = node("sup_ofo");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx))
        .child(tracked("c", &tx));
    let _sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start a");
    assert_eq!(next(&mut rx).await, "start b");
    assert_eq!(next(&mut rx).await, "start c");
    let old_b = node.whereis("b").unwrap();
    tell(&node, "b", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate b boom");
    assert_eq!(next(&mut rx).await, "start b");
    wait_registered(&node, "b", Some(old_b)).await;
    // Nothing else moved.
    assert!(rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() {
    let node = node("sup_ofa");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(5, Duration::from_secs(10))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx))
        .child(tracked("c", &tx));
    let _sup = within(node.start_supervisor(spec)).await.unwrap();
    for _ in 0..3 {
        next(&mut rx).await;
    }
    tell(&node, "b", Cmd::Crash).await;
    let got: Vec<String> = vec![
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    assert_eq!(
        got,
        [
            "terminate b boom",
            "terminate c shutdown",
            "terminate a shutdown",
            "start a",
            "start b",
            "start c"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_exactly_the_later_siblings_in_order() {
    let node = node("sup_rfo");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::RestForOne)
        .intensity(5, Duration::from_secs(10))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx))
        .child(tracked("c", &tx))
        .child(tracked("d", &tx));
    let _sup = within(node.start_supervisor(spec)).await.unwrap();
    for _ in 0..4 {
        next(&mut rx).await;
    }
    let a = node.whereis("a").unwrap();
    tell(&node, "b", Cmd::Crash).await;
    let got: Vec<String> = vec![
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    assert_eq!(
        got,
        [
            "terminate b boom",
            "terminate d shutdown",
            "terminate c shutdown",
            "start b",
            "start c",
            "start d"
        ]
    );
    assert_eq!(
        node.whereis("a"),
        Some(a),
        "the earlier sibling is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_restarts_end_the_supervisor_with_shutdown_stopping_children_in_reverse() {
    let node = node("sup_intensity");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx))
        .child(tracked("c", &tx));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    for _ in 0..3 {
        next(&mut rx).await;
    }
    let exited = tokio::spawn(node.wait_exit(sup.pid()));
    // Five restarts are allowed; the sixth crash within the period is one
    // too many.
    for round in 0..6 {
        let old = node.whereis("b").unwrap();
        tell(&node, "b", Cmd::Crash).await;
        assert_eq!(next(&mut rx).await, "terminate b boom");
        if round < 5 {
            assert_eq!(next(&mut rx).await, "start b");
            wait_registered(&node, "b", Some(old)).await;
        }
    }
    assert_eq!(next(&mut rx).await, "terminate c shutdown");
    assert_eq!(next(&mut rx).await, "terminate a shutdown");
    assert_eq!(
        timeout(WAIT, exited).await.unwrap().unwrap(),
        Reason::Shutdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_older_than_the_period_drops_out_of_the_intensity_count() {
    let node = node("sup_period");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let period = Duration::from_secs(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, period)
        .child(tracked("a", &tx));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start a");
    let exited = node.wait_exit(sup.pid());
    // First crash: one restart within the period, allowed.
    let first = node.whereis("a").unwrap();
    tell(&node, "a", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert_eq!(next(&mut rx).await, "start a");
    let restarted_by = tokio::time::Instant::now();
    let second = wait_registered(&node, "a", Some(first)).await;
    // The behaviour under test is the passing of time: let the first
    // restart age past the period (with a margin for OTP's whole seconds).
    tokio::time::sleep_until(restarted_by + period + Duration::from_millis(500)).await;
    // Second crash: the first restart no longer counts, so this one is
    // again the only restart within the period.
    tell(&node, "a", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert_eq!(
        next(&mut rx).await,
        "start a",
        "the supervisor restarted the child instead of giving up"
    );
    let third = wait_registered(&node, "a", Some(second)).await;
    assert!(node.is_alive(sup.pid()), "the supervisor is still running");
    let kids = timeout(WAIT, sup.which_children()).await.unwrap().unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].pid, Some(third));
    // Control: a third crash right away makes two restarts within the
    // period, one more than the intensity allows: the supervisor ends
    // with `shutdown`, as OTP's does.
    tell(&node, "a", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert_eq!(timeout(WAIT, exited).await.unwrap(), Reason::Shutdown);
    assert!(rx.try_recv().is_err(), "no restart after giving up");
    assert_eq!(node.whereis("a"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_crashes_within_the_period_exceed_intensity_one_and_end_the_supervisor_with_shutdown() {
    let node = node("sup_period_ctl");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(1))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start a");
    assert_eq!(next(&mut rx).await, "start b");
    let exited = node.wait_exit(sup.pid());
    let started = tokio::time::Instant::now();
    let first = node.whereis("a").unwrap();
    tell(&node, "a", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert_eq!(next(&mut rx).await, "start a");
    wait_registered(&node, "a", Some(first)).await;
    tell(&node, "a", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the premise: both crashes fell within the period"
    );
    // Giving up stops the other children, then ends with `shutdown`.
    assert_eq!(next(&mut rx).await, "terminate b shutdown");
    assert_eq!(timeout(WAIT, exited).await.unwrap(), Reason::Shutdown);
    assert!(rx.try_recv().is_err(), "nothing restarted");
}

/// A child whose first start works and whose restarts fail with `no_db`
/// from the `works_from`th attempt on (counting the first start as 0) until
/// attempt `works_again` (if any), which starts it again. Every attempt is
/// reported.
fn flaky(events: &Events, attempts: &Arc<AtomicUsize>, works_again: Option<usize>) -> ChildSpec {
    let events = events.clone();
    let attempts = attempts.clone();
    ChildSpec::new("flaky", move |ctx| {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        let events = events.clone();
        Box::pin(async move {
            if n == 0 || Some(n) == works_again {
                ctx.start_server_link_named::<Tracked>("flaky", (Atom::from("flaky"), events))
                    .await
                    .map(|s| s.pid().unwrap())
            } else {
                let _ = events.send(format!("restart {n} fails"));
                Err(Reason::atom("no_db"))
            }
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_keeps_failing_is_retried_counting_each_attempt_until_the_supervisor_gives_up()
 {
    let node = node("sup_restart_fails");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let attempts = Arc::new(AtomicUsize::new(0));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .child(tracked("other", &tx))
        .child(flaky(&tx, &attempts, None));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start other");
    assert_eq!(next(&mut rx).await, "start flaky");
    let exited = node.wait_exit(sup.pid());
    tell(&node, "flaky", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate flaky boom");
    // As OTP's supervisor does (`{try_again_restart, Id}`): each failed
    // restart is tried again and counts as a restart; the fourth within
    // the period is one more than intensity 3, so there are three attempts
    // and then the supervisor stops the others and ends with `shutdown`.
    assert_eq!(next(&mut rx).await, "restart 1 fails");
    assert_eq!(next(&mut rx).await, "restart 2 fails");
    assert_eq!(next(&mut rx).await, "restart 3 fails");
    assert_eq!(next(&mut rx).await, "terminate other shutdown");
    assert_eq!(timeout(WAIT, exited).await.unwrap(), Reason::Shutdown);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        4,
        "one start, three restarts"
    );
    assert!(rx.try_recv().is_err(), "nothing after giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restart_is_retried_and_the_child_comes_back_when_a_retry_works() {
    let node = node("sup_restart_retry");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let attempts = Arc::new(AtomicUsize::new(0));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .child(flaky(&tx, &attempts, Some(3)));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start flaky");
    let first = node.whereis("flaky").unwrap();
    tell(&node, "flaky", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate flaky boom");
    assert_eq!(next(&mut rx).await, "restart 1 fails");
    assert_eq!(next(&mut rx).await, "restart 2 fails");
    // The third restart, the last the intensity allows, works.
    assert_eq!(next(&mut rx).await, "start flaky");
    let again = wait_registered(&node, "flaky", Some(first)).await;
    let kids = timeout(WAIT, sup.which_children()).await.unwrap().unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].pid, Some(again));
    assert!(node.is_alive(sup.pid()));
    tell(&node, "flaky", Cmd::Ping).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_child_is_restarted_only_after_an_abnormal_exit() {
    let node = node("sup_transient");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(tracked("t", &tx).restart(Restart::Transient));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start t");
    let old = node.whereis("t").unwrap();
    tell(&node, "t", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate t boom");
    assert_eq!(next(&mut rx).await, "start t");
    let second = wait_registered(&node, "t", Some(old)).await;
    let ended = node.wait_exit(second);
    tell(&node, "t", Cmd::StopNormal).await;
    assert_eq!(next(&mut rx).await, "terminate t normal");
    assert_eq!(timeout(WAIT, ended).await.unwrap(), Reason::Normal);
    // The child's 'EXIT' reached the supervisor before it ended, so the
    // supervisor has handled it by the time it answers this request: a
    // restart would have sent "start t" already.
    let kids = timeout(WAIT, sup.which_children()).await.unwrap().unwrap();
    assert!(rx.try_recv().is_err(), "not restarted after a normal exit");
    // Its spec is kept, not running.
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].pid, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_child_is_never_restarted_and_its_spec_goes() {
    let node = node("sup_temporary");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(tracked("tmp", &tx).restart(Restart::Temporary));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start tmp");
    let ended = node.wait_exit(node.whereis("tmp").unwrap());
    tell(&node, "tmp", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate tmp boom");
    assert_eq!(timeout(WAIT, ended).await.unwrap(), Reason::atom("boom"));
    // Handled by the supervisor before it answers (the 'EXIT' came first).
    assert!(
        timeout(WAIT, sup.which_children())
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(rx.try_recv().is_err(), "a temporary child is not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brutal_kill_child_is_killed_without_terminate() {
    let node = node("sup_brutal");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(tracked("k", &tx).shutdown(Shutdown::BrutalKill));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start k");
    let pid = node.whereis("k").unwrap();
    let ended = node.wait_exit(pid);
    timeout(WAIT, sup.terminate_child("k"))
        .await
        .unwrap()
        .unwrap();
    assert!(!node.is_alive(pid));
    assert_eq!(timeout(WAIT, ended).await.unwrap(), Reason::Killed);
    // It has ended: a `terminate` would have reported before that.
    assert!(rx.try_recv().is_err(), "terminate must not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_shutdown_sends_shutdown_then_kills_a_child_that_does_not_stop() {
    let node = node("sup_timeout");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let t2 = tx.clone();
    // A child that traps exits and ignores them.
    let stubborn = ChildSpec::new("stubborn", move |ctx| {
        let t2 = t2.clone();
        Box::pin(async move {
            // Started only once it traps exits, as proc_lib's init_ack
            // would have it.
            let (ready, trapping) = tokio::sync::oneshot::channel();
            let pid = ctx.spawn_link(move |mut c| async move {
                c.set_trap_exit(true);
                let _ = ready.send(());
                loop {
                    let m = c.receive().await;
                    if m.is::<()>() {
                        break;
                    }
                    let _ = t2.send(format!("got {m}"));
                }
            });
            trapping.await.map_err(|_| Reason::atom("child_died"))?;
            Ok(pid)
        })
    })
    .shutdown(Shutdown::Timeout(Duration::from_millis(50)));
    let sup =
        within(node.start_supervisor(SupervisorSpec::new(Strategy::OneForOne).child(stubborn)))
            .await
            .unwrap();
    let kid = within(sup.which_children()).await.unwrap()[0].pid.unwrap();
    let t = tokio::time::Instant::now();
    within(sup.terminate_child("stubborn")).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "waited for the timeout"
    );
    assert!(!node.is_alive(kid), "killed after the timeout");
    let seen = next(&mut rx).await;
    assert!(
        seen.starts_with("got {'EXIT',") && seen.ends_with(",shutdown}"),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start_and_stops_the_others() {
    let node = node("sup_startfail");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let failing = ChildSpec::new("bad", |_ctx| Box::pin(async { Err(Reason::atom("no_db")) }));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(tracked("a", &tx))
        .child(failing)
        .child(tracked("c", &tx));
    let err = within(node.start_supervisor(spec)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "{shutdown,{failed_to_start_child,bad,no_db}}"
    );
    assert_eq!(next(&mut rx).await, "start a");
    assert_eq!(next(&mut rx).await, "terminate a shutdown");
    assert!(rx.try_recv().is_err(), "c never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_children_start_terminate_restart_delete_and_are_counted() {
    let node = node("sup_dynamic");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = within(
        node.start_supervisor(SupervisorSpec::new(Strategy::OneForOne).child(tracked("a", &tx))),
    )
    .await
    .unwrap();
    next(&mut rx).await;
    let b = within(sup.start_child(tracked("b", &tx))).await.unwrap();
    assert_eq!(next(&mut rx).await, "start b");
    assert_eq!(
        within(sup.start_child(tracked("b", &tx)))
            .await
            .unwrap_err(),
        SupError::AlreadyPresent(Atom::from("b"))
    );
    let ids: Vec<String> = within(sup.which_children())
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        within(sup.count_children()).await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 2,
            supervisors: 0,
            workers: 2
        }
    );
    assert_eq!(
        within(sup.delete_child("b")).await.unwrap_err(),
        SupError::Running(Atom::from("b"))
    );
    within(sup.terminate_child("b")).await.unwrap();
    assert_eq!(next(&mut rx).await, "terminate b shutdown");
    assert!(!node.is_alive(b));
    assert_eq!(within(sup.count_children()).await.unwrap().active, 1);
    let b2 = within(sup.restart_child("b")).await.unwrap();
    assert_ne!(b, b2);
    assert_eq!(next(&mut rx).await, "start b");
    within(sup.terminate_child("b")).await.unwrap();
    next(&mut rx).await;
    within(sup.delete_child("b")).await.unwrap();
    assert_eq!(within(sup.count_children()).await.unwrap().specs, 1);
    assert_eq!(
        within(sup.restart_child("b")).await.unwrap_err(),
        SupError::NotFound(Atom::from("b"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_starts_children_from_the_template_and_restarts_them_with_their_args() {
    let node = node("sup_simple");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let spec = SupervisorSpec::simple(move |ctx, arg| {
        let tx = tx.clone();
        Box::pin(async move {
            let id = arg.as_atom().unwrap_or(Atom::UNDEFINED);
            ctx.start_server_link::<Tracked>((id, tx))
                .await
                .and_then(|s| s.pid().ok_or(Reason::NoProc))
        })
    })
    .intensity(3, Duration::from_secs(10));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    let p1 = within(sup.start_child_with(Term::atom("w1")))
        .await
        .unwrap();
    let _p2 = within(sup.start_child_with(Term::atom("w2")))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, "start w1");
    assert_eq!(next(&mut rx).await, "start w2");
    assert_eq!(within(sup.count_children()).await.unwrap().active, 2);
    tell_pid(&node, p1, Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate w1 boom");
    assert_eq!(
        next(&mut rx).await,
        "start w1",
        "restarted with its own argument"
    );
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids.len(), 2);
    assert!(
        kids.iter()
            .all(|k| k.id == Atom::UNDEFINED && k.pid.is_some())
    );
    let p = kids[0].pid.unwrap();
    within(sup.terminate_child_pid(p)).await.unwrap();
    assert!(!node.is_alive(p));
    // As OTP counts them: the template is the one spec.
    assert_eq!(
        within(sup.count_children()).await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 1,
            supervisors: 0,
            workers: 1
        }
    );
    assert_eq!(
        within(sup.terminate_child_pid(p)).await,
        Err(SupError::NotFound(Atom::UNDEFINED)),
        "no longer a child"
    );
    // Children without ids cannot be named.
    assert_eq!(
        within(sup.terminate_child("w2")).await,
        Err(SupError::WrongStrategy)
    );
    assert_eq!(
        within(sup.restart_child("w2")).await,
        Err(SupError::WrongStrategy)
    );
    assert_eq!(
        within(sup.delete_child("w2")).await,
        Err(SupError::WrongStrategy)
    );
    assert_eq!(
        within(sup.start_child(tracked("x", &mpsc::unbounded_channel().0)))
            .await
            .unwrap_err(),
        SupError::WrongStrategy
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let node = node("sup_nested");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let inner = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(10))
        .child(tracked("leaf", &tx));
    let outer = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = within(node.start_supervisor(outer)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start leaf");
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids[0].kind, ChildType::Supervisor);
    let inner_pid = kids[0].pid.unwrap();
    // The leaf crashes; the inner supervisor allows no restarts, so it ends
    // with `shutdown`, and the outer one restarts it (and so the leaf).
    tell(&node, "leaf", Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate leaf boom");
    assert_eq!(next(&mut rx).await, "start leaf");
    let kids = within(sup.which_children()).await.unwrap();
    assert_ne!(kids[0].pid, Some(inner_pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_shutdown_any_significant_ends_the_supervisor_when_such_a_child_ends() {
    let node = node("sup_auto");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(tracked("other", &tx))
        .child(
            tracked("main", &tx)
                .restart(Restart::Transient)
                .significant(true),
        );
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    next(&mut rx).await;
    next(&mut rx).await;
    let done = tokio::spawn(node.wait_exit(sup.pid()));
    tell(&node, "main", Cmd::StopNormal).await;
    assert_eq!(next(&mut rx).await, "terminate main normal");
    assert_eq!(next(&mut rx).await, "terminate other shutdown");
    assert_eq!(
        timeout(WAIT, done).await.unwrap().unwrap(),
        Reason::Shutdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reaches_a_supervised_child() {
    let node = node("sup_ping");
    let (tx, _rx) = mpsc::unbounded_channel();
    let _sup = within(
        node.start_supervisor(SupervisorSpec::new(Strategy::OneForOne).child(tracked("p", &tx))),
    )
    .await
    .unwrap();
    let pid = node.whereis("p").unwrap();
    let s = ergo::ServerRef::<Tracked>::new(&node, pid);
    assert_eq!(within(s.call(Cmd::Ping)).await, Ok(Atom::from("pong")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_stop_ends_every_supervised_child_once_with_shutdown_and_restarts_none() {
    let node = node("sup_nodestop");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .child(tracked("a", &tx))
        .child(tracked("b", &tx));
    let _sup = within(node.start_supervisor(spec)).await.unwrap();
    next(&mut rx).await;
    next(&mut rx).await;
    timeout(WAIT, node.stop(Duration::from_secs(2)))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    // Each child ends once, with shutdown, and none is started again.
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .all(|e| e.starts_with("terminate ") && e.ends_with(" shutdown")),
        "{got:?}"
    );
    assert_eq!(node.process_count(), 0);
}

/// A supervisor declared as a struct of its children.
#[ergo::supervisor(strategy = "rest_for_one", intensity = 3, period = 10)]
struct TreeSup {
    a: ergo::Child<Tracked>,
    #[child(restart = "transient", shutdown = "brutal_kill", register)]
    b: ergo::Child<Tracked>,
    inner: InnerSup,
}

/// A nested supervisor, declared the same way.
#[ergo::supervisor(strategy = "one_for_one")]
struct InnerSup {
    #[child(register, shutdown = 1000)]
    leaf: ergo::Child<Tracked>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_struct_starts_its_fields_in_order_with_their_options() {
    let node = node("sup_macro");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tree = TreeSup {
        a: ergo::Child::new((Atom::from("a"), tx.clone())),
        b: ergo::Child::new((Atom::from("b"), tx.clone())),
        inner: InnerSup {
            leaf: ergo::Child::new((Atom::from("leaf"), tx.clone())),
        },
    };
    let sup = within(tree.start(&node)).await.unwrap();
    assert_eq!(next(&mut rx).await, "start a");
    assert_eq!(next(&mut rx).await, "start b");
    assert_eq!(next(&mut rx).await, "start leaf");
    let kids = within(sup.which_children()).await.unwrap();
    let ids: Vec<String> = kids.iter().map(|k| k.id.to_string()).collect();
    assert_eq!(ids, ["a", "b", "inner"]);
    assert_eq!(kids[2].kind, ChildType::Supervisor);
    assert!(node.whereis("b").is_some() && node.whereis("leaf").is_some());
    assert!(
        node.whereis("a").is_none(),
        "only `register` children are registered"
    );
    // rest_for_one: a crash of `a` restarts everything after it. `b` is
    // brutally killed (no terminate), `inner` is shut down (its leaf
    // terminates).
    tell_pid(&node, kids[0].pid.unwrap(), Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate a boom");
    assert_eq!(next(&mut rx).await, "terminate leaf shutdown");
    assert_eq!(next(&mut rx).await, "start a");
    assert_eq!(next(&mut rx).await, "start b");
    assert_eq!(next(&mut rx).await, "start leaf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_supervisor_stops_its_children_in_reverse_then_exits_with_the_reason() {
    let node = node("sup_stop");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(tracked("a", &tx))
        .child(tracked("b", &tx))
        .child(tracked("c", &tx));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    for _ in 0..3 {
        next(&mut rx).await;
    }
    let exited = tokio::spawn(node.wait_exit(sup.pid()));
    timeout(WAIT, sup.stop(Reason::atom("maintenance")))
        .await
        .unwrap()
        .unwrap();
    let got = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    assert_eq!(
        got,
        [
            "terminate c shutdown",
            "terminate b shutdown",
            "terminate a shutdown"
        ]
    );
    assert_eq!(within(exited).await.unwrap(), Reason::atom("maintenance"));
    assert!(node.whereis("a").is_none() && node.whereis("c").is_none());
    // A supervisor that has gone cannot be stopped again.
    assert_eq!(
        within(sup.stop(Reason::Normal)).await,
        Err(SupError::NoProc)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_among_many_simple_one_for_one_children_restarts_only_that_child() {
    let node = node("sup_simple_many");
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let spec = SupervisorSpec::simple(move |ctx, arg| {
        let tx = tx.clone();
        Box::pin(async move {
            let id = arg.as_atom().unwrap_or(Atom::UNDEFINED);
            ctx.start_server_link::<Tracked>((id, tx))
                .await
                .and_then(|s| s.pid().ok_or(Reason::NoProc))
        })
    })
    .intensity(1, Duration::from_secs(10));
    let sup = within(node.start_supervisor(spec)).await.unwrap();
    let mut pids = Vec::new();
    for i in 0..2000 {
        pids.push(
            sup.start_child_with(Term::atom(&format!("w{i}")))
                .await
                .unwrap(),
        );
        next(&mut rx).await;
    }
    tell_pid(&node, pids[1234], Cmd::Crash).await;
    assert_eq!(next(&mut rx).await, "terminate w1234 boom");
    assert_eq!(next(&mut rx).await, "start w1234");
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids.len(), 2000);
    let running: std::collections::HashSet<Pid> = kids.iter().filter_map(|k| k.pid).collect();
    assert!(
        !running.contains(&pids[1234]),
        "the crashed one was replaced"
    );
    assert_eq!(
        pids.iter().filter(|p| running.contains(p)).count(),
        1999,
        "every other child kept running"
    );
    // Stopping the supervisor stops all 2000 (together, as OTP does).
    within(sup.stop(Reason::Shutdown)).await.unwrap();
    let mut stopped = 0;
    while stopped < 2000 {
        let e = next(&mut rx).await;
        assert!(
            e.starts_with("terminate w") && e.ends_with(" shutdown"),
            "{e}"
        );
        stopped += 1;
    }
    assert!(pids.iter().all(|p| !node.is_alive(*p)));
}
