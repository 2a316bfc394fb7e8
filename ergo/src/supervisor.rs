//! The Supervisor behaviour, with the restart semantics of OTP's
//! `supervisor`.
//!
//! A supervisor starts its children in order, linked to it, and traps exits.
//! When a child ends, its restart type says whether it comes back
//! (`permanent`: always; `transient`: unless it ended cleanly — `normal`,
//! `shutdown` or `{shutdown, _}`; `temporary`: never), and the strategy says
//! what else happens:
//!
//! - `one_for_one`: only that child is restarted;
//! - `one_for_all`: all the others are stopped (in reverse start order) and
//!   all are started again (in start order);
//! - `rest_for_one`: the children started after it are stopped (in reverse)
//!   and it and they are started again (in order);
//! - `simple_one_for_one`: like `one_for_one`, for children all made from
//!   one template and added with [`SupRef::start_child_with`].
//!
//! More than `intensity` restarts within `period` and the supervisor gives
//! up: it stops all its children, in reverse start order, and exits with
//! reason `shutdown` — which its own supervisor then handles.
//!
//! A child is stopped as its shutdown says: `brutal_kill` is an untrappable
//! `kill`; a timeout sends `shutdown` and then `kill` if the child has not
//! ended in time; `infinity` sends `shutdown` and waits.
//!
//! `cargo run --example supervisor` runs a `one_for_all` tree through a
//! crash and its restarts.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref, Term};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::gen_server::GenServer;
use crate::message::Message;
use crate::node::Node;
use crate::process::Context;
use crate::reason::Reason;

/// How a supervisor restarts its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Restart only the child that ended.
    OneForOne,
    /// Stop and restart all children.
    OneForAll,
    /// Stop and restart the child and those started after it.
    RestForOne,
    /// Like `OneForOne`, for children made from one template.
    SimpleOneForOne,
}

impl fmt::Display for Strategy {
    /// The strategy as OTP names it: `one_for_one`, `one_for_all`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::SimpleOneForOne => "simple_one_for_one",
        })
    }
}

impl fmt::Display for Restart {
    /// The restart type as OTP names it: `permanent`, `transient`,
    /// `temporary`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        })
    }
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only when it ended abnormally.
    Transient,
    /// Never.
    Temporary,
}

/// How a child is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `kill` at once (its `terminate` does not run).
    BrutalKill,
    /// `shutdown`, then `kill` if it has not ended after this long.
    Timeout(Duration),
    /// `shutdown`, and wait for as long as it takes (for supervisors).
    Infinity,
}

/// Whether a child is a worker or a supervisor (reported by
/// `which_children` and `count_children`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildType {
    /// A worker.
    Worker,
    /// A supervisor.
    Supervisor,
}

/// When the supervisor shuts itself down because of significant children
/// ending (OTP 24's `auto_shutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoShutdown {
    /// Never.
    Never,
    /// When any significant child has ended (and is not restarted).
    AnySignificant,
    /// When all significant children have ended.
    AllSignificant,
}

type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<Pid, Reason>> + Send + 'a>>;
type StartFn = Arc<dyn for<'a> Fn(&'a Context) -> StartFuture<'a> + Send + Sync>;
type TemplateFn = Arc<dyn for<'a> Fn(&'a Context, Term) -> StartFuture<'a> + Send + Sync>;

/// How to start, restart and stop one child.
#[derive(Clone)]
pub struct ChildSpec {
    id: Atom,
    start: StartFn,
    restart: Restart,
    shutdown: Shutdown,
    kind: ChildType,
    significant: bool,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish()
    }
}

