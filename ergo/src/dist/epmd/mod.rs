//! EPMD, the Erlang Port Mapper Daemon: a client and a server.
//!
//! A node that accepts distribution connections registers its name and
//! port with the EPMD of its host (`ALIVE2_REQ`) and keeps that connection
//! open: the registration lasts as long as the connection. Another node
//! finds it by asking that EPMD for the name (`PORT_PLEASE2_REQ`).
//! `NAMES_REQ` lists what an EPMD holds (`epmd -names`, `net_adm:names()`).
//!
//! Every request is a 2-byte big-endian length and that many bytes, the
//! first of which says what is asked. The wire format is described in the
//! ERTS User's Guide, "Distribution Protocol"; the server answers exactly
//! as Erlang's `epmd` does, so `erl` nodes register with it unchanged.
//!
//! The port is `ERL_EPMD_PORT` when set, 4369 otherwise, as for `erl`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// EPMD's well-known port.
pub const DEFAULT_PORT: u16 = 4369;

const ALIVE2_REQ: u8 = b'x';
const ALIVE2_RESP: u8 = b'y';
const ALIVE2_X_RESP: u8 = b'v';
const PORT_PLEASE2_REQ: u8 = b'z';
const PORT2_RESP: u8 = b'w';
const NAMES_REQ: u8 = b'n';
const DUMP_REQ: u8 = b'd';
const KILL_REQ: u8 = b'k';
const STOP_REQ: u8 = b's';

/// The longest node name (the part before `@`) EPMD accepts, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// The longest request the server reads; anything longer is refused.
const MAX_REQUEST: usize = 2 + 1 + 2 + 1 + 1 + 2 + 2 + 2 + MAX_NAME_LEN + 2 + 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The EPMD port this process should use: `ERL_EPMD_PORT`, or 4369.
pub fn port_from_env() -> u16 {
    std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

/// Whether a node accepts ordinary connections or is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// An ordinary node (`77`, `M`).
    Normal,
    /// A hidden node (`72`, `H`): C nodes and `-hidden` nodes.
    Hidden,
}

impl NodeType {
    fn byte(self) -> u8 {
        match self {
            NodeType::Normal => 77,
            NodeType::Hidden => 72,
        }
    }

    fn from_byte(b: u8) -> NodeType {
        if b == 72 {
            NodeType::Hidden
        } else {
            NodeType::Normal
        }
    }
}

/// What a node tells EPMD about itself, and what EPMD tells others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The name before the `@`.
    pub name: String,
    /// The port it accepts distribution connections on.
    pub port: u16,
    /// Normal or hidden.
    pub node_type: NodeType,
    /// The transport: 0 is TCP over IPv4.
    pub protocol: u8,
    /// The highest distribution protocol version it speaks (6 since OTP 23).
    pub highest_version: u16,
    /// The lowest (5 for nodes that still talk to pre-23 nodes).
    pub lowest_version: u16,
    /// Opaque bytes handed back to whoever asks.
    pub extra: Vec<u8>,
}

impl NodeEntry {
    /// A normal node `name` on `port`, speaking versions 5 and 6.
    pub fn new(name: impl Into<String>, port: u16) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            port,
            node_type: NodeType::Normal,
            protocol: 0,
            highest_version: 6,
            lowest_version: 5,
            extra: Vec::new(),
        }
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.port.to_be_bytes());
        out.push(self.node_type.byte());
        out.push(self.protocol);
        out.extend_from_slice(&self.highest_version.to_be_bytes());
        out.extend_from_slice(&self.lowest_version.to_be_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&(self.extra.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.extra);
    }

    /// Reads the fields `ALIVE2_REQ` and `PORT2_RESP` share.
    fn decode_fields(b: &[u8]) -> Result<NodeEntry, EpmdError> {
        let mut r = Reader(b);
        let port = r.u16()?;
        let node_type = NodeType::from_byte(r.u8()?);
        let protocol = r.u8()?;
        let highest_version = r.u16()?;
        let lowest_version = r.u16()?;
        let nlen = r.u16()? as usize;
        let name = r.bytes(nlen)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| EpmdError::Malformed("the node name is not UTF-8"))?
            .to_string();
        // Old clients may leave the extra field out altogether.
        let extra = if r.0.is_empty() {
            Vec::new()
        } else {
            let elen = r.u16()? as usize;
            r.bytes(elen)?.to_vec()
        };
        Ok(NodeEntry {
            name,
            port,
            node_type,
            protocol,
            highest_version,
            lowest_version,
            extra,
        })
    }
}

