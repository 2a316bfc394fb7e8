//! Procedural macros for `ergo`.
//!
//! Each macro is built as serde_derive is, in a module of its own
//! (`term` for `#[derive(Term)]`, `gen_server`, `supervisor`, `application`)
//! with the same four parts:
//!
//! - `model`: plain structs describing what the user wrote;
//! - `parse`: the input read into the model;
//! - `check`: the rules the model must follow;
//! - `codegen`: the generated code, from a model that passed.
//!
//! Parsing and checking report every error through one `ctxt::Ctxt`, each
//! spanned on the token the user wrote, and the user sees them all at once;
//! no code is generated from a model with errors. `crate = "path"`, read by
//! `crate_path`, tells any of the macros where the runtime is when it is not
//! at `::ergo`.

use proc_macro::TokenStream;

mod application;
mod crate_path;
mod ctxt;
mod gen_server;
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