impl ChildSpec {
    /// A worker started by `start`, which runs in the supervisor and must
    /// start the child linked to it (`Context::spawn_link`,
    /// `Context::start_server_link`) and give its pid. Permanent, with a
    /// 5-second shutdown, as OTP's defaults.
    pub fn new<F>(id: impl Into<Atom>, start: F) -> ChildSpec
    where
        F: for<'a> Fn(&'a Context) -> StartFuture<'a> + Send + Sync + 'static,
    {
        ChildSpec {
            id: id.into(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
            kind: ChildType::Worker,
            significant: false,
        }
    }

    /// A GenServer `S` started linked with `args` (cloned for each start).
    pub fn server<S: GenServer>(id: impl Into<Atom>, args: S::Args) -> ChildSpec
    where
        S::Args: Clone + Sync,
    {
        ChildSpec::new(id, move |ctx| {
            let args = args.clone();
            Box::pin(async move {
                ctx.start_server_link::<S>(args)
                    .await
                    .and_then(|s| s.pid().ok_or(Reason::NoProc))
            })
        })
    }

    /// A GenServer `S` registered as `name`.
    pub fn named_server<S: GenServer>(
        id: impl Into<Atom>,
        name: impl Into<Atom>,
        args: S::Args,
    ) -> ChildSpec
    where
        S::Args: Clone + Sync,
    {
        let name = name.into();
        ChildSpec::new(id, move |ctx| {
            let args = args.clone();
            Box::pin(async move {
                ctx.start_server_link_named::<S>(name, args)
                    .await
                    .and_then(|s| s.pid().ok_or(Reason::NoProc))
            })
        })
    }

    /// A supervisor child: `spec` started linked, with an `infinity`
    /// shutdown, as OTP's default for supervisors.
    pub fn supervisor(id: impl Into<Atom>, spec: SupervisorSpec) -> ChildSpec {
        let mut c = ChildSpec::new(id, move |ctx| {
            let spec = spec.clone();
            Box::pin(async move { ctx.start_supervisor_link(spec).await.map(|s| s.pid()) })
        });
        c.kind = ChildType::Supervisor;
        c.shutdown = Shutdown::Infinity;
        c
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant for [`AutoShutdown`].
    pub fn significant(mut self, significant: bool) -> ChildSpec {
        self.significant = significant;
        self
    }

    /// The child's id.
    pub fn id(&self) -> Atom {
        self.id
    }
}

/// A supervisor's flags and children.
#[derive(Clone)]
pub struct SupervisorSpec {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    auto_shutdown: AutoShutdown,
    children: Vec<ChildSpec>,
    template: Option<(ChildSpec, TemplateFn)>,
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("children", &self.children)
            .finish()
    }
}

impl SupervisorSpec {
    /// A supervisor with `strategy` and OTP's default intensity: 1 restart
    /// in 5 seconds.
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            template: None,
        }
    }

    /// A `simple_one_for_one` supervisor whose children are all started by
    /// `start`, with the argument given to [`SupRef::start_child_with`].
    /// They are permanent with a 5-second shutdown unless
    /// [`SupervisorSpec::template`] says otherwise.
    pub fn simple<F>(start: F) -> SupervisorSpec
    where
        F: for<'a> Fn(&'a Context, Term) -> StartFuture<'a> + Send + Sync + 'static,
    {
        let mut s = SupervisorSpec::new(Strategy::SimpleOneForOne);
        let placeholder = ChildSpec::new(Atom::UNDEFINED, |_ctx| {
            Box::pin(async { Err(Reason::atom("simple_one_for_one_template")) })
        });
        s.template = Some((placeholder, Arc::new(start)));
        s
    }

    /// Restart type and shutdown of a `simple_one_for_one` supervisor's
    /// children.
    pub fn template(mut self, restart: Restart, shutdown: Shutdown) -> SupervisorSpec {
        if let Some((spec, _)) = &mut self.template {
            spec.restart = restart;
            spec.shutdown = shutdown;
        }
        self
    }

    /// At most `intensity` restarts within `period`.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> SupervisorSpec {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// Shut down when significant children end.
    pub fn auto_shutdown(mut self, auto: AutoShutdown) -> SupervisorSpec {
        self.auto_shutdown = auto;
        self
    }

    /// Adds a child, started after those added before.
    pub fn child(mut self, child: ChildSpec) -> SupervisorSpec {
        self.children.push(child);
        self
    }
}

/// A child as `which_children` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildInfo {
    /// Its id (`undefined` for `simple_one_for_one` children).
    pub id: Atom,
    /// Its pid, or `None` when it is not running.
    pub pid: Option<Pid>,
    /// Worker or supervisor.
    pub kind: ChildType,
}

/// What `count_children` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// All child specs.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Supervisor children.
    pub supervisors: usize,
    /// Worker children.
    pub workers: usize,
}

