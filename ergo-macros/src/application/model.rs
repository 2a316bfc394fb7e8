//! The model of an `#[application(..)]`: the application resource's fields
//! as the user wrote them.

use syn::{DeriveInput, Expr, LitStr};

use crate::crate_path::CratePath;

/// One `#[application(..)]` type.
pub(crate) struct Application {
    /// The type, emitted as it is.
    pub(crate) item: DeriveInput,
    /// `name = "..."`, which is required.
    pub(crate) name: Option<LitStr>,
    /// `description = "..."` (empty by default).
    pub(crate) description: String,
    /// `version = "..."` (empty by default).
    pub(crate) version: String,
    /// `applications = [...]`: the applications started before this one.
    pub(crate) applications: Vec<LitStr>,
    /// `env(key = value, ...)`, in order; a value must be a string,
    /// integer, float or boolean literal.
    pub(crate) env: Vec<(String, Expr)>,
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
}