/// Why an EPMD request failed.
#[derive(Debug)]
pub enum EpmdError {
    /// No EPMD answers at that address, or the connection broke.
    Io(io::Error),
    /// EPMD refused the registration: the name is taken (or, for an old
    /// EPMD, not allowed).
    NameTaken(String),
    /// The node name is empty, too long or not valid.
    BadName(String),
    /// The other side sent something that is not EPMD's protocol.
    Malformed(&'static str),
    /// The other side took too long.
    Timeout,
}

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdError::Io(e) => write!(f, "cannot talk to EPMD: {e}"),
            EpmdError::NameTaken(n) => {
                write!(f, "EPMD refused the name {n:?}: it is registered already")
            }
            EpmdError::BadName(n) => write!(
                f,
                "{n:?} is not a node name EPMD accepts (1 to {MAX_NAME_LEN} bytes, no '@')"
            ),
            EpmdError::Malformed(what) => write!(f, "malformed EPMD message: {what}"),
            EpmdError::Timeout => write!(f, "EPMD did not answer in time"),
        }
    }
}

impl std::error::Error for EpmdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpmdError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for EpmdError {
    fn from(e: io::Error) -> Self {
        EpmdError::Io(e)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], EpmdError> {
        if self.0.len() < n {
            return Err(EpmdError::Malformed("message shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, EpmdError> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EpmdError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

fn check_name(name: &str) -> Result<(), EpmdError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('@') {
        return Err(EpmdError::BadName(name.to_string()));
    }
    Ok(())
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

async fn timed<T>(
    fut: impl std::future::Future<Output = io::Result<T>>,
    limit: Duration,
) -> Result<T, EpmdError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(EpmdError::Timeout),
    }
}

/// How long client requests may take, connection included.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

async fn request(addr: SocketAddr, body: &[u8]) -> Result<TcpStream, EpmdError> {
    let mut s = timed(TcpStream::connect(addr), CLIENT_TIMEOUT).await?;
    s.set_nodelay(true)?;
    timed(s.write_all(&frame(body)), CLIENT_TIMEOUT).await?;
    Ok(s)
}

async fn read_to_end(mut s: TcpStream, limit: usize) -> Result<Vec<u8>, EpmdError> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            if out.len() + n > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "EPMD's answer is too long",
                ));
            }
            out.extend_from_slice(&buf[..n]);
        }
    };
    timed(read, CLIENT_TIMEOUT).await?;
    Ok(out)
}

/// A node's registration with EPMD: it lasts as long as this value (the
/// connection it was made on) lives.
#[derive(Debug)]
pub struct Registration {
    stream: TcpStream,
    creation: u32,
}

impl Registration {
    /// The creation EPMD handed out: it tells this incarnation of the node
    /// from earlier ones with the same name.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// Resolves when EPMD has gone away (the connection closed), after
    /// which the name is no longer registered.
    pub async fn closed(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // EPMD sends nothing more on this connection; ignore it.
                Ok(_) => {}
            }
        }
    }
}

