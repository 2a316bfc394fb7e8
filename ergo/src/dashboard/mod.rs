//! A live web dashboard served by the node itself (feature `dashboard`):
//! [`Node::serve_dashboard`] starts it on an address of your choice.
//!
//! - `/`: the page (plain HTML and JavaScript shipped in the crate): the
//!   node and its connected nodes, live charts of the process count,
//!   messages handled per second and memory, the distribution connections
//!   with bytes and frames each way, the process list (sortable by mailbox
//!   length, memory and messages handled; filtered by name), one process's
//!   behaviour, links, monitors and (for a GenServer that shows it through
//!   `GenServer::format_status`) state, and each running application's supervision tree.
//! - `/events`: the same data as Server-Sent Events, one snapshot a second
//!   (the page updates from these, never by reloading).
//! - `/api/snapshot` and `/api/process/<id>.<serial>`: JSON.
//! - `/metrics`: the node's figures in Prometheus's text format.
//!
//! Nothing runs when the dashboard is not served; when it is, the work is
//! one snapshot a second per open page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ergo_etf::{Atom, Pid};
use serde_json::{Value, json};

use crate::node::Node;
use crate::process::Status;

const PAGE: &str = include_str!("index.html");

#[derive(Clone)]
struct App {
    node: Node,
    started: Instant,
}

impl Node {
    /// Serves the web dashboard on `addr` (port 0: any free port) until the
    /// node stops; returns the address it listens on.
    pub async fn serve_dashboard(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = App {
            node: self.clone(),
            started: Instant::now(),
        };
        let router = Router::new()
            .route("/", get(page))
            .route("/events", get(events))
            .route("/api/snapshot", get(snapshot_json))
            .route("/api/process/{pid}", get(process_json))
            .route("/metrics", get(metrics))
            .with_state(app);
        let node = self.clone();
        let task = self.runtime().spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(node = %node.name(), "the dashboard stopped: {e}");
            }
        });
        self.inner().dist.running_push(task.abort_handle());
        tracing::info!(node = %self.name(), %local, "dashboard at http://{local}/");
        Ok(local)
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

fn pid_text(p: Pid) -> String {
    format!("<0.{}.{}>", p.id, p.serial)
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Waiting => "waiting",
        Status::Exiting => "exiting",
    }
}

/// Everything the page shows, as JSON.
async fn snapshot(app: &App) -> Value {
    let node = &app.node;
    let infos: Vec<_> = node
        .processes()
        .into_iter()
        .filter_map(|p| node.process_info(p))
        .collect();
    let handled: u64 = infos.iter().map(|i| i.messages_handled).sum();
    let processes: Vec<Value> = infos
        .iter()
        .map(|i| {
            json!({
                "pid": pid_text(i.pid),
                "name": i.registered_name.map(|n| n.as_str().to_string()),
                "status": status_text(i.status),
                "mq": i.message_queue_len,
                "handled": i.messages_handled,
                "memory": 800 + i.message_queue_len * 64,
                "links": i.links.len(),
                "monitors": i.monitors.len(),
            })
        })
        .collect();
    let conns: Vec<Value> = {
        let conns = node.inner().dist.conns.read();
        let mut v: Vec<Value> = conns
            .values()
            .filter(|c| c.is_up())
            .map(|c| {
                use std::sync::atomic::Ordering::Relaxed;
                json!({
                    "node": c.peer.as_str(),
                    "bytes_in": c.bytes_in.load(Relaxed),
                    "bytes_out": c.bytes_out.load(Relaxed),
                    "frames_in": c.frames_in(),
                    "frames_out": c.frames_out.load(Relaxed),
                })
            })
            .collect();
        v.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
        v
    };
    let mut apps = Vec::new();
    for a in node.which_applications() {
        let tree = match node.application_top(a.name) {
            Some(top) => sup_tree(node, top).await,
            None => Value::Null,
        };
        apps.push(json!({
            "name": a.name.as_str(),
            "version": a.version,
            "description": a.description,
            "tree": tree,
        }));
    }
    let (io_in, io_out) = crate::dist::conn::io_bytes();
    json!({
        "node": {
            "name": node.name().as_str(),
            "uptime_s": app.started.elapsed().as_secs(),
            "process_count": infos.len(),
            "messages_handled": handled,
            "memory": resident_bytes(),
            "atoms": Atom::count(),
            "nodes": node.dist().nodes().iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            "hidden_nodes": node.dist().hidden_nodes().iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            "io_in": io_in,
            "io_out": io_out,
        },
        "connections": conns,
        "processes": processes,
        "applications": apps,
    })
}

