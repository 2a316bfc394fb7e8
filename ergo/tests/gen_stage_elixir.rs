//! GenStage across nodes against the real Elixir GenStage (1.3.2, compiled
//! from its unmodified sources): the stages of the `interop_node` example
//! (`numbers`, `bcast`, `parts`, `doubler`, `sink`) and Elixir stages on an
//! `erl` node, subscribed to each other both ways, with each dispatcher,
//! each cancel mode, manual demand, a producer crashing mid-stream and the
//! cancels GenStage sends for subscriptions it does not know.
//!
//! The Elixir side: GenStage's sources at `$GEN_STAGE_SRC` (by default
//! `../../shared/third_party/gen_stage` from this crate) and the test
//! stages of `tests/elixir/` (`ErgoTest.Producer`, `ErgoTest.Consumer`,
//! `ErgoTest.ProducerConsumer`, and `ErgoTest`'s helpers for the shell),
//! compiled with `elixirc` once per run into a cache folder under
//! `CARGO_TARGET_TMPDIR`. Without the sources or `elixirc` every test says
//! it skips, and why, and passes.
//!
//! Each test runs its own EPMD (on a free port), its own `interop_node`
//! (`r_TAG@127.0.0.1`; build it first with `cargo build -p ergo-otp
//! --examples`) and its own `erl` node with Elixir started (`e_TAG`), whose
//! shell is the test process: `ErgoTest.Consumer` forwards to it what it
//! receives. In the shell `N` is the Rust node's name and `EN` the `erl`
//! node's.

mod common;

use std::hash::{Hash, Hasher};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Erl, InteropNode, Reaped, free_port};

// ---- the Elixir side, compiled once per run ----

/// The compiled Elixir side: the folder of `.beam` files (GenStage and the
/// test stages) and Elixir's own `ebin` folders.
struct Beams {
    dir: PathBuf,
    elixir_ebin: PathBuf,
    logger_ebin: PathBuf,
}

/// Whether the Elixir side could be prepared.
enum Prepared {
    Ready(Beams),
    /// A plain reason to skip: the sources or `elixirc` are missing.
    Skip(String),
    /// The sources are there but did not compile: a failure.
    Broken(String),
}

/// Where GenStage's sources are: `$GEN_STAGE_SRC`, or the project's copy.
fn gen_stage_src() -> PathBuf {
    match std::env::var_os("GEN_STAGE_SRC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/third_party/gen_stage"),
    }
}

/// The test stages' sources.
fn test_stages_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/elixir")
}

/// The `.ex` files under `dir`, sorted.
fn ex_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "ex") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?} does not run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}):\n{text}", out.status))
    }
}

fn prepare() -> Prepared {
    let src = gen_stage_src();
    if !src.join("lib/gen_stage.ex").is_file() {
        return Prepared::Skip(format!(
            "Elixir's GenStage sources are not at {} (set GEN_STAGE_SRC to a checkout of gen_stage 1.3.2)",
            src.display()
        ));
    }
    let version = match Command::new("elixirc")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            return Prepared::Skip(format!(
                "`elixirc` is not on PATH (install Elixir); GenStage's sources are taken from {} (GEN_STAGE_SRC)",
                src.display()
            ));
        }
    };
    let lib_dir = match run(Command::new("elixir").args(["-e", "IO.puts(:code.lib_dir(:elixir))"]))
    {
        Ok(out) => out.lines().last().unwrap_or_default().trim().to_string(),
        Err(e) => return Prepared::Broken(e),
    };
    let elixir_lib = Path::new(&lib_dir);
    let elixir_ebin = elixir_lib.join("ebin");
    let logger_ebin = elixir_lib.join("../logger/ebin");
    if !elixir_ebin.is_dir() || !logger_ebin.is_dir() {
        return Prepared::Broken(format!(
            "Elixir's ebin folders are not at {} and {}",
            elixir_ebin.display(),
            logger_ebin.display()
        ));
    }
    let gen_stage_files = ex_files(&src.join("lib"));
    let own_files = ex_files(&test_stages_src());
    // The cache folder is named by everything that goes into it, so that
    // runs (and test processes) share it and a change compiles afresh.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    version.hash(&mut h);
    for f in gen_stage_files.iter().chain(&own_files) {
        f.hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gen_stage_elixir");
    let dir = cache.join(format!("beams-{:016x}", h.finish()));
    if !dir.join("Elixir.ErgoTest.beam").is_file() {
        // Compiled into a folder of this process's own, then renamed into
        // place: whoever renames first wins, the others use theirs.
        let tmp = cache.join(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            return Prepared::Broken(format!("cannot create {}: {e}", tmp.display()));
        }
        let compiled = run(Command::new("elixirc")
            .current_dir(&src)
            .arg("-o")
            .arg(&tmp)
            .args(
                gen_stage_files
                    .iter()
                    .map(|f| f.strip_prefix(&src).unwrap_or(f)),
            ))
        .and_then(|_| {
            run(Command::new("elixirc")
                .arg("-pa")
                .arg(&tmp)
                .arg("-o")
                .arg(&tmp)
                .args(&own_files))
        });
        if let Err(e) = compiled {
            let _ = std::fs::remove_dir_all(&tmp);
            return Prepared::Broken(e);
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        if !dir.join("Elixir.ErgoTest.beam").is_file() {
            return Prepared::Broken(format!("no beams in {}", dir.display()));
        }
    }
    Prepared::Ready(Beams {
        dir,
        elixir_ebin,
        logger_ebin,
    })
}

/// The compiled Elixir side, or `None` after saying why this test skips.
fn beams() -> Option<&'static Beams> {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    match PREPARED.get_or_init(prepare) {
        Prepared::Ready(b) => Some(b),
        Prepared::Skip(why) => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("this test");
            eprintln!("SKIPPED {test}: {why}");
            None
        }
        Prepared::Broken(why) => panic!("the Elixir side does not build: {why}"),
    }
}

