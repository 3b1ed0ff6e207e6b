//! A build's OCI bundle from its [`SandboxPlan`]: the root file system prepared on the host
//! (the plan's directories, files and symlinks, a mount point for every bind mount) and the
//! [`ContainerSpec`] that `config.json` is rendered from.
//!
//! Bundle layout: `<store>/<drv>.chroot/` (the plan's chroot directory) holds `config.json`,
//! `runc.log` and `root/`, the container's root. runc's setup runs as the container's root,
//! which must be a mapped ID: with root privileges that is [`CONTAINER_ROOT_HOST_ID`], which
//! owns `root/` and may traverse the chroot directory (mode 0710, its group) and nothing else;
//! rootless, it is the daemon's own user and the builder runs as it (inside: uid 0, no
//! capabilities) since one ID is all an unprivileged user namespace maps.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::oci::config::{BindMount, ContainerSpec, IdMapping};
use crate::oci::seccomp::oci_seccomp;
use crate::plan::SandboxPlan;
use crate::request::SandboxError;

/// The host user and group ID behind a container's root with a root daemon: an ID no account
/// has, so the setup runc does as the container's root can touch nothing else on the host.
pub const CONTAINER_ROOT_HOST_ID: u32 = 0x6361_0000;

/// How a container's IDs map to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMode {
    /// The daemon is root: the container's root is [`CONTAINER_ROOT_HOST_ID`], the builder is
    /// the plan's uid and gid mapped as the plan says.
    Rootful,
    /// The daemon is not root (`runc --rootless`): its uid and gid are the container's root,
    /// and the builder runs as that.
    Rootless,
}

impl IdMode {
    /// Rootful when this process is root.
    pub fn current() -> Self {
        if rustix::process::geteuid().is_root() { Self::Rootful } else { Self::Rootless }
    }
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), SandboxError> {
    rustix::fs::chown(path, uid.map(rustix::fs::Uid::from_raw), gid.map(rustix::fs::Gid::from_raw))
        .map_err(|e| SandboxError::io(format!("changing the owner of '{}'", path.display()))(e.into()))
}

fn chmod(path: &Path, mode: u32) -> Result<(), SandboxError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(SandboxError::io(format!("changing the mode of '{}'", path.display())))
}

/// The builder's host gid (the plan's first gid mapping).
fn builder_host_gid(plan: &SandboxPlan) -> u32 {
    plan.gid_map.first().map_or(0, |m| m.outside)
}

/// Gives a root that [`crate::prepare`] made to the container's root where runc needs that:
/// with root privileges, the chroot directory becomes searchable by
/// [`CONTAINER_ROOT_HOST_ID`]'s group only (mode 0710) and the root is its (the builder's
/// group keeps its access).
pub fn adapt_root(plan: &SandboxPlan, mode: IdMode) -> Result<(), SandboxError> {
    if mode == IdMode::Rootful {
        check_searchable(&plan.chroot_dir)?;
        chown(&plan.chroot_dir, None, Some(CONTAINER_ROOT_HOST_ID))?;
        chmod(&plan.chroot_dir, 0o710)?;
        chown(&plan.root, Some(CONTAINER_ROOT_HOST_ID), Some(builder_host_gid(plan)))?;
        chmod(&plan.root, plan.root_mode)?;
    }
    Ok(())
}

/// runc's setup reaches the root as [`CONTAINER_ROOT_HOST_ID`]: the directories above the
/// chroot directory (the store directory and up) must be searchable by others, as
/// `/nix/store` is.
fn check_searchable(chroot_dir: &Path) -> Result<(), SandboxError> {
    for dir in chroot_dir.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).map_err(SandboxError::io(format!("reading '{}'", dir.display())))?;
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(SandboxError::Setup(format!(
                "the 'oci' sandbox backend needs the directories above the store to be searchable by \
                 others, and '{}' is not (mode {:o})",
                dir.display(),
                meta.permissions().mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Whether `/dev` comes from the host (`sandbox-paths` has it) rather than being made fresh.
fn host_dev(plan: &SandboxPlan) -> bool {
    plan.mounts.iter().any(|m| m.target == "/dev")
}

/// The plan's bind mounts that runc is to make ([`crate::prepare`] has dropped the missing
/// optional ones and made their mount points): the device nodes a fresh `/dev` has anyway
/// (runc's standard devices) are left to runc.
fn bind_mounts(plan: &SandboxPlan) -> Vec<BindMount> {
    let fresh_dev = !host_dev(plan);
    plan.mounts
        .iter()
        .filter(|m| !(fresh_dev && crate::plan::DEV_NODES.contains(&m.target.as_str())))
        .map(|m| BindMount { source: m.source.clone(), destination: m.target.clone(), read_only: m.read_only })
        .collect()
}

/// The container for `plan` (prepared), running `args` with `env`.
pub fn container_spec(
    plan: &SandboxPlan,
    mode: IdMode,
    args: Vec<Vec<u8>>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<ContainerSpec, SandboxError> {
    let binds = bind_mounts(plan);
    let map = |list: &[crate::plan::IdMap]| -> Vec<IdMapping> {
        list.iter().map(|m| IdMapping { container: m.inside, host: m.outside, size: m.count }).collect()
    };
    let (uid, gid, uid_mappings, gid_mappings) = match mode {
        IdMode::Rootful => {
            let root = IdMapping { container: 0, host: CONTAINER_ROOT_HOST_ID, size: 1 };
            let mut uids = vec![root];
            uids.extend(map(&plan.uid_map));
            let mut gids = vec![root];
            gids.extend(map(&plan.gid_map));
            (plan.uid, plan.gid, uids, gids)
        }
        IdMode::Rootless => {
            let own = |id: u32| vec![IdMapping { container: 0, host: id, size: 1 }];
            (0, 0, own(rustix::process::getuid().as_raw()), own(rustix::process::getgid().as_raw()))
        }
    };
    Ok(ContainerSpec {
        rootfs: plan.root.clone(),
        args,
        env,
        cwd: plan.cwd.clone(),
        uid,
        gid,
        uid_mappings,
        gid_mappings,
        hostname: plan.hostname.clone(),
        domainname: plan.domainname.clone(),
        fresh_dev: !host_dev(plan),
        shm_size: plan.shm_size.clone(),
        binds,
        share_network: plan.network,
        seccomp: oci_seccomp(&plan.seccomp),
    })
}

/// Whether something is mounted at or under `dir` in this process's mount namespace (then it
/// must not be deleted: it could be the store).
pub fn has_mounts_under(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let dir = dir.to_string_lossy();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    // The fifth field is the mount point (octal escapes for spaces and such; compared as is).
    info.lines().filter_map(|line| line.split(' ').nth(4)).any(|point| point == dir || point.starts_with(&prefix))
}
