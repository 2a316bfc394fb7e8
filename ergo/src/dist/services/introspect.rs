//! What an Erlang operator asks a node over `rpc` and `erpc` to look at
//! it, answered from the node's real state: `erlang:node/0`, `nodes/0,1`,
//! `processes/0`, `registered/0`, `whereis/1`, `is_process_alive/1`,
//! `process_info/1,2`, `system_info/1`, `memory/0,1`, `statistics/1`,
//! `function_exported/3`; `application:which_applications/0,1` and
//! `loaded_applications/0`; `code:ensure_loaded/1`;
//! `net_kernel:get_net_ticktime/0`; `os:getpid/0`; and what observer's backend answers
//! for its System and Processes tabs (`observer_backend:sys_info/0`,
//! `procs_info/1`, `etop_collect/1`, and empty port, socket and table
//! lists: the node has none).
//!
//! These answer when no Rust function is registered under the same name
//! ([`crate::dist::Distribution::register_rpc`] takes precedence).
//!
//! Where a figure has no counterpart in a Rust process, the answer says
//! the nearest true thing: `reductions` are messages handled, `memory` per
//! process is the size of its control block and mailbox, `heap_size` and
//! `stack_size` are 0, and the dictionary is empty.

use std::sync::OnceLock;
use std::time::Instant;

use ergo_etf::{Atom, Pid, Term};

use crate::dist::services::rpc::RpcFailure;
use crate::node::Node;
use crate::process::{ProcessInfo, Status};

/// The modules whose functions are answered here (`code:ensure_loaded/1`
/// says they are loaded).
const MODULES: [&str; 6] = [
    "appmon_info",
    "erlang",
    "application",
    "code",
    "net_kernel",
    "observer_backend",
];

/// Roughly what a process costs besides its mailbox: its control block,
/// task and context (the figure `benches/process_vs_erlang.sh` measures
/// per idle process).
const PROCESS_BYTES: usize = 800;

fn badarg() -> RpcFailure {
    RpcFailure::Error(Term::atom("badarg"))
}

fn pids(v: impl IntoIterator<Item = Pid>) -> Term {
    Term::List(v.into_iter().map(Term::Pid).collect())
}

fn atoms(v: impl IntoIterator<Item = Atom>) -> Term {
    Term::List(v.into_iter().map(Term::Atom).collect())
}

fn pair(k: &str, v: Term) -> Term {
    Term::tuple([Term::atom(k), v])
}

