//! Procedural macros for `ergo`.
//!
//! Each macro is built as serde_derive is, in a module of its own
//! (`term` for `#[derive(Term)]`, `gen_server`, `gen_stage`, `connection`,
//! `supervisor`, `application`) with the same four parts:
//!
//! - `model`: plain structs describing what the user wrote;
//! - `parse`: the input read into the model;
//! - `check`: the rules the model must follow;
//! - `codegen`: the generated code, from a model that passed.
//!
//! Parsing and checking report every error through one `ctxt::Ctxt`, each
//! spanned on the token the user wrote, and the user sees them all at once;
//! no code is generated from a model with errors. `#[gen_server]`,
//! `#[gen_stage]` and `#[connection]` share their impl-block model,
//! parsing, common rules and request types in `behaviour`. `crate = "path"`, read by
//! `crate_path`, tells any of the macros where the runtime is when it is not
//! at `::ergo`.

use proc_macro::TokenStream;

mod application;
mod behaviour;
mod connection;
mod crate_path;
mod ctxt;
mod gen_server;
mod gen_stage;
mod supervisor;
mod term;

/// Derives `ToTerm`, `FromTerm`, `Encode` and `Decode` for a struct or enum.
///
/// The generated `Encode` and `Decode` go straight between the value and
/// bytes, without building a `Term`; `ToTerm` and `FromTerm` convert to and
/// from the dynamic `Term`. All four agree on the shape, which is:
///
/// | Rust | Erlang |
/// |---|---|
/// | `struct User { name, age }` | `#{name => .., age => ..}` (atom keys) |
/// | `#[term(record)] struct Point { x, y }` | `{point, X, Y}` |
/// | `#[term(tuple)] struct Pair { a, b }` | `{A, B}` |
/// | `#[term(proplist)] struct Opts { port }` | `[{port, P}]` |
/// | `#[term(elixir_struct = "Elixir.MyApp.User")]` | `%MyApp.User{}`: a map with `__struct__` |
/// | `#[term(transparent)] struct Id(u64)` | the field itself |
/// | `struct Wrapper(A, B)` | `{A, B}` |
/// | `struct Marker;` | `marker` |
/// | enum unit variant `Ping` | `ping` |
/// | enum tuple variant `Add(i64)` | `{add, N}` |
/// | enum struct variant `Rename { from, to }` | `{rename, #{from => .., to => ..}}`, or `{rename, From, To}` with `#[term(record)]` |
///
/// Type and variant names become snake_case atoms; field names are used as
/// written. Attributes:
///
/// - on the type: `rename = "atom"`, `rename_all = "..."` (`snake_case`,
///   `camelCase`, `PascalCase`, `SCREAMING_SNAKE_CASE`, `kebab-case`,
///   `lowercase`, `UPPERCASE`, `verbatim`; applies to fields of a struct and
///   to variants of an enum), one of the representations above, and
///   `crate = "path"` when the term crate is not at `::ergo::etf`;
/// - on a variant: `rename`, `rename_all` (for its fields), `record`;
/// - on a field: `rename`, `default` or `default = "path::to::fn"` (used when
///   the key is missing; keyed shapes only), `skip` (never written; read as
///   its default), `with = "module"` (the module has `to_term`, `from_term`,
///   `encode` and `decode` functions for the field's type).
///
/// Decoding a map accepts its keys in any order, as atoms or as UTF-8
/// binaries (as Elixir maps often have), ignores keys it does not know, and
/// refuses a key given twice. A term of the wrong shape gives an error that
/// names the shape expected and the term found, such as
/// `expected {add, integer}, found {add, <<"x">>}`.
///
/// Generic types work: every type parameter must itself be convertible.
///
/// ```text
/// use ergo::Term;
///
/// #[derive(Term)]
/// enum Request {
///     Get,
///     Add(i64),
///     Rename { from: String, to: String },
/// }
/// ```
#[proc_macro_derive(Term, attributes(term))]
pub fn derive_term(input: TokenStream) -> TokenStream {
    term::expand(input.into()).into()
}

