//! The process context: what a process's code acts through.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref, ToTerm};
use sync_wrapper::SyncWrapper;

use crate::message::Message;
use crate::node::Node;
use crate::process::signal::{Routed, Signal, next_unlink_id};
use crate::process::{
    Dest, IntoReason, Pcb, RUNNING, RegisterError, SendError, Start, Target, TimerRef, WAITING,
    start_timer,
};
use crate::reason::Reason;

/// Messages a process takes without waiting before it yields its worker.
const SLICE: u16 = 256;

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

    /// The name this process is registered under, if any.
    pub fn registered_name(&self) -> Option<Atom> {
        self.pcb.state.lock().name()
    }

    /// Names the behaviour this process runs (for `process_info`, observer
    /// and the dashboard). The behaviours' own loops call it.
    pub(crate) fn set_behaviour(&self, behaviour: fn() -> crate::process::Behaviour) {
        self.pcb.state.lock().ties().behaviour = Some(behaviour);
    }

    /// Has connections read this process's messages from other nodes with
    /// `decoder` (the first one set stays).
    pub(crate) fn set_remote_decoder(&self, decoder: crate::process::RemoteDecoder) {
        if self.pcb.set_remote_decoder(decoder) {
            self.node
                .inner()
                .remote_decoders
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The node this process runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    pub(crate) fn fill_inbox(&mut self) -> bool {
        let inbox = self.inbox.get_mut();
        if inbox.is_empty() {
            self.pcb.drain_into(inbox);
        }
        !inbox.is_empty()
    }

    fn took(&mut self, m: Message) -> Message {
        // Only the process itself counts, so a load and a store will do (no
        // read-modify-write).
        let own = &self.pcb.own;
        own.handled
            .store(own.handled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        own.taken.store(
            own.taken.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        self.sync_inbox_len();
        m
    }

    /// Publishes how many messages wait in the inbox, for
    /// `message_queue_len`.
    fn sync_inbox_len(&mut self) {
        // Saturated: a count past four billion is not one anyone reads.
        let n = u32::try_from(self.inbox.get_mut().len()).unwrap_or(u32::MAX);
        self.pcb.own.inbox_len.store(n, Ordering::Relaxed);
    }

    /// The next message, waiting for one if the mailbox is empty.
    pub fn receive(&mut self) -> impl Future<Output = Message> + Send + '_ {
        // A `poll_fn` rather than an `async fn` around one: each poll of
        // the latter went through two state machines.
        std::future::poll_fn(move |cx| self.poll_receive(cx))
    }

    /// Polls for the next message. The process guard keeps the task's waker
    /// from its first poll, so a `Pending` for an empty mailbox is woken by
    /// the next delivery.
    ///
    /// A process that has taken [`SLICE`] (256) messages since it last
    /// found its mailbox empty yields its worker: `Pending`, woken again
    /// once what else is queued on the worker has run, as Erlang preempts a
    /// process whose reductions run out. A process whose mailbox never runs
    /// dry then does not keep the other processes and tasks there from
    /// their turn. (Waiting on anything else, a call's reply or a timer,
    /// does not start the count again; messages a `gen_server` reads from
    /// its socket are not counted. A process that polls something else
    /// beside its mailbox and finds it ready carries on through the yield,
    /// as after any spurious wake.) Timed receives take the yield for what
    /// it is, not for a wait: `after 0` still gets a message waiting.
    #[inline]
    pub fn poll_receive(&mut self, cx: &mut TaskContext<'_>) -> Poll<Message> {
        if self.must_yield(cx) {
            return Poll::Pending;
        }
        match self.try_receive() {
            Some(m) => Poll::Ready(m),
            None => {
                self.waits();
                Poll::Pending
            }
        }
    }

    /// `true`, with the task's wake arranged, once the process has taken
    /// [`SLICE`] messages since its mailbox was last empty: it then yields
    /// its worker, to be polled again once everything else queued there
    /// has run, as after `tokio::task::yield_now`.
    fn must_yield(&mut self, cx: &mut TaskContext<'_>) -> bool {
        if self.pcb.own.taken.load(Ordering::Relaxed) < SLICE {
            return false;
        }
        self.yield_now(cx);
        true
    }

    #[cold]
    #[inline(never)]
    fn yield_now(&mut self, cx: &mut TaskContext<'_>) {
        self.pcb.own.taken.store(0, Ordering::Relaxed);
        // The timed waits around this receive take the `Pending` for a
        // yield, not a wait (`after 0` still gets the message).
        crate::deadline::yielded();
        // Polled once and let go: the wake is arranged by then.
        let yielded = std::pin::pin!(tokio::task::yield_now()).poll(cx);
        debug_assert!(yielded.is_pending(), "a first poll of yield_now waits");
    }

    /// Notes that the process waits for a message: it is `waiting`, and
    /// its slice starts again.
    fn waits(&self) {
        self.pcb.own.taken.store(0, Ordering::Relaxed);
        self.pcb.own.status.store(WAITING, Ordering::Relaxed);
    }

    /// Marks the process running again after [`Context::poll_receive`]
    /// found nothing but something else the process waits on gave it work.
    pub(crate) fn mark_running(&self) {
        self.pcb.own.status.store(RUNNING, Ordering::Relaxed);
    }

    /// The next message if one is waiting.
    #[inline]
    pub fn try_receive(&mut self) -> Option<Message> {
        if !self.fill_inbox() {
            // Found empty: the slice starts again (`Context::poll_receive`).
            self.pcb.own.taken.store(0, Ordering::Relaxed);
            return None;
        }
        let m = self.inbox.get_mut().pop_front()?;
        Some(self.took(m))
    }

    /// The next message, or `None` after `timeout` without one
    /// (`receive ... after Timeout`).
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Option<Message> {
        crate::deadline::within(timeout, self.receive()).await
    }

    /// The first message, in arrival order, that `wanted` accepts; the others
    /// stay in the mailbox in their order (Erlang's selective receive). It
    /// counts toward yielding the worker as [`Context::poll_receive`] says.
    pub async fn receive_match(&mut self, mut wanted: impl FnMut(&Message) -> bool) -> Message {
        let mut checked = 0;
        std::future::poll_fn(|cx| {
            // Carries on where it left off on the next poll.
            if self.must_yield(cx) {
                return Poll::Pending;
            }
            loop {
                if checked == self.inbox.get_mut().len() {
                    // Append what has arrived since, keeping the order.
                    if !self.pcb.drain_into(self.inbox.get_mut()) {
                        self.waits();
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

    /// The first message, in arrival order, that `wanted` accepts, if one
    /// is in the mailbox now (`receive ... after 0`); the others stay in
    /// their order.
    pub fn try_receive_match(
        &mut self,
        mut wanted: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        self.pcb.drain_into(self.inbox.get_mut());
        let i = self.inbox.get_mut().iter().position(&mut wanted)?;
        let m = self.inbox.get_mut().remove(i)?;
        Some(self.took(m))
    }

    /// Like [`Context::receive_match`], giving up after `timeout`.
    pub async fn receive_match_timeout(
        &mut self,
        timeout: Duration,
        wanted: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        crate::deadline::within(timeout, self.receive_match(wanted)).await
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

    /// Sends `msg` unless `to` is on a node whose connection is busy
    /// (`erlang:send_nosuspend/2`): `Ok(false)`, with nothing sent, when
    /// it is. [`Context::send`] to a busy connection sends, and then
    /// suspends this process until the connection is no longer busy.
    pub fn send_nosuspend<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
    ) -> Result<bool, SendError> {
        let to = to.into();
        let node = to.target(self.node.name()).node();
        if node != self.node.name()
            && let Some(conn) = self.node.inner().dist.conns.read().get(&node)
            && conn.is_busy()
        {
            return Ok(false);
        }
        crate::dist::conn::without_suspending(|| self.send(to, msg)).map(|()| true)
    }

    /// Sends `msg` only if `to` is on this node or on a node connected
    /// already (`erlang:send(Dest, Msg, [noconnect])`): `Ok(false)`, with
    /// nothing sent and no connection attempted, otherwise.
    pub fn send_noconnect<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
    ) -> Result<bool, SendError> {
        let to = to.into();
        let node = to.target(self.node.name()).node();
        if node != self.node.name()
            && !self
                .node
                .inner()
                .dist
                .conns
                .read()
                .get(&node)
                .is_some_and(|c| c.is_up())
        {
            return Ok(false);
        }
        self.send(to, msg).map(|()| true)
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
        let me = &self.pcb;
        if pid == me.pid || !me.add_link(pid) {
            return Ok(());
        }
        match self.node.inner().route(Signal::Link {
            from: me.pid,
            to: pid,
        }) {
            Routed::Done => Ok(()),
            Routed::Unreachable => {
                // No way to the node: the link breaks at once, as Erlang
                // reports it.
                if me.state.lock().remove_link(&pid).is_some() {
                    me.exit_signal(pid, Reason::NoConnection, false);
                }
                Ok(())
            }
            Routed::NoProc => {
                me.state.lock().remove_link(&pid);
                // As `link/1` does: a process that traps exits gets
                // `{'EXIT', Pid, noproc}` and the call succeeds; one that
                // does not gets the error (Erlang raises `noproc`), and
                // lives on if it handles it.
                if me.traps_exits() {
                    me.deliver(Message::Exit {
                        from: pid,
                        reason: Reason::NoProc,
                    });
                    return Ok(());
                }
                Err(Reason::NoProc)
            }
        }
    }

    /// Removes the link to `pid`, if any (`unlink/1`).
    pub fn unlink(&self, pid: Pid) {
        if self.pcb.state.lock().remove_link(&pid).is_none() {
            return;
        }
        self.node.inner().route(Signal::Unlink {
            id: next_unlink_id(),
            from: self.pcb.pid,
            to: pid,
        });
    }

    /// Monitors `target` (a pid, a name registered on this node, or
    /// `{Name, Node}`); a `'DOWN'` message comes when it ends (at once,
    /// with reason `noproc`, if it does not exist).
    pub fn monitor(&self, target: impl Into<Dest>) -> Ref {
        let inner = self.node.inner();
        let reference = inner.make_ref();
        let object = target.into().target(inner.name);
        let me = &self.pcb;
        // The process watched: a pid, a local name resolved now, or for a
        // name on another node a pid that stands for that node (only its
        // node matters).
        let other = match object {
            Target::Pid(p) => Some(p),
            Target::Name(n, node) if node == inner.name => inner.whereis(n),
            Target::Name(_, node) => Some(Pid::new(node, 0, 0, 0)),
        };
        let routed = match other {
            Some(other) => {
                // This side first: if the other process ends right after it
                // accepts the monitor, its `'DOWN'` finds the entry here.
                me.add_monitor(reference, other, object);
                let target = match object {
                    Target::Name(_, node) if node == inner.name => Target::Pid(other),
                    t => t,
                };
                inner.route(Signal::Monitor {
                    from: me.pid,
                    target,
                    reference,
                })
            }
            None => Routed::NoProc,
        };
        let reason = match routed {
            Routed::Done => return reference,
            Routed::NoProc => Reason::NoProc,
            Routed::Unreachable => Reason::NoConnection,
        };
        if other.is_none() || me.state.lock().remove_monitor(&reference).is_some() {
            me.deliver(Message::down(reference, object.to_term(), reason));
        }
        reference
    }

    /// Removes a monitor (`demonitor/1`). Returns `false` when it was not
    /// active (it fired already, or never was this process's).
    pub fn demonitor(&self, reference: Ref) -> bool {
        let Some(entry) = self.pcb.state.lock().remove_monitor(&reference) else {
            return false;
        };
        let inner = self.node.inner();
        let target = match entry.object {
            Target::Name(_, node) if node != inner.name => entry.object,
            _ => Target::Pid(entry.other),
        };
        inner.route(Signal::Demonitor {
            from: self.pcb.pid,
            target,
            reference,
        });
        true
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
            .retain(|m| m.as_down().is_none_or(|d| d.reference != reference));
        self.sync_inbox_len();
        was
    }

    /// Sets whether exit signals become `{'EXIT', From, Reason}` messages
    /// (`process_flag(trap_exit, Flag)`); returns the old setting.
    pub fn set_trap_exit(&self, trap: bool) -> bool {
        self.pcb.set_flag(super::TRAP_EXIT, trap)
    }

    /// Whether this process traps exits.
    pub fn trap_exit(&self) -> bool {
        self.pcb.traps_exits()
    }

    /// Marks this process as one that takes calls by term as their parts
    /// (a `gen_server` loop: see [`super::signal::CallRequest`]).
    pub(crate) fn take_calls_apart(&self) {
        self.pcb.set_flag(super::TAKES_CALLS, true);
    }

    /// Sends an exit signal with `reason` to `pid` (`exit/2`).
    ///
    /// A signal that ends this process itself (`exit(self(), Reason)`) takes
    /// effect at its next `.await`: where Erlang stops at once, Rust code
    /// runs on to the next point where the process can be stopped.
    pub fn exit(&self, pid: Pid, reason: Reason) {
        self.node.inner().route(Signal::Exit {
            from: self.pcb.pid,
            to: pid,
            reason,
            link: false,
        });
    }

    /// Registers this process under `name` (`register/2`).
    pub fn register(&self, name: impl Into<Atom>) -> Result<(), RegisterError> {
        self.node.register(name.into(), self.pcb.pid)
    }

    /// Removes this process's registered name.
    pub fn unregister(&self) -> Option<Atom> {
        let name = self.pcb.state.lock().name()?;
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

impl Context {
    /// The context of the process `pcb` on `node`.
    pub(crate) fn new(pcb: Arc<Pcb>, node: Node) -> Context {
        Context {
            pcb,
            node,
            inbox: SyncWrapper::new(VecDeque::new()),
        }
    }
}
