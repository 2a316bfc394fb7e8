//! OTP's own observer pointed at the Rust node, for real: `observer:start()`
//! on an `erl` node under a virtual X server (`xvfb-run`), the Rust node
//! chosen in its Nodes menu, and its System, Load Charts, Applications and
//! Processes tabs opened one after another. No tab may crash, and a
//! screenshot of each is kept in `target/test-artifacts/observer/`.
//!
//! The test command installs what it needs (Debian's `erlang-observer`,
//! `erlang-wx`, `xvfb`, `imagemagick`); where one is missing the test says
//! so and checks nothing else.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{InteropNode, free_port};

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    for tool in ["xvfb-run", "import", "erlc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    let observer = Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:format(\"~p\", [code:which(observer)]), halt().",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !observer.contains("observer.beam") {
        return Some("OTP's observer (Debian's erlang-observer) is not installed".into());
    }
    None
}

#[test]
fn observer_shows_the_rust_nodes_system_load_applications_and_processes_tabs() {
    if let Some(why) = missing() {
        eprintln!(
            "SKIPPED observer_shows_the_rust_nodes_system_load_applications_and_processes_tabs: {why}"
        );
        return;
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = manifest.join("../target/test-artifacts/observer");
    std::fs::create_dir_all(&shots).unwrap();
    for f in std::fs::read_dir(&shots).unwrap().flatten() {
        let _ = std::fs::remove_file(f.path());
    }
    let beam_dir = std::env::temp_dir().join(format!("ergo-observer-{}", std::process::id()));
    std::fs::create_dir_all(&beam_dir).unwrap();
    let compiled = Command::new("erlc")
        .arg("-o")
        .arg(&beam_dir)
        .arg(manifest.join("tests/observer/observer_tabs.erl"))
        .status()
        .unwrap();
    assert!(compiled.success(), "observer_tabs.erl compiles");
    let port = free_port();
    let r = InteropNode::start("r_observer", "cookie", port);
    let out = Command::new("timeout")
        .arg("150")
        .args(["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", "erl"])
        .args([
            "-name",
            "obs_gui@127.0.0.1",
            "-setcookie",
            "cookie",
            "-noshell",
        ])
        .arg("-pa")
        .arg(&beam_dir)
        .args(["-run", "observer_tabs", "main", &r.name])
        .arg(&shots)
        .env("ERL_EPMD_PORT", port.to_string())
        .output()
        .expect("xvfb-run runs");
    let _ = std::fs::remove_dir_all(&beam_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        stdout.contains(&format!("observer node now: '{}'", r.name)),
        "observer did not switch to the Rust node:\n{said}"
    );
    for tab in ["system", "load_charts", "applications", "processes"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("tab {tab}:")) && l.ends_with("alive true")),
            "the {tab} tab did not come up:\n{said}"
        );
        let png = shots.join(format!("{tab}.png"));
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 5_000,
            "no screenshot of the {tab} tab ({size} bytes):\n{said}"
        );
    }
    assert!(
        stdout.contains("observer still running"),
        "a tab crashed observer:\n{said}"
    );
    assert!(
        !stdout.contains("crashed") && !stderr.contains("CRASH REPORT"),
        "a crash was reported:\n{said}"
    );
    let _ = Duration::from_secs(0);
}