/// Makes a GenServer of an `impl` block.
///
/// `init` builds the state from the start arguments (its parameters);
/// methods marked `#[call]` and `#[cast]` serve requests; `#[info]`,
/// `#[handle_continue]` and `#[terminate]` are the other callbacks, and
/// `#[format_status]` (`fn(&self) -> T`, `T` a term) opts in to showing the
/// state to `sys:get_state/1`, observer and the dashboard. The macro
/// writes the request types (`<Type>Call`, `<Type>Cast`, with their Erlang
/// forms: `fn add(&mut self, n: i64)` is `{add, N}`), the `GenServer` impl,
/// and a typed client `<Type>Ref` with one method per call and cast.
///
/// A call returns its reply as a plain value, or `Reply<T>` to reply later
/// or stop. A cast returns nothing, or `Flow`. Any handler may take the
/// `&mut ServerContext<Self>` as its last parameter, and may be `async`.
/// Arguments travel in messages, so they are owned values (`String`, not
/// `&str`), each convertible to and from a term (`#[derive(Term)]`).
///
/// The client `<Type>Ref` has:
/// - `start(&node, args..)`, `start_named(&node, "name", args..)` and
///   `start_link(&ctx, args..)` (linked to the calling process), each
///   waiting for `init`, as `gen_server:start/3,4` and `start_link` do;
/// - `at(&node, dest)`: a client of the server at a pid, a name registered
///   on this node, or `(name, node)` on another node (an Erlang or Elixir
///   server speaking the same terms included);
/// - per `#[call] fn f(..) -> T`: `f(..)` and `f_timeout(.., timeout)`, each
///   giving `Result<T, CallError>` (5 seconds by default, as OTP);
/// - per `#[cast]`: a method that sends and returns at once;
/// - `pid()`, `server()` (the untyped `ServerRef`) and `From<ServerRef>`.
///
/// The generated code names the runtime as `::ergo`; a crate that reaches
/// it under another path says so with `#[gen_server(crate = "path")]`
/// (`crate = "my_reexport::ergo"`).
///
/// The `ergo` crate's landing page walks through an example, and
/// `cargo run --example genserver` runs one.
#[proc_macro_attribute]
pub fn gen_server(attr: TokenStream, item: TokenStream) -> TokenStream {
    gen_server::expand(attr.into(), item.into()).into()
}

/// Makes a GenStage of an `impl` block.
///
/// `#[gen_stage(out = T)]` on `impl MyStage { .. }`: `out` is the type of
/// the events the stage emits (a consumer, which emits none, leaves it
/// out), and the stage takes the events its `#[events]` handler does. The
/// methods, each optional but the start function:
///
/// - `#[init]` (or a method named `init`): builds the state from the start
///   arguments (its parameters) and says which kind of stage it is,
///   returning `Init<Self>` or `Result<Init<Self>, Reason>`:
///   `Init::producer(state)`, `Init::producer_consumer(state)` or
///   `Init::consumer(state)`, with the options `Init` has (dispatcher,
///   buffer, `subscribe_to`);
/// - `#[demand] fn(&mut self, demand: usize)`: consumers asked for
///   `demand` more events (`handle_demand`); only a stage with `out`;
/// - `#[events] fn(&mut self, events: Vec<E>, from: Subscription)`: events
///   from a producer (`handle_events`); `E` is the stage's `In`, and
///   `from` may be left out;
/// - `#[subscribe]` (any of `role: Role`, `opts: &[(Atom, Term)]`,
///   `from: Subscription`; returns nothing, `Demand` or
///   `Result<Demand, Reason>`) and `#[cancel]` (any of `cancel: Cancel`,
///   `from: Subscription`): a subscription begins or ends;
/// - `#[call]` and `#[cast]`: requests, exactly as `#[gen_server]`'s (a
///   call returns its reply, or `Reply<T>`; arguments are owned terms);
/// - `#[info]` (one `Message`), `#[terminate]` (`&Reason`),
///   `#[format_status]` (`fn(&self) -> T`, `T` a term) and
///   `#[format_discarded]` (`fn(&mut self, excess: usize) -> bool`).
///
/// `#[demand]` and `#[events]` return nothing, a `Flow`, or a `Vec<Out>`:
/// the events to emit. Any handler may take the `&mut StageContext<Self>`
/// as its last parameter (to `emit`, `ask`, `cancel`), and may be `async`;
/// the stage callbacks with several arguments tell them apart by type, so
/// a handler takes the ones it needs.
///
/// The macro writes the request types (`<Type>Call`, `<Type>Cast`,
/// `<Type>Reply`, with the same Erlang forms as `#[gen_server]`'s), the
/// `GenStage` impl, and a trait `<Type>Client`, implemented for
/// `StageRef<Type>`, with one method per call (`f(..)` and
/// `f_timeout(.., timeout)`, each giving `Result<T, CallError>`) and per
/// cast. Start the stage with `node.start_stage::<Type>(args)` (the
/// arguments in a tuple when `init` takes several), and bring
/// `<Type>Client` into scope to call it. A consumer subscribes to a
/// producer with `consumer.subscribe(&producer, opts)`, which compiles only
/// if the producer's `out` is the consumer's event type.
///
/// The generated code names the runtime as `::ergo`; a crate that reaches
/// it under another path says so with `#[gen_stage(crate = "path")]`.
///
/// ```text
/// use ergo::gen_stage::{Init, StageContext};
/// use ergo::gen_stage;
///
/// struct Counter(i64);
///
/// #[gen_stage(out = i64)]
/// impl Counter {
///     #[init]
///     fn init(start: i64) -> Init<Self> {
///         Init::producer(Counter(start))
///     }
///
///     #[demand]
///     fn demand(&mut self, demand: usize) -> Vec<i64> {
///         let events = (self.0..self.0 + demand as i64).collect();
///         self.0 += demand as i64;
///         events
///     }
/// }
///
/// struct Printer;
///
/// #[gen_stage]
/// impl Printer {
///     #[init]
///     fn init() -> Init<Self> {
///         Init::consumer(Printer)
///     }
///
///     #[events]
///     fn events(&mut self, events: Vec<i64>) {
///         println!("{events:?}");
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn gen_stage(attr: TokenStream, item: TokenStream) -> TokenStream {
    gen_stage::expand(attr.into(), item.into()).into()
}

