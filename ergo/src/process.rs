//! Processes: spawning, mailboxes, links, monitors and exit signals, with
//! the semantics of the Erlang reference manual's "Processes" chapter.
//!
//! A process is a tokio task running the future its function returns, under
//! a guard of ours that
//! - ends it when an exit signal kills it, wherever it is awaiting;
//! - turns a panic into an exit with reason `{panic, Message}`;
//! - and, once it has ended for any reason, unregisters it and sends its
//!   exit signal to every linked process and a `'DOWN'` message to every
//!   monitor.
//!
//! Exit signals follow Erlang's rules: `kill` sent with [`Context::exit`]
//! cannot be trapped and the target dies with `killed`; `normal` is ignored
//! by a process that does not trap exits (unless it sent it to itself); any
//! other reason kills a process that does not trap exits, and reaches one
//! that does as the message `{'EXIT', From, Reason}`.
//!
//! The mailbox is a queue the process drains a batch at a time; it allocates
//! nothing until the first message arrives, so an idle process is small.
//!
//! Scheduling is cooperative, as everywhere on tokio: a process runs on its
//! worker thread until it awaits. Erlang preempts a process after a budget
//! of work; here, a process that sends or casts in a long loop without
//! awaiting keeps its worker, and a process it has just spawned or woken
//! may wait for it there (tokio runs the task woken last on the same
//! worker next, and other workers cannot take it). Such a loop should call
//! `tokio::task::yield_now().await` now and then (every thousand messages
//! is plenty); the processes it feeds then run beside it on the other
//! workers.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref, Term, ToTerm};
use parking_lot::Mutex;
use sync_wrapper::SyncWrapper;

use crate::dist::wire::ProcId;
use crate::message::Message;
use crate::node::{Node, NodeInner};
use crate::reason::Reason;
use crate::small_map::SmallMap;

/// What a process is doing, as `process_info(Pid, status)` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Being run, or ready to run.
    Running,
    /// Waiting for a message (or anything else it awaits).
    Waiting,
    /// Ended; its exit notifications are being sent.
    Exiting,
}

const RUNNING: u8 = 0;
const WAITING: u8 = 1;
const EXITING: u8 = 2;

/// A monitor, seen from either end.
#[derive(Clone, Debug)]
pub(crate) struct MonitorEntry {
    pub(crate) reference: Ref,
    /// The other end: the watched process (in `monitors`) or the watcher (in
    /// `monitored_by`).
    pub(crate) other: Pid,
    /// What was monitored, as the `'DOWN'` message names it.
    pub(crate) object: Watched,
}

/// What a monitor watches: a pid, or a name registered on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Watched {
    Pid(Pid),
    /// A registered name and its node.
    Name(Atom, Atom),
}

impl Watched {
    /// How a `'DOWN'` message names it: the pid, or `{Name, Node}`.
    pub(crate) fn to_term(self) -> Term {
        match self {
            Watched::Pid(p) => Term::Pid(p),
            Watched::Name(n, node) => Term::tuple([Term::Atom(n), Term::Atom(node)]),
        }
    }

    /// How control messages name it: the pid, or the registered name.
    pub(crate) fn proc_term(self) -> Term {
        match self.proc_id() {
            ProcId::Pid(p) => Term::Pid(p),
            ProcId::Name(n) => Term::Atom(n),
        }
    }

    /// [`Watched::proc_term`] as control messages are written from.
    pub(crate) fn proc_id(self) -> ProcId {
        match self {
            Watched::Pid(p) => ProcId::Pid(p),
            Watched::Name(n, _) => ProcId::Name(n),
        }
    }
}

#[derive(Default)]
pub(crate) struct ProcState {
    pub(crate) alive: bool,
    pub(crate) exit_reason: Option<Reason>,
    pub(crate) links: SmallMap<Pid, ()>,
    /// Keyed by the monitor reference.
    pub(crate) monitors: SmallMap<Ref, MonitorEntry>,
    /// Keyed by the monitor reference.
    pub(crate) monitored_by: SmallMap<Ref, MonitorEntry>,
    pub(crate) name: Option<Atom>,
    pub(crate) group_leader: Option<Pid>,
    /// The process has aliases or node monitors for the distribution to
    /// drop when it ends.
    pub(crate) dist_subscribed: bool,
    /// Told the exit reason when the process has ended.
    pub(crate) exit_watchers: Vec<tokio::sync::oneshot::Sender<Reason>>,
    /// Set when everything the end of the process brings about is done:
    /// its name is free, it is out of the process table, its links and
    /// monitors have been told.
    pub(crate) finished: bool,
}

/// The queue of messages not yet taken by the process. Closed when the
/// process ends, under the same lock, so that nothing enters after.
#[derive(Default)]
struct Mailbox {
    queue: VecDeque<Message>,
    closed: bool,
}

/// A process's control block: what other processes and the node reach it
/// through.
///
/// Laid out in this order (`repr(C)`) so that what senders write and what
/// the process writes as it runs are far apart (the state in between), not
/// on the same cache lines: a busy sender and a busy receiver would
/// otherwise keep taking the lines from each other.
#[repr(C)]
pub(crate) struct Pcb {
    pub(crate) pid: Pid,
    /// What senders write.
    inbound: Inbound,
    kill: Mutex<Option<Reason>>,
    killed: AtomicBool,
    pub(crate) trap_exit: AtomicBool,
    pub(crate) state: Mutex<ProcState>,
    /// What the process itself writes as it runs.
    own: Own,
}

