//! Real Erlang nodes for the distribution tests: `erl` started as an OS
//! process on 127.0.0.1, driven through its standard input. Each line sent
//! is a sequence of Erlang expressions; the node evaluates it (keeping
//! variable bindings from one line to the next) and prints the value on one
//! line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (for a test's own EPMD).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An ergo node of this OS process named `name@127.0.0.1` with `cookie`,
/// listening for other nodes, registered with the EPMD on `epmd` (within
/// 30 s).
pub(crate) async fn dist_node(name: &str, cookie: &str, epmd: u16) -> ergo::Node {
    dist_node_with(name, cookie, epmd, |_| {}).await
}

/// [`dist_node`] with its distribution options changed by `tweak` first.
pub(crate) async fn dist_node_with(
    name: &str,
    cookie: &str,
    epmd: u16,
    tweak: impl FnOnce(&mut ergo::dist::DistOptions),
) -> ergo::Node {
    let node = ergo::Node::builder(format!("{name}@127.0.0.1"))
        .cookie(cookie)
        .start()
        .unwrap();
    let mut opts = ergo::dist::DistOptions {
        epmd_port: Some(epmd),
        ..ergo::dist::DistOptions::default()
    };
    tweak(&mut opts);
    tokio::time::timeout(Duration::from_secs(30), node.dist().listen(opts))
        .await
        .unwrap_or_else(|_| panic!("{name}: not listening within 30 s"))
        .unwrap();
    node
}

/// The host part of the tests' short node names (`erl -sname NAME@localhost`).
/// Plain `-sname NAME` takes the machine's host name, which may resolve to
/// an address where the tests' EPMD does not listen (127.0.1.1 on stock
/// Debian, the container's address in Docker); `localhost` is 127.0.0.1.
pub(crate) const SHORT_HOST: &str = "localhost";

