//! Supervised TCP and TLS daemons: a process that listens on a port and
//! gives each inbound connection a process of its own, as `Erps.Daemon`
//! and ranch do.
//!
//! A connection's process runs a [`Handler`], a typed behaviour like a
//! GenServer: `handle_data` gets the bytes the peer sends, in order, and
//! the socket is read only as fast as `handle_data` returns (back-pressure:
//! a slow handler slows its peer, never fills memory); calls, casts and
//! messages from other processes arrive as in a GenServer; the handler
//! writes with [`ConnContext::write`].
//!
//! The [`Daemon`] (start it with [`start`], or put [`child_spec`] under a
//! supervisor) listens, accepts with a pool of acceptors, and starts each
//! connection under a `simple_one_for_one` supervisor of its own, or under
//! one of the user's made by [`connection_supervisor`] (Erps'
//! `server_supervisor:`; its connections outlive the daemon), handing it the
//! common data and options. It bounds the number of
//! connections (one beyond the limit is closed at once), closes a
//! connection idle for too long, serves TLS from PEM files it can reload
//! without a restart, and when it stops, either lets the connections finish
//! (up to a time) or ends them.
//!
//! A connection process that crashes is restarted by its supervisor only if
//! its restart type says so (`Temporary`, the default, never; `Transient`
//! after an abnormal exit): the restarted process gets the same socket, so
//! the peer stays connected and only the handler's state is lost.
//!
//! # What lives here
//!
//! - this file: [`Handler`], the [`Connection`] GenServer running one, and
//!   [`ConnContext`]'s socket operations;
//! - `daemon`: [`Daemon`], [`DaemonSpec`], [`DaemonRef`], the acceptors;
//! - `tls`: [`TlsFiles`], the certificate a daemon serves and reloads.
//!
//! `cargo run --example daemon -- --port 0` runs a line-echo daemon.

mod daemon;
mod tls;

pub use daemon::{
    Daemon, DaemonCall, DaemonError, DaemonRef, DaemonSpec, StopMode, child_spec,
    connection_supervisor, start,
};
pub use tls::TlsFiles;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use ergo_etf::{FromTerm, Term, ToTerm};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use crate::gen_server::{Flow, GenServer, Reply, ServerContext, Source};
use crate::message::Message;
use crate::reason::Reason;
use crate::supervisor::Restart;

/// A byte stream a connection runs on: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

type BoxStream = Box<dyn Stream>;
type Reader = ReadHalf<BoxStream>;
type Writer = WriteHalf<BoxStream>;

/// A connection process's context: its GenServer context, with the socket.
pub type ConnContext<H> = ServerContext<Connection<H>>;

