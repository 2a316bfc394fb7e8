//! The application controller: the node's record of its applications,
//! loaded and running, as OTP's `application_controller` keeps it. Every
//! question about applications and every change to the record goes through
//! here, each under one lock, so that a check and the change it allows
//! cannot be split by another request (two starts of one application at
//! once start it once).
//!
//! It records; it does not run anything. Starting and stopping (the
//! application master and its top supervisor) is the application module's
//! work, which asks the controller before and tells it after.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use ergo_etf::{Atom, Pid, Term};

use super::{AppError, AppInfo, AppSpec, StartType};
use crate::reason::Reason;

/// A loaded application and its environment.
struct Loaded {
    spec: AppSpec,
    env: FxHashMap<Atom, Term>,
}

/// A running application.
pub(super) struct Running {
    pub(super) master: Pid,
    pub(super) top: Pid,
    pub(super) start_type: StartType,
    pub(super) stop: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Registry {
    loaded: FxHashMap<Atom, Loaded>,
    /// In start order.
    running: Vec<(Atom, Running)>,
    /// Application masters (from their first moment, before the top
    /// supervisor starts, so that its processes find their application
    /// during their `init`).
    masters: FxHashMap<Pid, Atom>,
    /// Applications being started, with the requests that came for them
    /// meanwhile: each gets the first start's result, as OTP's application
    /// controller answers a start that is already under way.
    starting: FxHashMap<Atom, Vec<oneshot::Sender<Result<(), AppError>>>>,
}

/// What a start request may do.
pub(super) enum Claim {
    /// Start it: the spec to start.
    Start(AppSpec),
    /// Another request is starting it: its result comes here.
    UnderWay(oneshot::Receiver<Result<(), AppError>>),
}

/// A node's application controller.
#[derive(Default)]
pub(crate) struct Controller {
    reg: Mutex<Registry>,
}

impl Controller {
    pub(super) fn load(&self, spec: AppSpec) -> Result<(), AppError> {
        let mut reg = self.reg.lock();
        if reg.loaded.contains_key(&spec.name) {
            return Err(AppError::AlreadyLoaded(spec.name));
        }
        let env = spec.env.iter().cloned().collect();
        reg.loaded.insert(spec.name, Loaded { spec, env });
        Ok(())
    }

    pub(super) fn unload(&self, name: Atom) -> Result<(), AppError> {
        let mut reg = self.reg.lock();
        if reg.running.iter().any(|(n, _)| *n == name) || reg.starting.contains_key(&name) {
            return Err(AppError::Running(name));
        }
        reg.loaded
            .remove(&name)
            .map(drop)
            .ok_or(AppError::NotLoaded(name))
    }

    /// Checks that `name` may start (loaded, not running, dependencies
    /// running) and claims it, in one step.
    pub(super) fn claim(&self, name: Atom) -> Result<Claim, AppError> {
        let mut reg = self.reg.lock();
        let loaded = reg.loaded.get(&name).ok_or(AppError::NotLoaded(name))?;
        if reg.running.iter().any(|(n, _)| *n == name) {
            return Err(AppError::AlreadyStarted(name));
        }
        for dep in &loaded.spec.applications {
            if !reg.running.iter().any(|(n, _)| n == dep) {
                return Err(AppError::NotStarted(*dep));
            }
        }
        let spec = loaded.spec.clone();
        if let Some(waiting) = reg.starting.get_mut(&name) {
            let (tx, rx) = oneshot::channel();
            waiting.push(tx);
            return Ok(Claim::UnderWay(rx));
        }
        reg.starting.insert(name, Vec::new());
        Ok(Claim::Start(spec))
    }

    /// A claimed start ended with `result` (running already recorded when
    /// it succeeded): the requests that waited for it get the same.
    pub(super) fn started(&self, name: Atom, result: Option<Result<(), AppError>>) {
        let waiting = self.reg.lock().starting.remove(&name).unwrap_or_default();
        let result = result.unwrap_or(Err(AppError::StartFailed(name, Reason::Killed)));
        for w in waiting {
            let _ = w.send(result.clone());
        }
    }

    pub(super) fn add_running(&self, name: Atom, running: Running) {
        self.reg.lock().running.push((name, running));
    }

    /// Takes a running application out of the record, for stopping.
    pub(super) fn take_running(&self, name: Atom) -> Result<Running, AppError> {
        let mut reg = self.reg.lock();
        let i = reg
            .running
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or(AppError::NotRunning(name))?;
        Ok(reg.running.remove(i).1)
    }

    pub(super) fn is_running(&self, name: Atom) -> bool {
        self.reg.lock().running.iter().any(|(n, _)| *n == name)
    }

    pub(super) fn top(&self, name: Atom) -> Option<Pid> {
        let reg = self.reg.lock();
        reg.running
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r.top)
    }

    pub(super) fn start_type(&self, name: Atom) -> Option<StartType> {
        let reg = self.reg.lock();
        reg.running
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r.start_type)
    }

    pub(super) fn dependencies(&self, name: Atom) -> Result<Vec<Atom>, AppError> {
        let reg = self.reg.lock();
        let loaded = reg.loaded.get(&name).ok_or(AppError::NotLoaded(name))?;
        Ok(loaded.spec.applications.clone())
    }

    /// Running applications, last started first.
    pub(super) fn which(&self) -> Vec<AppInfo> {
        let reg = self.reg.lock();
        reg.running
            .iter()
            .rev()
            .filter_map(|(n, _)| reg.loaded.get(n).map(|l| l.spec.info()))
            .collect()
    }

    pub(super) fn loaded(&self) -> Vec<AppInfo> {
        let reg = self.reg.lock();
        let mut v: Vec<AppInfo> = reg.loaded.values().map(|l| l.spec.info()).collect();
        v.sort_by_key(|a| a.name);
        v
    }

    pub(super) fn get_env(&self, app: Atom, key: Atom) -> Option<Term> {
        self.reg.lock().loaded.get(&app)?.env.get(&key).cloned()
    }

    pub(super) fn set_env(&self, app: Atom, key: Atom, value: Term) -> Result<(), AppError> {
        let mut reg = self.reg.lock();
        let loaded = reg.loaded.get_mut(&app).ok_or(AppError::NotLoaded(app))?;
        loaded.env.insert(key, value);
        Ok(())
    }

    pub(super) fn add_master(&self, pid: Pid, app: Atom) {
        self.reg.lock().masters.insert(pid, app);
    }

    pub(super) fn remove_master(&self, pid: Pid) {
        self.reg.lock().masters.remove(&pid);
    }

    /// The application whose master is `pid`.
    pub(super) fn application_of_master(&self, pid: Pid) -> Option<Atom> {
        self.reg.lock().masters.get(&pid).copied()
    }
}