/// Registers `entry` with the EPMD at `addr` (`ALIVE2_REQ`).
pub async fn register(addr: SocketAddr, entry: &NodeEntry) -> Result<Registration, EpmdError> {
    check_name(&entry.name)?;
    let mut body = vec![ALIVE2_REQ];
    entry.encode_fields(&mut body);
    let mut stream = request(addr, &body).await?;
    let mut head = [0u8; 2];
    timed(stream.read_exact(&mut head), CLIENT_TIMEOUT).await?;
    let creation = match head {
        [ALIVE2_X_RESP, 0] => {
            let mut c = [0u8; 4];
            timed(stream.read_exact(&mut c), CLIENT_TIMEOUT).await?;
            u32::from_be_bytes(c)
        }
        [ALIVE2_RESP, 0] => {
            let mut c = [0u8; 2];
            timed(stream.read_exact(&mut c), CLIENT_TIMEOUT).await?;
            u32::from(u16::from_be_bytes(c))
        }
        [ALIVE2_X_RESP | ALIVE2_RESP, _] => return Err(EpmdError::NameTaken(entry.name.clone())),
        _ => return Err(EpmdError::Malformed("unexpected answer to ALIVE2_REQ")),
    };
    Ok(Registration { stream, creation })
}

/// Asks the EPMD at `addr` where node `name` listens (`PORT_PLEASE2_REQ`);
/// `None` when it does not know the name.
pub async fn port_please(addr: SocketAddr, name: &str) -> Result<Option<NodeEntry>, EpmdError> {
    check_name(name)?;
    let mut body = vec![PORT_PLEASE2_REQ];
    body.extend_from_slice(name.as_bytes());
    let s = request(addr, &body).await?;
    let answer = read_to_end(s, MAX_REQUEST).await?;
    match answer.as_slice() {
        [PORT2_RESP, 0, rest @ ..] => Ok(Some(NodeEntry::decode_fields(rest)?)),
        [PORT2_RESP, _, ..] => Ok(None),
        _ => Err(EpmdError::Malformed(
            "unexpected answer to PORT_PLEASE2_REQ",
        )),
    }
}

/// What an EPMD holds (`NAMES_REQ`): its own port, and each registered
/// name with its port.
pub async fn names(addr: SocketAddr) -> Result<(u32, Vec<(String, u16)>), EpmdError> {
    let s = request(addr, &[NAMES_REQ]).await?;
    let answer = read_to_end(s, 1 << 20).await?;
    if answer.len() < 4 {
        return Err(EpmdError::Malformed("NAMES answer without EPMD's port"));
    }
    let port = u32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]]);
    let text = String::from_utf8_lossy(&answer[4..]);
    let mut list = Vec::new();
    for line in text.lines() {
        // "name NAME at port PORT"
        let Some(rest) = line.strip_prefix("name ") else {
            continue;
        };
        let Some((name, port)) = rest.rsplit_once(" at port ") else {
            continue;
        };
        if let Ok(port) = port.trim().parse() {
            list.push((name.to_string(), port));
        }
    }
    Ok((port, list))
}

/// Asks the EPMD at `addr` to stop (`KILL_REQ`); `true` if it agreed (it
/// refuses while nodes are registered, unless it was started with
/// `-relaxed_command_check`).
pub async fn kill(addr: SocketAddr) -> Result<bool, EpmdError> {
    let s = request(addr, &[KILL_REQ]).await?;
    Ok(read_to_end(s, 64).await? == b"OK")
}

/// Asks the EPMD at `addr` to forget `name` (`STOP_REQ`); `true` if it did.
/// Only an EPMD started with `-relaxed_command_check` does this.
pub async fn stop_name(addr: SocketAddr, name: &str) -> Result<bool, EpmdError> {
    check_name(name)?;
    let mut body = vec![STOP_REQ];
    body.extend_from_slice(name.as_bytes());
    let s = request(addr, &body).await?;
    Ok(read_to_end(s, 64).await? == b"STOPPED")
}

/// Options of an EPMD server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Allow `KILL_REQ` while nodes are registered, and `STOP_REQ` (as
    /// `epmd -relaxed_command_check`).
    pub relaxed_command_check: bool,
}

struct Registered {
    entry: NodeEntry,
    /// Dropping it ends the registering connection's task.
    evict: Option<tokio::sync::oneshot::Sender<()>>,
    /// Which registration this is, so that a late cleanup does not remove a
    /// newer one under the same name.
    serial: u64,
}

