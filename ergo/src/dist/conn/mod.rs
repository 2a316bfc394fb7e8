//! One connection to another node: set up on first use or when the other
//! node connects, written to directly by the sending process when the
//! socket takes the bytes at once (a writer task finishes what it does not
//! take), read by a reader task that hands each message to its process, and
//! kept alive with ticks.
//!
//! A connection touches no process: it hands what it reads to the node's
//! codec, and what processes send reaches it as frames from the codec.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use ergo_etf::{Atom, Bytes, Pid, Term};
use parking_lot::Mutex;

mod transport;
pub(crate) use transport::Stream;
use transport::{ReadHalf, RecvBuf, WriteHalf};

use crate::dist::codec::wire::{
    Ctl, FragmentRoom, Incoming, OutBuf, PEEK, Payload, Reader, WireError, Writer,
};
use crate::dist::error::{ConnectError, Disconnect};
use crate::dist::handshake::{self, Peer};
use crate::node::NodeInner;

/// What a connection is doing.
enum State {
    /// Connecting: messages wait here, in order, as terms.
    Pending(Vec<(Vec<Term>, Option<Term>)>),
    /// Up: messages are encoded into `buf` and written.
    Up(Box<Up>),
    /// Closed; nothing more is sent.
    Down,
}

struct Up {
    half: Arc<WriteHalf>,
    writer: Writer,
    buf: OutBuf,
    /// The writer task is waiting for the socket to take the rest.
    flushing: bool,
    /// A sender is writing outside the lock; it also writes what others
    /// add meanwhile.
    writing: bool,
    /// Something was written since the last tick period.
    wrote: bool,
    /// `dist_buf_busy_limit`: with more than this waiting, the connection
    /// is busy, and a process that sends to it is suspended until it is
    /// not.
    busy_limit: usize,
    /// Bytes a sender took out of `buf` and is writing outside the lock
    /// (still waiting, as far as the busy limit goes).
    in_flight: usize,
}

impl Up {
    fn backlog(&self) -> usize {
        self.buf.len() + self.in_flight
    }
}

/// A connection to one peer node.
pub(crate) struct Conn {
    pub(crate) peer: Atom,
    state: Mutex<State>,
    /// Wakes the writer task (bytes left over, or closing).
    wake: tokio::sync::Notify,
    /// Frames received, ticks included: the tick check watches it move.
    received: AtomicU64,
    /// Bytes read and written, and frames written (for the dashboard).
    pub(crate) bytes_in: Arc<AtomicU64>,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) info: OnceLock<Peer>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
    /// The task setting the connection up, while it does: a connection
    /// closed meanwhile stops it, so no stale attempt reaches the peer.
    attempt: Mutex<Option<tokio::task::AbortHandle>>,
    /// An accepted handshake owns the pending connection: one that made
    /// it as it answered `ok`, or the peer's attempt, met while this
    /// node's was under way and answered `ok_simultaneous`. This node's
    /// own attempt is then no longer the one pending
    /// (`dist_util:is_pending/2` answers `false` for it) and cannot bring
    /// the connection up. Set under the state lock, once.
    claimed: AtomicBool,
    /// Woken when the connection comes up or goes down.
    pub(crate) changed: tokio::sync::Notify,
    /// The buffer holds deferred frames, and the connection is on the list
    /// of the process poll that deferred them (see
    /// [`Conn::send_deferred`]). Changed under the state lock; read without
    /// it by that poll's end, which sees its own setting or a later one.
    deferred: AtomicBool,
    /// What crosses this connection: the local processes with links or
    /// monitors to the peer's processes (or from them). Its loss fires
    /// exactly these.
    index: Mutex<Index>,
    /// An id no other connection of this OS process has (never 0).
    pub(crate) id: u64,
    /// The processes suspended until the connection is no longer busy.
    unbusy: Mutex<Vec<std::task::Waker>>,
    /// `unbusy` holds wakers (read without its lock by writers).
    waiters: AtomicBool,
    /// `nodeup` went to the node's watchers (set under the state lock, and
    /// only while the connection is up, so that its `nodedown` follows it).
    announced: AtomicBool,
}

#[derive(Default)]
struct Index {
    pids: rustc_hash::FxHashSet<Pid>,
    /// Taken for the connection's loss: nothing enters after.
    closed: bool,
}

/// Why writing failed: the connection is down.
#[derive(Debug)]
pub(crate) struct Closed;

impl Conn {
    pub(crate) fn new(peer: Atom) -> Arc<Conn> {
        Arc::new(Conn {
            peer,
            state: Mutex::new(State::Pending(Vec::new())),
            wake: tokio::sync::Notify::new(),
            received: AtomicU64::new(0),
            bytes_in: Arc::new(AtomicU64::new(0)),
            bytes_out: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            info: OnceLock::new(),
            reader: Mutex::new(None),
            attempt: Mutex::new(None),
            claimed: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            deferred: AtomicBool::new(false),
            index: Mutex::new(Index::default()),
            unbusy: Mutex::new(Vec::new()),
            waiters: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            id: {
                static IDS: AtomicU64 = AtomicU64::new(1);
                IDS.fetch_add(1, Ordering::Relaxed)
            },
        })
    }

    /// Notes that local process `pid` has a link or monitor across this
    /// connection; `false` when the connection's loss has already taken
    /// the index.
    pub(crate) fn index_pid(&self, pid: Pid) -> bool {
        let mut ix = self.index.lock();
        if ix.closed {
            return false;
        }
        ix.pids.insert(pid);
        true
    }

    /// Takes `pid` out of the index (it has ended).
    pub(crate) fn unindex_pid(&self, pid: Pid) {
        self.index.lock().pids.remove(&pid);
    }

    /// Empties the index for good, giving what it held.
    pub(crate) fn take_index(&self) -> Vec<Pid> {
        let mut ix = self.index.lock();
        ix.closed = true;
        std::mem::take(&mut ix.pids).into_iter().collect()
    }

