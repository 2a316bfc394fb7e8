//! `ConsumerSupervisor`: a consumer that starts a child for each event
//! (Elixir's `ConsumerSupervisor`). A subscription's `max_demand` bounds
//! how many children of its events run at once: the supervisor asks for
//! more events only as children end, once `min_demand` of them have.
//!
//! Children are `temporary` (never restarted, the default) or `transient`
//! (restarted after an abnormal exit, within `max_restarts` in
//! `max_seconds`; beyond that the supervisor stops with `shutdown`), as
//! `ConsumerSupervisor` allows.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ergo_etf::{Atom, FromTerm, Pid, Ref, Term, ToTerm};

use super::{
    Cancel, Demand, GenStage, Init, NoEvents, Role, StageContext, SubscribeOptions, Subscription,
};
use crate::gen_server::{Flow, GenServer, Reply};
use crate::message::Message;
use crate::process::{Context, Dest};
use crate::reason::Reason;
use crate::supervisor::Restart;

/// Starts one child for an event: its pid, `None` to skip the event
/// (`:ignore`), or why it failed.
pub type StartChild<E> = Arc<
    dyn for<'a> Fn(
            &'a Context,
            E,
        )
            -> Pin<Box<dyn Future<Output = Result<Option<Pid>, Reason>> + Send + 'a>>
        + Send
        + Sync,
>;

/// How a [`ConsumerSupervisor`] starts and restarts its children, and what
/// it subscribes to.
pub struct ConsumerSupervisorSpec<E> {
    start: StartChild<E>,
    restart: Restart,
    shutdown: Duration,
    max_restarts: usize,
    max_seconds: Duration,
    subscribe_to: Vec<(Dest, SubscribeOptions<E>)>,
}

impl<E: Send + 'static> ConsumerSupervisorSpec<E> {
    /// Each event starts a child with `start`, which links the child to the
    /// supervisor (`ctx.spawn_link`, `ctx.start_server_link`).
    pub fn new<F>(start: F) -> Self
    where
        F: for<'a> Fn(
                &'a Context,
                E,
            )
                -> Pin<Box<dyn Future<Output = Result<Option<Pid>, Reason>> + Send + 'a>>
            + Send
            + Sync
            + 'static,
    {
        ConsumerSupervisorSpec {
            start: Arc::new(start),
            restart: Restart::Temporary,
            shutdown: Duration::from_secs(5),
            max_restarts: 3,
            max_seconds: Duration::from_secs(5),
            subscribe_to: Vec::new(),
        }
    }

    /// Each event runs `body` in a process of its own, linked.
    pub fn spawn<F, Fut>(body: F) -> Self
    where
        F: Fn(Context, E) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Reason> + Send + 'static,
    {
        Self::new(move |ctx, event| {
            let body = body.clone();
            Box::pin(async move { Ok(Some(ctx.spawn_link(move |c| body(c, event)))) })
        })
    }

    /// Each event starts a GenServer `G` with the arguments `args` makes of
    /// it, linked.
    pub fn server<G, A>(args: A) -> Self
    where
        G: GenServer,
        A: Fn(E) -> G::Args + Send + Sync + 'static,
    {
        let args = Arc::new(args);
        Self::new(move |ctx, event| {
            let a = args(event);
            Box::pin(async move {
                let server = ctx.start_server_link::<G>(a).await?;
                Ok(server.pid())
            })
        })
    }

    /// The children's restart type: `Temporary` (the default) or
    /// `Transient`. `Permanent` is refused at start, as in Elixir.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How long children have to stop when the supervisor stops (5 s by
    /// default) before they are killed.
    pub fn shutdown(mut self, shutdown: Duration) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// At most `restarts` restarts within `period` (3 in 5 s by default).
    pub fn intensity(mut self, restarts: usize, period: Duration) -> Self {
        self.max_restarts = restarts;
        self.max_seconds = period;
        self
    }

    /// Subscribes to the producer at `to` as the supervisor starts.
    pub fn subscribe_to(mut self, to: impl Into<Dest>, opts: SubscribeOptions<E>) -> Self {
        self.subscribe_to.push((to.into(), opts));
        self
    }
}

/// The calls a [`ConsumerSupervisor`] serves.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerSupervisorCall {
    /// `count_children`: `[{specs, 1}, {active, N}, {supervisors, 0},
    /// {workers, N}]`.
    CountChildren,
    /// `which_children`: the children's pids.
    WhichChildren,
    /// `terminate_child`: stops a child.
    TerminateChild(Pid),
}

impl FromTerm for ConsumerSupervisorCall {
    fn from_term(t: &Term) -> Result<Self, ergo_etf::ConvertError> {
        match t {
            Term::Atom(a) if a.as_str() == "count_children" => Ok(Self::CountChildren),
            Term::Atom(a) if a.as_str() == "which_children" => Ok(Self::WhichChildren),
            Term::Tuple(v) if v.len() == 2 && v[0].is_atom("terminate_child") => match v[1] {
                Term::Pid(p) => Ok(Self::TerminateChild(p)),
                _ => Err(ergo_etf::ConvertError::new("{terminate_child, pid}", t)),
            },
            _ => Err(ergo_etf::ConvertError::new(
                "count_children | which_children | {terminate_child, pid}",
                t,
            )),
        }
    }
}