struct ServerState {
    options: ServerOptions,
    port: u16,
    /// Most recent first, as Erlang's EPMD lists them.
    nodes: Mutex<Vec<Registered>>,
    next_creation: AtomicU32,
    next_serial: AtomicU64,
    stop: watch::Sender<bool>,
}

/// An EPMD server, answering as Erlang's `epmd` does. It runs on the tokio
/// runtime it was started on until [`EpmdServer::shutdown`] or a granted
/// `KILL_REQ`; its registrations end with it.
#[derive(Clone)]
pub struct EpmdServer {
    state: Arc<ServerState>,
    addr: SocketAddr,
}

impl fmt::Debug for EpmdServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpmdServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EpmdServer {
    /// Listens on `addr` and serves until shut down. Fails when the address
    /// is taken (another EPMD is there, most likely).
    pub async fn start(addr: SocketAddr, options: ServerOptions) -> io::Result<EpmdServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, _) = watch::channel(false);
        let state = Arc::new(ServerState {
            options,
            port: addr.port(),
            nodes: Mutex::new(Vec::new()),
            // Creations below 4 are those of 16-bit-creation nodes.
            next_creation: AtomicU32::new(super::random_u32().max(4)),
            next_serial: AtomicU64::new(0),
            stop,
        });
        let server = EpmdServer { state, addr };
        let s = server.clone();
        tokio::spawn(async move { s.accept_loop(listener).await });
        tracing::info!(%addr, "EPMD listening");
        Ok(server)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The names registered now, most recent first, with their ports.
    pub fn names(&self) -> Vec<(String, u16)> {
        self.state
            .nodes
            .lock()
            .iter()
            .map(|r| (r.entry.name.clone(), r.entry.port))
            .collect()
    }

    /// Stops listening and drops every registration.
    pub fn shutdown(&self) {
        let _ = self.state.stop.send(true);
        self.state.nodes.lock().clear();
    }

    /// Resolves once the server has stopped (shut down, or killed with
    /// `KILL_REQ`).
    pub async fn stopped(&self) {
        until_stopped(self.state.stop.subscribe()).await;
    }

    async fn accept_loop(self, listener: TcpListener) {
        let stop = until_stopped(self.state.stop.subscribe());
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let s = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = s.serve(stream).await {
                                tracing::debug!(%peer, error = %e, "EPMD request refused");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait a moment
                        // rather than spin.
                        tracing::warn!(error = %e, "EPMD accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    async fn serve(&self, mut stream: TcpStream) -> Result<(), EpmdError> {
        let _ = stream.set_nodelay(true);
        let mut len = [0u8; 2];
        timed(stream.read_exact(&mut len), REQUEST_TIMEOUT).await?;
        let len = u16::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_REQUEST {
            return Err(EpmdError::Malformed("request length out of range"));
        }
        let mut body = vec![0u8; len];
        timed(stream.read_exact(&mut body), REQUEST_TIMEOUT).await?;
        match body[0] {
            ALIVE2_REQ => self.alive2(stream, &body[1..]).await,
            PORT_PLEASE2_REQ => {
                let name = String::from_utf8_lossy(&body[1..]);
                let found = self
                    .state
                    .nodes
                    .lock()
                    .iter()
                    .find(|r| r.entry.name == name)
                    .map(|r| r.entry.clone());
                let answer = match found {
                    Some(entry) => {
                        let mut out = vec![PORT2_RESP, 0];
                        entry.encode_fields(&mut out);
                        out
                    }
                    None => vec![PORT2_RESP, 1],
                };
                timed(stream.write_all(&answer), REQUEST_TIMEOUT).await
            }
            NAMES_REQ | DUMP_REQ => {
                let mut out = u32::from(self.state.port).to_be_bytes().to_vec();
                for (name, port) in self.names() {
                    if body[0] == NAMES_REQ {
                        out.extend_from_slice(format!("name {name} at port {port}\n").as_bytes());
                    } else {
                        out.extend_from_slice(
                            format!("active name     <{name}> at port {port}\n\0").as_bytes(),
                        );
                    }
                }
                timed(stream.write_all(&out), REQUEST_TIMEOUT).await
            }
            KILL_REQ => {
                let allowed =
                    self.state.options.relaxed_command_check || self.state.nodes.lock().is_empty();
                let answer: &[u8] = if allowed { b"OK" } else { b"NO" };
                timed(stream.write_all(answer), REQUEST_TIMEOUT).await?;
                if allowed {
                    tracing::info!("EPMD killed on request");
                    self.shutdown();
                }
                Ok(())
            }
            STOP_REQ => {
                if !self.state.options.relaxed_command_check {
                    // As Erlang's EPMD: without the relaxed check the
                    // request is dropped unanswered.
                    return Ok(());
                }
                let name = String::from_utf8_lossy(&body[1..]).into_owned();
                let removed = {
                    let mut nodes = self.state.nodes.lock();
                    let before = nodes.len();
                    nodes.retain(|r| r.entry.name != name);
                    before != nodes.len()
                };
                let answer: &[u8] = if removed { b"STOPPED" } else { b"NOEXIST" };
                timed(stream.write_all(answer), REQUEST_TIMEOUT).await
            }
            _ => Err(EpmdError::Malformed("unknown request")),
        }
    }

    async fn alive2(&self, mut stream: TcpStream, fields: &[u8]) -> Result<(), EpmdError> {
        let entry = NodeEntry::decode_fields(fields)?;
        let x_resp = entry.highest_version >= 6;
        let refusal: &[u8] = if x_resp {
            &[ALIVE2_X_RESP, 1, 0, 0, 0, 0]
        } else {
            &[ALIVE2_RESP, 1, 0, 0]
        };
        if check_name(&entry.name).is_err() {
            timed(stream.write_all(refusal), REQUEST_TIMEOUT).await?;
            return Err(EpmdError::BadName(entry.name));
        }
        let (evict_tx, evict_rx) = tokio::sync::oneshot::channel();
        let registered = {
            let mut nodes = self.state.nodes.lock();
            if nodes.iter().any(|r| r.entry.name == entry.name) {
                None
            } else {
                let creation = if x_resp {
                    // Past u32::MAX it wraps; 0 to 3 are skipped.
                    self.state
                        .next_creation
                        .fetch_add(1, Ordering::Relaxed)
                        .max(4)
                } else {
                    // Old nodes take a 2-bit creation, 1 to 3.
                    super::random_u32() % 3 + 1
                };
                let serial = self.state.next_serial.fetch_add(1, Ordering::Relaxed);
                nodes.insert(
                    0,
                    Registered {
                        entry: entry.clone(),
                        evict: Some(evict_tx),
                        serial,
                    },
                );
                Some((creation, serial))
            }
        };
        let Some((creation, serial)) = registered else {
            timed(stream.write_all(refusal), REQUEST_TIMEOUT).await?;
            return Err(EpmdError::NameTaken(entry.name));
        };
        let mut answer = if x_resp {
            let mut a = vec![ALIVE2_X_RESP, 0];
            a.extend_from_slice(&creation.to_be_bytes());
            a
        } else {
            let mut a = vec![ALIVE2_RESP, 0];
            a.extend_from_slice(&(creation as u16).to_be_bytes());
            a
        };
        let wrote = timed(stream.write_all(&answer), REQUEST_TIMEOUT).await;
        answer.clear();
        if wrote.is_ok() {
            tracing::debug!(name = %entry.name, port = entry.port, creation, "EPMD registered");
            // The registration lasts until the node closes the connection
            // (or writes to it, which the protocol does not allow), or the
            // server stops.
            let mut buf = [0u8; 64];
            tokio::select! {
                _ = stream.read(&mut buf) => {}
                _ = evict_rx => {}
                _ = until_stopped(self.state.stop.subscribe()) => {}
            }
        }
        self.state
            .nodes
            .lock()
            .retain(|r| !(r.entry.name == entry.name && r.serial == serial));
        tracing::debug!(name = %entry.name, "EPMD unregistered");
        wrote
    }
}

/// Resolves once the server's stop flag is set (or its sender is gone).
async fn until_stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // Ends the registering connection's task (it then closes the
        // connection, which tells the node it is no longer registered).
        if let Some(tx) = self.evict.take() {
            let _ = tx.send(());
        }
    }
}

