//! Hostile peers: a client that completes a valid handshake with the
//! `interop_node` example (an OS process) and then sends what no Erlang
//! node would: malformed control messages, truncated and oversized frames,
//! fragment storms, atom cache abuse and atom floods, deep terms and huge
//! length fields. After each, the connection it came on is closed (where
//! the input is an error), a well-behaved `erl` node is still served, and
//! the node's resident memory stays within a bound. Malformed `global`
//! messages (valid frames) leave `global` working both ways.

mod common;

use std::time::Duration;

use common::{Erl, InteropNode, free_port};
use ergo::dist::epmd;
use ergo::dist::handshake::{self, Local};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How much the node's memory may grow over the whole suite.
const RSS_BOUND_KIB: u64 = 64 << 10;

/// The hostile client: a node named `intruder@127.0.0.1` with the right
/// cookie, connected to `node` after a valid handshake.
async fn intrude(epmd_port: u16, node: &str, n: usize) -> TcpStream {
    let alive = node.split('@').next().unwrap();
    let entry = epmd::port_please(([127, 0, 0, 1], epmd_port).into(), alive)
        .await
        .unwrap()
        .expect("the node is registered");
    let mut s = TcpStream::connect(("127.0.0.1", entry.port)).await.unwrap();
    let me = Local {
        name: format!("intruder{n}@127.0.0.1"),
        cookie: "cookie".into(),
        flags: handshake::flags::MANDATORY_25
            | handshake::flags::MANDATORY_26
            | handshake::flags::DIST_HDR_ATOM_CACHE
            | handshake::flags::FRAGMENTS
            | handshake::flags::PUBLISHED,
        creation: 7,
    };
    tokio::time::timeout(Duration::from_secs(10), handshake::initiate(&mut s, &me, 6))
        .await
        .expect("the handshake in time")
        .expect("the handshake");
    s
}

/// Whether the node closes `s` within `limit` (ticks it sends are read and
/// dropped meanwhile).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

