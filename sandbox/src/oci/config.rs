//! The OCI runtime bundle's `config.json` (runtime-spec 1.0): what a build's container is
//! made of, rendered from a [`ContainerSpec`]. Only what a Nix sandbox needs: namespaces
//! (user, mount, PID, IPC, UTS, and network unless shared), the listed mounts and nothing else
//! of the host, `/dev` with the standard devices, `/proc`, a hostname, ID mappings, no
//! capabilities, `noNewPrivileges`, and a seccomp filter.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::request::SandboxError;

/// An ID mapping of the user namespace: `size` IDs from `container` inside are `host` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    /// The first ID inside.
    pub container: u32,
    /// The first ID outside.
    pub host: u32,
    /// How many.
    pub size: u32,
}

/// A bind mount of a host file or directory into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host path.
    pub source: PathBuf,
    /// Where it appears in the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Everything `config.json` says.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The root file system's directory on the host (an absolute path).
    pub rootfs: PathBuf,
    /// The builder and its arguments.
    pub args: Vec<Vec<u8>>,
    /// The builder's environment.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// The working directory inside (`/build`).
    pub cwd: String,
    /// The builder's user ID inside.
    pub uid: u32,
    /// The builder's group ID inside.
    pub gid: u32,
    /// User ID mappings (must map ID 0, which runc's setup runs as).
    pub uid_mappings: Vec<IdMapping>,
    /// Group ID mappings (must map ID 0).
    pub gid_mappings: Vec<IdMapping>,
    /// The hostname (`localhost`).
    pub hostname: String,
    /// The NIS domain name (`(none)`).
    pub domainname: String,
    /// Mount a fresh `/dev` (a tmpfs with runc's standard devices, `/dev/pts`, `/dev/shm`);
    /// false when `/dev` is a bind mount of the host's.
    pub fresh_dev: bool,
    /// Size of the `/dev/shm` tmpfs (`50%`).
    pub shm_size: String,
    /// Bind mounts, in order (parents before children).
    pub binds: Vec<BindMount>,
    /// Share the host's network namespace (fixed-output derivations only); otherwise the
    /// container gets one of its own, where runc brings `lo` up.
    pub share_network: bool,
    /// `linux.seccomp`.
    pub seccomp: Value,
}

fn text(bytes: &[u8], what: &str) -> Result<String, SandboxError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        SandboxError::Unsupported(format!(
            "the 'oci' sandbox backend cannot pass {what} that is not UTF-8 ('{}')",
            String::from_utf8_lossy(bytes)
        ))
    })
}

fn path_text(path: &Path, what: &str) -> Result<String, SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    text(path.as_os_str().as_bytes(), what)
}

fn mappings(list: &[IdMapping]) -> Value {
    Value::Array(list.iter().map(|m| json!({"containerID": m.container, "hostID": m.host, "size": m.size})).collect())
}

/// The paths runc hides (as its default spec does): kernel interfaces a build has no use for.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// The paths runc makes read-only (as its default spec does).
const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Renders `config.json`. Arguments, variables and paths must be UTF-8 (JSON strings).
pub fn render(spec: &ContainerSpec) -> Result<Value, SandboxError> {
    let args = spec.args.iter().map(|a| text(a, "a builder argument")).collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| {
            let mut var = k.clone();
            var.push(b'=');
            var.extend_from_slice(v);
            text(&var, "an environment variable")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let no_caps: Vec<&str> = Vec::new();

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    if spec.fresh_dev {
        let shm_size = format!("size={}", spec.shm_size);
        mounts.extend([
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "nodev", "mode=1777", shm_size]}),
        ]);
    }
    for bind in &spec.binds {
        let mut options = vec!["rbind", "nosuid", "nodev", "rprivate"];
        if bind.read_only {
            options.push("ro");
        }
        mounts.push(json!({
            "destination": bind.destination,
            "type": "bind",
            "source": path_text(&bind.source, "a mount's source")?,
            "options": options,
        }));
    }

    let mut namespaces = vec![
        json!({"type": "user"}),
        json!({"type": "mount"}),
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
    ];
    if !spec.share_network {
        namespaces.push(json!({"type": "network"}));
    }

    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": spec.uid, "gid": spec.gid},
            "args": args,
            "env": env,
            "cwd": spec.cwd,
            "capabilities": {
                "bounding": no_caps, "effective": no_caps, "inheritable": no_caps,
                "permitted": no_caps, "ambient": no_caps,
            },
            "noNewPrivileges": true,
        },
        "root": {"path": path_text(&spec.rootfs, "the root directory")?, "readonly": false},
        "hostname": spec.hostname,
        "domainname": spec.domainname,
        "mounts": mounts,
        "linux": {
            "uidMappings": mappings(&spec.uid_mappings),
            "gidMappings": mappings(&spec.gid_mappings),
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "rootfsPropagation": "private",
            "seccomp": spec.seccomp,
        },
    }))
}

