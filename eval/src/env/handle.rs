//! The memory of environments: one allocation per environment, a header followed by its slots,
//! behind a one-pointer handle with a 4-byte reference count.
//!
//! `Rc<Env>` with the slots in a separate box cost 64 bytes per environment plus a second
//! allocation for environments of two slots or more (`let`, `rec`, attribute-set patterns). Here
//! a one-slot environment (a call of `x: ...`, a `with`) takes 40 bytes and an environment of
//! `n` slots `24 + 16n`, in one allocation.
//!
//! Weak references ([`WeakEnvRef`]) exist for the [`super::EnvRegistry`] only, which breaks
//! reference cycles at the end of an evaluation: as with `std::rc::Weak`, the slots and the
//! parent are dropped with the last strong reference, and the memory is freed with the last
//! reference of either kind.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::value::rc::increment_count;
use crate::value::Value;

/// The slots of an environment are `u32`-counted; the top bit of that count is the `with` flag.
const WITH_FLAG: u32 = 1 << 31;

/// The number of slots recorded in a header's `len_and_with`.
#[inline(always)]
fn slot_count(len_and_with: u32) -> usize {
    (len_and_with & !WITH_FLAG) as usize
}

/// The header of an environment; its slots follow it in the same allocation. Only ever reached
/// through an [`EnvRef`] (fields are private to this module and [`super`]).
#[repr(C)]
pub struct Env {
    strong: Cell<u32>,
    weak: Cell<u32>,
    /// How many slots follow, with [`WITH_FLAG`] set for a `with` environment.
    len_and_with: u32,
    /// How many slots (from 0) hold their value already; `let` and `rec` fill them in order.
    pub(super) filled: Cell<u32>,
    /// The enclosing environment.
    parent: Option<EnvRef>,
}

// The slots start right after the header, aligned for a `Value`.
const _: () = assert!(std::mem::size_of::<Env>() == 24);
const _: () = assert!(std::mem::size_of::<Env>() % std::mem::align_of::<Cell<Value>>() == 0);

impl Env {
    /// The layout of an environment of `len` slots.
    fn layout(len: usize) -> Layout {
        // Cannot overflow: `len` fits in 31 bits, and 2^31 slots of 16 bytes fit in `isize`.
        Layout::from_size_align(
            std::mem::size_of::<Env>() + len * std::mem::size_of::<Cell<Value>>(),
            std::mem::align_of::<Env>().max(std::mem::align_of::<Cell<Value>>()),
        )
        .expect("an environment's layout is valid")
    }

    /// Whether this is a `with` environment (slot 0 holds the attribute set).
    #[inline(always)]
    pub fn is_with(&self) -> bool {
        self.len_and_with & WITH_FLAG != 0
    }

    /// The enclosing environment.
    #[inline(always)]
    pub fn parent(&self) -> Option<&EnvRef> {
        self.parent.as_ref()
    }
}

/// A shared reference to an environment (one pointer; cloning increments a 4-byte count).
pub struct EnvRef {
    ptr: NonNull<Env>,
    /// Owns an `Env`; neither `Send` nor `Sync` (the counts are plain cells).
    _owns: PhantomData<Env>,
}

impl EnvRef {
    /// Allocates an environment whose slots are `slots` (exactly `len` of them); `filled` of them
    /// count as set.
    #[allow(unsafe_code)] // Writes the header and slots into fresh memory of their layout.
    pub(super) fn new(
        len: usize,
        slots: impl IntoIterator<Item = Value>,
        parent: Option<EnvRef>,
        is_with: bool,
        filled: u32,
    ) -> EnvRef {
        let Some(len32) = u32::try_from(len).ok().filter(|l| l & WITH_FLAG == 0) else {
            panic!("an environment of {len} slots");
        };
        let (ptr, first) = allocate(len32, parent, is_with, filled);
        // SAFETY: exactly `len` slots are written before the handle is made (a short iterator
        // is padded with `null`, a long one cut).
        unsafe {
            let mut written = 0;
            for value in slots.into_iter().take(len) {
                first.add(written).write(Cell::new(value));
                written += 1;
            }
            for i in written..len {
                first.add(i).write(Cell::new(Value::Null));
            }
        }
        EnvRef { ptr, _owns: PhantomData }
    }

    /// Allocates an environment of one slot holding `value` (a call of `x: ...`, a `with`): the
    /// most frequent kind, written directly rather than through an iterator.
    #[inline]
    #[allow(unsafe_code)] // Writes the one slot `allocate` left.
    pub(super) fn new_one(value: Value, parent: Option<EnvRef>, is_with: bool) -> EnvRef {
        let (ptr, first) = allocate(1, parent, is_with, 1);
        // SAFETY: the allocation has room for one slot, written before the handle is made.
        unsafe { first.write(Cell::new(value)) };
        EnvRef { ptr, _owns: PhantomData }
    }

