//! `SetOptions`: the client's build settings ([`ClientOptions`]), sent first on every connection,
//! and what Nix's daemon lets an untrusted client override ([`override_policy`]).
//!
//! Wire form: twelve numbers, each read by Nix as a 32-bit unsigned number — keepFailed,
//! keepGoing, tryFallback, verbosity, maxBuildJobs, maxSilentTime, useBuildHook (obsolete),
//! verboseBuild (as a verbosity: 0 means yes), logType (obsolete), printBuildTrace (obsolete),
//! buildCores, useSubstitutes — then, from 1.12, a count and that many name/value string pairs.
//! Flags are true when non-zero. No reply follows `STDERR_LAST`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;

use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::wire::encoder::{put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// Nix's log verbosity levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verbosity {
    /// 0.
    Error,
    /// 1.
    Warn,
    /// 2.
    Notice,
    /// 3.
    Info,
    /// 4.
    Talkative,
    /// 5.
    Chatty,
    /// 6.
    Debug,
    /// 7.
    Vomit,
    /// Any other number (Nix casts without checking).
    Other(u32),
}

impl Verbosity {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::Error => 0,
            Self::Warn => 1,
            Self::Notice => 2,
            Self::Info => 3,
            Self::Talkative => 4,
            Self::Chatty => 5,
            Self::Debug => 6,
            Self::Vomit => 7,
            Self::Other(n) => n,
        }
    }

    /// The level for a wire number.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Notice,
            3 => Self::Info,
            4 => Self::Talkative,
            5 => Self::Chatty,
            6 => Self::Debug,
            7 => Self::Vomit,
            n => Self::Other(n),
        }
    }
}

/// The settings a client sends with `SetOptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Keep the build directories of failed builds.
    pub keep_failed: bool,
    /// Go on with other builds when one fails.
    pub keep_going: bool,
    /// Build from source when substitution fails.
    pub try_fallback: bool,
    /// The client's log verbosity.
    pub verbosity: Verbosity,
    /// The most builds to run at once.
    pub max_build_jobs: u32,
    /// Seconds without output before a build is killed (0 = no limit).
    pub max_silent_time: u32,
    /// Obsolete "use build hook" flag; Nix clients send true and the daemon ignores it.
    pub use_build_hook: bool,
    /// Show build logs. Sent as a verbosity: 0 (`Error`) means yes, Nix clients send 7 for no.
    pub verbose_build: bool,
    /// Obsolete log type; Nix clients send 0 and the daemon ignores it.
    pub log_type: u32,
    /// Obsolete "print build trace" flag; Nix clients send 0 and the daemon ignores it.
    pub print_build_trace: bool,
    /// Cores per build (0 = all).
    pub build_cores: u32,
    /// Use substitutes.
    pub use_substitutes: bool,
    /// Further settings by name (from 1.12). Nix clients send the settings that differ from
    /// their defaults, without the ones above, `show-trace`, `experimental-features` and
    /// `plugin-files`. Of duplicate names, the daemon keeps the first.
    pub overrides: BTreeMap<String, String>,
}

impl Default for ClientOptions {
    /// Nix's defaults: no flags but `use_build_hook`, `verbose_build` and `use_substitutes`,
    /// verbosity `Info`, one build job, everything else 0, no overrides.
    fn default() -> Self {
        Self {
            keep_failed: false,
            keep_going: false,
            try_fallback: false,
            verbosity: Verbosity::Info,
            max_build_jobs: 1,
            max_silent_time: 0,
            use_build_hook: true,
            verbose_build: true,
            log_type: 0,
            print_build_trace: false,
            build_cores: 0,
            use_substitutes: true,
            overrides: BTreeMap::new(),
        }
    }
}

/// The verbosity a client sends for "verbose build" off.
const QUIET_BUILD: u32 = 7;

impl WireEncode for ClientOptions {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        let flag = |b: bool| u64::from(b);
        put_u64(out, flag(self.keep_failed));
        put_u64(out, flag(self.keep_going));
        put_u64(out, flag(self.try_fallback));
        put_u64(out, self.verbosity.code().into());
        put_u64(out, self.max_build_jobs.into());
        put_u64(out, self.max_silent_time.into());
        put_u64(out, flag(self.use_build_hook));
        put_u64(out, if self.verbose_build { 0 } else { QUIET_BUILD.into() });
        put_u64(out, self.log_type.into());
        put_u64(out, flag(self.print_build_trace));
        put_u64(out, self.build_cores.into());
        put_u64(out, flag(self.use_substitutes));
        if ctx.at_least(12) {
            put_u64(out, self.overrides.len() as u64);
            for (name, value) in &self.overrides {
                put_str(out, name);
                put_str(out, value);
            }
        }
        Ok(())
    }
}