    /// Frames received so far, ticks included.
    #[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
    pub(crate) fn frames_in(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Notes the task setting the connection up (stopped if the connection
    /// closes first); it is forgotten once the connection is up.
    pub(crate) fn set_attempt(&self, task: tokio::task::AbortHandle) {
        if self.is_closed() {
            task.abort();
        } else {
            *self.attempt.lock() = Some(task);
        }
    }

    /// Hands the pending connection to an accepted handshake (see
    /// [`Conn::claimed`]); `false` if it is not pending, or another accept
    /// has it already.
    pub(crate) fn claim_for_accept(&self) -> bool {
        let st = self.state.lock();
        matches!(*st, State::Pending(_)) && !self.claimed.swap(true, Ordering::SeqCst)
    }

    /// `true` once an accepted handshake owns the pending connection (see
    /// [`Conn::claim_for_accept`]).
    pub(crate) fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::SeqCst)
    }

    /// `true` once the connection has closed.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(*self.state.lock(), State::Down)
    }

    /// Runs `tell` (which sends `nodeup`) if the connection is still up,
    /// under its state lock: a close, which takes that lock, then comes
    /// after, so watchers never hear `nodeup` after the `nodedown` of the
    /// same connection.
    pub(crate) fn announce_up(&self, tell: impl FnOnce()) {
        let st = self.state.lock();
        if matches!(*st, State::Up(_)) {
            self.announced.store(true, Ordering::Relaxed);
            tell();
        }
    }

    /// Whether [`Conn::announce_up`] told the watchers (final once the
    /// connection is closed).
    pub(crate) fn announced(&self) -> bool {
        self.announced.load(Ordering::Relaxed)
    }

    /// `true` once the handshake is done and until the connection closes.
    pub(crate) fn is_up(&self) -> bool {
        matches!(*self.state.lock(), State::Up(_))
    }

    /// Sends messages, each a control message and maybe a payload, in
    /// order and with one write.
    pub(crate) fn send_frames(
        self: &Arc<Self>,
        frames: &[(Ctl<'_>, Option<Payload<'_>>)],
    ) -> Result<(), Closed> {
        // A payload of many terms is encoded before the lock is taken, so
        // that other senders to this node do not wait for it.
        // (Not while the connection is being set up: messages then wait as
        // terms.)
        if frames.iter().any(|(_, p)| p.is_some_and(Payload::is_large)) && self.is_up() {
            let encoded: Vec<Option<Vec<u8>>> = frames
                .iter()
                .map(|(_, p)| p.filter(|p| p.is_large()).map(Payload::encode_alone))
                .collect();
            let frames: Vec<_> = frames
                .iter()
                .zip(&encoded)
                .map(|((c, p), e)| (*c, e.as_deref().map(Payload::Encoded).or(*p)))
                .collect();
            return self.send_encoded(&frames);
        }
        self.send_encoded(frames)
    }

    fn send_encoded(
        self: &Arc<Self>,
        frames: &[(Ctl<'_>, Option<Payload<'_>>)],
    ) -> Result<(), Closed> {
        self.frames_out.fetch_add(frames.len() as u64, Relaxed);
        let mut st = self.state.lock();
        match &mut *st {
            State::Pending(q) => {
                for (control, payload) in frames {
                    q.push((control.to_terms(), payload.map(Payload::to_term)));
                }
                Ok(())
            }
            State::Up(up) => {
                for (control, payload) in frames {
                    up.writer.write(*control, *payload, &mut up.buf);
                }
                up.wrote = true;
                self.push_out(st)
            }
            State::Down => Err(Closed),
        }
    }

    /// Sends a control message that may wait for company (a monitor set up
    /// for a call, a demonitor): inside a process, it leaves with the next
    /// frame written to the same node, or when the process's poll ends,
    /// whichever comes first; elsewhere, at once. One system call instead
    /// of two, and order is kept either way.
    pub(crate) fn send_deferred(self: &Arc<Self>, control: Ctl<'_>) -> Result<(), Closed> {
        if HOLD.with(Cell::get) & HOLD_ACTIVE == 0 {
            return self.send_frames(&[(control, None)]);
        }
        let mut st = self.state.lock();
        match &mut *st {
            State::Pending(q) => {
                q.push((control.to_terms(), None));
                Ok(())
            }
            State::Up(up) => {
                up.writer.write(control, None, &mut up.buf);
                up.wrote = true;
                // A sender writing outside the lock, or the writer task,
                // takes these frames along anyway. Otherwise this poll's
                // end writes them, if nothing else has (even when another
                // thread's poll has deferred frames here too).
                if !up.writing && !up.flushing {
                    self.deferred.store(true, Relaxed);
                    drop(st);
                    HELD.with(|h| {
                        let mut h = h.borrow_mut();
                        if !h.conns.iter().any(|c| Arc::ptr_eq(c, self)) {
                            h.conns.push(self.clone());
                        }
                    });
                    HOLD.with(|c| c.set(c.get() | HOLD_HELD));
                }
                Ok(())
            }
            State::Down => Err(Closed),
        }
    }

    /// Writes deferred frames still waiting.
    fn flush_deferred(self: &Arc<Self>) {
        if !self.deferred.load(Relaxed) {
            // A later write took them along.
            return;
        }
        let st = self.state.lock();
        if matches!(&*st, State::Up(_)) && self.deferred.load(Relaxed) {
            let _ = self.push_out(st);
        }
    }

    /// Writes what the buffer holds, outside the lock, as far as the socket
    /// takes it now; what other senders add meanwhile goes in the same
    /// write or the next. The writer task is woken for what the socket does
    /// not take.
    fn push_out(
        self: &Arc<Self>,
        mut st: parking_lot::MutexGuard<'_, State>,
    ) -> Result<(), Closed> {
        let State::Up(up) = &mut *st else {
            return Err(Closed);
        };
        if up.flushing || up.writing {
            if up.backlog() > up.busy_limit {
                drop(st);
                self.sent_while_busy();
            }
            return Ok(());
        }
        up.writing = true;
        self.deferred.store(false, Relaxed);
        let half = up.half.clone();
        let mut out = std::mem::take(&mut up.buf);
        up.in_flight = out.len();
        drop(st);
        loop {
            let result = loop {
                if out.is_empty() {
                    // Bytes taken but still held (TLS records) go too.
                    break half.finish().map_err(|_| ());
                }
                match half.write_some(&out) {
                    Ok(0) => break Err(()),
                    Ok(n) => {
                        BYTES_OUT.fetch_add(n as u64, Relaxed);
                        self.bytes_out.fetch_add(n as u64, Relaxed);
                        out.advance(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(false),
                    Err(_) => break Err(()),
                }
            };
            let mut st = self.state.lock();
            let State::Up(up) = &mut *st else {
                return Err(Closed);
            };
            up.in_flight = out.len();
            let backlog = up.backlog();
            // (Woken with the state's lock held: a waiter takes the list's
            // lock alone, never the two together.)
            if backlog <= up.busy_limit && self.waiters.load(Ordering::SeqCst) {
                self.wake_unbusy();
            }
            match result {
                Ok(true) if up.buf.is_empty() => {
                    up.writing = false;
                    up.in_flight = 0;
                    // Keep the allocation, unless a huge message left it big.
                    out.clear();
                    if out.capacity() <= 8 << 20 {
                        up.buf = out;
                    }
                    return Ok(());
                }
                Ok(true) => {
                    // More came while we wrote: write that too.
                    out.clear();
                    std::mem::swap(&mut out, &mut up.buf);
                    up.in_flight = out.len();
                    self.deferred.store(false, Relaxed);
                }
                Ok(false) => {
                    // The socket is full: the rest goes first, then what came
                    // meanwhile, when the writer task finds the socket
                    // writable.
                    out.append(&mut up.buf);
                    up.buf = out;
                    up.writing = false;
                    up.in_flight = 0;
                    up.flushing = true;
                    let busy = up.backlog() > up.busy_limit;
                    self.wake.notify_one();
                    drop(st);
                    if busy {
                        self.sent_while_busy();
                    }
                    return Ok(());
                }
                Err(()) => {
                    up.writing = false;
                    up.in_flight = 0;
                    // The reader sees the broken socket too and closes the
                    // connection; wake the writer so it notices sooner.
                    self.wake.notify_one();
                    return Err(Closed);
                }
            }
        }
    }

    /// Takes the connection down. Returns `false` if it already was.
    pub(crate) fn close(&self) -> bool {
        let old = std::mem::replace(&mut *self.state.lock(), State::Down);
        if let Some(r) = self.reader.lock().take() {
            r.abort();
        }
        if let Some(a) = self.attempt.lock().take() {
            a.abort();
        }
        self.wake.notify_one();
        self.changed.notify_waiters();
        self.wake_unbusy();
        !matches!(old, State::Down)
    }

    /// Has the writer task write what the transport holds (TLS records
    /// the reader made, such as the answer to a key update), once the
    /// socket takes it.
    pub(crate) fn kick_writer(&self) {
        let mut st = self.state.lock();
        if let State::Up(up) = &mut *st
            && !up.flushing
            && !up.writing
        {
            up.flushing = true;
            drop(st);
            self.wake.notify_one();
        }
    }

    /// More than the busy limit waits to be written.
    pub(crate) fn is_busy(&self) -> bool {
        matches!(&*self.state.lock(), State::Up(up) if up.backlog() > up.busy_limit)
    }

    /// A process sent to this connection while it was busy: once the
    /// process's poll ends, it is suspended until the connection is not
    /// busy (see [`hold_end`]). Outside a process, nothing waits.
    fn sent_while_busy(self: &Arc<Self>) {
        if HOLD.with(Cell::get) & HOLD_ACTIVE == 0 {
            return;
        }
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if !h.nosuspend && h.busy.is_none() {
                h.busy = Some(self.clone());
                HOLD.with(|c| c.set(c.get() | HOLD_HELD));
            }
        });
    }

    /// For a suspended process: `true` (and `waker` woken once the
    /// connection is no longer busy, or closes) while it is busy.
    pub(crate) fn wait_unbusy(&self, waker: &std::task::Waker) -> bool {
        if !self.is_busy() {
            return false;
        }
        // The waker goes on the list first, and the look at the buffer
        // comes after: a writer that empties it before the look is seen
        // by the look, one that empties it after finds the waker. The two
        // locks are never held together here (a writer takes the list's
        // under the state's).
        {
            let mut w = self.unbusy.lock();
            if !w.iter().any(|x| x.will_wake(waker)) {
                w.push(waker.clone());
            }
            self.waiters.store(true, Ordering::SeqCst);
        }
        // A waker left on the list when this returns `false` is woken once,
        // for nothing, later.
        self.is_busy()
    }

    fn wake_unbusy(&self) {
        let woken = {
            let mut w = self.unbusy.lock();
            self.waiters.store(false, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        for waker in woken {
            waker.wake();
        }
    }
}

/// Settings a connection needs.
#[derive(Clone, Debug)]
pub(crate) struct ConnConfig {
    pub(crate) local: handshake::Local,
    pub(crate) tick: Duration,
    pub(crate) max_message: usize,
    pub(crate) max_fragmented: usize,
    pub(crate) max_new_atoms: usize,
    pub(crate) busy_limit: usize,
    /// [`crate::dist::DistOptions::busy_poll`].
    pub(crate) busy_poll: Duration,
}

/// Makes `conn` live on `stream` after a handshake with `peer`: moves what
/// waited into the stream, and starts the reader and the writer. An
/// attempt of this node's (`by_attempt`) does not when an accepted
/// handshake has claimed the connection (see [`Conn::claim_for_accept`]):
/// `Err(Closed)`, and the stream is dropped.
pub(crate) fn start(
    node: &Arc<NodeInner>,
    conn: &Arc<Conn>,
    stream: Stream,
    peer: Peer,
    cfg: &ConnConfig,
    by_attempt: bool,
) -> Result<bool, Closed> {
    let weak = Arc::downgrade(conn);
    let (rd, wr) = stream.split(Box::new(move || {
        if let Some(c) = weak.upgrade() {
            c.kick_writer();
        }
    }));
    let half = Arc::new(wr);
    {
        let mut st = conn.state.lock();
        if by_attempt && conn.is_claimed() && matches!(*st, State::Pending(_)) {
            return Err(Closed);
        }
        let queued = match std::mem::replace(&mut *st, State::Down) {
            State::Pending(q) => q,
            State::Down => return Err(Closed),
            up => {
                // The other node's connection won the race: keep it.
                *st = up;
                return Ok(false);
            }
        };
        let mut up = Box::new(Up {
            half: half.clone(),
            writer: Writer::new(peer.flags),
            buf: OutBuf::default(),
            flushing: false,
            writing: false,
            wrote: false,
            busy_limit: cfg.busy_limit,
            in_flight: 0,
        });
        for (control, payload) in queued {
            up.writer.write(
                Ctl::Terms(&control),
                payload.as_ref().map(Payload::Term),
                &mut up.buf,
            );
        }
        // The peer's flags are known before anything can be sent on the
        // connection (which control messages to use depends on them).
        let _ = conn.info.set(peer);
        *st = State::Up(up);
        // The attempt (if this connection had one) is done with it.
        conn.attempt.lock().take();
        let _ = conn.push_out(st);
    }
    let mut read_cfg = cfg.clone();
    if let Some(peer) = conn.info.get()
        && let Ok(name) = Atom::try_new(&peer.name)
        && crate::node::in_this_process(name, peer.creation)
    {
        // A peer in this OS process is answered by this process's own
        // threads, which find its data as soon as they look: polling for
        // it would only take their time.
        read_cfg.busy_poll = Duration::ZERO;
    }
    let reader = node
        .runtime()
        .spawn(read_loop(Arc::downgrade(node), conn.clone(), rd, read_cfg));
    *conn.reader.lock() = Some(reader.abort_handle());
    node.runtime().spawn(write_loop(
        Arc::downgrade(node),
        conn.clone(),
        half,
        cfg.tick,
    ));
    conn.changed.notify_waiters();
    Ok(true)
}

/// Distribution bytes read and written by this OS process, for
/// `statistics(io)`.
static BYTES_IN: AtomicU64 = AtomicU64::new(0);
static BYTES_OUT: AtomicU64 = AtomicU64::new(0);

/// (Bytes read, bytes written) over every connection so far.
pub(crate) fn io_bytes() -> (i64, i64) {
    (
        BYTES_IN.load(Relaxed) as i64,
        BYTES_OUT.load(Relaxed) as i64,
    )
}

/// Reads from the socket in chunks of this size (frames larger than what
/// is buffered are read straight into their own buffer).
const READ_CHUNK: usize = 64 * 1024;

/// The connections holding frames deferred during the process poll under
/// way on this thread.
struct Held {
    conns: Vec<Arc<Conn>>,
    /// A busy connection the process sent to.
    busy: Option<Arc<Conn>>,
    /// A `send_nosuspend` is under way: a send that makes the connection
    /// busy does not suspend the process.
    nosuspend: bool,
}

thread_local! {
    static HELD: std::cell::RefCell<Held> = const {
        std::cell::RefCell::new(Held {
            conns: Vec::new(),
            busy: None,
            nosuspend: false,
        })
    };
}

thread_local! {
    /// The `HOLD_` bits: looked at on every poll of every process, kept
    /// apart from [`HELD`] (whose list and connection need a destructor,
    /// and so a check on every access) and its borrow count.
    static HOLD: Cell<u8> = const { Cell::new(0) };
}

/// A process is being polled on this thread.
const HOLD_ACTIVE: u8 = 1;
/// [`HELD`] holds a connection (deferred frames, or a busy connection).
const HOLD_HELD: u8 = 2;

/// Called by the process guard before it polls its process: deferred frames
/// may wait until [`hold_end`]. Returns what to give `hold_end`.
#[inline(always)]
pub(crate) fn hold_begin() -> bool {
    HOLD.with(|c| {
        let was = c.get();
        c.set(was | HOLD_ACTIVE);
        was & HOLD_ACTIVE != 0
    })
}

/// Runs `f` (a send) without suspending the process if the send makes a
/// connection busy (`erlang:send_nosuspend/2`).
pub(crate) fn without_suspending<R>(f: impl FnOnce() -> R) -> R {
    let was = HELD.with(|h| std::mem::replace(&mut h.borrow_mut().nosuspend, true));
    let r = f();
    HELD.with(|h| h.borrow_mut().nosuspend = was);
    r
}

/// Called by the process guard after polling: writes the frames its
/// process deferred and that no later frame took along. Returns the busy
/// connection the process sent to, if any: the guard suspends the process
/// until it is no longer busy, as Erlang suspends a process that sends to
/// a busy distribution port.
///
/// Inlined into the guard: most polls hold nothing, and the look at the
/// bits is a few instructions where a call was many.
#[inline(always)]
pub(crate) fn hold_end(was_active: bool) -> Option<Arc<Conn>> {
    if was_active {
        return None;
    }
    if HOLD.with(|c| c.replace(0)) & HOLD_HELD == 0 {
        return None;
    }
    release_held()
}

/// [`hold_end`] when the poll held a connection.
#[inline(never)]
fn release_held() -> Option<Arc<Conn>> {
    let (conns, busy) = HELD.with(|h| {
        let mut h = h.borrow_mut();
        // An empty list stays, with its memory.
        let conns = (!h.conns.is_empty()).then(|| std::mem::take(&mut h.conns));
        (conns, h.busy.take())
    });
    let Some(mut conns) = conns else {
        return busy;
    };
    for c in conns.drain(..) {
        c.flush_deferred();
    }
    // Keep the list's memory for the next poll.
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.conns.is_empty() {
            h.conns = conns;
        }
    });
    busy
}