/// A frame: a 4-byte length, then `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A normal message frame with no atom cache entries: control
/// `{2, '', Pid}` (a SEND to a pid of `node` that does not exist) and
/// `payload` (ETF without the version byte).
fn send_frame(node: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![131, 68, 0, 104, 3, 97, 2, 119, 0, 88, 119, node.len() as u8];
    b.extend_from_slice(node.as_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(payload);
    frame(&b)
}

/// A first fragment (`131 69`) of message `sequence`, claiming `id`
/// fragments in all.
fn first_fragment(sequence: u64, id: u64) -> Vec<u8> {
    let mut b = vec![131, 69];
    b.extend_from_slice(&sequence.to_be_bytes());
    b.extend_from_slice(&id.to_be_bytes());
    b.push(0);
    b.extend_from_slice(&[104, 3, 97, 2]);
    frame(&b)
}

/// The node still serves a well-behaved Erlang node: a call answers.
fn still_serves(e: &mut Erl, after: &str) {
    assert_eq!(
        e.eval(&format!(
            "gen_server:call({{echo, N}}, {{served, {after}}})"
        )),
        format!("{{served,{after}}}"),
        "the node stopped serving after {after}"
    );
}

#[test]
fn hostile_input_closes_its_own_connection_only_and_the_node_keeps_serving_in_bounded_memory() {
    let port = free_port();
    let r = InteropNode::start("r_hostile", "cookie", port);
    let mut e = Erl::start("e_hostile", "cookie", port, &[]);
    assert_eq!(
        e.eval(&format!("N = '{}', net_adm:ping(N)", r.name)),
        "pong"
    );
    still_serves(&mut e, "start");
    let baseline = r.rss_kib();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = r.name.clone();
    let mut n = 0;
    // Each attack on a connection of its own, which the node must close;
    // `then_end`: the attacker closes its side after writing.
    let mut attack = |what: &str, bytes: Vec<u8>, then_end: bool| {
        n += 1;
        let node = r.name.clone();
        let closed = rt.block_on(async move {
            let mut s = intrude(port, &node, n).await;
            // The node may close the connection before it has read all;
            // a write that fails then is what a hostile peer gets.
            let _ = s.write_all(&bytes).await;
            if then_end {
                let _ = s.shutdown().await;
            }
            closed_within(&mut s, Duration::from_secs(10)).await
        });
        assert!(closed, "the connection stayed open after {what}");
    };
    // Malformed frames and control messages.
    attack("an unknown frame type", frame(&[9, 9]), false);
    attack(
        "a control message that is not a tuple",
        frame(&[131, 68, 0, 97, 1]),
        false,
    );
    attack(
        "an empty tuple as control message",
        frame(&[131, 68, 0, 104, 0]),
        false,
    );
    attack(
        "a control message cut short",
        frame(&[131, 68, 0, 104, 3, 97]),
        true,
    );
    // Truncated and oversized frames.
    let mut cut = 100u32.to_be_bytes().to_vec();
    cut.extend_from_slice(&[131, 68, 0]);
    attack("a frame cut short, then the end", cut, true);
    attack(
        "a frame length of 4 GiB",
        vec![0xFF, 0xFF, 0xFF, 0xFF, 131],
        true,
    );
    // Huge length fields inside a term.
    attack(
        "a binary claiming 4 GiB",
        send_frame(&node, &[109, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]),
        true,
    );
    attack(
        "a list claiming 4 G elements",
        send_frame(&node, &[108, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1]),
        true,
    );
    attack(
        "a map claiming 4 G pairs",
        send_frame(&node, &[116, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1]),
        true,
    );
    // A term nested 100,000 deep.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        deep.extend_from_slice(&[108, 0, 0, 0, 1]);
    }
    deep.extend(std::iter::repeat_n(106, 100_001));
    attack(
        "a list nested 100,000 deep",
        send_frame(&node, &deep),
        false,
    );
    // Atom cache abuse.
    attack(
        "a reference to an empty atom cache slot",
        frame(&[131, 68, 1, 0, 5, 104, 1, 82, 0]),
        true,
    );
    attack(
        "an atom cache entry that is not UTF-8",
        frame(&[131, 68, 1, 8, 3, 2, 0xFF, 0xFE, 104, 1, 82, 0]),
        true,
    );
    attack(
        "an atom cache reference past the header",
        frame(&[131, 68, 0, 104, 1, 82, 200]),
        true,
    );
    // A fragment storm: first fragments that each claim 2^40 more, on
    // one connection, past the limit of messages in flight.
    let mut storm = Vec::new();
    for seq in 0..5000u64 {
        storm.extend_from_slice(&first_fragment(seq + 1, 1 << 40));
    }
    attack("5,000 fragmented messages started at once", storm, false);
    // Following fragments of messages never started, and out of order.
    let mut orphan = vec![131, 70];
    orphan.extend_from_slice(&77u64.to_be_bytes());
    orphan.extend_from_slice(&3u64.to_be_bytes());
    orphan.push(0);
    attack(
        "a fragment of a message never started",
        frame(&orphan),
        false,
    );
    // An atom flood: new atoms named inline, past the per-peer budget.
    let stamp = std::process::id();
    let mut flood = Vec::new();
    for i in 0..110_000u32 {
        let name = format!("flood_{stamp}_{i}");
        let mut p = vec![119, name.len() as u8];
        p.extend_from_slice(name.as_bytes());
        flood.extend_from_slice(&send_frame(&node, &p));
    }
    attack("110,000 new atoms", flood, false);
    still_serves(&mut e, "attacks");
    // A node with a name never seen before is still admitted.
    let mut fresh = Erl::start("e_never_seen_before", "cookie", port, &[]);
    assert_eq!(fresh.eval(&format!("net_adm:ping('{}')", r.name)), "pong");
    let grown = r.rss_kib().saturating_sub(baseline);
    assert!(
        grown < RSS_BOUND_KIB,
        "the node's memory grew by {grown} KiB over the attacks"
    );
    // Each refusal is logged, naming what was wrong.
    for (parts, what) in [
        (
            &["nodedown", "more than 1024 fragmented messages"][..],
            "the storm",
        ),
        (
            &["nodedown", "added more than 100000 atoms"][..],
            "the flood",
        ),
        (&["nodedown", "byte limit"][..], "the 4 GiB frame"),
    ] {
        let (found, log) = r.wait_log(parts, Duration::from_secs(5));
        assert!(found, "no log line for {what}:\n{log}");
    }
}

/// A message frame from the intruder to the process registered as `to`
/// (a `REG_SEND`, no atom cache entries) carrying `msg`.
fn reg_send_frame(from: ergo::Pid, to: &str, msg: &ergo::Term) -> Vec<u8> {
    use ergo::Term;
    let control = Term::tuple([
        Term::from(6i64),
        Term::Pid(from),
        Term::atom(""),
        Term::atom(to),
    ]);
    let mut b = vec![131, 68, 0];
    // Each term without its version byte.
    b.extend_from_slice(&ergo::etf::encode(&control)[1..]);
    b.extend_from_slice(&ergo::etf::encode(msg)[1..]);
    frame(&b)
}