impl ToTerm for ConsumerSupervisorCall {
    fn to_term(&self) -> Term {
        match self {
            Self::CountChildren => Term::atom("count_children"),
            Self::WhichChildren => Term::atom("which_children"),
            Self::TerminateChild(p) => Term::tuple([Term::atom("terminate_child"), Term::Pid(*p)]),
        }
    }
}

struct Child<E> {
    tag: Ref,
    /// The event, kept to restart a transient child.
    event: Option<E>,
}

struct ProducerDemand {
    from: Subscription,
    /// Children of this subscription's events running now.
    count: usize,
    /// Ended children not yet asked for again.
    pending: usize,
    min: usize,
    max: usize,
}

/// A consumer that supervises one child per event. Start it with
/// `node.start_stage::<ConsumerSupervisor<E>>(spec)`.
pub struct ConsumerSupervisor<E> {
    spec: ConsumerSupervisorSpec<E>,
    children: HashMap<Pid, Child<E>>,
    producers: HashMap<Ref, ProducerDemand>,
    restarts: VecDeque<Instant>,
}

impl<E: Clone + FromTerm + ToTerm + Send + 'static> ConsumerSupervisor<E> {
    /// Children ended or failed to start: `down` of them free their
    /// subscription's demand, after `events` more started.
    fn maybe_ask(&mut self, tag: Ref, events: usize, down: usize, ctx: &StageContext<Self>) {
        let Some(p) = self.producers.get_mut(&tag) else {
            return;
        };
        if p.count + events > p.max {
            tracing::error!(
                "ConsumerSupervisor has received {} events in excess from: {}",
                p.count + events - p.max,
                p.from
            );
        }
        let ask = p.pending + down;
        if ask >= p.min {
            ctx.ask(p.from, ask);
            p.pending = 0;
        } else {
            p.pending = ask;
        }
        p.count = (p.count + events).saturating_sub(down);
    }

    /// Records a restart; `false` once the intensity is exceeded.
    fn add_restart(&mut self) -> bool {
        let now = Instant::now();
        self.restarts.push_back(now);
        while let Some(t) = self.restarts.front() {
            if now.duration_since(*t) > self.spec.max_seconds {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.len() <= self.spec.max_restarts
    }

    async fn terminate_children(&mut self, ctx: &mut StageContext<Self>) {
        let pids: Vec<Pid> = self.children.keys().copied().collect();
        let mut watching: HashMap<Ref, Pid> = HashMap::new();
        for pid in pids {
            let r = ctx.monitor(pid);
            ctx.unlink(pid);
            ctx.exit(pid, Reason::Shutdown);
            watching.insert(r, pid);
        }
        self.children.clear();
        let deadline = tokio::time::Instant::now() + self.spec.shutdown;
        let mut killed = false;
        while !watching.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let got = ctx
                .receive_match_timeout(
                    if killed {
                        Duration::from_secs(60)
                    } else {
                        left
                    },
                    |m| {
                        m.as_down()
                            .is_some_and(|d| watching.contains_key(&d.reference))
                    },
                )
                .await;
            match got {
                Some(Message::Down(d)) => {
                    watching.remove(&d.reference);
                }
                Some(_) => {}
                None if !killed => {
                    for pid in watching.values() {
                        ctx.exit(*pid, Reason::Kill);
                    }
                    killed = true;
                }
                None => break,
            }
        }
    }
}