/// What a connection's process does: a typed behaviour, as a GenServer is.
pub trait Handler: Send + Sized + 'static {
    /// The data every connection of the daemon starts with (cloned for
    /// each).
    type Args: Clone + Send + Sync + 'static;
    /// The requests `handle_call` serves (from other processes).
    type Call: FromTerm + Send + 'static;
    /// The replies to calls.
    type Reply: ToTerm + Send + 'static;
    /// The requests `handle_cast` serves.
    type Cast: FromTerm + Send + 'static;

    /// Builds the connection's state once the connection is up (after the
    /// TLS handshake). An `Err` closes it.
    fn init(
        args: Self::Args,
        peer: SocketAddr,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = Result<Self, Reason>> + Send;

    /// Bytes from the peer. The next read waits until this returns.
    fn handle_data(
        &mut self,
        data: Bytes,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = Flow> + Send;

    /// The peer closed its side. By default the connection ends (`normal`).
    fn handle_closed(&mut self, ctx: &mut ConnContext<Self>) -> impl Future<Output = Flow> + Send {
        let _ = ctx;
        async { Flow::Stop(Reason::Normal) }
    }

    /// Serves a call. By default the connection ends with `{bad_call, Type}`.
    fn handle_call(
        &mut self,
        request: Self::Call,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = Reply<Self::Reply>> + Send {
        let _ = (request, ctx);
        let reason = crate::gen_server::unhandled::<Self::Call>("bad_call");
        async move { Reply::Stop(reason, None) }
    }

    /// Serves a cast. By default the connection ends with `{bad_cast,
    /// Type}`.
    fn handle_cast(
        &mut self,
        request: Self::Cast,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (request, ctx);
        let reason = crate::gen_server::unhandled::<Self::Cast>("bad_cast");
        async move { Flow::Stop(reason) }
    }

    /// Any other message. By default it is logged.
    fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        tracing::warn!(connection = %ctx.pid(), %message, "unexpected message");
        async { Flow::Continue }
    }

    /// Runs as the connection's process stops (not when it is killed).
    fn terminate(
        &mut self,
        reason: &Reason,
        ctx: &mut ConnContext<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }
}

/// Why the socket could not take a write.
#[derive(Debug)]
pub enum WriteError {
    /// The connection is closed (or was never up).
    Closed,
    /// The write failed.
    Io(std::io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Closed => f.write_str("the connection is closed"),
            WriteError::Io(e) => write!(f, "writing to the connection failed: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A connection's socket, kept apart from its process so that a restarted
/// process takes it over (and dropped, closing it, with the last holder).
pub(crate) struct Slot {
    /// Before the connection is up: the accepted TCP stream.
    fresh: Mutex<Option<tokio::net::TcpStream>>,
    /// The reading half, while no process is reading it (between a
    /// process's end and its restart).
    read: Mutex<Option<Reader>>,
    write: Arc<tokio::sync::Mutex<Option<Writer>>>,
    peer: SocketAddr,
    /// The daemon's count of open connections, which this one leaves when
    /// its socket goes.
    open: Arc<AtomicUsize>,
}

impl Slot {
    pub(crate) fn new(
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        open: Arc<AtomicUsize>,
    ) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Slot {
            fresh: Mutex::new(Some(tcp)),
            read: Mutex::new(None),
            write: Arc::new(tokio::sync::Mutex::new(None)),
            peer,
            open,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sockets of a daemon's connections, by the number their supervisor
/// starts them with.
pub(crate) type Slots = Arc<Mutex<HashMap<i64, Arc<Slot>>>>;

/// What a connection process is started with.
pub struct ConnStart<H: Handler> {
    pub(crate) id: i64,
    pub(crate) slots: Slots,
    pub(crate) args: H::Args,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) idle: Option<Duration>,
    pub(crate) restart: Restart,
}

impl<H: Handler> std::fmt::Debug for ConnStart<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnStart({})", self.id)
    }
}

/// What the connection's socket gives its process.
enum Event {
    Data(Bytes),
    Closed,
    Idle,
    Failed(String),
}

/// The GenServer running a connection's [`Handler`].
pub struct Connection<H: Handler> {
    user: Option<H>,
    start: ConnStart<H>,
    slot: Arc<Slot>,
    /// The connection is over for good: its socket may go.
    finished: bool,
}

impl<H: Handler> std::fmt::Debug for Connection<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("handler", &std::any::type_name::<H>())
            .field("peer", &self.slot.peer)
            .field("up", &self.user.is_some())
            .finish_non_exhaustive()
    }
}

/// What a connection's context holds besides a GenServer's: the socket's
/// writing half, and data of the protocol run on it.
struct ConnExt {
    writer: Arc<tokio::sync::Mutex<Option<Writer>>>,
    extra: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl<H: Handler> ServerContext<Connection<H>> {
    fn conn_ext(&self) -> Option<&ConnExt> {
        self.ext.as_ref().and_then(|e| e.downcast_ref::<ConnExt>())
    }

    /// Keeps `value` with the connection, for a protocol built on it.
    pub(crate) fn set_ext_extra<T: std::any::Any + Send + Sync>(&mut self, value: T) {
        if let Some(e) = self.ext.as_mut().and_then(|e| e.downcast_mut::<ConnExt>()) {
            e.extra = Some(Box::new(value));
        }
    }

    /// What [`Self::set_ext_extra`] kept, if it is a `T`.
    pub(crate) fn ext_ref<T: std::any::Any>(&self) -> Option<&T> {
        self.conn_ext()
            .and_then(|e| e.extra.as_ref())
            .and_then(|x| x.downcast_ref::<T>())
    }

    /// Writes `bytes` to the peer, waiting while the socket is full.
    pub async fn write(&mut self, bytes: impl AsRef<[u8]>) -> Result<(), WriteError> {
        let writer = self
            .conn_ext()
            .map(|e| e.writer.clone())
            .ok_or(WriteError::Closed)?;
        let mut w = writer.lock().await;
        let w = w.as_mut().ok_or(WriteError::Closed)?;
        w.write_all(bytes.as_ref()).await.map_err(WriteError::Io)?;
        w.flush().await.map_err(WriteError::Io)
    }

    /// Closes the connection: the peer sees the end of the stream. The
    /// process carries on until its handler stops it.
    pub async fn close(&mut self) {
        let writer = self.conn_ext().map(|e| e.writer.clone());
        if let Some(writer) = writer
            && let Some(mut w) = writer.lock().await.take()
        {
            let _ = w.shutdown().await;
        }
    }
}

/// The reader's first buffer, and the most it grows to.
const READ_BUF_MIN: usize = 4 * 1024;
const READ_BUF_MAX: usize = 64 * 1024;

/// The connection's socket, read by its process itself (its server
/// loop's [`Source`]) whenever the process waits for work and its mailbox
/// is empty: one chunk per message, and the next read only once the
/// process has handled the last chunk, so the peer sends only as fast as
/// the process handles. No task of its own: a chunk reaches its handler
/// with no hand-over between tasks.
struct SocketSource {
    reader: Option<Reader>,
    /// Where the read half goes back when the process ends, for a process
    /// that takes the connection over.
    slot: Arc<Slot>,
    /// Small to begin with (a daemon may hold many idle connections), and
    /// doubled up to 64 KiB while reads fill it.
    buf: Vec<u8>,
    /// The idle timeout, and its timer.
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    /// A chunk was handed over since the timer was last set: the idle time
    /// counts again from the next wait (the chunk has been handled then).
    rearm: bool,
    /// The stream ended, failed or idled out: nothing more to read.
    done: bool,
}

impl SocketSource {
    fn new(slot: Arc<Slot>, idle: Option<Duration>) -> Self {
        let reader = slot.read.lock().take();
        SocketSource {
            done: reader.is_none(),
            reader,
            slot,
            buf: vec![0u8; READ_BUF_MIN],
            idle: idle.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            rearm: false,
        }
    }

    /// The next event of the socket, registering `cx` when there is none.
    fn poll_event(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Event> {
        let Some(reader) = self.reader.as_mut() else {
            // Restarted after the read half went: the peer is gone.
            return Poll::Ready(Event::Closed);
        };
        let mut rb = ReadBuf::new(&mut self.buf);
        match Pin::new(reader).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Event::Closed);
                }
                let chunk = Bytes::copy_from_slice(rb.filled());
                if n == self.buf.len() && n < READ_BUF_MAX {
                    self.buf.resize(n * 2, 0);
                }
                self.rearm = true;
                Poll::Ready(Event::Data(chunk))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Event::Failed(e.to_string())),
            Poll::Pending => {
                let Some((d, timer)) = self.idle.as_mut() else {
                    return Poll::Pending;
                };
                if std::mem::take(&mut self.rearm) {
                    timer.as_mut().reset(tokio::time::Instant::now() + *d);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Event::Idle),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Source for SocketSource {
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Message> {
        if self.done {
            return Poll::Pending;
        }
        let event = std::task::ready!(self.poll_event(cx));
        self.done = !matches!(event, Event::Data(_));
        Poll::Ready(Message::local(event))
    }
}

impl Drop for SocketSource {
    fn drop(&mut self) {
        // Back in the slot, for a process that takes the connection over
        // (what TLS has buffered of the stream goes with it).
        if let Some(reader) = self.reader.take() {
            *self.slot.read.lock() = Some(reader);
        }
    }
}

impl<H: Handler> Connection<H> {
    /// Makes the connection usable: the TLS handshake if any, the halves
    /// in the slot, the writer in the context, the handler's `init`, and
    /// the reading half as the process's source.
    async fn come_up(&mut self, ctx: &mut ConnContext<H>) -> Result<(), Reason> {
        let fresh = self.slot.fresh.lock().take();
        if let Some(tcp) = fresh {
            let stream: BoxStream = match &self.start.tls {
                Some(cfg) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            return Err(Reason::ShutdownWith(Arc::new(Term::tuple([
                                Term::atom("tls_handshake"),
                                Term::binary(e.to_string()),
                            ]))));
                        }
                        Err(_) => {
                            return Err(Reason::ShutdownWith(Arc::new(Term::atom(
                                "tls_handshake_timeout",
                            ))));
                        }
                    }
                }
                None => Box::new(tcp),
            };
            let (r, w) = tokio::io::split(stream);
            *self.slot.read.lock() = Some(r);
            *self.slot.write.lock().await = Some(w);
        }
        ctx.ext = Some(Box::new(ConnExt {
            writer: self.slot.write.clone(),
            extra: None,
        }));
        let handler = H::init(self.start.args.clone(), self.slot.peer, ctx).await?;
        self.user = Some(handler);
        ctx.source = Some(Box::new(SocketSource::new(
            self.slot.clone(),
            self.start.idle,
        )));
        Ok(())
    }

    /// Whether the supervisor will start this connection again after the
    /// process ends with `reason`.
    fn restarts_after(&self, reason: &Reason) -> bool {
        match self.start.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_clean(),
            Restart::Temporary => false,
        }
    }
}

