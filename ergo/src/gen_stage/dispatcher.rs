//! Dispatchers: how a producer shares its events among its consumers
//! (GenStage's `GenStage.Dispatcher` behaviour).
//!
//! - [`DemandDispatcher`] (the default): each batch to the consumer with
//!   the most demand;
//! - [`BroadcastDispatcher`]: every event to every consumer, at the pace of
//!   the slowest, each consumer filtered by its selector;
//! - [`PartitionDispatcher`]: each event to the one consumer of its
//!   partition, by a hash (`:erlang.phash2(Event, N)` by default, as
//!   Elixir routes).
//!
//! A dispatcher is told of subscriptions, cancels and demand, and answers
//! how much demand to pass on to the producer (`handle_demand`); given
//! events, it sends what it can and gives back the rest for the buffer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ergo_etf::{Pid, Ref, Term, ToTerm};

use super::protocol::{AskMsg, EventsMsg, SubscribeOptions};
use crate::message::Message;
use crate::process::Context;

/// What a dispatcher sends through: events to a consumer, and messages to
/// its own producer.
pub struct Outlet<'a> {
    pub(crate) ctx: &'a Context,
}

impl Outlet<'_> {
    /// Sends `events` to the consumer `to` of subscription `tag`
    /// (`{'$gen_consumer', {Self, Tag}, Events}`), without connecting to a
    /// node that is not connected.
    pub fn deliver<E: ToTerm + Send + 'static>(&self, to: Pid, tag: Ref, events: Vec<E>) {
        if events.is_empty() {
            return;
        }
        let msg = EventsMsg {
            producer: self.ctx.pid(),
            tag,
            events,
        };
        let _ = self.ctx.send_noconnect(to, msg);
    }

    /// Sends `msg` to the producer itself (an info that came due).
    pub fn to_self(&self, msg: Message) {
        let _ = self.ctx.send_message(self.ctx.pid(), msg);
    }

    /// Credits `n` events of demand to the subscription, as if its consumer
    /// had asked (for events a selector left out).
    pub fn credit(&self, consumer: Pid, tag: Ref, n: usize) {
        let _ = self.ctx.send_local_term(AskMsg { consumer, tag, n });
    }
}

impl Context {
    /// Sends a Rust value with a term form to this process.
    fn send_local_term<M: ToTerm + Send + 'static>(&self, m: M) -> Result<(), crate::SendError> {
        self.send_message(self.pid(), Message::new(m))
    }
}