/// A supervisor and what it supervises, as a tree of `{name, pid, kind,
/// children}`.
async fn sup_tree(node: &Node, top: Pid) -> Value {
    let label = |p: Pid| {
        node.process_info(p)
            .and_then(|i| i.registered_name)
            .map_or_else(|| pid_text(p), |n| n.as_str().to_string())
    };
    // Walked breadth first, then put together.
    let mut children_of: Vec<(Pid, Vec<(Pid, bool)>)> = Vec::new();
    let mut queue = vec![top];
    while let Some(sup) = queue.pop() {
        let kids = crate::supervisor::SupRef::from_pid(node, sup)
            .which_children()
            .await
            .unwrap_or_default();
        let mut v = Vec::new();
        for c in kids {
            if let Some(p) = c.pid {
                let is_sup = c.kind == crate::supervisor::ChildType::Supervisor;
                if is_sup {
                    queue.push(p);
                }
                v.push((p, is_sup));
            }
        }
        children_of.push((sup, v));
    }
    fn build(
        p: Pid,
        is_sup: bool,
        children_of: &[(Pid, Vec<(Pid, bool)>)],
        label: &dyn Fn(Pid) -> String,
    ) -> Value {
        let kids = children_of
            .iter()
            .find(|(s, _)| *s == p)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default();
        json!({
            "name": label(p),
            "pid": pid_text(p),
            "kind": if is_sup { "supervisor" } else { "worker" },
            "children": kids.iter().map(|(c, s)| build(*c, *s, children_of, label)).collect::<Vec<_>>(),
        })
    }
    build(top, true, &children_of, &label)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

async fn snapshot_json(State(app): State<App>) -> Response {
    json_response(snapshot(&app).await)
}

fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// `<id>.<serial>` (or `<0.id.serial>`) as a pid of this node.
fn parse_pid(node: &Node, text: &str) -> Option<Pid> {
    let t = text.trim_start_matches('<').trim_end_matches('>');
    let parts: Vec<&str> = t.split('.').collect();
    let (id, serial) = match parts.as_slice() {
        [id, serial] | ["0", id, serial] => (id.parse().ok()?, serial.parse().ok()?),
        _ => return None,
    };
    Some(Pid {
        node: node.name(),
        id,
        serial,
        creation: node.creation(),
    })
}

async fn process_json(State(app): State<App>, Path(pid): Path<String>) -> Response {
    let node = &app.node;
    let Some(info) = parse_pid(node, &pid).and_then(|p| node.process_info(p)) else {
        return (StatusCode::NOT_FOUND, "no such process").into_response();
    };
    let pids = |v: &[Pid]| -> Vec<String> {
        v.iter()
            .map(|p| {
                if p.node == node.name() {
                    pid_text(*p)
                } else {
                    format!("{p} on {}", p.node)
                }
            })
            .collect()
    };
    let monitors: Vec<Pid> = info.monitors.iter().map(|(_, p)| *p).collect();
    // A GenServer's state, if it shows it (`GenServer::format_status`),
    // written as Erlang writes terms.
    let state = match info.behaviour {
        Some(b) if b.name == "gen_server" => node
            .server_state(info.pid, Duration::from_secs(1))
            .await
            .map(|t| t.to_string()),
        _ => None,
    };
    json_response(json!({
        "behaviour": info.behaviour.map(|b| b.name),
        "module": info.behaviour.map(|b| b.module),
        "state": state,
        "pid": pid_text(info.pid),
        "name": info.registered_name.map(|n| n.as_str().to_string()),
        "status": status_text(info.status),
        "mq": info.message_queue_len,
        "handled": info.messages_handled,
        "trap_exit": info.trap_exit,
        "links": pids(&info.links),
        "monitors": pids(&monitors),
        "monitored_by": pids(&info.monitored_by),
        "group_leader": info.group_leader.map(pid_text),
    }))
}

async fn events(
    State(app): State<App>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((app, true), |(app, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let data = snapshot(&app).await.to_string();
        Some((
            Ok(Event::default().event("snapshot").data(data)),
            (app, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn metrics(State(app): State<App>) -> Response {
    let s = snapshot(&app).await;
    let n = &s["node"];
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: &Value| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
            value.as_u64().unwrap_or(0)
        ));
    };
    metric(
        "ergo_processes",
        "gauge",
        "Processes running on the node.",
        &n["process_count"],
    );
    metric(
        "ergo_messages_handled_total",
        "counter",
        "Messages the node's running processes have received.",
        &n["messages_handled"],
    );
    metric(
        "ergo_memory_bytes",
        "gauge",
        "Resident memory of the OS process.",
        &n["memory"],
    );
    metric(
        "ergo_atoms",
        "gauge",
        "Atoms in the atom table.",
        &n["atoms"],
    );
    metric(
        "ergo_connected_nodes",
        "gauge",
        "Nodes connected (visible).",
        &json!(n["nodes"].as_array().map_or(0, Vec::len)),
    );
    metric(
        "ergo_dist_received_bytes_total",
        "counter",
        "Distribution bytes read.",
        &n["io_in"],
    );
    metric(
        "ergo_dist_sent_bytes_total",
        "counter",
        "Distribution bytes written.",
        &n["io_out"],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
