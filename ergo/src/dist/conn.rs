//! One connection to another node: set up on first use or when the other
//! node connects, written to directly by the sending process when the
//! socket takes the bytes at once (a writer task finishes what it does not
//! take), read by a reader task that hands each message to its process, and
//! kept alive with ticks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ergo_etf::{Atom, Bytes, Term};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::dist::handshake::{self, Peer};
use crate::dist::wire::{Reader, Writer};
use crate::node::NodeInner;

/// What a connection is doing.
enum State {
    /// Connecting: messages wait here, in order, as terms.
    Pending(Vec<(Term, Option<Term>)>),
    /// Up: messages are encoded into `buf` and written.
    Up(Box<Up>),
    /// Closed; nothing more is sent.
    Down,
}

struct Up {
    half: Arc<OwnedWriteHalf>,
    writer: Writer,
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    sent: usize,
    /// The writer task is waiting for the socket to take the rest.
    flushing: bool,
    /// Something was written since the last tick period.
    wrote: bool,
}

/// A connection to one peer node.
pub(crate) struct Conn {
    pub(crate) peer: Atom,
    state: Mutex<State>,
    /// Wakes the writer task (bytes left over, or closing).
    wake: tokio::sync::Notify,
    /// Frames received, ticks included: the tick check watches it move.
    received: AtomicU64,
    pub(crate) info: OnceLock<Peer>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
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
            info: OnceLock::new(),
            reader: Mutex::new(None),
        })
    }

    /// `true` once the handshake is done and until the connection closes.
    pub(crate) fn is_up(&self) -> bool {
        matches!(*self.state.lock(), State::Up(_))
    }

    /// Sends a control message and its payload (queued while connecting).
    pub(crate) fn send(&self, control: Term, payload: Option<Term>) -> Result<(), Closed> {
        let mut st = self.state.lock();
        match &mut *st {
            State::Pending(q) => {
                q.push((control, payload));
                Ok(())
            }
            State::Up(up) => {
                up.writer.write(&control, payload.as_ref(), &mut up.buf);
                self.push_out(up)
            }
            State::Down => Err(Closed),
        }
    }

    /// Writes what `up.buf` holds, as far as the socket takes it now; the
    /// writer task is woken for the rest.
    fn push_out(&self, up: &mut Up) -> Result<(), Closed> {
        up.wrote = true;
        if up.flushing {
            return Ok(());
        }
        match write_now(up) {
            Ok(true) => Ok(()),
            Ok(false) => {
                up.flushing = true;
                self.wake.notify_one();
                Ok(())
            }
            Err(_) => {
                // The reader sees the broken socket too and closes the
                // connection; wake the writer so it notices sooner.
                self.wake.notify_one();
                Err(Closed)
            }
        }
    }

    /// Takes the connection down. Returns `false` if it already was.
    pub(crate) fn close(&self) -> bool {
        let old = std::mem::replace(&mut *self.state.lock(), State::Down);
        if let Some(r) = self.reader.lock().take() {
            r.abort();
        }
        self.wake.notify_one();
        !matches!(old, State::Down)
    }
}

