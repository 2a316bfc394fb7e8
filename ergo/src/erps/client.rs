//! Erps clients: a process that connects to an Erps server (Elixir's or
//! ours) over TCP or TLS, calls and casts to it, sends keepalives, and
//! hands on what the server pushes (`Erps.Client`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ergo_etf::{ConvertError, FromTerm, Term, ToTerm};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use super::packet::{
    DecodeOptions, EncodeOptions, KEEPALIVE, Packet, PacketReader, PacketType, VersionReq,
    encode_with,
};
use crate::gen_server::{CallError, Flow, From, GenServer, Reply, ServerContext, ServerRef};
use crate::message::Message;
use crate::node::Node;
use crate::reason::Reason;

/// How a client connects and speaks.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The API identifier written in every packet.
    pub identifier: String,
    /// The API version written in every packet.
    pub version: (u8, u8, u8),
    /// Refuse server packets of versions that do not meet this.
    pub versions: Option<String>,
    /// Decode payloads in safe mode (the default, as Erps).
    pub safe: bool,
    /// How often to send a keepalive (60 s by default, as Erps).
    pub keepalive: Duration,
    /// Connect over TLS, trusting the CAs of this PEM bundle.
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (the host by default).
    pub server_name: Option<String>,
    /// This client's certificate chain and key (PEM files), for servers
    /// that require one (Erps' TLS transport does by default).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// How long to wait for the connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// The largest packet accepted.
    pub max_packet_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            identifier: String::new(),
            version: (0, 0, 0),
            versions: None,
            safe: true,
            keepalive: Duration::from_secs(60),
            tls_ca: None,
            server_name: None,
            client_cert: None,
            connect_timeout: Duration::from_secs(5),
            max_packet_size: super::packet::DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

/// Why a client's call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ErpsCallError {
    /// The server answered with an error packet (`{error, Reason}` in
    /// Erps).
    Remote(Term),
    /// No reply in time, or the client is gone.
    Call(String),
}

impl std::fmt::Display for ErpsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErpsCallError::Remote(t) => write!(f, "the server answered with an error: {t}"),
            ErpsCallError::Call(e) => write!(f, "the call failed: {e}"),
        }
    }
}

impl std::error::Error for ErpsCallError {}

/// The client process's requests.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientRequest {
    /// `{call, Request}`: a call to the server.
    Call(Term),
    /// `{cast, Request}`.
    Cast(Term),
}

impl FromTerm for ClientRequest {
    fn from_term(t: &Term) -> Result<Self, ConvertError> {
        match t.as_tuple() {
            Some([k, v]) if k.is_atom("call") => Ok(ClientRequest::Call(v.clone())),
            Some([k, v]) if k.is_atom("cast") => Ok(ClientRequest::Cast(v.clone())),
            _ => Err(ConvertError::new("{call, Request} | {cast, Request}", t)),
        }
    }
}

