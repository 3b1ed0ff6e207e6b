//! The untrusted user the scenarios run clients as: created when missing (on the host and in the
//! Nix 2.26 root, with the same ids), never in the daemon's `trusted-users`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::must;

/// The untrusted user's name.
pub const UNTRUSTED_USER: &str = "nixcompat";

/// User and group id of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// The untrusted user's ids, creating the user (host and `trixie_root`, when that exists) the
/// first time.
pub fn untrusted(trixie_root: &Path) -> Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    *IDS.get_or_init(|| {
        let ids = match lookup(Path::new("/"), UNTRUSTED_USER) {
            Some(ids) => ids,
            None => {
                // Another process may create it at the same time: its failure is fine if the
                // user exists afterwards.
                let _ = Command::new("useradd")
                    .args(["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", UNTRUSTED_USER])
                    .status();
                must(lookup(Path::new("/"), UNTRUSTED_USER).ok_or("useradd did not create it"), "create user nixcompat")
            }
        };
        if trixie_root.join("etc/passwd").is_file() && lookup(trixie_root, UNTRUSTED_USER).is_none() {
            let _ = Command::new("chroot")
                .arg(trixie_root)
                .args(["groupadd", "--non-unique", "--gid", &ids.gid.to_string(), UNTRUSTED_USER])
                .status();
            let _ = Command::new("chroot")
                .arg(trixie_root)
                .args(["useradd", "--non-unique", "--uid", &ids.uid.to_string(), "--gid", &ids.gid.to_string()])
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin", UNTRUSTED_USER])
                .status();
        }
        ids
    })
}

/// Looks a user up in `<root>/etc/passwd`.
fn lookup(root: &Path, name: &str) -> Option<Ids> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            Some(Ids { uid: fields[2].parse().ok()?, gid: fields[3].parse().ok()? })
        } else {
            None
        }
    })
}
