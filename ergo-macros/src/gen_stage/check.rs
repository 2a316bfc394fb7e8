//! The rules a `#[gen_stage]` [model](super::model) must follow before code
//! is generated from it, each broken rule reported through the context.
//!
//! Beyond what every behaviour follows
//! ([`behaviour::check`](crate::behaviour::check)):
//! - a start function exists (`#[init]`, or named `init`), once, and
//!   returns `Init<Self>` or `Result<Init<Self>, Reason>`;
//! - each stage callback takes what its trait method gives (told apart by
//!   type where there are several) and returns what it can be turned into;
//! - `#[events]` takes its events as `Vec<E>`, which makes `E` the stage's
//!   `In`;
//! - the stage takes events, emits them, or both; only a stage that emits
//!   (`out = T`) has `#[demand]` or returns events, and a producer (`out`
//!   without `#[events]`) has `#[demand]`;
//! - no call or cast is named as one of `StageRef`'s own methods, which
//!   would hide it.

use std::collections::HashSet;

use syn::Type;
use syn::spanned::Spanned;

use super::model::{BEHAVIOUR, ONCE, Source, Stage};
use crate::behaviour::check::{self, shown};
use crate::behaviour::model::{Handler, Kind};
use crate::behaviour::{last_segment_is, unwrap_named};
use crate::ctxt::Ctxt;

/// `StageRef`'s own methods (and those of the traits every one has), which
/// a client method of the same name could not be reached beside.
const STAGE_REF_METHODS: &[&str] = &[
    "at",
    "pid",
    "dest",
    "server",
    "subscribe",
    "subscribe_to",
    "resubscribe",
    "async_subscribe",
    "set_demand",
    "demand",
    "estimate_buffered_count",
    "sync_info",
    "async_info",
    "call",
    "call_timeout",
    "cast",
    "stop",
    "wait",
    "clone",
    "fmt",
];

/// Checks the whole stage.
pub(crate) fn stage(cx: &Ctxt, stage: &Stage) {
    let block = &stage.block;
    let emits = stage.attrs.out.is_some();
    check::item(cx, &BEHAVIOUR, block);
    for h in &block.handlers {
        check::handler(cx, &BEHAVIOUR, h, |cx, h| kind_rules(cx, h, emits));
    }
    check::one_each(cx, block, &ONCE);
    match &block.init {
        Some(i) => {
            check::init(cx, &BEHAVIOUR, i);
            let returns_init = match &i.output {
                syn::ReturnType::Type(_, t) => {
                    last_segment_is(t, "Init") || last_segment_is(t, "Result")
                }
                syn::ReturnType::Default => false,
            };
            if !returns_init {
                cx.error(
                    i.ident.span(),
                    "a stage's `init` says which kind of stage it is: return `Init<Self>` (`Init::producer(state)`, `Init::producer_consumer(state)` or `Init::consumer(state)`), or `Result<Init<Self>, Reason>`",
                );
            }
        }
        None => cx.error(
            block.item.self_ty.span(),
            "a #[gen_stage] needs a start function, marked `#[init]` (or named `init`): `#[init] async fn init(args..) -> Result<Init<Self>, Reason>` (or `-> Init<Self>`), returning `Init::producer(state)`, `Init::producer_consumer(state)` or `Init::consumer(state)`",
        ),
    }
    if let Some(span) = block.extra_init {
        cx.error(
            span,
            "a stage has one start function: this is a second (marked `#[init]`, or named `init`)",
        );
    }
    events_and_demand(cx, stage);
    for h in block.of(Kind::Call).into_iter().chain(block.of(Kind::Cast)) {
        let name = h.ident.to_string();
        if STAGE_REF_METHODS.contains(&name.as_str()) {
            cx.error(
                h.ident.span(),
                format!(
                    "the client method `{name}` would be hidden by `StageRef`'s own `{name}`: give this {} another name",
                    if h.kind == Kind::Call { "call" } else { "cast" }
                ),
            );
        }
    }
    check::generics(cx, &BEHAVIOUR, block);
}

/// The rules of events and demand: what kind of stage the block makes.
fn events_and_demand(cx: &Ctxt, stage: &Stage) {
    let block = &stage.block;
    let takes = block.one(Kind::Events).is_some();
    let demand = block.one(Kind::Demand);
    match &stage.attrs.out {
        None => {
            if let Some(h) = demand {
                cx.error(
                    h.ident.span(),
                    "only a stage that emits events is asked for them: `#[demand]` needs the type of the events the stage emits, `#[gen_stage(out = T)]` (without `out` the stage is a consumer)",
                );
            }
            if !takes {
                cx.error(
                    block.item.self_ty.span(),
                    "a #[gen_stage] takes events, emits them, or both: add an `#[events]` handler (a consumer), `#[gen_stage(out = T)]` and a `#[demand]` handler (a producer), or both (a producer_consumer)",
                );
            }
        }
        Some(out) => {
            if !takes && demand.is_none() {
                cx.error(
                    out.span(),
                    "a producer (`out` without `#[events]`) is asked for events: it needs a `#[demand]` handler, `fn demand(&mut self, demand: usize, ctx: &mut StageContext<Self>)`",
                );
            }
        }
    }
}