#[test]
fn malformed_global_messages_from_a_peer_leave_global_working_both_ways() {
    use ergo::{Atom, Pid, Term};
    let port = free_port();
    let r = InteropNode::start("r_hglobal", "cookie", port);
    let mut e = Erl::start("e_hglobal", "cookie", port, &[]);
    assert_eq!(
        e.eval(&format!(
            "N = '{}', pong = net_adm:ping(N), global:sync()",
            r.name
        )),
        "ok"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let me = Atom::from("intruder0@127.0.0.1");
    let fake = Term::Pid(Pid::new(me, 77, 0, 7));
    let cast = |m: Term| Term::tuple([Term::atom("$gen_cast"), m]);
    let a = Term::atom;
    let garbage = [
        cast(Term::tuple([
            a("init_connect"),
            a("vsn"),
            Term::Atom(me),
            a("x"),
        ])),
        cast(Term::tuple([
            a("init_connect"),
            Term::tuple([Term::from(8i64), Term::from(1i64)]),
            Term::Atom(me),
            a("no_locker"),
        ])),
        cast(Term::tuple([
            a("init_connect"),
            Term::tuple([]),
            a("x"),
            a("y"),
        ])),
        cast(Term::tuple([
            a("exchange"),
            Term::Atom(me),
            a("not_a_list"),
            Term::NIL,
            Term::from(1i64),
        ])),
        cast(Term::tuple([
            a("exchange_ops"),
            Term::Atom(me),
            a("t"),
            a("ops"),
            a("res"),
        ])),
        cast(Term::tuple([
            a("resolved"),
            Term::Atom(me),
            a("x"),
            a("y"),
            a("unused"),
            a("z"),
            Term::from(1i64),
        ])),
        cast(Term::tuple([
            a("new_nodes"),
            Term::Atom(me),
            Term::list([Term::tuple([a("insert"), a("garbage")]), a("delete")]),
            a("ext"),
            Term::list([Term::from(5i64), Term::tuple([Term::from(1i64), a("x")])]),
            a("extra"),
        ])),
        cast(Term::tuple([a("in_sync"), Term::from(1i64), a("x")])),
        cast(Term::tuple([
            a("lock_set"),
            a("not_a_pid"),
            a("true"),
            Term::NIL,
            Term::from(1i64),
        ])),
        cast(Term::tuple([
            a("lock_set"),
            fake.clone(),
            a("true"),
            Term::NIL,
            Term::from(99i64),
        ])),
        cast(Term::tuple([
            a("lock_is_set"),
            Term::Atom(me),
            Term::from(1i64),
            a("id"),
        ])),
        cast(a("not_a_tuple")),
        Term::tuple([
            a("lost_connection"),
            Term::from(1i64),
            a("x"),
            a("y"),
            Term::from(2i64),
        ]),
        Term::tuple([a("init_connect_ack"), Term::Atom(me), a("x"), a("y")]),
        Term::tuple([a("cancel_connect"), Term::Atom(me), a("x")]),
        Term::tuple([a("remove_connection"), Term::from(3i64)]),
        Term::tuple([a("$gen_call"), a("not_from"), a("get_known")]),
        Term::tuple([
            a("$gen_call"),
            Term::tuple([a("not_a_pid"), a("tag")]),
            Term::tuple([a("register"), a("n"), a("not_a_pid"), a("m")]),
        ]),
        Term::tuple([
            a("$gen_call"),
            Term::tuple([fake.clone(), a("tag")]),
            Term::tuple([a("set_lock"), a("not_an_id")]),
        ]),
        Term::tuple([
            a("$gen_call"),
            Term::tuple([fake.clone(), a("tag")]),
            Term::tuple([a("sync"), a("not_a_list")]),
        ]),
        Term::from(42i64),
    ];
    let node = r.name.clone();
    let kept_open = rt.block_on(async move {
        let mut s = intrude(port, &node, 0).await;
        for m in &garbage {
            s.write_all(&reg_send_frame(
                Pid::new(me, 1, 0, 7),
                "global_name_server",
                m,
            ))
            .await
            .unwrap();
        }
        // Well-formed frames: the connection stays.
        !closed_within(&mut s, Duration::from_secs(1)).await
    });
    assert!(
        kept_open,
        "the node closed a connection that sent valid frames"
    );
    // global still works both ways: a name registered on erl is seen on
    // the Rust node, and one registered on the Rust node is seen on erl.
    assert_eq!(
        e.eval("yes = global:register_name(after_garbage, self()), ok"),
        "ok"
    );
    assert_eq!(
        e.eval("rpc:call(N, global, whereis_name, [after_garbage]) =:= self()"),
        "true"
    );
    assert_eq!(
        e.eval("{ok, W} = gen_server:call({lab, N}, {spawn, self()}), W ! {global_register, rust_after_garbage}, \
                receive {forward, W, {global_registered, _, Yes}} -> Yes after 10000 -> timeout end"),
        "yes"
    );
    assert_eq!(
        e.eval("global:whereis_name(rust_after_garbage) =:= W"),
        "true"
    );
    still_serves(&mut e, "global_garbage");
}