impl ToTerm for ClientRequest {
    fn to_term(&self) -> Term {
        match self {
            ClientRequest::Call(t) => Term::tuple([Term::atom("call"), t.clone()]),
            ClientRequest::Cast(t) => Term::tuple([Term::atom("cast"), t.clone()]),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// What the reader task and the keepalive timer tell the client process.
enum Event {
    Packet(Packet),
    Closed(String),
    Keepalive,
}

/// The client process.
pub struct ErpsClientProc {
    writer: WriteHalf<Box<dyn Stream>>,
    options: ClientOptions,
    next_ref: i64,
    pending: HashMap<i64, (From<Term>, Instant)>,
    pushes: mpsc::UnboundedSender<Term>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ErpsClientProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpsClientProc")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Drop for ErpsClientProc {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the client process starts with.
pub struct ClientStart {
    host: String,
    port: u16,
    options: ClientOptions,
    pushes: mpsc::UnboundedSender<Term>,
}

impl std::fmt::Debug for ClientStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientStart({}:{})", self.host, self.port)
    }
}

fn failed(what: &str, why: impl std::fmt::Display) -> Reason {
    Reason::other(Term::tuple([
        Term::atom(what),
        Term::binary(why.to_string()),
    ]))
}

async fn open(host: &str, port: u16, o: &ClientOptions) -> Result<Box<dyn Stream>, Reason> {
    let tcp = tokio::time::timeout(
        o.connect_timeout,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| failed("connect", "timed out"))?
    .map_err(|e| failed("connect", e))?;
    let _ = tcp.set_nodelay(true);
    let Some(ca) = &o.tls_ca else {
        return Ok(Box::new(tcp));
    };
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| failed("tls_ca", e))?;
    for c in certs {
        roots
            .add(c.map_err(|e| failed("tls_ca", e))?)
            .map_err(|e| failed("tls_ca", e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("tls", e))?
        .with_root_certificates(roots);
    let cfg = match &o.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            use rustls::pki_types::PrivateKeyDer;
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| failed("tls_client_cert", e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed("tls_client_cert", e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| failed("tls_client_key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| failed("tls_client_cert", e))?
        }
    };
    let name = o.server_name.clone().unwrap_or_else(|| host.to_string());
    let name = ServerName::try_from(name).map_err(|e| failed("tls_server_name", e))?;
    let tls = tokio::time::timeout(
        o.connect_timeout,
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| failed("tls_handshake", "timed out"))?
    .map_err(|e| failed("tls_handshake", e))?;
    Ok(Box::new(tls))
}

impl ErpsClientProc {
    fn stamp(&self, p: Packet) -> Packet {
        p.with_identifier(self.options.identifier.clone())
            .with_version(self.options.version)
    }

    async fn send(&mut self, p: Packet) -> Result<(), String> {
        let bytes =
            encode_with(&self.stamp(p), &EncodeOptions::default()).map_err(|e| e.to_string())?;
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())
    }

    fn answer(&mut self, reference: &Term, result: Term) {
        if let Some(r) = reference.as_i64()
            && let Some((from, _)) = self.pending.remove(&r)
        {
            from.reply(result);
        }
    }
}

impl GenServer for ErpsClientProc {
    type Args = ClientStart;
    type Call = ClientRequest;
    type Reply = Term;
    type Cast = ClientRequest;

    async fn init(start: ClientStart, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        let stream = open(&start.host, start.port, &start.options).await?;
        let (mut reader, writer) = tokio::io::split(stream);
        let mut decode = DecodeOptions::default().with_safe(start.options.safe);
        if let Some(req) = start
            .options
            .versions
            .as_deref()
            .and_then(VersionReq::parse)
        {
            decode = decode.with_version_req(req);
        }
        let (node, pid) = (ctx.node().clone(), ctx.pid());
        let max = start.options.max_packet_size;
        let read = tokio::spawn(async move {
            let mut packets = PacketReader::with_options(max, decode);
            let mut buf = vec![0u8; 64 * 1024];
            let why = loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) => break "the server closed the connection".to_string(),
                    Ok(n) => n,
                    Err(e) => break e.to_string(),
                };
                packets.feed(&buf[..n]);
                let fatal = loop {
                    match packets.next_packet() {
                        Ok(None) => break None,
                        Ok(Some(p)) => {
                            let _ = node.send_message(pid.into(), Message::local(Event::Packet(p)));
                        }
                        Err(e) if e.is_fatal() => break Some(e.to_string()),
                        Err(e) => {
                            tracing::warn!(client = %pid, error = %e, "refused an Erps packet")
                        }
                    }
                };
                if let Some(why) = fatal {
                    break why;
                }
            };
            let _ = node.send_message(pid.into(), Message::local(Event::Closed(why)));
        });
        let (node, pid) = (ctx.node().clone(), ctx.pid());
        let every = start.options.keepalive;
        let keepalive = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                if node
                    .send_message(pid.into(), Message::local(Event::Keepalive))
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(ErpsClientProc {
            writer,
            options: start.options,
            next_ref: 0,
            pending: HashMap::new(),
            pushes: start.pushes,
            tasks: vec![read, keepalive],
        })
    }

    async fn handle_call(
        &mut self,
        req: ClientRequest,
        ctx: &mut ServerContext<Self>,
    ) -> Reply<Term> {
        match req {
            ClientRequest::Call(t) => {
                self.next_ref += 1;
                let r = self.next_ref;
                if let Err(e) = self.send(Packet::call(Term::Int(r), t)).await {
                    return Reply::Stop(
                        Reason::ShutdownWith(Arc::new(Term::binary(e))),
                        Some(Term::tuple([
                            Term::atom("error"),
                            Term::atom("disconnected"),
                        ])),
                    );
                }
                if let Some(from) = ctx.reply_later() {
                    self.pending.insert(r, (from, Instant::now()));
                }
                Reply::NoReply
            }
            ClientRequest::Cast(t) => match self.send(Packet::cast(t)).await {
                Ok(()) => Reply::Reply(Term::atom("ok")),
                Err(e) => Reply::Stop(
                    Reason::ShutdownWith(Arc::new(Term::binary(e))),
                    Some(Term::tuple([
                        Term::atom("error"),
                        Term::atom("disconnected"),
                    ])),
                ),
            },
        }
    }