/// Reads one of the twelve numbers (Nix's `readInt`: at most 32 bits).
fn int(d: &mut Decoder<'_>, what: &'static str) -> Result<u32, DecodeError> {
    d.read_u32(what)
}

impl WireDecode for ClientOptions {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let mut o = ClientOptions {
            keep_failed: int(d, "keepFailed")? != 0,
            keep_going: int(d, "keepGoing")? != 0,
            try_fallback: int(d, "tryFallback")? != 0,
            verbosity: Verbosity::from_code(int(d, "verbosity")?),
            max_build_jobs: int(d, "maxBuildJobs")?,
            max_silent_time: int(d, "maxSilentTime")?,
            use_build_hook: int(d, "useBuildHook")? != 0,
            verbose_build: int(d, "verboseBuild")? == 0,
            log_type: int(d, "logType")?,
            print_build_trace: int(d, "printBuildTrace")? != 0,
            build_cores: int(d, "buildCores")?,
            use_substitutes: int(d, "useSubstitutes")? != 0,
            overrides: BTreeMap::new(),
        };
        if ctx.at_least(12) {
            let count = int(d, "override count")?;
            let max = d.limits().max_collection_len;
            if count as usize > max {
                return Err(ProtocolError::TooManyItems { count: count.into(), max }.into());
            }
            for _ in 0..count {
                let name = d.read_str()?.to_owned();
                let value = d.read_str()?.to_owned();
                o.overrides.entry(name).or_insert(value);
            }
        }
        Ok(o)
    }
}

/// What Nix 2.26's daemon does with one override from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverridePolicy {
    /// The setting is applied as given.
    Apply,
    /// `substituters` (or its alias `binary-caches`) from an untrusted client: only URLs the
    /// daemon already lists in `substituters` or `trusted-substituters` are kept (see
    /// [`filter_substituters`]); each other one is dropped with
    /// [`untrusted_substituter_warning`].
    FilterSubstituters,
    /// Ignored without telling the client: `ssh-auth-sock` (obsolete) and
    /// `experimental-features` (the daemon keeps its own; Nix only logs it at debug level).
    IgnoreSilently,
    /// Ignored, and the client is warned with this text.
    IgnoreWithWarning(String),
}

/// The settings an untrusted client may set, as the daemon names them (aliases do not count).
/// `builders` is also allowed, but only with the empty value.
pub const UNTRUSTED_SETTINGS: &[&str] = &["timeout", "max-silent-time", "build-poll-interval", "connect-timeout"];

/// The warning for a restricted setting from an untrusted client.
pub fn restricted_setting_warning(name: &str) -> String {
    format!("ignoring the client-specified setting '{name}', because it is a restricted setting and you are not a trusted user")
}

/// The warning for a substituter an untrusted client may not use.
pub fn untrusted_substituter_warning(url: &str) -> String {
    format!(
        "ignoring untrusted substituter '{url}', you are not a trusted user.\n\
         Run `man nix.conf` for more information on the `substituters` configuration option."
    )
}

/// The warning for `plugin-files`, from any client.
pub const PLUGIN_FILES_WARNING: &str = "Ignoring the client-specified plugin-files.\n\
     The client specifying plugins to the daemon never made sense, and was removed in Nix >=2.14.";

/// What Nix 2.26's daemon does with the override `name = value` from a client that is trusted or
/// not (`ClientSettings::apply` in `daemon.cc`). The checks run in Nix's order: `ssh-auth-sock`,
/// `experimental-features` and `plugin-files` are ignored for everyone; a trusted client may set
/// anything else; an untrusted one only [`UNTRUSTED_SETTINGS`], `builders` to `""`, and a
/// filtered `substituters`.
pub fn override_policy(name: &str, value: &str, trusted: bool) -> OverridePolicy {
    match name {
        "ssh-auth-sock" | "experimental-features" => OverridePolicy::IgnoreSilently,
        "plugin-files" => OverridePolicy::IgnoreWithWarning(PLUGIN_FILES_WARNING.to_owned()),
        _ if trusted || UNTRUSTED_SETTINGS.contains(&name) || (name == "builders" && value.is_empty()) => {
            OverridePolicy::Apply
        }
        "substituters" | "binary-caches" => OverridePolicy::FilterSubstituters,
        _ => OverridePolicy::IgnoreWithWarning(restricted_setting_warning(name)),
    }
}

/// Whether Nix's daemon takes the override `name = value` from an untrusted client: as given, or
/// (for `substituters`) filtered to the URLs it trusts. Settings ignored for every client
/// (`ssh-auth-sock`, `experimental-features`, `plugin-files`) are not allowed.
pub fn is_allowed_for_untrusted(name: &str, value: &str) -> bool {
    matches!(override_policy(name, value, false), OverridePolicy::Apply | OverridePolicy::FilterSubstituters)
}