/// The side of a control block that senders write.
struct Inbound {
    mailbox: Mutex<Mailbox>,
    /// Set when a message is put in the mailbox, cleared when the process
    /// takes them, both under the mailbox lock: a receive that finds it clear
    /// skips the lock, and a sender that finds it set need not wake the
    /// process (the sender that set it did).
    pending: AtomicBool,
    /// The process task's waker, kept from its first poll until it ends:
    /// a task's waker does not change, so the process need not hand it over
    /// again on every poll, and waking does not use it up.
    waker: Mutex<Option<Waker>>,
}

/// The side of a control block that the process writes.
struct Own {
    /// How many messages the process has taken from `mailbox` into its
    /// context's inbox and not yet received: they are still in its queue as
    /// `process_info(Pid, message_queue_len)` counts it.
    inbox_len: AtomicUsize,
    status: AtomicU8,
    handled: AtomicU64,
}

impl Pcb {
    /// Records that this process monitors `other` (named by `object`).
    pub(crate) fn add_monitor(&self, reference: Ref, other: Pid, object: Watched) {
        self.state.lock().monitors.insert_new(
            reference,
            MonitorEntry {
                reference,
                other,
                object,
            },
        );
    }

    /// Records that `watcher` monitors this process, if it is still alive;
    /// returns whether it is.
    pub(crate) fn add_watcher(&self, reference: Ref, watcher: Pid, object: Watched) -> bool {
        let mut st = self.state.lock();
        if st.alive {
            st.monitored_by.insert_new(
                reference,
                MonitorEntry {
                    reference,
                    other: watcher,
                    object,
                },
            );
        }
        st.alive
    }

    pub(crate) fn new(pid: Pid, group_leader: Option<Pid>) -> Pcb {
        Pcb {
            pid,
            inbound: Inbound {
                mailbox: Mutex::new(Mailbox::default()),
                pending: AtomicBool::new(false),
                waker: Mutex::new(None),
            },
            own: Own {
                inbox_len: AtomicUsize::new(0),
                status: AtomicU8::new(RUNNING),
                handled: AtomicU64::new(0),
            },
            kill: Mutex::new(None),
            killed: AtomicBool::new(false),
            trap_exit: AtomicBool::new(false),
            state: Mutex::new(ProcState {
                alive: true,
                group_leader,
                ..ProcState::default()
            }),
        }
    }

    /// Puts a message in the mailbox and wakes the process. Returns `false`
    /// (dropping the message) when the process has ended.
    pub(crate) fn deliver(&self, msg: Message) -> bool {
        self.try_deliver(msg).is_ok()
    }

    /// Puts `msg` in the mailbox, or gives it back if the process has ended.
    pub(crate) fn try_deliver(&self, msg: Message) -> Result<(), Message> {
        let wake = {
            let mut mb = self.inbound.mailbox.lock();
            if mb.closed {
                return Err(msg);
            }
            mb.queue.push_back(msg);
            // `pending` changes only under the mailbox lock: a load and a
            // store will do, no read-modify-write.
            let was_pending = self.inbound.pending.load(Ordering::Relaxed);
            if !was_pending {
                self.inbound.pending.store(true, Ordering::Release);
            }
            !was_pending
        };
        if wake {
            self.wake();
        }
        Ok(())
    }

    /// Wakes the process's task (if it has been polled and not ended).
    fn wake(&self) {
        if let Some(w) = &*self.inbound.waker.lock() {
            w.wake_by_ref();
        }
    }

    /// Keeps `waker` as the one to wake the process with.
    fn keep_waker(&self, waker: &Waker) {
        *self.inbound.waker.lock() = Some(waker.clone());
    }

    /// `true` if `waker` wakes the same task as the one kept.
    fn keeps_waker(&self, waker: &Waker) -> bool {
        self.inbound
            .waker
            .lock()
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
    }

    /// Lets go of the task's waker once the process has ended.
    fn drop_waker(&self) {
        self.inbound.waker.lock().take();
    }

    /// Moves everything in the mailbox to the end of `inbox` (nothing,
    /// without locking, when nothing has come since the last time). The
    /// two queues' memory is kept: an empty inbox trades places with the
    /// mailbox's queue. Returns `false` when nothing came.
    fn drain_into(&self, inbox: &mut VecDeque<Message>) -> bool {
        if !self.inbound.pending.load(Ordering::Acquire) {
            return false;
        }
        let mut mb = self.inbound.mailbox.lock();
        self.inbound.pending.store(false, Ordering::Relaxed);
        if inbox.is_empty() {
            std::mem::swap(inbox, &mut mb.queue);
        } else {
            inbox.append(&mut mb.queue);
        }
        !inbox.is_empty()
    }

    /// The reason the process ended with, once it has.
    pub(crate) fn exit_reason(&self) -> Option<Reason> {
        self.state.lock().exit_reason.clone()
    }

