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
//! of work (reductions). Here a process that has taken 256 messages since
//! it last found its mailbox empty yields its worker, as `yield_now` does, so
//! a process whose mailbox never runs dry does not keep what else is queued
//! there from running. Sending counts for nothing: a process that sends or
//! casts in a long loop without awaiting keeps its worker, and a process
//! it has just spawned or woken may wait for it there (tokio runs the task
//! woken last on the same worker next, and other workers cannot take it).
//! Such a loop should call `tokio::task::yield_now().await` now and then
//! (every thousand messages is plenty); the processes it feeds then run
//! beside it on the other workers.
//!
//! # What lives here, and what it may touch
//!
//! - this file: the control block (mailbox, state, kill flag) and the task
//!   that runs a process and turns its end into signals;
//! - `context`: the [`Context`] a process acts through;
//! - `dest`: addresses, [`Dest`] as users name them and the node-explicit
//!   `Target` the runtime routes;
//! - `signal`: the one type of everything processes do to each other, and
//!   [`crate::node::Node`]'s route, which applies a signal to a process of
//!   this node or hands it to the distribution.
//!
//! This module is the only one that changes a process's links, monitors,
//! group leader and mailbox. Other subsystems act on processes by sending
//! signals, and the distribution only encodes and decodes them.

mod context;
mod dest;
pub(crate) mod signal;

pub use context::Context;
pub(crate) use dest::Target;
pub use dest::{Dest, LookupName, SendError};

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref};
use parking_lot::Mutex;

use crate::message::Message;
use crate::node::Node;
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

/// A process flag: exit signals arrive as messages
/// (`process_flag(trap_exit, true)`).
const TRAP_EXIT: u8 = 1;
/// A process flag: the process is a `gen_server` loop, which takes a
/// call by term (`{'$gen_call', {From, Tag}, Request}`) as its parts
/// ([`signal::CallRequest`]), so that none of its tuples is built.
const TAKES_CALLS: u8 = 2;

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
    pub(crate) object: Target,
}

/// What a process's lock guards: its life and its ties to others.
#[derive(Default)]
pub(crate) struct ProcState {
    /// Set once the process has ended.
    pub(crate) exit_reason: Option<Reason>,
    pub(crate) group_leader: Option<Pid>,
    /// Everything most processes never have, made on first use: a process
    /// that waits for messages is a control block and a task, nothing more.
    ties: Option<Box<Ties>>,
    pub(crate) alive: bool,
    /// The process has had links or monitors across nodes, aliases or
    /// node monitors: its end has more to clean up than its own state.
    pub(crate) remote: bool,
    /// Set when everything the end of the process brings about is done:
    /// its name is free, it is out of the process table, its links and
    /// monitors have been told.
    pub(crate) finished: bool,
}

/// A process's links, monitors, name and the rest of what only some
/// processes have. Boxed in [`ProcState`]: a supervised or monitored process
/// pays for it, a plain one does not.
#[derive(Default)]
pub(crate) struct Ties {
    pub(crate) links: SmallMap<Pid, ()>,
    /// Keyed by the monitor reference.
    pub(crate) monitors: SmallMap<Ref, MonitorEntry>,
    /// Keyed by the monitor reference.
    pub(crate) monitored_by: SmallMap<Ref, MonitorEntry>,
    /// Told the exit reason when the process has ended.
    pub(crate) exit_watchers: Vec<tokio::sync::oneshot::Sender<Reason>>,
    pub(crate) name: Option<Atom>,
    /// The connection (by its id) whose index this process was last put
    /// in: the usual case is one peer, put in once, not on every monitor.
    pub(crate) indexed_on: Option<std::num::NonZeroU64>,
    /// How connections read this process's messages from other nodes, if
    /// not as terms.
    pub(crate) remote_decoder: Option<RemoteDecoder>,
    /// The behaviour the process runs, set by the behaviour's loop.
    pub(crate) behaviour: Option<fn() -> Behaviour>,
}