/// How a producer shares events among its consumers.
pub trait Dispatcher<E>: Send + 'static {
    /// A consumer subscribed (`tag` is the subscription). Gives the demand
    /// to pass to the producer now, or a reason to cancel the subscription
    /// with.
    fn subscribe(
        &mut self,
        opts: &SubscribeOptions<E>,
        consumer: Pid,
        tag: Ref,
        out: &Outlet<'_>,
    ) -> Result<usize, Term>;

    /// A subscription ended; gives the demand to pass on.
    fn cancel(&mut self, tag: Ref, out: &Outlet<'_>) -> usize;

    /// The consumer of `tag` asked for `n` more events; gives the demand to
    /// pass on.
    fn ask(&mut self, n: usize, consumer: Pid, tag: Ref, out: &Outlet<'_>) -> usize;

    /// Sends what it can of `events`; gives back the rest, for the buffer.
    fn dispatch(&mut self, events: Vec<E>, out: &Outlet<'_>) -> Vec<E>;

    /// An info message (`GenStage.sync_info/2`) that is due once the
    /// events sent before it have reached their consumers. By default it
    /// goes to the producer at once.
    fn info(&mut self, msg: Message, out: &Outlet<'_>) {
        out.to_self(msg);
    }

    /// The dispatcher's name, as GenStage's `format_status` shows it.
    fn name(&self) -> &'static str;
}

/// The default dispatcher: sends each batch to the consumer with the most
/// outstanding demand (`GenStage.DemandDispatcher`).
#[derive(Default)]
pub struct DemandDispatcher {
    /// `(demand, consumer, tag)`, the biggest demand first.
    demands: Vec<(usize, Pid, Ref)>,
    /// Demand of cancelled consumers that was already passed on.
    pending: usize,
    /// The demand the first consumer asked, for the warning GenStage gives
    /// when consumers ask for different amounts.
    max: Option<usize>,
}

impl DemandDispatcher {
    /// A demand dispatcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn add_demand(&mut self, n: usize, consumer: Pid, tag: Ref) {
        let at = self
            .demands
            .iter()
            .position(|(cur, _, _)| n > *cur)
            .unwrap_or(self.demands.len());
        self.demands.insert(at, (n, consumer, tag));
    }

    fn pop_demand(&mut self, tag: Ref) -> Option<(usize, Pid)> {
        let at = self.demands.iter().position(|(_, _, t)| *t == tag)?;
        let (n, pid, _) = self.demands.remove(at);
        Some((n, pid))
    }
}

impl<E: ToTerm + Send + 'static> Dispatcher<E> for DemandDispatcher {
    fn subscribe(
        &mut self,
        _opts: &SubscribeOptions<E>,
        consumer: Pid,
        tag: Ref,
        _out: &Outlet<'_>,
    ) -> Result<usize, Term> {
        self.demands.push((0, consumer, tag));
        Ok(0)
    }

    fn cancel(&mut self, tag: Ref, _out: &Outlet<'_>) -> usize {
        if let Some((n, _)) = self.pop_demand(tag) {
            self.pending += n;
        }
        0
    }

    fn ask(&mut self, n: usize, consumer: Pid, tag: Ref, out: &Outlet<'_>) -> usize {
        let max = *self.max.get_or_insert(n);
        if n > max {
            tracing::warn!(
                producer = %out.ctx.pid(),
                "GenStage producer DemandDispatcher expects a maximum demand of {max}. Using different maximum demands will overload greedy consumers. Got demand for {n} events from {consumer}"
            );
        }
        let current = self.pop_demand(tag).map_or(0, |(c, _)| c);
        self.add_demand(current + n, consumer, tag);
        let already_sent = self.pending.min(n);
        self.pending -= already_sent;
        n - already_sent
    }

    fn dispatch(&mut self, mut events: Vec<E>, out: &Outlet<'_>) -> Vec<E> {
        let total = events.len();
        while !events.is_empty() {
            let Some(&(demand, pid, tag)) = self.demands.first() else {
                break;
            };
            if demand == 0 {
                break;
            }
            self.demands.remove(0);
            let now = if events.len() <= demand {
                std::mem::take(&mut events)
            } else {
                let later = events.split_off(demand);
                std::mem::replace(&mut events, later)
            };
            let sent = now.len();
            out.deliver(pid, tag, now);
            self.add_demand(demand - sent, pid, tag);
        }
        let buffered = events.len();
        let _ = total;
        self.pending = self.pending.saturating_sub(buffered);
        events
    }

    fn name(&self) -> &'static str {
        "Elixir.GenStage.DemandDispatcher"
    }
}

/// Sends every event to every consumer, never beyond any consumer's demand
/// (`GenStage.BroadcastDispatcher`). A subscription may carry a selector;
/// the events it leaves out count as handled.
pub struct BroadcastDispatcher<E> {
    /// `(demand, consumer, tag, selector)`.
    demands: Vec<(i64, Pid, Ref, Option<super::Selector<E>>)>,
    /// Events the producer may send now (the smallest demand).
    waiting: usize,
    /// Demand passed on to the producer and not yet met.
    requested: usize,
    subscribed: HashSet<Pid>,
}

impl<E> Default for BroadcastDispatcher<E> {
    fn default() -> Self {
        BroadcastDispatcher {
            demands: Vec::new(),
            waiting: 0,
            requested: 0,
            subscribed: HashSet::new(),
        }
    }
}

impl<E> BroadcastDispatcher<E> {
    /// A broadcast dispatcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn adjust(&mut self, by: i64) {
        if by != 0 {
            for d in &mut self.demands {
                d.0 -= by;
            }
        }
    }

    /// Moves the demand all consumers share into `waiting`; gives what to
    /// ask of the producer.
    fn sync(&mut self) -> usize {
        let min = self.demands.iter().map(|d| d.0).min().unwrap_or(0).max(0);
        self.adjust(min);
        self.waiting += min as usize;
        let request = self.waiting.saturating_sub(self.requested);
        self.requested += request;
        request
    }
}

