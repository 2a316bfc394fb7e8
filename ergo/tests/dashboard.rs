//! The web dashboard (feature `dashboard`) in headless Chromium, driven
//! over Chrome's DevTools protocol: the page loads and lists the node's
//! processes, a process started after the page loaded appears without a
//! reload (the page lives on Server-Sent Events), an application's
//! supervision tree is drawn, and a screenshot is kept in
//! `target/test-artifacts/dashboard/`. Also `/metrics` in Prometheus's
//! format and the JSON API.
//!
//! The test command installs Debian's `chromium`; where it is missing the
//! browser part says so and is skipped.
#![cfg(feature = "dashboard")]

use std::time::Duration;

use ergo::gen_server::{GenServer, Reply, ServerContext};
use ergo::{Atom, ChildSpec, Node, Reason, Strategy, SupervisorSpec, Term};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Counts the calls it has served, and shows the count as its state.
struct Idle(u64);

impl GenServer for Idle {
    type Args = ();
    type Call = Term;
    type Cast = Term;
    type Reply = Term;

    async fn init(_args: (), _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        Ok(Idle(0))
    }

    async fn handle_call(&mut self, request: Term, _ctx: &mut ServerContext<Self>) -> Reply<Term> {
        self.0 += 1;
        Reply::Reply(request)
    }

    fn format_status(&self) -> Option<Term> {
        Some(Term::tuple([
            Term::atom("served"),
            Term::from(self.0 as i64),
        ]))
    }
}

#[ergo::application(
    name = "dash_app",
    description = "drawn by the dashboard",
    version = "2.0.0"
)]
struct DashApp;

impl ergo::Application for DashApp {
    fn supervisor() -> SupervisorSpec {
        SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::named_server::<Idle>(
                "dash_worker_a",
                "dash_worker_a",
                (),
            ))
            .child(ChildSpec::named_server::<Idle>(
                "dash_worker_b",
                "dash_worker_b",
                (),
            ))
    }
}

