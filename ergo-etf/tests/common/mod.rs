//! What the tests that check the codec against a real `erl` share: finding
//! `erl`, a scratch directory, and one plain (non-distributed) `erl` run.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `erl` executable, if `PATH` has one.
pub(crate) fn find_erl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("erl"))
        .find(|candidate| candidate.is_file())
}

/// The `erl` executable, or a failure saying how to get one; `checks` says
/// what the caller checks against Erlang.
pub(crate) fn erl_executable(checks: &str) -> PathBuf {
    find_erl().unwrap_or_else(|| {
        panic!(
            "`erl` (Erlang/OTP) is not on PATH, and these tests check {checks} against a \
             real Erlang. Run ./scripts/test.sh, which installs Debian's erlang-nox, or \
             install Erlang/OTP 25 or later yourself."
        )
    })
}

/// A directory of its own, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary one, named after
    /// `tag` and this process.
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ergo-etf-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file's contents as text, empty if it cannot be read.
pub(crate) fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Runs `erl -noinput -eval EVAL -extra ARGS` in `dir` as a plain node
/// (nothing from the environment may make it distributed) and waits, up to
/// `timeout`, for it to exit successfully; a failure names `what` and shows
/// what `erl` printed.
pub(crate) fn run_erl_eval<A: AsRef<OsStr>>(
    checks: &str,
    what: &str,
    dir: &Path,
    eval: &str,
    args: &[A],
    timeout: Duration,
) {
    let stdout_path = dir.join("erl.stdout");
    let stderr_path = dir.join("erl.stderr");
    let stdout = File::create(&stdout_path).expect("create erl.stdout");
    let stderr = File::create(&stderr_path).expect("create erl.stderr");
    let mut child = Command::new(erl_executable(checks))
        .arg("-noinput")
        .arg("-eval")
        .arg(eval)
        .arg("-extra")
        .args(args)
        .current_dir(dir)
        .env_remove("ERL_FLAGS")
        .env_remove("ERL_AFLAGS")
        .env_remove("ERL_ZFLAGS")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start erl: {e}. Run ./scripts/test.sh, which installs Erlang/OTP.")
        });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for erl") {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "erl {what} did not finish within {timeout:?}; stderr:\n{}",
                    read_lossy(&stderr_path)
                );
            }
        }
    };
    assert!(
        status.success(),
        "erl {what} failed ({status}); stderr:\n{}\nstdout:\n{}",
        read_lossy(&stderr_path),
        read_lossy(&stdout_path)
    );
}
