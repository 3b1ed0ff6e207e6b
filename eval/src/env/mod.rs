//! Environments: the slots of variables bound by `let`, `rec`, functions and `with`.
//!
//! `let` and `rec` make reference cycles (an environment holds thunks that hold the environment).
//! Every environment is registered (weakly) with an [`EnvRegistry`]; when the evaluation ends the
//! registry empties the slots of every environment still alive, which breaks all such cycles so
//! that everything is freed.

mod handle;

use std::cell::Cell;

pub use handle::{Env, EnvRef};
use handle::WeakEnvRef;

use crate::value::Value;

/// The values an environment is made with. Most environments are calls of functions `x: ...` or
/// `with`, one slot each.
pub type EnvSlots = smallvec::SmallVec<[Value; 1]>;

impl EnvRef {
    /// The cell of `slot`, if it exists.
    #[inline(always)]
    fn cell(&self, slot: u32) -> Option<&Cell<Value>> {
        self.slots().get(slot as usize)
    }

    /// The value in `slot`, if it exists.
    #[inline]
    #[allow(unsafe_code)] // One read in place, justified below.
    pub fn get(&self, slot: u32) -> Option<Value> {
        let cell = self.cell(slot)?;
        // SAFETY: the shared reference lives only while the value is cloned, and nothing writes
        // to the slot meanwhile: an environment stays on its thread (`Cell` is not `Sync`), and
        // cloning a `Value` (derived `Clone` over `Rc`s) only increments a reference count.
        Some(unsafe { &*cell.as_ptr() }.clone())
    }

    /// The value in `slot` when it is not a thunk or a thunk already evaluated (its value),
    /// without touching reference counts but the result's.
    #[inline]
    #[allow(unsafe_code)] // One read in place, justified below.
    pub fn get_evaluated(&self, slot: u32) -> Option<Value> {
        let cell = self.cell(slot)?;
        // SAFETY: as in `get`; `Thunk::evaluated` only reads the thunk and clones its value.
        match unsafe { &*cell.as_ptr() } {
            Value::Thunk(t) => t.evaluated(),
            other => Some(other.clone()),
        }
    }

    /// Puts `value`, what the thunk in `slot` evaluated to, in place of that thunk (if the slot
    /// still holds it): later reads need not go through the thunk, and the thunk is freed when
    /// nothing else holds it.
    #[inline]
    pub fn replace_evaluated(&self, slot: u32, thunk: &crate::value::Thunk, value: Value) {
        if let Some(cell) = self.cell(slot) {
            let old = cell.replace(value);
            match &old {
                Value::Thunk(t) if crate::value::Thunk::ptr_eq(t, thunk) => drop(old),
                // Not the thunk (a slot set meanwhile): put back what was there.
                _ => drop(cell.replace(old)),
            }
        }
    }

    /// Sets `slot`.
    pub fn set(&self, slot: u32, value: Value) {
        if let Some(s) = self.cell(slot) {
            // The old value is dropped after the slot holds the new one.
            drop(s.replace(value));
        }
        if slot >= self.filled.get() {
            self.filled.set(slot + 1);
        }
    }

    /// The value in `slot` if it has been set.
    pub fn get_filled(&self, slot: u32) -> Option<Value> {
        if slot < self.filled.get() {
            self.get(slot)
        } else {
            None
        }
    }
}

/// Every environment of one evaluation, so that their cycles can be broken at the end (unless
/// it does not track them: then their cycles live until the process ends).
#[derive(Default)]
pub struct EnvRegistry {
    envs: Vec<WeakEnvRef>,
    /// Thunks whose state is dropped at the end too: cycles that do not pass through an
    /// environment once the thunk is evaluated (`builtins.builtins` holds `builtins`).
    thunks: Vec<crate::value::Thunk>,
    /// Every thunk evaluated while tracking, weakly: an evaluated thunk whose value holds what
    /// holds the thunk (`let s = { a = s; }; in s.a`) is a cycle no environment reaches.
    evaluated: Vec<crate::value::thunk::WeakThunk>,
    evaluated_compact_at: usize,
    compact_at: usize,
    untracked: bool,
}

impl EnvRegistry {
    /// A registry; `track` says whether it keeps the environments it allocates.
    pub fn new(track: bool) -> EnvRegistry {
        EnvRegistry {
            envs: Vec::new(),
            thunks: Vec::new(),
            evaluated: Vec::new(),
            evaluated_compact_at: 0,
            compact_at: 0,
            untracked: !track,
        }
    }

