//! `#[gen_server]`: typed servers as short as an Elixir GenServer.

use std::time::Duration;

use ergo::etf::Term;
use ergo::gen_server::{Reply, ServerContext};
use ergo::{CallError, Message, Node, Reason, gen_server};
use tokio::sync::mpsc;

/// `f`'s output, failing the test if it takes longer than five seconds.
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("done in time")
}

/// The `{badcall, Description}` answers to `{add, <<"five">>}` and to
/// `nonsense`.
const BADCALL_ADD_FIVE: &str =
    r#"{error,{badcall,<<"expected {add, integer}, found {add,<<\"five\">>}">>}}"#;
const BADCALL_NONSENSE: &str = r#"{error,{badcall,<<"expected {add, integer} | get | {div, integer} | {shutdown, binary} | whoami, found nonsense">>}}"#;

/// A counter, as the issue describes it.
#[derive(Debug)]
pub struct Counter {
    n: i64,
    log: Option<mpsc::UnboundedSender<String>>,
}

#[gen_server]
impl Counter {
    async fn init(start: i64) -> Result<Self, Reason> {
        if start < 0 {
            return Err(Reason::atom("negative"));
        }
        Ok(Counter {
            n: start,
            log: None,
        })
    }

    /// Adds `n`, replying with the new value.
    #[call]
    async fn add(&mut self, n: i64) -> i64 {
        self.n += n;
        self.n
    }

    /// The current value.
    #[call]
    fn get(&self) -> i64 {
        self.n
    }

    /// Divides, failing on zero: a `Result` reply is `{ok, V}` / `{error, E}`.
    #[call]
    fn div(&mut self, by: i64) -> Result<i64, String> {
        if by == 0 {
            return Err("division by zero".into());
        }
        self.n /= by;
        Ok(self.n)
    }

    /// Stops the server when asked, replying first.
    #[call]
    fn shutdown(&mut self, why: String) -> Reply<bool> {
        Reply::Stop(Reason::atom(&why), Some(true))
    }

    /// Uses the server context: replies with the server's own pid text.
    #[call]
    fn whoami(&self, ctx: &mut ServerContext<Self>) -> String {
        ctx.pid().to_string()
    }

    /// Resets to zero.
    #[cast]
    fn reset(&mut self) {
        self.n = 0;
    }

    /// Sets where info messages are reported.
    #[cast]
    fn watch(&mut self, name: String) {
        let _ = name;
    }

    #[info]
    fn info(&mut self, msg: Message) {
        if let Some(log) = &self.log {
            let _ = log.send(msg.to_string());
        }
    }

