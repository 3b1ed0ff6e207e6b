//! Who is on the other end of a connection, and whether they are trusted or allowed in, by
//! `trusted-users` and `allowed-users` as Nix 2.26 decides (`unix/daemon.cc`, `matchUser`).
//!
//! A list matches a user when it holds `*`, the user's name, or `@group` where the group is
//! the user's primary group or lists the user as a member. Trusted users are always allowed.
//! Nix also refuses members of `build-users-group`.

use nix::unistd::{Gid, Group, Uid, User};

/// A connected client, from `SO_PEERCRED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The process id, when known.
    pub pid: Option<i32>,
    /// The user's name (the number when unknown).
    pub user: String,
    /// The primary group's name (the number when unknown).
    pub group: String,
}

/// The trust decision for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Trusted: everything is allowed.
    Trusted,
    /// Allowed, with Nix's restrictions for untrusted clients.
    Untrusted,
}

/// Why a peer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("user '{0}' is not allowed to connect to the Nix daemon")]
pub struct NotAllowed(pub String);

impl Peer {
    /// Describes the peer with ids `uid` and `gid`, looking up their names.
    pub fn from_ids(uid: u32, gid: u32, pid: Option<i32>) -> Self {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten().map_or_else(|| uid.to_string(), |u| u.name);
        let group = Group::from_gid(Gid::from_raw(gid)).ok().flatten().map_or_else(|| gid.to_string(), |g| g.name);
        Self { uid, gid, pid, user, group }
    }

    /// Whether `list` (of `trusted-users` or `allowed-users` form) matches this peer.
    pub fn matches(&self, list: &[String]) -> bool {
        list.iter().any(|entry| match entry.strip_prefix('@') {
            _ if entry == "*" || *entry == self.user => true,
            Some(group) if group == self.group => true,
            Some(group) => match Group::from_name(group) {
                Ok(Some(g)) => g.mem.contains(&self.user),
                _ => false,
            },
            None => false,
        })
    }

    /// Decides trust: `forced` (from `--force-trusted`/`--force-untrusted`) wins; otherwise
    /// trusted when `trusted_users` matches, allowed when `allowed_users` matches; members of
    /// `build_users_group` are refused.
    pub fn decide(
        &self,
        forced: Option<Trust>,
        trusted_users: &[String],
        allowed_users: &[String],
        build_users_group: &str,
    ) -> Result<Trust, NotAllowed> {
        let trust = match forced {
            Some(t) => t,
            None if self.matches(trusted_users) => Trust::Trusted,
            None => Trust::Untrusted,
        };
        let in_build_group = !build_users_group.is_empty() && self.group == build_users_group;
        if (trust == Trust::Untrusted && forced.is_none() && !self.matches(allowed_users)) || in_build_group {
            return Err(NotAllowed(self.user.clone()));
        }
        Ok(trust)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(user: &str, group: &str) -> Peer {
        Peer { uid: 1000, gid: 1000, pid: None, user: user.into(), group: group.into() }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn trust_follows_nix_rules() {
        let alice = peer("alice", "users");
        let all = list(&["*"]);
        assert_eq!(alice.decide(None, &list(&["root"]), &all, ""), Ok(Trust::Untrusted));
        assert_eq!(alice.decide(None, &list(&["root", "alice"]), &all, ""), Ok(Trust::Trusted));
        assert_eq!(alice.decide(None, &list(&["@users"]), &all, ""), Ok(Trust::Trusted));
        assert_eq!(alice.decide(None, &list(&["root"]), &list(&["bob"]), ""), Err(NotAllowed("alice".into())));
        assert_eq!(alice.decide(None, &list(&["alice"]), &list(&["bob"]), ""), Ok(Trust::Trusted));
        assert_eq!(alice.decide(Some(Trust::Untrusted), &list(&["alice"]), &all, ""), Ok(Trust::Untrusted));
        assert_eq!(alice.decide(None, &list(&["*"]), &all, "users"), Err(NotAllowed("alice".into())));
    }

    #[test]
    fn root_is_found_by_id() {
        let root = Peer::from_ids(0, 0, None);
        assert_eq!(root.user, "root");
        assert!(root.matches(&list(&["root"])));
    }
}
