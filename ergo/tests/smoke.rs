//! First checks of the process runtime.

use std::time::Duration;

use ergo::etf::Term;
use ergo::{Message, Node, Reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_process_receives_and_links_fire() {
    let node = Node::builder("smoke@localhost").start().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let tx2 = tx.clone();
    let watcher = node.spawn(move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let child = ctx.spawn_link(|mut c| async move {
            let m = c.receive().await;
            assert_eq!(m.to_term().unwrap(), Term::atom("die"));
            Reason::atom("boom")
        });
        let r = ctx.monitor(ergo::etf::Atom::from("nobody_here"));
        let down = ctx.receive().await;
        tx2.send(format!("{down}")).unwrap();
        ctx.send(child, Term::atom("die")).unwrap();
        let exit = ctx.receive().await;
        tx2.send(format!("{exit}")).unwrap();
        let _ = r;
    });
    let a = rx.recv().await.unwrap();
    assert!(a.starts_with("{'DOWN',#Ref<"), "{a}");
    assert!(
        a.ends_with("process,{nobody_here,smoke@localhost},noproc}"),
        "{a}"
    );
    let b = rx.recv().await.unwrap();
    assert!(b.starts_with("{'EXIT',<smoke@localhost."), "{b}");
    assert!(b.ends_with(",boom}"), "{b}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!node.is_alive(watcher));
    let _ = tx;
    let (t2, mut r2) = tokio::sync::mpsc::unbounded_channel::<String>();
    node.spawn(move |mut ctx| async move {
        // Monitored from birth: a monitor set after `spawn` may find the
        // child gone already, and get `noproc`.
        ctx.spawn_monitor(|_ctx| async move {
            if true {
                panic!("kaboom");
            }
        });
        let m: Message = ctx.receive().await;
        t2.send(m.to_string()).unwrap();
    });
    let d = r2.recv().await.unwrap();
    assert!(d.contains("{panic,<<\"kaboom\">>}"), "{d}");
}