impl ProcState {
    /// The process's ties, made now if it had none.
    pub(crate) fn ties(&mut self) -> &mut Ties {
        self.ties.get_or_insert_default()
    }

    /// The process's ties, if it has any.
    pub(crate) fn ties_ref(&self) -> Option<&Ties> {
        self.ties.as_deref()
    }

    /// The process's ties to change, if it has any (`None` for a removal
    /// from a process that has none: nothing to remove).
    pub(crate) fn ties_mut(&mut self) -> Option<&mut Ties> {
        self.ties.as_deref_mut()
    }

    /// Lets go of the ties the process had.
    pub(crate) fn take_ties(&mut self) -> Option<Box<Ties>> {
        self.ties.take()
    }

    /// Removes the link to `pid`; `Some` if there was one.
    pub(crate) fn remove_link(&mut self, pid: &Pid) -> Option<()> {
        self.ties_mut()?.links.remove(pid)
    }

    /// Removes this process's monitor `reference` of another process.
    pub(crate) fn remove_monitor(&mut self, reference: &Ref) -> Option<MonitorEntry> {
        self.ties_mut()?.monitors.remove(reference)
    }

    /// Removes another process's monitor `reference` of this one.
    pub(crate) fn remove_watcher(&mut self, reference: &Ref) -> Option<MonitorEntry> {
        self.ties_mut()?.monitored_by.remove(reference)
    }

    /// The name the process is registered under.
    pub(crate) fn name(&self) -> Option<Atom> {
        self.ties_ref()?.name
    }
}

/// The OTP behaviour a process runs and the Rust type running it, as
/// `process_info`'s `current_function`/`initial_call`, observer and the
/// dashboard show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// The behaviour: `gen_server`, `supervisor`, `application_master`…
    pub name: &'static str,
    /// The type that implements it (its Rust path).
    pub module: &'static str,
}

/// What senders reach under the mailbox lock: the queue of messages not
/// yet taken by the process (closed when the process ends, under the same
/// lock, so that nothing enters after), the task's waker, and the reason an
/// exit signal ends the process with.
#[derive(Default)]
struct Mailbox {
    queue: VecDeque<Message>,
    /// The process task's waker, kept from its first poll until it ends:
    /// a task's waker does not change, so the process need not hand it over
    /// again on every poll, and waking does not use it up.
    waker: Option<Waker>,
    /// The reason the process is to end with, once an exit signal has
    /// killed it (until its guard takes it).
    kill: Option<Reason>,
    closed: bool,
}

/// A process's control block: what other processes and the node reach it
/// through.
///
/// Laid out in this order (`repr(C)`) so that what senders write and what
/// the process writes as it runs are far apart (the state in between), not
/// on the same cache lines: a busy sender and a busy receiver would
/// otherwise keep taking the lines from each other.
///
/// 176 bytes, 192 with the `Arc`'s counts (a jemalloc size class): what
/// only some processes have is boxed in [`Ties`], and the waker and a kill's
/// reason share the mailbox's lock, which every sender takes anyway.
#[repr(C)]
pub(crate) struct Pcb {
    pub(crate) pid: Pid,
    /// What senders write.
    inbound: Inbound,
    pub(crate) state: Mutex<ProcState>,
    /// What the process itself writes as it runs.
    own: Own,
}

/// Reads the payload of a message that came from another node straight
/// into the message its process takes it as, without building the payload's
/// [`Term`](ergo_etf::Term); `None` when the payload is not of the shape it
/// reads (it is then decoded as a term, as for any other process). The
/// decoder may be left anywhere inside the payload. A process sets one with
/// `Context::set_remote_decoder`.
pub(crate) type RemoteDecoder = for<'a> fn(&mut ergo_etf::Decoder<'a>) -> Option<Message>;

