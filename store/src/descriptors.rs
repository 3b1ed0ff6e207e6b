//! The process's limit on open descriptors, raised for the store's sake.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Most descriptors [`raise_descriptor_limit`] asks for.
pub const DESCRIPTOR_LIMIT: u64 = 1 << 20;

/// Raises the soft limit on open descriptors to the hard one (at most [`DESCRIPTOR_LIMIT`]), for
/// binaries to call once at start. castore keeps a descriptor per blob waiting for its flush:
/// with fewer, blobs become named temporary files that cost a rename each, and a daemon's
/// connections hold a few descriptors each. A shell's soft limit is often 1,024 under a far
/// higher hard limit; systemd units (the NixOS module's included) set both, and then this
/// changes nothing. Child processes (builders) inherit the raised limit, as they inherit a
/// unit's.
pub fn raise_descriptor_limit() {
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(DESCRIPTOR_LIMIT, |hard| hard.min(DESCRIPTOR_LIMIT));
    // `None` is no limit at all.
    let Some(soft) = limit.current.filter(|&soft| soft < wanted) else { return };
    match setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum }) {
        Ok(()) => tracing::debug!(from = soft, to = wanted, "raised the open-descriptor limit"),
        Err(e) => tracing::debug!("keeping the open-descriptor limit {soft}: {e}"),
    }
}