/// `GET path` on `addr`: the status line's code and the body (read up to
/// its `Content-Length`, or the end of the connection).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    let all = String::from_utf8_lossy(&all).into_owned();
    let code = all
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = all
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// Base64 as Chrome sends screenshots.
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// A DevTools connection to one page.
struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                msg.to_string().into(),
            ))
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("DevTools answers")
                .expect("the DevTools connection is open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v;
                }
            }
        }
    }

    /// The page's text inside the element `selector`.
    async fn text(&mut self, selector: &str) -> String {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({
                    "expression": format!("(document.querySelector('{selector}') || {{}}).innerText || ''"),
                    "returnByValue": true,
                }),
            )
            .await;
        r["result"]["result"]["value"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits (at most 20 s) until `selector`'s text holds `want`.
    async fn until(&mut self, selector: &str, want: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text(selector).await;
            if t.contains(want) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{selector} never showed {want:?}; it shows:\n{t}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_processes_live_draws_trees_and_serves_metrics() {
    let node = Node::builder("dash@127.0.0.1").cookie("c").start().unwrap();
    node.load_application(DashApp::spec()).unwrap();
    node.start_application("dash_app", ergo::application::StartType::Temporary)
        .await
        .unwrap();
    let addr = node
        .serve_dashboard("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // The JSON API and the metrics.
    let (code, snap) = get(addr, "/api/snapshot").await;
    assert_eq!(code, 200);
    let snap: serde_json::Value = serde_json::from_str(&snap).unwrap();
    assert_eq!(snap["node"]["name"], "dash@127.0.0.1");
    assert_eq!(
        snap["node"]["process_count"].as_u64().unwrap() as usize,
        node.process_count()
    );
    assert_eq!(
        snap["applications"][0]["tree"]["children"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, metrics) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("# TYPE ergo_processes gauge")
            && metrics.contains(&format!("\nergo_processes {}\n", node.process_count())),
        "{metrics}"
    );
    let worker = node.whereis("dash_worker_a").unwrap();
    let (code, details) = get(
        addr,
        &format!("/api/process/{}.{}", worker.id, worker.serial),
    )
    .await;
    assert_eq!(code, 200);
    assert!(details.contains("\"name\":\"dash_worker_a\""), "{details}");
    // The worker is a GenServer that shows its state; its supervisor is
    // not one and shows none.
    assert!(
        details.contains("\"behaviour\":\"gen_server\""),
        "{details}"
    );
    assert!(details.contains("\"state\":\"{served,0}\""), "{details}");
    let sup = node.process_info(worker).unwrap().links[0];
    let (_, sup_details) = get(addr, &format!("/api/process/{}.{}", sup.id, sup.serial)).await;
    assert!(
        sup_details.contains("\"behaviour\":\"supervisor\""),
        "{sup_details}"
    );
    assert!(sup_details.contains("\"state\":null"), "{sup_details}");
    assert_eq!(get(addr, "/api/process/999999.0").await.0, 404);

    // The page in a browser.
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser part of the_dashboard_lists_processes_live_draws_trees_and_serves_metrics: \
             Chromium is not installed (the test command installs Debian's chromium)"
        );
        return;
    };
    let profile = std::env::temp_dir().join(format!("ergo-dash-chromium-{}", std::process::id()));
    let mut chrome = tokio::process::Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{addr}/"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
    let mut lines = tokio::io::BufReader::new(chrome.stderr.take().unwrap()).lines();
    let devtools_port: u16 = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(rest) = l.split("ws://127.0.0.1:").nth(1) {
                return rest.split('/').next().unwrap().parse().unwrap();
            }
        }
        panic!("chromium ended without a DevTools address")
    })
    .await
    .expect("chromium says where DevTools listens");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let devtools: std::net::SocketAddr = ([127, 0, 0, 1], devtools_port).into();
    let ws_url = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, list) = get(devtools, "/json/list").await;
            let targets: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
            let page = targets.as_array().and_then(|t| {
                t.iter()
                    .find(|x| {
                        x["type"] == "page"
                            && x["url"]
                                .as_str()
                                .is_some_and(|u| u.contains(&addr.to_string()))
                    })
                    .and_then(|x| x["webSocketDebuggerUrl"].as_str().map(str::to_string))
            });
            if let Some(u) = page {
                break u;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no page target: {list}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let mut page = Page { ws, next: 0 };
    // Loaded and live: the processes are listed, the tree drawn.
    page.until("#status", "live").await;
    page.until("#procs", "dash_worker_a").await;
    let apps = page.until("#apps", "dash_worker_b").await;
    assert!(apps.contains("dash_app 2.0.0"), "{apps}");
    // A process started now appears without a reload.
    let late = node.spawn(|mut ctx| async move {
        ctx.receive().await;
    });
    node.register(Atom::from("late_comer"), late).unwrap();
    page.until("#procs", "late_comer").await;
    let navigations = page
        .call(
            "Runtime.evaluate",
            serde_json::json!({"expression": "performance.getEntriesByType('navigation').length", "returnByValue": true}),
        )
        .await;
    assert_eq!(
        navigations["result"]["result"]["value"], 1,
        "the page was loaded once"
    );
    // The filter.
    page.call(
        "Runtime.evaluate",
        serde_json::json!({"expression": "const f = document.getElementById('filter'); f.value = 'late'; f.oninput(); 1"}),
    )
    .await;
    let filtered = page.text("#procs").await;
    assert!(
        filtered.contains("late_comer") && !filtered.contains("dash_worker_a"),
        "{filtered}"
    );
    // A screenshot for people to look at.
    let shot = page
        .call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        )
        .await;
    let png = base64(shot["result"]["data"].as_str().unwrap_or(""));
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    let _ = chrome.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    let _ = Term::NIL;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_built_with_a_dashboard_address_serves_it_from_the_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let node = Node::builder("dash_built@127.0.0.1")
        .dashboard(addr)
        .start()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard listens"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, metrics) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!("\nergo_processes {}\n", node.process_count())),
        "{metrics}"
    );
    let (code, page) = get(addr, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>ergo dashboard</title>"));
}
