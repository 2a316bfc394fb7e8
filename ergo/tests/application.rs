//! The Application behaviour, one test per rule of OTP's `application`, in
//! the spirit of `application_SUITE`.

use std::time::Duration;

use ergo::etf::{Atom, Term};
use ergo::gen_server::{GenServer, Reply, ServerContext};
use ergo::{
    AppError, AppSpec, ChildSpec, Node, Reason, StartType, Strategy, SupervisorSpec,
    Term as DeriveTerm,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

type Events = mpsc::UnboundedSender<String>;

/// A worker that reports its application and environment when it starts.
struct Worker {
    id: Atom,
    events: Events,
}

#[derive(DeriveTerm, Debug)]
enum Ask {
    Env(Atom),
    Crash,
}

impl GenServer for Worker {
    type Args = (Atom, Events);
    type Call = Ask;
    type Reply = Term;
    type Cast = ();

    async fn init((id, events): Self::Args, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        ctx.set_trap_exit(true);
        let app = ctx
            .application()
            .map_or("none".to_string(), |a| a.to_string());
        let _ = events.send(format!("start {id} in {app}"));
        Ok(Worker { id, events })
    }

    async fn handle_call(&mut self, ask: Ask, ctx: &mut ServerContext<Self>) -> Reply<Term> {
        match ask {
            Ask::Env(key) => Reply::Reply(ctx.get_env(key).unwrap_or(Term::atom("undefined"))),
            Ask::Crash => Reply::Stop(Reason::atom("boom"), Some(Term::atom("ok"))),
        }
    }

    async fn terminate(&mut self, reason: &Reason, _ctx: &mut ServerContext<Self>) {
        let _ = self.events.send(format!("terminate {} {reason}", self.id));
    }
}

fn app(name: &str, events: &Events, intensity: u32) -> AppSpec {
    let events = events.clone();
    let n = name.to_string();
    AppSpec::new(name, move || {
        SupervisorSpec::new(Strategy::OneForOne)
            .intensity(intensity, Duration::from_secs(10))
            .child(ChildSpec::named_server::<Worker>(
                n.as_str(),
                format!("{n}_worker").as_str(),
                (Atom::from(format!("{n}_worker")), events.clone()),
            ))
    })
    .description(format!("the {name} application"))
    .version("1.2.3")
}

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

/// `f`'s output, failing the test if it takes longer than [`WAIT`].
async fn within<F: std::future::Future>(f: F) -> F::Output {
    timeout(WAIT, f).await.expect("done in time")
}

/// The application master of the running application `app`: the group
/// leader of its top supervisor.
fn master_of(node: &Node, app: &str) -> ergo::Pid {
    let top = node
        .application_supervisor(app)
        .expect("the application is running");
    node.process_info(top.pid())
        .expect("the top supervisor is alive")
        .group_leader
        .expect("the master is its group leader")
}

/// Watches `cond` for `window` and fails if it ever holds: for what must
/// not happen once the decision that could bring it about has been made.
async fn never(what: &str, window: Duration, cond: impl Fn() -> bool) {
    let until = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < until {
        assert!(!cond(), "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!cond(), "{what}");
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
}

async fn ask(node: &Node, worker: &str, a: Ask) -> Result<Term, ergo::CallError> {
    let pid = node.whereis(worker).expect("worker registered");
    ergo::ServerRef::<Worker>::new(node, pid).call(a).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_unload_and_loaded_applications() {
    let node = node("app_load");
    let (tx, _rx) = mpsc::unbounded_channel();
    node.load_application(app("alpha", &tx, 1)).unwrap();
    assert_eq!(
        node.load_application(app("alpha", &tx, 1)).unwrap_err(),
        AppError::AlreadyLoaded(Atom::from("alpha"))
    );
    let loaded = node.loaded_applications();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].version, "1.2.3");
    assert_eq!(loaded[0].description, "the alpha application");
    node.unload_application("alpha").unwrap();
    assert!(node.loaded_applications().is_empty());
    assert_eq!(
        node.unload_application("alpha").unwrap_err(),
        AppError::NotLoaded(Atom::from("alpha"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dependency_refuses_the_start_and_ensure_all_started_starts_them_first() {
    let node = node("app_deps");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("base", &tx, 1)).unwrap();
    node.load_application(app("top", &tx, 1).depends_on("base"))
        .unwrap();
    assert_eq!(
        within(node.start_application("top", StartType::Temporary))
            .await
            .unwrap_err(),
        AppError::NotStarted(Atom::from("base"))
    );
    let started = within(node.ensure_all_started("top", StartType::Temporary))
        .await
        .unwrap();
    assert_eq!(started, [Atom::from("base"), Atom::from("top")]);
    assert_eq!(next(&mut rx).await, "start base_worker in base");
    assert_eq!(next(&mut rx).await, "start top_worker in top");
    let running: Vec<Atom> = node.which_applications().iter().map(|a| a.name).collect();
    assert_eq!(
        running,
        [Atom::from("top"), Atom::from("base")],
        "last started first"
    );
    assert_eq!(
        within(node.start_application("top", StartType::Temporary))
            .await
            .unwrap_err(),
        AppError::AlreadyStarted(Atom::from("top"))
    );
    assert_eq!(
        node.unload_application("top").unwrap_err(),
        AppError::Running(Atom::from("top"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_application_shuts_its_tree_down_and_leaves_it_loaded() {
    let node = node("app_stop");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("svc", &tx, 1)).unwrap();
    within(node.start_application("svc", StartType::Permanent))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, "start svc_worker in svc");
    within(node.stop_application("svc")).await.unwrap();
    assert_eq!(next(&mut rx).await, "terminate svc_worker shutdown");
    assert!(node.which_applications().is_empty());
    assert_eq!(node.loaded_applications().len(), 1);
    assert!(
        !node.is_stopping(),
        "stopping a permanent application is not its end"
    );
    assert_eq!(
        within(node.stop_application("svc")).await.unwrap_err(),
        AppError::NotRunning(Atom::from("svc"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_read_their_applications_environment() {
    let node = node("app_env");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(
        app("conf", &tx, 1)
            .env("port", 8080i64)
            .env("host", "example.org"),
    )
    .unwrap();
    node.set_env("conf", "port", 9090i64).unwrap();
    within(node.start_application("conf", StartType::Temporary))
        .await
        .unwrap();
    next(&mut rx).await;
    assert_eq!(
        within(ask(&node, "conf_worker", Ask::Env(Atom::from("port"))))
            .await
            .unwrap(),
        Term::Int(9090)
    );
    assert_eq!(
        within(ask(&node, "conf_worker", Ask::Env(Atom::from("host"))))
            .await
            .unwrap(),
        Term::binary("example.org")
    );
    assert_eq!(
        within(ask(&node, "conf_worker", Ask::Env(Atom::from("nope"))))
            .await
            .unwrap(),
        Term::atom("undefined")
    );
    assert_eq!(node.get_env("conf", "port"), Some(Term::Int(9090)));
    // A process outside any application has none.
    let (t2, mut r2) = mpsc::unbounded_channel();
    node.spawn(move |ctx| async move {
        let _ = t2.send(format!("{:?}", ctx.application()));
    });
    assert_eq!(within(r2.recv()).await.unwrap(), "None");
}

async fn crash_until_the_top_supervisor_gives_up(
    node: &Node,
    rx: &mut mpsc::UnboundedReceiver<String>,
    worker: &str,
) {
    // Intensity 0: the first crash ends the top supervisor, with
    // `shutdown`.
    let app = worker.trim_end_matches("_worker");
    let top = node.application_supervisor(app).unwrap().pid();
    let top_ended = node.wait_exit(top);
    assert_eq!(
        within(ask(node, worker, Ask::Crash)).await,
        Ok(Term::atom("ok")),
        "the worker answers before it stops"
    );
    assert_eq!(next(rx).await, format!("terminate {worker} boom"));
    assert_eq!(within(top_ended).await, Reason::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_applications_end_is_only_reported() {
    let node = node("app_temporary");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("tmp", &tx, 0)).unwrap();
    within(node.start_application("tmp", StartType::Temporary))
        .await
        .unwrap();
    next(&mut rx).await;
    let master = node.wait_exit(master_of(&node, "tmp"));
    crash_until_the_top_supervisor_gives_up(&node, &mut rx, "tmp_worker").await;
    // The master has handled the end (and decided about the node) before
    // it ends.
    within(master).await;
    assert!(node.which_applications().is_empty());
    assert_eq!(node.loaded_applications().len(), 1, "still loaded");
    never(
        "a temporary application's end stops the node",
        Duration::from_millis(200),
        || node.is_stopping(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_applications_end_stops_the_node() {
    let node = node("app_permanent");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("perm", &tx, 0)).unwrap();
    within(node.start_application("perm", StartType::Permanent))
        .await
        .unwrap();
    next(&mut rx).await;
    crash_until_the_top_supervisor_gives_up(&node, &mut rx, "perm_worker").await;
    timeout(WAIT, async {
        while !node.is_stopping() || node.process_count() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_applications_abnormal_end_stops_the_node() {
    let node = node("app_transient");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("trans", &tx, 0)).unwrap();
    within(node.start_application("trans", StartType::Transient))
        .await
        .unwrap();
    assert_eq!(
        node.application_start_type("trans"),
        Some(StartType::Transient)
    );
    next(&mut rx).await;
    // The top supervisor gives up with `shutdown`: not `normal`.
    crash_until_the_top_supervisor_gives_up(&node, &mut rx, "trans_worker").await;
    timeout(WAIT, async {
        while !node.is_stopping() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_applications_normal_end_is_only_reported() {
    let node = node("app_transient_normal");
    let (tx, mut rx) = mpsc::unbounded_channel();
    node.load_application(app("trans_ok", &tx, 0)).unwrap();
    within(node.start_application("trans_ok", StartType::Transient))
        .await
        .unwrap();
    next(&mut rx).await;
    let top = node
        .application_supervisor("trans_ok")
        .expect("a running application has a top supervisor");
    assert!(node.application_supervisor("not_running").is_none());
    let master = node.wait_exit(master_of(&node, "trans_ok"));
    // The top supervisor ends `normal`: reported, and the node lives on.
    within(top.stop(Reason::Normal)).await.unwrap();
    within(master).await;
    assert!(node.which_applications().is_empty());
    never(
        "a transient application's normal end stops the node",
        Duration::from_millis(200),
        || node.is_stopping(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_supervisor_that_fails_to_start_fails_the_application_start() {
    let node = node("app_fail");
    let spec = AppSpec::new("broken", || {
        SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("bad", |_ctx| {
            Box::pin(async { Err(Reason::atom("no_config")) })
        }))
    });
    node.load_application(spec).unwrap();
    let err = within(node.start_application("broken", StartType::Permanent))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "application broken failed to start: {shutdown,{failed_to_start_child,bad,no_config}}"
    );
    assert!(node.which_applications().is_empty());
    assert!(!node.is_stopping());
}

/// An application declared with `#[application]`.
#[ergo::application(
    name = "declared",
    description = "an application declared with the macro",
    version = "0.9.0",
    applications = ["declared_base"],
    env(port = 4000, host = "localhost", debug = true)
)]
struct Declared;

static EVENTS: std::sync::OnceLock<Events> = std::sync::OnceLock::new();

impl ergo::Application for Declared {
    fn supervisor() -> SupervisorSpec {
        let events = EVENTS.get().cloned().expect("set by the test");
        SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::named_server::<Worker>(
            "declared_worker",
            "declared_worker",
            (Atom::from("declared_worker"), events),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_declared_with_the_macro_carries_its_resource() {
    let node = node("app_macro");
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(
        EVENTS.set(tx.clone()).is_ok(),
        "only this test sets the events channel"
    );
    let spec = Declared::spec();
    assert_eq!(spec.name(), Atom::from("declared"));
    node.load_application(spec).unwrap();
    node.load_application(app("declared_base", &tx, 1)).unwrap();
    let info = node
        .loaded_applications()
        .into_iter()
        .find(|a| a.name == Atom::from("declared"))
        .unwrap();
    assert_eq!(info.version, "0.9.0");
    assert_eq!(info.description, "an application declared with the macro");
    let started = within(node.ensure_all_started("declared", StartType::Temporary))
        .await
        .unwrap();
    assert_eq!(
        started,
        [Atom::from("declared_base"), Atom::from("declared")]
    );
    assert_eq!(
        next(&mut rx).await,
        "start declared_base_worker in declared_base"
    );
    assert_eq!(next(&mut rx).await, "start declared_worker in declared");
    assert_eq!(
        within(ask(&node, "declared_worker", Ask::Env(Atom::from("port"))))
            .await
            .unwrap(),
        Term::Int(4000)
    );
    assert_eq!(node.get_env("declared", "debug"), Some(Term::atom("true")));
}

/// A worker whose `init` waits for a permit: an application with it is
/// still starting until the test lets it through.
struct Gated;

impl GenServer for Gated {
    type Args = (std::sync::Arc<tokio::sync::Semaphore>, Events);
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        (gate, events): Self::Args,
        _ctx: &mut ServerContext<Self>,
    ) -> Result<Self, Reason> {
        let _ = events.send("init waits".to_string());
        gate.acquire()
            .await
            .map_err(|_| Reason::atom("closed"))?
            .forget();
        let _ = events.send("init done".to_string());
        Ok(Gated)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_at_once_start_the_application_once_and_both_succeed() {
    use std::future::Future;
    let node = node("app_race");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (g, t) = (gate.clone(), tx.clone());
    node.load_application(AppSpec::new("raced", move || {
        SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::server::<Gated>("gated", (g.clone(), t.clone())))
    }))
    .unwrap();
    // The first start is under way: its worker's init waits at the gate.
    let first = tokio::spawn({
        let node = node.clone();
        async move { node.start_application("raced", StartType::Temporary).await }
    });
    assert_eq!(within(rx.recv()).await.unwrap(), "init waits");
    // The second, polled once now, finds it under way and waits for it.
    let mut second = Box::pin(node.start_application("raced", StartType::Temporary));
    let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(second.as_mut().poll(cx))).await;
    assert!(polled.is_pending(), "the second start waits for the first");
    gate.add_permits(1);
    // As OTP's application controller answers a start already under way:
    // both get the first start's result.
    assert_eq!(within(first).await.unwrap(), Ok(()));
    assert_eq!(within(second).await, Ok(()));
    assert_eq!(within(rx.recv()).await.unwrap(), "init done");
    assert!(rx.try_recv().is_err(), "one worker, started once");
    assert_eq!(
        node.which_applications()
            .iter()
            .filter(|i| i.name == Atom::from("raced"))
            .count(),
        1
    );
    // Started now: a third start is refused.
    assert_eq!(
        node.start_application("raced", StartType::Temporary).await,
        Err(AppError::AlreadyStarted(Atom::from("raced")))
    );
}
