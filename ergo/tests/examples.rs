//! The examples run and do what they say.
//!
//! `etf_echo`: frames in, the same terms re-encoded out; a frame that does
//! not decode gets a zero-length reply and a message on stderr, and the
//! program keeps going until its input ends.
//!
//! `genserver`: the seed's GenServer demo, step by step.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::example;
use ergo::etf::{Term, encode};

/// Runs `etf_echo` with `input` on stdin until it exits.
fn run_echo(input: &[u8]) -> Output {
    let mut child = Command::new(example("etf_echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etf_echo");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut f = (bytes.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(bytes);
    f
}

fn read_frames(mut out: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while out.len() >= 4 {
        let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        frames.push(out[4..4 + len].to_vec());
        out = &out[4 + len..];
    }
    assert!(out.is_empty(), "trailing bytes in output");
    frames
}

#[test]
fn echoes_terms_and_answers_bad_frames_with_an_empty_frame() {
    let good1 = encode(&Term::tuple([
        Term::atom("ok"),
        Term::Int(42),
        Term::binary("hello"),
    ]));
    let good2 = encode(&Term::map([(
        Term::atom("k"),
        Term::list([1.into(), 2.into()]),
    )]));
    let bad = vec![131, 104, 3, 97]; // a tuple that ends too soon
    let not_etf = vec![1, 2, 3];
    let mut input = Vec::new();
    for f in [&good1, &bad, &good2, &not_etf] {
        input.extend(frame(f));
    }

    let out = run_echo(&input);
    assert!(out.status.success(), "exit status {}", out.status);

    let frames = read_frames(&out.stdout);
    assert_eq!(frames, vec![good1, Vec::new(), good2, Vec::new()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("frame 1: length 3 is more than the 1 remaining bytes can hold"),
        "{stderr}"
    );
    assert!(stderr.contains("frame 3: not an external term"), "{stderr}");
}

#[test]
fn stops_cleanly_on_a_truncated_frame() {
    let mut input = frame(&encode(&Term::atom("first")));
    input.extend_from_slice(&[0, 0, 0, 9, 131]); // says 9 bytes, gives 1
    let out = run_echo(&input);
    assert!(out.status.success());
    let frames = read_frames(&out.stdout);
    assert_eq!(frames, vec![encode(&Term::atom("first")), Vec::new()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("input ends after 1 of 9 bytes"));
}

#[test]
fn genserver_example_prints_the_seed_demo_steps() {
    let out = Command::new(example("genserver"))
        .output()
        .expect("run genserver");
    assert!(out.status.success(), "exit status {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = [
        "init(100) -> {ok, State}",
        r#"handle_cast({greet, <<"hey">>}), state 100"#,
        r#"handle_cast({greet, <<"hi">>}), state 101"#,
        r#"handle_cast({greet, <<"hi">>}), state 102"#,
        r#"handle_cast({greet, <<"hi">>}), state 103"#,
        r#"handle_info(<<"hello">>), state 104"#,
        r#"handle_info(<<"hello">>), state 105"#,
        r#"handle_info(<<"hello">>), state 106"#,
        "terminate(normal), state 107",
        "gs1 exited with reason normal",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
}

#[test]
fn supervisor_example_shows_the_one_for_all_restarts() {
    let out = Command::new(example("supervisor"))
        .output()
        .expect("run supervisor");
    assert!(out.status.success(), "exit status {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    // Pids differ from run to run.
    let masked: Vec<String> = text
        .lines()
        .map(|l| match l.find('<') {
            Some(i) => format!("{}<pid>", &l[..i]),
            None => l.to_string(),
        })
        .collect();
    let expected = [
        "Starting demo_sup (one_for_all, at most 2 restarts in 5 s):",
        "  children: demo_server01 (temporary), demo_server02 (permanent), demo_server03 (transient)",
        "  demo_server01: started as <pid>",
        "  demo_server02: started as <pid>",
        "  demo_server03: started as <pid>",
        "Children:",
        "    demo_server01 -> <pid>",
        "    demo_server02 -> <pid>",
        "    demo_server03 -> <pid>",
        "Killing demo_server02 (<pid>",
        "  one_for_all: the others stop, the temporary demo_server01 is not restarted:",
        "  demo_server03: terminated (shutdown)",
        "  demo_server01: terminated (shutdown)",
        "  demo_server02: started as <pid>",
        "  demo_server03: started as <pid>",
        "Children after the restart:",
        "    demo_server02 -> <pid>",
        "    demo_server03 -> <pid>",
        "demo_server03 stops normally (transient: not restarted):",
        "  demo_server03: terminated (normal)",
        "    demo_server02 -> <pid>",
        "    demo_server03 -> not running",
        "Stopping the node:",
        "  demo_server02: terminated (shutdown)",
    ];
    assert_eq!(masked, expected, "{text}");
}

#[test]
fn application_example_starts_dependencies_reads_env_and_restarts_one_for_one() {
    let out = Command::new(example("application"))
        .output()
        .expect("run application");
    assert!(out.status.success(), "exit status {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    // Pids differ from run to run: mask each `<...>` that holds a node name.
    let masked: Vec<String> = text
        .lines()
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find("<demo@") {
                out.push_str(&rest[..i]);
                out.push_str("<pid>");
                rest = &rest[i..];
                rest = &rest[rest.find('>').map_or(rest.len(), |j| j + 1)..];
            }
            out.push_str(rest);
            out
        })
        .collect();
    let expected = [
        "Loaded applications:",
        "    demo_app 1.0.0",
        "    demo_base 1.0.0",
        "Starting demo_app (temporary) and what it depends on:",
        "  demo_server01: started as <pid> in demo_app (listen_port = 8080)",
        "  demo_server02: started as <pid> in demo_app (listen_port = 8080)",
        "  started demo_base, demo_app",
        "Running applications:",
        "    demo_app 1.0.0 \"the demo application\"",
        "    demo_base 1.0.0 \"what demo_app needs\"",
        "demo_app's greeting: <<\"hello\">>",
        "Killing demo_server01 (<pid>); one_for_one restarts it alone:",
        "  demo_server01: started as <pid> in demo_app (listen_port = 8080)",
        "    demo_server01 -> <pid>",
        "    demo_server02 -> <pid>",
        "Stopping demo_app:",
        "  demo_server02: terminated (shutdown)",
        "  demo_server01: terminated (shutdown)",
        "    demo_server01 -> not running",
        "    demo_server02 -> not running",
        "Running applications:",
        "    demo_base 1.0.0 \"what demo_app needs\"",
    ];
    assert_eq!(masked, expected, "{text}");
}

/// A program that sends one frame and waits for its answer before the next
/// (an Erlang port with `{packet, 4}`) gets each answer while its input is
/// still open.
#[test]
fn etf_echo_answers_each_frame_while_its_input_stays_open() {
    use std::io::Read;
    let mut child = Command::new(example("etf_echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etf_echo");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        loop {
            let mut len = [0u8; 4];
            if stdout.read_exact(&mut len).is_err() {
                break;
            }
            let mut body = vec![0; u32::from_be_bytes(len) as usize];
            if stdout.read_exact(&mut body).is_err() {
                break;
            }
            if tx.send(body).is_err() {
                break;
            }
        }
    });
    for n in 0..3i64 {
        let term = encode(&Term::tuple([Term::atom("n"), Term::Int(n)]));
        stdin.write_all(&frame(&term)).unwrap();
        stdin.flush().unwrap();
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("an answer while the input is still open");
        assert_eq!(got, term);
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn peer_example_controls_an_erl_peer_and_an_ergo_peer_and_stops_both() {
    let out = Command::new(example("peer"))
        .env("ERL_EPMD_PORT", common::free_port().to_string())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run peer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit status {}: {text}", out.status);
    for line in [
        "erl peer: booting",
        "erl peer: running",
        "erl_peer: erlang:node() = 'erl_peer@127.0.0.1'",
        "erl_peer: lists:sum([1,2,3]) = 6",
        "[erl_peer] the erl peer's console: hello",
        "ergo peer: booting",
        "[ergo_peer] the ergo peer is up",
        "ergo peer: running",
        "ergo_peer: erlang:node() = 'ergo_peer@127.0.0.1'",
        "ergo_peer: demo:greet(erlang) = <<\"hello, erlang, from Rust\">>",
        "erl_peer peer: stopped by init:stop()",
        "ergo_peer peer: stopped by halt",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn gen_stage_example_squares_numbers_and_splits_them_by_parity() {
    let out = Command::new(example("gen_stage"))
        .output()
        .expect("gen_stage runs");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("done: 20 squares printed"), "{text}");
    // Each consumer gets its parity's squares in order, none skipped, at
    // most max_demand (5) at a time.
    let mut seen = [Vec::new(), Vec::new()];
    for line in text.lines() {
        for (who, parity) in [("even: ", 0usize), ("odd: ", 1)] {
            if let Some(list) = line.strip_prefix(who) {
                let nums: Vec<i64> = list
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(", ")
                    .map(|n| n.parse().expect("a number"))
                    .collect();
                assert!(nums.len() <= 5, "at most max_demand at once: {line}");
                seen[parity].extend(nums);
            }
        }
    }
    assert!(seen[0].len() + seen[1].len() >= 20, "{text}");
    for (parity, got) in seen.iter().enumerate() {
        let want: Vec<i64> = (1..=got.len() as i64)
            .map(|k| 2 * k - 1 + (1 - parity as i64))
            .map(|n| n * n)
            .collect();
        assert_eq!(got, &want, "parity {parity}");
    }
}

#[test]
fn daemon_example_prints_its_port_and_echoes_each_line() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(example("daemon"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon runs");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("expected `port N`, got {line:?}"));
    let mut clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let text = format!("line one of {i}\nline two of {i}\n");
        c.write_all(text.as_bytes()).unwrap();
        let mut back = vec![0u8; text.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(String::from_utf8(back).unwrap(), text);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