    /// Resolves with the exit reason when the process has ended (at once if
    /// it already has): as late as a `'DOWN'` message, once its name is
    /// free and it is no longer alive.
    pub(crate) fn on_exit(&self) -> tokio::sync::oneshot::Receiver<Reason> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut st = self.state.lock();
        match (&st.exit_reason, st.finished) {
            (Some(r), true) => {
                let _ = tx.send(r.clone());
            }
            _ => st.exit_watchers.push(tx),
        }
        rx
    }

    /// Ends the process with `reason` the next time it is polled (a no-op
    /// when it is already ending).
    pub(crate) fn kill(&self, reason: Reason) {
        let mut k = self.kill.lock();
        if k.is_none() && !self.killed.load(Ordering::Relaxed) {
            *k = Some(reason);
            self.killed.store(true, Ordering::Release);
        }
        drop(k);
        self.wake();
    }

    fn take_kill(&self) -> Option<Reason> {
        if !self.killed.load(Ordering::Acquire) {
            return None;
        }
        self.kill.lock().take()
    }

    /// Applies an exit signal from `from` with `reason` as Erlang does.
    /// `direct` is true for `exit/2` (where `kill` cannot be trapped), false
    /// for a signal from a linked process that ended.
    pub(crate) fn exit_signal(&self, from: Pid, reason: Reason, direct: bool) {
        if direct && reason == Reason::Kill {
            self.kill(Reason::Killed);
            return;
        }
        if self.trap_exit.load(Ordering::Acquire) {
            self.deliver(Message::Exit { from, reason });
            return;
        }
        match reason {
            Reason::Normal if from != self.pid => {}
            reason => self.kill(reason),
        }
    }

    /// Messages not yet received: those in the mailbox and those the
    /// process has taken into its inbox but not read (a selective receive
    /// leaves the ones it skips there).
    pub(crate) fn message_queue_len(&self) -> usize {
        self.inbound.mailbox.lock().queue.len() + self.own.inbox_len.load(Ordering::Relaxed)
    }
}

/// How a process's function ends: `()` is `normal`; a [`Reason`] or an
/// `Err(Reason)` ends it with that reason.
pub trait IntoReason {
    /// The exit reason.
    fn into_reason(self) -> Reason;
}

impl IntoReason for () {
    fn into_reason(self) -> Reason {
        Reason::Normal
    }
}

impl IntoReason for Reason {
    fn into_reason(self) -> Reason {
        self
    }
}

impl IntoReason for Result<(), Reason> {
    fn into_reason(self) -> Reason {
        match self {
            Ok(()) => Reason::Normal,
            Err(r) => r,
        }
    }
}

/// Where a message goes: a pid, a registered name on this node, or
/// `{Name, Node}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A process.
    Pid(Pid),
    /// A name registered on this node.
    Name(Atom),
    /// A name registered on a node.
    NameOn(Atom, Atom),
}

impl From<Pid> for Dest {
    fn from(p: Pid) -> Dest {
        Dest::Pid(p)
    }
}

impl From<Atom> for Dest {
    fn from(a: Atom) -> Dest {
        Dest::Name(a)
    }
}

impl From<&str> for Dest {
    fn from(a: &str) -> Dest {
        Dest::Name(Atom::from(a))
    }
}

impl From<(Atom, Atom)> for Dest {
    fn from((name, node): (Atom, Atom)) -> Dest {
        Dest::NameOn(name, node)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Pid(p) => write!(f, "{p}"),
            Dest::Name(n) => write!(f, "{n}"),
            Dest::NameOn(n, node) => write!(f, "{{{n},{node}}}"),
        }
    }
}

/// Why a message could not be sent. A message to a pid that has exited is
/// dropped silently, as in Erlang; these errors are for destinations that
/// cannot be resolved at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No process is registered under this name (Erlang raises `badarg`).
    NotRegistered(Atom),
    /// The destination is on another node, and this node has no route to it.
    Unreachable(Atom),
    /// The message has no term form and so cannot leave this node.
    NotSendable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRegistered(n) => write!(f, "no process is registered as {n}"),
            SendError::Unreachable(n) => write!(f, "node {n} is not reachable from this node"),
            SendError::NotSendable => {
                write!(f, "the message has no term form and cannot leave this node")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// What can be monitored: a pid, a local registered name, or `{Name, Node}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorTarget {
    /// A process.
    Pid(Pid),
    /// A name registered on this node.
    Name(Atom),
    /// A name registered on a node.
    NameOn(Atom, Atom),
}

impl From<Pid> for MonitorTarget {
    fn from(p: Pid) -> MonitorTarget {
        MonitorTarget::Pid(p)
    }
}

impl From<Atom> for MonitorTarget {
    fn from(a: Atom) -> MonitorTarget {
        MonitorTarget::Name(a)
    }
}

impl From<&str> for MonitorTarget {
    fn from(a: &str) -> MonitorTarget {
        MonitorTarget::Name(Atom::from(a))
    }
}

impl From<(Atom, Atom)> for MonitorTarget {
    fn from((name, node): (Atom, Atom)) -> MonitorTarget {
        MonitorTarget::NameOn(name, node)
    }
}

impl From<Dest> for MonitorTarget {
    fn from(d: Dest) -> MonitorTarget {
        match d {
            Dest::Pid(p) => MonitorTarget::Pid(p),
            Dest::Name(n) => MonitorTarget::Name(n),
            Dest::NameOn(n, node) => MonitorTarget::NameOn(n, node),
        }
    }
}