/// `erl -sname NAME@localhost -setcookie COOKIE -noshell -eval EVAL` using
/// the EPMD on `epmd_port`, its standard streams piped (stderr dropped).
pub(crate) fn erl_short(epmd_port: u16, name: &str, cookie: &str, eval: &str) -> Child {
    Command::new("erl")
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .args([
            "-sname",
            &format!("{name}@{SHORT_HOST}"),
            "-setcookie",
            cookie,
            "-noshell",
            "-eval",
            eval,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl on PATH (scripts/test.sh installs it)")
}

/// A child process killed and reaped when the test ends, passed or not.
pub(crate) struct Reaped(pub(crate) Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The evaluator loop the node runs.
const AGENT: &str = r#"
Loop = fun Loop(B) ->
    case io:get_line("") of
        eof -> halt();
        Line ->
            {R, B2} = try
                {ok, Ts, _} = erl_scan:string(Line),
                {ok, Es} = erl_parse:parse_exprs(Ts),
                {value, V, NB} = erl_eval:exprs(Es, B),
                {V, NB}
            catch C:E -> {{caught, C, E}, B} end,
            io:format("=> ~0p~n", [R]),
            Loop(B2)
    end
end,
io:format("=> started~n"),
Loop(erl_eval:new_bindings()).
"#;

/// An `erl` node.
pub(crate) struct Erl {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Its node name.
    pub(crate) name: String,
}

impl Erl {
    /// Starts `erl -name NAME@127.0.0.1 -setcookie COOKIE` using the EPMD
    /// on `epmd_port`, with `extra` arguments.
    pub(crate) fn start(name: &str, cookie: &str, epmd_port: u16, extra: &[&str]) -> Erl {
        Self::start_program("erl", name, cookie, epmd_port, extra)
    }

    fn start_program(
        program: &str,
        name: &str,
        cookie: &str,
        epmd_port: u16,
        extra: &[&str],
    ) -> Erl {
        let full = format!("{name}@127.0.0.1");
        let mut cmd = Command::new(program);
        cmd.env("ERL_EPMD_PORT", epmd_port.to_string());
        Self::start_command(cmd, &full, cookie, extra)
    }

    /// `erl` in the network namespace `netns` (`ip netns exec`), named
    /// `full` (`name@address`), with the EPMD of that namespace (started
    /// by `erl` on the standard port when none runs there).
    pub(crate) fn start_in_netns(netns: &str, full: &str, cookie: &str, extra: &[&str]) -> Erl {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, "erl"]);
        Self::start_command(cmd, full, cookie, extra)
    }

    fn start_command(mut cmd: Command, full: &str, cookie: &str, extra: &[&str]) -> Erl {
        let full = full.to_string();
        let name = full.clone();
        let agent: String = AGENT.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut child = cmd
            .args(["-name", &full, "-setcookie", cookie, "-noshell"])
            .args(extra)
            .args(["-eval", &agent])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("erl runs (the test command installs erlang-nox)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(v) = line.strip_prefix("=> ") {
                    if tx.send(v.to_string()).is_err() {
                        break;
                    }
                } else {
                    eprintln!("[{full}] {line}");
                }
            }
        });
        let mut erl = Erl {
            child,
            stdin,
            lines: rx,
            name,
        };
        let first = erl.next_line(Duration::from_secs(30));
        assert_eq!(first, "started", "erl did not start");
        erl
    }

    fn next_line(&mut self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no answer from {} within {timeout:?}", self.name))
    }

    /// Evaluates `exprs` (without the final dot) and returns the value as
    /// `~0p` prints it.
    pub(crate) fn eval(&mut self, exprs: &str) -> String {
        self.eval_timeout(exprs, Duration::from_secs(20))
    }

    /// Like [`Erl::eval`], waiting at most `timeout`.
    pub(crate) fn eval_timeout(&mut self, exprs: &str, timeout: Duration) -> String {
        let line = exprs.replace('\n', " ");
        writeln!(self.stdin, "{line}.").unwrap();
        self.stdin.flush().unwrap();
        self.next_line(timeout)
    }

    /// The OS process id (to stop or kill it).
    pub(crate) fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the node with SIGKILL.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (`STOP`, `CONT`) with the shell's `kill` builtin
    /// (`/bin/kill` comes from procps, which a bare machine may lack).
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("sh")
            .args(["-c", &format!("kill -{sig} {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }
}

impl Drop for Erl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An example's binary, built by `cargo build --examples` into
/// `target/<profile>/examples` (scripts/test.sh does that first).
pub(crate) fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --examples` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The `interop_node` example running as its own OS process.
pub(crate) struct InteropNode {
    child: Child,
    /// Its node name.
    pub(crate) name: String,
    /// What it has printed on stderr (its log), line by line.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl InteropNode {
    /// Starts `interop_node --name NAME@127.0.0.1 --cookie COOKIE` with
    /// `ERL_EPMD_PORT=epmd_port`, and waits for its `ready` line.
    pub(crate) fn start(name: &str, cookie: &str, epmd_port: u16) -> InteropNode {
        InteropNode::start_with(name, cookie, epmd_port, &[])
    }

    /// [`InteropNode::start`] with `extra` arguments (TLS options, say).
    pub(crate) fn start_with(
        name: &str,
        cookie: &str,
        epmd_port: u16,
        extra: &[&str],
    ) -> InteropNode {
        let full = format!("{name}@127.0.0.1");
        let mut cmd = Command::new(example("interop_node"));
        cmd.env("ERL_EPMD_PORT", epmd_port.to_string());
        InteropNode::start_command(cmd, &full, cookie, extra)
    }

    /// The example in the network namespace `netns` (`ip netns exec`),
    /// named `full` (`name@address`), on that namespace's standard EPMD
    /// port (it hosts an EPMD when none runs there).
    pub(crate) fn start_in_netns(
        netns: &str,
        full: &str,
        cookie: &str,
        extra: &[&str],
    ) -> InteropNode {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(example("interop_node"));
        InteropNode::start_command(cmd, full, cookie, extra)
    }

    fn start_command(mut cmd: Command, full: &str, cookie: &str, extra: &[&str]) -> InteropNode {
        let full = full.to_string();
        let mut child = cmd
            .args(["--name", &full, "--cookie", cookie])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("interop_node starts");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("interop_node says ready");
        assert_eq!(line, "ready");
        InteropNode {
            child,
            name: full,
            log,
        }
    }

    /// Waits up to `timeout` for its log to hold a line with every one of
    /// `parts`; gives the whole log either way.
    pub(crate) fn wait_log(&self, parts: &[&str], timeout: Duration) -> (bool, String) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.iter().any(|l| parts.iter().all(|p| l.contains(p))) {
                return (true, log.join("\n"));
            }
            if std::time::Instant::now() > deadline {
                return (false, log.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it with SIGKILL.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends it a signal (`STOP`, `CONT`).
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("sh")
            .args(["-c", &format!("kill -{sig} {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Its resident memory, in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for InteropNode {
    fn drop(&mut self) {
        self.kill();
    }
}