impl<E: ToTerm + Clone + Send + 'static> Dispatcher<E> for BroadcastDispatcher<E> {
    fn subscribe(
        &mut self,
        opts: &SubscribeOptions<E>,
        consumer: Pid,
        tag: Ref,
        out: &Outlet<'_>,
    ) -> Result<usize, Term> {
        if !self.subscribed.insert(consumer) {
            tracing::error!(
                "{consumer} is already registered with {}. This subscription has been discarded.",
                out.ctx.pid()
            );
            return Err(Term::atom("already_subscribed"));
        }
        // The newcomer starts with nothing; the others keep what they have
        // over what is waiting.
        let waiting = self.waiting as i64;
        self.adjust(-waiting);
        self.waiting = 0;
        self.demands
            .insert(0, (0, consumer, tag, opts.selector.clone()));
        Ok(0)
    }

    fn cancel(&mut self, tag: Ref, _out: &Outlet<'_>) -> usize {
        if let Some(at) = self.demands.iter().position(|d| d.2 == tag) {
            let (_, pid, _, _) = self.demands.remove(at);
            self.subscribed.remove(&pid);
        }
        if self.demands.is_empty() {
            self.waiting = 0;
            return 0;
        }
        self.sync()
    }

    fn ask(&mut self, n: usize, consumer: Pid, tag: Ref, _out: &Outlet<'_>) -> usize {
        let (current, selector) = match self.demands.iter().position(|d| d.2 == tag) {
            Some(at) => {
                let d = self.demands.remove(at);
                (d.0, d.3)
            }
            None => (0, None),
        };
        self.demands
            .insert(0, (current + n as i64, consumer, tag, selector));
        self.sync()
    }

    fn dispatch(&mut self, mut events: Vec<E>, out: &Outlet<'_>) -> Vec<E> {
        if self.waiting == 0 {
            return events;
        }
        let later = if events.len() <= self.waiting {
            Vec::new()
        } else {
            events.split_off(self.waiting)
        };
        let now = events;
        self.waiting -= now.len();
        self.requested = self.requested.saturating_sub(now.len());
        let last = self.demands.len().saturating_sub(1);
        let mut now = Some(now);
        for (i, (_, pid, tag, selector)) in self.demands.iter().enumerate() {
            let batch = match selector {
                Some(select) => {
                    let all = now.as_ref().map_or(&[][..], |v| v.as_slice());
                    let picked: Vec<E> = all.iter().filter(|e| select(e)).cloned().collect();
                    let discarded = all.len() - picked.len();
                    if discarded > 0 {
                        out.credit(*pid, *tag, discarded);
                    }
                    picked
                }
                // The last consumer takes the batch itself, the others a
                // copy.
                None if i == last => now.take().unwrap_or_default(),
                None => now.clone().unwrap_or_default(),
            };
            out.deliver(*pid, *tag, batch);
        }
        later
    }

    fn name(&self) -> &'static str {
        "Elixir.GenStage.BroadcastDispatcher"
    }
}

/// Where an event goes under [`PartitionDispatcher`]: its partition, or
/// `None` to drop it.
pub type HashFn<E> = Arc<dyn Fn(&E) -> Option<Term> + Send + Sync>;

enum Slot<E> {
    /// No consumer yet, or one with this much demand.
    Demand(usize),
    /// The consumer's demand is met; these wait for more (infos are marked
    /// by their id).
    Queue(VecDeque<Queued<E>>),
}

enum Queued<E> {
    Event(E),
    Info(u64),
}

struct Partition<E> {
    key: Term,
    consumer: Option<(Pid, Ref)>,
    slot: Slot<E>,
    /// Events routed here in the current dispatch.
    batch: Vec<E>,
}

/// Sends each event to the consumer of its partition
/// (`GenStage.PartitionDispatcher`). Consumers subscribe with
/// `partition: P`; each partition takes one consumer.
pub struct PartitionDispatcher<E> {
    parts: Vec<Partition<E>>,
    /// Partitions are `0..n` and the default hash is in use: an event's
    /// hash is its partition's index.
    by_index: bool,
    hash: Option<HashFn<E>>,
    refs: HashMap<Ref, usize>,
    waiting: usize,
    pending: usize,
    next_info: u64,
    /// Infos waiting on queued partitions: the message and how many
    /// partitions still hold events before it.
    infos: HashMap<u64, (Message, usize)>,
}

