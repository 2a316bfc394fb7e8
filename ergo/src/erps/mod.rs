//! Elixir's Erps: GenServer calls, casts and pushes over TCP or TLS without
//! Erlang distribution.
//!
//! [Erps](https://github.com/ityonemo/erps) (`Erps.Client`, `Erps.Server`,
//! `Erps.Daemon`) connects an Elixir client to a server over a plain socket
//! and frames every message as a packet: a fixed 96-byte header (magic
//! `"erps"`, payload size, packet type, API version, identifier, HMAC key
//! and signature) followed by the payload in the external term format.
//!
//! [`packet`] is that wire format: the [`Packet`](packet::Packet) type, its
//! byte-exact encoder, an incremental [`PacketReader`](packet::PacketReader)
//! for a byte stream, and the checks Erps applies to what it receives
//! (identifier, version requirement, authentication, safe term decoding).
//!
//! [`server`] serves Erps on a supervised daemon ([`crate::net`]): each
//! client is a connection process running an
//! [`ErpsServer`](server::ErpsServer), which answers calls, takes casts
//! and pushes to its client. [`client`] is the other end, a process that
//! connects over TCP or TLS, calls and casts, sends keepalives and hands on
//! pushes. Both interoperate with Elixir's Erps 0.7 (`cargo run --example
//! erps_server` / `erps_client`).
pub mod client;
pub mod packet;
pub mod server;
