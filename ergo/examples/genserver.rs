//! The simple GenServer of the Ergo seed, in OTP's words.
//!
//! `gs1` is a `#[gen_server]` started with the value 100 (its `init`). A
//! cast `{greet, <<"hey">>}` starts it off: each `handle_cast` adds one and
//! casts `{greet, <<"hi">>}` to the server itself until the value passes
//! 103; from then each step sends the server the plain message
//! `<<"hello">>`, which `handle_info` takes, until the value passes 106 and
//! the server stops with reason `normal`, running `terminate` first. Every
//! callback prints what it got, as a trace of an OTP server would show it.
//!
//! ```text
//! cargo run --example genserver
//! ```

use std::time::Duration;

use ergo::gen_server::{Flow, ServerContext};
use ergo::{Message, Node, Reason, gen_server};

/// The example server's state.
#[derive(Debug)]
struct Example {
    value: i64,
}

#[gen_server]
impl Example {
    fn init(value: i64) -> Self {
        println!("init({value}) -> {{ok, State}}");
        Example { value }
    }

    /// A greeting cast: counts, then casts `hi` or sends `hello` to itself.
    #[cast]
    async fn greet(&mut self, word: String, ctx: &mut ServerContext<Self>) {
        println!("handle_cast({{greet, <<{word:?}>>}}), state {}", self.value);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.value += 1;
        if self.value > 103 {
            let _ = ctx.send(ctx.pid(), String::from("hello"));
        } else {
            ExampleRef::from(ctx.server()).greet("hi".into());
        }
    }

    #[info]
    async fn info(&mut self, msg: Message, ctx: &mut ServerContext<Self>) -> Flow {
        let word: String = msg.into_typed().unwrap_or_default();
        println!("handle_info(<<{word:?}>>), state {}", self.value);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.value += 1;
        if self.value > 106 {
            return Flow::Stop(Reason::Normal);
        }
        let _ = ctx.send(ctx.pid(), String::from("hello"));
        Flow::Continue
    }

    #[terminate]
    fn terminate(&mut self, reason: &Reason) {
        println!("terminate({reason}), state {}", self.value);
    }
}

#[tokio::main]
async fn main() {
    ergo::logger::init();
    let node = Node::builder("node@localhost")
        .cookie("cookies")
        .start()
        .expect("a valid node name");
    let server = ExampleRef::start_named(&node, "gs1", 100)
        .await
        .expect("init succeeds");
    server.greet("hey".into());
    let reason = server.server().wait().await;
    println!("gs1 exited with reason {reason}");
}
