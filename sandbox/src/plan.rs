//! The sandbox a build gets, described independently of the mechanism that makes it (the
//! `native` backend's namespaces or the `oci` backend's runc bundle): where its root is, what
//! is mounted where, which files are generated, the identities inside, the network, the
//! seccomp rules, and where each output goes afterwards. Computed by [`plan`] from a
//! [`BuildRequest`] and a [`SandboxConfig`], following Nix 2.26's `local-derivation-goal.cc`.
//!
//! The plan is pure data (serialisable, so a helper process can receive it); creating what it
//! describes on the host is [`crate::prepare`]'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::request::BuildRequest;

/// The user the builder runs as inside the sandbox (Nix's `sandboxUid` with user namespaces).
pub const SANDBOX_UID: u32 = 1000;
/// The group the builder runs as inside the sandbox (Nix's `sandboxGid`).
pub const SANDBOX_GID: u32 = 100;
/// Nix's default `sandbox-build-dir`.
pub const SANDBOX_BUILD_DIR: &str = "/build";
/// Mode of the store directory inside the sandbox: group-writable and sticky, as Nix's.
pub const STORE_DIR_MODE: u32 = 0o1775;
/// The device nodes a sandbox's `/dev` gets from the host (Nix's list, without `kvm`).
pub const DEV_NODES: [&str; 6] = ["/dev/full", "/dev/null", "/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero"];
/// The host files a fixed-output build sees, when the host has them (for name resolution).
pub const NETWORK_FILES: [&str; 3] = ["/etc/resolv.conf", "/etc/services", "/etc/hosts"];
/// `fchmodat2`'s system call number (the same on every Linux architecture; libseccomp 2.5.4
/// does not know its name).
pub const SYS_FCHMODAT2: i32 = 452;

/// `sandbox` in `nix.conf`, when it is not `false` (which means the `none` backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SandboxMode {
    /// `sandbox = true`: every build is sandboxed; `__noChroot` is an error.
    #[default]
    Enabled,
    /// `sandbox = relaxed`: fixed-output derivations and those with `__noChroot` run
    /// unsandboxed.
    Relaxed,
}

/// One entry of `sandbox-paths`: `target=source`, or `path` for both, `?` at the end for an
/// optional one (skipped when the source is missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPath {
    /// Where it appears inside the sandbox.
    pub target: String,
    /// The host path.
    pub source: PathBuf,
    /// Whether a missing source is skipped rather than an error.
    pub optional: bool,
}

impl SandboxPath {
    /// Parses one entry as Nix does (a trailing `?` first, then the first `=`).
    pub fn parse(entry: &str) -> Option<Self> {
        if entry.is_empty() {
            return None;
        }
        let (entry, optional) = match entry.strip_suffix('?') {
            Some(rest) => (rest, true),
            None => (entry, false),
        };
        let (target, source) = entry.split_once('=').unwrap_or((entry, entry));
        Some(Self { target: target.to_owned(), source: PathBuf::from(source), optional })
    }

    /// Parses a whitespace-separated list (`sandbox-paths` plus `extra-sandbox-paths`).
    pub fn parse_list(list: &str) -> Vec<Self> {
        list.split_whitespace().filter_map(Self::parse).collect()
    }
}

/// The host identities the sandbox's build user and group map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIds {
    /// The host uid behind [`SANDBOX_UID`].
    pub uid: u32,
    /// The host gid behind [`SANDBOX_GID`].
    pub gid: u32,
}

impl HostIds {
    /// The calling process's own uid and gid (no build users: Nix maps the daemon's user).
    pub fn current() -> Self {
        Self { uid: rustix::process::getuid().as_raw(), gid: rustix::process::getgid().as_raw() }
    }
}

/// The daemon's sandbox settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// `sandbox = true` or `relaxed`.
    pub mode: SandboxMode,
    /// `sandbox-paths` and `extra-sandbox-paths`. Store paths among the sources must have
    /// their closures in [`BuildRequest::inputs`] (the daemon adds them).
    pub paths: Vec<SandboxPath>,
    /// `sandbox-build-dir` (`/build`).
    pub build_dir: String,
    /// Size of the `/dev/shm` tmpfs (`sandbox-dev-shm-size`, `50%`).
    pub shm_size: String,
    /// Who the builder is on the host (a build user, or the daemon's own user).
    pub host_ids: HostIds,
    /// `sandbox-fallback`: build unsandboxed when the kernel refuses the namespaces.
    pub fallback: bool,
    /// `ssl-cert-file`: fixed-output builds see it as `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::Enabled,
            paths: Vec::new(),
            build_dir: SANDBOX_BUILD_DIR.to_owned(),
            shm_size: "50%".to_owned(),
            host_ids: HostIds::current(),
            fallback: true,
            ca_file: None,
        }
    }
}

