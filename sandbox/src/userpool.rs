//! Nix's pool of build users: with `build-users-group` set, a daemon running as root runs
//! each builder as a member of that group that no other build is using. A member is taken by
//! locking `<state dir>/userpool/<uid>`; the lock is held for the build's life.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

use crate::plan::HostIds;
use crate::request::SandboxError;

/// The members of `build-users-group` and where their locks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPool {
    /// The group's gid.
    pub gid: u32,
    /// The members' uids, in the group file's order.
    pub uids: Vec<u32>,
    lock_dir: PathBuf,
}

/// A build user, taken until this is dropped.
#[derive(Debug)]
pub struct BuildUser {
    /// Its uid and the group's gid.
    pub ids: HostIds,
    _lock: File,
}

fn unsupported(message: String) -> SandboxError {
    SandboxError::Unsupported(message)
}

impl UserPool {
    /// The pool of `group`, from `/etc/group` and `/etc/passwd`, locking under `lock_dir`
    /// (`$NIX_STATE_DIR/userpool`).
    pub fn new(group: &str, lock_dir: PathBuf) -> Result<Self, SandboxError> {
        let groups = std::fs::read_to_string("/etc/group").map_err(SandboxError::io("reading /etc/group"))?;
        let passwd = std::fs::read_to_string("/etc/passwd").map_err(SandboxError::io("reading /etc/passwd"))?;
        Self::from_files(group, &groups, &passwd, lock_dir, rustix::process::getuid().as_raw())
    }

    /// The pool of `group` as the given `group` and `passwd` files describe it; `own_uid`
    /// (the daemon's) must not be a member.
    pub fn from_files(group: &str, groups: &str, passwd: &str, lock_dir: PathBuf, own_uid: u32) -> Result<Self, SandboxError> {
        let entry = groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|fields| fields.len() >= 4 && fields[0] == group)
            .ok_or_else(|| unsupported(format!("the group '{group}' specified in 'build-users-group' does not exist")))?;
        let gid: u32 = entry[2].parse().map_err(|_| unsupported(format!("the group '{group}' has a bad gid")))?;
        let mut uids = Vec::new();
        for member in entry[3].split(',').filter(|m| !m.is_empty()) {
            let uid = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() >= 3 && fields[0] == member)
                .and_then(|fields| fields[2].parse::<u32>().ok())
                .ok_or_else(|| unsupported(format!("the user '{member}' in the group '{group}' does not exist")))?;
            if uid == own_uid {
                return Err(unsupported(format!("the Nix user should not be a member of '{group}'")));
            }
            uids.push(uid);
        }
        if uids.is_empty() {
            return Err(unsupported(format!("the group '{group}' specified in 'build-users-group' has no members")));
        }
        Ok(Self { gid, uids, lock_dir })
    }

    /// Takes a free member, if there is one.
    pub fn try_acquire(&self) -> Result<Option<BuildUser>, SandboxError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.lock_dir)
            .map_err(SandboxError::io(format!("creating '{}'", self.lock_dir.display())))?;
        for &uid in &self.uids {
            let path = self.lock_dir.join(uid.to_string());
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(SandboxError::io(format!("opening '{}'", path.display())))?;
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Ok(Some(BuildUser { ids: HostIds { uid, gid: self.gid }, _lock: file }));
            }
        }
        Ok(None)
    }

    /// Takes a free member, waiting for one as Nix does.
    pub fn acquire(&self) -> Result<BuildUser, SandboxError> {
        let mut warned = false;
        loop {
            if let Some(user) = self.try_acquire()? {
                return Ok(user);
            }
            if !warned {
                tracing::info!("waiting for a free build user ID");
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: &str = "root:x:0:\nnixbld:x:30000:nixbld1,nixbld2\nempty:x:5:\n";
    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nnixbld1:x:30001:30000::/:/bin/false\nnixbld2:x:30002:30000::/:/bin/false\n";

    #[test]
    fn members_are_taken_one_build_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let pool = UserPool::from_files("nixbld", GROUPS, PASSWD, dir.path().join("userpool"), 0).unwrap();
        assert_eq!((pool.gid, pool.uids.clone()), (30000, vec![30001, 30002]));
        let first = pool.try_acquire().unwrap().unwrap();
        let second = pool.try_acquire().unwrap().unwrap();
        assert_eq!((first.ids.uid, second.ids.uid, second.ids.gid), (30001, 30002, 30000));
        assert!(pool.try_acquire().unwrap().is_none());
        drop(first);
        assert_eq!(pool.acquire().unwrap().ids.uid, 30001);
    }

    #[test]
    fn bad_groups_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = |group: &str, own: u32| {
            UserPool::from_files(group, GROUPS, PASSWD, dir.path().to_path_buf(), own).unwrap_err().to_string()
        };
        assert!(err("missing", 0).contains("does not exist"));
        assert!(err("empty", 0).contains("has no members"));
        assert!(err("nixbld", 30002).contains("should not be a member"));
    }
}
