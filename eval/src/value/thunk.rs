//! Thunks: suspended computations, replaced by their result once forced.
//!
//! A thunk is the evaluator's most numerous object, so its memory is laid out by hand: one
//! allocation of 24 bytes holding the reference count (4 bytes), the state's tag (1 byte), a
//! flag for the one weak handle the environment registry may hold, and the state's two words. As `ValueRc<Cell<ThunkState>>` it took 32 bytes: the count had a word
//! of its own and the enum's tag another.
//!
//! [`ThunkState`] is the unpacked form: the state is taken out ([`Thunk::take`], leaving
//! `Blackhole`) while it is looked at or evaluated, and put back ([`Thunk::put`]).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::{Closure, Value, ValueRc};
use crate::env::EnvRef;
use crate::expr::ExprRef;
use crate::symbol::Symbol;

/// What a thunk holds.
pub enum ThunkState {
    /// An expression to evaluate in an environment.
    Suspended(ExprRef, EnvRef),
    /// A function application to perform (function, argument). Boxed, as the selection below,
    /// so that the state fits in two words: most thunks are `Suspended` or `Done`.
    Apply(Box<(Value, Value)>),
    /// A function applied to two arguments (`mapAttrs`' `f name value`): one thunk, not two.
    Apply2(Box<(Value, Value, Value)>),
    /// A function applied to an integer (`genList`'s elements): the closure and the integer fit
    /// in the thunk, so no box is allocated (a million-element `genList` allocated a million).
    ApplyInt(ValueRc<Closure>, i64),
    /// Selection of an attribute from a value (used by builtins building lazy results).
    Select(Box<(Value, Symbol)>),
    /// Being evaluated right now: needing it again is infinite recursion.
    Blackhole,
    /// Evaluated.
    Done(Value),
}

/// The tags of the packed states.
mod tag {
    pub const SUSPENDED: u8 = 0;
    pub const APPLY: u8 = 1;
    pub const APPLY2: u8 = 2;
    pub const APPLY_INT: u8 = 3;
    pub const SELECT: u8 = 4;
    pub const BLACKHOLE: u8 = 5;
    pub const DONE: u8 = 6;
}

/// Two words, where a packed state's fields live.
type Payload = MaybeUninit<[u64; 2]>;

// Every state's fields fit in the payload and need no more than its alignment.
const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<(ExprRef, EnvRef)>() <= size_of::<Payload>());
    assert!(size_of::<(ValueRc<Closure>, i64)>() <= size_of::<Payload>());
    assert!(size_of::<Value>() <= size_of::<Payload>());
    assert!(align_of::<(ExprRef, EnvRef)>() <= align_of::<Payload>());
    assert!(align_of::<(ValueRc<Closure>, i64)>() <= align_of::<Payload>());
    assert!(align_of::<Value>() <= align_of::<Payload>());
    assert!(size_of::<ThunkCell>() == 24);
};

/// The allocation behind a [`Thunk`].
#[repr(C)]
struct ThunkCell {
    count: std::cell::Cell<u32>,
    /// Which state the payload holds (`tag::*`).
    tag: std::cell::Cell<u8>,
    /// Whether a [`WeakThunk`] exists (at most one: the environment registry's). The memory
    /// then stays after the last strong handle goes, until the weak one goes too.
    weak: std::cell::Cell<bool>,
    payload: UnsafeCell<Payload>,
}

/// A shared thunk (one pointer; cloning increments a 4-byte count).
pub struct Thunk {
    ptr: NonNull<ThunkCell>,
    /// Owns a thunk; neither `Send` nor `Sync` (the count is a plain cell).
    _owns: PhantomData<ThunkCell>,
}

/// What a thunk holds, seen from outside the evaluator.
pub enum ThunkView {
    /// Evaluated to this value.
    Done(Value),
    /// Being evaluated.
    Blackhole,
    /// Not evaluated yet.
    Pending,
}