impl<E> PartitionDispatcher<E> {
    /// Partitions `0..n`, events routed by `:erlang.phash2(Event, n)`.
    pub fn count(n: usize) -> Self {
        Self::with_keys((0..n as i64).map(Term::Int).collect())
    }

    /// The given partitions. Without [`PartitionDispatcher::hash`] they
    /// must be the integers `0..n`, as in GenStage.
    pub fn partitions(keys: impl IntoIterator<Item = impl ToTerm>) -> Self {
        Self::with_keys(keys.into_iter().map(|k| k.to_term()).collect())
    }

    fn with_keys(keys: Vec<Term>) -> Self {
        let by_index = keys
            .iter()
            .enumerate()
            .all(|(i, k)| *k == Term::Int(i as i64));
        PartitionDispatcher {
            parts: keys
                .into_iter()
                .map(|key| Partition {
                    key,
                    consumer: None,
                    slot: Slot::Demand(0),
                    batch: Vec::new(),
                })
                .collect(),
            by_index,
            hash: None,
            refs: HashMap::new(),
            waiting: 0,
            pending: 0,
            next_info: 0,
            infos: HashMap::new(),
        }
    }

    /// Routes by `f`: the partition of an event, or `None` to drop it.
    pub fn hash(mut self, f: impl Fn(&E) -> Option<Term> + Send + Sync + 'static) -> Self {
        self.hash = Some(Arc::new(f));
        self
    }

    fn index_of(&self, key: &Term) -> Option<usize> {
        if self.by_index {
            return key
                .as_i64()
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < self.parts.len());
        }
        self.parts.iter().position(|p| p.key == *key)
    }

    fn info_done(&mut self, id: u64, out: &Outlet<'_>) {
        if let Some((_, left)) = self.infos.get_mut(&id) {
            *left -= 1;
            if *left == 0
                && let Some((msg, _)) = self.infos.remove(&id)
            {
                out.to_self(msg);
            }
        }
    }
}