/// Frames up to this size are decoded in place in the read buffer; larger
/// ones are copied out first, so that their large binaries can share the
/// copy (and not hold on to the whole buffer).
const BORROW_MAX: usize = 1024;

/// The reading half of a connection with its buffer.
struct Source {
    rd: ReadHalf,
    buf: BytesMut,
    /// The connection's count of bytes read.
    counted: Arc<AtomicU64>,
    /// How long a read keeps polling before it waits to be woken.
    busy_poll: Duration,
}

/// Set while a connection's reader polls its socket in a busy wait: one
/// reader at a time keeps its thread awake, and the others' data is read
/// by that thread too (the driver it polls wakes their tasks there).
static BUSY_POLLING: AtomicBool = AtomicBool::new(false);

/// This reader's turn to busy-poll (the flag it holds), given back when
/// dropped.
struct BusyPolling(&'static AtomicBool);

impl BusyPolling {
    fn claim(flag: &'static AtomicBool) -> Option<BusyPolling> {
        (!flag.swap(true, Ordering::Acquire)).then_some(BusyPolling(flag))
    }
}

impl Drop for BusyPolling {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What a busy read reads: a connection's socket (or, in tests, a stand-in).
trait SpinRead {
    /// Reads what the runtime knows has arrived into `dst`, or registers
    /// the task to be woken when more does.
    fn poll_read_into<B: RecvBuf>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        dst: &mut B,
    ) -> std::task::Poll<std::io::Result<usize>>;

    /// Reads what has arrived into `dst` straight from the socket, without
    /// waiting and without asking the runtime (whose readiness only its I/O
    /// driver sets, and only where that driver is polled): `None` where
    /// there is no such read (TLS, or not Linux), `WouldBlock` when nothing
    /// has come.
    fn read_now<B: RecvBuf>(&mut self, dst: &mut B) -> Option<std::io::Result<usize>>;

    /// Stops the runtime's I/O driver watching the socket until the next
    /// [`SpinRead::poll_read_into`] that finds nothing (a reader that polls
    /// the socket itself needs no one else woken by what arrives).
    fn leave_driver(&mut self);
}

impl SpinRead for ReadHalf {
    fn poll_read_into<B: RecvBuf>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        dst: &mut B,
    ) -> std::task::Poll<std::io::Result<usize>> {
        ReadHalf::poll_read_into(self, cx, dst)
    }

    fn read_now<B: RecvBuf>(&mut self, dst: &mut B) -> Option<std::io::Result<usize>> {
        ReadHalf::read_now(self, dst)
    }

    fn leave_driver(&mut self) {
        ReadHalf::leave_driver(self)
    }
}