/// What `process_info/1` tells about a process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub registered_name: Option<Atom>,
    /// What it is doing.
    pub status: Status,
    /// Messages it has not received yet (including those a selective
    /// receive passed over).
    pub message_queue_len: usize,
    /// Processes it is linked to.
    pub links: Vec<Pid>,
    /// Processes it monitors, with the monitor references.
    pub monitors: Vec<(Ref, Pid)>,
    /// Processes monitoring it.
    pub monitored_by: Vec<Pid>,
    /// Whether it traps exits.
    pub trap_exit: bool,
    /// Its group leader.
    pub group_leader: Option<Pid>,
    /// How many messages it has received.
    pub messages_handled: u64,
}

impl ProcessInfo {
    pub(crate) fn of(pcb: &Pcb) -> ProcessInfo {
        let st = pcb.state.lock();
        ProcessInfo {
            pid: pcb.pid,
            registered_name: st.name,
            status: match pcb.own.status.load(Ordering::Relaxed) {
                WAITING => Status::Waiting,
                EXITING => Status::Exiting,
                _ => Status::Running,
            },
            message_queue_len: pcb.message_queue_len(),
            links: st.links.iter().map(|(p, _)| *p).collect(),
            monitors: st.monitors.iter().map(|(r, m)| (*r, m.other)).collect(),
            monitored_by: st.monitored_by.iter().map(|(_, m)| m.other).collect(),
            trap_exit: pcb.trap_exit.load(Ordering::Relaxed),
            group_leader: st.group_leader,
            messages_handled: pcb.own.handled.load(Ordering::Relaxed),
        }
    }
}

/// A timer started with [`Context::send_after`] or [`Node::send_after`].
#[derive(Debug)]
pub struct TimerRef {
    handle: tokio::task::AbortHandle,
    fired: Arc<AtomicBool>,
    deadline: tokio::time::Instant,
    /// The destination when it is a process of this node: Erlang cancels
    /// such a timer when the process exits.
    dest: Option<(Node, Pid)>,
}

impl TimerRef {
    /// Cancels the timer. Returns the time that was left, or `None` when the
    /// message was already sent, or when its destination is a pid whose
    /// process has exited (Erlang cancels the timer then), as
    /// `erlang:cancel_timer/1` returns `false`.
    pub fn cancel(self) -> Option<Duration> {
        self.handle.abort();
        if self.fired.load(Ordering::Acquire) {
            return None;
        }
        if let Some((node, pid)) = &self.dest
            && !node.is_alive(*pid)
        {
            return None;
        }
        Some(
            self.deadline
                .saturating_duration_since(tokio::time::Instant::now()),
        )
    }
}

pub(crate) fn start_timer(node: &Node, dest: Dest, msg: Message, after: Duration) -> TimerRef {
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let runtime = node.runtime().clone();
    let node = node.clone();
    let dest_pid = match dest {
        Dest::Pid(p) if p.node == node.name() => Some((node.clone(), p)),
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + after;
    let handle = runtime
        .spawn(async move {
            tokio::time::sleep_until(deadline).await;
            flag.store(true, Ordering::Release);
            let _ = node.send_message(dest, msg);
        })
        .abort_handle();
    TimerRef {
        handle,
        fired,
        deadline,
        dest: dest_pid,
    }
}

/// The handle a process's code uses to act as that process: receive, send,
/// link, monitor, trap exits, spawn.
pub struct Context {
    pcb: Arc<Pcb>,
    node: Node,
    /// Messages taken from the mailbox and not yet received. Only reached
    /// through `&mut self`, which is what lets `Context` be `Sync` (so that
    /// `&ctx` may be held across an `.await` in a process's future).
    inbox: SyncWrapper<VecDeque<Message>>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("pid", &self.pcb.pid)
            .finish()
    }
}

impl Context {
    /// This process's pid (`self()`).
    pub fn pid(&self) -> Pid {
        self.pcb.pid
    }

    /// This process's control block.
    pub(crate) fn pcb(&self) -> &Arc<Pcb> {
        &self.pcb
    }