/// The side of a control block that senders write.
struct Inbound {
    mailbox: Mutex<Mailbox>,
    /// Set when a message is put in the mailbox, cleared when the process
    /// takes them, both under the mailbox lock: a receive that finds it clear
    /// skips the lock, and a sender that finds it set need not wake the
    /// process (the sender that set it did).
    pending: AtomicBool,
    /// Set once the mailbox's `kill` holds the reason the process is to
    /// end with: its guard looks at this, not the lock, on every poll.
    killed: AtomicBool,
}

/// The side of a control block that the process writes.
struct Own {
    /// How many messages the process has taken from `mailbox` into its
    /// context's inbox and not yet received: they are still in its queue as
    /// `process_info(Pid, message_queue_len)` counts it.
    inbox_len: AtomicU32,
    status: AtomicU8,
    /// [`TRAP_EXIT`] and [`TAKES_CALLS`]. Only the process sets them.
    flags: AtomicU8,
    /// Messages taken since the process last found its mailbox empty or
    /// yielded (`Context::poll_receive`). Only the process touches it; it
    /// sits here, in room the fields around it leave, not in the context.
    taken: AtomicU16,
    handled: AtomicU64,
}

impl Pcb {
    /// Whether the process traps exits.
    #[inline]
    pub(crate) fn traps_exits(&self) -> bool {
        self.own.flags.load(Ordering::Acquire) & TRAP_EXIT != 0
    }

    /// Whether the process takes calls by term as their parts (see
    /// [`TAKES_CALLS`]).
    #[inline]
    pub(crate) fn takes_calls(&self) -> bool {
        self.own.flags.load(Ordering::Acquire) & TAKES_CALLS != 0
    }

    /// Sets or clears the process flag `flag`; returns whether it was set.
    fn set_flag(&self, flag: u8, on: bool) -> bool {
        let was = if on {
            self.own.flags.fetch_or(flag, Ordering::AcqRel)
        } else {
            self.own.flags.fetch_and(!flag, Ordering::AcqRel)
        };
        was & flag != 0
    }

    /// How connections read this process's messages from other nodes, if
    /// not as terms.
    pub(crate) fn remote_decoder(&self) -> Option<RemoteDecoder> {
        self.state.lock().ties_ref()?.remote_decoder
    }

    /// Sets how connections read this process's messages from other
    /// nodes; `false` if one was set already.
    pub(crate) fn set_remote_decoder(&self, decoder: RemoteDecoder) -> bool {
        let mut st = self.state.lock();
        let ties = st.ties();
        if ties.remote_decoder.is_some() {
            return false;
        }
        ties.remote_decoder = Some(decoder);
        true
    }

    /// Records that this process monitors `other` (named by `object`).
    pub(crate) fn add_monitor(&self, reference: Ref, other: Pid, object: Target) {
        let mut st = self.state.lock();
        st.remote |= other.node != self.pid.node;
        st.ties()
            .monitors
            .insert_new(reference, MonitorEntry::new(reference, other, object));
    }

    /// Records that this process monitors `other` (by pid), if it is still
    /// alive; returns whether it is.
    pub(crate) fn add_monitor_if_alive(&self, reference: Ref, other: Pid) -> bool {
        let mut st = self.state.lock();
        if st.alive {
            st.remote |= other.node != self.pid.node;
            st.ties().monitors.insert_new(
                reference,
                MonitorEntry::new(reference, other, Target::Pid(other)),
            );
        }
        st.alive
    }

    /// Records that `watcher` monitors this process, if it is still alive;
    /// returns whether it is.
    pub(crate) fn add_watcher(&self, reference: Ref, watcher: Pid, object: Target) -> bool {
        self.add_watcher_from(reference, watcher, object, None)
            .is_some()
    }

    /// [`Pcb::add_watcher`] for a watcher whose monitor came through the
    /// connection `conn` (its id): `None` if the process has ended, else
    /// whether the process was last put in that connection's index (and
    /// needs not be again).
    pub(crate) fn add_watcher_from(
        &self,
        reference: Ref,
        watcher: Pid,
        object: Target,
        conn: Option<u64>,
    ) -> Option<bool> {
        let mut st = self.state.lock();
        if !st.alive {
            return None;
        }
        st.remote |= watcher.node != self.pid.node;
        let ties = st.ties();
        ties.monitored_by
            .insert_new(reference, MonitorEntry::new(reference, watcher, object));
        Some(conn.is_some() && ties.indexed_on.map(std::num::NonZeroU64::get) == conn)
    }