impl<H: Handler> Drop for Connection<H> {
    fn drop(&mut self) {
        // Killed (no `terminate`): the supervisor restarts a transient
        // connection (killed is abnormal), never a temporary one.
        if self.finished || self.start.restart == Restart::Temporary {
            self.start.slots.lock().remove(&self.start.id);
        }
    }
}

/// A connection's calls: the handler's.
impl<H: Handler> GenServer for Connection<H> {
    type Args = ConnStart<H>;
    type Call = H::Call;
    type Reply = H::Reply;
    type Cast = H::Cast;

    async fn init(start: ConnStart<H>, ctx: &mut ConnContext<H>) -> Result<Self, Reason> {
        ctx.set_behaviour(|| crate::process::Behaviour {
            name: "connection",
            module: std::any::type_name::<H>(),
        });
        let slot = start.slots.lock().get(&start.id).cloned();
        let Some(slot) = slot else {
            // Restarted after its socket went: nothing to serve.
            return Err(Reason::Normal);
        };
        // The handshake and `init` run once the supervisor has its pid: a
        // slow peer never holds up the daemon.
        ctx.continue_with(Term::atom("come_up"));
        Ok(Connection {
            user: None,
            start,
            slot,
            finished: false,
        })
    }

    async fn handle_continue(&mut self, _value: Message, ctx: &mut ConnContext<H>) -> Flow {
        match self.come_up(ctx).await {
            Ok(()) => Flow::Continue,
            Err(reason) => {
                self.finished = true;
                Flow::Stop(reason)
            }
        }
    }