/// Polls a read once: what it read if the runtime knew of data.
async fn read_ready<S: SpinRead, B: RecvBuf>(
    src: &mut S,
    dst: &mut B,
) -> Option<std::io::Result<usize>> {
    use std::task::Poll;
    std::future::poll_fn(|cx| match src.poll_read_into(cx, dst) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Polls a read once, registering no waker for the task: a socket event
/// during the spin then does not mark the reader, which finds the data
/// itself, to be polled again (which would send it to the back of the
/// queue and have an idle worker woken to take it).
fn read_quietly<S: SpinRead, B: RecvBuf>(
    src: &mut S,
    dst: &mut B,
) -> Option<std::io::Result<usize>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match src.poll_read_into(&mut cx, dst) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Every this many polls, a busy-polling reader also yields its OS thread
/// (`sched_yield`), as BEAM's schedulers do while they spin. With few
/// cores, the thread that will make the awaited data (often the peer
/// node's, on the same machine) may be waiting for this very core: two
/// ergo nodes exchanging GenStage events on two cores went from 28 to 41
/// M events/s with it (every poll was too often: 23 M).
const SPIN_YIELD_EVERY: u32 = 8;

/// How long a busy read polls its socket directly before it goes round
/// the runtime's scheduler once more (which runs what was woken from other
/// threads and polls the I/O driver for the other sockets and the timers).
const SPIN_ROUND: Duration = Duration::from_micros(25);

/// Reads from `src` into `dst`. When nothing has arrived, and no other
/// reader of this OS process is doing the same (`turn`), it busy-waits
/// for up to `spin` before it waits to be woken: data that comes within
/// `spin` is read by a thread that never slept. See
/// [`crate::dist::DistOptions::busy_poll`].
///
/// The wait first yields once, so that the thread runs what the reader's
/// last messages woke; it is back when the thread has nothing else to do.
/// It then reads the socket itself, off the runtime's I/O driver (see
/// [`SpinRead::leave_driver`]), and goes round the scheduler again only
/// every [`SPIN_ROUND`] or when a task woken from another thread waits.
/// Each round trip through an idle multi-threaded runtime has it wake
/// another worker thread to look for work (tokio does so whenever a worker
/// that looked for work finds some, here the spinning reader itself): a
/// spin that went round it between every two polls, as this one did
/// before, made 63–65k calls/s where this one makes 75–79k (an Erlang node
/// calling a Rust `echo` from 120 processes, two cores, alternated runs).
async fn busy_read<S: SpinRead, B: RecvBuf>(
    src: &mut S,
    dst: &mut B,
    spin: Duration,
    turn: &'static AtomicBool,
) -> std::io::Result<usize> {
    if spin.is_zero() {
        return std::future::poll_fn(|cx| src.poll_read_into(cx, dst)).await;
    }
    // What has come already, read directly where the socket allows it
    // (which asks no one, and registers nothing).
    match src.read_now(dst) {
        Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Some(done) => return done,
        None => {
            if let Some(out) = read_ready(src, dst).await {
                return out;
            }
        }
    }
    let Some(_turn) = BusyPolling::claim(turn) else {
        return std::future::poll_fn(|cx| src.poll_read_into(cx, dst)).await;
    };
    src.leave_driver();
    let until = std::time::Instant::now() + spin;
    let runtime = tokio::runtime::Handle::try_current().ok();
    let mut spins = 0u32;
    'rounds: loop {
        // Back once the thread has run its other tasks (and polled its
        // driver, for the other sockets).
        tokio::task::yield_now().await;
        let round_end = std::time::Instant::now() + SPIN_ROUND;
        loop {
            match src.read_now(dst) {
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Some(done) => return done,
                None => {
                    // Only the driver knows: ask it once a round.
                    if let Some(out) = read_quietly(src, dst) {
                        return out;
                    }
                    if std::time::Instant::now() >= until {
                        break 'rounds;
                    }
                    spun(&mut spins);
                    break;
                }
            }
            spun(&mut spins);
            let now = std::time::Instant::now();
            if now >= until {
                break 'rounds;
            }
            if now >= round_end
                || runtime
                    .as_ref()
                    .is_some_and(|r| r.metrics().global_queue_depth() > 0)
            {
                break;
            }
        }
    }
    drop(_turn);
    std::future::poll_fn(|cx| src.poll_read_into(cx, dst)).await
}

/// Counts one poll of a busy read; every [`SPIN_YIELD_EVERY`] polls, lets
/// the OS run another thread on this core for a moment.
fn spun(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if spins.is_multiple_of(SPIN_YIELD_EVERY) {
        std::thread::yield_now();
    }
}

impl Source {
    /// Reads until the buffer holds at least `n` bytes.
    async fn fill(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            self.buf.reserve(READ_CHUNK.max(n - self.buf.len()));
            let buf = &mut self.buf;
            Self::recv(&mut self.rd, buf, self.busy_poll, &self.counted).await?;
        }
        Ok(())
    }

    /// One read into `dst` (see [`busy_read`]), counted: the end of the
    /// stream is an error, since the caller waits for more.
    async fn recv<B: RecvBuf>(
        rd: &mut ReadHalf,
        dst: &mut B,
        busy_poll: Duration,
        counted: &AtomicU64,
    ) -> std::io::Result<usize> {
        let got = busy_read(rd, dst, busy_poll, &BUSY_POLLING).await?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        BYTES_IN.fetch_add(got as u64, Relaxed);
        counted.fetch_add(got as u64, Relaxed);
        Ok(got)
    }

    /// Puts the next `n` bytes, a following fragment's data, where
    /// `room` says.
    async fn read_to(&mut self, room: FragmentRoom<'_>, n: usize) -> std::io::Result<()> {
        match room {
            FragmentRoom::Append(out) => self.read_into(out, n).await,
            FragmentRoom::Fill(out) => self.fill_into(out, n).await,
        }
    }

    /// Writes the next `n` bytes over the start of `out`: what the buffer
    /// holds, then straight from the socket, reading on into the rest of
    /// `out` for at most [`PEEK`] bytes of what follows (which go back to
    /// the buffer).
    async fn fill_into(&mut self, out: &mut [u8], n: usize) -> std::io::Result<()> {
        let have = self.buf.len().min(n);
        out[..have].copy_from_slice(&self.buf[..have]);
        self.buf.advance(have);
        let end = out.len().min(n + PEEK);
        let mut at = have;
        while at < n {
            let window = &mut &mut out[at..end];
            at += Self::recv(&mut self.rd, window, self.busy_poll, &self.counted).await?;
        }
        self.buf.extend_from_slice(&out[n..at]);
        Ok(())
    }

    /// Appends the next `n` bytes to `out`: what the buffer holds, then
    /// straight from the socket, along with at most [`PEEK`] bytes of what
    /// follows (which go back to the buffer), so that a run of fragments
    /// costs one read each.
    async fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
        let have = self.buf.len().min(n);
        out.extend_from_slice(&self.buf[..have]);
        self.buf.advance(have);
        let mut left = n - have;
        if left == 0 {
            return Ok(());
        }
        while left > 0 {
            // In steps, so that a length a peer claims reserves nothing
            // ahead of the bytes (the vector doubles as they come).
            out.reserve(left.min(GROW) + PEEK);
            let window = &mut (&mut *out).limit(left + PEEK);
            let got = Self::recv(&mut self.rd, window, self.busy_poll, &self.counted).await?;
            if got > left {
                let end = out.len() - (got - left);
                self.buf.extend_from_slice(&out[end..]);
                out.truncate(end);
                left = 0;
            } else {
                left -= got;
            }
        }
        Ok(())
    }

    /// The next `len` bytes as one frame.
    async fn frame(&mut self, len: usize) -> std::io::Result<Bytes> {
        if self.buf.len() >= len {
            // Copied out, so that binaries kept from it hold only it.
            let frame = Bytes::copy_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            return Ok(frame);
        }
        // Memory for what arrives, not for what the length says will.
        let mut frame = Vec::with_capacity(len.min(GROW) + PEEK);
        self.read_into(&mut frame, len).await?;
        Ok(Bytes::from(frame))
    }
}

