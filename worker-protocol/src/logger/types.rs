//! The values logger messages carry: [`Verbosity`], [`ActivityType`], [`ResultType`],
//! [`ActivityId`], [`Field`], and the client's [`LogFilter`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ProtocolError;

/// Reads a number that Nix reads with `readInt` (an `unsigned int`): it must fit in 32 bits.
pub(crate) fn code_from_wire(value: u64, what: &'static str) -> Result<u32, ProtocolError> {
    u32::try_from(value).map_err(|_| ProtocolError::IntegerTooLarge { what, value, max: u32::MAX.into() })
}

/// How important a message is, from [`Verbosity::Error`] (0, always shown) to
/// [`Verbosity::Vomit`] (7). A client asks for messages up to some verbosity in `SetOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Verbosity {
    /// Errors (0).
    Error,
    /// Warnings (1).
    Warn,
    /// Notices (2).
    Notice,
    /// Ordinary information (3); what Nix shows by default.
    #[default]
    Info,
    /// More talk (4).
    Talkative,
    /// Even more (5).
    Chatty,
    /// Debugging output (6).
    Debug,
    /// Everything (7).
    Vomit,
}

impl Verbosity {
    /// Every level, from the quietest to the loudest.
    pub const ALL: [Verbosity; 8] = [
        Self::Error,
        Self::Warn,
        Self::Notice,
        Self::Info,
        Self::Talkative,
        Self::Chatty,
        Self::Debug,
        Self::Vomit,
    ];

    /// The number on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The level for a number read from the wire. It must fit in 32 bits, as Nix reads it;
    /// numbers above 7 mean [`Verbosity::Vomit`]: Nix 2.8 clients send them when given more
    /// than four `-v` flags, and a level above 7 lets through exactly what 7 does.
    pub fn from_wire(value: u64) -> Result<Self, ProtocolError> {
        let code = code_from_wire(value, "verbosity")?;
        Ok(Self::ALL.get(code as usize).copied().unwrap_or(Self::Vomit))
    }

    /// Nix's name for the level (`error`, `warn`, ..., `vomit`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Notice => "notice",
            Self::Info => "info",
            Self::Talkative => "talkative",
            Self::Chatty => "chatty",
            Self::Debug => "debug",
            Self::Vomit => "vomit",
        }
    }
}

impl fmt::Display for Verbosity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Defines an enumeration of Nix's numbered kinds that keeps unknown numbers.
macro_rules! numbered_kinds {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A number without a name here, kept as sent.
            Unknown(u32),
        }

        impl $name {
            /// The kind for a number; numbers without a name become `Unknown`.
            pub fn from_code(code: u32) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }

            /// The kind for a number read from the wire, which must fit in 32 bits.
            pub fn from_wire(value: u64) -> Result<Self, ProtocolError> {
                Ok(Self::from_code(code_from_wire(value, $what)?))
            }

            /// The number on the wire.
            pub fn code(self) -> u32 {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Unknown(code) => code,
                }
            }
        }
    };
}

numbered_kinds!(
    /// What an activity is doing (Nix's `ActivityType`). Nix's `actUnknown` is `Unknown(0)`.
    ActivityType, "activity type", {
    /// Copying one store path (100).
    CopyPath = 100,
    /// Downloading a file (101).
    FileTransfer = 101,
    /// Realising paths (102).
    Realise = 102,
    /// Copying several store paths (103).
    CopyPaths = 103,
    /// Running builds (104).
    Builds = 104,
    /// Building one derivation (105).
    Build = 105,
    /// Optimising the store (106).
    OptimiseStore = 106,
    /// Verifying paths (107).
    VerifyPaths = 107,
    /// Substituting a path (108).
    Substitute = 108,
    /// Querying a path's info (109).
    QueryPathInfo = 109,
    /// Running the post-build hook (110).
    PostBuildHook = 110,
    /// Waiting for a build slot (111).
    BuildWaiting = 111,
    /// Fetching a tree (112).
    FetchTree = 112,
});

numbered_kinds!(
    /// What an activity reports (Nix's `ResultType`).
    ResultType, "result type", {
    /// A file was hard-linked (100): fields are the bytes saved and blocks saved.
    FileLinked = 100,
    /// A line of build output (101): one string field.
    BuildLogLine = 101,
    /// A path is untrusted (102): one string field.
    UntrustedPath = 102,
    /// A path is corrupted (103): one string field.
    CorruptedPath = 103,
    /// A build entered a phase (104): one string field.
    SetPhase = 104,
    /// Progress (105): done, expected, running, failed.
    Progress = 105,
    /// The expected amount of a sub-activity type (106): activity type, count.
    SetExpected = 106,
    /// A line of post-build-hook output (107): one string field.
    PostBuildLogLine = 107,
    /// A fetch status line (108): one string field.
    FetchStatus = 108,
});