/// The node's answer to `M:F(Args)` if it is one of the functions above.
pub(crate) fn builtin(
    node: &Node,
    m: Atom,
    f: Atom,
    args: &[Term],
) -> Option<Result<Term, RpcFailure>> {
    Some(match (m.as_str(), f.as_str(), args) {
        ("erlang", "node", []) => Ok(Term::Atom(node.name())),
        // What another node's `global` asks of the node holding one of two
        // clashing names.
        ("global", "resolve_it", [method, name, Term::Pid(p1), Term::Pid(p2)]) => {
            Ok(crate::global::resolve_it(node, method, name, *p1, *p2))
        }
        ("global", "whereis_name", [name]) => Ok(node
            .global()
            .whereis_name(name)
            .map_or(Term::atom("undefined"), Term::Pid)),
        ("global", "registered_names", []) => Ok(Term::List(node.global().registered_names())),
        ("os", "getpid", []) => Ok(Term::charlist(&std::process::id().to_string())),
        ("erlang", "nodes", []) => Ok(atoms(node.dist().nodes())),
        ("erlang", "nodes", [which]) => nodes(node, which),
        ("erlang", "processes", []) => Ok(pids(node.processes())),
        ("erlang", "registered", []) => Ok(atoms(node.registered())),
        ("erlang", "whereis", [Term::Atom(name)]) => Ok(node
            .whereis(*name)
            .map_or(Term::atom("undefined"), Term::Pid)),
        ("erlang", "is_process_alive", [Term::Pid(p)]) if p.node == node.name() => {
            Ok(Term::from(node.is_alive(*p)))
        }
        ("erlang", "process_info", [Term::Pid(p)]) if p.node == node.name() => {
            Ok(match node.process_info(*p) {
                Some(info) => Term::List(
                    ALL_ITEMS
                        .iter()
                        .filter_map(|item| item_value(node, &info, item).map(|v| pair(item, v)))
                        .collect(),
                ),
                None => Term::atom("undefined"),
            })
        }
        ("erlang", "process_info", [Term::Pid(p), items]) if p.node == node.name() => {
            process_info_items(node, *p, items)
        }
        ("erlang", "system_info", [Term::Atom(item)]) => system_info(node, item.as_str()),
        ("erlang", "memory", []) => Ok(Term::List(
            MEMORY_TYPES
                .iter()
                .map(|t| pair(t, Term::from(memory(node, t).unwrap_or(0) as i64)))
                .collect(),
        )),
        ("erlang", "memory", [Term::Atom(t)]) => match memory(node, t.as_str()) {
            Some(b) => Ok(Term::from(b as i64)),
            None => Err(badarg()),
        },
        ("erlang", "memory", [list]) => match list.as_list() {
            Some(ts) => ts
                .iter()
                .map(|t| match t {
                    Term::Atom(a) => memory(node, a.as_str())
                        .map(|b| Term::tuple([t.clone(), Term::from(b as i64)]))
                        .ok_or_else(badarg),
                    _ => Err(badarg()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Term::List),
            None => Err(badarg()),
        },
        ("erlang", "statistics", [Term::Atom(item)]) => statistics(node, item.as_str()),
        ("erlang", "function_exported", [Term::Atom(m), Term::Atom(f), Term::Int(a)]) => {
            Ok(Term::from(exported(node, *m, *f, *a)))
        }
        ("application", "which_applications", [] | [_]) => Ok(apps(node.which_applications())),
        ("application", "loaded_applications", []) => Ok(apps(node.loaded_applications())),
        ("code", "ensure_loaded", [Term::Atom(module)]) => Ok(if known_module(node, *module) {
            Term::tuple([Term::atom("module"), Term::Atom(*module)])
        } else {
            Term::tuple([Term::atom("error"), Term::atom("nofile")])
        }),
        ("erlang", "system_time", []) => Ok(Term::from(system_time_ns())),
        ("erlang", "timestamp", []) => Ok(timestamp()),
        ("erlang", "system_time", [Term::Atom(unit)]) => match unit.as_str() {
            "second" => Ok(Term::from(system_time_ns() / 1_000_000_000)),
            "millisecond" => Ok(Term::from(system_time_ns() / 1_000_000)),
            "microsecond" => Ok(Term::from(system_time_ns() / 1_000)),
            "nanosecond" | "native" => Ok(Term::from(system_time_ns())),
            _ => Err(badarg()),
        },
        ("observer_backend", "sys_info", []) => Ok(sys_info(node)),
        ("observer_backend", "get_port_list" | "get_socket_list", []) => Ok(Term::NIL),
        ("observer_backend", "get_table_list", [_, _]) => Ok(Term::NIL),
        ("observer_backend", "procs_info", [Term::Pid(collector)]) => {
            send_procs_info(node, node.system_pid(), *collector);
            Ok(Term::atom("ok"))
        }
        ("observer_backend", "etop_collect", [Term::Pid(collector)]) => {
            send_etop_info(node, node.system_pid(), *collector);
            Ok(Term::atom("ok"))
        }
        ("appmon_info", "start_link2", [_starter, Term::Pid(client), _opts]) => {
            Ok(appmon_start(node, *client))
        }
        ("net_kernel", "get_net_ticktime", []) => {
            let secs = node
                .inner()
                .dist
                .config
                .get()
                .map_or(60, |c| c.conn.tick.as_secs());
            Ok(Term::from(secs as i64))
        }
        _ => return None,
    })
}

/// `erlang:timestamp()`: `{MegaSecs, Secs, MicroSecs}`.
fn timestamp() -> Term {
    let us = system_time_ns() / 1000;
    Term::tuple([
        Term::from(us / 1_000_000_000_000),
        Term::from(us / 1_000_000 % 1_000_000),
        Term::from(us % 1_000_000),
    ])
}

/// Each process as observer's `#etop_proc_info{}` record: pid, memory,
/// reductions, name (its registered name or initial call), runtime,
/// current function, message queue length.
fn etop_procs(node: &Node) -> Vec<Term> {
    node.processes()
        .into_iter()
        .filter_map(|p| node.process_info(p))
        .map(|info| {
            let mfa = item_value(node, &info, "initial_call").unwrap_or(Term::NIL);
            Term::tuple([
                Term::atom("etop_proc_info"),
                Term::Pid(info.pid),
                Term::from(process_memory(&info) as i64),
                Term::from(info.messages_handled as i64),
                info.registered_name.map_or_else(|| mfa.clone(), Term::Atom),
                Term::Int(0),
                mfa,
                Term::from(info.message_queue_len as i64),
            ])
        })
        .collect()
}

/// `observer_backend:procs_info/1`: every process's record, sent to
/// `collector` in chunks of 10,000 as `{procs_info, From, Records}` (the
/// Processes tab spawns it and takes `From`'s normal exit as the end).
pub(crate) fn send_procs_info(node: &Node, from: Pid, collector: Pid) {
    let all = etop_procs(node);
    for chunk in all.chunks(10_000) {
        let _ = node.send_message(
            collector.into(),
            crate::message::Message::Term(Term::tuple([
                Term::atom("procs_info"),
                Term::Pid(from),
                Term::List(chunk.to_vec()),
            ])),
        );
    }
}

/// `observer_backend:etop_collect/1`: `{From, #etop_info{}}` to `collector`.
pub(crate) fn send_etop_info(node: &Node, from: Pid, collector: Pid) {
    let procs = etop_procs(node);
    let info = Term::tuple([
        Term::atom("etop_info"),
        timestamp(),
        Term::from(procs.len() as i64),
        Term::atom("undefined"),
        Term::atom("undefined"),
        Term::from(node.runtime().metrics().global_queue_depth() as i64),
        Term::NIL,
        etop_memi(node),
        Term::List(procs),
    ]);
    let _ = node.send_message(
        collector.into(),
        crate::message::Message::Term(Term::tuple([Term::Pid(from), info])),
    );
}

/// The memory figures etop shows.
fn etop_memi(node: &Node) -> Term {
    Term::List(
        ["total", "processes", "ets", "atom", "code", "binary"]
            .iter()
            .map(|t| pair(t, Term::from(memory(node, t).unwrap_or(0) as i64)))
            .collect(),
    )
}

/// `observer_backend:sys_info/0`: what observer's System tab shows.
fn sys_info(node: &Node) -> Term {
    let si = |item: &str| system_info(node, item).unwrap_or(Term::atom("undefined"));
    let stat = |item: &str| statistics(node, item).unwrap_or(Term::atom("undefined"));
    let (input, output) = crate::dist::conn::io_bytes();
    let uptime = match stat("wall_clock") {
        Term::Tuple(t) => t.first().cloned().unwrap_or(Term::Int(0)),
        other => other,
    };
    let mut v = vec![
        pair("uptime", uptime),
        pair("run_queue", stat("run_queue")),
        pair("io_input", Term::from(input)),
        pair("io_output", Term::from(output)),
    ];
    for item in [
        "logical_processors",
        "logical_processors_online",
        "logical_processors_available",
        "schedulers",
        "schedulers_online",
    ] {
        v.push(pair(item, si(item)));
    }
    v.push(pair("schedulers_available", si("schedulers_online")));
    for item in [
        "otp_release",
        "version",
        "system_architecture",
        "kernel_poll",
        "smp_support",
        "threads",
        "thread_pool_size",
    ] {
        v.push(pair(item, si(item)));
    }
    v.push(pair("wordsize_internal", si("wordsize")));
    v.push(pair("wordsize_external", si("wordsize")));
    v.push(pair("alloc_info", Term::NIL));
    for item in [
        "process_count",
        "atom_limit",
        "atom_count",
        "process_limit",
        "port_limit",
        "port_count",
        "ets_limit",
        "ets_count",
        "dist_buf_busy_limit",
    ] {
        v.push(pair(item, si(item)));
    }
    for t in MEMORY_TYPES {
        v.push(pair(t, Term::from(memory(node, t).unwrap_or(0) as i64)));
    }
    Term::List(v)
}

fn system_time_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn apps(list: Vec<crate::application::AppInfo>) -> Term {
    Term::List(
        list.into_iter()
            .map(|a| {
                Term::tuple([
                    Term::Atom(a.name),
                    Term::charlist(&a.description),
                    Term::charlist(&a.version),
                ])
            })
            .collect(),
    )
}

fn known_module(node: &Node, m: Atom) -> bool {
    MODULES.contains(&m.as_str()) || node.inner().dist.rpc.read().keys().any(|(rm, _)| *rm == m)
}

/// The functions answered here, with their arities.
const EXPORTS: [(&str, &str, i64); 31] = [
    ("appmon_info", "start_link2", 3),
    ("observer_backend", "sys_info", 0),
    ("observer_backend", "get_port_list", 0),
    ("observer_backend", "get_socket_list", 0),
    ("observer_backend", "get_table_list", 2),
    ("observer_backend", "procs_info", 1),
    ("observer_backend", "etop_collect", 1),
    ("observer_backend", "fetch_stats", 2),
    ("erlang", "timestamp", 0),
    ("erlang", "node", 0),
    ("erlang", "nodes", 0),
    ("erlang", "nodes", 1),
    ("erlang", "processes", 0),
    ("erlang", "registered", 0),
    ("erlang", "whereis", 1),
    ("erlang", "is_process_alive", 1),
    ("erlang", "process_info", 1),
    ("erlang", "process_info", 2),
    ("erlang", "system_info", 1),
    ("erlang", "memory", 0),
    ("erlang", "memory", 1),
    ("erlang", "statistics", 1),
    ("erlang", "function_exported", 3),
    ("application", "which_applications", 0),
    ("application", "which_applications", 1),
    ("application", "loaded_applications", 0),
    ("code", "ensure_loaded", 1),
    ("net_kernel", "get_net_ticktime", 0),
    ("erlang", "system_time", 0),
    ("erlang", "system_time", 1),
    ("os", "getpid", 0),
];

/// `erlang:function_exported/3` for what this node answers (a registered
/// Rust function counts for any arity: it takes its arguments as a list).
fn exported(node: &Node, m: Atom, f: Atom, arity: i64) -> bool {
    node.inner().dist.rpc.read().contains_key(&(m, f))
        || EXPORTS
            .iter()
            .any(|(em, ef, ea)| *em == m.as_str() && *ef == f.as_str() && *ea == arity)
}

fn nodes(node: &Node, which: &Term) -> Result<Term, RpcFailure> {
    let kinds: Vec<Atom> = match which {
        Term::Atom(a) => vec![*a],
        other => other
            .as_list()
            .ok_or_else(badarg)?
            .iter()
            .map(|t| match t {
                Term::Atom(a) => Ok(*a),
                _ => Err(badarg()),
            })
            .collect::<Result<_, _>>()?,
    };
    let mut out = Vec::new();
    for k in kinds {
        match k.as_str() {
            "visible" => out.extend(node.dist().nodes()),
            "hidden" => out.extend(node.dist().hidden_nodes()),
            "connected" => {
                out.extend(node.dist().nodes());
                out.extend(node.dist().hidden_nodes());
            }
            "this" => out.push(node.name()),
            "known" => {
                out.push(node.name());
                out.extend(node.dist().nodes());
                out.extend(node.dist().hidden_nodes());
            }
            _ => return Err(badarg()),
        }
    }
    out.dedup();
    Ok(atoms(out))
}

/// The items `process_info/1` gives, in Erlang's order.
const ALL_ITEMS: [&str; 14] = [
    "registered_name",
    "current_function",
    "initial_call",
    "status",
    "message_queue_len",
    "links",
    "dictionary",
    "trap_exit",
    "error_handler",
    "priority",
    "group_leader",
    "total_heap_size",
    "heap_size",
    "stack_size",
];

/// One `process_info/2` item's value (`None`: the item is not given, as
/// `registered_name` for a process without a name in `process_info/1`).
fn item_value(node: &Node, info: &ProcessInfo, item: &str) -> Option<Term> {
    Some(match item {
        "registered_name" => Term::Atom(info.registered_name?),
        // A behaviour's process is in its behaviour's loop, started by the
        // type that implements it (what `proc_lib:translate_initial_call`
        // gives for an OTP one); any other process in ergo's.
        "current_function" => match info.behaviour {
            Some(b) => Term::tuple([Term::atom(b.name), Term::atom("loop"), Term::Int(1)]),
            None => Term::tuple([Term::atom("ergo"), Term::atom("process"), Term::Int(1)]),
        },
        "initial_call" => match info.behaviour {
            Some(b) => Term::tuple([Term::atom(b.module), Term::atom("init"), Term::Int(1)]),
            None => Term::tuple([Term::atom("ergo"), Term::atom("process"), Term::Int(1)]),
        },
        "status" => Term::atom(match info.status {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Exiting => "exiting",
        }),
        "message_queue_len" => Term::from(info.message_queue_len as i64),
        "messages" => Term::NIL,
        "links" => pids(info.links.iter().copied()),
        "monitors" => Term::List(
            info.monitors
                .iter()
                .map(|(_, p)| Term::tuple([Term::atom("process"), Term::Pid(*p)]))
                .collect(),
        ),
        "monitored_by" => pids(info.monitored_by.iter().copied()),
        "dictionary" => Term::NIL,
        "trap_exit" => Term::from(info.trap_exit),
        "error_handler" => Term::atom("error_handler"),
        "priority" => Term::atom("normal"),
        "group_leader" => info
            .group_leader
            .map_or_else(|| Term::Pid(node.system_pid()), Term::Pid),
        "total_heap_size" | "heap_size" | "stack_size" => Term::Int(0),
        "memory" => Term::from(process_memory(info) as i64),
        "reductions" => Term::from(info.messages_handled as i64),
        "garbage_collection" => Term::NIL,
        "suspending" => Term::NIL,
        _ => return None,
    })
}

fn process_memory(info: &ProcessInfo) -> usize {
    PROCESS_BYTES + info.message_queue_len * 64
}

fn process_info_items(node: &Node, pid: Pid, items: &Term) -> Result<Term, RpcFailure> {
    let Some(info) = node.process_info(pid) else {
        return Ok(Term::atom("undefined"));
    };
    let one = |item: &Term| -> Result<Term, RpcFailure> {
        let Term::Atom(a) = item else {
            return Err(badarg());
        };
        match (a.as_str(), item_value(node, &info, a.as_str())) {
            // A process without a name: `[]`, as Erlang answers.
            ("registered_name", None) => Ok(Term::NIL),
            (_, Some(v)) => Ok(pair(a.as_str(), v)),
            (_, None) => Err(badarg()),
        }
    };
    match items {
        Term::Atom(_) => one(items),
        other => other
            .as_list()
            .ok_or_else(badarg)?
            .iter()
            .map(|i| match (i, one(i)) {
                (Term::Atom(a), Ok(Term::List(v)))
                    if a.as_str() == "registered_name" && v.is_empty() =>
                {
                    Ok(pair("registered_name", Term::NIL))
                }
                (_, r) => r,
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Term::List),
    }
}

fn system_info(node: &Node, item: &str) -> Result<Term, RpcFailure> {
    let workers = node.runtime().metrics().num_workers() as i64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    Ok(match item {
        "otp_release" => Term::charlist("25"),
        "version" => Term::charlist(env!("CARGO_PKG_VERSION")),
        "system_version" => Term::charlist(&format!(
            "ergo {} (Rust, tokio) [{}] [{} schedulers]\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            workers
        )),
        "machine" => Term::charlist("ergo"),
        "process_count" => Term::from(node.process_count() as i64),
        "process_limit" => Term::from(1i64 << 27),
        "schedulers" | "schedulers_online" => Term::from(workers),
        // Tokio has no dirty schedulers (its blocking pool is not counted).
        "dirty_cpu_schedulers" | "dirty_io_schedulers" => Term::from(0i64),
        "logical_processors" | "logical_processors_available" | "logical_processors_online" => {
            Term::from(cpus)
        }
        "system_architecture" => Term::charlist(&format!(
            "{}-unknown-{}",
            std::env::consts::ARCH,
            std::env::consts::OS
        )),
        "wordsize" => Term::from(std::mem::size_of::<usize>() as i64),
        "atom_count" => Term::from(Atom::count() as i64),
        "atom_limit" => Term::from(ergo_etf::ATOM_LIMIT as i64),
        "port_count" | "ets_count" => Term::from(0i64),
        "port_limit" | "ets_limit" => Term::from(65536i64),
        "thread_pool_size" => Term::from(0i64),
        "threads" | "kernel_poll" | "smp_support" => Term::from(true),
        "creation" => Term::from(i64::from(node.creation())),
        "multi_scheduling" => Term::atom("enabled"),
        "dist_buf_busy_limit" => Term::from(
            node.inner()
                .dist
                .config
                .get()
                .map_or(1 << 20, |c| c.conn.busy_limit) as i64,
        ),
        _ => return Err(badarg()),
    })
}

const MEMORY_TYPES: [&str; 9] = [
    "total",
    "processes",
    "processes_used",
    "system",
    "atom",
    "atom_used",
    "binary",
    "code",
    "ets",
];

/// This OS process's resident memory, in bytes.
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// `erlang:memory/1`: the total is what the OS has given this process; the
/// processes' share is estimated from their count and mailboxes.
fn memory(node: &Node, t: &str) -> Option<usize> {
    let processes = || node.process_count() * PROCESS_BYTES;
    let atom = || Atom::count() * 48;
    Some(match t {
        "total" => resident_bytes().max(processes()),
        "processes" | "processes_used" => processes(),
        "system" => resident_bytes().saturating_sub(processes()),
        "atom" | "atom_used" => atom(),
        "binary" | "code" | "ets" => 0,
        _ => return None,
    })
}

/// When the first node of this OS process started (for `wall_clock`).
fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// CPU time this OS process has used, in milliseconds (`utime + stime`
/// of `/proc/self/stat`, in clock ticks of 10 ms).
fn cpu_ms() -> i64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let u: i64 = f.get(11)?.parse().ok()?;
            let k: i64 = f.get(12)?.parse().ok()?;
            Some((u + k) * 10)
        })
        .unwrap_or(0)
}

