//! The model of a `#[gen_stage]` impl block: the shared [`Block`] (the
//! stage type, its `init` and its handlers), the attribute's arguments, and
//! what each parameter of a stage callback stands for.

use syn::Type;

use crate::behaviour::Behaviour;
use crate::behaviour::last_segment_is;
use crate::behaviour::model::{Block, Kind};
use crate::crate_path::CratePath;

/// One `#[gen_stage] impl Type { .. }` block.
pub(crate) struct Stage {
    /// The impl block, its `init` and its handlers.
    pub(crate) block: Block,
    /// The arguments of `#[gen_stage(..)]`.
    pub(crate) attrs: StageAttrs,
}

/// The arguments of `#[gen_stage(..)]`.
#[derive(Default)]
pub(crate) struct StageAttrs {
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
    /// `out = T`: the events the stage emits; `None` for none (a consumer).
    pub(crate) out: Option<Type>,
}

/// How `#[gen_stage]` reads and names things.
pub(crate) const BEHAVIOUR: Behaviour = Behaviour {
    attr: "#[gen_stage]",
    noun: "stage",
    example: "MyStage",
    kinds: &[
        ("init", Kind::Init),
        ("demand", Kind::Demand),
        ("events", Kind::Events),
        ("subscribe", Kind::Subscribe),
        ("cancel", Kind::Cancel),
        ("call", Kind::Call),
        ("cast", Kind::Cast),
        ("info", Kind::Info),
        ("format_status", Kind::FormatStatus),
        ("format_discarded", Kind::FormatDiscarded),
        ("terminate", Kind::Terminate),
    ],
    attr_with_args: "handler attributes take no arguments: write `#[init]`, `#[demand]`, `#[events]`, `#[subscribe]`, `#[cancel]`, `#[call]`, `#[cast]`, `#[info]`, `#[format_status]`, `#[format_discarded]` or `#[terminate]`",
    ctx: "StageContext",
    ctx_types: &["StageContext", "ServerContext"],
    init_peer: None,
};

/// The kinds only one handler may have.
pub(crate) const ONCE: [Kind; 8] = [
    Kind::Demand,
    Kind::Events,
    Kind::Subscribe,
    Kind::Cancel,
    Kind::Info,
    Kind::FormatStatus,
    Kind::FormatDiscarded,
    Kind::Terminate,
];

/// What a parameter of a stage callback handler stands for: which of the
/// trait method's arguments it is given.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Source {
    /// `handle_demand`'s `demand: usize`.
    Demand,
    /// `handle_events`' `events: Vec<In>`.
    Events,
    /// The `from: Subscription` of events, a subscription or a cancel.
    From,
    /// `handle_subscribe`'s `role: Role`.
    Role,
    /// `handle_subscribe`'s `opts: &[(Atom, Term)]`.
    Opts,
    /// `handle_cancel`'s `cancel: Cancel`.
    Cancel,
    /// `handle_info`'s `message: Message`.
    Message,
    /// `terminate`'s `reason: &Reason`.
    Reason,
    /// `format_discarded`'s `excess: usize`.
    Excess,
}

impl Source {
    /// The binding the generated trait method has it under.
    pub(crate) fn binding(self) -> &'static str {
        match self {
            Source::Demand => "__demand",
            Source::Events => "__events",
            Source::From => "__from",
            Source::Role => "__role",
            Source::Opts => "__opts",
            Source::Cancel => "__cancel",
            Source::Message => "__msg",
            Source::Reason => "__reason",
            Source::Excess => "__excess",
        }
    }

    /// What a parameter of type `ty` stands for in a handler of `kind`.
    ///
    /// Callbacks with several arguments tell them apart by type, so that a
    /// handler takes the ones it needs in any order: `Subscription` is
    /// `from`, `Role` the role, a reference (`&[(Atom, Term)]`) the
    /// options, and `Cancel` the cancel; in `#[events]` anything else is the
    /// events. Callbacks with one argument take it whatever its type (the
    /// compiler then checks it). `None` for a parameter the kind does not
    /// have.
    pub(crate) fn of(kind: Kind, ty: &Type) -> Option<Source> {
        let from = last_segment_is(ty, "Subscription");
        match kind {
            Kind::Demand => Some(Source::Demand),
            Kind::Events if from => Some(Source::From),
            Kind::Events => Some(Source::Events),
            Kind::Subscribe if from => Some(Source::From),
            Kind::Subscribe if last_segment_is(ty, "Role") => Some(Source::Role),
            Kind::Subscribe if matches!(ty, Type::Reference(_)) => Some(Source::Opts),
            Kind::Cancel if from => Some(Source::From),
            Kind::Cancel if last_segment_is(ty, "Cancel") => Some(Source::Cancel),
            Kind::Info => Some(Source::Message),
            Kind::Terminate => Some(Source::Reason),
            Kind::FormatDiscarded => Some(Source::Excess),
            _ => None,
        }
    }
}