/// How far ahead of the bytes that have arrived a frame's buffer grows.
const GROW: usize = 4 << 20;

/// A frame's length, its `131 70` and the fragment's sequence and id.
const FRAGMENT_HEAD: usize = 4 + 18;

async fn read_loop(node: Weak<NodeInner>, conn: Arc<Conn>, rd: ReadHalf, cfg: ConnConfig) {
    let max_message = cfg.max_message;
    let mut src = Source {
        rd,
        buf: BytesMut::with_capacity(READ_CHUNK),
        counted: conn.bytes_in.clone(),
        busy_poll: cfg.busy_poll,
    };
    let mut reader = Reader::with_limits(max_message, cfg.max_fragmented, cfg.max_new_atoms);
    // Until a process of the node has a decoder, a message costs one
    // load of the flag here (no look-up, no upgrade of the node).
    if let Some(any) = node.upgrade().map(|n| n.remote_decoders.clone()) {
        let finding = node.clone();
        reader.set_finder(Box::new(move |pid| {
            if !any.load(Ordering::Relaxed) {
                return None;
            }
            finding
                .upgrade()?
                .with_pcb(pid, |p| p.remote_decoder())
                .flatten()
        }));
    }
    let mut frames = conn.received.load(Ordering::Relaxed);
    let ended = |inside_frame: bool, e: std::io::Error| Disconnect::Closed {
        inside_frame,
        error: (e.kind() != std::io::ErrorKind::UnexpectedEof).then_some(e),
    };
    let closed = |e| ended(false, e);
    let closed_inside = |e| ended(true, e);
    let why = loop {
        // The small frames the buffer holds whole are read where they lie,
        // one after another, without awaiting between them.
        if let Some(why) = read_buffered(
            &node,
            &conn,
            &mut src.buf,
            &mut reader,
            &mut frames,
            max_message,
        ) {
            break why;
        }
        if src.buf.len() < 4 {
            if let Err(e) = src.fill(4).await {
                break closed(e);
            }
            continue;
        }
        // What `read_buffered` left: a frame over the limit, a small one
        // not yet whole, or a large one.
        let len = u32::from_be_bytes([src.buf[0], src.buf[1], src.buf[2], src.buf[3]]) as usize;
        if len > max_message {
            break Disconnect::FrameTooLarge {
                len,
                limit: max_message,
            };
        }
        if len <= BORROW_MAX {
            // Once whole, `read_buffered` reads it.
            if let Err(e) = src.fill(4 + len).await {
                break closed_inside(e);
            }
            continue;
        }
        // This task is the only writer: a store, no read-modify-write.
        frames += 1;
        conn.received.store(frames, Ordering::Relaxed);
        // A fragment continuing a message: its data goes straight into the
        // message's buffer.
        if let Err(e) = src.fill(FRAGMENT_HEAD).await {
            break closed_inside(e);
        }
        // A first fragment whose message the limit has room for: received
        // into the message's buffer, made ahead.
        if src.buf[4..6] == [131, 69] {
            let count = u64::from_be_bytes(src.buf[14..22].try_into().expect("8 bytes"));
            if let Some(mut body) = reader.first_frame_buffer(count, len) {
                src.buf.advance(4);
                if let Err(e) = src.fill_into(&mut body, len).await {
                    break closed_inside(e);
                }
                let why = deliver(&node, &conn, reader.first_fragment_in(body, len));
                reader.done();
                if let Some(why) = why {
                    break why;
                }
                continue;
            }
        }
        if src.buf[4..6] == [131, 70] {
            let word =
                |at: usize| u64::from_be_bytes(src.buf[at..at + 8].try_into().expect("8 bytes"));
            let (sequence, id) = (word(6), word(14));
            let data = len + 4 - FRAGMENT_HEAD;
            src.buf.advance(FRAGMENT_HEAD);
            let body = match reader.fragment_buffer(sequence, id, data) {
                Ok(body) => body,
                Err(e) => break Disconnect::BadFrame(e.to_string()),
            };
            if let Err(e) = src.read_to(body, data).await {
                break closed_inside(e);
            }
            let why = deliver(&node, &conn, reader.fragment_done(sequence));
            reader.done();
            if let Some(why) = why {
                break why;
            }
            continue;
        }
        src.buf.advance(4);
        let read = match src.frame(len).await {
            Ok(f) => reader.read(&f, Some(&f)),
            Err(e) => break closed_inside(e),
        };
        let why = deliver(&node, &conn, read);
        reader.done();
        if let Some(why) = why {
            break why;
        }
    };
    if let Some(node) = node.upgrade() {
        node.connection_lost(&conn, why);
    }
}