fn statistics(node: &Node, item: &str) -> Result<Term, RpcFailure> {
    let since = |key: &str, total: i64| {
        let last = node
            .inner()
            .dist
            .stats_last
            .lock()
            .insert(key.to_string(), total);
        Term::tuple([Term::from(total), Term::from(total - last.unwrap_or(0))])
    };
    Ok(match item {
        "runtime" => since("runtime", cpu_ms()),
        "wall_clock" => since("wall_clock", started().elapsed().as_millis() as i64),
        "reductions" | "exact_reductions" => {
            let total: u64 = node
                .processes()
                .into_iter()
                .filter_map(|p| node.process_info(p))
                .map(|i| i.messages_handled)
                .sum();
            since(item, total as i64)
        }
        "run_queue" | "total_run_queue_lengths" => {
            Term::from(node.runtime().metrics().global_queue_depth() as i64)
        }
        "io" => {
            let (input, output) = crate::dist::conn::io_bytes();
            Term::tuple([
                pair("input", Term::from(input)),
                pair("output", Term::from(output)),
            ])
        }
        "scheduler_wall_time" | "scheduler_wall_time_all" => scheduler_wall_time(node),
        "context_switches" => Term::tuple([Term::Int(0), Term::Int(0)]),
        "garbage_collection" => Term::tuple([Term::Int(0), Term::Int(0), Term::Int(0)]),
        _ => return Err(badarg()),
    })
}