/// A bind mount from the host into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The host path (symlinks already resolved for the paths Nix resolves).
    pub source: PathBuf,
    /// The absolute path inside the sandbox.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Skipped when the source does not exist.
    pub optional: bool,
}

/// A file the sandbox gets that is generated rather than mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedFile {
    /// The absolute path inside the sandbox.
    pub target: String,
    /// Its contents.
    pub contents: String,
    /// Its mode.
    pub mode: u32,
}

/// A symbolic link created in the sandbox's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    /// The absolute path inside the sandbox.
    pub target: String,
    /// What it points to.
    pub points_to: String,
}

/// A directory created in the sandbox's root with a given mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The absolute path inside the sandbox.
    pub target: String,
    /// Its mode.
    pub mode: u32,
}

/// One line of a user namespace's uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// The first id inside.
    pub inside: u32,
    /// The first id outside.
    pub outside: u32,
    /// How many ids.
    pub count: u32,
}

/// A condition on a system call argument: `(arg & mask) == mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgMask {
    /// The argument's index (0-based).
    pub index: u32,
    /// The bits that must all be set.
    pub mask: u64,
}

/// A seccomp rule: the system call fails with `errno` (when `arg` holds, if given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompRule {
    /// The system call's name.
    pub syscall: String,
    /// Its number, for calls libseccomp may not know by name.
    pub number: Option<i32>,
    /// The error it returns.
    pub errno: i32,
    /// The argument condition.
    pub arg: Option<ArgMask>,
}

/// The seccomp filter: everything is allowed but what `rules` deny.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompPlan {
    /// Architectures besides the native one the filter also covers (libseccomp names:
    /// `x86`, `x32`, `arm`), so a 32-bit builder cannot get round it.
    pub extra_arches: Vec<String>,
    /// The rules.
    pub rules: Vec<SeccompRule>,
    /// Whether `no_new_privs` is set (Nix: unless `allow-new-privileges`).
    pub no_new_privs: bool,
}

/// Where one output is built and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPlan {
    /// The output's name.
    pub name: String,
    /// Its path as the builder sees it (`<store dir>/<base name>`).
    pub inside: String,
    /// Where that is on the host (under the sandbox's root).
    pub staged: PathBuf,
    /// Where it must end up ([`BuildRequest::outputs`]).
    pub destination: PathBuf,
    /// Whether it is copied to fresh inodes rather than renamed: fixed-output builds can
    /// leak a descriptor to the outside (their network is the host's), so what was built must
    /// not be the inode that gets registered (CVE-2024-27297).
    pub fresh_copy: bool,
}

/// Everything a backend needs to run one build in a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// `<real store dir>/<drv base name>.chroot` (mode 0700): in the store directory so the
    /// outputs can be renamed into place on the same file system.
    pub chroot_dir: PathBuf,
    /// The sandbox's root: `<chroot_dir>/root` (mode 0750, or 0755 with a build user).
    pub root: PathBuf,
    /// The mode of [`Self::root`].
    pub root_mode: u32,
    /// The build directory on the host (`<top build dir>/build`, mode 0700, owned by the
    /// build user), filled in by [`crate::prepare`].
    pub build_dir_host: PathBuf,
    /// The build directory inside (`/build`).
    pub build_dir: String,
    /// The logical store directory, as the builder sees it.
    pub store_dir: String,
    /// Mode of the store directory inside.
    pub store_dir_mode: u32,
    /// Directories created in the root, in order.
    pub directories: Vec<Directory>,
    /// Files written into the root.
    pub files: Vec<GeneratedFile>,
    /// Symlinks created in the root.
    pub symlinks: Vec<Symlink>,
    /// Bind mounts, in mounting order (a target's parent is mounted before it).
    pub mounts: Vec<BindMount>,
    /// Size of the tmpfs on `/dev/shm`.
    pub shm_size: String,
    /// The host name inside.
    pub hostname: String,
    /// The NIS domain name inside.
    pub domainname: String,
    /// Whether the build shares the host's network (fixed-output builds only); otherwise it
    /// gets a network namespace of its own with only `lo`.
    pub network: bool,
    /// The builder's uid inside.
    pub uid: u32,
    /// The builder's gid inside.
    pub gid: u32,
    /// The user namespace's uid map.
    pub uid_map: Vec<IdMap>,
    /// The user namespace's gid map.
    pub gid_map: Vec<IdMap>,
    /// The seccomp filter.
    pub seccomp: SeccompPlan,
    /// Where the outputs are built and where they go.
    pub outputs: Vec<OutputPlan>,
    /// The builder's working directory (the build directory inside).
    pub cwd: String,
    /// Whether the root's skeleton (everything but [`Self::host_directories`] and what is
    /// mounted in them) is made by the sandbox's first process in a tmpfs of its own, instead
    /// of on the host by [`crate::prepare`] (the `native` backend: far fewer inodes created
    /// and deleted on the host's file system per build).
    #[serde(default)]
    pub skeleton_in_tmpfs: bool,
}

