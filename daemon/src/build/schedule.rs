//! Scheduling a request's derivation graph: job slots (`max-jobs`), each derivation handled
//! once per request (a thread asking for one another thread handles waits for its result),
//! independent goals (input derivations, requested targets) on threads of their own when the
//! request's `max-jobs` is above 1, and the end of a request without `keep-going`.
//!
//! Budget: as Nix's daemon, a request may run as many builds at once as its client's `max-jobs`
//! (its `SetOptions`; the daemon's `max-jobs` until then). One process serves every client
//! here, so casnix's `casnix-max-jobs-total` can cap all clients' builds together
//! ([`daemon_slots`]; no cap by default, as Nix has none). A slot is held while the builder runs and its outputs are
//! registered, never while waiting for inputs or output locks, so waiting for a slot cannot
//! deadlock.

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

use nix_formats::build_result::BuildResult;
use nix_formats::derived_path::DerivedPath;
use nix_formats::store_path::StorePath;

use super::{BuildFailure, Built, Builder};

/// Nix 2.26's worker error when something must be built and `max-jobs` is 0 (no remote
/// builders here), its indentation included.
pub const NO_LOCAL_BUILDS: &str = "\n                    Unable to start any build;\n                    either increase '--max-jobs' or enable remote builds.\n\n                    For more information run 'man nix.conf' and search for '/machines'.\n                    ";

/// The result of one derivation in a request, set once by the thread that handles it.
pub(super) type Outcome = Arc<OnceLock<Result<Built, BuildFailure>>>;

/// A counting semaphore: at most `capacity` holders at once (the capacity can change; a
/// capacity of 0 is taken as 1).
#[derive(Debug)]
pub struct JobSlots {
    /// (slots in use, capacity).
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

/// A held job slot, given back when dropped.
#[derive(Debug)]
pub struct JobSlot<'a>(&'a JobSlots);

impl JobSlots {
    /// A pool of `capacity` slots.
    pub const fn new(capacity: usize) -> Self {
        Self { state: Mutex::new((0, capacity)), freed: Condvar::new() }
    }

    /// Changes the number of slots (for acquisitions from now on).
    pub fn set_capacity(&self, capacity: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 = capacity;
        self.freed.notify_all();
    }

    /// Waits for a free slot and takes it.
    pub fn acquire(&self) -> JobSlot<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.0 >= state.1.max(1) {
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.0 += 1;
        JobSlot(self)
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

impl Drop for JobSlot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = state.0.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

/// The daemon's job slots, shared by every client (sized by `casnix-max-jobs-total`).
pub fn daemon_slots() -> &'static JobSlots {
    static SLOTS: JobSlots = JobSlots::new(1);
    &SLOTS
}

/// Nix's goal key: substitutions (`a$`) before derivations (`b$`), derivations by name.
pub fn goal_key(target: &DerivedPath) -> (u8, String, String) {
    match target {
        DerivedPath::Opaque(p) => (0, p.name().to_owned(), p.to_string()),
        DerivedPath::Built { drv_path, .. } => {
            let p = drv_path.base_store_path();
            (1, p.name().to_owned(), p.to_string())
        }
    }
}

/// Both job slots of a running build (the request's and the daemon's).
pub(super) struct HeldSlots<'a> {
    _daemon: JobSlot<'static>,
    _request: JobSlot<'a>,
}

