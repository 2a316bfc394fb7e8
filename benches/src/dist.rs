//! The distribution workloads of `dist_vs_erlang.sh`, as
//! `erlang/dist_bench.erl` runs them on the Erlang side: an echo GenServer
//! that replies to every call with the request, and the four payloads of
//! the call figures.

use ergo::gen_server::{GenServer, Reply, ServerContext};
use ergo::{Pid, Reason, Term};

/// Size of the large binary payload (the Erlang side's `?BIG`).
pub const BIG: usize = 1_000_000;

/// Replies to every call with the request (Erlang's
/// `handle_call(Req, _, S) -> {reply, Req, S}`); casts are ignored.
#[derive(Debug, Default)]
pub struct TermEcho;

impl GenServer for TermEcho {
    type Args = ();
    type Call = Term;
    type Reply = Term;
    type Cast = Term;

    async fn init(_args: (), _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        Ok(TermEcho)
    }

    async fn handle_call(&mut self, request: Term, _ctx: &mut ServerContext<Self>) -> Reply<Term> {
        Reply::Reply(request)
    }
}

/// The payloads of the call figures, by the suffix of their figure names:
/// `int` (42), `str` (the binary `"hello world"`), `pid` (`{Pid, 1}`, with
/// `pid` the caller's own) and `bin1mb` (a binary of [`BIG`] pseudo-random
/// bytes).
pub fn payloads(pid: Pid) -> Vec<(&'static str, Term)> {
    vec![
        ("int", Term::Int(42)),
        ("str", Term::binary("hello world")),
        ("pid", Term::tuple([Term::Pid(pid), Term::Int(1)])),
        ("bin1mb", Term::Binary(big_binary().into())),
    ]
}

/// [`BIG`] bytes of xorshift output (the content does not matter to the
/// encoding; it only keeps the bytes from being all alike).
pub fn big_binary() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BIG)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A `#[gen_server]` that replies to `{echo, N}` with `N`: the typed
/// client's figure calls it as `IntEchoRef::echo`, the untyped one with
/// `Node::call` and the term `{echo, 42}`.
#[derive(Debug, Default)]
pub struct IntEcho;

#[ergo::gen_server]
impl IntEcho {
    fn init() -> Self {
        IntEcho
    }

    /// Replies with `n`.
    #[call]
    fn echo(&self, n: i64) -> i64 {
        n
    }
}