    async fn handle_cast(&mut self, req: ClientRequest, _ctx: &mut ServerContext<Self>) -> Flow {
        let p = match req {
            ClientRequest::Cast(t) => Packet::cast(t),
            ClientRequest::Call(t) => Packet::cast(t),
        };
        match self.send(p).await {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::Stop(Reason::ShutdownWith(Arc::new(Term::binary(e)))),
        }
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut ServerContext<Self>) -> Flow {
        match message.downcast::<Event>() {
            Ok(Event::Packet(p)) => {
                match p.kind {
                    PacketType::Push => {
                        let _ = self.pushes.send(p.payload);
                    }
                    PacketType::Reply => {
                        if let Some((reply, reference)) = p.as_reply() {
                            let result = Term::tuple([Term::atom("ok"), reply.clone()]);
                            let reference = reference.clone();
                            self.answer(&reference, result);
                        }
                    }
                    PacketType::Error => match p.payload.as_tuple() {
                        Some([error, reference]) if reference.as_i64().is_some() => {
                            let result = Term::tuple([Term::atom("error"), error.clone()]);
                            let reference = reference.clone();
                            self.answer(&reference, result);
                        }
                        _ => {
                            tracing::error!(client = %ctx.pid(), error = %p.payload, "error response from the Erps server");
                        }
                    },
                    _ => {}
                }
                Flow::Continue
            }
            Ok(Event::Keepalive) => {
                // Calls nobody waits for any more go (Erps' reply TTL).
                let stale = Instant::now() - Duration::from_secs(60).max(self.options.keepalive);
                self.pending.retain(|_, (_, at)| *at > stale);
                match self.writer.write_all(&KEEPALIVE).await {
                    Ok(()) => Flow::Continue,
                    Err(e) => {
                        Flow::Stop(Reason::ShutdownWith(Arc::new(Term::binary(e.to_string()))))
                    }
                }
            }
            Ok(Event::Closed(why)) => Flow::Stop(Reason::ShutdownWith(Arc::new(Term::tuple([
                Term::atom("disconnected"),
                Term::binary(why),
            ])))),
            Err(_) => Flow::Continue,
        }
    }
}

/// A connected Erps client.
#[derive(Clone, Debug)]
pub struct ErpsClient {
    server: ServerRef<ErpsClientProc>,
}

/// What the server pushes, in order.
pub type Pushes = mpsc::UnboundedReceiver<Term>;

impl ErpsClient {
    /// Connects to the Erps server at `host:port` with a client process of
    /// `node`'s; gives the client and the stream of pushes.
    pub async fn connect(
        node: &Node,
        host: &str,
        port: u16,
        options: ClientOptions,
    ) -> Result<(ErpsClient, Pushes), Reason> {
        let (tx, rx) = mpsc::unbounded_channel();
        let start = ClientStart {
            host: host.to_string(),
            port,
            options,
            pushes: tx,
        };
        let server = node.start_server::<ErpsClientProc>(start).await?;
        Ok((ErpsClient { server }, rx))
    }

    /// The client process.
    pub fn pid(&self) -> Option<crate::Pid> {
        self.server.pid()
    }

    /// Calls the server and waits up to `timeout` for the reply.
    pub async fn call(
        &self,
        request: impl ToTerm,
        timeout: Duration,
    ) -> Result<Term, ErpsCallError> {
        let reply = self
            .server
            .call_timeout(ClientRequest::Call(request.to_term()), timeout)
            .await
            .map_err(|e: CallError| ErpsCallError::Call(e.to_string()))?;
        match reply {
            Term::Tuple(mut v) if v.len() == 2 && v[0].is_atom("ok") => {
                Ok(v.pop().unwrap_or(Term::NIL))
            }
            Term::Tuple(mut v) if v.len() == 2 && v[0].is_atom("error") => {
                Err(ErpsCallError::Remote(v.pop().unwrap_or(Term::NIL)))
            }
            other => Err(ErpsCallError::Call(format!("unexpected reply {other}"))),
        }
    }

    /// Casts to the server.
    pub fn cast(&self, request: impl ToTerm) {
        self.server.cast(ClientRequest::Cast(request.to_term()));
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.server.stop(Reason::Normal).await;
    }
}