/// Reads and hands on every frame of up to [`BORROW_MAX`] bytes that `buf`
/// holds whole, in order, stopping at the first larger or incomplete one
/// (which the caller reads).
/// `Some(why)` when the connection must close.
fn read_buffered(
    node: &Weak<NodeInner>,
    conn: &Arc<Conn>,
    buf: &mut BytesMut,
    reader: &mut Reader,
    frames: &mut u64,
    max_message: usize,
) -> Option<Disconnect> {
    while buf.len() >= 4 {
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        // Larger frames, and those over the limit (which the caller
        // refuses), take the general way.
        if len > BORROW_MAX.min(max_message) || buf.len() < 4 + len {
            break;
        }
        *frames += 1;
        conn.received.store(*frames, Ordering::Relaxed);
        let read = if len == 0 {
            Ok(None)
        } else {
            reader.read(&buf[4..4 + len], None)
        };
        let why = deliver(node, conn, read);
        reader.done();
        buf.advance(4 + len);
        if why.is_some() {
            return why;
        }
    }
    None
}

/// Acts on what reading a frame gave: a whole message goes to the node.
/// `Some(why)` when the connection must close (a bad frame or control
/// message, or the node has stopped).
fn deliver(
    node: &Weak<NodeInner>,
    conn: &Arc<Conn>,
    read: Result<Option<&mut Incoming>, WireError>,
) -> Option<Disconnect> {
    match read {
        Ok(Some(m)) => {
            let Some(node) = node.upgrade() else {
                return Some(Disconnect::NodeStopped);
            };
            node.dist_incoming(conn, m)
                .err()
                .map(Disconnect::BadControl)
        }
        Ok(None) => None,
        Err(e) => Some(Disconnect::BadFrame(e.to_string())),
    }
}