/// Where a bind mount's target is, for [`SandboxPlan::skeleton_in_tmpfs`].
fn is_under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

impl SandboxPlan {
    /// The directories inside that stay on the host when the skeleton is in a tmpfs: the
    /// store directory (the outputs must land on the store's file system) and `/tmp`
    /// (writable, as on disk in Nix's sandbox).
    /// One inside another (a store directory under `/tmp`) counts once, as the outer one.
    pub fn host_directories(&self) -> Vec<&str> {
        let candidates: Vec<&str> = [self.store_dir.as_str(), "/tmp"]
            .into_iter()
            .filter(|d| self.directories.iter().any(|dir| dir.target == *d))
            .collect();
        candidates.iter().copied().filter(|d| !candidates.iter().any(|outer| outer != d && is_under(d, outer))).collect()
    }

    /// Whether `inside` is on the host (in a host directory) even with the skeleton in a
    /// tmpfs.
    pub fn is_on_host(&self, inside: &str) -> bool {
        !self.skeleton_in_tmpfs || self.host_directories().iter().any(|dir| is_under(inside, dir))
    }

    /// Records the host build directory (where `/build` comes from).
    pub fn set_build_dir_host(&mut self, dir: PathBuf) {
        for mount in &mut self.mounts {
            if mount.target == self.build_dir {
                mount.source = dir.clone();
            }
        }
        self.build_dir_host = dir;
    }
}

/// Why a build cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `__noChroot` with `sandbox = true`.
    #[error("derivation '{0}' has '__noChroot' set, but that's not allowed when 'sandbox' is 'true'")]
    NoChrootNotAllowed(String),
    /// The request names a path that is not absolute or not under a store directory.
    #[error("{0}")]
    BadPath(String),
}

/// Whether the derivation asks for no sandbox (`__noChroot`).
pub fn wants_no_chroot(request: &BuildRequest) -> bool {
    let drv = &request.derivation;
    if let Some(json) = drv.env.get(&b"__json"[..]) {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        return value.get("__noChroot").and_then(serde_json::Value::as_bool) == Some(true);
    }
    drv.env.get(&b"__noChroot"[..]).is_some_and(|v| v == b"1")
}

/// The entries of `/etc/passwd` inside (Nix's exact text).
pub fn passwd_contents(uid: u32, gid: u32, build_dir: &str) -> String {
    format!(
        "root:x:0:0:Nix build user:{build_dir}:/noshell\n\
         nixbld:x:{uid}:{gid}:Nix build user:{build_dir}:/noshell\n\
         nobody:x:65534:65534:Nobody:/:/noshell\n"
    )
}

/// The entries of `/etc/group` inside (Nix's exact text).
pub fn group_contents(gid: u32) -> String {
    format!("root:x:0:\nnixbld:!:{gid}:\nnogroup:x:65534:\n")
}

/// `/etc/hosts` of builds without network.
pub const HOSTS_CONTENTS: &str = "127.0.0.1 localhost\n::1 localhost\n";
/// `/etc/nsswitch.conf` of fixed-output builds.
pub const NSSWITCH_CONTENTS: &str = "hosts: files dns\nservices: files\n";

