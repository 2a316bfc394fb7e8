//! Exit reasons, as Erlang spells them.
//!
//! A process ends with a [`Reason`]. The reasons with a meaning of their own
//! are `normal` (a clean end: linked processes that do not trap exits ignore
//! it), `kill` (cannot be trapped; the victim dies with `killed`), `shutdown`
//! and `{shutdown, Term}` (ordered shutdowns, which supervisors do not
//! report as crashes), `noproc` and `noconnection`. Any other term is an
//! abnormal reason, like a panic's `{panic, Message}`.

use std::fmt;

use std::sync::Arc;

use ergo_etf::{Atom, Term, ToTerm};

/// Why a process ended, or the reason carried by an exit signal.
#[derive(Clone, PartialEq, Debug)]
pub enum Reason {
    /// `normal`: the process finished its work.
    Normal,
    /// `kill`: an exit signal no process can trap.
    Kill,
    /// `killed`: what a process killed with `kill` dies with.
    Killed,
    /// `shutdown`: an ordered shutdown.
    Shutdown,
    /// `{shutdown, Term}`: an ordered shutdown with details.
    ShutdownWith(Arc<Term>),
    /// `noproc`: the process did not exist.
    NoProc,
    /// `noconnection`: the process's node was cut off.
    NoConnection,
    /// Any other term (shared: a reason goes to every link and monitor,
    /// and may be large, as an `erpc` result is).
    Other(Arc<Term>),
}

impl Reason {
    /// A reason from any term, mapping the atoms with a meaning of their own.
    pub fn from_term(term: Term) -> Reason {
        match &term {
            Term::Atom(a) => match a.as_str() {
                "normal" => Reason::Normal,
                "kill" => Reason::Kill,
                "killed" => Reason::Killed,
                "shutdown" => Reason::Shutdown,
                "noproc" => Reason::NoProc,
                "noconnection" => Reason::NoConnection,
                _ => Reason::Other(Arc::new(term)),
            },
            Term::Tuple(v) if v.len() == 2 && v[0].is_atom("shutdown") => {
                Reason::ShutdownWith(Arc::new(v[1].clone()))
            }
            _ => Reason::Other(Arc::new(term)),
        }
    }

    /// An abnormal reason holding `term`.
    pub fn other(term: impl ToTerm) -> Reason {
        Reason::from_term(term.to_term())
    }

    /// An abnormal reason that is the atom `name`.
    pub fn atom(name: &str) -> Reason {
        Reason::from_term(Term::atom(name))
    }

    /// The reason as Erlang writes it.
    pub fn to_term(&self) -> Term {
        match self {
            Reason::Normal => Term::Atom(Atom::NORMAL),
            Reason::Kill => Term::Atom(Atom::KILL),
            Reason::Killed => Term::Atom(Atom::KILLED),
            Reason::Shutdown => Term::Atom(Atom::SHUTDOWN),
            Reason::ShutdownWith(t) => Term::tuple([Term::Atom(Atom::SHUTDOWN), (**t).clone()]),
            Reason::NoProc => Term::Atom(Atom::NOPROC),
            Reason::NoConnection => Term::Atom(Atom::NOCONNECTION),
            Reason::Other(t) => (**t).clone(),
        }
    }

    /// The reason as Erlang writes it, without copying a reason that holds
    /// its term.
    pub fn as_term(&self) -> std::borrow::Cow<'_, Term> {
        match self {
            Reason::Other(t) => std::borrow::Cow::Borrowed(&**t),
            other => std::borrow::Cow::Owned(other.to_term()),
        }
    }

    /// `true` for `normal`, `shutdown` and `{shutdown, _}`: ends that
    /// supervisors do not treat as crashes (a `transient` child exiting
    /// with one of them is not restarted).
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            Reason::Normal | Reason::Shutdown | Reason::ShutdownWith(_)
        )
    }

    /// `true` for `normal`.
    pub fn is_normal(&self) -> bool {
        matches!(self, Reason::Normal)
    }

    /// Whether this is the reason of a process whose code panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Reason::Other(t) if matches!(&**t, Term::Tuple(v) if v.len() == 2 && v[0].is_atom("panic")))
    }

    /// The reason a process ends with when its code panicked:
    /// `{panic, <<"message">>}`.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Reason {
        let text = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Reason::Other(Arc::new(Term::tuple([
            Term::atom("panic"),
            Term::binary(text),
        ])))
    }
}

impl ToTerm for Reason {
    fn to_term(&self) -> Term {
        Reason::to_term(self)
    }
}

impl From<Term> for Reason {
    fn from(t: Term) -> Reason {
        Reason::from_term(t)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_term())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_atoms_map_to_their_variants() {
        assert_eq!(Reason::from_term(Term::atom("normal")), Reason::Normal);
        assert_eq!(Reason::from_term(Term::atom("kill")), Reason::Kill);
        assert_eq!(
            Reason::from_term(Term::tuple([Term::atom("shutdown"), Term::Int(1)])),
            Reason::ShutdownWith(Arc::new(Term::Int(1)))
        );
        assert_eq!(Reason::atom("boom").to_string(), "boom");
        assert!(Reason::Shutdown.is_clean() && !Reason::atom("boom").is_clean());
    }

    #[test]
    fn panics_become_tagged_reasons() {
        let r = Reason::from_panic(&"bad state");
        assert_eq!(r.to_string(), r#"{panic,<<"bad state">>}"#);
    }
}
