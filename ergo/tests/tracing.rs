//! The runtime reports spawns, exits and call timeouts through `tracing`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::gen_server::ServerContext;
use ergo::{Node, Reason, gen_server};

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
    // It ends only when told, so that `wait_exit` is waiting by then.
    let crasher = node.spawn(|mut ctx| async move {
        let _ = ctx.receive().await;
        Reason::atom("boom")
    });
    let waiting = tokio::spawn(node.wait_exit(crasher));
    tokio::time::sleep(Duration::from_millis(5)).await;
    node.send(crasher, ergo::etf::Term::atom("go")).unwrap();
    assert_eq!(waiting.await.unwrap(), Reason::atom("boom"));
    let slow = SlowRef::start(&node).await.unwrap();
    assert!(
        slow.nap_timeout(200, Duration::from_millis(10))
            .await
            .is_err()
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