async fn write_loop(node: Weak<NodeInner>, conn: Arc<Conn>, half: Arc<WriteHalf>, tick: Duration) {
    let period = tick / 4;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_received = conn.received.load(Ordering::Relaxed);
    let mut silent_periods = 0u32;
    loop {
        tokio::select! {
            _ = conn.wake.notified() => {}
            _ = ticker.tick() => {
                let now = conn.received.load(Ordering::Relaxed);
                if now == last_received {
                    silent_periods += 1;
                } else {
                    silent_periods = 0;
                    last_received = now;
                }
                if silent_periods >= 4 {
                    if let Some(node) = node.upgrade() {
                        node.connection_lost(&conn, Disconnect::TickTimeout(tick));
                    }
                    return;
                }
                let mut st = conn.state.lock();
                match &mut *st {
                    State::Up(up) => {
                        if !up.wrote {
                            up.buf.push_bytes(&[0, 0, 0, 0]);
                            up.wrote = false;
                            let _ = conn.push_out(st);
                        } else {
                            up.wrote = false;
                        }
                    }
                    State::Down => return,
                    State::Pending(_) => {}
                }
            }
        }
        // Finish what the senders left when the socket was full: once it
        // takes more, write as a sender does, outside the lock (which sets
        // `flushing` again if the socket fills up again).
        loop {
            match &*conn.state.lock() {
                State::Up(up) if up.flushing => {}
                State::Down => return,
                _ => break,
            }
            if let Err(e) = half.writable().await {
                // The wait registers a descriptor of its own: with none
                // left for the moment, it waits a little and tries again.
                if transport::out_of_descriptors(&e) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                // Nothing more can be written: the connection goes down
                // with what was said, rather than stall to its tick.
                if let Some(node) = node.upgrade() {
                    node.connection_lost(
                        &conn,
                        Disconnect::Closed {
                            inside_frame: false,
                            error: Some(e),
                        },
                    );
                }
                return;
            }
            let mut st = conn.state.lock();
            match &mut *st {
                State::Up(up) if up.flushing => {
                    up.flushing = false;
                    let _ = conn.push_out(st);
                }
                State::Down => return,
                _ => break,
            }
        }
    }
}