/// A node's name kept registered with the EPMD of its host, whatever
/// happens to that EPMD: when none is listening the node starts one of its
/// own (so that it runs with nothing else installed), and when the EPMD it
/// registered with goes away it registers again, with a newcomer or with an
/// EPMD it starts itself. The registration ends when this is dropped.
#[derive(Debug)]
pub struct Publication {
    task: tokio::task::JoinHandle<()>,
    state: Arc<Mutex<PublishedState>>,
    /// The name registered.
    name: String,
}

#[derive(Debug, Default)]
struct PublishedState {
    creation: u32,
    hosted: Option<EpmdServer>,
    registrations: u64,
}

/// What a node does when no EPMD answers on its port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WhenNoEpmd {
    /// Host an EPMD in this OS process (the default). It goes when the node
    /// stops: the other nodes registered with it can no longer be found by
    /// name until they register with another EPMD, and a warning names
    /// them when that happens. While the node runs, if its EPMD goes away,
    /// it registers again or hosts one.
    #[default]
    Host,
    /// Start `program -daemon -port PORT` (Erlang's `epmd`, or this
    /// workspace's `epmd` binary): a name service that outlives this node,
    /// as the one `erl` starts does.
    Daemon(std::path::PathBuf),
}

impl WhenNoEpmd {
    /// [`WhenNoEpmd::Daemon`] with the `epmd` found next to this program
    /// (where `cargo build` puts this workspace's), or else on `PATH`
    /// (Erlang's); `None` when there is none.
    pub fn daemon() -> Option<WhenNoEpmd> {
        let exe = std::env::current_exe().ok()?;
        let mut dirs: Vec<std::path::PathBuf> = exe
            .ancestors()
            .skip(1)
            .take(3)
            .map(|d| d.to_path_buf())
            .collect();
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        dirs.into_iter()
            .map(|d| d.join("epmd"))
            .find(|p| p.is_file())
            .map(WhenNoEpmd::Daemon)
    }
}

