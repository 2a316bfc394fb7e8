//! The Application behaviour, as OTP's `application` module: a named,
//! versioned unit with an environment and a top supervisor, loaded and
//! started on a node after the applications it depends on.
//!
//! Starting an application starts its *master*, a process that is the group
//! leader of everything in the application, and the master starts the top
//! supervisor linked to it. A process finds its application, and its
//! application's environment, through its group leader, as
//! `application:get_env/1` does.
//!
//! When the top supervisor ends, the start type decides what follows:
//! `permanent`: the node stops; `transient`: the node stops unless the
//! end was `normal`; `temporary`: it is only reported. Stopping an
//! application with [`Node::stop_application`] is not an end of that kind.
//!
//! # What lives here, and what it may touch
//!
//! - this file: the behaviour, [`AppSpec`], the application master and the
//!   [`Node`] methods that load, start and stop applications;
//! - `controller`: the application controller, the node's record of loaded
//!   and running applications; every check and change goes through it,
//!   under its lock.
//!
//! An application's processes are ordinary processes (a master and a top
//! supervisor): this module starts them and asks the controller, and
//! touches nothing else of the node.
//!
//! `cargo run --example application` starts applications with a
//! dependency, reads their environment, restarts a child and stops one.

mod controller;

pub(crate) use controller::Controller;
use controller::{Claim, Running};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Atom, Pid, Term, ToTerm};
use tokio::sync::oneshot;

use crate::message::Message;
use crate::node::Node;
use crate::process::Context;
use crate::process::LookupName;
use crate::reason::Reason;
use crate::supervisor::{SupRef, SupervisorSpec};

/// What an application runs: its top supervisor. `#[application]` builds
/// the [`AppSpec`] around it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no top supervisor",
    note = "an `#[application]` type implements `Application`: `fn supervisor() -> SupervisorSpec`"
)]
pub trait Application {
    /// The top supervisor's spec, built each time the application starts.
    fn supervisor() -> SupervisorSpec;
}

/// What happens when a running application's top supervisor ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartType {
    /// The node stops, whatever the reason.
    Permanent,
    /// The node stops unless the reason is `normal`.
    Transient,
    /// Only reported.
    Temporary,
}

/// An application's resource: what `.app` files say in OTP.
#[derive(Clone)]
pub struct AppSpec {
    name: Atom,
    description: String,
    version: String,
    env: Vec<(Atom, Term)>,
    applications: Vec<Atom>,
    supervisor: Arc<dyn Fn() -> SupervisorSpec + Send + Sync>,
}

impl fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSpec")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("applications", &self.applications)
            .finish()
    }
}

impl AppSpec {
    /// An application named `name` whose top supervisor is built by
    /// `supervisor` each time it starts.
    pub fn new(
        name: impl Into<Atom>,
        supervisor: impl Fn() -> SupervisorSpec + Send + Sync + 'static,
    ) -> AppSpec {
        AppSpec {
            name: name.into(),
            description: String::new(),
            version: String::new(),
            env: Vec::new(),
            applications: Vec::new(),
            supervisor: Arc::new(supervisor),
        }
    }

    /// Its description.
    pub fn description(mut self, d: impl Into<String>) -> AppSpec {
        self.description = d.into();
        self
    }

    /// Its version.
    pub fn version(mut self, v: impl Into<String>) -> AppSpec {
        self.version = v.into();
        self
    }

    /// A default environment value.
    pub fn env(mut self, key: impl Into<Atom>, value: impl ToTerm) -> AppSpec {
        self.env.push((key.into(), value.to_term()));
        self
    }

    /// An application that must be running before this one starts.
    pub fn depends_on(mut self, app: impl Into<Atom>) -> AppSpec {
        self.applications.push(app.into());
        self
    }

    /// Its name.
    pub fn name(&self) -> Atom {
        self.name
    }
}

/// An application as `which_applications` and `loaded_applications`
/// report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// Its name.
    pub name: Atom,
    /// Its description.
    pub description: String,
    /// Its version.
    pub version: String,
}

/// Why an application request failed.
#[derive(Clone, Debug, PartialEq)]
pub enum AppError {
    /// Not loaded (`{error, {not_loaded, App}}`).
    NotLoaded(Atom),
    /// Loaded already.
    AlreadyLoaded(Atom),
    /// Running already (`{error, {already_started, App}}`).
    AlreadyStarted(Atom),
    /// A dependency is not running (`{error, {not_started, Dep}}`).
    NotStarted(Atom),
    /// Not running.
    NotRunning(Atom),
    /// Running, so it cannot be unloaded.
    Running(Atom),
    /// The top supervisor failed to start.
    StartFailed(Atom, Reason),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotLoaded(a) => write!(f, "application {a} is not loaded"),
            AppError::AlreadyLoaded(a) => write!(f, "application {a} is already loaded"),
            AppError::AlreadyStarted(a) => write!(f, "application {a} is already started"),
            AppError::NotStarted(a) => write!(f, "application {a}, a dependency, is not started"),
            AppError::NotRunning(a) => write!(f, "application {a} is not running"),
            AppError::Running(a) => write!(f, "application {a} is running"),
            AppError::StartFailed(a, r) => write!(f, "application {a} failed to start: {r}"),
        }
    }
}