/// Where a node named `name@host` listens: a static route, or its EPMD.
pub(crate) async fn resolve(
    name: &str,
    route: Option<SocketAddr>,
    epmd_port: u16,
) -> Result<(SocketAddr, u16), ConnectError> {
    if let Some(addr) = route {
        return Ok((addr, 6));
    }
    let (alive, host) = name
        .split_once('@')
        .ok_or_else(|| ConnectError::BadName(name.to_string()))?;
    let ip = tokio::net::lookup_host((host, epmd_port))
        .await
        .map_err(|error| ConnectError::Resolve {
            host: host.to_string(),
            error,
        })?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| ConnectError::NoIpv4 {
            host: host.to_string(),
        })?;
    let entry = crate::dist::epmd::port_please(ip, alive)
        .await
        .map_err(|error| ConnectError::Epmd {
            host: host.to_string(),
            error,
        })?
        .ok_or_else(|| ConnectError::NotRegistered {
            alive: alive.to_string(),
            host: host.to_string(),
        })?;
    Ok((SocketAddr::new(ip.ip(), entry.port), entry.highest_version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    /// A socket stand-in whose data is there on a given read, and which
    /// never wakes its reader for it: only a reader that reads again without
    /// being woken gets it.
    #[derive(Default)]
    struct Stub {
        /// Data on this runtime poll (never, if `None`).
        polled_ready_on: Option<u32>,
        /// Data on this direct read; `None`: there is no direct read.
        direct_ready_on: Option<u32>,
        polls: u32,
        directs: u32,
        left_driver: bool,
        /// Polled by the runtime read once it has no data (it is woken when
        /// this sends).
        woken_by: Option<tokio::sync::oneshot::Receiver<u8>>,
    }

    impl SpinRead for Stub {
        fn poll_read_into<B: RecvBuf>(
            &mut self,
            cx: &mut std::task::Context<'_>,
            dst: &mut B,
        ) -> Poll<std::io::Result<usize>> {
            self.polls += 1;
            if self.polled_ready_on.is_some_and(|n| self.polls >= n) {
                dst.put_u8(1);
                return Poll::Ready(Ok(1));
            }
            if let Some(rx) = &mut self.woken_by
                && let Poll::Ready(v) = std::pin::Pin::new(rx).poll(cx)
            {
                dst.put_u8(v.unwrap_or(0));
                return Poll::Ready(Ok(1));
            }
            Poll::Pending
        }

        fn read_now<B: RecvBuf>(&mut self, dst: &mut B) -> Option<std::io::Result<usize>> {
            let n = self.direct_ready_on?;
            self.directs += 1;
            if self.directs >= n {
                dst.put_u8(2);
                return Some(Ok(1));
            }
            Some(Err(std::io::ErrorKind::WouldBlock.into()))
        }

        fn leave_driver(&mut self) {
            self.left_driver = true;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_read_takes_what_comes_reading_the_socket_itself_off_the_driver() {
        static TURN: AtomicBool = AtomicBool::new(false);
        let mut stub = Stub {
            direct_ready_on: Some(50),
            ..Stub::default()
        };
        let mut got = BytesMut::new();
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            busy_read(&mut stub, &mut got, Duration::from_secs(2), &TURN),
        )
        .await;
        assert_eq!(n.ok().and_then(|r| r.ok()), Some(1));
        assert_eq!(&got[..], [2], "the direct read's data");
        assert_eq!(stub.directs, 50, "read directly until the data came");
        assert_eq!(stub.polls, 0, "the runtime was not asked meanwhile");
        assert!(
            stub.left_driver,
            "the socket left the driver while spinning"
        );
        assert!(!TURN.load(Ordering::SeqCst), "the turn is given back");
        // Without a spin the read waits to be woken (which never comes),
        // and never reads directly.
        let mut stub = Stub {
            direct_ready_on: Some(1),
            ..Stub::default()
        };
        let n = tokio::time::timeout(
            Duration::from_millis(100),
            busy_read(&mut stub, &mut got, Duration::ZERO, &TURN),
        )
        .await;
        assert!(n.is_err(), "no spin: {n:?}");
        assert_eq!(stub.directs, 0);
        // (Polled once, and once more by the timeout as it ended.)
        assert!(stub.polls <= 2, "it waited, not spun: {} polls", stub.polls);
        assert!(!stub.left_driver);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_read_without_a_direct_read_polls_the_runtime_without_being_woken() {
        static TURN: AtomicBool = AtomicBool::new(false);
        // A TLS socket: only the runtime's read sees its data.
        let mut stub = Stub {
            polled_ready_on: Some(10),
            ..Stub::default()
        };
        let mut got = BytesMut::new();
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            busy_read(&mut stub, &mut got, Duration::from_secs(2), &TURN),
        )
        .await;
        assert_eq!(n.ok().and_then(|r| r.ok()), Some(1));
        assert_eq!((&got[..], stub.polls), (&[1u8][..], 10));
        assert!(!TURN.load(Ordering::SeqCst), "the turn is given back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_one_reader_busy_polls_at_a_time_and_a_spin_ends() {
        static TURN: AtomicBool = AtomicBool::new(false);
        // A reader spinning on what never comes holds the turn...
        let (woke_tx, woke_rx) = tokio::sync::oneshot::channel::<u8>();
        let spinner = tokio::spawn(async move {
            let mut stub = Stub {
                direct_ready_on: Some(u32::MAX),
                woken_by: Some(woke_rx),
                ..Stub::default()
            };
            let mut got = BytesMut::new();
            let n = busy_read(&mut stub, &mut got, Duration::from_millis(300), &TURN).await;
            (n.ok(), got.to_vec())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TURN.load(Ordering::SeqCst), "the first reader spins");
        // ...so a second one waits to be woken instead of spinning.
        let mut second = Stub {
            direct_ready_on: Some(3),
            ..Stub::default()
        };
        let mut got = BytesMut::new();
        let n = tokio::time::timeout(
            Duration::from_millis(100),
            busy_read(&mut second, &mut got, Duration::from_secs(2), &TURN),
        )
        .await;
        assert!(n.is_err(), "the second reader did not spin");
        assert_eq!(second.directs, 1, "one direct read, then it waited");
        // Past its spin the first gives the turn back and waits to be
        // woken, and is.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!TURN.load(Ordering::SeqCst), "the spin ended");
        assert!(!spinner.is_finished());
        woke_tx.send(7).unwrap();
        assert_eq!(spinner.await.unwrap(), (Some(1), vec![7]));
    }
}