impl Publication {
    /// The creation of the current registration.
    pub fn creation(&self) -> u32 {
        self.state.lock().creation
    }

    /// Whether this node is hosting the EPMD it is registered with.
    pub fn hosts_epmd(&self) -> bool {
        self.state.lock().hosted.is_some()
    }

    /// How many times the name has been registered (1 until the EPMD went
    /// away once).
    pub fn registrations(&self) -> u64 {
        self.state.lock().registrations
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(server) = self.state.lock().hosted.take() {
            let others: Vec<String> = server
                .names()
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| *n != self.name)
                .collect();
            if !others.is_empty() {
                tracing::warn!(
                    port = server.local_addr().port(),
                    "stopping the EPMD this node hosts: {} can no longer be found by name until registered with another EPMD (DistOptions::when_no_epmd = WhenNoEpmd::Daemon keeps one running)",
                    others.join(", ")
                );
            }
            server.shutdown();
        }
    }
}

/// Registers `entry` with the EPMD on `epmd_port` of this host, starting an
/// embedded EPMD there when none answers, and keeps it registered (see
/// [`Publication`]). Fails when the name is taken.
pub async fn publish(epmd_port: u16, entry: NodeEntry) -> Result<Publication, EpmdError> {
    publish_with(epmd_port, entry, WhenNoEpmd::Host).await
}