/// Why a dynamic supervisor request failed.
#[derive(Clone, Debug, PartialEq)]
pub enum SupError {
    /// A child with this id exists already.
    AlreadyPresent(Atom),
    /// The child with this id is running (for `restart_child`, `delete_child`).
    Running(Atom),
    /// No child has this id.
    NotFound(Atom),
    /// The child's start failed with this reason.
    StartFailed(Reason),
    /// The request does not apply to this supervisor's strategy.
    WrongStrategy,
    /// The supervisor is gone.
    NoProc,
}

impl fmt::Display for SupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupError::AlreadyPresent(id) => write!(f, "a child {id} is already present"),
            SupError::Running(id) => write!(f, "child {id} is running"),
            SupError::NotFound(id) => write!(f, "no child {id}"),
            SupError::StartFailed(r) => write!(f, "the child failed to start: {r}"),
            SupError::WrongStrategy => {
                f.write_str("the request does not apply to this supervisor's strategy")
            }
            SupError::NoProc => f.write_str("the supervisor does not exist"),
        }
    }
}

impl std::error::Error for SupError {}

/// What a request asks the supervisor to do.
enum Command {
    StartChild(ChildSpec, oneshot::Sender<Result<Pid, SupError>>),
    StartChildWith(Term, oneshot::Sender<Result<Pid, SupError>>),
    TerminateChild(ChildKey, oneshot::Sender<Result<(), SupError>>),
    RestartChild(Atom, oneshot::Sender<Result<Pid, SupError>>),
    DeleteChild(Atom, oneshot::Sender<Result<(), SupError>>),
    WhichChildren(oneshot::Sender<Vec<ChildInfo>>),
    CountChildren(oneshot::Sender<ChildCounts>),
    Stop(Reason),
}

/// A child named by id, or (for `simple_one_for_one`) by pid.
#[derive(Clone, Copy, Debug)]
enum ChildKey {
    Id(Atom),
    Pid(Pid),
}

/// A handle to a running supervisor.
#[derive(Clone, Debug)]
pub struct SupRef {
    pid: Pid,
    node: Node,
}

impl SupRef {
    pub(crate) fn from_pid(node: &Node, pid: Pid) -> SupRef {
        SupRef {
            pid,
            node: node.clone(),
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SupError> {
        let (tx, rx) = oneshot::channel();
        self.node
            .send_message(self.pid.into(), Message::local(make(tx)))
            .map_err(|_| SupError::NoProc)?;
        rx.await.map_err(|_| SupError::NoProc)
    }

    /// Adds and starts a child (`supervisor:start_child/2`).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupError> {
        self.ask(|tx| Command::StartChild(spec, tx)).await?
    }

    /// Starts a `simple_one_for_one` child with `arg`.
    pub async fn start_child_with(&self, arg: Term) -> Result<Pid, SupError> {
        self.ask(|tx| Command::StartChildWith(arg, tx)).await?
    }

    /// Stops the child `id`, keeping its spec (`terminate_child/2`).
    pub async fn terminate_child(&self, id: impl Into<Atom>) -> Result<(), SupError> {
        let key = ChildKey::Id(id.into());
        self.ask(|tx| Command::TerminateChild(key, tx)).await?
    }

    /// Stops a `simple_one_for_one` child by pid.
    pub async fn terminate_child_pid(&self, pid: Pid) -> Result<(), SupError> {
        self.ask(|tx| Command::TerminateChild(ChildKey::Pid(pid), tx))
            .await?
    }

    /// Starts a stopped child again (`restart_child/2`).
    pub async fn restart_child(&self, id: impl Into<Atom>) -> Result<Pid, SupError> {
        let id = id.into();
        self.ask(|tx| Command::RestartChild(id, tx)).await?
    }

    /// Removes a stopped child's spec (`delete_child/2`).
    pub async fn delete_child(&self, id: impl Into<Atom>) -> Result<(), SupError> {
        let id = id.into();
        self.ask(|tx| Command::DeleteChild(id, tx)).await?
    }

    /// The children, in start order (`which_children/1`).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupError> {
        self.ask(Command::WhichChildren).await
    }

    /// How many children of each kind (`count_children/1`).
    pub async fn count_children(&self) -> Result<ChildCounts, SupError> {
        self.ask(Command::CountChildren).await
    }

