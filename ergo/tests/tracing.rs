//! The runtime reports spawns, exits and call timeouts through `tracing`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::gen_server::ServerContext;
use ergo::{CallError, Node, Reason, gen_server};

/// `f`'s output, failing the test if it takes longer than five seconds.
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("done in time")
}

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Slow;

#[gen_server]
impl Slow {
    fn init() -> Self {
        Slow
    }

    #[call]
    async fn nap(&self, ms: u64, _ctx: &mut ServerContext<Self>) -> bool {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_exit_and_call_timeout_are_traced() {
    let out = Captured::default();
    let sink = out.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let node = Node::builder("traced@localhost").start().unwrap();
    // It ends only when told, so that `wait_exit` (registered when it is
    // called) is waiting by then.
    let crasher = node.spawn(|mut ctx| async move {
        let _ = ctx.receive().await;
        Reason::atom("boom")
    });
    let waiting = node.wait_exit(crasher);
    node.send(crasher, ergo::etf::Term::atom("go")).unwrap();
    assert_eq!(within(waiting).await, Reason::atom("boom"));
    let slow = within(SlowRef::start(&node)).await.unwrap();
    assert_eq!(
        within(slow.nap_timeout(200, Duration::from_millis(10))).await,
        Err(CallError::Timeout(Duration::from_millis(10)))
    );

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let pid = crasher.to_string();
    assert!(
        text.contains(&format!("pid={pid}")) && text.contains("spawn"),
        "{text}"
    );
    assert!(
        text.contains("process exited") && text.contains("reason=boom"),
        "{text}"
    );
    assert!(text.contains("call timed out"), "{text}");
}