/// Identifies an activity within a connection. [`ActivityId::NONE`] (0) is the parent of
/// activities that have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ActivityId(pub u64);

impl ActivityId {
    /// No activity: the parent of top-level activities.
    pub const NONE: ActivityId = ActivityId(0);

    /// A new identifier, unique within this process: like Nix, the process id in the upper 32
    /// bits and a counter in the lower ones.
    pub fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u64::from(std::process::id()) << 32).wrapping_add(n))
    }
}

impl fmt::Display for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One field of an activity or result: a number (type 0 on the wire) or a byte string (type 1).
/// Strings are bytes because build output need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// A number.
    Int(u64),
    /// A byte string.
    String(Vec<u8>),
}

impl Field {
    /// The wire tag of a number field.
    pub const INT_TAG: u64 = 0;
    /// The wire tag of a string field.
    pub const STRING_TAG: u64 = 1;

    /// The number, if this is one.
    pub fn as_int(&self) -> Option<u64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::String(_) => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Int(_) => None,
            Self::String(s) => Some(s),
        }
    }
}

impl From<u64> for Field {
    fn from(n: u64) -> Self {
        Self::Int(n)
    }
}

impl From<&str> for Field {
    fn from(s: &str) -> Self {
        Self::String(s.as_bytes().to_vec())
    }
}

impl From<String> for Field {
    fn from(s: String) -> Self {
        Self::String(s.into_bytes())
    }
}

impl From<Vec<u8>> for Field {
    fn from(s: Vec<u8>) -> Self {
        Self::String(s)
    }
}

/// Which log lines a client wants: those at most as verbose as the verbosity it sent in
/// `SetOptions`. Before that, Nix's default ([`Verbosity::Info`]) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFilter {
    /// The loudest level the client wants.
    pub verbosity: Verbosity,
}

impl LogFilter {
    /// A filter that lets through levels up to `verbosity`.
    pub fn new(verbosity: Verbosity) -> Self {
        Self { verbosity }
    }

    /// Whether a message at `level` goes to the client (Nix drops it when `level > verbosity`).
    pub fn allows(self, level: Verbosity) -> bool {
        level <= self.verbosity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_numbers() {
        for (i, v) in Verbosity::ALL.iter().enumerate() {
            assert_eq!(v.code() as usize, i);
            assert_eq!(Verbosity::from_wire(i as u64).unwrap(), *v);
        }
        assert_eq!(Verbosity::from_wire(8).unwrap(), Verbosity::Vomit);
        assert_eq!(Verbosity::from_wire(u32::MAX.into()).unwrap(), Verbosity::Vomit);
        assert!(matches!(Verbosity::from_wire(1 << 32), Err(ProtocolError::IntegerTooLarge { .. })));
        assert!(Verbosity::Error < Verbosity::Vomit);
        assert_eq!(Verbosity::default(), Verbosity::Info);
        assert_eq!(Verbosity::Talkative.to_string(), "talkative");
    }

    #[test]
    fn kinds_keep_their_numbers() {
        assert_eq!(ActivityType::from_code(0), ActivityType::Unknown(0));
        assert_eq!(ActivityType::from_code(105), ActivityType::Build);
        assert_eq!(ActivityType::FetchTree.code(), 112);
        assert_eq!(ActivityType::from_code(113), ActivityType::Unknown(113));
        assert_eq!(ResultType::from_code(101), ResultType::BuildLogLine);
        assert_eq!(ResultType::FetchStatus.code(), 108);
        assert_eq!(ResultType::from_code(99).code(), 99);
        for code in 0..300 {
            assert_eq!(ActivityType::from_code(code).code(), code);
            assert_eq!(ResultType::from_code(code).code(), code);
        }
        assert!(matches!(ResultType::from_wire(u64::MAX), Err(ProtocolError::IntegerTooLarge { .. })));
    }

    #[test]
    fn ids_are_unique_and_not_none() {
        let a = ActivityId::next();
        let b = ActivityId::next();
        assert_ne!(a, b);
        assert_ne!(a, ActivityId::NONE);
        assert_eq!(a.0 >> 32, u64::from(std::process::id()));
    }

    #[test]
    fn filter() {
        let f = LogFilter::new(Verbosity::Info);
        assert!(f.allows(Verbosity::Error) && f.allows(Verbosity::Info));
        assert!(!f.allows(Verbosity::Talkative));
        assert!(LogFilter::new(Verbosity::Vomit).allows(Verbosity::Vomit));
        assert!(!LogFilter::new(Verbosity::Error).allows(Verbosity::Warn));
    }

    #[test]
    fn fields() {
        assert_eq!(Field::from(3u64).as_int(), Some(3));
        assert_eq!(Field::from("x").as_bytes(), Some(&b"x"[..]));
        assert_eq!(Field::from(String::from("y")), Field::String(b"y".to_vec()));
        assert_eq!(Field::from(vec![0xffu8]).as_int(), None);
    }
}