/// Writes from `up.buf` until it is all out (`true`) or the socket is full
/// (`false`).
fn write_now(up: &mut Up) -> std::io::Result<bool> {
    while up.sent < up.buf.len() {
        match up.half.try_write(&up.buf[up.sent..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => up.sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    up.buf.clear();
    up.sent = 0;
    // Do not keep a buffer the size of the largest message ever sent.
    if up.buf.capacity() > 1 << 20 {
        up.buf = Vec::with_capacity(64 * 1024);
    }
    Ok(true)
}

/// Settings a connection needs.
#[derive(Clone, Debug)]
pub(crate) struct ConnConfig {
    pub(crate) local: handshake::Local,
    pub(crate) tick: Duration,
    pub(crate) max_message: usize,
}

/// Makes `conn` live on `stream` after a handshake with `peer`: moves what
/// waited into the stream, and starts the reader and the writer.
pub(crate) fn start(
    node: &Arc<NodeInner>,
    conn: &Arc<Conn>,
    stream: TcpStream,
    peer: Peer,
    cfg: &ConnConfig,
) -> Result<bool, Closed> {
    let (rd, wr) = stream.into_split();
    let half = Arc::new(wr);
    {
        let mut st = conn.state.lock();
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
            buf: Vec::new(),
            sent: 0,
            flushing: false,
            wrote: false,
        });
        for (control, payload) in queued {
            up.writer.write(&control, payload.as_ref(), &mut up.buf);
        }
        let _ = conn.push_out(&mut up);
        *st = State::Up(up);
    }
    let _ = conn.info.set(peer);
    let reader = node.runtime().spawn(read_loop(
        Arc::downgrade(node),
        conn.clone(),
        rd,
        cfg.max_message,
    ));
    *conn.reader.lock() = Some(reader.abort_handle());
    node.runtime().spawn(write_loop(
        Arc::downgrade(node),
        conn.clone(),
        half,
        cfg.tick,
    ));
    Ok(true)
}

async fn read_loop(node: Weak<NodeInner>, conn: Arc<Conn>, rd: OwnedReadHalf, max_message: usize) {
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut reader = Reader::new(max_message);
    let why = loop {
        let len = match rd.read_u32().await {
            Ok(n) => n as usize,
            Err(e) => break format!("connection closed ({e})"),
        };
        conn.received.fetch_add(1, Ordering::Relaxed);
        if len == 0 {
            continue;
        }
        if len > max_message {
            break format!("a frame of {len} bytes is over the {max_message} byte limit");
        }
        let mut frame = vec![0u8; len];
        if let Err(e) = rd.read_exact(&mut frame).await {
            break format!("connection closed inside a frame ({e})");
        }
        let incoming = match reader.read(Bytes::from(frame)) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => break format!("bad frame: {e}"),
        };
        let Some(node) = node.upgrade() else { return };
        if let Err(e) = node.dist_incoming(&conn, incoming) {
            break format!("bad control message: {e}");
        }
    };
    if let Some(node) = node.upgrade() {
        node.connection_lost(&conn, &why);
    }
}

async fn write_loop(
    node: Weak<NodeInner>,
    conn: Arc<Conn>,
    half: Arc<OwnedWriteHalf>,
    tick: Duration,
) {
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
                        node.connection_lost(&conn, &format!(
                            "no word from the node within net_ticktime ({} s)",
                            tick.as_secs_f64()
                        ));
                    }
                    return;
                }
                let mut st = conn.state.lock();
                match &mut *st {
                    State::Up(up) => {
                        if !up.wrote {
                            up.buf.extend_from_slice(&[0, 0, 0, 0]);
                            let _ = conn.push_out(up);
                        }
                        up.wrote = false;
                    }
                    State::Down => return,
                    State::Pending(_) => {}
                }
            }
        }
        // Finish what the senders left.
        loop {
            {
                let mut st = conn.state.lock();
                match &mut *st {
                    State::Up(up) => {
                        if !up.flushing {
                            break;
                        }
                        match write_now(up) {
                            Ok(true) => {
                                up.flushing = false;
                                break;
                            }
                            Ok(false) => {}
                            Err(_) => break,
                        }
                    }
                    State::Down => return,
                    State::Pending(_) => break,
                }
            }
            if half.writable().await.is_err() {
                break;
            }
        }
    }
}

/// Where a node named `name@host` listens: a static route, or its EPMD.
pub(crate) async fn resolve(
    name: &str,
    route: Option<SocketAddr>,
    epmd_port: u16,
) -> Result<(SocketAddr, u16), String> {
    if let Some(addr) = route {
        return Ok((addr, 6));
    }
    let (alive, host) = name
        .split_once('@')
        .ok_or_else(|| format!("{name} is not a node name"))?;
    let ip = tokio::net::lookup_host((host, epmd_port))
        .await
        .map_err(|e| format!("cannot resolve host {host}: {e}"))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| format!("host {host} has no IPv4 address"))?;
    let entry = crate::dist::epmd::port_please(ip, alive)
        .await
        .map_err(|e| format!("EPMD on {host}: {e}"))?
        .ok_or_else(|| format!("{alive} is not registered with EPMD on {host}"))?;
    Ok((SocketAddr::new(ip.ip(), entry.port), entry.highest_version))
}