/// Moves `state`'s fields into `payload`; returns its tag.
///
/// # Safety
/// `payload` must be valid for writes and hold nothing that needs dropping.
#[allow(unsafe_code)]
unsafe fn pack(state: ThunkState, payload: *mut Payload) -> u8 {
    match state {
        ThunkState::Suspended(e, env) => {
            payload.cast::<(ExprRef, EnvRef)>().write((e, env));
            tag::SUSPENDED
        }
        ThunkState::Apply(b) => {
            payload.cast::<Box<(Value, Value)>>().write(b);
            tag::APPLY
        }
        ThunkState::Apply2(b) => {
            payload.cast::<Box<(Value, Value, Value)>>().write(b);
            tag::APPLY2
        }
        ThunkState::ApplyInt(f, i) => {
            payload.cast::<(ValueRc<Closure>, i64)>().write((f, i));
            tag::APPLY_INT
        }
        ThunkState::Select(b) => {
            payload.cast::<Box<(Value, Symbol)>>().write(b);
            tag::SELECT
        }
        ThunkState::Blackhole => tag::BLACKHOLE,
        ThunkState::Done(v) => {
            payload.cast::<Value>().write(v);
            tag::DONE
        }
    }
}

/// Moves the fields of a packed state with `tag` out of `payload`.
///
/// # Safety
/// `payload` must hold a state packed with `tag` by [`pack`]; afterwards it holds nothing (its
/// fields belong to the result).
#[allow(unsafe_code)]
unsafe fn unpack(tag: u8, payload: *const Payload) -> ThunkState {
    match tag {
        tag::SUSPENDED => {
            let (e, env) = payload.cast::<(ExprRef, EnvRef)>().read();
            ThunkState::Suspended(e, env)
        }
        tag::APPLY => ThunkState::Apply(payload.cast::<Box<(Value, Value)>>().read()),
        tag::APPLY2 => ThunkState::Apply2(payload.cast::<Box<(Value, Value, Value)>>().read()),
        tag::APPLY_INT => {
            let (f, i) = payload.cast::<(ValueRc<Closure>, i64)>().read();
            ThunkState::ApplyInt(f, i)
        }
        tag::SELECT => ThunkState::Select(payload.cast::<Box<(Value, Symbol)>>().read()),
        tag::DONE => ThunkState::Done(payload.cast::<Value>().read()),
        _ => ThunkState::Blackhole,
    }
}

impl Thunk {
    /// A thunk in `state`.
    #[allow(unsafe_code)] // Writes a fresh allocation of the cell's layout.
    pub fn new(state: ThunkState) -> Thunk {
        let layout = Layout::new::<ThunkCell>();
        // SAFETY: the layout is not zero-sized; count, tag and payload are all written before
        // the pointer escapes.
        unsafe {
            let raw = alloc(layout).cast::<ThunkCell>();
            let Some(ptr) = NonNull::new(raw) else { handle_alloc_error(layout) };
            let tag = pack(state, UnsafeCell::raw_get(std::ptr::addr_of!((*raw).payload)));
            std::ptr::addr_of_mut!((*raw).count).write(std::cell::Cell::new(1));
            std::ptr::addr_of_mut!((*raw).tag).write(std::cell::Cell::new(tag));
            std::ptr::addr_of_mut!((*raw).weak).write(std::cell::Cell::new(false));
            Thunk { ptr, _owns: PhantomData }
        }
    }

    /// A shared thunk in `state`, as a value.
    #[inline]
    pub fn value_of(state: ThunkState) -> Value {
        Value::Thunk(Thunk::new(state))
    }

    #[inline(always)]
    fn cell(&self) -> &ThunkCell {
        // SAFETY: a handle keeps its cell alive.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }

    /// Takes the state out, leaving `Blackhole` (the evaluator puts a state back).
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn take(&self) -> ThunkState {
        let cell = self.cell();
        let tag = cell.tag.replace(tag::BLACKHOLE);
        // SAFETY: the payload held the state of `tag`; with the tag now `Blackhole`, nothing
        // reads or drops those fields again: they are moved into the result.
        unsafe { unpack(tag, cell.payload.get()) }
    }

    /// Puts a state back in place of the `Blackhole` that [`Thunk::take`] left.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn put(&self, state: ThunkState) {
        let cell = self.cell();
        debug_assert_eq!(cell.tag.get(), tag::BLACKHOLE);
        // SAFETY: a `Blackhole` payload holds nothing, so nothing is overwritten unseen; no
        // reference into the payload is alive (`evaluated` reads only while cloning).
        let tag = unsafe { pack(state, cell.payload.get()) };
        cell.tag.set(tag);
    }

    /// Its value if it has been evaluated.
    #[inline]
    #[allow(unsafe_code)] // One read in place, justified below.
    pub fn evaluated(&self) -> Option<Value> {
        let cell = self.cell();
        if cell.tag.get() != tag::DONE {
            return None;
        }
        // Read in place, not taken out and put back (reading variables is the evaluator's most
        // frequent operation).
        // SAFETY: a `Done` payload holds a `Value`. The shared reference lives only while the
        // value is cloned, and nothing writes to the thunk meanwhile: a thunk stays on its
        // thread, and cloning a `Value` only increments a reference count, running no code that
        // could reach this thunk.
        Some(unsafe { &*cell.payload.get().cast::<Value>() }.clone())
    }

