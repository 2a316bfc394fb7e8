//! Erps between Rust and the real Elixir Erps 0.7.0, over TCP and TLS:
//! the `erps_client` example against an Elixir `Erps.Daemon`, and an
//! Elixir `Erps.Client` against the `erps_server` example, each calling,
//! casting and receiving a push. Plus Rust to Rust.
//!
//! Elixir's Erps is compiled from its unmodified sources, found at
//! `$ERPS_SRC` (default `../shared/third_party/erps` next to the
//! repository); where they or `elixir` are absent each test says so and
//! does nothing else.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::example;

/// The folder of compiled Erps beams, built once per run; `None` (said
/// why) when the sources or `elixir` are missing.
fn erps_beams() -> Option<&'static Path> {
    static BEAMS: OnceLock<Option<PathBuf>> = OnceLock::new();
    BEAMS
        .get_or_init(|| {
            let src = std::env::var_os("ERPS_SRC")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/third_party/erps")
                });
            if !src.join("build.sh").exists() {
                eprintln!(
                    "SKIPPED: Elixir's Erps sources are not at {} (set ERPS_SRC to them)",
                    src.display()
                );
                return None;
            }
            if Command::new("elixir").arg("--version").output().is_err() {
                eprintln!("SKIPPED: elixir is not installed (the test command installs it)");
                return None;
            }
            let out = std::env::temp_dir().join(format!("ergo-erps-beams-{}", std::process::id()));
            let built = Command::new("bash")
                .arg(src.join("build.sh"))
                .arg(&out)
                .output()
                .expect("build.sh runs");
            assert!(
                built.status.success(),
                "Erps compiles with its build.sh: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            Some(out)
        })
        .as_deref()
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits for its `port N` line.
fn start_with_port(mut cmd: Command) -> (Running, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(p) = line.trim().strip_prefix("port ") {
                let _ = tx.send(p.parse::<u16>().ok());
                return;
            }
            line.clear();
        }
        let _ = tx.send(None);
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .flatten()
        .expect("the server prints `port N`");
    (Running(child), port)
}

fn elixir(beams: &Path, script: &str) -> Command {
    let mut c = Command::new("elixir");
    c.arg("-pa").arg(beams).arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/erps")
            .join(script),
    );
    c
}

/// A CA, and a certificate for 127.0.0.1 signed by it, for both ends; gives
/// (ca, cert, key).
fn tls_files(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let dir = std::env::temp_dir().join(format!("ergo-erps-tls-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Erlang's path validation wants named issuers and a CA allowed to sign.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "erps test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let (a, c, k) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&a, ca.pem()).unwrap();
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (a, c, k)
}

/// Runs the `erps_client` example against `port` with `extra` arguments;
/// gives its output lines.
fn rust_client(port: u16, extra: &[&Path]) -> Vec<String> {
    let mut cmd = Command::new(example("erps_client"));
    cmd.args(["--port", &port.to_string()]);
    if let [ca, cert, key] = extra {
        cmd.arg("--tls-cacertfile")
            .arg(ca)
            .arg("--tls-certfile")
            .arg(cert)
            .arg("--tls-keyfile")
            .arg(key);
    }
    let out = cmd.output().expect("erps_client runs");
    assert!(
        out.status.success(),
        "erps_client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_rust_client_calls_casts_and_gets_pushes_from_an_elixir_erps_server_over_tcp() {
    let Some(beams) = erps_beams() else { return };
    let mut cmd = elixir(beams, "echo_server.exs");
    cmd.arg("tcp");
    let (_server, port) = start_with_port(cmd);
    assert_eq!(rust_client(port, &[]), ["{echo,ping}", "hello"]);
}

#[test]
fn the_rust_client_calls_casts_and_gets_pushes_from_an_elixir_erps_server_over_tls() {
    let Some(beams) = erps_beams() else { return };
    let (ca, cert, key) = tls_files("rust_client");
    let mut cmd = elixir(beams, "echo_server.exs");
    cmd.arg("tls").arg(&ca).arg(&cert).arg(&key);
    let (_server, port) = start_with_port(cmd);
    // Erps' TLS servers require a client certificate: the same one here.
    assert_eq!(
        rust_client(port, &[&ca, &cert, &key]),
        ["{echo,ping}", "hello"]
    );
}

fn elixir_client(beams: &Path, port: u16, tls: Option<(&Path, &Path, &Path)>) -> Vec<String> {
    let mut cmd = elixir(beams, "push_client.exs");
    cmd.arg(port.to_string());
    match tls {
        None => {
            cmd.arg("tcp");
        }
        Some((ca, cert, key)) => {
            cmd.arg("tls").arg(ca).arg(cert).arg(key);
        }
    }
    let out = cmd.output().expect("elixir runs");
    assert!(
        out.status.success(),
        "the Elixir client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn an_elixir_erps_client_calls_casts_and_gets_pushes_from_the_rust_server_over_tcp() {
    let Some(beams) = erps_beams() else { return };
    let mut cmd = Command::new(example("erps_server"));
    cmd.args(["--port", "0"]);
    let (_server, port) = start_with_port(cmd);
    assert_eq!(elixir_client(beams, port, None), ["{echo,ping}", "hello"]);
}

#[test]
fn an_elixir_erps_client_calls_casts_and_gets_pushes_from_the_rust_server_over_tls() {
    let Some(beams) = erps_beams() else { return };
    let (ca, cert, key) = tls_files("elixir_client");
    let mut cmd = Command::new(example("erps_server"));
    cmd.args(["--port", "0", "--tls-certfile"])
        .arg(&cert)
        .arg("--tls-keyfile")
        .arg(&key);
    let (_server, port) = start_with_port(cmd);
    assert_eq!(
        elixir_client(beams, port, Some((&ca, &cert, &key))),
        ["{echo,ping}", "hello"]
    );
}

#[test]
fn the_rust_client_and_server_speak_erps_to_each_other_over_tcp_and_tls() {
    let mut cmd = Command::new(example("erps_server"));
    cmd.args(["--port", "0"]);
    let (_server, port) = start_with_port(cmd);
    assert_eq!(rust_client(port, &[]), ["{echo,ping}", "hello"]);
    let (ca, cert, key) = tls_files("rust_rust");
    let mut cmd = Command::new(example("erps_server"));
    cmd.args(["--port", "0", "--tls-certfile"])
        .arg(&cert)
        .arg("--tls-keyfile")
        .arg(&key);
    let (_server, port) = start_with_port(cmd);
    assert_eq!(
        rust_client(port, &[&ca, &cert, &key]),
        ["{echo,ping}", "hello"]
    );
}

/// The client prints with `io_lib::write`, Erlang's `~w`: binaries and
/// strings as numbers, where `Term`'s Display would read like `~p`.
#[test]
fn the_clients_w_form_writes_binaries_and_strings_as_erlang_does() {
    use ergo::etf::Term;
    assert_eq!(ergo::io_lib::write(&Term::binary("hi")), "<<104,105>>");
    assert_eq!(ergo::io_lib::write(&Term::charlist("hi")), "[104,105]");
    let echoed = Term::tuple([Term::atom("echo"), Term::binary("x")]);
    assert_eq!(ergo::io_lib::write(&echoed), "{echo,<<120>>}");
}

#[test]
fn the_rust_client_exits_non_zero_saying_why_when_the_server_is_unreachable() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let out = Command::new(example("erps_client"))
        .args(["--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
}