    /// Whether this process is to be put in the index of the connection
    /// `conn` (an id no other connection has; it was not put there last).
    /// Marks the process as having something across nodes, for its end.
    pub(crate) fn first_index(&self, conn: u64) -> bool {
        let mut st = self.state.lock();
        // An ended process is past the clean-up that would take it out of
        // the index again.
        if !st.alive {
            return false;
        }
        st.remote = true;
        let ties = st.ties();
        if ties.indexed_on.map(std::num::NonZeroU64::get) == Some(conn) {
            return false;
        }
        ties.indexed_on = std::num::NonZeroU64::new(conn);
        true
    }

    /// Records a link to `other`, if this process is still alive; returns
    /// whether it is.
    pub(crate) fn add_link(&self, other: Pid) -> bool {
        let mut st = self.state.lock();
        if st.alive {
            st.remote |= other.node != self.pid.node;
            st.ties().links.insert_new(other, ());
        }
        st.alive
    }

    /// Drops whatever is left in the mailbox (now, not when the last handle
    /// to the control block goes) and lets nothing in after.
    pub(crate) fn close_mailbox(&self) {
        let left = {
            let mut mb = self.inbound.mailbox.lock();
            mb.closed = true;
            std::mem::take(&mut mb.queue)
        };
        drop(left);
    }

    pub(crate) fn new(pid: Pid, group_leader: Option<Pid>) -> Pcb {
        Pcb {
            pid,
            inbound: Inbound {
                mailbox: Mutex::new(Mailbox::default()),
                pending: AtomicBool::new(false),
                killed: AtomicBool::new(false),
            },
            own: Own {
                inbox_len: AtomicU32::new(0),
                status: AtomicU8::new(RUNNING),
                flags: AtomicU8::new(0),
                taken: AtomicU16::new(0),
                handled: AtomicU64::new(0),
            },
            state: Mutex::new(ProcState {
                alive: true,
                group_leader,
                ..ProcState::default()
            }),
        }
    }

    /// Puts a message in the mailbox and wakes the process. Returns `false`
    /// (dropping the message) when the process has ended.
    #[inline(always)]
    pub(crate) fn deliver(&self, msg: Message) -> bool {
        let mut refused = None;
        self.try_deliver(msg, &mut refused)
    }

    /// Puts a message in the mailbox and wakes the process; `false` when
    /// the process has ended, with the message left in `refused` for the
    /// caller to drop once it holds no lock. (Not returned: a result the
    /// size of a message is copied out on every delivery.)
    ///
    /// Inlined, with [`Pcb::deliver`], into every sender: called, it took
    /// the message as a copy on the caller's stack, which the caller had
    /// just written in 8-byte stores and it read back in 16-byte loads, a
    /// stall on every delivery (8-10 ns of a local call, alternated).
    #[inline(always)]
    pub(crate) fn try_deliver(&self, msg: Message, refused: &mut Option<Message>) -> bool {
        let mut mb = self.inbound.mailbox.lock();
        if mb.closed {
            *refused = Some(msg);
            return false;
        }
        mb.queue.push_back(msg);
        // `pending` changes only under the mailbox lock: a load and a
        // store will do, no read-modify-write.
        if self.inbound.pending.load(Ordering::Relaxed) {
            return true;
        }
        self.inbound.pending.store(true, Ordering::Release);
        // Woken by reference, under the lock that keeps the waker in place:
        // a clone to wake after the lock is one more atomic operation on
        // the task's counts and a drop (8-16 ns of a local call,
        // alternated). Waking only schedules the task (tokio never
        // polls it here, and the waker kept holds a count, so no future is
        // dropped here either); at most it unparks an idle worker, and only
        // the sender that found the mailbox without pending messages wakes.
        if let Some(w) = &mb.waker {
            w.wake_by_ref();
        }
        true
    }

