//! GenStage's messages, as Elixir's `GenStage` sends them, and their Rust
//! forms.
//!
//! Between stages of one node the messages move as Rust values (events as a
//! `Vec` of the event type, never encoded); each has the term Elixir's
//! GenStage uses, which is what leaves the node:
//!
//! - to a producer: `{'$gen_producer', {ConsumerPid, Ref}, {subscribe,
//!   Current, Opts}}`, `… {ask, N}`, `… {cancel, Reason}`;
//! - to a consumer: `{'$gen_consumer', {ProducerPid, Ref}, Events}` and
//!   `… {cancel, Reason}`.

use std::fmt;
use std::sync::Arc;

use ergo_etf::{Atom, ConvertError, Decoder, Encoder, FromTerm, Pid, Ref, Term, ToTerm};

use crate::message::Message;
use crate::process::Dest;

/// The tag of messages to a producer.
pub(crate) const GEN_PRODUCER: &str = "$gen_producer";
/// The tag of messages to a consumer.
pub(crate) const GEN_CONSUMER: &str = "$gen_consumer";

/// One end of a subscription as the other end sees it: where its messages
/// go, and the subscription's reference (GenStage's `{Pid, Ref}`).
///
/// A consumer's view of its producer may name it `{Name, Node}` when it
/// subscribed by name on another node, as GenStage does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Subscription {
    /// The other stage.
    pub stage: Dest,
    /// The subscription's reference (the consumer's monitor of the
    /// producer).
    pub tag: Ref,
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}, {}}}", dest_term(self.stage), Term::Ref(self.tag))
    }
}

impl ToTerm for Subscription {
    fn to_term(&self) -> Term {
        Term::tuple([dest_term(self.stage), Term::Ref(self.tag)])
    }
}

/// The term naming `d`: a pid, a name, or `{Name, Node}`.
pub(crate) fn dest_term(d: Dest) -> Term {
    match d {
        Dest::Pid(p) => Term::Pid(p),
        Dest::Name(n) => Term::Atom(n),
        Dest::NameOn(n, node) => Term::tuple([Term::Atom(n), Term::Atom(node)]),
    }
}

/// A stage named by a term: a pid, a registered name, or `{Name, Node}`.
pub(crate) fn dest_of(t: &Term) -> Option<Dest> {
    match t {
        Term::Pid(p) => Some(Dest::Pid(*p)),
        Term::Atom(a) => Some(Dest::Name(*a)),
        Term::Tuple(v) if v.len() == 2 => match (&v[0], &v[1]) {
            (Term::Atom(n), Term::Atom(node)) => Some(Dest::NameOn(*n, *node)),
            _ => None,
        },
        _ => None,
    }
}

/// What a consumer does when a subscription ends (`:cancel`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum CancelMode {
    /// The consumer exits with the same reason (the default).
    #[default]
    Permanent,
    /// The consumer exits unless the reason is `normal`, `shutdown` or
    /// `{shutdown, _}`.
    Transient,
    /// The consumer carries on.
    Temporary,
}

impl CancelMode {
    fn name(self) -> &'static str {
        match self {
            CancelMode::Permanent => "permanent",
            CancelMode::Transient => "transient",
            CancelMode::Temporary => "temporary",
        }
    }
}

/// Picks the events a subscriber of a broadcast producer takes.
pub type Selector<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;

/// A subscription's options (`GenStage.sync_subscribe/3`'s): demand
/// limits, the cancel mode, the partition (for a producer with the
/// partition dispatcher), a selector (broadcast dispatcher, Rust stages
/// only), and any other option, which goes to the producer as it is.
pub struct SubscribeOptions<E> {
    /// The most events asked of the producer at once (`max_demand`, 1000
    /// by default).
    pub max_demand: usize,
    /// When the consumer asks again: once it has handled down to this many
    /// outstanding events (`min_demand`, `max_demand / 2` by default).
    pub min_demand: Option<usize>,
    /// What the consumer does when the subscription ends.
    pub cancel: CancelMode,
    /// The partition to take (partition dispatcher).
    pub partition: Option<Term>,
    /// Which events to take (broadcast dispatcher). Only between Rust
    /// stages of one node: it does not leave the node.
    pub selector: Option<Selector<E>>,
    /// Other options, passed to the producer's `handle_subscribe` as given.
    pub extra: Vec<(Atom, Term)>,
}

