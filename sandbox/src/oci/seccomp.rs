//! A plan's seccomp filter ([`SeccompPlan`]: Nix's) in the OCI runtime specification's format
//! (`linux.seccomp` of config.json): everything allowed but the plan's rules, each an
//! `SCMP_ACT_ERRNO` with its `errnoRet`; an argument condition `(arg & mask) == mask` (the
//! setuid/setgid bits of a `chmod` mode) is `SCMP_CMP_MASKED_EQ` with `value` the mask and
//! `valueTwo` the bits expected.
//!
//! OCI names system calls; runc skips a name its libseccomp does not know (Debian 12's 2.5.4
//! knows `fchmodat2`), so a rule's number cannot be passed on.

use serde_json::{Value, json};

use crate::plan::SeccompPlan;

/// The seccomp architecture of a Rust `std::env::consts::ARCH` or a plan's extra one
/// (libseccomp's short names).
pub fn scmp_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" | "i686" | "i386" => "SCMP_ARCH_X86",
        "x32" => "SCMP_ARCH_X32",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "powerpc64" => "SCMP_ARCH_PPC64",
        "s390x" => "SCMP_ARCH_S390X",
        "mips" => "SCMP_ARCH_MIPS",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        _ => return None,
    })
}

/// `linux.seccomp` for `plan` on this host's architecture.
pub fn oci_seccomp(plan: &SeccompPlan) -> Value {
    let architectures: Vec<&str> = std::iter::once(std::env::consts::ARCH)
        .chain(plan.extra_arches.iter().map(String::as_str))
        .filter_map(scmp_arch)
        .collect();
    let syscalls: Vec<Value> = plan
        .rules
        .iter()
        .map(|rule| {
            let args: Vec<Value> = rule
                .arg
                .iter()
                .map(|a| json!({"index": a.index, "value": a.mask, "valueTwo": a.mask, "op": "SCMP_CMP_MASKED_EQ"}))
                .collect();
            json!({
                "names": [rule.syscall],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": rule.errno,
                "args": args,
            })
        })
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures,
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::seccomp_plan;

    #[test]
    fn the_mode_bits_are_masked_comparisons_on_the_mode_argument() {
        let value = oci_seccomp(&seccomp_plan());
        assert_eq!(value["defaultAction"], "SCMP_ACT_ALLOW");
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(value["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
        }
        let calls = value["syscalls"].as_array().unwrap();
        let setuid_fchmodat2 =
            calls.iter().find(|c| c["names"] == json!(["fchmodat2"]) && c["args"][0]["value"] == 0o4000).unwrap();
        assert_eq!(setuid_fchmodat2["args"][0]["index"], 2);
        assert_eq!(setuid_fchmodat2["args"][0]["valueTwo"], 0o4000);
        assert_eq!(setuid_fchmodat2["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(setuid_fchmodat2["errnoRet"], 1);
        let xattr = calls.iter().find(|c| c["names"] == json!(["getxattr"])).unwrap();
        assert_eq!(xattr["errnoRet"], 95);
        assert_eq!(xattr["args"], json!([]));
        // Setuid and setgid are separate rules: OCI ANDs the conditions of one rule.
        assert_eq!(calls.iter().filter(|c| c["names"] == json!(["chmod"])).count(), 2);
    }
}