/// Each scheduler (tokio worker) as `{Id, ActiveTime, TotalTime}`, in
/// microseconds since the clock started: observer's load chart reads the
/// ratio.
fn scheduler_wall_time(node: &Node) -> Term {
    let m = node.runtime().metrics();
    let total = started().elapsed().as_micros() as i64;
    Term::List(
        (0..m.num_workers())
            .map(|w| {
                Term::tuple([
                    Term::from(w as i64 + 1),
                    Term::from((m.worker_total_busy_duration(w).as_micros() as i64).min(total)),
                    Term::from(total),
                ])
            })
            .collect(),
    )
}

/// `observer_backend:fetch_stats(Parent, Time)`, spawned on this node by
/// observer's load charts: every `Time` ms, `{stats, 1, SchedulerWallTime,
/// {{input, In}, {output, Out}}, Memory}` to Parent, until any message
/// comes.
pub(crate) async fn fetch_stats(mut ctx: crate::Context, parent: Pid, every_ms: u64) {
    let every = std::time::Duration::from_millis(every_ms.max(1));
    loop {
        if ctx.receive_timeout(every).await.is_some() {
            return;
        }
        let node = ctx.node().clone();
        let (input, output) = crate::dist::conn::io_bytes();
        let memory = Term::List(
            MEMORY_TYPES
                .iter()
                .map(|t| pair(t, Term::from(memory(&node, t).unwrap_or(0) as i64)))
                .collect(),
        );
        let stats = Term::tuple([
            Term::atom("stats"),
            Term::Int(1),
            scheduler_wall_time(&node),
            Term::tuple([
                pair("input", Term::from(input)),
                pair("output", Term::from(output)),
            ]),
            memory,
        ]);
        if ctx.send(parent, stats).is_err() {
            return;
        }
    }
}