    /// Whether it has been evaluated, and to what.
    pub fn view(&self) -> ThunkView {
        match self.evaluated() {
            Some(v) => ThunkView::Done(v),
            None if self.cell().tag.get() == tag::BLACKHOLE => ThunkView::Blackhole,
            None => ThunkView::Pending,
        }
    }

    /// Whether two handles name the same thunk.
    #[inline]
    pub fn ptr_eq(a: &Thunk, b: &Thunk) -> bool {
        a.ptr == b.ptr
    }

    /// The thunk's address, which identifies it while it lives.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The weak handle of this thunk, unless one exists already (a thunk has at most one).
    pub(crate) fn downgrade(&self) -> Option<WeakThunk> {
        let weak = &self.cell().weak;
        if weak.replace(true) {
            return None;
        }
        Some(WeakThunk { ptr: self.ptr })
    }

    /// How many handles name this thunk.
    pub fn strong_count(this: &Thunk) -> usize {
        this.cell().count.get() as usize
    }
}

impl Clone for Thunk {
    #[inline(always)]
    fn clone(&self) -> Thunk {
        super::rc::increment_count(&self.cell().count);
        Thunk { ptr: self.ptr, _owns: PhantomData }
    }
}

impl Drop for Thunk {
    #[inline]
    fn drop(&mut self) {
        let count = &self.cell().count;
        let n = count.get() - 1;
        count.set(n);
        if n == 0 {
            release(self.ptr);
        }
    }
}

/// Drops the state of a thunk whose last handle went, and frees it.
#[inline(never)]
#[allow(unsafe_code)]
fn release(ptr: NonNull<ThunkCell>) {
    // SAFETY: no strong handle is left, so the state is dropped once, here (leaving
    // `Blackhole`, which owns nothing); the memory is freed now, or by the weak handle if one
    // exists (it only reads the count and the flag).
    unsafe {
        let cell = ptr.as_ref();
        drop(unpack(cell.tag.replace(tag::BLACKHOLE), cell.payload.get()));
        if !cell.weak.get() {
            dealloc(ptr.as_ptr().cast(), Layout::new::<ThunkCell>());
        }
    }
}

/// A weak handle to a thunk: it keeps the memory, not the state. The environment registry holds
/// one for each evaluated thunk, to break cycles through evaluated values at the end.
pub(crate) struct WeakThunk {
    ptr: NonNull<ThunkCell>,
}

impl WeakThunk {
    #[inline(always)]
    fn cell(&self) -> &ThunkCell {
        // SAFETY: a weak handle keeps the allocation alive; with no strong handle left its
        // state is `Blackhole` and only the count and the flag are read.
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }

    /// Whether a strong handle still exists.
    pub(crate) fn is_alive(&self) -> bool {
        self.cell().count.get() > 0
    }

    /// A strong handle, if one still exists.
    pub(crate) fn upgrade(&self) -> Option<Thunk> {
        if !self.is_alive() {
            return None;
        }
        super::rc::increment_count(&self.cell().count);
        Some(Thunk { ptr: self.ptr, _owns: PhantomData })
    }
}