impl std::error::Error for AppError {}

/// Answers the requests waiting on a start, however the start ends (its
/// future may be dropped half way).
struct Starting {
    node: Node,
    name: Atom,
    result: Option<Result<(), AppError>>,
}

impl Drop for Starting {
    fn drop(&mut self) {
        self.node
            .inner()
            .apps
            .started(self.name, self.result.take());
    }
}

/// Takes a master out of the controller's record however it ends.
struct MasterEntry {
    node: Node,
    pid: Pid,
}

impl Drop for MasterEntry {
    fn drop(&mut self) {
        self.node.inner().apps.remove_master(self.pid);
    }
}

impl Node {
    /// Loads an application (`application:load/1`).
    pub fn load_application(&self, spec: AppSpec) -> Result<(), AppError> {
        self.inner().apps.load(spec)
    }

    /// Unloads a stopped application (`application:unload/1`).
    pub fn unload_application(&self, name: impl Into<Atom>) -> Result<(), AppError> {
        self.inner().apps.unload(name.into())
    }

    /// The top supervisor of a running application.
    pub(crate) fn application_top(&self, name: Atom) -> Option<Pid> {
        self.inner().apps.top(name)
    }

    /// Starts a loaded application whose dependencies are running
    /// (`application:start/2`); returns once its top supervisor has started.
    pub async fn start_application(
        &self,
        name: impl Into<Atom>,
        start_type: StartType,
    ) -> Result<(), AppError> {
        let name = name.into();
        // The check and the claim in one step: of two starts at once, one
        // starts the application and the other waits for its result.
        let spec = match self.inner().apps.claim(name)? {
            Claim::Start(spec) => spec,
            Claim::UnderWay(result) => {
                return result
                    .await
                    .unwrap_or(Err(AppError::StartFailed(name, Reason::Killed)));
            }
        };
        let mut starting = Starting {
            node: self.clone(),
            name,
            result: None,
        };
        let result = self.start_claimed(name, spec, start_type).await;
        starting.result = Some(result.clone());
        result
    }

    /// Starts an application this call has claimed in the registry.
    async fn start_claimed(
        &self,
        name: Atom,
        spec: AppSpec,
        start_type: StartType,
    ) -> Result<(), AppError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let node = self.clone();
        let master = self.spawn(move |ctx| master(ctx, node, spec, start_type, ready_tx, stop_rx));
        match ready_rx.await {
            Ok(Ok(top)) => {
                self.inner().apps.add_running(
                    name,
                    Running {
                        master,
                        top,
                        start_type,
                        stop: Some(stop_tx),
                    },
                );
                tracing::info!(application = %name, ?start_type, "application started");
                Ok(())
            }
            Ok(Err(reason)) => Err(AppError::StartFailed(name, reason)),
            Err(_) => Err(AppError::StartFailed(name, self.wait_exit(master).await)),
        }
    }

    /// A running application's top supervisor
    /// (`application:get_supervisor/1`).
    pub fn application_supervisor(&self, name: impl LookupName) -> Option<SupRef> {
        let top = self.inner().apps.top(name.existing_atom()?)?;
        Some(SupRef::from_pid(self, top))
    }

    /// Starts an application after loading nothing but starting, in order,
    /// the dependencies that are not running yet
    /// (`application:ensure_all_started/2`). Returns the applications it
    /// started.
    pub async fn ensure_all_started(
        &self,
        name: impl Into<Atom>,
        start_type: StartType,
    ) -> Result<Vec<Atom>, AppError> {
        let mut started = Vec::new();
        let mut order = Vec::new();
        self.dependency_order(name.into(), &mut order, &mut Vec::new())?;
        for app in order {
            if !self.inner().apps.is_running(app) {
                self.start_application(app, start_type).await?;
                started.push(app);
            }
        }
        Ok(started)
    }

    fn dependency_order(
        &self,
        app: Atom,
        order: &mut Vec<Atom>,
        visiting: &mut Vec<Atom>,
    ) -> Result<(), AppError> {
        if order.contains(&app) || visiting.contains(&app) {
            return Ok(());
        }
        let deps = self.inner().apps.dependencies(app)?;
        visiting.push(app);
        for d in deps {
            self.dependency_order(d, order, visiting)?;
        }
        visiting.pop();
        order.push(app);
        Ok(())
    }

    /// Stops a running application (`application:stop/1`): its supervision
    /// tree is shut down; it stays loaded.
    pub async fn stop_application(&self, name: impl Into<Atom>) -> Result<(), AppError> {
        let name = name.into();
        let (master, stop) = {
            let mut r = self.inner().apps.take_running(name)?;
            (r.master, r.stop.take())
        };
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        self.wait_exit(master).await;
        tracing::info!(application = %name, "application stopped");
        Ok(())
    }

    /// Running applications, last started first (`which_applications/0`).
    pub fn which_applications(&self) -> Vec<AppInfo> {
        self.inner().apps.which()
    }

    /// How a running application was started.
    pub fn application_start_type(&self, name: impl LookupName) -> Option<StartType> {
        self.inner().apps.start_type(name.existing_atom()?)
    }

    /// Loaded applications (`loaded_applications/0`).
    pub fn loaded_applications(&self) -> Vec<AppInfo> {
        self.inner().apps.loaded()
    }

    /// An application's environment value (`application:get_env/2`).
    pub fn get_env(&self, app: impl LookupName, key: impl LookupName) -> Option<Term> {
        self.inner()
            .apps
            .get_env(app.existing_atom()?, key.existing_atom()?)
    }

    /// Sets an application's environment value (`application:set_env/3`).
    pub fn set_env(
        &self,
        app: impl Into<Atom>,
        key: impl Into<Atom>,
        value: impl ToTerm,
    ) -> Result<(), AppError> {
        self.inner()
            .apps
            .set_env(app.into(), key.into(), value.to_term())
    }

    /// The application whose master is `pid`.
    fn application_of_master(&self, pid: Pid) -> Option<Atom> {
        self.inner().apps.application_of_master(pid)
    }
}