/// What each kind of handler takes and returns; `emits` says whether the
/// stage has `out`.
fn kind_rules(cx: &Ctxt, h: &Handler, emits: bool) {
    let n = h.params.values().count();
    let one = |what: &str| {
        if n != 1 {
            cx.error(
                h.ident.span(),
                format!(
                    "{} handler takes {what} (and, last, the `StageContext`)",
                    a_handler(h.kind)
                ),
            );
        }
    };
    match h.kind {
        Kind::Demand => {
            one("`demand: usize`, how many more events the consumers asked for");
            returns_events(cx, h, emits);
        }
        Kind::Events => {
            sources(
                cx,
                h,
                "`events: Vec<E>` and, if it needs it, `from: Subscription`",
            );
            match h.params.values().find(|(_, ty)| Source::of(h.kind, ty) == Some(Source::Events)) {
                Some((_, ty)) => {
                    if unwrap_named(ty, "Vec").is_none() {
                        cx.error(
                            ty.span(),
                            format!(
                                "an `#[events]` handler takes its events as `Vec<E>`, `E` the type of the events the stage takes: `events: Vec<E>`, not `{}`",
                                shown(quote::quote!(#ty))
                            ),
                        );
                    }
                }
                None => cx.error(
                    h.ident.span(),
                    "an `#[events]` handler takes the events, `events: Vec<E>` (`E` is the type of the events the stage takes)",
                ),
            }
            returns_events(cx, h, emits);
        }
        Kind::Subscribe => {
            sources(
                cx,
                h,
                "any of `role: Role`, `opts: &[(Atom, Term)]` and `from: Subscription`",
            );
            let ok = h
                .ret
                .as_ref()
                .is_none_or(|t| last_segment_is(t, "Result") || last_segment_is(t, "Demand"));
            if !ok {
                let ty = h.ret.as_ref().expect("checked: a return type");
                cx.error(
                    ty.span(),
                    "a `#[subscribe]` handler returns nothing (automatic demand), `Demand`, or `Result<Demand, Reason>` (an `Err` refuses the subscription)",
                );
            }
        }
        Kind::Cancel => sources(cx, h, "any of `cancel: Cancel` and `from: Subscription`"),
        Kind::Info => one("one `Message`"),
        Kind::Terminate => one("`&Reason`"),
        Kind::FormatStatus => check::format_status(cx, h),
        Kind::FormatDiscarded => {
            if n != 1 || h.params.takes_ctx() || h.is_async {
                cx.error(
                    h.ident.span(),
                    "a `#[format_discarded]` handler is `fn name(&mut self, excess: usize) -> bool` (`true` logs GenStage's warning): not async, no context",
                );
            }
        }
        Kind::Call | Kind::Cast | Kind::Init | Kind::Continue | Kind::Data | Kind::Closed => {}
    }
}

/// A callback with several arguments: each parameter is one of them
/// (told apart by type), once.
fn sources(cx: &Ctxt, h: &Handler, takes: &str) {
    let mut seen = HashSet::new();
    for (_, ty) in h.params.values() {
        let fits = Source::of(h.kind, ty).is_some_and(|s| seen.insert(s));
        if !fits {
            cx.error(
                ty.span(),
                format!(
                    "{} handler takes {takes} (and, last, the `StageContext`)",
                    a_handler(h.kind)
                ),
            );
        }
    }
}

/// `#[demand]` and `#[events]` return nothing, a `Flow`, or the events to
/// emit as a `Vec` (only where the stage emits).
fn returns_events(cx: &Ctxt, h: &Handler, emits: bool) {
    let Some(ty) = &h.ret else { return };
    if last_segment_is(ty, "Flow") {
        return;
    }
    if !is_vec(ty) {
        cx.error(
            ty.span(),
            format!(
                "{} handler returns nothing, a `Flow`, or the events to emit as a `Vec<Out>`",
                a_handler(h.kind)
            ),
        );
    } else if !emits && h.kind == Kind::Events {
        // (A `#[demand]` without `out` has its own error.)
        cx.error(
            ty.span(),
            "this handler returns events to emit, but the stage emits none: give their type with `#[gen_stage(out = T)]`",
        );
    }
}

/// "a `#[demand]`", "an `#[events]`": the kind's attribute with its
/// article.
fn a_handler(kind: Kind) -> String {
    let attr = kind.attr();
    let vowel = attr[2..].starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} `{attr}`", if vowel { "an" } else { "a" })
}

/// `true` if `ty` is `Vec<..>`.
fn is_vec(ty: &Type) -> bool {
    unwrap_named(ty, "Vec").is_some()
}