    /// Allocates and registers an environment of `count` slots to be set in order (`let`, `rec`).
    pub fn alloc_unfilled(&mut self, count: usize, parent: Option<EnvRef>) -> EnvRef {
        self.register(EnvRef::new(count, std::iter::empty(), parent, false, 0))
    }

    /// Allocates and registers an environment whose slots are all set.
    pub fn alloc(&mut self, slots: EnvSlots, parent: Option<EnvRef>, is_with: bool) -> EnvRef {
        let len = slots.len();
        self.register(EnvRef::new(len, slots, parent, is_with, len as u32))
    }

    /// Allocates and registers an environment of one slot holding `value` (a call of `x: ...`,
    /// a `with`).
    #[inline]
    pub fn alloc_one(&mut self, value: Value, parent: Option<EnvRef>, is_with: bool) -> EnvRef {
        self.register(EnvRef::new_one(value, parent, is_with))
    }

    #[inline(always)]
    fn register(&mut self, env: EnvRef) -> EnvRef {
        if !self.untracked {
            self.track(&env);
        }
        env
    }

    /// Keeps a weak reference to `env` (compacting the list now and then).
    #[inline(never)]
    fn track(&mut self, env: &EnvRef) {
        if self.envs.len() >= self.compact_at.max(4096) {
            self.envs.retain(|w| w.is_alive());
            self.compact_at = self.envs.len() * 2;
        }
        self.envs.push(env.downgrade());
    }

    /// Whether it keeps the environments (and evaluated thunks) it is given.
    #[inline(always)]
    pub fn tracks(&self) -> bool {
        !self.untracked
    }

    /// Keeps a weak handle to an evaluated thunk, whose state is dropped when the registry is
    /// cleared (compacting the list now and then). Only while tracking.
    #[inline(never)]
    pub fn track_evaluated(&mut self, thunk: &crate::value::Thunk) {
        if self.untracked {
            return;
        }
        if self.evaluated.len() >= self.evaluated_compact_at.max(4096) {
            self.evaluated.retain(|w| w.is_alive());
            self.evaluated_compact_at = self.evaluated.len() * 2;
        }
        if let Some(weak) = thunk.downgrade() {
            self.evaluated.push(weak);
        }
    }

    /// Has the state of `thunk` dropped when the registry is cleared (when it tracks).
    pub fn clear_at_end(&mut self, thunk: &crate::value::Thunk) {
        if !self.untracked {
            self.thunks.push(thunk.clone());
        }
    }

    /// Empties every environment still alive, and the thunks given to [`Self::clear_at_end`],
    /// breaking reference cycles.
    pub fn clear(&mut self) {
        for thunk in std::mem::take(&mut self.thunks) {
            drop(thunk.take());
        }
        let mut states = Vec::new();
        for weak in std::mem::take(&mut self.evaluated) {
            if let Some(thunk) = weak.upgrade() {
                states.push(thunk.take());
            }
        }
        drop(states);
        for weak in std::mem::take(&mut self.envs) {
            if let Some(env) = weak.upgrade() {
                let slots: Vec<Value> = env.slots().iter().map(|s| s.replace(Value::Null)).collect();
                drop(env);
                drop(slots);
            }
        }
    }
}

impl Drop for EnvRegistry {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Thunk, ThunkState};

    fn thunk_of(v: Value) -> Thunk {
        Thunk::new(ThunkState::Done(v))
    }

    #[test]
    fn an_evaluated_thunk_gives_way_to_its_value_and_is_freed() {
        let mut envs = EnvRegistry::new(false);
        let t = thunk_of(Value::Int(7));
        let env = envs.alloc_one(Value::Thunk(t.clone()), None, false);
        env.replace_evaluated(0, &t, Value::Int(7));
        assert!(matches!(env.get(0), Some(Value::Int(7))));
        // The slot let go of the thunk: only this test holds it.
        assert_eq!(Thunk::strong_count(&t), 1);
    }

    #[test]
    fn a_slot_holding_something_else_is_left_alone() {
        let mut envs = EnvRegistry::new(false);
        let in_slot = thunk_of(Value::Int(1));
        let other = thunk_of(Value::Int(2));
        let env = envs.alloc_one(Value::Thunk(in_slot.clone()), None, false);
        env.replace_evaluated(0, &other, Value::Int(2));
        match env.get(0) {
            Some(Value::Thunk(t)) => assert!(Thunk::ptr_eq(&t, &in_slot)),
            other => panic!("slot changed to {other:?}"),
        }
        // A slot that does not exist is no error either.
        env.replace_evaluated(5, &in_slot, Value::Null);
    }
}