/// Starts the clock `statistics(wall_clock)` counts from.
pub(crate) fn start_clock() {
    let _ = started();
}

/// `appmon_info:start_link2(Starter, Client, Opts)`, as observer's
/// Applications tab calls it: the node's `appmon_info` process (started
/// now, or the one running), linked to the client; `{ok, Pid}`.
pub(crate) fn appmon_start(node: &Node, client: Pid) -> Term {
    let pid = match node.whereis("appmon_info") {
        Some(pid) => {
            let _ = node.send_message(
                pid.into(),
                crate::message::Message::local(AppmonClient(client)),
            );
            pid
        }
        None => {
            let pid = node.spawn(move |ctx| appmon(ctx, client));
            if node.register(Atom::from("appmon_info"), pid).is_err() {
                // Started meanwhile by another client: use that one.
                node.exit(pid, pid, crate::reason::Reason::Kill);
                return appmon_start(node, client);
            }
            pid
        }
    };
    Term::tuple([Term::atom("ok"), Term::Pid(pid)])
}

/// A further client of the running `appmon_info` process.
struct AppmonClient(Pid);

/// One piece of work `appmon_info` repeats for a client: what it
/// delivered last, to send only changes.
struct AppmonTask {
    cmd: Atom,
    aux: Term,
    from: Pid,
    last: Option<Term>,
}