    async fn handle_call(&mut self, request: H::Call, ctx: &mut ConnContext<H>) -> Reply<H::Reply> {
        match self.user.as_mut() {
            Some(h) => h.handle_call(request, ctx).await,
            None => Reply::NoReply,
        }
    }

    async fn handle_cast(&mut self, request: H::Cast, ctx: &mut ConnContext<H>) -> Flow {
        match self.user.as_mut() {
            Some(h) => h.handle_cast(request, ctx).await,
            None => Flow::Continue,
        }
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut ConnContext<H>) -> Flow {
        let Some(h) = self.user.as_mut() else {
            return Flow::Continue;
        };
        match message.downcast::<Event>() {
            Ok(Event::Data(data)) => h.handle_data(data, ctx).await,
            Ok(Event::Closed) => h.handle_closed(ctx).await,
            Ok(Event::Idle) => {
                Flow::Stop(Reason::ShutdownWith(Arc::new(Term::atom("idle_timeout"))))
            }
            Ok(Event::Failed(why)) => Flow::Stop(Reason::ShutdownWith(Arc::new(Term::tuple([
                Term::atom("socket_error"),
                Term::binary(why),
            ])))),
            Err(other) => h.handle_info(other, ctx).await,
        }
    }

    async fn terminate(&mut self, reason: &Reason, ctx: &mut ConnContext<H>) {
        if let Some(h) = self.user.as_mut() {
            h.terminate(reason, ctx).await;
        }
        // The read half goes back to the slot now, before the supervisor
        // hears of the end and starts a process that takes it over.
        ctx.source = None;
        if !self.restarts_after(reason) {
            self.finished = true;
            if let Some(mut w) = self.slot.write.lock().await.take() {
                let _ = w.shutdown().await;
            }
        }
    }
}
