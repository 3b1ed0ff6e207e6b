//! Unnamed temporary files (`O_TMPFILE`) for blobs waiting for a flush.
//!
//! A named temporary file costs two directory updates per blob (its creation, and the rename
//! that removes its name again) besides the final name. An unnamed one gets only the final
//! name, by `linkat` of its descriptor (`AT_EMPTY_PATH`, for a privileged process) or through
//! `/proc/self/fd`, after the flush has made its bytes durable. A
//! crash leaves nothing behind: the kernel frees an unnamed inode with its last descriptor.
//!
//! Each waiting blob keeps its descriptor open until the flush, so they are counted against a
//! budget of half the descriptors the process may open beyond a reserve of 1024. When the
//! budget is spent the pool flushes the waiting blobs (see `local.rs`); while another thread is
//! flushing, and where the file system or `/proc` does not allow unnamed files, blobs use named
//! temporary files.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use rustix::fs::OFlags;

/// Unnamed files open now, in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Set once `O_TMPFILE` or `/proc/self/fd` failed: named files from then on.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Descriptors kept free for everything else.
const RESERVE: u64 = 1024;

/// Most unnamed files open at once.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        usize::try_from(soft.saturating_sub(RESERVE) / 2).unwrap_or(usize::MAX).min(1 << 20)
    })
}

/// Whether unnamed files are available here but every unit of the budget is in use (a flush
/// of the waiting blobs would give units back).
pub(crate) fn budget_spent() -> bool {
    !UNAVAILABLE.load(Ordering::Relaxed) && OPEN.load(Ordering::Acquire) >= budget()
}

/// One unit of the budget, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot(());

impl Slot {
    fn take() -> Option<Self> {
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return None;
        }
        let limit = budget();
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok().map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Creates an unnamed file (mode 0600) on the file system of `dir`, with `O_DIRECT` when
/// `direct` and allowed. `None` when the budget is spent or unnamed files are unavailable (the
/// caller makes a named file); `Some(Err)` for other failures (`NotFound`: `dir` is missing).
pub(crate) fn create(dir: &Path, direct: bool) -> Option<io::Result<(File, bool, Slot)>> {
    let slot = Slot::take()?;
    let open = |flags: OFlags| {
        OpenOptions::new().read(true).write(true).mode(0o600).custom_flags((OFlags::TMPFILE | flags).bits() as i32).open(dir)
    };
    let mut opened = if direct { open(OFlags::DIRECT).map(|f| (f, true)) } else { open(OFlags::empty()).map(|f| (f, false)) };
    if direct && is_errno(&opened, rustix::io::Errno::INVAL) {
        opened = open(OFlags::empty()).map(|f| (f, false));
    }
    match opened {
        Ok((file, direct)) => Some(Ok((file, direct, slot))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(Err(e)),
        Err(_) => {
            // EISDIR, EOPNOTSUPP, EINVAL: no O_TMPFILE here (or some other refusal, which a
            // named file reports better).
            UNAVAILABLE.store(true, Ordering::Relaxed);
            None
        }
    }
}

fn is_errno<T>(result: &io::Result<T>, errno: rustix::io::Errno) -> bool {
    matches!(result, Err(e) if e.raw_os_error() == Some(errno.raw_os_error()))
}

/// The name through which `file` can be reached.
fn proc_path(file: &File) -> String {
    format!("/proc/self/fd/{}", file.as_raw_fd())
}

/// Set once the kernel refused to link a descriptor directly (`AT_EMPTY_PATH` needs
/// `CAP_DAC_READ_SEARCH`): names go through `/proc/self/fd` from then on.
static DIRECT_LINK_REFUSED: AtomicBool = AtomicBool::new(false);

/// Gives the unnamed `file` the name `target` unless `target` exists: `Ok(false)` then.
///
/// A privileged process (the daemon as root) links the descriptor itself; otherwise the name
/// is made through `/proc/self/fd/N`, which adds a path walk through procfs (this function,
/// walk included, was 16% of a 20,000-file add's samples).
pub(crate) fn link(file: &File, target: &Path) -> io::Result<bool> {
    use rustix::fs::{linkat, AtFlags, CWD};
    if DIRECT_LINK_REFUSED.load(Ordering::Relaxed) {
        return link_by_proc(file, target);
    }
    match linkat(file, "", CWD, target, AtFlags::EMPTY_PATH) {
        // Without the capability the kernel answers ENOENT (or EPERM): try the other way, and
        // if that works the refusal was about the capability, not the target.
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => {
            let by_proc = link_by_proc(file, target);
            if by_proc.is_ok() {
                DIRECT_LINK_REFUSED.store(true, Ordering::Relaxed);
            }
            by_proc
        }
        result => link_outcome(result),
    }
}

/// [`link`] through `/proc/self/fd/N`.
fn link_by_proc(file: &File, target: &Path) -> io::Result<bool> {
    use rustix::fs::{linkat, AtFlags, CWD};
    link_outcome(linkat(CWD, proc_path(file).as_str(), CWD, target, AtFlags::SYMLINK_FOLLOW))
}

/// What a `linkat` result means for [`link`]: an existing target is `Ok(false)`.
fn link_outcome(result: rustix::io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A new descriptor for reading `file` from its start (its own offset).
pub(crate) fn reopen(file: &File) -> io::Result<File> {
    File::open(proc_path(file))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn an_unnamed_file_is_read_back_and_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let Some(created) = create(dir.path(), false) else { return }; // no O_TMPFILE here
        let (mut file, _, _slot) = created.unwrap();
        file.write_all(b"contents").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut read = String::new();
        reopen(&file).unwrap().read_to_string(&mut read).unwrap();
        assert_eq!(read, "contents");
        let target = dir.path().join("blob");
        assert!(link(&file, &target).unwrap());
        assert!(!link(&file, &target).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"contents");
        assert!(matches!(create(&dir.path().join("missing"), false), Some(Err(e)) if e.kind() == io::ErrorKind::NotFound));
    }

    /// Without `CAP_DAC_READ_SEARCH` (capabilities are per thread: only this test's thread
    /// loses it) the kernel may refuse to link a descriptor directly; the name then comes
    /// through `/proc/self/fd`, and a missing target directory is still reported.
    #[test]
    fn an_unnamed_file_is_named_without_the_capability_too() {
        use caps::{CapSet, Capability};
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let Some(created) = create(dir.path(), false) else { return };
            let (mut file, _, _slot) = created.unwrap();
            file.write_all(b"unprivileged").unwrap();
            if caps::has_cap(None, CapSet::Effective, Capability::CAP_DAC_READ_SEARCH).unwrap() {
                caps::drop(None, CapSet::Effective, Capability::CAP_DAC_READ_SEARCH).unwrap();
            }
            let missing = dir.path().join("missing").join("blob");
            assert_eq!(link(&file, &missing).unwrap_err().kind(), io::ErrorKind::NotFound);
            let target = dir.path().join("blob");
            assert!(link(&file, &target).unwrap());
            assert!(!link(&file, &target).unwrap());
            assert_eq!(std::fs::read(&target).unwrap(), b"unprivileged");
        })
        .join()
        .unwrap();
    }
}