impl<E: Clone + FromTerm + ToTerm + Send + 'static> GenStage for ConsumerSupervisor<E> {
    type Args = ConsumerSupervisorSpec<E>;
    type In = E;
    type Out = NoEvents;
    type Call = ConsumerSupervisorCall;
    type Reply = Term;
    type Cast = ();

    async fn init(spec: Self::Args, ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        if spec.restart == Restart::Permanent {
            return Err(Reason::other(Term::tuple([
                Term::atom("bad_opts"),
                Term::binary("a child's restart must be temporary or transient, not permanent"),
            ])));
        }
        ctx.set_trap_exit(true);
        let subscribe_to = std::mem::take(&mut ConsumerSupervisorSpec::clone_subs(&spec));
        let mut init = Init::consumer(ConsumerSupervisor {
            spec,
            children: HashMap::new(),
            producers: HashMap::new(),
            restarts: VecDeque::new(),
        });
        for (to, opts) in subscribe_to {
            init = init.subscribe_to(to, opts);
        }
        Ok(init)
    }

    async fn handle_subscribe(
        &mut self,
        role: Role,
        opts: &[(Atom, Term)],
        from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> Result<Demand, Reason> {
        if role == Role::Consumer {
            return Ok(Demand::Automatic);
        }
        let get = |k: &str| {
            opts.iter()
                .find(|(a, _)| a.as_str() == k)
                .and_then(|(_, v)| v.as_i64())
                .and_then(|n| usize::try_from(n).ok())
        };
        let max = get("max_demand").unwrap_or(1000);
        let min = get("min_demand").unwrap_or(max / 2);
        ctx.ask(from, max);
        self.producers.insert(
            from.tag,
            ProducerDemand {
                from,
                count: 0,
                pending: 0,
                min,
                max,
            },
        );
        Ok(Demand::Manual)
    }

    async fn handle_cancel(
        &mut self,
        _cancel: Cancel,
        from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.producers.remove(&from.tag);
        Flow::Continue
    }

    async fn handle_events(
        &mut self,
        events: Vec<E>,
        from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> Flow {
        let transient = self.spec.restart == Restart::Transient;
        let mut started = 0;
        let mut errors = 0;
        for event in events {
            let keep = transient.then(|| event.clone());
            match (self.spec.start)(ctx, event).await {
                Ok(Some(pid)) => {
                    started += 1;
                    self.children.insert(
                        pid,
                        Child {
                            tag: from.tag,
                            event: keep,
                        },
                    );
                }
                Ok(None) => errors += 1,
                Err(reason) => {
                    tracing::error!(supervisor = %ctx.pid(), %reason, "ConsumerSupervisor could not start a child");
                    errors += 1;
                }
            }
        }
        self.maybe_ask(from.tag, started + errors, errors, ctx);
        Flow::Continue
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut StageContext<Self>) -> Flow {
        let Message::Exit { from, reason } = message else {
            tracing::warn!(supervisor = %ctx.pid(), %message, "ConsumerSupervisor: unexpected message");
            return Flow::Continue;
        };
        let Some(child) = self.children.remove(&from) else {
            return Flow::Continue;
        };
        let abnormal = !matches!(
            reason,
            Reason::Normal | Reason::Shutdown | Reason::ShutdownWith(_)
        );
        if let (true, Some(event)) = (abnormal, child.event) {
            if !self.add_restart() {
                tracing::error!(supervisor = %ctx.pid(), "ConsumerSupervisor reached its maximum restart intensity");
                return Flow::Stop(Reason::Shutdown);
            }
            match (self.spec.start)(ctx, event.clone()).await {
                Ok(Some(pid)) => {
                    self.children.insert(
                        pid,
                        Child {
                            tag: child.tag,
                            event: Some(event),
                        },
                    );
                    return Flow::Continue;
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::error!(supervisor = %ctx.pid(), %reason, "ConsumerSupervisor could not restart a child");
                }
            }
        }
        self.maybe_ask(child.tag, 0, 1, ctx);
        Flow::Continue
    }

    async fn handle_call(
        &mut self,
        request: ConsumerSupervisorCall,
        ctx: &mut StageContext<Self>,
    ) -> Reply<Term> {
        let reply = match request {
            ConsumerSupervisorCall::CountChildren => {
                let n = Term::Int(self.children.len() as i64);
                Term::List(vec![
                    Term::tuple([Term::atom("specs"), Term::Int(1)]),
                    Term::tuple([Term::atom("active"), n.clone()]),
                    Term::tuple([Term::atom("supervisors"), Term::Int(0)]),
                    Term::tuple([Term::atom("workers"), n]),
                ])
            }
            ConsumerSupervisorCall::WhichChildren => {
                Term::List(self.children.keys().map(|p| Term::Pid(*p)).collect())
            }
            ConsumerSupervisorCall::TerminateChild(pid) => match self.children.remove(&pid) {
                Some(child) => {
                    ctx.unlink(pid);
                    ctx.exit(pid, Reason::Shutdown);
                    self.maybe_ask(child.tag, 0, 1, ctx);
                    Term::atom("ok")
                }
                None => Term::tuple([Term::atom("error"), Term::atom("not_found")]),
            },
        };
        Reply::Reply(reply)
    }

    async fn terminate(&mut self, _reason: &Reason, ctx: &mut StageContext<Self>) {
        self.terminate_children(ctx).await;
    }
}

impl<E> ConsumerSupervisorSpec<E> {
    fn clone_subs(spec: &Self) -> Vec<(Dest, SubscribeOptions<E>)> {
        spec.subscribe_to.clone()
    }
}

impl<E> std::fmt::Debug for ConsumerSupervisorSpec<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSupervisorSpec")
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("max_restarts", &self.max_restarts)
            .field("max_seconds", &self.max_seconds)
            .field("subscribe_to", &self.subscribe_to)
            .finish_non_exhaustive()
    }
}

impl<E> std::fmt::Debug for ConsumerSupervisor<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSupervisor")
            .field("children", &self.children.len())
            .field("subscriptions", &self.producers.len())
            .finish_non_exhaustive()
    }
}