    /// The slots.
    #[inline(always)]
    #[allow(unsafe_code)] // The slots follow the header, written by `EnvRef::new`.
    pub(super) fn slots(&self) -> &[Cell<Value>] {
        // SAFETY: the allocation made by `new` holds `len` initialised slots right after the
        // header; they live while this strong handle does. The pointer is derived from the
        // allocation's own (not from a reference to the header, which would not cover them).
        unsafe {
            let first = self.ptr.as_ptr().add(1).cast::<Cell<Value>>();
            std::slice::from_raw_parts(first, slot_count(self.len_and_with))
        }
    }

    /// The environment `depth` levels up (0 is this one).
    #[inline]
    pub fn up(&self, depth: u32) -> Option<&EnvRef> {
        let mut env = self;
        for _ in 0..depth {
            env = env.parent.as_ref()?;
        }
        Some(env)
    }

    /// A weak reference to the same environment.
    pub(super) fn downgrade(&self) -> WeakEnvRef {
        increment_count(&self.weak);
        WeakEnvRef { ptr: self.ptr }
    }

    /// Whether two handles name the same environment.
    pub fn ptr_eq(a: &EnvRef, b: &EnvRef) -> bool {
        a.ptr == b.ptr
    }
}

/// Allocates an environment of `len` slots and writes its header; returns it and where its
/// slots start. The caller writes the `len` slots before making a handle of it.
#[inline(always)]
#[allow(unsafe_code)] // Writes the header into fresh memory of the environment's layout.
fn allocate(len: u32, parent: Option<EnvRef>, is_with: bool, filled: u32) -> (NonNull<Env>, *mut Cell<Value>) {
    let layout = Env::layout(len as usize);
    // SAFETY: the layout has a non-zero size (the header), and the header is written in full.
    unsafe {
        let raw = alloc(layout).cast::<Env>();
        let Some(ptr) = NonNull::new(raw) else { handle_alloc_error(layout) };
        raw.write(Env {
            strong: Cell::new(1),
            weak: Cell::new(0),
            len_and_with: len | if is_with { WITH_FLAG } else { 0 },
            filled: Cell::new(filled),
            parent,
        });
        (ptr, raw.add(1).cast::<Cell<Value>>())
    }
}

impl Deref for EnvRef {
    type Target = Env;
    #[inline(always)]
    #[allow(unsafe_code)]
    fn deref(&self) -> &Env {
        // SAFETY: a strong handle keeps the header and slots alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl Clone for EnvRef {
    #[inline(always)]
    fn clone(&self) -> EnvRef {
        increment_count(&self.strong);
        EnvRef { ptr: self.ptr, _owns: PhantomData }
    }
}

impl Drop for EnvRef {
    #[inline]
    fn drop(&mut self) {
        let strong = &self.strong;
        let n = strong.get() - 1;
        strong.set(n);
        if n == 0 {
            release(self.ptr);
        }
    }
}

/// Drops the slots and parent of an environment whose last strong handle went, and frees it
/// unless weak handles remain.
#[inline(never)]
#[allow(unsafe_code)]
fn release(ptr: NonNull<Env>) {
    // SAFETY: the strong count is zero, so nothing reads the slots or the parent again (weak
    // handles only look at the counts); each is dropped once, here. The memory stays until the
    // weak count is zero too.
    unsafe {
        let env = ptr.as_ptr();
        let len = slot_count((*env).len_and_with);
        let slots = std::ptr::slice_from_raw_parts_mut(env.add(1).cast::<Cell<Value>>(), len);
        std::ptr::drop_in_place(slots);
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*env).parent));
        if (*env).weak.get() == 0 {
            dealloc(env.cast(), Env::layout(len));
        }
    }
}

/// A weak reference to an environment: it keeps the memory of the header, not the slots.
pub(super) struct WeakEnvRef {
    ptr: NonNull<Env>,
}

impl WeakEnvRef {
    /// The strong count, which outlives the slots.
    #[allow(unsafe_code)]
    fn strong(&self) -> &Cell<u32> {
        // SAFETY: a weak handle keeps the allocation, and the counts in it, alive; only the
        // count is reached (through a raw pointer, not a reference to the whole header).
        unsafe { &*std::ptr::addr_of!((*self.ptr.as_ptr()).strong) }
    }

    /// Whether the environment is still alive.
    pub(super) fn is_alive(&self) -> bool {
        self.strong().get() > 0
    }