    #[terminate]
    fn on_stop(&mut self, reason: &Reason) {
        if let Some(log) = &self.log {
            let _ = log.send(format!("terminate {reason}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_calls_and_casts() {
    let node = Node::builder("macro_typed@localhost").start().unwrap();
    let counter = CounterRef::start(&node, 5).await.unwrap();
    assert_eq!(counter.add(5).await.unwrap(), 10);
    assert_eq!(counter.get().await.unwrap(), 10);
    assert_eq!(counter.div(2).await.unwrap(), Ok(5));
    assert_eq!(
        counter.div(0).await.unwrap(),
        Err("division by zero".to_string())
    );
    counter.reset();
    assert_eq!(counter.get().await.unwrap(), 0);
    assert_eq!(
        counter.whoami().await.unwrap(),
        counter.pid().unwrap().to_string()
    );
    // `init` refusing: the start fails with init's reason.
    assert_eq!(
        within(CounterRef::start(&node, -1)).await.err(),
        Some(Reason::atom("negative"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_then_stop_ends_the_server() {
    let node = Node::builder("macro_stop@localhost").start().unwrap();
    let counter = CounterRef::start(&node, 1).await.unwrap();
    let ended = node.wait_exit(counter.pid().unwrap());
    assert!(within(counter.shutdown("done".into())).await.unwrap());
    assert_eq!(within(ended).await, Reason::atom("done"));
    assert!(!node.is_alive(counter.pid().unwrap()));
    // It is gone: a call to it is `noproc`.
    let gone = CounterRef::from(ergo::ServerRef::new(&node, counter.pid().unwrap()));
    assert_eq!(within(gone.get()).await, Err(CallError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erlang_form_requests_reach_the_typed_handlers() {
    let node = Node::builder("macro_terms@localhost").start().unwrap();
    let counter = CounterRef::start_named(&node, "counter", 10).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    node.spawn(move |mut ctx| async move {
        let tag = Term::Ref(ctx.make_ref());
        let from = Term::tuple([Term::Pid(ctx.pid()), tag]);
        // gen_server:call(counter, {add, 5}) as Erlang would send it.
        for req in [
            Term::tuple([Term::atom("add"), Term::Int(5)]),
            Term::atom("get"),
            Term::tuple([Term::atom("div"), Term::Int(0)]),
            Term::tuple([Term::atom("add"), Term::binary("five")]),
            Term::atom("nonsense"),
        ] {
            ctx.send(
                "counter",
                Term::tuple([Term::atom("$gen_call"), from.clone(), req]),
            )
            .unwrap();
            let reply = ctx.receive().await;
            tx.send(reply.to_term().unwrap().as_tuple().unwrap()[1].to_string())
                .unwrap();
        }
        // gen_server:cast(counter, reset), then gen_server:call(counter,
        // get) from the same process: the call comes after the cast.
        ctx.send(
            "counter",
            Term::tuple([Term::atom("$gen_cast"), Term::atom("reset")]),
        )
        .unwrap();
        ctx.send(
            "counter",
            Term::tuple([Term::atom("$gen_call"), from.clone(), Term::atom("get")]),
        )
        .unwrap();
        let reply = ctx.receive().await;
        tx.send(reply.to_term().unwrap().as_tuple().unwrap()[1].to_string())
            .unwrap();
    });
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(within(rx.recv()).await.expect("a reply"));
    }
    assert_eq!(replies[0], "15");
    assert_eq!(replies[1], "15");
    assert_eq!(replies[2], r#"{error,<<"division by zero">>}"#);
    assert_eq!(replies[3], BADCALL_ADD_FIVE);
    assert_eq!(replies[4], BADCALL_NONSENSE);
    // The server lived through the bad requests and got the cast.
    assert_eq!(replies[5], "0");
    assert_eq!(within(counter.get()).await.unwrap(), 0);
}

/// A generic server: a stack of any term type.
#[derive(Debug)]
pub struct Stack<T> {
    items: Vec<T>,
}

#[gen_server]
impl<T> Stack<T>
where
    T: Clone + Send + 'static,
{
    fn init(items: Vec<T>) -> Self {
        Stack { items }
    }

    /// Pushes an item, replying with the new depth.
    #[call]
    fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    /// Pops the top item.
    #[call]
    fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    /// Drops everything.
    #[cast]
    fn clear(&mut self) {
        self.items.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_servers_work_with_any_term_type() {
    let node = Node::builder("macro_generic@localhost").start().unwrap();
    let words = StackRef::<String>::start(&node, vec!["a".into()])
        .await
        .unwrap();
    assert_eq!(words.push("b".into()).await.unwrap(), 2);
    assert_eq!(words.pop().await.unwrap(), Some("b".to_string()));
    let numbers = StackRef::<i64>::start_named(&node, "numbers", vec![])
        .await
        .unwrap();
    assert_eq!(numbers.push(7).await.unwrap(), 1);
    numbers.clear();
    assert_eq!(numbers.pop().await.unwrap(), None);
    // The Erlang form works for a generic server too: {push, 9}.
    let push = Term::tuple([Term::atom("push"), Term::Int(9)]);
    assert_eq!(erlang_call(&node, "numbers", push).await, "1");
}

/// `init` parameters may be named like the generated start functions' own
/// (`node`, `name`, `ctx`).
#[derive(Debug)]
pub struct Named {
    label: String,
}

#[gen_server]
impl Named {
    fn init(node: String, name: String, ctx: u8) -> Self {
        Named {
            label: format!("{node}/{name}/{ctx}"),
        }
    }

    /// The label built from the start arguments.
    #[call]
    fn label(&self) -> String {
        self.label.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_parameters_may_share_names_with_the_start_functions_parameters() {
    let node = Node::builder("macro_names@localhost").start().unwrap();
    let n = NamedRef::start_named(&node, "named", "a".into(), "b".into(), 3)
        .await
        .unwrap();
    assert_eq!(n.label().await.unwrap(), "a/b/3");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_a_handle_to_a_server_that_has_ended_is_noproc() {
    let node = Node::builder("macro_noproc@localhost").start().unwrap();
    let counter = CounterRef::start(&node, 1).await.unwrap();
    let ended = node.wait_exit(counter.pid().unwrap());
    assert!(within(counter.shutdown("done".into())).await.unwrap());
    assert_eq!(within(ended).await, Reason::atom("done"));
    // gen_server:call to a server that has already ended exits with
    // `noproc` (its monitor fires `noproc` at once), whatever reason the
    // server ended with.
    assert_eq!(within(counter.get()).await, Err(CallError::NoProc));
}

/// The runtime seen under another name, as a crate that re-exports ergo
/// sees it. `ergo` stays reachable here, so what proves that the generated
/// code goes through the re-export is `unused_imports`: were it not used, it
/// would be an unused import, which this module denies.
#[deny(unused_imports)]
mod reexport {
    pub(crate) use ergo as my_ergo;
}

/// A server whose generated code names the runtime through `reexport`.
#[derive(Debug)]
pub struct Tally {
    total: i64,
}

#[gen_server(crate = "reexport::my_ergo")]
impl Tally {
    fn init(start: i64) -> Self {
        Tally { total: start }
    }

    /// Adds `n`, replying with the new total.
    #[call]
    fn add(&mut self, n: i64) -> i64 {
        self.total += n;
        self.total
    }

    /// Sets the total.
    #[cast]
    fn set(&mut self, total: i64) {
        self.total = total;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_path_names_the_runtime_through_a_reexport() {
    let node = Node::builder("macro_crate_path@localhost").start().unwrap();
    let tally = TallyRef::start_named(&node, "tally", 1).await.unwrap();
    assert_eq!(tally.add(2).await.unwrap(), 3);
    tally.set(10);
    assert_eq!(tally.add(0).await.unwrap(), 10);
    // The request enums derive `Term` through the re-export's `etf` too:
    // {add, 5} as Erlang would send it.
    let add = Term::tuple([Term::atom("add"), Term::Int(5)]);
    assert_eq!(erlang_call(&node, "tally", add).await, "15");
}

/// Calls the server registered as `name` as an Erlang process would, with
/// `{'$gen_call', {Pid, Ref}, Request}` sent by hand, and gives the reply
/// as Erlang prints it.
async fn erlang_call(node: &Node, name: &'static str, request: Term) -> String {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    node.spawn(move |mut ctx| async move {
        let from = Term::tuple([Term::Pid(ctx.pid()), Term::Ref(ctx.make_ref())]);
        let call = Term::tuple([Term::atom("$gen_call"), from, request]);
        ctx.send(name, call).unwrap();
        let reply = ctx.receive().await;
        tx.send(reply.to_term().unwrap().as_tuple().unwrap()[1].to_string())
            .unwrap();
    });
    within(rx.recv()).await.expect("a reply")
}