/// Makes a daemon's connection handler (`ergo::net::Handler`) of an `impl`
/// block.
///
/// Each connection a daemon accepts is a process of its own running the
/// handler: it reads the peer's bytes, writes back with
/// `ctx.write(bytes).await`, and serves other processes' calls and casts as
/// a GenServer does. The methods, each optional but the first two:
///
/// - `#[init]` (or a method named `init`): builds the state once the
///   connection is up. Its parameters are told apart by type: a
///   `SocketAddr` is the peer's address, the `&mut ConnContext<Self>`
///   (last) the context, and the others the start arguments, which become
///   the handler's `Args` (`()`, the one argument, or a tuple of them,
///   given to `DaemonSpec::new` and cloned for each connection). It
///   returns `Self` or `Result<Self, Reason>` (an `Err` closes the
///   connection);
/// - `#[data] fn(&mut self, data: Bytes)`: bytes from the peer, in order;
///   the socket is read again once it returns. It returns nothing (read
///   on) or a `Flow`;
/// - `#[closed]`: the peer closed its side. It takes nothing but the
///   context, and returns nothing (the connection then ends, `normal`, as
///   without the handler) or a `Flow` (`Flow::Continue` keeps the process
///   up);
/// - `#[call]` and `#[cast]`: requests from other processes, exactly as
///   `#[gen_server]`'s (a call returns its reply, or `Reply<T>`; arguments
///   are owned terms);
/// - `#[info]` (one `Message`) and `#[terminate]` (`&Reason`).
///
/// Any handler may take the `&mut ConnContext<Self>` as its last
/// parameter, and may be `async`.
///
/// The macro writes the request types (`<Type>Call`, `<Type>Cast`,
/// `<Type>Reply`, with the same Erlang forms as `#[gen_server]`'s), the
/// `Handler` impl, and a trait `<Type>Client`, implemented for
/// `ServerRef<Connection<Type>>` (a connection's process is the GenServer
/// `Connection<Type>`), with one method per call (`f(..)` and
/// `f_timeout(.., timeout)`, each giving `Result<T, CallError>`) and per
/// cast. A process holding a connection's pid calls it with
/// `ServerRef::<Connection<Type>>::new(&node, pid).f(..)`, `<Type>Client`
/// in scope; a handler reaches its own with `ctx.server()`. Serve the
/// handler with `ergo::net::start(&ctx, DaemonSpec::<Type>::new(args))` or
/// `ergo::net::child_spec`.
///
/// The generated code names the runtime as `::ergo`; a crate that reaches
/// it under another path says so with `#[connection(crate = "path")]`.
///
/// ```text
/// use ergo::gen_server::Flow;
/// use ergo::net::ConnContext;
/// use ergo::{Bytes, connection};
///
/// struct Echo {
///     lines: u64,
/// }
///
/// #[connection]
/// impl Echo {
///     fn init() -> Self {
///         Echo { lines: 0 }
///     }
///
///     #[data]
///     async fn data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
///         self.lines += data.iter().filter(|b| **b == b'\n').count() as u64;
///         match ctx.write(&data).await {
///             Ok(()) => Flow::Continue,
///             Err(_) => Flow::Stop(ergo::Reason::Normal),
///         }
///     }
///
///     #[call]
///     fn lines(&self) -> u64 {
///         self.lines
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn connection(attr: TokenStream, item: TokenStream) -> TokenStream {
    connection::expand(attr.into(), item.into()).into()
}

/// Declares a supervisor as a struct of its children.
///
/// `#[supervisor(strategy = "one_for_all", intensity = 2, period = 5)]` on a
/// struct whose fields are the children, started in field order: each is a
/// `Child<MyServer>` (built with `Child::new(args)`, which takes exactly
/// `MyServer`'s start arguments) or another `#[supervisor]` struct. A field
/// may say `#[child(restart = "transient", shutdown = 2000, register)]`
/// (`shutdown` is `"brutal_kill"`, `"infinity"` or milliseconds; `register`
/// registers the child under the field's name). The struct gets `spec()`,
/// `start(&node)` and `start_link(&ctx)`. `crate = "path"` names the
/// runtime when it is not at `::ergo`.
#[proc_macro_attribute]
pub fn supervisor(attr: TokenStream, item: TokenStream) -> TokenStream {
    supervisor::expand(attr.into(), item.into()).into()
}

/// Declares an application.
///
/// `#[application(name = "my_app", description = "..", version = "1.0.0",
/// applications = ["base"], env(port = 8080, host = "example.org"))]` on a
/// type that implements `ergo::Application` (its top supervisor) gives it
/// `spec()`, the `AppSpec` to load on a node. `crate = "path"` names the
/// runtime when it is not at `::ergo`.
#[proc_macro_attribute]
pub fn application(attr: TokenStream, item: TokenStream) -> TokenStream {
    application::expand(attr.into(), item.into()).into()
}
