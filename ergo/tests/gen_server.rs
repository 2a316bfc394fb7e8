//! The GenServer behaviour, checked against what OTP's `gen_server` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ergo::etf::{Atom, Term};
use ergo::gen_server::{CallError, Flow, GenServer, Reply, ServerContext};
use ergo::{Message, Node, Reason, Term as DeriveTerm};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

/// Events a test server reports, in order.
type Events = mpsc::UnboundedSender<String>;

#[derive(DeriveTerm, Debug, Clone, PartialEq)]
enum Req {
    Get,
    Add(i64),
    Later,
    StopWith(String),
    Crash,
    Sleep(u64),
}

#[derive(DeriveTerm, Debug, Clone, PartialEq)]
enum Note {
    Reset,
    Continue,
    IdleFor(u64),
}

struct Counter {
    n: i64,
    events: Events,
}

impl GenServer for Counter {
    type Args = (i64, Events);
    type Call = Req;
    type Reply = i64;
    type Cast = Note;

    async fn init((n, events): Self::Args, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        if n < 0 {
            return Err(Reason::atom("negative_start"));
        }
        let _ = events.send(format!("init {n} parent={}", ctx.parent().is_some()));
        Ok(Counter { n, events })
    }

    async fn handle_call(&mut self, req: Req, ctx: &mut ServerContext<Self>) -> Reply<i64> {
        match req {
            Req::Get => Reply::Reply(self.n),
            Req::Add(k) => {
                self.n += k;
                Reply::Reply(self.n)
            }
            Req::Later => {
                let from = ctx.reply_later().expect("inside handle_call");
                let n = self.n;
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    from.reply(n * 100);
                });
                Reply::NoReply
            }
            Req::StopWith(why) => Reply::Stop(Reason::atom(&why), Some(-1)),
            Req::Crash => panic!("crash requested"),
            Req::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Reply::Reply(self.n)
            }
        }
    }

    async fn handle_cast(&mut self, note: Note, ctx: &mut ServerContext<Self>) -> Flow {
        match note {
            Note::Reset => self.n = 0,
            Note::Continue => ctx.continue_with(Atom::from("step")),
            Note::IdleFor(ms) => ctx.set_timeout(Duration::from_millis(ms)),
        }
        Flow::Continue
    }

    async fn handle_info(&mut self, msg: Message, _ctx: &mut ServerContext<Self>) -> Flow {
        let _ = self.events.send(format!("info {msg}"));
        Flow::Continue
    }

    async fn handle_continue(&mut self, value: Message, _ctx: &mut ServerContext<Self>) -> Flow {
        let _ = self.events.send(format!("continue {value}"));
        Flow::Continue
    }

    async fn terminate(&mut self, reason: &Reason, _ctx: &mut ServerContext<Self>) {
        let _ = self.events.send(format!("terminate {reason}"));
    }
}