impl<E> Clone for SubscribeOptions<E> {
    fn clone(&self) -> Self {
        SubscribeOptions {
            max_demand: self.max_demand,
            min_demand: self.min_demand,
            cancel: self.cancel,
            partition: self.partition.clone(),
            selector: self.selector.clone(),
            extra: self.extra.clone(),
        }
    }
}

impl<E> fmt::Debug for SubscribeOptions<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.keywords_term())?;
        if self.selector.is_some() {
            f.write_str(" (with a selector)")?;
        }
        Ok(())
    }
}

impl<E> Default for SubscribeOptions<E> {
    fn default() -> Self {
        SubscribeOptions {
            max_demand: 1000,
            min_demand: None,
            cancel: CancelMode::Permanent,
            partition: None,
            selector: None,
            extra: Vec::new(),
        }
    }
}

impl<E> SubscribeOptions<E> {
    /// The defaults: `max_demand` 1000, `min_demand` 500, `cancel:
    /// permanent`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `max_demand`.
    pub fn max_demand(mut self, n: usize) -> Self {
        self.max_demand = n;
        self
    }

    /// Sets `min_demand`.
    pub fn min_demand(mut self, n: usize) -> Self {
        self.min_demand = Some(n);
        self
    }

    /// Sets the cancel mode.
    pub fn cancel(mut self, mode: CancelMode) -> Self {
        self.cancel = mode;
        self
    }

    /// Takes partition `p` of a producer with the partition dispatcher.
    pub fn partition(mut self, p: impl ToTerm) -> Self {
        self.partition = Some(p.to_term());
        self
    }

    /// Takes only the events `f` selects (broadcast dispatcher).
    pub fn selector(mut self, f: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        self.selector = Some(Arc::new(f));
        self
    }

    /// Adds an option of the user's, passed to the producer's
    /// `handle_subscribe`.
    pub fn option(mut self, key: impl Into<Atom>, value: impl ToTerm) -> Self {
        self.extra.push((key.into(), value.to_term()));
        self
    }

    /// The effective `min_demand`.
    pub(crate) fn min(&self) -> usize {
        self.min_demand.unwrap_or(self.max_demand / 2)
    }

    /// Checks the demand limits as GenStage does: `max_demand` at least 1,
    /// `min_demand` below it.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_demand < 1 {
            return Err(format!(
                "expected :max_demand to be equal to or greater than 1, got: {}",
                self.max_demand
            ));
        }
        if let Some(min) = self.min_demand
            && min >= self.max_demand
        {
            return Err(format!(
                "expected :min_demand to be equal to or less than {}, got: {min}",
                self.max_demand - 1
            ));
        }
        Ok(())
    }

    /// The options as the keyword list GenStage sends (the selector left
    /// out).
    pub fn keywords(&self) -> Vec<(Atom, Term)> {
        let mut kw = Vec::with_capacity(4 + self.extra.len());
        kw.push((Atom::from("max_demand"), Term::Int(self.max_demand as i64)));
        if let Some(min) = self.min_demand {
            kw.push((Atom::from("min_demand"), Term::Int(min as i64)));
        }
        kw.push((Atom::from("cancel"), Term::atom(self.cancel.name())));
        if let Some(p) = &self.partition {
            kw.push((Atom::from("partition"), p.clone()));
        }
        kw.extend(self.extra.iter().cloned());
        kw
    }

    pub(crate) fn keywords_term(&self) -> Term {
        keywords_to_term(&self.keywords())
    }

    /// Reads a keyword list as GenStage takes it. `to` and `selector` (a
    /// fun, which cannot run here) are left out.
    pub fn from_keywords(t: &Term) -> Result<Self, String> {
        let mut o = SubscribeOptions::default();
        let items = match t {
            Term::List(items) => items.as_slice(),
            Term::Map(m) => {
                let mut kw = Vec::new();
                for (k, v) in m.iter() {
                    kw.push(Term::tuple([k.clone(), v.clone()]));
                }
                return Self::from_keywords(&Term::List(kw));
            }
            other => return Err(format!("expected a keyword list, got: {other}")),
        };
        for item in items {
            let Some([Term::Atom(k), v]) = item.as_tuple() else {
                return Err(format!("expected a keyword list, got the element {item}"));
            };
            match k.as_str() {
                "max_demand" => {
                    o.max_demand = non_neg(v)
                        .ok_or_else(|| format!("expected :max_demand to be an integer, got: {v}"))?
                }
                "min_demand" => {
                    o.min_demand = Some(non_neg(v).ok_or_else(|| {
                        format!("expected :min_demand to be an integer, got: {v}")
                    })?)
                }
                "cancel" => {
                    o.cancel = match v.as_atom().map(|a| a.as_str()) {
                        Some("permanent") => CancelMode::Permanent,
                        Some("transient") => CancelMode::Transient,
                        Some("temporary") => CancelMode::Temporary,
                        _ => {
                            return Err(format!(
                                "expected :cancel to be one of [:temporary, :transient, :permanent], got: {v}"
                            ));
                        }
                    }
                }
                "partition" => o.partition = Some(v.clone()),
                "to" | "selector" => {}
                _ => o.extra.push((*k, v.clone())),
            }
        }
        Ok(o)
    }
}

