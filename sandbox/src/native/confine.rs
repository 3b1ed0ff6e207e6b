//! The last steps before the builder runs: every capability dropped (`caps`), `no_new_privs`,
//! and the seccomp filter (libseccomp) the plan describes.

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

/// Sets `no_new_privs` (if the plan says so) and loads the filter.
pub fn install_seccomp(plan: &SeccompPlan) -> Result<(), String> {
    let ctx = seccomp_filter(plan)?;
    if plan.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("setting no_new_privs: {e}"))?;
    }
    ctx.load().map_err(|e| format!("unable to load seccomp BPF program: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_s_filter_builds_for_every_architecture() {
        seccomp_filter(&crate::plan::seccomp_plan()).unwrap();
    }
}