/// [`publish`], doing what `when_none` says when no EPMD answers.
pub async fn publish_with(
    epmd_port: u16,
    entry: NodeEntry,
    when_none: WhenNoEpmd,
) -> Result<Publication, EpmdError> {
    check_name(&entry.name)?;
    if let WhenNoEpmd::Daemon(program) = &when_none {
        start_daemon(program, epmd_port).await;
    }
    let name = entry.name.clone();
    let state = Arc::new(Mutex::new(PublishedState::default()));
    let first = register_or_host(epmd_port, &entry, &state).await?;
    let st = state.clone();
    let task = tokio::spawn(async move {
        let mut reg = first;
        loop {
            reg.closed().await;
            tracing::warn!(name = %entry.name, "EPMD went away; registering again");
            if let Some(old) = st.lock().hosted.take() {
                old.shutdown();
            }
            let mut wait = Duration::from_millis(10);
            reg = loop {
                match register_or_host(epmd_port, &entry, &st).await {
                    Ok(r) => break r,
                    Err(e) => {
                        tracing::debug!(name = %entry.name, error = %e, "EPMD registration failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(1));
                    }
                }
            };
        }
    });
    Ok(Publication { task, state, name })
}

/// Starts `program -daemon -port PORT` when no EPMD answers on the port,
/// and waits (a few seconds at most) until one does. What goes wrong is
/// logged; the caller then registers, or hosts one, as usual.
async fn start_daemon(program: &std::path::Path, port: u16) {
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    if names(local).await.is_ok() {
        return;
    }
    let started = tokio::process::Command::new(program)
        .args(["-daemon", "-port", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    match started {
        Ok(s) if s.success() => {}
        Ok(s) => {
            tracing::warn!(program = %program.display(), "could not start an EPMD daemon ({s}); hosting one");
            return;
        }
        Err(e) => {
            tracing::warn!(program = %program.display(), "could not start an EPMD daemon ({e}); hosting one");
            return;
        }
    }
    for _ in 0..100 {
        if names(local).await.is_ok() {
            tracing::info!(port, program = %program.display(), "no EPMD was running; started {} -daemon, which outlives this node", program.display());
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tracing::warn!(port, program = %program.display(), "the EPMD daemon did not answer; hosting one");
}

async fn register_or_host(
    epmd_port: u16,
    entry: &NodeEntry,
    state: &Mutex<PublishedState>,
) -> Result<Registration, EpmdError> {
    let local = SocketAddr::from(([127, 0, 0, 1], epmd_port));
    let reg = match register(local, entry).await {
        Ok(reg) => reg,
        Err(EpmdError::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            // Nobody listens: host an EPMD, on every interface as Erlang's
            // does, and register with it.
            let any = SocketAddr::from(([0, 0, 0, 0], epmd_port));
            match EpmdServer::start(any, ServerOptions::default()).await {
                Ok(server) => {
                    tracing::info!(port = epmd_port, name = %entry.name, "no EPMD was running; this node hosts one, which stops with it (DistOptions::when_no_epmd can start a daemon instead)");
                    match register(local, entry).await {
                        Ok(reg) => {
                            state.lock().hosted = Some(server);
                            reg
                        }
                        Err(e) => {
                            server.shutdown();
                            return Err(e);
                        }
                    }
                }
                // Another node started one meanwhile: register with it.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => register(local, entry).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e),
    };
    let mut st = state.lock();
    st.creation = reg.creation();
    st.registrations += 1;
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_encode_as_alive2_and_port2_fields_and_decode_back() {
        let mut e = NodeEntry::new("abc", 5555);
        e.extra = vec![1, 2];
        let mut out = Vec::new();
        e.encode_fields(&mut out);
        assert_eq!(
            out,
            [
                0x15, 0xb3, 77, 0, 0, 6, 0, 5, 0, 3, b'a', b'b', b'c', 0, 2, 1, 2
            ]
        );
        assert_eq!(NodeEntry::decode_fields(&out).unwrap(), e);
        assert!(NodeEntry::decode_fields(&out[..8]).is_err());
    }

    #[test]
    fn names_with_an_at_sign_or_of_no_length_are_refused() {
        assert!(check_name("a@b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
        assert!(check_name("node_1").is_ok());
    }
}