impl<E: ToTerm + Send + 'static> Dispatcher<E> for PartitionDispatcher<E> {
    fn subscribe(
        &mut self,
        opts: &SubscribeOptions<E>,
        consumer: Pid,
        tag: Ref,
        _out: &Outlet<'_>,
    ) -> Result<usize, Term> {
        let Some(key) = &opts.partition else {
            return Err(Term::binary(
                "the :partition option is required when subscribing to a producer with partition dispatcher",
            ));
        };
        let Some(i) = self.index_of(key) else {
            let keys: Vec<Term> = self.parts.iter().map(|p| p.key.clone()).collect();
            return Err(Term::binary(format!(
                ":partition must be one of {}, got: {key}",
                Term::List(keys)
            )));
        };
        if let Some((pid, _)) = self.parts[i].consumer {
            return Err(Term::binary(format!(
                "the partition {key} is already taken by {pid}"
            )));
        }
        self.parts[i].consumer = Some((consumer, tag));
        self.refs.insert(tag, i);
        Ok(0)
    }

    fn cancel(&mut self, tag: Ref, out: &Outlet<'_>) -> usize {
        let Some(i) = self.refs.remove(&tag) else {
            return 0;
        };
        let part = &mut self.parts[i];
        part.consumer = None;
        match std::mem::replace(&mut part.slot, Slot::Demand(0)) {
            Slot::Demand(n) => {
                self.pending += n;
                0
            }
            Slot::Queue(q) => {
                let mut n = 0;
                for item in q {
                    match item {
                        Queued::Event(_) => n += 1,
                        Queued::Info(id) => self.info_done(id, out),
                    }
                }
                self.waiting += n;
                n
            }
        }
    }

    fn ask(&mut self, n: usize, _consumer: Pid, tag: Ref, out: &Outlet<'_>) -> usize {
        let Some(&i) = self.refs.get(&tag) else {
            return 0;
        };
        let (pid, ptag) = self.parts[i].consumer.unwrap_or((out.ctx.pid(), tag));
        let slot = std::mem::replace(&mut self.parts[i].slot, Slot::Demand(0));
        self.parts[i].slot = match slot {
            Slot::Demand(d) => Slot::Demand(d + n),
            Slot::Queue(mut q) => {
                let mut left = n;
                let mut batch = Vec::new();
                let mut done_infos = Vec::new();
                while left > 0 || matches!(q.front(), Some(Queued::Info(_))) {
                    match q.pop_front() {
                        Some(Queued::Event(e)) => {
                            batch.push(e);
                            left -= 1;
                        }
                        Some(Queued::Info(id)) => {
                            out.deliver(pid, ptag, std::mem::take(&mut batch));
                            done_infos.push(id);
                        }
                        None => break,
                    }
                }
                out.deliver(pid, ptag, batch);
                for id in done_infos {
                    self.info_done(id, out);
                }
                if q.is_empty() {
                    Slot::Demand(left)
                } else {
                    Slot::Queue(q)
                }
            }
        };
        let already_sent = self.pending.min(n);
        self.pending -= already_sent;
        let demand = n - already_sent;
        self.waiting += demand;
        demand
    }

    fn dispatch(&mut self, events: Vec<E>, out: &Outlet<'_>) -> Vec<E> {
        let mut later = Vec::new();
        let n = self.parts.len();
        let mut iter = events.into_iter();
        for event in iter.by_ref() {
            if self.waiting == 0 {
                later.push(event);
                break;
            }
            let index = match &self.hash {
                None => {
                    let h = ergo_etf::phash2_range(&event.to_term(), n as u32);
                    h.map(|h| h as usize).filter(|i| *i < n)
                }
                Some(f) => match f(&event) {
                    None => continue,
                    Some(key) => match self.index_of(&key) {
                        Some(i) => Some(i),
                        None => {
                            let keys: Vec<Term> =
                                self.parts.iter().map(|p| p.key.clone()).collect();
                            tracing::error!(
                                "unknown partition {key} computed for GenStage event {}. The known partitions are {}. This event has been discarded.",
                                event.to_term(),
                                Term::List(keys)
                            );
                            None
                        }
                    },
                },
            };
            if let Some(i) = index {
                self.parts[i].batch.push(event);
                self.waiting -= 1;
            }
        }
        later.extend(iter);
        for part in &mut self.parts {
            if part.batch.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut part.batch);
            match &mut part.slot {
                Slot::Demand(d) => {
                    let d = *d;
                    let (now, rest) = if batch.len() <= d {
                        (batch, Vec::new())
                    } else {
                        let mut now = batch;
                        let rest = now.split_off(d);
                        (now, rest)
                    };
                    let left = d - now.len();
                    if let Some((pid, tag)) = part.consumer {
                        out.deliver(pid, tag, now);
                    }
                    part.slot = if rest.is_empty() {
                        Slot::Demand(left)
                    } else {
                        Slot::Queue(rest.into_iter().map(Queued::Event).collect())
                    };
                }
                Slot::Queue(q) => q.extend(batch.into_iter().map(Queued::Event)),
            }
        }
        later
    }

    fn info(&mut self, msg: Message, out: &Outlet<'_>) {
        let id = self.next_info;
        self.next_info += 1;
        let mut queued = 0;
        for part in &mut self.parts {
            if let Slot::Queue(q) = &mut part.slot {
                q.push_back(Queued::Info(id));
                queued += 1;
            }
        }
        if queued == 0 {
            out.to_self(msg);
        } else {
            self.infos.insert(id, (msg, queued));
        }
    }

    fn name(&self) -> &'static str {
        "Elixir.GenStage.PartitionDispatcher"
    }
}

impl std::fmt::Debug for Outlet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outlet({})", self.ctx.pid())
    }
}

impl std::fmt::Debug for DemandDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemandDispatcher")
            .field("demands", &self.demands)
            .field("pending", &self.pending)
            .finish()
    }
}

impl<E> std::fmt::Debug for BroadcastDispatcher<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastDispatcher")
            .field("consumers", &self.demands.len())
            .field("waiting", &self.waiting)
            .field("requested", &self.requested)
            .finish()
    }
}

impl<E> std::fmt::Debug for PartitionDispatcher<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&Term> = self.parts.iter().map(|p| &p.key).collect();
        f.debug_struct("PartitionDispatcher")
            .field("partitions", &keys)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}