    /// A strong handle, if the environment is still alive.
    pub(super) fn upgrade(&self) -> Option<EnvRef> {
        if !self.is_alive() {
            return None;
        }
        increment_count(self.strong());
        Some(EnvRef { ptr: self.ptr, _owns: PhantomData })
    }
}

impl Drop for WeakEnvRef {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the allocation is alive while this handle is; the counts and the slot count
        // are read through raw pointers (the slots and parent may have been dropped). When no
        // handle of either kind is left, the memory is freed, once.
        unsafe {
            let env = self.ptr.as_ptr();
            let weak = &*std::ptr::addr_of!((*env).weak);
            let n = weak.get() - 1;
            weak.set(n);
            if n == 0 && !self.is_alive() {
                let len = slot_count(std::ptr::addr_of!((*env).len_and_with).read());
                dealloc(env.cast(), Env::layout(len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::expr::Expr;
    use crate::value::{Thunk, ThunkState, ValueRc};

    /// A string value and a handle to its box, to watch when a slot lets go of it.
    fn witness() -> (Value, ValueRc<crate::value::NixString>) {
        let s = ValueRc::new(crate::value::NixString::plain("w"));
        (Value::String(s.clone()), s)
    }

    #[test]
    fn slots_header_and_flags_are_as_made() {
        let parent = EnvRef::new(0, std::iter::empty(), None, false, 0);
        let env = EnvRef::new(3, [Value::Int(1), Value::Int(2)], Some(parent.clone()), true, 2);
        assert_eq!(env.slots().len(), 3);
        assert!(matches!(env.get(1), Some(Value::Int(2))));
        // A short iterator is padded with null; past the end there is no slot.
        assert!(matches!(env.get(2), Some(Value::Null)));
        assert!(env.get(3).is_none());
        assert!(env.get_filled(2).is_none());
        assert!(env.is_with() && !parent.is_with());
        assert!(EnvRef::ptr_eq(env.up(1).expect("a parent"), &parent));
        assert!(env.up(2).is_none());
        // A long iterator is cut.
        let cut = EnvRef::new(1, [Value::Int(1), Value::Int(2)], None, false, 1);
        assert_eq!(cut.slots().len(), 1);
    }

    #[test]
    fn the_last_strong_handle_drops_slots_and_parent_even_with_a_weak_one_left() {
        let (value, watched) = witness();
        let parent = EnvRef::new(1, [value.clone()], None, false, 1);
        let env = EnvRef::new(2, [value, Value::Null], Some(parent), false, 2);
        assert_eq!(ValueRc::strong_count(&watched), 3);
        let weak = env.downgrade();
        let again = env.clone();
        drop(env);
        assert_eq!(ValueRc::strong_count(&watched), 3, "a clone keeps everything");
        drop(again);
        assert_eq!(ValueRc::strong_count(&watched), 1, "slots and parent dropped");
        assert!(!weak.is_alive());
        assert!(weak.upgrade().is_none());
        drop(weak);
    }

    #[test]
    fn a_weak_handle_upgrades_while_the_environment_lives() {
        let (value, watched) = witness();
        let env = EnvRef::new(1, [value], None, false, 1);
        let weak = env.downgrade();
        let strong = weak.upgrade().expect("alive");
        drop(env);
        assert!(weak.is_alive());
        drop(weak);
        assert!(matches!(strong.get(0), Some(Value::String(_))));
        drop(strong);
        assert_eq!(ValueRc::strong_count(&watched), 1);
    }

    #[test]
    fn the_registry_breaks_a_cycle_through_a_thunk() {
        let (value, watched) = witness();
        let mut envs = super::super::EnvRegistry::new(true);
        let env = envs.alloc_unfilled(2, None);
        env.set(0, value);
        // Slot 1 holds a thunk that holds the environment: a cycle, as `rec` and `let` make.
        let code: crate::expr::ExprRef = Rc::new(Expr::Const(Value::Null));
        env.set(1, Thunk::value_of(ThunkState::Suspended(code, env.clone())));
        drop(env);
        assert_eq!(ValueRc::strong_count(&watched), 2, "the cycle keeps the slot");
        envs.clear();
        assert_eq!(ValueRc::strong_count(&watched), 1, "clearing freed it");
    }

    #[test]
    fn untracked_environments_are_freed_with_their_last_handle() {
        let (value, watched) = witness();
        let mut envs = super::super::EnvRegistry::new(false);
        let env = envs.alloc(smallvec::smallvec![value, Value::Int(1)], None, false);
        drop(env);
        assert_eq!(ValueRc::strong_count(&watched), 1);
    }
}