/// The substituters an untrusted client's `substituters` value keeps, given the daemon's own
/// `substituters` and `trusted-substituters` (`trusted`): each whitespace-separated URL in
/// `trusted` is kept, one without a trailing slash is kept with a slash when only that form is
/// trusted. Returns the kept URLs and the dropped ones, in order.
pub fn filter_substituters(value: &str, trusted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for url in value.split([' ', '\t', '\n', '\r']).filter(|s| !s.is_empty()) {
        if trusted.contains(url) {
            kept.push(url.to_owned());
        } else if !url.ends_with('/') && trusted.contains(&format!("{url}/")) {
            kept.push(format!("{url}/"));
        } else {
            dropped.push(url.to_owned());
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ser::{decode_exact, encode_to_bytes};
    use crate::version::ProtocolVersion;

    fn ctx(minor: u8) -> WireCtx {
        WireCtx::worker(ProtocolVersion::new(1, minor))
    }

    #[test]
    fn layout_of_nix_defaults() {
        let mut o = ClientOptions::default();
        o.overrides.insert("connect-timeout".into(), "5".into());
        let bytes = encode_to_bytes(&o, &ctx(34)).unwrap();
        let words: Vec<u64> =
            bytes[..12 * 8].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(words, [0, 0, 0, 3, 1, 0, 1, 0, 0, 0, 0, 1]);
        assert_eq!(&bytes[96..104], &1u64.to_le_bytes());
        assert_eq!(bytes.len(), 104 + (8 + 16) + (8 + 8));
        assert_eq!(decode_exact::<ClientOptions>(&bytes, &ctx(34)).unwrap(), o);
        // Before 1.12 there are no overrides.
        assert_eq!(encode_to_bytes(&o, &ctx(11)).unwrap().len(), 96);
    }

    #[test]
    fn decoding_follows_nix() {
        let mut bytes = BytesMut::new();
        for v in [5u64, 0, 0, 9, 2, 3, 0, 3, 0, 0, 4, 0, 2] {
            put_u64(&mut bytes, v);
        }
        for s in ["a", "first", "a", "second"] {
            put_str(&mut bytes, s);
        }
        let o = decode_exact::<ClientOptions>(&bytes, &ctx(38)).unwrap();
        assert!(o.keep_failed, "any non-zero number is true");
        assert_eq!(o.verbosity, Verbosity::Other(9));
        assert!(!o.verbose_build, "only 0 means verbose");
        assert_eq!(o.overrides["a"], "first", "the daemon keeps the first of duplicate names");
        let mut big = bytes.clone();
        big[0..8].copy_from_slice(&(1u64 << 32).to_le_bytes());
        assert!(matches!(decode_exact::<ClientOptions>(&big, &ctx(38)), Err(ProtocolError::IntegerTooLarge { .. })));
    }

    #[test]
    fn untrusted_overrides() {
        for name in ["timeout", "max-silent-time", "build-poll-interval", "connect-timeout"] {
            assert!(is_allowed_for_untrusted(name, "10"), "{name}");
        }
        assert!(is_allowed_for_untrusted("builders", ""));
        assert!(!is_allowed_for_untrusted("builders", "ssh://x"));
        assert!(!is_allowed_for_untrusted("build-timeout", "10"), "aliases are not allowed");
        assert!(!is_allowed_for_untrusted("sandbox", "false"));
        assert!(is_allowed_for_untrusted("substituters", "https://x"));
        assert_eq!(override_policy("binary-caches", "", false), OverridePolicy::FilterSubstituters);
        assert_eq!(override_policy("substituters", "", true), OverridePolicy::Apply);
        assert_eq!(override_policy("experimental-features", "", true), OverridePolicy::IgnoreSilently);
        assert_eq!(override_policy("ssh-auth-sock", "", false), OverridePolicy::IgnoreSilently);
        assert_eq!(
            override_policy("plugin-files", "", true),
            OverridePolicy::IgnoreWithWarning(PLUGIN_FILES_WARNING.to_owned())
        );
        assert_eq!(
            override_policy("sandbox", "false", false),
            OverridePolicy::IgnoreWithWarning(
                "ignoring the client-specified setting 'sandbox', because it is a restricted setting and you are not a trusted user".into()
            )
        );
        assert_eq!(override_policy("sandbox", "false", true), OverridePolicy::Apply);
    }

    #[test]
    fn substituter_filter() {
        let trusted: BTreeSet<String> = ["https://a/".to_owned(), "https://b".to_owned()].into();
        let (kept, dropped) = filter_substituters(" https://a https://b\thttps://c/ ", &trusted);
        assert_eq!(kept, ["https://a/", "https://b"]);
        assert_eq!(dropped, ["https://c/"]);
        assert!(untrusted_substituter_warning("x").starts_with("ignoring untrusted substituter 'x', you are not"));
    }
}