/// The `appmon_info` process: for each client's `app_ctrl` (the running
/// applications) and `app` (one application's supervision tree), sends
/// `{delivery, Self, Cmd, Aux, Result}` when the result changes, checked
/// every 2 s as `appmon_info` does; it ends with its last client.
async fn appmon(mut ctx: crate::Context, first: Pid) {
    ctx.set_trap_exit(true);
    let mut clients = vec![first];
    let _ = ctx.link(first);
    let mut tasks: Vec<AppmonTask> = Vec::new();
    loop {
        let node = ctx.node().clone();
        for t in &mut tasks {
            let result = match t.cmd.as_str() {
                "app_ctrl" => app_ctrl(&node),
                "app" => match &t.aux {
                    Term::Atom(app) => app_tree(&node, *app).await,
                    _ => Term::tuple([Term::NIL, Term::NIL, Term::NIL, Term::NIL]),
                },
                _ => Term::tuple([Term::Atom(t.cmd), t.aux.clone()]),
            };
            if t.last.as_ref() != Some(&result) {
                let _ = ctx.send(
                    t.from,
                    Term::tuple([
                        Term::atom("delivery"),
                        Term::Pid(ctx.pid()),
                        Term::Atom(t.cmd),
                        t.aux.clone(),
                        result.clone(),
                    ]),
                );
                t.last = Some(result);
            }
        }
        let Some(msg) = ctx.receive_timeout(std::time::Duration::from_secs(2)).await else {
            continue;
        };
        match msg {
            crate::message::Message::Term(Term::Tuple(t))
                if t.len() == 2 && t[0].is_atom("$gen_cast") =>
            {
                if let Term::Tuple(c) = &t[1]
                    && let [Term::Pid(from), Term::Atom(cmd), aux, on, _opts] = c.as_slice()
                {
                    tasks.retain(|x| !(x.cmd == *cmd && x.aux == *aux && x.from == *from));
                    if on.is_atom("true") {
                        tasks.push(AppmonTask {
                            cmd: *cmd,
                            aux: aux.clone(),
                            from: *from,
                            last: None,
                        });
                    }
                }
            }
            crate::message::Message::Exit { from, .. } => {
                tasks.retain(|t| t.from != from);
                clients.retain(|c| *c != from);
                if clients.is_empty() {
                    return;
                }
            }
            m @ crate::message::Message::Local(_) => {
                if let Ok(AppmonClient(c)) = m.downcast::<AppmonClient>()
                    && !clients.contains(&c)
                {
                    let _ = ctx.link(c);
                    clients.push(c);
                }
            }
            _ => {}
        }
    }
}