// ---- the nodes ----

/// One test's nodes: an EPMD of its own, the Rust `interop_node` and an
/// `erl` node running Elixir with GenStage loaded.
struct Lab {
    r: InteropNode,
    e: Erl,
    _epmd: Reaped,
}

impl Lab {
    /// Starts the nodes and connects them; `None` when the test skips.
    fn start(tag: &str) -> Option<Lab> {
        let beams = beams()?;
        let port = free_port();
        let epmd = Reaped(
            Command::new("epmd")
                .args(["-port", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("epmd runs (it comes with erl)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "epmd does not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = InteropNode::start(&format!("r_{tag}"), "gscookie", port);
        let dir = beams.dir.to_str().unwrap();
        let mut e = Erl::start(
            &format!("e_{tag}"),
            "gscookie",
            port,
            &[
                "-pa",
                dir,
                "-pa",
                beams.elixir_ebin.to_str().unwrap(),
                "-pa",
                beams.logger_ebin.to_str().unwrap(),
            ],
        );
        // Elixir sets standard I/O to binaries as it starts; the shell's
        // loop reads lines as lists.
        ok(
            &mut e,
            "{ok, _} = application:ensure_all_started(elixir), \
             {ok, _} = application:ensure_all_started(logger), \
             ok = io:setopts([{binary, false}]), ok",
        );
        ok(
            &mut e,
            &format!("N = '{}', EN = node(), pong = net_adm:ping(N), ok", r.name),
        );
        Some(Lab { r, e, _epmd: epmd })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failing test shows what the Rust node logged.
        if std::thread::panicking() {
            let (_, log) = self.r.wait_log(&[], Duration::ZERO);
            eprintln!("---- the log of {} ----\n{log}", self.r.name);
        }
    }
}

/// Evaluates a set-up line, which ends in `ok` when every match in it held.
fn ok(e: &mut Erl, exprs: &str) {
    assert_eq!(e.eval(exprs), "ok", "set-up failed: {exprs}");
}

/// Asserts that `expr` evaluates to a term equal (`=:=`) to `expected`;
/// shows both when not.
fn check(e: &mut Erl, expr: &str, expected: &str) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let v = format!("Got{}", N.fetch_add(1, Ordering::Relaxed));
    let same = e.eval_timeout(
        &format!("{v} = ({expr}), {v} =:= ({expected})"),
        Duration::from_secs(30),
    );
    if same != "true" {
        // `false`: the value differs; anything else: the evaluation failed.
        let got = if same == "false" { e.eval(&v) } else { same };
        panic!("{expr}\n  expected: {expected}\n  got: {got}");
    }
}

/// Asserts that the Erlang expression `cond` is `true`; shows what `show`
/// evaluates to when not.
fn check_true(e: &mut Erl, cond: &str, show: &str) {
    let got = e.eval_timeout(cond, Duration::from_secs(30));
    if got != "true" {
        let shown = e.eval(show);
        panic!("not true: {cond}\n  ({got})\n  {show} = {shown}");
    }
}

/// Starts an `ErgoTest.Consumer` bound to `var`, forwarding to the shell.
fn consumer(e: &mut Erl, var: &str, opts: &str) {
    ok(
        e,
        &format!(
            "{{ok, {var}}} = 'Elixir.ErgoTest.Consumer':start([{{to, self()}}{}]), ok",
            comma(opts)
        ),
    );
}

/// `GenStage.sync_subscribe(Consumer, [{to, To} | Opts])`, which must
/// succeed.
fn subscribe(e: &mut Erl, consumer: &str, to: &str, opts: &str) {
    ok(
        e,
        &format!(
            "{{ok, _}} = 'Elixir.GenStage':sync_subscribe({consumer}, [{{to, {to}}}, {opts}]), ok"
        ),
    );
}

/// Starts an `ErgoTest.Producer` registered as `name` (bound to `var` too).
fn producer(e: &mut Erl, var: &str, name: &str, opts: &str) {
    ok(
        e,
        &format!(
            "{{ok, {var}}} = 'Elixir.ErgoTest.Producer':start([{{name, {name}}}{}]), ok",
            comma(opts)
        ),
    );
}

/// `, Opts` for the tail of a list, or nothing.
fn comma(opts: &str) -> String {
    if opts.is_empty() {
        String::new()
    } else {
        format!(", {opts}")
    }
}

/// Asks the Rust `sink` (or `doubler`) to subscribe to `to` with `opts`.
fn rust_subscribe(e: &mut Erl, stage: &str, to: &str, opts: &str) {
    check(
        e,
        &format!("gen_server:call({{{stage}, N}}, {{subscribe, {to}, [{opts}]}})"),
        "ok",
    );
}

/// The Erlang list `[From, …, To]` as `lists:seq` writes it.
fn seq(from: i64, to: i64) -> String {
    format!("lists:seq({from}, {to})")
}

// ---- Rust producers, Elixir consumers ----

#[test]
fn elixir_consumers_share_rust_numbers_demand_dispatched_in_order_without_loss_or_duplicates() {
    let Some(mut lab) = Lab::start("demand") else {
        return;
    };
    let e = &mut lab.e;
    consumer(e, "C1", "");
    subscribe(e, "C1", "{numbers, N}", "{max_demand, 10}");
    // GenStage names a producer subscribed by name on another node by
    // that name in `from`.
    check_true(
        e,
        "case 'Elixir.ErgoTest':subscribed(C1) of {{numbers, N}, R1} -> is_reference(R1); _ -> false end",
        "'Elixir.ErgoTest':subscribed(C1)",
    );
    // Alone, the consumer gets 0, 1, 2, … exactly.
    check(
        e,
        "'Elixir.ErgoTest':collect(C1, 100)",
        &format!("{{ok, {}}}", seq(0, 99)),
    );
    // A second consumer: each event goes to exactly one of them, each gets
    // its share in order, and nothing below the last both have seen is
    // missing.
    consumer(e, "C2", "");
    subscribe(e, "C2", "{numbers, N}", "{max_demand, 10}");
    ok(
        e,
        "{ok, A} = 'Elixir.ErgoTest':collect(C1, 200), \
         {ok, B} = 'Elixir.ErgoTest':collect(C2, 200), ok",
    );
    check(
        e,
        "A =:= lists:usort(A) andalso B =:= lists:usort(B)",
        "true",
    );
    check(e, "A -- B =:= A andalso hd(A) >= 100", "true");
    check(
        e,
        "lists:seq(100, min(lists:last(A), lists:last(B))) -- (A ++ B)",
        "[]",
    );
}

#[test]
fn two_elixir_consumers_of_rust_bcast_each_get_every_event_in_order() {
    let Some(mut lab) = Lab::start("bcast") else {
        return;
    };
    let e = &mut lab.e;
    // Demand held back (GenStage.demand/2, as Elixir sends it) until both
    // are subscribed, so that both see the stream from its start.
    ok(
        e,
        "ok = 'Elixir.GenStage':demand({bcast, N}, accumulate), ok",
    );
    check(e, "'Elixir.GenStage':demand({bcast, N})", "accumulate");
    consumer(e, "C1", "");
    consumer(e, "C2", "");
    subscribe(e, "C1", "{bcast, N}", "{max_demand, 10}");
    subscribe(e, "C2", "{bcast, N}", "{max_demand, 7}");
    ok(e, "ok = 'Elixir.GenStage':demand({bcast, N}, forward), ok");
    check(
        e,
        "'Elixir.ErgoTest':collect(C1, 300)",
        &format!("{{ok, {}}}", seq(0, 299)),
    );
    check(
        e,
        "'Elixir.ErgoTest':collect(C2, 300)",
        &format!("{{ok, {}}}", seq(0, 299)),
    );
    // A consumer subscribing twice to a broadcast producer is refused
    // with `already_subscribed`, and (as in GenStage) does not stop.
    subscribe(
        e,
        "C1",
        "{bcast, N}",
        "{max_demand, 10}, {cancel, permanent}",
    );
    check(
        e,
        "'Elixir.ErgoTest':cancel(C1)",
        "{cancel, already_subscribed}",
    );
    check(e, "is_process_alive(C1)", "true");
}

#[test]
fn elixir_consumers_of_rust_parts_get_the_events_erlang_phash2_puts_in_their_partition_which_is_taken_once()
 {
    let Some(mut lab) = Lab::start("parts") else {
        return;
    };
    let e = &mut lab.e;
    consumer(e, "P0", "");
    consumer(e, "P1", "");
    subscribe(e, "P0", "{parts, N}", "{max_demand, 10}, {partition, 0}");
    subscribe(e, "P1", "{parts, N}", "{max_demand, 10}, {partition, 1}");
    ok(
        e,
        "{ok, A} = 'Elixir.ErgoTest':collect(P0, 200), \
         {ok, B} = 'Elixir.ErgoTest':collect(P1, 200), ok",
    );
    check(e, "[X || X <- A, erlang:phash2(X, 2) =/= 0]", "[]");
    check(e, "[X || X <- B, erlang:phash2(X, 2) =/= 1]", "[]");
    check(
        e,
        "A =:= lists:usort(A) andalso B =:= lists:usort(B)",
        "true",
    );
    check(
        e,
        "lists:seq(0, min(lists:last(A), lists:last(B))) -- (A ++ B)",
        "[]",
    );
    // A partition is taken once: a second consumer of partition 0 is
    // cancelled, and the first keeps going.
    consumer(e, "P2", "");
    subscribe(
        e,
        "P2",
        "{parts, N}",
        "{max_demand, 10}, {partition, 0}, {cancel, temporary}",
    );
    check_true(
        e,
        "case 'Elixir.ErgoTest':cancel(P2) of {cancel, _} -> true; _ -> false end",
        "'Elixir.ErgoTest':cancel(P2, 0)",
    );
    check_true(
        e,
        "case 'Elixir.ErgoTest':collect(P0, 20) of {ok, More} -> hd(More) > lists:last(A); _ -> false end",
        "'Elixir.ErgoTest':collect(P0, 1, 0)",
    );
}

#[test]
fn an_elixir_consumer_in_manual_demand_gets_exactly_what_it_asks_of_rust_numbers() {
    let Some(mut lab) = Lab::start("manual") else {
        return;
    };
    let e = &mut lab.e;
    consumer(e, "C", "{manual, true}");
    subscribe(e, "C", "{numbers, N}", "{max_demand, 10}");
    check(e, "'Elixir.ErgoTest':more(C, 300)", "[]");
    ok(e, "C ! {ask, 7}, ok");
    check(
        e,
        "'Elixir.ErgoTest':collect(C, 7)",
        &format!("{{ok, {}}}", seq(0, 6)),
    );
    check(e, "'Elixir.ErgoTest':more(C, 300)", "[]");
    // More than max_demand at once is what was asked too.
    ok(e, "C ! {ask, 25}, ok");
    check(
        e,
        "'Elixir.ErgoTest':collect(C, 25)",
        &format!("{{ok, {}}}", seq(7, 31)),
    );
    check(e, "'Elixir.ErgoTest':more(C, 300)", "[]");
}

// ---- Elixir producers, the Rust sink ----

#[test]
fn the_rust_sink_takes_every_event_of_an_elixir_demand_producer_in_order() {
    let Some(mut lab) = Lab::start("sink_demand") else {
        return;
    };
    let e = &mut lab.e;
    producer(e, "P", "eprod", "{limit, 300}, {notify, self()}");
    rust_subscribe(
        e,
        "sink",
        "{eprod, EN}",
        "{max_demand, 10}, {min_demand, 3}",
    );
    // The options reach Elixir's handle_subscribe as the Rust consumer
    // sent them.
    check(
        e,
        "lists:sort('Elixir.ErgoTest':consumer_subscribed(P))",
        "[{cancel, permanent}, {max_demand, 10}, {min_demand, 3}]",
    );
    check(e, "'Elixir.ErgoTest':events({sink, N}, 300)", &seq(0, 299));
    std::thread::sleep(Duration::from_millis(200));
    check(e, "gen_server:call({sink, N}, events)", &seq(0, 299));
}

#[test]
fn the_rust_sink_and_an_elixir_consumer_both_get_every_event_of_an_elixir_broadcast_producer() {
    let Some(mut lab) = Lab::start("sink_bcast") else {
        return;
    };
    let e = &mut lab.e;
    producer(
        e,
        "P",
        "eprod",
        "{dispatcher, broadcast}, {limit, 300}, {demand, accumulate}, {notify, self()}",
    );
    consumer(e, "C", "");
    subscribe(e, "C", "P", "{max_demand, 10}");
    check(
        e,
        "is_list('Elixir.ErgoTest':consumer_subscribed(P))",
        "true",
    );
    rust_subscribe(e, "sink", "{eprod, EN}", "{max_demand, 25}");
    check(
        e,
        "is_list('Elixir.ErgoTest':consumer_subscribed(P))",
        "true",
    );
    // Forward only once the sink's first ask has reached the dispatcher.
    // GenStage 1.3's broadcast dispatcher resets what it has asked for
    // upstream when a consumer subscribes; demand forwarded between the
    // sink's subscribe and its ask makes events it then buffers and never
    // sends (a race of Elixir's own, between two messages of one consumer).
    check(
        e,
        "'Elixir.ErgoTest':eventually(fun() -> \
             {Ds, _, _, _} = maps:get(dispatcher_state, sys:get_state(P)), \
             [X || {X, Pid, _, _} <- Ds, node(Pid) =/= node(), X > 0] =/= [] \
         end, true)",
        "true",
    );
    ok(e, "ok = 'Elixir.GenStage':demand(P, forward), ok");
    check(
        e,
        "'Elixir.ErgoTest':collect(C, 300)",
        &format!("{{ok, {}}}", seq(0, 299)),
    );
    check(e, "'Elixir.ErgoTest':events({sink, N}, 300)", &seq(0, 299));
}

#[test]
fn the_rust_sink_and_an_elixir_consumer_split_an_elixir_partition_producer_by_phash2() {
    let Some(mut lab) = Lab::start("sink_parts") else {
        return;
    };
    let e = &mut lab.e;
    producer(
        e,
        "P",
        "eprod",
        "{dispatcher, partition}, {limit, 300}, {notify, self()}",
    );
    rust_subscribe(e, "sink", "{eprod, EN}", "{max_demand, 10}, {partition, 0}");
    check(
        e,
        "proplists:get_value(partition, 'Elixir.ErgoTest':consumer_subscribed(P))",
        "0",
    );
    consumer(e, "C", "");
    subscribe(e, "C", "P", "{max_demand, 10}, {partition, 1}");
    ok(
        e,
        "Mine = [X || X <- lists:seq(0, 299), erlang:phash2(X, 2) =:= 0], \
         Theirs = lists:seq(0, 299) -- Mine, ok",
    );
    check(
        e,
        "'Elixir.ErgoTest':events({sink, N}, length(Mine))",
        "Mine",
    );
    check(
        e,
        "'Elixir.ErgoTest':collect(C, length(Theirs))",
        "{ok, Theirs}",
    );
}

// ---- mixed pipelines ----

#[test]
fn elixir_producer_to_rust_doubler_to_elixir_consumer_doubles_every_event_in_order() {
    let Some(mut lab) = Lab::start("doubler") else {
        return;
    };
    let e = &mut lab.e;
    producer(e, "P", "eprod", "{limit, 500}");
    consumer(e, "C", "");
    subscribe(e, "C", "{doubler, N}", "{max_demand, 20}");
    rust_subscribe(e, "doubler", "{eprod, EN}", "{max_demand, 10}");
    check(
        e,
        "'Elixir.ErgoTest':collect(C, 500)",
        "{ok, [2 * X || X <- lists:seq(0, 499)]}",
    );
    check(e, "'Elixir.ErgoTest':more(C, 300)", "[]");
}

#[test]
fn rust_numbers_to_elixir_producer_consumer_to_rust_sink_triples_every_event_in_order() {
    let Some(mut lab) = Lab::start("tripler") else {
        return;
    };
    let e = &mut lab.e;
    ok(
        e,
        "{ok, PC} = 'Elixir.ErgoTest.ProducerConsumer':start([{name, epc}, {factor, 3}]), ok",
    );
    subscribe(e, "PC", "{numbers, N}", "{max_demand, 10}");
    rust_subscribe(e, "sink", "{epc, EN}", "{max_demand, 10}");
    ok(e, "Got = 'Elixir.ErgoTest':events({sink, N}, 500), ok");
    check(e, "length(Got) >= 500", "true");
    check(e, "Got", "[3 * X || X <- lists:seq(0, length(Got) - 1)]");
}

// ---- cancel modes ----

#[test]
fn elixir_consumers_see_the_rust_node_go_down_as_noconnection_and_act_by_their_cancel_mode() {
    let Some(mut lab) = Lab::start("nodedown") else {
        return;
    };
    let e = &mut lab.e;
    for (c, to, mode) in [
        ("Perm", "{numbers, N}", "permanent"),
        ("Trans", "{bcast, N}", "transient"),
        ("Temp", "{bcast, N}", "temporary"),
    ] {
        consumer(e, c, "");
        subscribe(e, c, to, &format!("{{max_demand, 10}}, {{cancel, {mode}}}"));
        check_true(
            e,
            &format!(
                "case 'Elixir.ErgoTest':collect({c}, 10) of {{ok, _}} -> true; _ -> false end"
            ),
            &format!("'Elixir.ErgoTest':collect({c}, 10, 0)"),
        );
        ok(e, &format!("M{c} = monitor(process, {c}), ok"));
    }
    // The Rust node's OS process dies.
    lab.r.kill();
    for c in ["Perm", "Trans", "Temp"] {
        check(
            e,
            &format!("'Elixir.ErgoTest':cancel({c}, 10000)"),
            "{down, noconnection}",
        );
    }
    // Permanent and transient stop with the reason (noconnection is no
    // shutdown); temporary carries on.
    check(e, "'Elixir.ErgoTest':down(MPerm)", "noconnection");
    check(e, "'Elixir.ErgoTest':down(MTrans)", "noconnection");
    check(e, "'Elixir.ErgoTest':down(MTemp, 500)", "timeout");
    check(e, "is_process_alive(Temp)", "true");
}

#[test]
fn an_elixir_consumer_stops_with_the_reason_its_rust_producer_died_of_unless_transient_and_shutdown()
 {
    let Some(mut lab) = Lab::start("prod_exit") else {
        return;
    };
    let e = &mut lab.e;
    consumer(e, "Perm", "");
    subscribe(e, "Perm", "{numbers, N}", "{max_demand, 10}");
    consumer(e, "Trans", "");
    subscribe(
        e,
        "Trans",
        "{bcast, N}",
        "{max_demand, 10}, {cancel, transient}",
    );
    ok(
        e,
        "MPerm = monitor(process, Perm), MTrans = monitor(process, Trans), \
         Numbers = rpc:call(N, erlang, whereis, [numbers]), \
         Bcast = rpc:call(N, erlang, whereis, [bcast]), \
         true = is_pid(Numbers) andalso is_pid(Bcast), ok",
    );
    // `numbers` is killed: the permanent consumer stops with `killed`.
    ok(e, "exit(Numbers, kill), ok");
    check(e, "'Elixir.ErgoTest':cancel(Perm)", "{down, killed}");
    check(e, "'Elixir.ErgoTest':down(MPerm)", "killed");
    // `bcast` shuts down: the transient consumer is told, and carries on.
    ok(e, "exit(Bcast, shutdown), ok");
    check(e, "'Elixir.ErgoTest':cancel(Trans)", "{down, shutdown}");
    check(e, "'Elixir.ErgoTest':down(MTrans, 500)", "timeout");
    check(e, "is_process_alive(Trans)", "true");
    // The Rust node lives on: its sink still answers.
    check(e, "gen_server:call({sink, N}, events)", "[]");
}

#[test]
fn a_disconnect_reaches_stages_on_both_nodes_as_noconnection_and_each_acts_by_its_cancel_mode() {
    let Some(mut lab) = Lab::start("disconnect") else {
        return;
    };
    let e = &mut lab.e;
    // Rust consumers of an Elixir producer: `doubler` temporary, `sink`
    // transient; an Elixir consumer of Rust `numbers`, permanent.
    producer(e, "P", "eprod", "");
    rust_subscribe(
        e,
        "doubler",
        "{eprod, EN}",
        "{max_demand, 10}, {cancel, temporary}",
    );
    rust_subscribe(
        e,
        "sink",
        "{eprod, EN}",
        "{max_demand, 10}, {cancel, transient}",
    );
    check(
        e,
        "length('Elixir.ErgoTest':events({sink, N}, 10)) >= 10",
        "true",
    );
    consumer(e, "C", "");
    subscribe(e, "C", "{numbers, N}", "{max_demand, 10}");
    check(e, "element(1, 'Elixir.ErgoTest':collect(C, 10))", "ok");
    ok(e, "MC = monitor(process, C), ok");
    // The Erlang node drops the connection.
    check(e, "erlang:disconnect_node(N)", "true");
    check(e, "'Elixir.ErgoTest':cancel(C)", "{down, noconnection}");
    check(e, "'Elixir.ErgoTest':down(MC)", "noconnection");
    // On the Rust node: the transient sink stops with `noconnection`, the
    // temporary doubler carries on and subscribes again.
    let (stopped, log) = lab.r.wait_log(
        &["sink", "stopping", "noconnection"],
        Duration::from_secs(5),
    );
    assert!(stopped, "the sink does not stop with noconnection:\n{log}");
    check(e, "net_adm:ping(N)", "pong");
    check(
        e,
        "'Elixir.ErgoTest':eventually(fun() -> rpc:call(N, erlang, whereis, [sink]) end, undefined)",
        "undefined",
    );
    check(e, "is_pid(rpc:call(N, erlang, whereis, [doubler]))", "true");
    rust_subscribe(e, "doubler", "{eprod, EN}", "{max_demand, 10}");
}

#[test]
fn the_rust_sink_outlives_elixir_producers_by_its_cancel_mode_until_transient_meets_a_crash() {
    let Some(mut lab) = Lab::start("sink_modes") else {
        return;
    };
    let e = &mut lab.e;
    ok(e, "MSink = monitor(process, {sink, N}), ok");
    // Each producer emits 0..9 and then stops with its reason; the sink
    // keeps its events and, but for the last, carries on.
    for (i, (mode, reason)) in [
        ("temporary", "boom"),
        ("transient", "normal"),
        ("transient", "shutdown"),
        ("transient", "{shutdown, done}"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("eprod{i}");
        producer(
            e,
            &format!("P{i}"),
            &name,
            &format!("{{limit, 10}}, {{stop, {reason}}}"),
        );
        ok(e, &format!("M{i} = monitor(process, P{i}), ok"));
        rust_subscribe(
            e,
            "sink",
            &format!("{{{name}, EN}}"),
            &format!("{{max_demand, 5}}, {{cancel, {mode}}}"),
        );
        check(e, &format!("'Elixir.ErgoTest':down(M{i})"), reason);
        check(e, "'Elixir.ErgoTest':events({sink, N}, 10)", &seq(0, 9));
        check(e, "gen_server:call({sink, N}, reset)", "ok");
    }
    // No such producer on the Elixir node: a temporary subscription ends
    // at once (`{down, noproc}`), and the sink carries on.
    rust_subscribe(
        e,
        "sink",
        "{nosuch, EN}",
        "{max_demand, 5}, {cancel, temporary}",
    );
    check(e, "'Elixir.ErgoTest':down(MSink, 300)", "timeout");
    check(e, "gen_server:call({sink, N}, events)", "[]");
    // Transient, and the producer crashes: the sink stops with its reason.
    producer(e, "P9", "eprod9", "{limit, 10}, {stop, boom}");
    rust_subscribe(
        e,
        "sink",
        "{eprod9, EN}",
        "{max_demand, 5}, {cancel, transient}",
    );
    check(e, "'Elixir.ErgoTest':down(MSink)", "boom");
}

#[test]
fn the_rust_sink_with_permanent_cancel_stops_with_an_elixir_producers_reason_even_normal() {
    let Some(mut lab) = Lab::start("sink_perm") else {
        return;
    };
    let e = &mut lab.e;
    ok(e, "MSink = monitor(process, {sink, N}), ok");
    producer(e, "P", "eprod", "{limit, 10}, {stop, normal}");
    rust_subscribe(e, "sink", "{eprod, EN}", "{max_demand, 5}");
    check(e, "'Elixir.ErgoTest':down(MSink)", "normal");
}

#[test]
fn an_elixir_producer_crashing_mid_stream_leaves_a_temporary_rust_sink_up_with_the_in_order_prefix()
{
    let Some(mut lab) = Lab::start("crash") else {
        return;
    };
    let e = &mut lab.e;
    ok(e, "MSink = monitor(process, {sink, N}), ok");
    producer(
        e,
        "P",
        "eprod",
        "{limit, 237}, {stop, {crashed, mid_stream}}",
    );
    ok(e, "MP = monitor(process, P), ok");
    rust_subscribe(
        e,
        "sink",
        "{eprod, EN}",
        "{max_demand, 10}, {cancel, temporary}",
    );
    check(e, "'Elixir.ErgoTest':down(MP)", "{crashed, mid_stream}");
    check(e, "'Elixir.ErgoTest':events({sink, N}, 237)", &seq(0, 236));
    check(e, "'Elixir.ErgoTest':down(MSink, 300)", "timeout");
    // Up, and it subscribes again: a new producer's events follow.
    producer(e, "P2", "eprod2", "{from, 1000}, {limit, 1010}");
    rust_subscribe(
        e,
        "sink",
        "{eprod2, EN}",
        "{max_demand, 10}, {cancel, temporary}",
    );
    check(
        e,
        "'Elixir.ErgoTest':events({sink, N}, 247)",
        "lists:seq(0, 236) ++ lists:seq(1000, 1009)",
    );
}

// ---- subscriptions a stage does not know ----

/// The next `'$gen_consumer'`/`'$gen_producer'` message to the shell.
const NEXT_WIRE: &str = "'Elixir.ErgoTest':next_wire()";

#[test]
fn rust_and_elixir_stages_cancel_unknown_and_duplicated_subscriptions_alike() {
    let Some(mut lab) = Lab::start("unknown") else {
        return;
    };
    let e = &mut lab.e;
    producer(e, "EP", "eprod", "");
    consumer(e, "EC", "");
    ok(
        e,
        "RP = rpc:call(N, erlang, whereis, [numbers]), \
         RS = rpc:call(N, erlang, whereis, [sink]), \
         true = is_pid(RP) andalso is_pid(RS), ok",
    );
    // Demand on a subscription the producer does not know: cancelled with
    // `unknown_subscription`, by Elixir's producer and by Rust's alike.
    for (p, var) in [("EP", "Ref1"), ("RP", "Ref2")] {
        ok(
            e,
            &format!(
                "{var} = make_ref(), {p} ! {{'$gen_producer', {{self(), {var}}}, {{ask, 5}}}}, ok"
            ),
        );
        check(
            e,
            NEXT_WIRE,
            &format!("{{'$gen_consumer', {{{p}, {var}}}, {{cancel, unknown_subscription}}}}"),
        );
    }
    // The same subscription twice: the second is cancelled with
    // `duplicated_subscription`; the first stands and serves demand.
    for (p, var) in [("EP", "Ref3"), ("RP", "Ref4")] {
        ok(
            e,
            &format!(
                "{var} = make_ref(), \
                 {p} ! {{'$gen_producer', {{self(), {var}}}, {{subscribe, nil, [{{max_demand, 5}}]}}}}, \
                 {p} ! {{'$gen_producer', {{self(), {var}}}, {{subscribe, nil, [{{max_demand, 5}}]}}}}, ok"
            ),
        );
        check(
            e,
            NEXT_WIRE,
            &format!("{{'$gen_consumer', {{{p}, {var}}}, {{cancel, duplicated_subscription}}}}"),
        );
        ok(
            e,
            &format!("{p} ! {{'$gen_producer', {{self(), {var}}}, {{ask, 3}}}}, ok"),
        );
        check(
            e,
            NEXT_WIRE,
            &format!("{{'$gen_consumer', {{{p}, {var}}}, [0, 1, 2]}}"),
        );
        // The consumer cancels; the producer confirms with the reason.
        ok(
            e,
            &format!("{p} ! {{'$gen_producer', {{self(), {var}}}, {{cancel, done}}}}, ok"),
        );
        check(
            e,
            NEXT_WIRE,
            &format!("{{'$gen_consumer', {{{p}, {var}}}, {{cancel, done}}}}"),
        );
    }
    // Events on a subscription the consumer does not know: it cancels
    // with `unknown_subscription`, Elixir's consumer and Rust's alike, and
    // keeps none of them.
    for (c, var) in [("EC", "Ref5"), ("RS", "Ref6")] {
        ok(
            e,
            &format!(
                "{var} = make_ref(), {c} ! {{'$gen_consumer', {{self(), {var}}}, [1, 2, 3]}}, ok"
            ),
        );
        check(
            e,
            NEXT_WIRE,
            &format!("{{'$gen_producer', {{{c}, {var}}}, {{cancel, unknown_subscription}}}}"),
        );
    }
    check(e, "'Elixir.ErgoTest':more(EC, 200)", "[]");
    check(e, "gen_server:call({sink, N}, events)", "[]");
}
