//! What can go wrong in the distribution, as types: why a connection could
//! not be made ([`ConnectError`]) and why one was closed ([`Disconnect`]),
//! each saying what happened in its `Display`, for the log line and for
//! whoever asks.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ergo_etf::Atom;

use crate::dist::epmd::EpmdError;
use crate::dist::handshake::HandshakeError;

/// Why a connection to another node could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The name is not `name@host`.
    BadName(String),
    /// The host's name did not resolve.
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// The host has no IPv4 address.
    NoIpv4 {
        /// The host.
        host: String,
    },
    /// The host's EPMD could not be asked.
    Epmd {
        /// The host.
        host: String,
        /// What went wrong.
        error: EpmdError,
    },
    /// The host's EPMD knows no node of that name.
    NotRegistered {
        /// The node's name before the `@`.
        alive: String,
        /// The host.
        host: String,
    },
    /// The node's port did not take the connection.
    Connect {
        /// Where the node was said to listen.
        addr: SocketAddr,
        /// What the socket said.
        error: std::io::Error,
    },
    /// The handshake failed (a wrong cookie, say).
    Handshake(HandshakeError),
    /// The TLS handshake failed: the reason in an operator's words (an
    /// unknown CA, an expired certificate, a wrong host, a peer that does
    /// not speak TLS).
    Tls(String),
    /// Another node answered at the address.
    WrongNode {
        /// The address.
        addr: SocketAddr,
        /// The node asked for.
        expected: Atom,
        /// The node that answered.
        found: String,
    },
    /// Setting up the connection took longer than allowed.
    TimedOut(Duration),
    /// The connection was closed while it was being set up.
    Closed,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::BadName(n) => write!(f, "{n} is not a node name"),
            ConnectError::Resolve { host, error } => {
                write!(f, "cannot resolve host {host}: {error}")
            }
            ConnectError::Tls(why) => write!(f, "TLS: {why}"),
            ConnectError::NoIpv4 { host } => write!(f, "host {host} has no IPv4 address"),
            ConnectError::Epmd { host, error } => write!(f, "EPMD on {host}: {error}"),
            ConnectError::NotRegistered { alive, host } => {
                write!(f, "{alive} is not registered with EPMD on {host}")
            }
            ConnectError::Connect { addr, error } => write!(f, "cannot connect to {addr}: {error}"),
            ConnectError::Handshake(e) => write!(f, "handshake: {e}"),
            ConnectError::WrongNode {
                addr,
                expected,
                found,
            } => write!(f, "{addr} is {found}, not {expected}"),
            ConnectError::TimedOut(d) => write!(f, "timed out after {d:?}"),
            ConnectError::Closed => f.write_str("the connection was closed meanwhile"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Resolve { error, .. } | ConnectError::Connect { error, .. } => {
                Some(error)
            }
            ConnectError::Epmd { error, .. } => Some(error),
            ConnectError::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a connection to another node was closed.
#[derive(Debug)]
pub enum Disconnect {
    /// The peer closed it (or the socket failed); `inside_frame` when it
    /// ended half way through a frame.
    Closed {
        /// It ended inside a frame.
        inside_frame: bool,
        /// What the socket said, unless it was a plain end of stream.
        error: Option<std::io::Error>,
    },
    /// A frame longer than the node accepts.
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit ([`crate::dist::DistOptions::max_message`]).
        limit: usize,
    },
    /// A frame that does not read as the protocol says.
    BadFrame(String),
    /// A control message that does not read as the protocol says.
    BadControl(String),
    /// Nothing came from the peer within `net_ticktime`.
    TickTimeout(Duration),
    /// This node stopped.
    NodeStopped,
    /// This node closed it ([`crate::dist::Distribution::disconnect`]).
    ByThisNode,
    /// The peer connected again, and the new connection replaced this one.
    Replaced,
    /// It was never made.
    ConnectFailed(ConnectError),
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::Closed {
                inside_frame,
                error,
            } => {
                f.write_str("connection closed")?;
                if *inside_frame {
                    f.write_str(" inside a frame")?;
                }
                match error {
                    Some(e) => write!(f, " ({e})"),
                    None => Ok(()),
                }
            }
            Disconnect::FrameTooLarge { len, limit } => {
                write!(f, "a frame of {len} bytes is over the {limit} byte limit")
            }
            Disconnect::BadFrame(why) => write!(f, "bad frame: {why}"),
            Disconnect::BadControl(why) => write!(f, "bad control message: {why}"),
            Disconnect::TickTimeout(t) => write!(
                f,
                "no word from the node within net_ticktime ({} s)",
                t.as_secs_f64()
            ),
            Disconnect::NodeStopped => f.write_str("the node has stopped"),
            Disconnect::ByThisNode => f.write_str("disconnected by this node"),
            Disconnect::Replaced => f.write_str("replaced by a new connection from the same node"),
            Disconnect::ConnectFailed(e) => write!(f, "cannot connect: {e}"),
        }
    }
}

impl std::error::Error for Disconnect {}