/// Nix's seccomp filter for the native architecture.
pub fn seccomp_plan() -> SeccompPlan {
    const EPERM: i32 = 1;
    const ENOTSUP: i32 = 95;
    const S_ISUID: u64 = 0o4000;
    const S_ISGID: u64 = 0o2000;
    let mut rules = Vec::new();
    for mask in [S_ISUID, S_ISGID] {
        for (syscall, number, index) in
            [("chmod", None, 1), ("fchmod", None, 1), ("fchmodat", None, 2), ("fchmodat2", Some(SYS_FCHMODAT2), 2)]
        {
            rules.push(SeccompRule {
                syscall: syscall.to_owned(),
                number,
                errno: EPERM,
                arg: Some(ArgMask { index, mask }),
            });
        }
    }
    for syscall in ["getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr"] {
        rules.push(SeccompRule { syscall: syscall.to_owned(), number: None, errno: ENOTSUP, arg: None });
    }
    let extra_arches = match std::env::consts::ARCH {
        "x86_64" => vec!["x86".to_owned(), "x32".to_owned()],
        "aarch64" => vec!["arm".to_owned()],
        _ => Vec::new(),
    };
    SeccompPlan { extra_arches, rules, no_new_privs: true }
}

fn file_name(path: &Path) -> Result<String, PlanError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| PlanError::BadPath(format!("'{}' has no file name", path.display())))
}