fn non_neg(t: &Term) -> Option<usize> {
    t.as_i64().and_then(|n| usize::try_from(n).ok())
}

/// `[{K, V}, …]`.
pub(crate) fn keywords_to_term(kw: &[(Atom, Term)]) -> Term {
    Term::List(
        kw.iter()
            .map(|(k, v)| Term::tuple([Term::Atom(*k), v.clone()]))
            .collect(),
    )
}

/// A consumer's subscribe request to a producer.
pub(crate) struct SubscribeMsg<E> {
    pub consumer: Pid,
    pub tag: Ref,
    /// A subscription of the same consumer to cancel first
    /// (`async_resubscribe`): its reference and the reason.
    pub current: Option<(Ref, Term)>,
    pub opts: SubscribeOptions<E>,
}

impl<E: 'static> ToTerm for SubscribeMsg<E> {
    fn to_term(&self) -> Term {
        let current = match &self.current {
            Some((r, why)) => Term::tuple([Term::Ref(*r), why.clone()]),
            None => Term::atom("nil"),
        };
        Term::tuple([
            Term::atom(GEN_PRODUCER),
            Term::tuple([Term::Pid(self.consumer), Term::Ref(self.tag)]),
            Term::tuple([Term::atom("subscribe"), current, self.opts.keywords_term()]),
        ])
    }
}

/// A consumer's demand.
pub(crate) struct AskMsg {
    pub consumer: Pid,
    pub tag: Ref,
    pub n: usize,
}

impl ToTerm for AskMsg {
    fn to_term(&self) -> Term {
        Term::tuple([
            Term::atom(GEN_PRODUCER),
            Term::tuple([Term::Pid(self.consumer), Term::Ref(self.tag)]),
            Term::tuple([Term::atom("ask"), Term::Int(self.n as i64)]),
        ])
    }
}

/// Events from a producer.
pub(crate) struct EventsMsg<E> {
    pub producer: Pid,
    pub tag: Ref,
    pub events: Vec<E>,
}

/// Reads `{'$gen_consumer', {Producer, Ref}, Events}` from another node
/// straight into the [`EventsMsg`] a stage of this node would have sent,
/// each event read as an `E` without building its term. `None` for any
/// other payload, for events that are not all `E`s, and for event types
/// that cannot be read so: those come as terms, as before (and a batch
/// that does not convert cancels its subscription).
pub(crate) fn decode_remote_events<E: FromTerm + Send + 'static>(
    d: &mut Decoder<'_>,
) -> Option<Message> {
    static TAG: std::sync::LazyLock<Atom> = std::sync::LazyLock::new(|| Atom::from(GEN_CONSUMER));
    if d.read_tuple_header().ok()? != 3 || d.read_atom().ok()? != *TAG {
        return None;
    }
    if d.read_tuple_header().ok()? != 2 {
        return None;
    }
    let producer = d.read_pid_term().ok()?;
    let tag = d.read_ref_term().ok()?;
    let events = E::decode_list(d)?.ok()?;
    Some(Message::local(EventsMsg {
        producer,
        tag,
        events,
    }))
}

impl<E: ToTerm> ToTerm for EventsMsg<E> {
    fn to_term(&self) -> Term {
        Term::tuple([
            Term::atom(GEN_CONSUMER),
            Term::tuple([Term::Pid(self.producer), Term::Ref(self.tag)]),
            self.events.to_term(),
        ])
    }

