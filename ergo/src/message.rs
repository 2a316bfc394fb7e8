//! What a process receives.
//!
//! Between processes of one node a message is the Rust value that was sent,
//! moved, never encoded ([`Message::Local`]). From another node, or when sent
//! as a dynamic term, it is a [`Term`]. Exit signals a process traps and the
//! notices of monitors arrive as [`Message::Exit`] (`{'EXIT', From, Reason}`)
//! and [`Message::Down`] (`{'DOWN', Ref, process, Object, Reason}`).
//!
//! [`Message::into_typed`] reads any of these as a typed value: a local value
//! of that type is handed over as it is; a term is converted with
//! [`FromTerm`], so a typed receiver works the same whether the sender was
//! local or remote.

use std::any::Any;
use std::fmt;

use ergo_etf::{Atom, Encoder, FromTerm, Pid, Ref, Term, ToTerm};

use crate::reason::Reason;

/// A Rust value sent between processes of one node.
pub struct Local {
    value: Box<dyn Any + Send>,
    form: Option<&'static TermForm>,
    type_name: &'static str,
}

/// How a local value of one type becomes its term, when it leaves the node.
pub(crate) struct TermForm {
    to_term: fn(&(dyn Any + Send)) -> Term,
    /// Writes the term without building it, for types that can
    /// ([`ToTerm::WRITES_DIRECTLY`]).
    write: Option<fn(&(dyn Any + Send), &mut Encoder<'_>)>,
    /// How many terms the term is made of.
    count: fn(&(dyn Any + Send)) -> usize,
}

struct TermFormOf<T>(std::marker::PhantomData<T>);

impl<T: ToTerm + Send + 'static> TermFormOf<T> {
    const FORM: TermForm = TermForm {
        to_term: term_of::<T>,
        write: if T::WRITES_DIRECTLY {
            Some(write_of::<T>)
        } else {
            None
        },
        count: count_of::<T>,
    };
}

fn write_of<T: ToTerm + 'static>(v: &(dyn Any + Send), enc: &mut Encoder<'_>) {
    match v.downcast_ref::<T>() {
        Some(v) => v.write_term_to(enc),
        None => enc.write_atom(Atom::UNDEFINED),
    }
}

fn count_of<T: ToTerm + 'static>(v: &(dyn Any + Send)) -> usize {
    v.downcast_ref::<T>().map_or(1, ToTerm::term_count)
}

/// A local value whose type writes its term directly, borrowed to be
/// written to another node.
#[derive(Clone, Copy)]
pub(crate) struct Direct<'a> {
    value: &'a (dyn Any + Send),
    form: &'static TermForm,
    write: fn(&(dyn Any + Send), &mut Encoder<'_>),
}

impl Direct<'_> {
    /// Writes the value's term.
    pub(crate) fn write(self, enc: &mut Encoder<'_>) {
        (self.write)(self.value, enc)
    }

    /// The value's term, built.
    pub(crate) fn to_term(self) -> Term {
        (self.form.to_term)(self.value)
    }

    /// How many terms the value's term is made of.
    pub(crate) fn term_count(self) -> usize {
        (self.form.count)(self.value)
    }
}

impl fmt::Debug for Direct<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_term())
    }
}

impl Local {
    /// The name of the value's type, for diagnostics.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// `true` if the value is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.value.is::<T>()
    }
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            Some(form) => write!(f, "{}", (form.to_term)(&*self.value)),
            None => write!(f, "<{}>", self.type_name),
        }
    }
}

impl Local {
    /// The value to write to another node without building its term, if
    /// its type can.
    pub(crate) fn direct(&self) -> Option<Direct<'_>> {
        let form = self.form?;
        Some(Direct {
            value: &*self.value,
            form,
            write: form.write?,
        })
    }
}

/// A message in a process's mailbox.
// The tag is a whole word, so that every variant's fields start 8-byte
// aligned: with a 4-byte tag, `Exit`'s pid began at offset 4, and a
// message moved from one future's frame to the next was copied in 16-byte
// pieces at offsets 4, 20 and 32 over the 16-byte pieces at 0, 16 and 32
// that had stored it, a stalled load at every move (the serve loop's
// `next_message` took a quarter of its samples there). Still 48 bytes,
// and `Option<Message>` too.
#[derive(Debug)]
#[repr(u64)]
pub enum Message {
    /// A Rust value from a process on this node.
    Local(Local),
    /// A term: from another node, or sent as a term.
    Term(Term),
    /// A trapped exit signal: `{'EXIT', From, Reason}`.
    Exit {
        /// The process the signal came from.
        from: Pid,
        /// Its reason.
        reason: Reason,
    },
    /// A monitor fired: `{'DOWN', Ref, process, Object, Reason}`. Boxed,
    /// so that every message is smaller: messages are moved into and out
    /// of mailboxes, and this one is rare and the largest by far.
    Down(Box<Down>),
}

/// What a [`Message::Down`] says: a monitor fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    /// The monitor's reference.
    pub reference: Ref,
    /// What was monitored: the pid, or `{Name, Node}` for a monitor by
    /// registered name.
    pub object: Term,
    /// Why it went down (`noproc` when it never existed).
    pub reason: Reason,
}

fn term_of<T: ToTerm + 'static>(v: &(dyn Any + Send)) -> Term {
    v.downcast_ref::<T>()
        .map_or(Term::atom("undefined"), ToTerm::to_term)
}