impl Drop for WeakThunk {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if self.is_alive() {
            // The thunk lives on; it frees itself when its last strong handle goes.
            self.cell().weak.set(false);
        } else {
            // SAFETY: no handle of either kind is left; the state was dropped with the last
            // strong handle.
            unsafe { dealloc(self.ptr.as_ptr().cast(), Layout::new::<ThunkCell>()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::env::EnvRegistry;
    use crate::expr::Expr;
    use crate::value::NixString;

    /// A string value and a handle to its box, to watch who holds it.
    fn witness() -> (Value, ValueRc<NixString>) {
        let s = ValueRc::new(NixString::plain("w"));
        (Value::String(s.clone()), s)
    }

    #[test]
    fn a_thunk_takes_three_words() {
        assert_eq!(std::mem::size_of::<ThunkCell>(), 24);
        assert_eq!(std::mem::size_of::<Thunk>(), 8);
    }

    #[test]
    fn every_state_comes_back_as_it_was_put() {
        let (w, watched) = witness();
        let mut envs = EnvRegistry::new(false);
        let env = envs.alloc_one(w.clone(), None, false);
        let code: ExprRef = Rc::new(Expr::Const(Value::Int(3)));
        let states = [
            ThunkState::Suspended(code, env),
            ThunkState::Apply(Box::new((w.clone(), Value::Int(1)))),
            ThunkState::Apply2(Box::new((w.clone(), Value::Int(1), Value::Int(2)))),
            ThunkState::Select(Box::new((w.clone(), Symbol::new("a")))),
            ThunkState::Blackhole,
            ThunkState::Done(w),
        ];
        let thunks: Vec<Thunk> = states.into_iter().map(Thunk::new).collect();
        assert_eq!(ValueRc::strong_count(&watched), 6);
        for t in &thunks {
            let state = t.take();
            assert!(matches!(t.view(), ThunkView::Blackhole));
            t.put(state);
        }
        assert!(matches!(thunks[0].take(), ThunkState::Suspended(..)));
        assert!(matches!(thunks[1].take(), ThunkState::Apply(ref b) if matches!(b.1, Value::Int(1))));
        assert!(matches!(thunks[2].take(), ThunkState::Apply2(ref b) if matches!(b.2, Value::Int(2))));
        assert!(matches!(thunks[3].take(), ThunkState::Select(ref b) if b.1 == Symbol::new("a")));
        assert!(matches!(thunks[4].take(), ThunkState::Blackhole));
        assert!(matches!(thunks[5].evaluated(), Some(Value::String(_))));
        assert!(matches!(thunks[5].take(), ThunkState::Done(Value::String(_))));
        // Each state taken out was dropped here; the thunks now hold nothing.
        assert_eq!(ValueRc::strong_count(&watched), 1);
    }

    #[test]
    fn the_last_handle_drops_the_state() {
        let (w, watched) = witness();
        let t = Thunk::new(ThunkState::Apply(Box::new((w, Value::Null))));
        let u = t.clone();
        assert_eq!(Thunk::strong_count(&t), 2);
        assert!(Thunk::ptr_eq(&t, &u) && t.addr() == u.addr());
        assert!(matches!(t.view(), ThunkView::Pending));
        assert!(t.evaluated().is_none());
        drop(t);
        assert_eq!(ValueRc::strong_count(&watched), 2);
        drop(u);
        assert_eq!(ValueRc::strong_count(&watched), 1);
    }

    #[test]
    fn an_integer_application_keeps_its_closure_and_integer() {
        let mut envs = EnvRegistry::new(false);
        let env = envs.alloc_one(Value::Null, None, false);
        let source = crate::source::Source::new(crate::source::Origin::String, "x: x".into());
        let lambda = Rc::new(crate::expr::LambdaExpr {
            arg: Some(Symbol::new("x")),
            formals: None,
            body: Rc::new(Expr::Const(Value::Null)),
            name: None,
            pos: source.pos(0),
            slots: 1,
        });
        let closure = ValueRc::new(Closure { lambda, env });
        let t = Thunk::new(ThunkState::ApplyInt(closure.clone(), -7));
        assert_eq!(ValueRc::strong_count(&closure), 2);
        match t.take() {
            ThunkState::ApplyInt(f, i) => assert!(ValueRc::ptr_eq(&f, &closure) && i == -7),
            _ => panic!("not an integer application"),
        }
        assert_eq!(ValueRc::strong_count(&closure), 1);
    }

    #[test]
    fn a_weak_handle_outlives_the_state_and_frees_the_memory() {
        let (w, watched) = witness();
        let t = Thunk::new(ThunkState::Done(w));
        let weak = t.downgrade().expect("the first weak handle");
        assert!(t.downgrade().is_none(), "a thunk has at most one weak handle");
        let strong = weak.upgrade().expect("alive");
        drop(strong);
        drop(t);
        assert_eq!(ValueRc::strong_count(&watched), 1, "the state went with the last strong handle");
        assert!(!weak.is_alive() && weak.upgrade().is_none());
        drop(weak);
    }

    #[test]
    fn a_thunk_outliving_its_weak_handle_frees_itself() {
        let (w, watched) = witness();
        let t = Thunk::new(ThunkState::Done(w));
        drop(t.downgrade().expect("the first weak handle"));
        // The flag is cleared: a new weak handle can be made, and the last strong one frees.
        let again = t.downgrade().expect("a weak handle again");
        drop(again);
        drop(t);
        assert_eq!(ValueRc::strong_count(&watched), 1);
    }
}