impl Builder<'_> {
    /// Builds `drv_path` if any output is missing, its inputs first; once per request.
    pub fn build_derivation(&self, drv_path: &StorePath) -> Result<Built, BuildFailure> {
        let outcome = {
            let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(done.entry(drv_path.clone()).or_default())
        };
        // Derivation graphs have no cycles (paths are hashes of their inputs), so no thread
        // waits here for a result its own walk would give.
        outcome.get_or_init(|| self.build_uncached(drv_path)).clone()
    }

    /// The result of `drv_path` if this request has finished it.
    pub(super) fn finished(&self, drv_path: &StorePath) -> Option<Result<Built, BuildFailure>> {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        done.get(drv_path).and_then(|o| o.get().cloned())
    }

    /// Whether a failure has ended the request (without `keep-going`; the backends then kill
    /// the request's running builders).
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.is_cancelled()
    }

    /// Waits for a job slot of the request and of the daemon. With `max-jobs = 0` nothing is
    /// built: Nix's error for the whole request.
    pub(super) fn job_slot(&self) -> Result<HeldSlots<'_>, BuildFailure> {
        if self.settings.max_jobs == 0 {
            self.stopped.cancel();
            return Err(BuildFailure::misc(NO_LOCAL_BUILDS));
        }
        let request = self.request_slots.acquire();
        let daemon = daemon_slots().acquire();
        if self.is_stopped() {
            return Err(BuildFailure::cancelled());
        }
        Ok(HeldSlots { _daemon: daemon, _request: request })
    }

    /// Runs `work` for each goal of `goals` and gives the results in their order: one after
    /// the other (stopping at a failure without `keep-going`, the rest cancelled) or, when the
    /// request's `max-jobs` is above 1, each on a thread of its own.
    pub(super) fn for_each_goal<T, R>(&self, goals: &[T], work: impl Fn(&T) -> Result<R, BuildFailure> + Sync) -> Vec<Result<R, BuildFailure>>
    where
        T: Sync,
        R: Send,
    {
        let run = |goal: &T| {
            if self.is_stopped() {
                return Err(BuildFailure::cancelled());
            }
            let result = work(goal);
            if let Err(e) = &result {
                if !e.is_cancelled() && !self.settings.keep_going {
                    self.stopped.cancel();
                }
            }
            result
        };
        if self.settings.max_jobs <= 1 || goals.len() <= 1 {
            return goals.iter().map(run).collect();
        }
        std::thread::scope(|scope| {
            let run = &run;
            let threads: Vec<_> = goals
                .iter()
                .map(|goal| std::thread::Builder::new().name("casnix-goal".into()).spawn_scoped(scope, move || run(goal)).map_err(|e| (goal, e)))
                .collect();
            threads
                .into_iter()
                .map(|thread| match thread {
                    Ok(handle) => handle.join().unwrap_or_else(|_| Err(BuildFailure::misc("a build thread panicked"))),
                    // No thread to be had: handled here instead.
                    Err((goal, e)) => {
                        tracing::warn!("starting a build thread: {e}");
                        run(goal)
                    }
                })
                .collect()
        })
    }

    /// Realises every target (in Nix's goal order, in parallel as `max-jobs` allows); the
    /// results are in the targets' order. Without `keep-going` the first failure cancels what
    /// has not started and kills the builders still running.
    pub fn realise_all(&self, targets: &[DerivedPath]) -> Vec<Result<BuildResult, BuildFailure>> {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by_key(|&i| goal_key(&targets[i]));
        let results = self.for_each_goal(&order, |&i| self.realise(&targets[i]));
        let mut by_target: Vec<Option<Result<BuildResult, BuildFailure>>> = vec![None; targets.len()];
        for (i, result) in order.into_iter().zip(results) {
            by_target[i] = Some(result);
        }
        by_target.into_iter().map(|r| r.unwrap_or_else(|| Err(BuildFailure::cancelled()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_limit_holders_and_come_back() {
        let slots = JobSlots::new(2);
        let a = slots.acquire();
        let b = slots.acquire();
        assert_eq!(slots.in_use(), 2);
        drop(a);
        let c = slots.acquire();
        assert_eq!(slots.in_use(), 2);
        drop((b, c));
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_waiting_acquirer_gets_a_freed_slot() {
        let slots = JobSlots::new(1);
        let held = slots.acquire();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let _slot = slots.acquire();
                slots.in_use()
            });
            drop(held);
            assert_eq!(waiter.join().unwrap(), 1);
        });
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn raising_the_capacity_wakes_waiters() {
        let slots = JobSlots::new(1);
        let _held = slots.acquire();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| drop(slots.acquire()));
            slots.set_capacity(2);
            waiter.join().unwrap();
        });
    }
}