impl Message {
    /// The notice of a monitor that fired.
    pub fn down(reference: Ref, object: Term, reason: Reason) -> Message {
        Message::Down(Box::new(Down {
            reference,
            object,
            reason,
        }))
    }

    /// What the message says if it is a monitor's notice: for selective
    /// receives, `ctx.receive_match(|m| m.as_down().is_some_and(|d| d.reference == r))`.
    pub fn as_down(&self) -> Option<&Down> {
        match self {
            Message::Down(d) => Some(d),
            _ => None,
        }
    }

    /// A message holding `value`, which can also be read as a term (and so
    /// sent to another node).
    pub fn new<T: ToTerm + Send + 'static>(value: T) -> Message {
        // A term sent as such is a term message, whoever sends it.
        let mut slot = Some(value);
        if let Some(term) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Term>>() {
            return Message::Term(term.take().unwrap_or(Term::NIL));
        }
        let Some(value) = slot else {
            return Message::Term(Term::NIL);
        };
        Message::Local(Local {
            value: Box::new(value),
            form: Some(&TermFormOf::<T>::FORM),
            type_name: std::any::type_name::<T>(),
        })
    }

    /// A message holding a value that has no term form (a channel, a
    /// handle): it can only be sent to processes of this node.
    pub fn local<T: Send + 'static>(value: T) -> Message {
        Message::Local(Local {
            value: Box::new(value),
            form: None,
            type_name: std::any::type_name::<T>(),
        })
    }

    /// [`Message::local`] for a value already in its box (one the caller
    /// allocated before making the value, so that the value is written
    /// straight into it rather than made on the stack and copied in).
    pub(crate) fn local_boxed<T: Send + 'static>(value: Box<T>) -> Message {
        Message::Local(Local {
            value,
            form: None,
            type_name: std::any::type_name::<T>(),
        })
    }

    /// The message as a term, like [`Message::to_term`], without copying
    /// a message that is a term already.
    pub fn into_term(self) -> Option<Term> {
        match self {
            Message::Term(t) => Some(t),
            other => other.to_term(),
        }
    }

    /// The message as a term, if it has one: local values sent with
    /// [`Message::new`], terms, and exit and down notices.
    pub fn to_term(&self) -> Option<Term> {
        match self {
            Message::Local(l) => l.form.map(|f| (f.to_term)(&*l.value)),
            Message::Term(t) => Some(t.clone()),
            Message::Exit { from, reason } => Some(Term::tuple([
                Term::Atom(Atom::EXIT),
                Term::Pid(*from),
                reason.to_term(),
            ])),
            Message::Down(d) => Some(Term::tuple([
                Term::Atom(Atom::DOWN),
                Term::Ref(d.reference),
                Term::Atom(Atom::PROCESS),
                d.object.clone(),
                d.reason.to_term(),
            ])),
        }
    }

    /// Takes the local value out if it is a `T`.
    pub fn downcast<T: 'static>(self) -> Result<T, Message> {
        match self {
            // One look at the type (`Box::downcast` makes it): the value
            // goes back into a message when it is not a `T`.
            Message::Local(l) => match l.value.downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(value) => Err(Message::Local(Local { value, ..l })),
            },
            other => Err(other),
        }
    }

    /// The local value, if it is a `T`, left in the message.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match self {
            Message::Local(l) => l.value.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// Reads the message as a `T`: a local `T` as it is, anything with a
    /// term form through [`FromTerm`]. The message comes back unchanged when
    /// it is neither.
    pub fn into_typed<T: FromTerm + 'static>(self) -> Result<T, Message> {
        let this = match self.downcast::<T>() {
            Ok(v) => return Ok(v),
            Err(m) => m,
        };
        match this.to_term().map(|t| T::from_term(&t)) {
            Some(Ok(v)) => Ok(v),
            _ => Err(this),
        }
    }

    /// Whether the message has a term form (and so can leave the node).
    pub(crate) fn has_term(&self) -> bool {
        !matches!(self, Message::Local(l) if l.form.is_none())
    }

    /// `true` if this is a local `T`.
    pub fn is<T: 'static>(&self) -> bool {
        matches!(self, Message::Local(l) if l.is::<T>())
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_term() {
            Some(t) => write!(f, "{t}"),
            None => match self {
                Message::Local(l) => write!(f, "<{}>", l.type_name),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_read_works_for_local_values_and_terms() {
        let m = Message::new((Atom::from("add"), 5i64));
        assert_eq!(m.to_term().unwrap().to_string(), "{add,5}");
        let v: (Atom, i64) = m.into_typed().unwrap();
        assert_eq!(v.1, 5);
        let t = Message::Term(Term::tuple([Term::atom("add"), Term::Int(7)]));
        let v: (Atom, i64) = t.into_typed().unwrap();
        assert_eq!(v.1, 7);
    }

    #[test]
    fn wrong_type_gives_the_message_back() {
        let m = Message::local(vec![1u8]);
        let m = m.downcast::<String>().unwrap_err();
        assert_eq!(m.downcast::<Vec<u8>>().unwrap(), vec![1]);
    }

    /// Messages are moved into mailboxes and out again on every send: the
    /// rare monitor notice is boxed so that it does not make all of them
    /// as large as itself.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_message_is_no_larger_than_a_term_and_its_tag() {
        let size = std::mem::size_of::<Message>();
        assert!(
            size <= std::mem::size_of::<Term>() + 8,
            "a message grew to {size} bytes"
        );
        assert_eq!(
            std::mem::size_of::<Option<Message>>(),
            size,
            "an optional message needs no room beyond the message's tag"
        );
    }
}