/// The plan for `request`, or `None` when it runs unsandboxed (`sandbox = relaxed` with a
/// fixed-output derivation or `__noChroot`). The host build directory is left empty for
/// [`crate::prepare`] to fill in.
pub fn plan(request: &BuildRequest, config: &SandboxConfig) -> Result<Option<SandboxPlan>, PlanError> {
    let no_chroot = wants_no_chroot(request);
    match config.mode {
        SandboxMode::Enabled if no_chroot => {
            return Err(PlanError::NoChrootNotAllowed(format!("{}/{}", request.store_dir, request.drv_base_name)))
        }
        SandboxMode::Relaxed if no_chroot || request.fixed_output => return Ok(None),
        _ => {}
    }
    if config.build_dir.starts_with(&request.store_dir) {
        return Err(PlanError::BadPath("`sandbox-build-dir` must not contain the storeDir".into()));
    }
    let real_store_dir = request
        .outputs
        .values()
        .next()
        .and_then(|p| p.parent())
        .ok_or_else(|| PlanError::BadPath("the derivation has no outputs".into()))?
        .to_path_buf();
    let chroot_dir = real_store_dir.join(format!("{}.chroot", request.drv_base_name));
    let root = chroot_dir.join("root");
    let store_dir = request.store_dir.trim_end_matches('/').to_owned();
    let inside_store = |real: &Path| -> Result<String, PlanError> { Ok(format!("{store_dir}/{}", file_name(real)?)) };
    let outputs = request
        .outputs
        .iter()
        .map(|(name, destination)| {
            let inside = inside_store(destination)?;
            Ok(OutputPlan {
                name: name.clone(),
                staged: root.join(inside.trim_start_matches('/')),
                inside,
                destination: destination.clone(),
                fresh_copy: request.fixed_output,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let build_user = config.host_ids != HostIds::current();

    // Mounts by target, so a later entry replaces an earlier one as in Nix's map.
    let mut mounts: BTreeMap<String, BindMount> = BTreeMap::new();
    for p in &config.paths {
        mounts.insert(
            p.target.clone(),
            BindMount { source: p.source.clone(), target: p.target.clone(), read_only: true, optional: p.optional },
        );
    }
    for input in &request.inputs {
        let target = inside_store(input)?;
        mounts.insert(target.clone(), BindMount { source: input.clone(), target, read_only: true, optional: false });
    }
    // An output never comes from the host (it may be in `sandbox-paths` when rebuilding).
    for output in &outputs {
        mounts.remove(&output.inside);
    }
    let uses_host_dev = mounts.contains_key("/dev");
    if !uses_host_dev {
        for node in DEV_NODES {
            mounts.insert(
                node.to_owned(),
                BindMount { source: PathBuf::from(node), target: node.to_owned(), read_only: false, optional: true },
            );
        }
    }
    let mut files = vec![
        GeneratedFile { target: "/etc/group".into(), contents: group_contents(SANDBOX_GID), mode: 0o444 },
        GeneratedFile {
            target: "/etc/passwd".into(),
            contents: passwd_contents(SANDBOX_UID, SANDBOX_GID, &config.build_dir),
            mode: 0o444,
        },
    ];
    if request.fixed_output {
        files.push(GeneratedFile { target: "/etc/nsswitch.conf".into(), contents: NSSWITCH_CONTENTS.into(), mode: 0o444 });
        if let Some(source) = config.ca_file.as_ref().and_then(|f| std::fs::canonicalize(f).ok()) {
            let target = "/etc/ssl/certs/ca-certificates.crt".to_owned();
            mounts.entry(target.clone()).or_insert(BindMount { source, target, read_only: true, optional: true });
        }
        for path in NETWORK_FILES {
            if let Ok(source) = std::fs::canonicalize(path) {
                mounts.insert(
                    path.to_owned(),
                    BindMount { source, target: path.to_owned(), read_only: true, optional: true },
                );
            }
        }
    } else {
        files.push(GeneratedFile { target: "/etc/hosts".into(), contents: HOSTS_CONTENTS.into(), mode: 0o444 });
    }
    // Its source is set by `SandboxPlan::set_build_dir_host` once the directory exists.
    mounts.insert(
        config.build_dir.clone(),
        BindMount { source: PathBuf::new(), target: config.build_dir.clone(), read_only: false, optional: false },
    );
    // Parents before children: sorting by target does that.
    let mounts: Vec<BindMount> = mounts.into_values().collect();

    let mut directories = vec![
        Directory { target: "/tmp".into(), mode: 0o1777 },
        Directory { target: "/etc".into(), mode: 0o555 },
        Directory { target: store_dir.clone(), mode: STORE_DIR_MODE },
    ];
    let mut symlinks = Vec::new();
    if !uses_host_dev {
        directories.push(Directory { target: "/dev/shm".into(), mode: 0o755 });
        directories.push(Directory { target: "/dev/pts".into(), mode: 0o755 });
        for (target, points_to) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/ptmx", "/dev/pts/ptmx"),
        ] {
            symlinks.push(Symlink { target: target.into(), points_to: points_to.into() });
        }
    }
    directories.push(Directory { target: "/proc".into(), mode: 0o555 });
    let map = |inside: u32, outside: u32| vec![IdMap { inside, outside, count: 1 }];
    Ok(Some(SandboxPlan {
        chroot_dir,
        root,
        root_mode: if build_user { 0o755 } else { 0o750 },
        build_dir_host: PathBuf::new(),
        build_dir: config.build_dir.clone(),
        store_dir,
        store_dir_mode: STORE_DIR_MODE,
        directories,
        files,
        symlinks,
        mounts,
        shm_size: config.shm_size.clone(),
        hostname: "localhost".into(),
        domainname: "(none)".into(),
        network: request.fixed_output,
        uid: SANDBOX_UID,
        gid: SANDBOX_GID,
        uid_map: map(SANDBOX_UID, config.host_ids.uid),
        gid_map: map(SANDBOX_GID, config.host_ids.gid),
        seccomp: seccomp_plan(),
        outputs,
        cwd: config.build_dir.clone(),
        skeleton_in_tmpfs: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix_formats::derivation::Derivation;
    use std::collections::BTreeSet;

    fn request(fixed_output: bool, env: &[(&str, &str)]) -> BuildRequest {
        let store = "/nix/store";
        BuildRequest {
            drv_base_name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-t.drv".into(),
            derivation: Derivation {
                name: "t".into(),
                outputs: Default::default(),
                input_drvs: Default::default(),
                input_srcs: Default::default(),
                system: b"x86_64-linux".to_vec(),
                builder: b"/bin/sh".to_vec(),
                args: vec![],
                env: env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
            },
            store_dir: store.into(),
            outputs: [("out".to_owned(), PathBuf::from("/real/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-t"))].into(),
            inputs: BTreeSet::from([PathBuf::from("/real/store/cccccccccccccccccccccccccccccccc-in")]),
            build_dir_parent: "/tmp".into(),
            cores: 1,
            fixed_output,
            impure_env: Default::default(),
            timeout: None,
            max_silent_time: None,
            keep_failed: false,
            extra_files: vec![],
            rewrites: Default::default(),
            structured_extra: Default::default(),
            on_build_dir: None,
            cancel: Default::default(),
            live: Default::default(),
        }
    }

    #[test]
    fn sandbox_paths_parse_as_nix() {
        assert_eq!(
            SandboxPath::parse("/bin/sh=/nix/store/x-busybox/bin/busybox?").unwrap(),
            SandboxPath { target: "/bin/sh".into(), source: "/nix/store/x-busybox/bin/busybox".into(), optional: true }
        );
        assert_eq!(
            SandboxPath::parse("/usr").unwrap(),
            SandboxPath { target: "/usr".into(), source: "/usr".into(), optional: false }
        );
        assert_eq!(SandboxPath::parse_list(" /a  /b=/c? ").len(), 2);
    }

    #[test]
    fn plan_of_a_normal_build() {
        let config = SandboxConfig { paths: SandboxPath::parse_list("/bin/sh=/bin/busybox"), ..Default::default() };
        let plan = plan(&request(false, &[]), &config).unwrap().unwrap();
        assert_eq!(plan.chroot_dir, PathBuf::from("/real/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-t.drv.chroot"));
        assert_eq!(plan.root, plan.chroot_dir.join("root"));
        assert!(!plan.network);
        assert_eq!(plan.outputs[0].inside, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-t");
        assert_eq!(
            plan.outputs[0].staged,
            PathBuf::from("/real/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-t.drv.chroot/root/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-t")
        );
        assert!(!plan.outputs[0].fresh_copy);
        let input = plan.mounts.iter().find(|m| m.target == "/nix/store/cccccccccccccccccccccccccccccccc-in").unwrap();
        assert!(input.read_only);
        assert_eq!(input.source, PathBuf::from("/real/store/cccccccccccccccccccccccccccccccc-in"));
        assert!(plan.mounts.iter().any(|m| m.target == "/bin/sh" && m.source == Path::new("/bin/busybox")));
        assert!(plan.mounts.iter().any(|m| m.target == "/dev/null" && !m.read_only));
        assert!(plan.mounts.iter().any(|m| m.target == "/build" && !m.read_only));
        let hosts = plan.files.iter().find(|f| f.target == "/etc/hosts").unwrap();
        assert_eq!(hosts.contents, "127.0.0.1 localhost\n::1 localhost\n");
        let passwd = plan.files.iter().find(|f| f.target == "/etc/passwd").unwrap();
        assert_eq!(
            passwd.contents,
            "root:x:0:0:Nix build user:/build:/noshell\nnixbld:x:1000:100:Nix build user:/build:/noshell\nnobody:x:65534:65534:Nobody:/:/noshell\n"
        );
        assert_eq!(plan.uid_map, vec![IdMap { inside: 1000, outside: HostIds::current().uid, count: 1 }]);
        assert_eq!((plan.hostname.as_str(), plan.domainname.as_str()), ("localhost", "(none)"));
        assert!(plan.directories.iter().any(|d| d.target == "/nix/store" && d.mode == 0o1775));
        // Parents are mounted before what is under them.
        let targets: Vec<&str> = plan.mounts.iter().map(|m| m.target.as_str()).collect();
        let mut sorted = targets.clone();
        sorted.sort();
        assert_eq!(targets, sorted);
    }

    #[test]
    fn fixed_output_builds_get_the_network() {
        let config = SandboxConfig { ca_file: Some("/etc/passwd".into()), ..Default::default() };
        let plan = plan(&request(true, &[]), &config).unwrap().unwrap();
        assert!(plan.mounts.iter().any(|m| m.target == "/etc/ssl/certs/ca-certificates.crt" && m.read_only));
        assert!(plan.network);
        assert!(plan.outputs[0].fresh_copy);
        assert!(plan.files.iter().any(|f| f.target == "/etc/nsswitch.conf"));
        assert!(!plan.files.iter().any(|f| f.target == "/etc/hosts"));
    }

    #[test]
    fn no_chroot_and_relaxed() {
        let strict = SandboxConfig::default();
        let relaxed = SandboxConfig { mode: SandboxMode::Relaxed, ..Default::default() };
        assert!(matches!(plan(&request(false, &[("__noChroot", "1")]), &strict), Err(PlanError::NoChrootNotAllowed(_))));
        assert!(plan(&request(false, &[("__noChroot", "1")]), &relaxed).unwrap().is_none());
        assert!(plan(&request(true, &[]), &relaxed).unwrap().is_none());
        assert!(plan(&request(false, &[]), &relaxed).unwrap().is_some());
    }

    #[test]
    fn outputs_are_never_mounted_from_the_host() {
        let config = SandboxConfig {
            paths: SandboxPath::parse_list("/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-t"),
            ..Default::default()
        };
        let plan = plan(&request(false, &[]), &config).unwrap().unwrap();
        assert!(!plan.mounts.iter().any(|m| m.target.ends_with("-t")));
    }

    #[test]
    fn seccomp_rules_are_nix_s() {
        let s = seccomp_plan();
        assert_eq!(s.rules.len(), 14);
        assert!(s.rules.iter().any(|r| r.syscall == "fchmodat" && r.arg == Some(ArgMask { index: 2, mask: 0o2000 })));
        assert!(s.no_new_privs);
    }
}
