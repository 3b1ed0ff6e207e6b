//! The outcome of building or substituting something: [`BuildResult`], [`BuildStatus`] and
//! [`KeyedBuildResult`], as Nix 2.26 reports them.

use std::collections::BTreeMap;
use std::fmt;

use crate::derived_path::DerivedPath;
use crate::realisation::Realisation;

/// How a build or substitution ended. The numeric codes are part of the worker and serve protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuildStatus {
    /// Built successfully (0).
    Built,
    /// Substituted from a cache (1).
    Substituted,
    /// Already valid, nothing to do (2).
    AlreadyValid,
    /// Failed, and retrying will not help (3).
    PermanentFailure,
    /// An input was rejected (4).
    InputRejected,
    /// An output was rejected (5).
    OutputRejected,
    /// Failed, possibly transiently (6).
    TransientFailure,
    /// A cached failure (7; no longer used by Nix).
    CachedFailure,
    /// Timed out (8).
    TimedOut,
    /// Some other failure (9).
    MiscFailure,
    /// A dependency failed (10).
    DependencyFailed,
    /// The log grew beyond its limit (11).
    LogLimitExceeded,
    /// Repeated builds gave different results (12).
    NotDeterministic,
    /// After resolving, the derivation's outputs were already valid (13).
    ResolvesToAlreadyValid,
    /// No substituter could provide it (14).
    NoSubstituters,
    /// A code above 14 that this version does not know, kept as sent (Nix keeps such codes too).
    Unknown(u32),
}

impl BuildStatus {
    const KNOWN: [BuildStatus; 15] = [
        Self::Built,
        Self::Substituted,
        Self::AlreadyValid,
        Self::PermanentFailure,
        Self::InputRejected,
        Self::OutputRejected,
        Self::TransientFailure,
        Self::CachedFailure,
        Self::TimedOut,
        Self::MiscFailure,
        Self::DependencyFailed,
        Self::LogLimitExceeded,
        Self::NotDeterministic,
        Self::ResolvesToAlreadyValid,
        Self::NoSubstituters,
    ];

    /// The status with numeric code `code`; codes above 14 become [`BuildStatus::Unknown`].
    pub fn from_code(code: u32) -> Self {
        usize::try_from(code).ok().and_then(|i| Self::KNOWN.get(i)).copied().unwrap_or(Self::Unknown(code))
    }

    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            Self::Unknown(c) => c,
            known => Self::KNOWN.iter().position(|&k| k == known).map_or(u32::MAX, |i| i as u32),
        }
    }

    /// Whether the wanted outputs are valid afterwards (built, substituted or already valid).
    pub fn is_success(self) -> bool {
        matches!(self, Self::Built | Self::Substituted | Self::AlreadyValid | Self::ResolvesToAlreadyValid)
    }

    /// Nix's name for the status (`Unknown` for unknown codes).
    pub fn name(self) -> &'static str {
        match self {
            Self::Built => "Built",
            Self::Substituted => "Substituted",
            Self::AlreadyValid => "AlreadyValid",
            Self::PermanentFailure => "PermanentFailure",
            Self::InputRejected => "InputRejected",
            Self::OutputRejected => "OutputRejected",
            Self::TransientFailure => "TransientFailure",
            Self::CachedFailure => "CachedFailure",
            Self::TimedOut => "TimedOut",
            Self::MiscFailure => "MiscFailure",
            Self::DependencyFailed => "DependencyFailed",
            Self::LogLimitExceeded => "LogLimitExceeded",
            Self::NotDeterministic => "NotDeterministic",
            Self::ResolvesToAlreadyValid => "ResolvesToAlreadyValid",
            Self::NoSubstituters => "NoSubstituters",
            Self::Unknown(_) => "Unknown",
        }
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of building or substituting one derived path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// How it ended.
    pub status: BuildStatus,
    /// The error message if it failed, else empty.
    pub error_msg: String,
    /// How many times it was built.
    pub times_built: u32,
    /// Whether repeated builds differed (meaningful when `times_built > 1`).
    pub is_non_deterministic: bool,
    /// When the build started, in seconds since the epoch (0 if unknown).
    pub start_time: i64,
    /// When the build stopped, in seconds since the epoch (0 if unknown).
    pub stop_time: i64,
    /// User CPU time of the build, in microseconds, if known.
    pub cpu_user_micros: Option<i64>,
    /// System CPU time of the build, in microseconds, if known.
    pub cpu_system_micros: Option<i64>,
    /// The realised outputs, by output name.
    pub built_outputs: BTreeMap<String, Realisation>,
}

impl BuildResult {
    /// A result with `status` and `error_msg` and every other field zero or empty.
    pub fn new(status: BuildStatus, error_msg: impl Into<String>) -> Self {
        Self {
            status,
            error_msg: error_msg.into(),
            times_built: 0,
            is_non_deterministic: false,
            start_time: 0,
            stop_time: 0,
            cpu_user_micros: None,
            cpu_system_micros: None,
            built_outputs: BTreeMap::new(),
        }
    }

    /// Whether the build succeeded (see [`BuildStatus::is_success`]).
    pub fn success(&self) -> bool {
        self.status.is_success()
    }
}

impl Default for BuildResult {
    /// Nix's default: [`BuildStatus::MiscFailure`] with no message.
    fn default() -> Self {
        Self::new(BuildStatus::MiscFailure, "")
    }
}

/// A [`BuildResult`] together with the derived path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedBuildResult {
    /// What was built.
    pub path: DerivedPath,
    /// How it went.
    pub result: BuildResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..40 {
            assert_eq!(BuildStatus::from_code(code).code(), code);
        }
        assert_eq!(BuildStatus::from_code(0), BuildStatus::Built);
        assert_eq!(BuildStatus::from_code(5), BuildStatus::OutputRejected);
        assert_eq!(BuildStatus::from_code(12), BuildStatus::NotDeterministic);
        assert_eq!(BuildStatus::from_code(14), BuildStatus::NoSubstituters);
        assert_eq!(BuildStatus::from_code(15), BuildStatus::Unknown(15));
        assert_eq!(BuildStatus::from_code(u32::MAX).code(), u32::MAX);
    }

    #[test]
    fn success_and_names() {
        assert!(BuildStatus::Substituted.is_success());
        assert!(!BuildStatus::TimedOut.is_success());
        assert_eq!(BuildStatus::LogLimitExceeded.to_string(), "LogLimitExceeded");
        assert_eq!(BuildResult::default().status, BuildStatus::MiscFailure);
    }
}
