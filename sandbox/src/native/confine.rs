//! The last steps before the builder runs: every capability dropped (`caps`), `no_new_privs`,
//! and the seccomp filter the plan describes: compiled by libseccomp into a BPF program
//! ([`CompiledFilter`], once per zygote for Nix's usual rules) and loaded as it is.

#![allow(unsafe_code)]

use caps::CapSet;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use crate::plan::SeccompPlan;

/// Empties the ambient, bounding and inheritable sets (the effective and permitted ones still
/// hold what the process has, for changing its ids).
pub fn drop_bounding_capabilities() -> Result<(), String> {
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing ambient capabilities: {e}"))?;
    for cap in caps::all() {
        // Capabilities the running kernel does not know are not in the bounding set anyway.
        if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| format!("dropping {cap} from the bounding set: {e}"))?;
        }
    }
    caps::clear(None, CapSet::Inheritable).map_err(|e| format!("clearing inheritable capabilities: {e}"))
}

/// Drops every capability from every set, the bounding set included.
pub fn drop_capabilities() -> Result<(), String> {
    drop_bounding_capabilities()?;
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| format!("clearing capabilities: {e}"))?;
    }
    Ok(())
}

fn arch(name: &str) -> Option<ScmpArch> {
    match name {
        "x86" => Some(ScmpArch::X86),
        "x32" => Some(ScmpArch::X32),
        "arm" => Some(ScmpArch::Arm),
        _ => None,
    }
}

/// Builds the filter `plan` describes (without loading it).
pub fn seccomp_filter(plan: &SeccompPlan) -> Result<ScmpFilterContext, String> {
    let failed = |what: &str, e: libseccomp::error::SeccompError| format!("{what}: {e}");
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(|e| failed("unable to initialize seccomp", e))?;
    for name in &plan.extra_arches {
        let arch = arch(name).ok_or_else(|| format!("unknown seccomp architecture '{name}'"))?;
        ctx.add_arch(arch).map_err(|e| failed(&format!("unable to add {name} seccomp architecture"), e))?;
    }
    for rule in &plan.rules {
        let syscall = match rule.number {
            Some(number) => ScmpSyscall::from(number),
            None => ScmpSyscall::from_name(&rule.syscall).map_err(|e| failed(&format!("system call '{}'", rule.syscall), e))?,
        };
        let action = ScmpAction::Errno(rule.errno);
        let added = match rule.arg {
            Some(arg) => ctx.add_rule_conditional(
                action,
                syscall,
                &[ScmpArgCompare::new(arg.index, ScmpCompareOp::MaskedEqual(arg.mask), arg.mask)],
            ),
            None => ctx.add_rule(action, syscall),
        };
        added.map_err(|e| failed(&format!("unable to add seccomp rule for '{}'", rule.syscall), e))?;
    }
    ctx.set_ctl_nnp(plan.no_new_privs).map_err(|e| failed("unable to set 'no new privileges'", e))?;
    Ok(ctx)
}

/// A seccomp filter compiled to the kernel's BPF, for the rules and architectures of one
/// [`SeccompPlan`] (`no_new_privs` is applied when loading).
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    extra_arches: Vec<String>,
    rules: Vec<crate::plan::SeccompRule>,
    program: Vec<libc::sock_filter>,
}

/// The size of one BPF instruction (`struct sock_filter`).
const INSTRUCTION: usize = 8;

impl CompiledFilter {
    /// Compiles the filter `plan` describes.
    pub fn compile(plan: &SeccompPlan) -> Result<Self, String> {
        let ctx = seccomp_filter(plan)?;
        let memfd = rustix::fs::memfd_create("casnix-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| format!("creating a memfd for the seccomp filter: {e}"))?;
        ctx.export_bpf(&memfd).map_err(|e| format!("exporting the seccomp filter: {e}"))?;
        let mut file = std::fs::File::from(memfd);
        use std::io::{Read, Seek};
        file.rewind().map_err(|e| format!("reading the seccomp filter: {e}"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| format!("reading the seccomp filter: {e}"))?;
        if bytes.is_empty() || bytes.len() % INSTRUCTION != 0 || bytes.len() / INSTRUCTION > usize::from(u16::MAX) {
            return Err(format!("libseccomp exported a filter of {} bytes", bytes.len()));
        }
        let program = bytes
            .chunks_exact(INSTRUCTION)
            .map(|i| libc::sock_filter {
                code: u16::from_ne_bytes([i[0], i[1]]),
                jt: i[2],
                jf: i[3],
                k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
            })
            .collect();
        Ok(Self { extra_arches: plan.extra_arches.clone(), rules: plan.rules.clone(), program })
    }

    /// Whether this is the filter of `plan`.
    pub fn is_for(&self, plan: &SeccompPlan) -> bool {
        self.extra_arches == plan.extra_arches && self.rules == plan.rules
    }

    /// Sets `no_new_privs` (if `plan` says so) and loads the filter into the calling thread.
    pub fn install(&self, plan: &SeccompPlan) -> Result<(), String> {
        if plan.no_new_privs {
            rustix::thread::set_no_new_privs(true).map_err(|e| format!("setting no_new_privs: {e}"))?;
        }
        let program = libc::sock_fprog {
            // `compile` checked that the length fits.
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
        // SAFETY: `program` points at `len` instructions owned by `self`, alive during the call;
        // the kernel copies them.
        let rc = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0 as libc::c_ulong, &program as *const libc::sock_fprog) };
        if rc != 0 {
            return Err(format!("unable to load seccomp BPF program: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// Loads the filter of `plan`: `compiled` when it is that plan's, else one compiled now.
pub fn install_seccomp(plan: &SeccompPlan, compiled: Option<&CompiledFilter>) -> Result<(), String> {
    match compiled.filter(|c| c.is_for(plan)) {
        Some(filter) => filter.install(plan),
        None => CompiledFilter::compile(plan)?.install(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_s_filter_builds_for_every_architecture() {
        seccomp_filter(&crate::plan::seccomp_plan()).unwrap();
    }

    #[test]
    fn the_compiled_filter_is_libseccomp_s_program() {
        let plan = crate::plan::seccomp_plan();
        let compiled = CompiledFilter::compile(&plan).unwrap();
        assert!(compiled.is_for(&plan));
        // A branch per rule and architecture (far more than a few instructions), ending with a
        // return (BPF class 6).
        assert!(compiled.program.len() > 20, "{}", compiled.program.len());
        assert_eq!(compiled.program.last().unwrap().code & 0x07, 0x06);
        let mut other = plan.clone();
        other.rules.pop();
        assert!(!compiled.is_for(&other));
    }
}