/// `f`'s output, failing the test if it takes longer than [`WAIT`].
async fn within<F: std::future::Future>(f: F) -> F::Output {
    timeout(WAIT, f).await.expect("done in time")
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("events channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_cast_reach_the_handlers_in_order() {
    let node = node("gs_call");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((5, tx))).await.unwrap();
    assert_eq!(next(&mut rx).await, "init 5 parent=false");
    assert_eq!(within(s.call(Req::Add(3))).await.unwrap(), 8);
    s.cast(Note::Reset);
    assert_eq!(within(s.call(Req::Get)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_error_fails_the_start_with_its_reason() {
    let node = node("gs_init");
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = within(node.start_server::<Counter>((-1, tx)))
        .await
        .unwrap_err();
    assert_eq!(err, Reason::atom("negative_start"));
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_later_from_another_task() {
    let node = node("gs_later");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((7, tx))).await.unwrap();
    assert_eq!(within(s.call(Req::Later)).await.unwrap(), 700);
    // The server went on serving while the reply was pending.
    assert_eq!(within(s.call(Req::Get)).await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_replies_then_runs_terminate_and_exits_with_the_reason() {
    let node = node("gs_stop");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((1, tx))).await.unwrap();
    next(&mut rx).await;
    assert_eq!(within(s.call(Req::StopWith("done".into()))).await, Ok(-1));
    assert_eq!(next(&mut rx).await, "terminate done");
    assert_eq!(within(s.wait()).await, Reason::atom("done"));
    assert!(!node.is_alive(s.pid().unwrap()));
    // Then it is gone: a call to it is `noproc`.
    let again = ergo::ServerRef::<Counter>::new(&node, s.pid().unwrap());
    assert_eq!(within(again.call(Req::Get)).await, Err(CallError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_a_callback_runs_terminate_and_the_caller_learns_the_reason() {
    let node = node("gs_panic");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((1, tx))).await.unwrap();
    next(&mut rx).await;
    let err = within(s.call(Req::Crash)).await.unwrap_err();
    let CallError::Exited(reason) = err else {
        panic!("expected the server's exit, got {err}");
    };
    assert_eq!(reason.to_string(), r#"{panic,<<"crash requested">>}"#);
    assert_eq!(
        next(&mut rx).await,
        r#"terminate {panic,<<"crash requested">>}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_times_out_and_names_the_timeout() {
    let node = node("gs_timeout");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    let err = s
        .call_timeout(Req::Sleep(300), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::Timeout(Duration::from_millis(20)));
    // The server is still there.
    assert_eq!(within(s.call(Req::Get)).await.unwrap(), 1);
}

/// Calls from a plain tokio task borrow their timers from a per-thread pool
/// (armed at the last call's deadline): a short timeout after many calls
/// with the default one still fires on time, and a long one after a short
/// one does not fire early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_timeouts_from_a_plain_task_hold_when_timers_are_reused() {
    let node = node("gs_pooled_timer");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    let task = tokio::spawn(async move {
        for _ in 0..1000 {
            assert_eq!(s.call(Req::Get).await.unwrap(), 1);
        }
        let t0 = std::time::Instant::now();
        let err = s
            .call_timeout(Req::Sleep(2000), Duration::from_millis(40))
            .await
            .unwrap_err();
        assert_eq!(err, CallError::Timeout(Duration::from_millis(40)));
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "a 40 ms timeout after reused 5 s timers took {took:?}"
        );
        // The server is busy with the sleep until it ends; a call with room
        // for it is answered, not cut short by a timer left at 40 ms.
        let t0 = std::time::Instant::now();
        let got = s
            .call_timeout(Req::Sleep(100), Duration::from_secs(4))
            .await;
        assert_eq!(got, Ok(1), "after {:?}", t0.elapsed());
        for _ in 0..100 {
            let err = s
                .call_timeout(Req::Sleep(50), Duration::from_millis(5))
                .await
                .unwrap_err();
            assert_eq!(err, CallError::Timeout(Duration::from_millis(5)));
        }
    });
    within(task).await.unwrap();
}

/// One call that times out, then calls answered after a wait (which
/// leave armed timers in the pool when the runtime goes).
async fn timeout_then_answers(s: &ergo::ServerRef<Counter>) {
    let err = s
        .call_timeout(Req::Sleep(60), Duration::from_millis(30))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::Timeout(Duration::from_millis(30)));
    for _ in 0..50 {
        assert_eq!(s.call(Req::Get).await.unwrap(), 1);
    }
}

/// A thread that runs one runtime after another (a test thread, a
/// `block_on` loop) does not carry pooled timers from a runtime that is gone
/// into the next one, whether the calls come from `block_on` or from
/// spawned tasks.
#[test]
fn call_timeouts_from_a_plain_task_survive_a_new_runtime_on_the_same_thread() {
    for round in 0..3 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let node = node(&format!("gs_rt_round{round}"));
            let (tx, _rx) = mpsc::unbounded_channel();
            let s = node.start_server::<Counter>((1, tx)).await.unwrap();
            timeout_then_answers(&s).await;
            // The same from a spawned task, on this thread too: the pool
            // remembers a task's runtime, and a task of the next runtime
            // is another task.
            tokio::spawn(async move { timeout_then_answers(&s).await })
                .await
                .unwrap();
        });
        drop(rt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_a_dead_server_is_noproc_and_killed_server_skips_terminate() {
    let node = node("gs_dead");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((1, tx))).await.unwrap();
    next(&mut rx).await;
    node.exit(s.pid().unwrap(), s.pid().unwrap(), Reason::Kill);
    assert_eq!(within(s.wait()).await, Reason::Killed);
    let dead = ergo::ServerRef::<Counter>::new(&node, s.pid().unwrap());
    assert_eq!(within(dead.call(Req::Get)).await, Err(CallError::NoProc));
    // No terminate for a killed server (it would have reported before its
    // end).
    assert!(rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_runs_before_the_next_message_and_idle_timeout_sends_timeout() {
    let node = node("gs_continue");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((1, tx))).await.unwrap();
    next(&mut rx).await;
    s.cast(Note::Continue);
    node.send(s.pid().unwrap(), Term::atom("later")).unwrap();
    assert_eq!(next(&mut rx).await, "continue step");
    assert_eq!(next(&mut rx).await, "info later");
    s.cast(Note::IdleFor(20));
    assert_eq!(next(&mut rx).await, "info timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erlang_style_gen_call_terms_are_served_and_bad_ones_refused() {
    let node = node("gs_terms");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((10, tx)))
        .await
        .unwrap();
    let server = s.pid().unwrap();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    node.spawn(move |mut ctx| async move {
        let tag = Term::Ref(ctx.make_ref());
        out_tx.send(tag.to_string()).unwrap();
        let from = Term::tuple([Term::Pid(ctx.pid()), tag.clone()]);
        let call = |req: Term| Term::tuple([Term::atom("$gen_call"), from.clone(), req]);
        ctx.send(server, call(Term::tuple([Term::atom("add"), Term::Int(5)])))
            .unwrap();
        let reply = ctx.receive().await;
        out_tx.send(reply.to_string()).unwrap();
        ctx.send(
            server,
            call(Term::tuple([Term::atom("add"), Term::binary("x")])),
        )
        .unwrap();
        let reply = ctx.receive().await;
        out_tx.send(reply.to_string()).unwrap();
        ctx.send(
            server,
            Term::tuple([Term::atom("$gen_cast"), Term::atom("reset")]),
        )
        .unwrap();
        ctx.send(server, call(Term::atom("get"))).unwrap();
        let reply = ctx.receive().await;
        out_tx.send(reply.to_string()).unwrap();
    });
    // Each reply is `{Tag, Reply}`, the tag the caller sent.
    let tag = next(&mut out_rx).await;
    assert_eq!(next(&mut out_rx).await, format!("{{{tag},15}}"));
    assert_eq!(
        next(&mut out_rx).await,
        format!(
            r#"{{{tag},{{error,{{badcall,<<"expected {{add, integer}}, found {{add,<<\"x\">>}}">>}}}}}}"#
        )
    );
    // The cast came before the call from the same process.
    assert_eq!(next(&mut out_rx).await, format!("{{{tag},0}}"));
    // The server kept running throughout.
    assert_eq!(within(s.call(Req::Get)).await, Ok(0));
}

/// `gen_server:call` by term (`Node::call`) is a call to a server, and to a
/// plain process the message `{'$gen_call', {From, [alias | Ref]}, Request}`
/// exactly as Erlang's `gen_server:call` sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_term_is_a_call_to_a_server_and_the_whole_gen_call_tuple_to_a_plain_process() {
    let node = node("gs_by_term");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((10, tx)))
        .await
        .unwrap();
    let add = |n| Term::tuple([Term::atom("add"), Term::Int(n)]);
    let server = s.pid().unwrap();
    assert_eq!(
        within(node.call(server, add(5), WAIT)).await,
        Ok(Term::Int(15))
    );
    // A lent request is copied for a server on this node.
    let lent = add(1);
    assert_eq!(
        within(node.call(server, &lent, WAIT)).await,
        Ok(Term::Int(16))
    );
    assert_eq!(lent, add(1));
    // One the server cannot read is answered with the error, as before.
    let refused = within(node.call(server, Term::atom("nonsense"), WAIT)).await;
    assert!(
        matches!(&refused, Ok(Term::Tuple(t)) if t[0] == Term::atom("error")),
        "{refused:?}"
    );

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Message>();
    let plain = node.spawn(move |mut ctx| async move {
        let _ = seen_tx.send(ctx.receive().await);
        // Alive, unanswering, for the call to time out.
        ctx.receive().await;
    });
    let unanswered = node
        .call(plain, Term::atom("hello"), Duration::from_millis(200))
        .await;
    assert!(
        matches!(unanswered, Err(CallError::Timeout(_))),
        "{unanswered:?}"
    );
    let seen = timeout(WAIT, seen_rx.recv()).await.unwrap().unwrap();
    let Message::Term(Term::Tuple(t)) = &seen else {
        panic!("a plain process gets a term, not {seen:?}");
    };
    assert_eq!(t.len(), 3, "{seen:?}");
    assert_eq!(t[0], Term::atom("$gen_call"));
    assert_eq!(t[2], Term::atom("hello"));
    let Term::Tuple(from) = &t[1] else {
        panic!("From is {{Pid, Tag}}: {seen:?}");
    };
    assert_eq!(from[0], Term::Pid(node.system_pid()));
    assert!(
        matches!(&from[1], Term::ImproperList(h, tail)
            if h.as_slice() == [Term::atom("alias")] && matches!(**tail, Term::Ref(_))),
        "the tag is [alias | Ref]: {seen:?}"
    );
    // And as a term, the server's pending call reads the same.
    assert_eq!(s.call(Req::Get).await, Ok(16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_start_registers_and_a_second_start_is_refused() {
    let node = node("gs_named");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server_named::<Counter>("counter", (1, tx.clone())))
        .await
        .unwrap();
    assert_eq!(node.whereis("counter"), s.pid());
    let err = within(node.start_server_named::<Counter>("counter", (2, tx)))
        .await
        .unwrap_err();
    // gen_server:start/4 answers {error, {already_started, Pid}}.
    assert_eq!(
        err.to_term().as_tuple().map(|t| t[0].clone()),
        Some(Term::atom("already_started")),
        "{err}"
    );
    // The name stays with the first server, and the refused one ends (it
    // may still be on its way out when the start returns, as in OTP 25,
    // whose refused server acks the error and then exits).
    assert_eq!(node.whereis("counter"), s.pid());
    within(async {
        while node.process_count() != 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert_eq!(node.processes(), vec![s.pid().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_server_trapping_exits_terminates_when_its_parent_exits() {
    struct Trapper(Events);
    impl GenServer for Trapper {
        type Args = Events;
        type Call = ();
        type Reply = ();
        type Cast = ();
        async fn init(events: Events, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
            ctx.set_trap_exit(true);
            Ok(Trapper(events))
        }
        async fn terminate(&mut self, reason: &Reason, _ctx: &mut ServerContext<Self>) {
            let _ = self.0.send(format!("terminate {reason}"));
        }
    }
    let node = node("gs_parent");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Arc::new(AtomicUsize::new(0));
    let s2 = started.clone();
    let parent = node.spawn(move |mut ctx| async move {
        ctx.start_server_link::<Trapper>(tx).await.unwrap();
        s2.fetch_add(1, Ordering::SeqCst);
        let _ = ctx.receive().await;
        Reason::atom("parent_gone")
    });
    within(async {
        while started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    node.send(parent, Term::atom("go")).unwrap();
    assert_eq!(next(&mut rx).await, "terminate parent_gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_inside_a_process_fire_on_time_without_a_timer_per_call() {
    let node = node("gs_proc_timeout");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server::<Counter>((3, tx))).await.unwrap();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(String, Duration)>();
    node.spawn(move |mut ctx| async move {
        // Many quick calls, then one that times out: the process's one timer
        // was armed by the first call and must still end the slow one.
        for _ in 0..1000 {
            s.call(Req::Get).await.unwrap();
        }
        let t = tokio::time::Instant::now();
        let err = s
            .call_timeout(Req::Sleep(500), Duration::from_millis(30))
            .await
            .unwrap_err();
        out_tx.send((err.to_string(), t.elapsed())).unwrap();
        // A receive with a timeout in the same process.
        let t = tokio::time::Instant::now();
        let got = ctx.receive_timeout(Duration::from_millis(25)).await;
        out_tx
            .send((format!("{:?}", got.map(|m| m.to_string())), t.elapsed()))
            .unwrap();
        // And a call that answers in time after all that.
        let n = s
            .call_timeout(Req::Get, Duration::from_secs(2))
            .await
            .unwrap();
        out_tx.send((n.to_string(), t.elapsed())).unwrap();
    });
    let (err, took) = timeout(WAIT, out_rx.recv()).await.unwrap().unwrap();
    assert_eq!(err, "no reply within 30ms");
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_millis(400),
        "{took:?}"
    );
    let (got, took) = timeout(WAIT, out_rx.recv()).await.unwrap().unwrap();
    assert_eq!(got, "None");
    assert!(
        took >= Duration::from_millis(25) && took < Duration::from_millis(400),
        "{took:?}"
    );
    let (n, _) = timeout(WAIT, out_rx.recv()).await.unwrap().unwrap();
    assert_eq!(n, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_a_handle_taken_before_the_server_ended_is_noproc() {
    let node = node("gs_stale");
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Stopped with a reason of its own.
    let s = within(node.start_server::<Counter>((1, tx.clone())))
        .await
        .unwrap();
    next(&mut rx).await;
    assert_eq!(within(s.call(Req::StopWith("done".into()))).await, Ok(-1));
    assert_eq!(within(s.wait()).await, Reason::atom("done"));
    // gen_server:call to a process that has already ended: its monitor
    // fires `noproc` at once, so the call exits with `noproc`, not with
    // the reason the server ended with.
    assert_eq!(within(s.call(Req::Get)).await, Err(CallError::NoProc));
    // Killed.
    let k = within(node.start_server::<Counter>((1, tx))).await.unwrap();
    node.exit(k.pid().unwrap(), k.pid().unwrap(), Reason::Kill);
    assert_eq!(within(k.wait()).await, Reason::Killed);
    assert_eq!(within(k.call(Req::Get)).await, Err(CallError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_under_a_taken_name_is_already_started_with_the_holders_pid() {
    let node = node("gs_already");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = within(node.start_server_named::<Counter>("counter", (1, tx.clone())))
        .await
        .unwrap();
    let err = within(node.start_server_named::<Counter>("counter", (2, tx)))
        .await
        .unwrap_err();
    // gen_server:start({local, counter}, ...) answers
    // {error, {already_started, Pid}}, Pid being the name's holder.
    assert_eq!(
        err.to_term(),
        Term::tuple([Term::atom("already_started"), Term::Pid(s.pid().unwrap())])
    );
}

/// A plain task's calls borrow armed timers from a pool of the thread's. A
/// timer set for an earlier call of the same task, due before the new
/// call's deadline, is kept as it is rather than re-armed: it fires early,
/// and the call then waits out its own deadline, never less.
#[tokio::test(start_paused = true)]
async fn a_task_call_on_a_timer_kept_from_an_earlier_call_waits_out_its_own_deadline() {
    let node = node("gs_pooled");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    let ten = Duration::from_secs(10);
    // Answered: its timer, due in 10 s, goes back to the pool armed.
    assert_eq!(s.call_timeout(Req::Get, ten).await, Ok(1));
    tokio::time::advance(Duration::from_secs(4)).await;
    let t0 = tokio::time::Instant::now();
    let err = s.call_timeout(Req::Sleep(60_000), ten).await.unwrap_err();
    assert_eq!(err, CallError::Timeout(ten));
    let waited = t0.elapsed();
    assert!(
        waited >= ten && waited < Duration::from_secs(11),
        "timed out after {waited:?} of the paused clock, on a timer due after 6 s"
    );
}

/// A task that spent tokio's budget for its poll still gets its call's
/// timer registered: a call made then times out, and so do its later ones.
#[tokio::test(start_paused = true)]
async fn a_task_call_made_on_a_spent_tokio_budget_still_times_out() {
    let node = node("gs_budget");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    let ten = Duration::from_secs(10);
    let got = timeout(
        Duration::from_secs(100),
        tokio::spawn(async move {
            let mut errs = Vec::new();
            for _ in 0..2 {
                while tokio::task::coop::has_budget_remaining() {
                    tokio::task::coop::consume_budget().await;
                }
                errs.push(s.call_timeout(Req::Sleep(60_000), ten).await);
            }
            errs
        }),
    )
    .await
    .expect("a call made on a spent budget never timed out")
    .unwrap();
    assert_eq!(got, vec![Err(CallError::Timeout(ten)); 2]);
}

/// A pooled timer wakes the waker it was last polled with: a call of
/// another task that borrows it registers its own, and still times out.
#[tokio::test(start_paused = true)]
async fn a_task_call_on_a_timer_another_task_left_in_the_pool_still_times_out() {
    let node = node("gs_pooled_other");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    let ten = Duration::from_secs(10);
    let first = s.clone();
    tokio::spawn(async move { first.call_timeout(Req::Get, ten).await })
        .await
        .unwrap()
        .unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    let t0 = tokio::time::Instant::now();
    let second = s.clone();
    let got = timeout(
        Duration::from_secs(100),
        tokio::spawn(async move { second.call_timeout(Req::Sleep(60_000), ten).await }),
    )
    .await
    .expect("the call of the second task was never woken at its deadline")
    .unwrap();
    assert_eq!(got, Err(CallError::Timeout(ten)));
    let waited = t0.elapsed();
    assert!(
        waited >= ten && waited < Duration::from_secs(11),
        "timed out after {waited:?} of the paused clock"
    );
}

/// tokio pauses only a current-thread runtime's clock (`start_paused`), and
/// calls on such a runtime time out by that clock however far it has been
/// advanced, from a plain task and from a process alike (the deadlines
/// read from the kernel's coarse clock are for multi-thread runtimes only).
#[tokio::test(start_paused = true)]
async fn calls_time_out_by_a_paused_clock_however_far_it_was_advanced() {
    let node = node("gs_paused");
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = node.start_server::<Counter>((1, tx)).await.unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(s.call(Req::Get).await, Ok(1), "from a task");
    let (rtx, rrx) = tokio::sync::oneshot::channel();
    let from_process = s.clone();
    node.spawn(move |_ctx| async move {
        let _ = rtx.send(from_process.call(Req::Get).await);
    });
    assert_eq!(rrx.await.unwrap(), Ok(1), "from a process");
    // A call that does time out does so after 5 s of the paused clock.
    for in_process in [false, true] {
        let t0 = tokio::time::Instant::now();
        let err = if in_process {
            let (rtx, rrx) = tokio::sync::oneshot::channel();
            let s = s.clone();
            node.spawn(move |_ctx| async move {
                let _ = rtx.send(s.call(Req::Sleep(60_000)).await);
            });
            rrx.await.unwrap().unwrap_err()
        } else {
            s.call(Req::Sleep(60_000)).await.unwrap_err()
        };
        assert_eq!(err, CallError::Timeout(Duration::from_secs(5)));
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
            "timed out after {waited:?} of the paused clock (in a process: {in_process})"
        );
    }
}
