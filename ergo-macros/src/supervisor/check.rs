//! The rules a `#[supervisor]` [model](super::model) must follow: it is a
//! struct with named fields, and its strategy, restart and shutdown words
//! are ones the runtime knows.

use super::model::{Children, Shutdown, Supervisor};
use crate::ctxt::Ctxt;

/// The strategies, by the name the attribute takes.
pub(crate) const STRATEGIES: [&str; 3] = ["one_for_one", "one_for_all", "rest_for_one"];
/// The restart types.
pub(crate) const RESTARTS: [&str; 3] = ["permanent", "transient", "temporary"];
/// The shutdown words (a number of milliseconds is the other kind).
pub(crate) const SHUTDOWNS: [&str; 2] = ["brutal_kill", "infinity"];

/// Checks the whole supervisor.
pub(crate) fn supervisor(cx: &Ctxt, sup: &Supervisor) {
    if let Some(lit) = &sup.attrs.strategy
        && !STRATEGIES.contains(&lit.value().as_str())
    {
        cx.error(
            lit.span(),
            format!(
                "unknown strategy {:?}; expected \"one_for_one\", \"one_for_all\" or \"rest_for_one\" (a simple_one_for_one supervisor is built with `SupervisorSpec::simple`)",
                lit.value()
            ),
        );
    }
    let children = match &sup.children {
        Children::Fields(children) => children,
        Children::NotAStruct(span) => {
            cx.error(
                *span,
                "`#[supervisor]` goes on a struct whose fields are the children",
            );
            return;
        }
        Children::NotNamed(span) => {
            cx.error(
                *span,
                "`#[supervisor]` needs named fields: each field is a child, named by its id",
            );
            return;
        }
    };
    for child in children {
        if let Some(lit) = &child.restart
            && !RESTARTS.contains(&lit.value().as_str())
        {
            cx.error(
                lit.span(),
                format!(
                    "unknown restart {:?}; expected \"permanent\", \"transient\" or \"temporary\"",
                    lit.value()
                ),
            );
        }
        if let Some(Shutdown::Named(lit)) = &child.shutdown
            && !SHUTDOWNS.contains(&lit.value().as_str())
        {
            cx.error(
                lit.span(),
                format!(
                    "unknown shutdown {:?}; expected \"brutal_kill\", \"infinity\" or a number of milliseconds",
                    lit.value()
                ),
            );
        }
    }
}
