//! Environments: the slots of variables bound by `let`, `rec`, functions and `with`.
//!
//! `let` and `rec` make reference cycles (an environment holds thunks that hold the environment),
//! and so does an evaluated thunk whose value holds what holds it. Every environment and every
//! evaluated thunk is registered (weakly) with an [`EnvRegistry`]; when the evaluation ends the
//! registry empties those still alive, which breaks all such cycles so that everything is freed.

mod handle;

use std::cell::Cell;

pub use handle::{Env, EnvRef};
use handle::WeakEnvRef;

use crate::value::thunk::WeakThunk;
use crate::value::{Thunk, Value};

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

/// Weak handles, dropped from the list now and then once dead (when the list has doubled since
/// the last time, and has at least 4,096 entries).
struct WeakList<W> {
    items: Vec<W>,
    compact_at: usize,
}

impl<W> Default for WeakList<W> {
    fn default() -> WeakList<W> {
        WeakList { items: Vec::new(), compact_at: 0 }
    }
}

impl<W> WeakList<W> {
    /// Adds `weak`, first dropping the dead handles (`is_alive` says which live) when it is time.
    fn push(&mut self, weak: W, is_alive: impl Fn(&W) -> bool) {
        if self.items.len() >= self.compact_at.max(4096) {
            self.items.retain(is_alive);
            self.compact_at = self.items.len() * 2;
        }
        self.items.push(weak);
    }
}

/// Every environment, and every thunk evaluated, of one evaluation, so that their cycles can be
/// broken at the end (unless it does not track them: then their cycles live until the process
/// ends). Every reference cycle passes through an environment slot or an evaluated thunk, the
/// only cells written after they are made.
#[derive(Default)]
pub struct EnvRegistry {
    envs: WeakList<WeakEnvRef>,
    /// An evaluated thunk whose value holds what holds the thunk (`let s = { a = s; }; in s.a`,
    /// `builtins.builtins`) is a cycle no environment reaches.
    evaluated: WeakList<WeakThunk>,
    untracked: bool,
}

impl EnvRegistry {
    /// A registry; `track` says whether it keeps the environments it allocates and the thunks
    /// it is told were evaluated.
    pub fn new(track: bool) -> EnvRegistry {
        EnvRegistry { envs: WeakList::default(), evaluated: WeakList::default(), untracked: !track }
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

    /// Keeps a weak reference to `env`.
    #[inline(never)]
    fn track(&mut self, env: &EnvRef) {
        self.envs.push(env.downgrade(), WeakEnvRef::is_alive);
    }

    /// Notes that `thunk` was just evaluated: while tracking, its state is dropped when the
    /// registry is cleared.
    #[inline(always)]
    pub fn evaluated(&mut self, thunk: &Thunk) {
        if !self.untracked {
            self.track_evaluated(thunk);
        }
    }

    /// Keeps a weak handle to `thunk` (unless it has one already).
    #[inline(never)]
    fn track_evaluated(&mut self, thunk: &Thunk) {
        if let Some(weak) = thunk.downgrade() {
            self.evaluated.push(weak, WeakThunk::is_alive);
        }
    }

    /// Empties every evaluated thunk and environment still alive, breaking reference cycles.
    pub fn clear(&mut self) {
        let mut states = Vec::new();
        for weak in std::mem::take(&mut self.evaluated.items) {
            if let Some(thunk) = weak.upgrade() {
                states.push(thunk.take());
            }
        }
        drop(states);
        for weak in std::mem::take(&mut self.envs.items) {
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