impl AppSpec {
    fn info(&self) -> AppInfo {
        AppInfo {
            name: self.name,
            description: self.description.clone(),
            version: self.version.clone(),
        }
    }
}

impl Context {
    /// The application this process belongs to, found through its group
    /// leader (`application:get_application/0`).
    pub fn application(&self) -> Option<Atom> {
        self.node().application_of_master(self.group_leader()?)
    }

    /// A value from this process's application's environment
    /// (`application:get_env/1`).
    pub fn get_env(&self, key: impl LookupName) -> Option<Term> {
        let app = self.application()?;
        self.node().get_env(app, key)
    }
}

/// The application master: group leader of the application, parent of its
/// top supervisor.
async fn master(
    mut ctx: Context,
    node: Node,
    spec: AppSpec,
    start_type: StartType,
    ready: oneshot::Sender<Result<Pid, Reason>>,
    stop: oneshot::Receiver<()>,
) -> Reason {
    ctx.set_trap_exit(true);
    ctx.set_behaviour(|| crate::process::Behaviour {
        name: "application_master",
        module: "ergo::application",
    });
    let me = ctx.pid();
    ctx.set_group_leader(me);
    node.inner().apps.add_master(me, spec.name);
    let _entry = MasterEntry {
        node: node.clone(),
        pid: me,
    };
    let top = match ctx.start_supervisor_link((spec.supervisor)()).await {
        Ok(top) => top.pid(),
        Err(reason) => {
            let _ = ready.send(Err(reason.clone()));
            return reason;
        }
    };
    let _ = ready.send(Ok(top));
    // Wait for either a stop request or the top supervisor's end.
    let mut stop = stop;
    loop {
        tokio::select! {
            _ = &mut stop => {
                // Shut the tree down and wait for it.
                let mref = ctx.monitor(top);
                ctx.unlink(top);
                ctx.exit(top, Reason::Shutdown);
                ctx.receive_match(|m| m.as_down().is_some_and(|d| d.reference == mref)).await;
                return Reason::Normal;
            }
            m = ctx.receive() => {
                if let Message::Exit { from, reason } = m {
                    if from == top {
                        return top_exited(&node, spec.name, start_type, reason);
                    }
                    if from == node.system_pid() {
                        // The node is stopping: take the tree down in order.
                        let mref = ctx.monitor(top);
                        ctx.unlink(top);
                        ctx.exit(top, Reason::Shutdown);
                        ctx.receive_match(|m| m.as_down().is_some_and(|d| d.reference == mref)).await;
                        return Reason::Shutdown;
                    }
                }
            }
        }
    }
}

/// What an application's end brings about, as its start type says.
fn top_exited(node: &Node, app: Atom, start_type: StartType, reason: Reason) -> Reason {
    let _ = node.inner().apps.take_running(app);
    tracing::warn!(application = %app, %reason, ?start_type, "application exited");
    let stops_node = match start_type {
        StartType::Permanent => true,
        StartType::Transient => !reason.is_normal(),
        StartType::Temporary => false,
    };
    if stops_node && !node.is_stopping() {
        tracing::error!(application = %app, "a {start_type:?} application ended: stopping the node");
        let node = node.clone();
        node.runtime().clone().spawn(async move {
            node.stop(Duration::from_secs(5)).await;
        });
    }
    reason
}