    /// Keeps `waker` as the one to wake the process with.
    fn keep_waker(&self, waker: &Waker) {
        self.inbound.mailbox.lock().waker = Some(waker.clone());
    }

    /// `true` if `waker` wakes the same task as the one kept.
    fn keeps_waker(&self, waker: &Waker) -> bool {
        self.inbound
            .mailbox
            .lock()
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
    }

    /// Lets go of the task's waker once the process has ended.
    fn drop_waker(&self) {
        let waker = self.inbound.mailbox.lock().waker.take();
        drop(waker);
    }

    /// Moves everything in the mailbox to the end of `inbox` (nothing,
    /// without locking, when nothing has come since the last time). The
    /// two queues' memory is kept: an empty inbox trades places with the
    /// mailbox's queue. Returns `false` when nothing came.
    ///
    /// The look at `pending` is inlined into the receive: a process looks
    /// once more after the last message it takes before it waits, and a
    /// call for that look took more than the look.
    #[inline(always)]
    fn drain_into(&self, inbox: &mut VecDeque<Message>) -> bool {
        if !self.inbound.pending.load(Ordering::Acquire) {
            return false;
        }
        self.drain_pending(inbox)
    }

    /// [`Pcb::drain_into`] once something has come.
    #[inline(never)]
    fn drain_pending(&self, inbox: &mut VecDeque<Message>) -> bool {
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
            _ => st.ties().exit_watchers.push(tx),
        }
        rx
    }

    /// Ends the process with `reason` the next time it is polled (a no-op
    /// when it is already ending).
    pub(crate) fn kill(&self, reason: Reason) {
        let waker = {
            let mut mb = self.inbound.mailbox.lock();
            if mb.kill.is_none() && !self.inbound.killed.load(Ordering::Relaxed) {
                mb.kill = Some(reason);
                self.inbound.killed.store(true, Ordering::Release);
            }
            mb.waker.clone()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn take_kill(&self) -> Option<Reason> {
        if !self.inbound.killed.load(Ordering::Acquire) {
            return None;
        }
        self.inbound.mailbox.lock().kill.take()
    }

    /// Applies an exit signal from `from` with `reason` as Erlang does.
    /// `direct` is true for `exit/2` (where `kill` cannot be trapped), false
    /// for a signal from a linked process that ended.
    pub(crate) fn exit_signal(&self, from: Pid, reason: Reason, direct: bool) {
        if direct && reason == Reason::Kill {
            self.kill(Reason::Killed);
            return;
        }
        if self.traps_exits() {
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
        self.inbound.mailbox.lock().queue.len()
            + self.own.inbox_len.load(Ordering::Relaxed) as usize
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
    /// The behaviour it runs, if it runs one.
    pub behaviour: Option<Behaviour>,
}

impl ProcessInfo {
    pub(crate) fn of(pcb: &Pcb) -> ProcessInfo {
        let st = pcb.state.lock();
        let ties = st.ties_ref();
        ProcessInfo {
            pid: pcb.pid,
            registered_name: st.name(),
            status: match pcb.own.status.load(Ordering::Relaxed) {
                WAITING => Status::Waiting,
                EXITING => Status::Exiting,
                _ => Status::Running,
            },
            message_queue_len: pcb.message_queue_len(),
            links: ties.map_or_else(Vec::new, |t| t.links.iter().map(|(p, _)| *p).collect()),
            monitors: ties.map_or_else(Vec::new, |t| {
                t.monitors.iter().map(|(r, m)| (*r, m.other)).collect()
            }),
            monitored_by: ties.map_or_else(Vec::new, |t| {
                t.monitored_by.iter().map(|(_, m)| m.other).collect()
            }),
            trap_exit: pcb.own.flags.load(Ordering::Relaxed) & TRAP_EXIT != 0,
            group_leader: st.group_leader,
            messages_handled: pcb.own.handled.load(Ordering::Relaxed),
            behaviour: ties.and_then(|t| t.behaviour).map(|f| f()),
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

/// What the guard around a process's future keeps between polls. Kept
/// small, and reached through one reference: it is part of every
/// process's task.
struct Guard {
    /// One timer for all the process's timed waits (see `crate::deadline`):
    /// armed no later than the earliest deadline a wait asked for, re-armed
    /// only when it fires. Made on the first timed wait: most processes
    /// never have one, and an idle process should stay small.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// The timer is set (for its `deadline()`) and has not fired yet.
    armed: bool,
    /// The guard is the task's own future, and a tokio task's waker stays
    /// the same for its life: kept on the first poll.
    waker_kept: bool,
    /// The connection the process sent to while it was busy: the process
    /// is not run again until it is not.
    suspended: Option<Arc<crate::dist::conn::Conn>>,
}

impl Guard {
    /// Polls the process's future `fut`: its end (returned, panicked, or
    /// killed) as its exit reason.
    fn poll<F: Future>(
        &mut self,
        pcb: &Pcb,
        node_multi_thread: bool,
        mut fut: std::pin::Pin<&mut F>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Reason>
    where
        F::Output: IntoReason,
    {
        if !self.waker_kept {
            pcb.keep_waker(cx.waker());
            self.waker_kept = true;
        }
        debug_assert!(
            pcb.keeps_waker(cx.waker()),
            "a process task's waker changed"
        );
        let mut fired = self.armed && self.timer.as_ref().is_some_and(|t| t.is_elapsed());
        if fired {
            self.armed = false;
        }
        loop {
            if let Some(reason) = pcb.take_kill() {
                return Poll::Ready(reason);
            }
            // Suspended after sending to a busy connection: not run again
            // until it is not busy (an exit signal still ends the process
            // meanwhile).
            if let Some(conn) = &self.suspended {
                if conn.wait_unbusy(cx.waker()) {
                    return Poll::Pending;
                }
                self.suspended = None;
            }
            pcb.own.status.store(RUNNING, Ordering::Relaxed);
            let saved = crate::deadline::enter(fired, node_multi_thread);
            let held = crate::dist::conn::hold_begin();
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            self.suspended = crate::dist::conn::hold_end(held);
            let wanted = crate::deadline::exit(saved);
            match polled {
                Ok(Poll::Ready(out)) => return Poll::Ready(out.into_reason()),
                Ok(Poll::Pending) => {}
                Err(payload) => return Poll::Ready(Reason::from_panic(&*payload)),
            }
            let later = |t: &std::pin::Pin<Box<tokio::time::Sleep>>, at| t.deadline() > at;
            if let Some(at) = wanted
                && (!self.armed || self.timer.as_ref().is_none_or(|t| later(t, at)))
            {
                let t = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                t.as_mut().reset(at);
                self.armed = true;
                // Polled once to register this task's waker (outside tokio's
                // task budget, which would otherwise answer `Pending`
                // without registering it); after that a look at its state
                // is enough.
                if std::pin::pin!(tokio::task::unconstrained(t.as_mut()))
                    .poll(cx)
                    .is_pending()
                {
                    return Poll::Pending;
                }
            } else {
                // An armed timer that fires from now on (even one that
                // fired during this poll) wakes the task, and the next poll
                // sees it fired.
                return Poll::Pending;
            }
            // The timer fired as it was set: poll the process again so
            // that the waits past their deadline see it.
            self.armed = false;
            fired = true;
        }
    }
}

pin_project_lite::pin_project! {
    /// The future a process's task runs: creates the process's context and
    /// calls its function on the first poll, polls the function's future
    /// under the guard, and sends the exit notifications when it ends.
    ///
    /// Written out rather than as an `async fn`: the compiler's layout of
    /// an `async fn` kept the function's future twice (once as returned,
    /// once pinned) and each of its locals apart, 264 bytes around an
    /// 80-byte future where this is 128, and tokio's task cell (128-byte
    /// aligned on x86-64) shrinks from 384 to 256 bytes with it.
    pub(crate) struct Run<F, Fut> {
        node: Node,
        pcb: Arc<Pcb>,
        guard: Guard,
        #[pin]
        stage: Stage<F, Fut>,
    }
}

pin_project_lite::pin_project! {
    /// Where a process's task is in its life.
    #[project = StageProj]
    #[project_replace = StageOwned]
    enum Stage<F, Fut> {
        /// Not polled yet: the function is still to be called.
        Start { f: F },
        /// The function's future.
        Running { #[pin] fut: Fut },
        /// Ended and notified.
        Done,
    }
}

/// The task that runs a process with function `f`.
pub(crate) fn run<F, Fut>(node: Node, pcb: Arc<Pcb>, f: F) -> Run<F, Fut>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoReason,
{
    Run {
        guard: Guard {
            timer: None,
            armed: false,
            waker_kept: false,
            suspended: None,
        },
        stage: Stage::Start { f },
        node,
        pcb,
    }
}

impl<F, Fut> Future for Run<F, Fut>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future,
    Fut::Output: IntoReason,
{
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let reason = loop {
            match this.stage.as_mut().project() {
                StageProj::Start { .. } => {
                    let StageOwned::Start { f } = this.stage.as_mut().project_replace(Stage::Done)
                    else {
                        unreachable!("the stage was Start")
                    };
                    let ctx = Context::new(this.pcb.clone(), this.node.clone());
                    // A panic in the function itself (before its future
                    // exists) is an exit like any other.
                    match std::panic::catch_unwind(AssertUnwindSafe(move || f(ctx))) {
                        Ok(fut) => this.stage.set(Stage::Running { fut }),
                        Err(payload) => break Reason::from_panic(&*payload),
                    }
                }
                StageProj::Running { fut } => {
                    match this
                        .guard
                        .poll(this.pcb, this.node.inner().multi_thread, fut, cx)
                    {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(reason) => {
                            this.pcb.state.lock().exit_reason = Some(reason.clone());
                            // The process's future is dropped here, before
                            // anyone hears of its end; the reason is recorded
                            // first, so that a caller whose reply handle goes
                            // with the future can tell why.
                            this.stage.set(Stage::Done);
                            break reason;
                        }
                    }
                }
                StageProj::Done => return Poll::Ready(()),
            }
        };
        let pcb = this.pcb;
        pcb.own.status.store(EXITING, Ordering::Relaxed);
        pcb.drop_waker();
        this.node.inner().finish(pcb, reason);
        Poll::Ready(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod size_tests {
    //! What every process costs in memory, kept from growing by accident:
    //! the control block and the task's future each sit just inside an
    //! allocation size class (jemalloc's 192-byte class for the block with
    //! its `Arc`'s counts; tokio's task cell, 128-byte aligned on x86-64,
    //! at 256 bytes while its future is at most 152: 104 bytes of the cell
    //! are tokio's own).

    #[test]
    fn a_control_block_fits_the_192_byte_size_class() {
        // As allocated: behind an `Arc`'s two counts.
        let size = std::mem::size_of::<super::Pcb>() + 2 * std::mem::size_of::<usize>();
        assert!(
            size <= 192,
            "the control block grew to {size} bytes with its counts"
        );
    }

    #[tokio::test]
    async fn a_plain_process_task_future_leaves_its_task_cell_at_256_bytes() {
        let node = crate::Node::builder("size@localhost").start().unwrap();
        let pcb = std::sync::Arc::new(super::Pcb::new(node.system_pid(), None));
        // The process the spawn benchmark starts: one that waits for a
        // message.
        let fut = super::run(node.clone(), pcb, |mut ctx: crate::Context| async move {
            std::hint::black_box(ctx.receive().await);
        });
        let size = std::mem::size_of_val(&fut);
        assert!(
            size <= 152,
            "a waiting process's task future grew to {size} bytes"
        );
    }
}