/// The running applications as `app_ctrl` delivers them:
/// `[{TopPid, Name, {Name, Description, Version}}]`.
fn app_ctrl(node: &Node) -> Term {
    Term::List(
        node.which_applications()
            .into_iter()
            .filter_map(|a| {
                let top = node.application_top(a.name)?;
                Some(Term::tuple([
                    Term::Pid(top),
                    Term::Atom(a.name),
                    Term::tuple([
                        Term::Atom(a.name),
                        Term::charlist(&a.description),
                        Term::charlist(&a.version),
                    ]),
                ]))
            })
            .collect(),
    )
}

/// How `appmon_info` names a process: its registered name, or its pid.
fn appmon_name(node: &Node, pid: Pid) -> Term {
    match node.process_info(pid).and_then(|i| i.registered_name) {
        Some(name) => Term::charlist(name.as_str()),
        // As `pid_to_list/1` prints a pid of the node itself.
        None => Term::charlist(&format!("<0.{}.{}>", pid.id, pid.serial)),
    }
}

/// An application's supervision tree as `app` delivers it: `{Root,
/// [{Pid, Name}], [{ParentName, ChildName}], []}`, walked from the top
/// supervisor through `which_children`.
async fn app_tree(node: &Node, app: Atom) -> Term {
    let Some(top) = node.application_top(app) else {
        return Term::tuple([Term::NIL, Term::NIL, Term::NIL, Term::NIL]);
    };
    let mut names = vec![Term::tuple([Term::Pid(top), appmon_name(node, top)])];
    let mut links = Vec::new();
    let mut queue = vec![top];
    while let Some(sup) = queue.pop() {
        let children = crate::supervisor::SupRef::from_pid(node, sup)
            .which_children()
            .await
            .unwrap_or_default();
        for c in children {
            let Some(pid) = c.pid else { continue };
            names.push(Term::tuple([Term::Pid(pid), appmon_name(node, pid)]));
            links.push(Term::tuple([
                appmon_name(node, sup),
                appmon_name(node, pid),
            ]));
            if c.kind == crate::supervisor::ChildType::Supervisor {
                queue.push(pid);
            }
        }
    }
    Term::tuple([
        appmon_name(node, top),
        Term::List(names),
        Term::List(links),
        Term::NIL,
    ])
}