    /// The node this process runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn fill_inbox(&mut self) -> bool {
        let inbox = self.inbox.get_mut();
        if inbox.is_empty() {
            self.pcb.drain_into(inbox);
        }
        !inbox.is_empty()
    }

    fn took(&mut self, m: Message) -> Message {
        // Only the process itself counts, so a load and a store will do (no
        // read-modify-write).
        let handled = &self.pcb.own.handled;
        handled.store(handled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.sync_inbox_len();
        m
    }

    /// Publishes how many messages wait in the inbox, for
    /// `message_queue_len`.
    fn sync_inbox_len(&mut self) {
        let n = self.inbox.get_mut().len();
        self.pcb.own.inbox_len.store(n, Ordering::Relaxed);
    }

    /// The next message, waiting for one if the mailbox is empty.
    pub async fn receive(&mut self) -> Message {
        std::future::poll_fn(|cx| self.poll_receive(cx)).await
    }

    /// Polls for the next message. The process's task waker is registered
    /// by the process guard on every poll, so `Pending` here is always woken
    /// by the next delivery.
    pub fn poll_receive(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Message> {
        match self.try_receive() {
            Some(m) => Poll::Ready(m),
            None => {
                self.pcb.own.status.store(WAITING, Ordering::Relaxed);
                Poll::Pending
            }
        }
    }

    /// The next message if one is waiting.
    pub fn try_receive(&mut self) -> Option<Message> {
        if !self.fill_inbox() {
            return None;
        }
        let m = self.inbox.get_mut().pop_front()?;
        Some(self.took(m))
    }

    /// The next message, or `None` after `timeout` without one
    /// (`receive ... after Timeout`).
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Option<Message> {
        crate::deadline::within(timeout, &mut None, self.receive()).await
    }

    /// The first message, in arrival order, that `wanted` accepts; the others
    /// stay in the mailbox in their order (Erlang's selective receive).
    pub async fn receive_match(&mut self, mut wanted: impl FnMut(&Message) -> bool) -> Message {
        let mut checked = 0;
        std::future::poll_fn(|_cx| {
            loop {
                if checked == self.inbox.get_mut().len() {
                    // Append what has arrived since, keeping the order.
                    if !self.pcb.drain_into(self.inbox.get_mut()) {
                        self.pcb.own.status.store(WAITING, Ordering::Relaxed);
                        return Poll::Pending;
                    }
                    self.sync_inbox_len();
                }
                if wanted(&self.inbox.get_mut()[checked])
                    && let Some(m) = self.inbox.get_mut().remove(checked)
                {
                    return Poll::Ready(self.took(m));
                }
                checked += 1;
            }
        })
        .await
    }

    /// Like [`Context::receive_match`], giving up after `timeout`.
    pub async fn receive_match_timeout(
        &mut self,
        timeout: Duration,
        wanted: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        crate::deadline::within(timeout, &mut None, self.receive_match(wanted)).await
    }

    /// Sends `msg` (`To ! Msg`). It moves as a Rust value to a process of
    /// this node.
    pub fn send<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
    ) -> Result<(), SendError> {
        self.node
            .send_from(self.pcb.pid, to.into(), Message::new(msg))
    }

    /// Sends a message that has no term form (it can only reach this node).
    pub fn send_local<M: Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
    ) -> Result<(), SendError> {
        self.node
            .send_from(self.pcb.pid, to.into(), Message::local(msg))
    }

    /// Sends a prepared [`Message`].
    pub fn send_message(&self, to: impl Into<Dest>, msg: Message) -> Result<(), SendError> {
        self.node.send_from(self.pcb.pid, to.into(), msg)
    }

    /// Sends `msg` to `to` after `after` (`erlang:send_after/3`).
    pub fn send_after<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
        after: Duration,
    ) -> TimerRef {
        start_timer(&self.node, to.into(), Message::new(msg), after)
    }

    /// Links this process to `pid` (`link/1`); linking to itself, or to a
    /// process it is already linked to, does nothing.
    ///
    /// Linking to a process that does not exist is what `link/1` does with
    /// it: a process that traps exits gets the message
    /// `{'EXIT', Pid, noproc}` and `Ok(())`; one that does not trap exits
    /// gets `Err(Reason::NoProc)` (Erlang raises `noproc`): returning it with
    /// `?` ends the process with `noproc`, as the uncaught error would, and
    /// handling it keeps the process alive, as a `catch` would.
    pub fn link(&self, pid: Pid) -> Result<(), Reason> {
        self.node.inner().link(&self.pcb, pid)
    }

    /// Removes the link to `pid`, if any (`unlink/1`).
    pub fn unlink(&self, pid: Pid) {
        self.node.inner().unlink(&self.pcb, pid);
    }

    /// Monitors `target`; a `'DOWN'` message comes when it ends (at once,
    /// with reason `noproc`, if it does not exist).
    pub fn monitor(&self, target: impl Into<MonitorTarget>) -> Ref {
        self.node.inner().monitor(&self.pcb, target.into())
    }

    /// Removes a monitor (`demonitor/1`). Returns `false` when it was not
    /// active (it fired already, or never was this process's).
    pub fn demonitor(&self, reference: Ref) -> bool {
        self.node.inner().demonitor(&self.pcb, reference)
    }

    /// Removes a monitor and any `'DOWN'` message it already sent
    /// (`demonitor(Ref, [flush])`).
    pub fn demonitor_flush(&mut self, reference: Ref) -> bool {
        let was = self.demonitor(reference);
        if was {
            // It was still active: it has sent nothing.
            return true;
        }
        self.pcb.drain_into(self.inbox.get_mut());
        self.inbox
            .get_mut()
            .retain(|m| !matches!(m, Message::Down { reference: r, .. } if *r == reference));
        self.sync_inbox_len();
        was
    }

    /// Sets whether exit signals become `{'EXIT', From, Reason}` messages
    /// (`process_flag(trap_exit, Flag)`); returns the old setting.
    pub fn set_trap_exit(&self, trap: bool) -> bool {
        self.pcb.trap_exit.swap(trap, Ordering::AcqRel)
    }

    /// Whether this process traps exits.
    pub fn trap_exit(&self) -> bool {
        self.pcb.trap_exit.load(Ordering::Acquire)
    }

    /// Sends an exit signal with `reason` to `pid` (`exit/2`).
    ///
    /// A signal that ends this process itself (`exit(self(), Reason)`) takes
    /// effect at its next `.await`: where Erlang stops at once, Rust code
    /// runs on to the next point where the process can be stopped.
    pub fn exit(&self, pid: Pid, reason: Reason) {
        self.node.inner().exit_signal(self.pcb.pid, pid, reason);
    }

    /// Registers this process under `name` (`register/2`).
    pub fn register(&self, name: impl Into<Atom>) -> Result<(), RegisterError> {
        self.node.register(name.into(), self.pcb.pid)
    }

    /// Removes this process's registered name.
    pub fn unregister(&self) -> Option<Atom> {
        let name = self.pcb.state.lock().name?;
        self.node.unregister(name).ok()?;
        Some(name)
    }

    /// Spawns a process with the same group leader.
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReason,
    {
        self.node.spawn_opts(f, self.group_leader(), None)
    }

    /// Spawns a process linked to this one (`spawn_link/1`): the link exists
    /// before the new process runs.
    pub fn spawn_link<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReason,
    {
        self.node
            .spawn_opts(f, self.group_leader(), Some(Start::Link(&self.pcb)))
    }

    /// Spawns a process and monitors it (`spawn_monitor/1`).
    pub fn spawn_monitor<F, Fut>(&self, f: F) -> (Pid, Ref)
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReason,
    {
        let reference = self.node.make_ref();
        let pid = self.node.spawn_opts(
            f,
            self.group_leader(),
            Some(Start::Monitor(&self.pcb, reference)),
        );
        (pid, reference)
    }

    /// This process's group leader.
    pub fn group_leader(&self) -> Option<Pid> {
        self.pcb.state.lock().group_leader
    }

    /// Sets this process's group leader.
    pub fn set_group_leader(&self, leader: Pid) {
        self.pcb.state.lock().group_leader = Some(leader);
    }

    /// A new reference (`make_ref/0`).
    pub fn make_ref(&self) -> Ref {
        self.node.make_ref()
    }
}

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// Another process has the name.
    NameTaken(Atom),
    /// The process already has a name.
    AlreadyNamed(Atom),
    /// The process does not exist.
    NoProc,
    /// The name is not registered (for `unregister`).
    NotRegistered(Atom),
    /// The name is `undefined`, which `whereis/1` answers for "no process"
    /// and so cannot be registered (Erlang raises `badarg`).
    Undefined,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::NameTaken(n) => write!(f, "the name {n} is taken"),
            RegisterError::AlreadyNamed(n) => write!(f, "the process is already registered as {n}"),
            RegisterError::NoProc => write!(f, "the process does not exist"),
            RegisterError::NotRegistered(n) => write!(f, "no process is registered as {n}"),
            RegisterError::Undefined => write!(f, "the name undefined cannot be registered"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// How a new process is tied to its parent at birth.
pub(crate) enum Start<'a> {
    Link(&'a Arc<Pcb>),
    Monitor(&'a Arc<Pcb>, Ref),
    /// Asked for by a process on another node: linked to it, monitored by
    /// it (with this reference), or both.
    Remote {
        link: Option<Pid>,
        monitor: Option<(Pid, Ref)>,
    },
}

/// Runs a process: creates its context, polls its future under the guard,
/// and sends its exit notifications when it ends.
pub(crate) async fn run<F, Fut>(node: Node, pcb: Arc<Pcb>, f: F)
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoReason,
{
    let ctx = Context {
        pcb: pcb.clone(),
        node: node.clone(),
        inbox: SyncWrapper::new(VecDeque::new()),
    };
    let reason = {
        // A panic in the function itself (before its future exists) is an
        // exit like any other.
        match std::panic::catch_unwind(AssertUnwindSafe(move || f(ctx))) {
            Err(payload) => Reason::from_panic(&*payload),
            Ok(fut) => {
                let mut fut = std::pin::pin!(fut);
                // One timer for all the process's timed waits (see
                // `crate::deadline`): armed no later than the earliest
                // deadline a wait asked for, re-armed only when it fires.
                // Made on the first timed wait: most processes never have
                // one, and an idle process should stay small.
                let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
                let mut armed: Option<tokio::time::Instant> = None;
                // The guard is the task's own future, and a tokio task's
                // waker stays the same for its life: kept on the first poll.
                let mut waker_kept = false;
                let reason = std::future::poll_fn(|cx| {
                    if !waker_kept {
                        pcb.keep_waker(cx.waker());
                        waker_kept = true;
                    }
                    debug_assert!(
                        pcb.keeps_waker(cx.waker()),
                        "a process task's waker changed"
                    );
                    let mut fired =
                        armed.is_some() && timer.as_ref().is_some_and(|t| t.is_elapsed());
                    if fired {
                        armed = None;
                    }
                    loop {
                        if let Some(reason) = pcb.take_kill() {
                            return Poll::Ready(reason);
                        }
                        pcb.own.status.store(RUNNING, Ordering::Relaxed);
                        let saved = crate::deadline::enter(fired);
                        let held = crate::dist::conn::hold_begin();
                        let polled =
                            std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
                        crate::dist::conn::hold_end(held);
                        let wanted = crate::deadline::exit(saved);
                        match polled {
                            Ok(Poll::Ready(out)) => return Poll::Ready(out.into_reason()),
                            Ok(Poll::Pending) => {}
                            Err(payload) => return Poll::Ready(Reason::from_panic(&*payload)),
                        }
                        if let Some(at) = wanted
                            && armed.is_none_or(|a| a > at)
                        {
                            let t =
                                timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                            t.as_mut().reset(at);
                            armed = Some(at);
                            // Polled once to register this task's waker; after
                            // that a look at its state is enough.
                            if t.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                        } else if armed.is_none() || !timer.as_ref().is_some_and(|t| t.is_elapsed())
                        {
                            return Poll::Pending;
                        }
                        // The timer fired: poll the process again so that the
                        // waits past their deadline see it.
                        armed = None;
                        fired = true;
                    }
                })
                .await;
                pcb.state.lock().exit_reason = Some(reason.clone());
                reason
            }
        }
        // The process's future is dropped at the end of this block, before
        // anyone hears of its end; the reason is recorded first, so that a
        // caller whose reply handle goes with the future can tell why.
    };
    pcb.own.status.store(EXITING, Ordering::Relaxed);
    pcb.drop_waker();
    node.inner().finish(&pcb, reason);
}

impl NodeInner {
    /// Applies `exit(To, Reason)` sent by `from`.
    pub(crate) fn exit_signal(self: &Arc<Self>, from: Pid, to: Pid, reason: Reason) {
        if to.node != self.name {
            self.dist_signal(from, to, crate::dist::control::Signal::Exit2, reason);
            return;
        }
        if let Some(target) = self.lookup(to) {
            target.exit_signal(from, reason, true);
        }
    }

    pub(crate) fn link(self: &Arc<Self>, me: &Arc<Pcb>, pid: Pid) -> Result<(), Reason> {
        if pid == me.pid {
            return Ok(());
        }
        if pid.node != self.name {
            if !me.state.lock().links.insert_new(pid, ()) {
                return Ok(());
            }
            let sent = self.dist_send(pid.node, &crate::dist::control::link(me.pid, pid), None);
            if sent.is_err() && me.state.lock().links.remove(&pid).is_some() {
                // No way to the node: the link breaks at once, as Erlang
                // reports it.
                me.exit_signal(pid, Reason::NoConnection, false);
            }
            return Ok(());
        }
        // This side first: if the other process ends right after it accepts
        // the link, its exit finds the link here and signals us.
        {
            me.state.lock().links.insert_new(pid, ());
        }
        let linked = self.lookup(pid).is_some_and(|other| {
            let mut st = other.state.lock();
            if st.alive {
                st.links.insert_new(me.pid, ());
            }
            st.alive
        });
        if !linked {
            me.state.lock().links.remove(&pid);
            // As `link/1` does: a process that traps exits gets
            // `{'EXIT', Pid, noproc}` and the call succeeds; one that does
            // not gets the error (Erlang raises `noproc`), and lives on if it
            // handles it.
            if me.trap_exit.load(Ordering::Acquire) {
                me.deliver(Message::Exit {
                    from: pid,
                    reason: Reason::NoProc,
                });
                return Ok(());
            }
            return Err(Reason::NoProc);
        }
        Ok(())
    }

    pub(crate) fn unlink(self: &Arc<Self>, me: &Arc<Pcb>, pid: Pid) {
        let was = me.state.lock().links.remove(&pid).is_some();
        if pid.node != self.name {
            if was {
                static IDS: AtomicU64 = AtomicU64::new(1);
                let id = IDS.fetch_add(1, Ordering::Relaxed);
                let _ = self.dist_send(
                    pid.node,
                    &crate::dist::control::unlink_id(id, me.pid, pid),
                    None,
                );
            }
            return;
        }
        if let Some(other) = self.lookup(pid) {
            other.state.lock().links.remove(&me.pid);
        }
    }

    /// For a process or name on another node: the node, what the monitor
    /// watches, and the pid that stands for it (for a name, a pid of that
    /// node that stands for the process behind it, whose pid is not known
    /// here: only its node matters).
    fn remote_target(&self, target: MonitorTarget) -> Option<(Atom, Watched, Pid)> {
        match target {
            MonitorTarget::Pid(p) if p.node != self.name => Some((p.node, Watched::Pid(p), p)),
            MonitorTarget::NameOn(n, node) if node != self.name => {
                Some((node, Watched::Name(n, node), Pid::new(node, 0, 0, 0)))
            }
            _ => None,
        }
    }

    /// A remote monitor whose `MONITOR_P` could not be sent (no way to the
    /// node) fires at once with `noconnection`, as Erlang reports it.
    fn remote_monitor_unsent(me: &Pcb, reference: Ref, object: Watched) {
        if me.state.lock().monitors.remove(&reference).is_some() {
            me.deliver(Message::Down {
                reference,
                object: object.to_term(),
                reason: Reason::NoConnection,
            });
        }
    }

    pub(crate) fn monitor(self: &Arc<Self>, me: &Arc<Pcb>, target: MonitorTarget) -> Ref {
        let reference = self.make_ref();
        if let Some((node, object, other)) = self.remote_target(target) {
            me.add_monitor(reference, other, object);
            let control = crate::dist::control::monitor_p(me.pid, object.proc_id(), reference);
            if self.dist_send(node, control, None).is_err() {
                Self::remote_monitor_unsent(me, reference, object);
            }
            return reference;
        }
        let (pid, object) = match target {
            MonitorTarget::Pid(p) => (Some(p), Watched::Pid(p)),
            MonitorTarget::Name(n) => (self.whereis(n), Watched::Name(n, self.name)),
            MonitorTarget::NameOn(n, node) => (self.whereis(n), Watched::Name(n, node)),
        };
        // This side first, for the same reason as in `link`.
        let target = pid.and_then(|p| self.lookup(p));
        if let Some(other) = &target {
            me.add_monitor(reference, other.pid, object);
        }
        let watched = target.is_some_and(|other| other.add_watcher(reference, me.pid, object));
        if !watched {
            me.state.lock().monitors.remove(&reference);
            me.deliver(Message::Down {
                reference,
                object: object.to_term(),
                reason: Reason::NoProc,
            });
        }
        reference
    }

    /// A `gen_server` call from `me` to a process of another node: the
    /// monitor (as [`NodeInner::monitor`] takes it) and the request
    /// `{'$gen_call', {Me, Ref}, Request}` leave together, in one write.
    /// Gives the monitor's reference, or `None` when `dest` is not on
    /// another node (or this node is not distributed).
    pub(crate) fn remote_call(
        self: &Arc<Self>,
        me: &Arc<Pcb>,
        dest: Dest,
        request: &Term,
    ) -> Option<Ref> {
        use crate::dist::control;
        let (node, object, other) = self.remote_target(MonitorTarget::from(dest))?;
        self.dist.config.get()?;
        let reference = self.make_ref();
        me.add_monitor(reference, other, object);
        let monitor = control::monitor_p(me.pid, object.proc_id(), reference);
        let payload = Some(crate::dist::wire::Payload::Call {
            from: me.pid,
            tag: reference,
            request,
        });
        let sent = match dest {
            Dest::NameOn(name, _) => self.dist_send_frames(
                node,
                &[(monitor, None), (control::reg_send(me.pid, name), payload)],
            ),
            _ => self.dist_send_frames(
                node,
                &[
                    (monitor, None),
                    (control::send_sender(me.pid, other), payload),
                ],
            ),
        };
        if sent.is_err() {
            Self::remote_monitor_unsent(me, reference, object);
        }
        Some(reference)
    }

    pub(crate) fn demonitor(self: &Arc<Self>, me: &Arc<Pcb>, reference: Ref) -> bool {
        let entry = {
            let mut st = me.state.lock();
            match st.monitors.remove(&reference) {
                Some(entry) => entry,
                None => return false,
            }
        };
        if entry.other.node != self.name {
            self.remote_demonitor(me.pid, &entry);
            return true;
        }
        if let Some(other) = self.lookup(entry.other) {
            other.state.lock().monitored_by.remove(&reference);
        }
        true
    }

    fn remote_demonitor(self: &Arc<Self>, me: Pid, entry: &MonitorEntry) {
        let _ = self.dist_send_deferred(
            entry.other.node,
            crate::dist::control::demonitor_p(me, entry.object.proc_id(), entry.reference),
        );
    }

    /// Everything that happens when a process has ended.
    pub(crate) fn finish(self: &Arc<Self>, pcb: &Arc<Pcb>, reason: Reason) {
        let (links, monitors, monitored_by, name, dist_subscribed) = {
            let mut st = pcb.state.lock();
            st.alive = false;
            st.exit_reason = Some(reason.clone());
            (
                st.links.take_all(),
                st.monitors.take_all(),
                st.monitored_by.take_all(),
                st.name.take(),
                st.dist_subscribed,
            )
        };
        if let Some(name) = name {
            self.unregister_if(name, pcb.pid);
        }
        self.remove(pcb.pid);
        if dist_subscribed {
            self.dist.forget(pcb.pid);
        }
        if !reason.is_normal() {
            tracing::debug!(pid = %pcb.pid, %reason, "process exited");
        } else {
            tracing::trace!(pid = %pcb.pid, "process exited normally");
        }
        for (reference, m) in monitors {
            if m.other.node != self.name {
                self.remote_demonitor(pcb.pid, &m);
                continue;
            }
            if let Some(other) = self.lookup(m.other) {
                other.state.lock().monitored_by.remove(&reference);
            }
        }
        // Each notice is sent under the lock of the receiver's state, where
        // the monitor (or link) is found still there: a `demonitor` (or
        // `unlink`) that returns before is not followed by a notice, as
        // Erlang guarantees.
        for (_, m) in monitored_by {
            if m.other.node != self.name {
                // A watcher on another node: the notice names this process
                // as it was monitored (by pid or by registered name).
                let proc_ = m.object.proc_term();
                self.dist_signal(
                    pcb.pid,
                    m.other,
                    crate::dist::control::Signal::Down(proc_, m.reference),
                    reason.clone(),
                );
                continue;
            }
            if let Some(watcher) = self.lookup(m.other) {
                let mut st = watcher.state.lock();
                if st.monitors.remove(&m.reference).is_some() {
                    watcher.deliver(Message::Down {
                        reference: m.reference,
                        object: m.object.to_term(),
                        reason: reason.clone(),
                    });
                }
            }
        }
        for (pid, ()) in links {
            if pid.node != self.name {
                self.dist_signal(
                    pcb.pid,
                    pid,
                    crate::dist::control::Signal::Link,
                    reason.clone(),
                );
                continue;
            }
            if let Some(other) = self.lookup(pid) {
                let mut st = other.state.lock();
                if st.links.remove(&pcb.pid).is_some() {
                    other.exit_signal(pcb.pid, reason.clone(), false);
                }
            }
        }
        // Drop whatever is left in the mailbox now (not when the last handle
        // to the control block goes), and let nothing in after.
        let left = {
            let mut mb = pcb.inbound.mailbox.lock();
            mb.closed = true;
            std::mem::take(&mut mb.queue)
        };
        drop(left);
        // Last, those waiting for the end: by now it is no longer alive, its
        // name is free, and its links and monitors have been told, so what
        // they do next sees it gone (as after a `'DOWN'`).
        let watchers = {
            let mut st = pcb.state.lock();
            st.finished = true;
            std::mem::take(&mut st.exit_watchers)
        };
        for w in watchers {
            let _ = w.send(reason.clone());
        }
    }
}