/// Writes `config.json` for `spec` into `bundle`.
pub fn write(bundle: &Path, spec: &ContainerSpec) -> Result<(), SandboxError> {
    let value = render(spec)?;
    let path = bundle.join("config.json");
    let bytes = serde_json::to_vec_pretty(&value)
        .map_err(|e| SandboxError::Unsupported(format!("rendering '{}': {e}", path.display())))?;
    std::fs::write(&path, bytes).map_err(SandboxError::io(format!("writing '{}'", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            rootfs: PathBuf::from("/s/x.drv.chroot/root"),
            args: vec![b"-c".to_vec(), b"echo hi".to_vec()],
            env: vec![(b"out".to_vec(), b"/nix/store/abc-x".to_vec())],
            cwd: "/build".into(),
            uid: 1000,
            gid: 100,
            uid_mappings: vec![
                IdMapping { container: 0, host: 7000, size: 1 },
                IdMapping { container: 1000, host: 7001, size: 1 },
            ],
            gid_mappings: vec![IdMapping { container: 0, host: 7000, size: 1 }],
            hostname: "localhost".into(),
            domainname: "(none)".into(),
            fresh_dev: true,
            shm_size: "50%".into(),
            binds: vec![
                BindMount { source: "/s/abc-in".into(), destination: "/nix/store/abc-in".into(), read_only: true },
                BindMount { source: "/tmp/b".into(), destination: "/build".into(), read_only: false },
            ],
            share_network: false,
            seccomp: json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        }
    }

    #[test]
    fn the_container_is_confined() {
        let c = render(&spec()).unwrap();
        assert_eq!(c["process"]["noNewPrivileges"], true);
        assert_eq!(c["process"]["capabilities"]["bounding"], json!([]));
        assert_eq!(c["process"]["env"], json!(["out=/nix/store/abc-x"]));
        assert_eq!(c["process"]["user"]["uid"], 1000);
        assert_eq!(c["linux"]["uidMappings"][1], json!({"containerID": 1000, "hostID": 7001, "size": 1}));
        let kinds: Vec<&str> =
            c["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["user", "mount", "pid", "ipc", "uts", "network"]);
        let mounts = c["mounts"].as_array().unwrap();
        let input = mounts.iter().find(|m| m["destination"] == "/nix/store/abc-in").unwrap();
        assert!(input["options"].as_array().unwrap().contains(&json!("ro")));
        let build = mounts.iter().find(|m| m["destination"] == "/build").unwrap();
        assert!(!build["options"].as_array().unwrap().contains(&json!("ro")));
        // Nothing of the host but what was listed: no /sys, no host /dev bind.
        assert!(mounts.iter().all(|m| m["destination"] != "/sys"));
    }

    #[test]
    fn fixed_outputs_share_the_network() {
        let mut s = spec();
        s.share_network = true;
        let c = render(&s).unwrap();
        assert!(c["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "network"));
    }

    #[test]
    fn non_utf8_is_refused() {
        let mut s = spec();
        s.args.push(vec![0xff]);
        assert!(matches!(render(&s), Err(SandboxError::Unsupported(_))));
    }
}
