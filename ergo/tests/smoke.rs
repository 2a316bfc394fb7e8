//! First checks of the process runtime.

use std::time::Duration;

use ergo::etf::Term;
use ergo::{Message, Node, Reason};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn recv(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    timeout(WAIT, rx.recv())
        .await
        .expect("a report in time")
        .expect("the reporting process is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_process_receives_and_links_fire() {
    let node = Node::builder("smoke@localhost").start().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let watcher = node.spawn(move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let child = ctx.spawn_link(|mut c| async move {
            let m = c.receive().await;
            assert_eq!(m.to_term().unwrap(), Term::atom("die"));
            Reason::atom("boom")
        });
        let r = ctx.monitor(ergo::etf::Atom::from("nobody_here"));
        tx.send(Term::Ref(r).to_string()).unwrap();
        tx.send(child.to_string()).unwrap();
        let down = ctx.receive().await;
        tx.send(format!("{down}")).unwrap();
        ctx.send(child, Term::atom("die")).unwrap();
        let exit = ctx.receive().await;
        tx.send(format!("{exit}")).unwrap();
    });
    let r = recv(&mut rx).await;
    let child = recv(&mut rx).await;
    assert_eq!(
        recv(&mut rx).await,
        format!("{{'DOWN',{r},process,{{nobody_here,smoke@localhost}},noproc}}")
    );
    assert_eq!(recv(&mut rx).await, format!("{{'EXIT',{child},boom}}"));
    // Having reported, it returns and is gone.
    timeout(WAIT, async {
        while node.is_alive(watcher) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the watcher ends");
    let (t2, mut r2) = tokio::sync::mpsc::unbounded_channel::<String>();
    node.spawn(move |mut ctx| async move {
        // Monitored from birth: a monitor set after `spawn` may find the
        // child gone already, and get `noproc`.
        let (pid, r) = ctx.spawn_monitor(|_ctx| async move {
            if true {
                panic!("kaboom");
            }
        });
        t2.send(Term::Ref(r).to_string()).unwrap();
        t2.send(pid.to_string()).unwrap();
        let m: Message = ctx.receive().await;
        t2.send(m.to_string()).unwrap();
    });
    let r = recv(&mut r2).await;
    let pid = recv(&mut r2).await;
    assert_eq!(
        recv(&mut r2).await,
        format!("{{'DOWN',{r},process,{pid},{{panic,<<\"kaboom\">>}}}}")
    );
}
