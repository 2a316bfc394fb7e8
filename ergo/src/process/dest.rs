//! Addresses: where a message, a link or a monitor goes.
//!
//! [`Dest`] is what users name (a pid, a name registered on this node, or
//! `{Name, Node}`); the runtime turns it into a [`Target`], which always
//! carries its node, so that routing a signal is one comparison.

use std::fmt;

use ergo_etf::{Atom, Pid, Term};

/// Where a message goes, or what a monitor watches: a pid, a registered
/// name on this node, or `{Name, Node}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A process.
    Pid(Pid),
    /// A name registered on this node.
    Name(Atom),
    /// A name registered on a node.
    NameOn(Atom, Atom),
}

impl From<Pid> for Dest {
    fn from(p: Pid) -> Dest {
        Dest::Pid(p)
    }
}

impl From<Atom> for Dest {
    fn from(a: Atom) -> Dest {
        Dest::Name(a)
    }
}

impl From<&str> for Dest {
    /// A name on this node. The name is looked up among the atoms that
    /// exist: a name no atom has yet cannot be registered, and naming it
    /// does not add it to the atom table.
    fn from(a: &str) -> Dest {
        Dest::Name(Atom::existing(a).unwrap_or(Atom::UNDEFINED))
    }
}

impl From<(Atom, Atom)> for Dest {
    fn from((name, node): (Atom, Atom)) -> Dest {
        Dest::NameOn(name, node)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Pid(p) => write!(f, "{p}"),
            Dest::Name(n) => write!(f, "{n}"),
            Dest::NameOn(n, node) => write!(f, "{{{n},{node}}}"),
        }
    }
}

impl Dest {
    /// The destination with its node spelt out (`local` for a bare name).
    pub(crate) fn target(self, local: Atom) -> Target {
        match self {
            Dest::Pid(p) => Target::Pid(p),
            Dest::Name(n) => Target::Name(n, local),
            Dest::NameOn(n, node) => Target::Name(n, node),
        }
    }
}

/// A name to look up (a registered name, an application, an RPC
/// function): an [`Atom`] as it is, or a string matched against the atoms
/// that exist. A lookup never adds an atom: a string no atom has cannot
/// name anything, and looking it up (say, with a name a peer sent) leaves
/// the atom table as it was.
pub trait LookupName {
    /// The atom this name is, if one exists.
    fn existing_atom(&self) -> Option<Atom>;
}

impl LookupName for Atom {
    fn existing_atom(&self) -> Option<Atom> {
        Some(*self)
    }
}

impl LookupName for &str {
    fn existing_atom(&self) -> Option<Atom> {
        Atom::existing(self)
    }
}

impl LookupName for String {
    fn existing_atom(&self) -> Option<Atom> {
        Atom::existing(self)
    }
}

impl LookupName for &String {
    fn existing_atom(&self) -> Option<Atom> {
        Atom::existing(self)
    }
}

/// A process named by pid, or a registered name on a given node: what a
/// signal is addressed to, what a monitor watches, and how its `'DOWN'`
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Pid(Pid),
    /// A registered name and its node.
    Name(Atom, Atom),
}

impl Target {
    /// The node the target lives on.
    pub(crate) fn node(self) -> Atom {
        match self {
            Target::Pid(p) => p.node,
            Target::Name(_, node) => node,
        }
    }

    /// How a `'DOWN'` message names it: the pid, or `{Name, Node}`.
    pub(crate) fn to_term(self) -> Term {
        match self {
            Target::Pid(p) => Term::Pid(p),
            Target::Name(n, node) => Term::tuple([Term::Atom(n), Term::Atom(node)]),
        }
    }

    /// How control messages name it: the pid, or the bare registered name
    /// (the receiving node's own).
    pub(crate) fn proc_term(self) -> Term {
        match self {
            Target::Pid(p) => Term::Pid(p),
            Target::Name(n, _) => Term::Atom(n),
        }
    }
}

/// Why a message could not be sent. A message to a pid that has exited is
/// dropped silently, as in Erlang; these errors are for destinations that
/// cannot be resolved at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No process is registered under this name (Erlang raises `badarg`).
    NotRegistered(Atom),
    /// The destination is on another node, and this node has no route to it.
    Unreachable(Atom),
    /// The message has no term form and so cannot leave this node.
    NotSendable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRegistered(n) => write!(f, "no process is registered as {n}"),
            SendError::Unreachable(n) => write!(f, "node {n} is not reachable from this node"),
            SendError::NotSendable => {
                write!(f, "the message has no term form and cannot leave this node")
            }
        }
    }
}

impl std::error::Error for SendError {}