    /// Stops the supervisor with `reason` (`gen_server:stop/2` on a
    /// supervisor): its children are stopped in reverse start order, each as
    /// its shutdown says, then it exits. Returns once it has ended.
    pub async fn stop(&self, reason: Reason) -> Result<(), SupError> {
        if !self.node.is_alive(self.pid) {
            return Err(SupError::NoProc);
        }
        let _ = self
            .node
            .send_message(self.pid.into(), Message::local(Command::Stop(reason)));
        self.node.wait_exit(self.pid).await;
        Ok(())
    }
}

impl Node {
    /// Starts a supervisor and waits until all its children have started.
    pub async fn start_supervisor(&self, spec: SupervisorSpec) -> Result<SupRef, Reason> {
        start(self, spec, None).await
    }
}

impl Context {
    /// Starts a supervisor linked to this process (`supervisor:start_link`).
    pub async fn start_supervisor_link(&self, spec: SupervisorSpec) -> Result<SupRef, Reason> {
        start(self.node(), spec, Some(self)).await
    }
}

async fn start(
    node: &Node,
    spec: SupervisorSpec,
    parent: Option<&Context>,
) -> Result<SupRef, Reason> {
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), Reason>>();
    let parent_pid = parent.map(Context::pid);
    let body = move |ctx: Context| supervise(ctx, spec, parent_pid, ready_tx);
    let pid = match parent {
        Some(p) => p.spawn_link(body),
        None => node.spawn(body),
    };
    match ready_rx.await {
        Ok(Ok(())) => Ok(SupRef {
            pid,
            node: node.clone(),
        }),
        Ok(Err(r)) => Err(r),
        Err(_) => Err(node.wait_exit(pid).await),
    }
}

/// One child the supervisor knows.
struct Entry {
    spec: ChildSpec,
    pid: Option<Pid>,
}

struct Sup {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    auto_shutdown: AutoShutdown,
    /// In start order (empty for `simple_one_for_one`).
    children: Vec<Entry>,
    template: Option<(ChildSpec, TemplateFn)>,
    restarts: VecDeque<Instant>,
    /// `simple_one_for_one` children, each with its start argument (for
    /// restarts): a map, as in OTP, so that a supervisor of many children
    /// handles one child's end without looking through the others.
    dynamic: FxHashMap<Pid, Term>,
}

fn start_failed(id: Atom, reason: &Reason) -> Reason {
    Reason::ShutdownWith(std::sync::Arc::new(Term::tuple([
        Term::atom("failed_to_start_child"),
        Term::Atom(id),
        reason.to_term(),
    ])))
}

async fn supervise(
    mut ctx: Context,
    spec: SupervisorSpec,
    parent: Option<Pid>,
    ready: oneshot::Sender<Result<(), Reason>>,
) -> Reason {
    ctx.set_trap_exit(true);
    ctx.set_behaviour(|| crate::process::Behaviour {
        name: "supervisor",
        module: "ergo::supervisor",
    });
    let mut sup = Sup {
        strategy: spec.strategy,
        intensity: spec.intensity,
        period: spec.period,
        auto_shutdown: spec.auto_shutdown,
        children: Vec::new(),
        template: spec.template,
        restarts: VecDeque::new(),
        dynamic: FxHashMap::default(),
    };
    for child in spec.children {
        let id = child.id;
        match (child.start)(&ctx).await {
            Ok(pid) => sup.children.push(Entry {
                spec: child,
                pid: Some(pid),
            }),
            Err(reason) => {
                tracing::error!(supervisor = %ctx.pid(), child = %id, %reason, "child failed to start");
                sup.stop_all(&mut ctx).await;
                let reason = start_failed(id, &reason);
                let _ = ready.send(Err(reason.clone()));
                return reason;
            }
        }
    }
    let _ = ready.send(Ok(()));
    loop {
        let msg = ctx.receive().await;
        let msg = match msg.downcast::<Command>() {
            Ok(cmd) => {
                if let Some(reason) = sup.command(&mut ctx, cmd).await {
                    return reason;
                }
                continue;
            }
            Err(m) => m,
        };
        if let Message::Exit { from, reason } = msg {
            // The node stopping counts as the parent exiting.
            if Some(from) == parent || from == ctx.node().system_pid() {
                sup.stop_all(&mut ctx).await;
                return reason;
            }
            if let Some(end) = sup.child_exited(&mut ctx, from, reason).await {
                return end;
            }
        }
    }
}

