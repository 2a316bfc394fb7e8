//! A node program for OTP's `peer` (and `ergo::peer`) to start and
//! control: it reads the command line `peer` builds (`-name`/`-sname`,
//! `-setcookie`, `-user peer`, `-origin …`), connects back to its origin
//! over distribution, TCP or standard I/O, and answers `peer:call`,
//! `peer:cast` and `peer:send` with what an ergo node answers (the
//! introspection functions an Erlang node answers over RPC), until the
//! origin stops it.
//!
//! ```erlang
//! {ok, Peer, Node} = peer:start_link(#{exec => "target/release/ergo-peer",
//!                                      name => "rust", host => "127.0.0.1",
//!                                      connection => standard_io}),
//! 'rust@127.0.0.1' = peer:call(Peer, erlang, node, []),
//! peer:stop(Peer).
//! ```
//!
//! A program of your own does the same, with its own RPC functions, by
//! calling `ergo::peer::serve_if_peer` at the top of `main`.

#[tokio::main]
async fn main() {
    ergo::logger::init();
    ergo::peer::serve_if_peer(|_node| async {}).await;
    eprintln!(
        "ergo-peer is started by a peer origin, with the arguments OTP's peer passes:\n  \
         ergo-peer [-name NAME | -sname NAME] [-setcookie COOKIE] -user peer [-origin BASE64 | -origin IPS PORT]"
    );
    std::process::exit(2);
}