    // Sent to another node, events are written straight from the vector
    // when their type can be (integers, atoms, terms, lists and tuples of
    // those).
    const WRITES_DIRECTLY: bool = E::WRITES_DIRECTLY;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        enc.write_tuple_header(3);
        enc.write_atom(Atom::from(GEN_CONSUMER));
        enc.write_tuple_header(2);
        enc.write_pid(&self.producer);
        enc.write_ref(&self.tag);
        self.events.write_term_to(enc);
    }

    fn term_count(&self) -> usize {
        // The tuple, the atom, {Pid, Ref} and its two elements.
        5 + self.events.term_count()
    }
}

/// `{'$gen_producer' | '$gen_consumer', {Pid, Ref}, {cancel, Reason}}`.
pub(crate) fn cancel_term(tag_atom: &str, from: Pid, tag: Ref, reason: Term) -> Term {
    Term::tuple([
        Term::atom(tag_atom),
        Term::tuple([Term::Pid(from), Term::Ref(tag)]),
        Term::tuple([Term::atom("cancel"), reason]),
    ])
}

/// A GenStage message read from a term.
pub(crate) enum Wire {
    Subscribe {
        consumer: Pid,
        tag: Ref,
        current: Option<(Ref, Term)>,
        opts: Term,
    },
    Ask {
        consumer: Pid,
        tag: Ref,
        n: usize,
    },
    /// A consumer cancels.
    CancelFromConsumer {
        tag: Ref,
        reason: Term,
    },
    Events {
        producer: Pid,
        tag: Ref,
        events: Vec<Term>,
    },
    /// A producer cancels.
    CancelFromProducer {
        tag: Ref,
        reason: Term,
    },
    /// A `'$gen_producer'`/`'$gen_consumer'` message of no known shape.
    Malformed(Term),
}

/// Reads `{'$gen_producer', …}` and `{'$gen_consumer', …}`; `Err` gives
/// back any other term.
pub(crate) fn parse_wire(t: Term) -> Result<Wire, Term> {
    let Term::Tuple(mut v) = t else { return Err(t) };
    let to_producer = match v.first() {
        Some(Term::Atom(a)) if v.len() == 3 && a.as_str() == GEN_PRODUCER => true,
        Some(Term::Atom(a)) if v.len() == 3 && a.as_str() == GEN_CONSUMER => false,
        _ => return Err(Term::Tuple(v)),
    };
    let (pid, tag) = match v[1].as_tuple() {
        Some([Term::Pid(p), Term::Ref(r)]) => (*p, *r),
        _ => return Ok(Wire::Malformed(Term::Tuple(v))),
    };
    let body = std::mem::take(&mut v[2]);
    let wire = match (to_producer, body) {
        (true, Term::Tuple(mut b)) if b.len() == 3 && b[0].is_atom("subscribe") => {
            let current = match &b[1] {
                Term::Tuple(c) if c.len() == 2 => match &c[0] {
                    Term::Ref(r) => Some((*r, c[1].clone())),
                    _ => None,
                },
                _ => None,
            };
            Wire::Subscribe {
                consumer: pid,
                tag,
                current,
                opts: std::mem::take(&mut b[2]),
            }
        }
        (true, Term::Tuple(b)) if b.len() == 2 && b[0].is_atom("ask") => match non_neg(&b[1]) {
            Some(n) => Wire::Ask {
                consumer: pid,
                tag,
                n,
            },
            None => {
                v[2] = Term::Tuple(b);
                Wire::Malformed(Term::Tuple(v))
            }
        },
        (true, Term::Tuple(mut b)) if b.len() == 2 && b[0].is_atom("cancel") => {
            Wire::CancelFromConsumer {
                tag,
                reason: std::mem::take(&mut b[1]),
            }
        }
        (false, Term::Tuple(mut b)) if b.len() == 2 && b[0].is_atom("cancel") => {
            Wire::CancelFromProducer {
                tag,
                reason: std::mem::take(&mut b[1]),
            }
        }
        (false, Term::List(events)) => Wire::Events {
            producer: pid,
            tag,
            events,
        },
        (_, body) => {
            v[2] = body;
            Wire::Malformed(Term::Tuple(v))
        }
    };
    Ok(wire)
}

/// Events of no type: the `Out` of a consumer and the `In` of a producer.
/// There is no value of it, so such a stage can emit (or take) nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoEvents {}

impl ToTerm for NoEvents {
    fn to_term(&self) -> Term {
        match *self {}
    }
}

impl FromTerm for NoEvents {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        Err(ConvertError::new("no events (this stage takes none)", term))
    }
    fn shape() -> std::borrow::Cow<'static, str> {
        "no events".into()
    }
}