/// Whether a child that ended with `reason` is restarted, as its restart
/// type says; nothing is restarted while the node is stopping.
fn restarts(restart: Restart, reason: &Reason, node_stopping: bool) -> bool {
    !node_stopping
        && match restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_clean(),
            Restart::Temporary => false,
        }
}

impl Sup {
    /// Whether a significant child's end (not followed by a restart) ends
    /// the supervisor; `others` when other significant children still run.
    fn auto_shutdown_due(&self, others: bool) -> bool {
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !others,
        }
    }

    fn position(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.pid == Some(pid))
    }

    /// Stops one child as its shutdown says and waits until it has ended.
    async fn stop_child(ctx: &mut Context, spec: &ChildSpec, pid: Pid) {
        Sup::stop_together(ctx, [pid], spec.shutdown).await;
    }

    /// Stops every running child, last started first (all at once for
    /// `simple_one_for_one`, whose children have no order).
    async fn stop_all(&mut self, ctx: &mut Context) {
        if self.strategy == Strategy::SimpleOneForOne {
            self.stop_dynamic(ctx).await;
            return;
        }
        for i in (0..self.children.len()).rev() {
            if let Some(pid) = self.children[i].pid.take() {
                let spec = self.children[i].spec.clone();
                Sup::stop_child(ctx, &spec, pid).await;
            }
        }
    }

    /// Stops all `simple_one_for_one` children together, as OTP does.
    async fn stop_dynamic(&mut self, ctx: &mut Context) {
        let shutdown = match &self.template {
            Some((spec, _)) => spec.shutdown,
            None => Shutdown::Timeout(Duration::from_secs(5)),
        };
        let pids: Vec<Pid> = self.dynamic.drain().map(|(pid, _)| pid).collect();
        Sup::stop_together(ctx, pids, shutdown).await;
    }

    /// Stops children together, as OTP stops one child and all the
    /// children of a `simple_one_for_one` supervisor: each is unlinked,
    /// monitored and sent its shutdown signal (`kill` for `brutal_kill`),
    /// then the supervisor waits for every `'DOWN'` under one shutdown
    /// timer and kills those still running when it expires. Last, the stale
    /// `'EXIT'`s their links sent are dropped.
    async fn stop_together(
        ctx: &mut Context,
        pids: impl IntoIterator<Item = Pid>,
        shutdown: Shutdown,
    ) {
        let first_signal = match shutdown {
            Shutdown::BrutalKill => Reason::Kill,
            _ => Reason::Shutdown,
        };
        let mut waiting: FxHashMap<Ref, Pid> = FxHashMap::default();
        for pid in pids {
            let mref = ctx.monitor(pid);
            ctx.unlink(pid);
            ctx.exit(pid, first_signal.clone());
            waiting.insert(mref, pid);
        }
        let stopped: FxHashSet<Pid> = waiting.values().copied().collect();
        let is_down = |waiting: &FxHashMap<Ref, Pid>, m: &Message| {
            m.as_down()
                .is_some_and(|d| waiting.contains_key(&d.reference))
        };
        let deadline = match shutdown {
            Shutdown::Timeout(t) => Some(Instant::now() + t),
            _ => None,
        };
        while !waiting.is_empty() {
            let got = match deadline {
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    ctx.receive_match_timeout(left, |m| is_down(&waiting, m))
                        .await
                }
                None => Some(ctx.receive_match(|m| is_down(&waiting, m)).await),
            };
            match got {
                Some(Message::Down(d)) => {
                    waiting.remove(&d.reference);
                }
                Some(_) => {}
                None => {
                    // The shutdown time is up: kill the rest and wait.
                    for pid in waiting.values() {
                        ctx.exit(*pid, Reason::Kill);
                    }
                    while !waiting.is_empty() {
                        if let Message::Down(d) = ctx.receive_match(|m| is_down(&waiting, m)).await
                        {
                            waiting.remove(&d.reference);
                        }
                    }
                }
            }
        }
        // Drop 'EXIT's the links sent before they were removed.
        while ctx
            .receive_match_timeout(
                Duration::ZERO,
                |m| matches!(m, Message::Exit { from, .. } if stopped.contains(from)),
            )
            .await
            .is_some()
        {}
    }

    /// Stops the running children from index `from` on, last first.
    async fn stop_from(&mut self, ctx: &mut Context, from: usize) {
        for i in (from..self.children.len()).rev() {
            if let Some(pid) = self.children[i].pid.take() {
                let spec = self.children[i].spec.clone();
                Sup::stop_child(ctx, &spec, pid).await;
            }
        }
    }

    /// Records a restart; `false` when that makes more than `intensity`
    /// within `period`.
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        self.restarts.push_back(now);
        while let Some(&t) = self.restarts.front() {
            if now.duration_since(t) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.len() as u32 <= self.intensity
    }

    async fn start_at(&mut self, ctx: &mut Context, i: usize) -> Result<Pid, Reason> {
        let started = (self.children[i].spec.start)(ctx).await;
        if let Ok(pid) = &started {
            self.children[i].pid = Some(*pid);
        }
        started
    }

    /// Handles the end of a child; `Some(reason)` when the supervisor
    /// itself must end.
    async fn child_exited(
        &mut self,
        ctx: &mut Context,
        pid: Pid,
        reason: Reason,
    ) -> Option<Reason> {
        if self.strategy == Strategy::SimpleOneForOne {
            return self.dynamic_exited(ctx, pid, reason).await;
        }
        let i = self.position(pid)?;
        self.children[i].pid = None;
        let spec = self.children[i].spec.clone();
        let restart = restarts(spec.restart, &reason, ctx.node().is_stopping());
        if !reason.is_clean() {
            tracing::warn!(supervisor = %ctx.pid(), child = %spec.id, restart = %spec.restart, %reason, "child terminated");
        }
        if restart {
            tracing::info!(supervisor = %ctx.pid(), child = %spec.id, restart = %spec.restart, strategy = %self.strategy, "restarting");
        }
        if !restart {
            // A temporary child goes with its end; a transient one that
            // ended cleanly keeps its spec.
            if spec.restart == Restart::Temporary {
                self.children.remove(i);
            }
            let others = self
                .children
                .iter()
                .any(|c| c.spec.significant && c.pid.is_some());
            if spec.significant && self.auto_shutdown_due(others) {
                self.stop_all(ctx).await;
                return Some(Reason::Shutdown);
            }
            return None;
        }
        // Restart, as the strategy says, until it works or the intensity
        // is spent (a failed restart counts as another restart, as in OTP).
        let mut failed_at = Some(i);
        while let Some(at) = failed_at.take() {
            if !self.allow_restart() {
                tracing::error!(supervisor = %ctx.pid(), "reached the maximum restart intensity; shutting down");
                self.stop_all(ctx).await;
                return Some(Reason::Shutdown);
            }
            let from = match self.strategy {
                Strategy::OneForOne | Strategy::SimpleOneForOne => {
                    if let Err(r) = self.start_at(ctx, at).await {
                        tracing::warn!(child = %self.children.get(at).map_or(Atom::UNDEFINED, |c| c.spec.id), %r, "restart failed");
                        failed_at = Some(at);
                    }
                    continue;
                }
                Strategy::OneForAll => 0,
                Strategy::RestForOne => at,
            };
            self.stop_from(ctx, from).await;
            // Temporary children stopped with the group are not restarted.
            let mut j = from;
            while j < self.children.len() {
                if self.children[j].spec.restart == Restart::Temporary {
                    self.children.remove(j);
                    continue;
                }
                if let Err(r) = self.start_at(ctx, j).await {
                    tracing::warn!(child = %self.children[j].spec.id, %r, "restart failed");
                    failed_at = Some(j);
                    break;
                }
                j += 1;
            }
        }
        None
    }

    /// The end of a `simple_one_for_one` child: restarted with the
    /// argument it was started with, as the template's restart type says.
    async fn dynamic_exited(
        &mut self,
        ctx: &mut Context,
        pid: Pid,
        reason: Reason,
    ) -> Option<Reason> {
        let arg = self.dynamic.remove(&pid)?;
        let (spec, start) = self.template.clone()?;
        let restart = restarts(spec.restart, &reason, ctx.node().is_stopping());
        if !reason.is_clean() {
            tracing::warn!(supervisor = %ctx.pid(), child = %pid, %reason, "child terminated");
        }
        if !restart {
            // Every dynamic child is significant when the template is.
            if spec.significant && self.auto_shutdown_due(!self.dynamic.is_empty()) {
                self.stop_all(ctx).await;
                return Some(Reason::Shutdown);
            }
            return None;
        }
        // Until it starts again or the intensity is spent (a failed
        // restart counts as another restart, as in OTP).
        loop {
            if !self.allow_restart() {
                tracing::error!(supervisor = %ctx.pid(), "reached the maximum restart intensity; shutting down");
                self.stop_all(ctx).await;
                return Some(Reason::Shutdown);
            }
            match start(ctx, arg.clone()).await {
                Ok(new) => {
                    self.dynamic.insert(new, arg);
                    return None;
                }
                Err(r) => tracing::warn!(supervisor = %ctx.pid(), %r, "restart failed"),
            }
        }
    }

    /// Answers a request; `Some(reason)` when the supervisor is to end.
    async fn command(&mut self, ctx: &mut Context, cmd: Command) -> Option<Reason> {
        match cmd {
            Command::Stop(reason) => {
                self.stop_all(ctx).await;
                return Some(reason);
            }
            Command::StartChild(spec, tx) => {
                let r = if self.strategy == Strategy::SimpleOneForOne {
                    Err(SupError::WrongStrategy)
                } else if self.children.iter().any(|c| c.spec.id == spec.id) {
                    Err(SupError::AlreadyPresent(spec.id))
                } else {
                    match (spec.start)(ctx).await {
                        Ok(pid) => {
                            self.children.push(Entry {
                                spec,
                                pid: Some(pid),
                            });
                            Ok(pid)
                        }
                        Err(r) => Err(SupError::StartFailed(r)),
                    }
                };
                let _ = tx.send(r);
            }
            Command::StartChildWith(arg, tx) => {
                let r = match &self.template {
                    Some((_, start)) if self.strategy == Strategy::SimpleOneForOne => {
                        match start(ctx, arg.clone()).await {
                            Ok(pid) => {
                                self.dynamic.insert(pid, arg);
                                Ok(pid)
                            }
                            Err(r) => Err(SupError::StartFailed(r)),
                        }
                    }
                    _ => Err(SupError::WrongStrategy),
                };
                let _ = tx.send(r);
            }
            Command::TerminateChild(key, tx) if self.strategy == Strategy::SimpleOneForOne => {
                let r = match key {
                    ChildKey::Pid(pid) if self.dynamic.remove(&pid).is_some() => {
                        if let Some((spec, _)) = &self.template {
                            let spec = spec.clone();
                            Sup::stop_child(ctx, &spec, pid).await;
                        }
                        Ok(())
                    }
                    ChildKey::Pid(_) => Err(SupError::NotFound(Atom::UNDEFINED)),
                    ChildKey::Id(_) => Err(SupError::WrongStrategy),
                };
                let _ = tx.send(r);
            }
            Command::RestartChild(_, tx) if self.strategy == Strategy::SimpleOneForOne => {
                let _ = tx.send(Err(SupError::WrongStrategy));
            }
            Command::DeleteChild(_, tx) if self.strategy == Strategy::SimpleOneForOne => {
                let _ = tx.send(Err(SupError::WrongStrategy));
            }
            Command::TerminateChild(key, tx) => {
                let i = match key {
                    ChildKey::Id(id) => self.children.iter().position(|c| c.spec.id == id),
                    ChildKey::Pid(pid) => self.position(pid),
                };
                let r = match i {
                    None => Err(SupError::NotFound(match key {
                        ChildKey::Id(id) => id,
                        ChildKey::Pid(_) => Atom::UNDEFINED,
                    })),
                    Some(i) => {
                        if let Some(pid) = self.children[i].pid.take() {
                            let spec = self.children[i].spec.clone();
                            Sup::stop_child(ctx, &spec, pid).await;
                            if spec.restart == Restart::Temporary {
                                self.children.remove(i);
                            }
                        }
                        Ok(())
                    }
                };
                let _ = tx.send(r);
            }
            Command::RestartChild(id, tx) => {
                let r = match self.children.iter().position(|c| c.spec.id == id) {
                    None => Err(SupError::NotFound(id)),
                    Some(i) if self.children[i].pid.is_some() => Err(SupError::Running(id)),
                    Some(i) => self.start_at(ctx, i).await.map_err(SupError::StartFailed),
                };
                let _ = tx.send(r);
            }
            Command::DeleteChild(id, tx) => {
                let r = match self.children.iter().position(|c| c.spec.id == id) {
                    None => Err(SupError::NotFound(id)),
                    Some(i) if self.children[i].pid.is_some() => Err(SupError::Running(id)),
                    Some(i) => {
                        self.children.remove(i);
                        Ok(())
                    }
                };
                let _ = tx.send(r);
            }
            Command::WhichChildren(tx) => {
                let list = match &self.template {
                    Some((spec, _)) if self.strategy == Strategy::SimpleOneForOne => self
                        .dynamic
                        .keys()
                        .map(|pid| ChildInfo {
                            id: Atom::UNDEFINED,
                            pid: Some(*pid),
                            kind: spec.kind,
                        })
                        .collect(),
                    _ => self
                        .children
                        .iter()
                        .map(|c| ChildInfo {
                            id: c.spec.id,
                            pid: c.pid,
                            kind: c.spec.kind,
                        })
                        .collect(),
                };
                let _ = tx.send(list);
            }
            Command::CountChildren(tx) if self.strategy == Strategy::SimpleOneForOne => {
                // As OTP counts them: one spec (the template).
                let kind = self.template.as_ref().map(|(s, _)| s.kind);
                let n = self.dynamic.len();
                let _ = tx.send(ChildCounts {
                    specs: 1,
                    active: n,
                    workers: if kind == Some(ChildType::Worker) {
                        n
                    } else {
                        0
                    },
                    supervisors: if kind == Some(ChildType::Supervisor) {
                        n
                    } else {
                        0
                    },
                });
            }
            Command::CountChildren(tx) => {
                let mut n = ChildCounts {
                    specs: self.children.len(),
                    ..ChildCounts::default()
                };
                for c in &self.children {
                    n.active += c.pid.is_some() as usize;
                    match c.spec.kind {
                        ChildType::Worker => n.workers += 1,
                        ChildType::Supervisor => n.supervisors += 1,
                    }
                }
                let _ = tx.send(n);
            }
        }
        None
    }
}

/// A GenServer child of a `#[supervisor]` struct: `Child::<S>::new(args)`
/// takes exactly `S`'s start arguments, so a wrong argument is a compile
/// error.
pub struct Child<S: GenServer> {
    args: S::Args,
}

impl<S: GenServer> fmt::Debug for Child<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Child<{}>", std::any::type_name::<S>())
    }
}

impl<S: GenServer> Clone for Child<S>
where
    S::Args: Clone,
{
    fn clone(&self) -> Self {
        Child {
            args: self.args.clone(),
        }
    }
}

impl<S: GenServer> Child<S> {
    /// A child started with `args`.
    pub fn new(args: S::Args) -> Child<S> {
        Child { args }
    }
}

/// What a `#[supervisor]` struct's fields are: something that becomes a
/// child spec under an id (and, if `register` is set, a registered name).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a child of a `#[supervisor]`",
    note = "a child field is `Child<MyServer>` (a GenServer) or another `#[supervisor]` struct"
)]
pub trait IntoChildSpec {
    /// The child spec, under `id`.
    fn into_child_spec(self, id: Atom, register: bool) -> ChildSpec;
}

impl<S: GenServer> IntoChildSpec for Child<S>
where
    S::Args: Clone + Sync,
{
    fn into_child_spec(self, id: Atom, register: bool) -> ChildSpec {
        if register {
            ChildSpec::named_server::<S>(id, id, self.args)
        } else {
            ChildSpec::server::<S>(id, self.args)
        }
    }
}

impl IntoChildSpec for SupervisorSpec {
    fn into_child_spec(self, id: Atom, _register: bool) -> ChildSpec {
        ChildSpec::supervisor(id, self)
    }
}
