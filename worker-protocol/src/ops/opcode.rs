//! [`Opcode`]: the number a client sends to start an operation, with Nix 2.26's numbering.

use std::fmt;

use super::payload::ReplyData;
use crate::error::ProtocolError;

macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A worker-protocol operation, numbered as in Nix 2.26 (`WorkerProto::Op`).
        ///
        /// Every number Nix has ever assigned is here, including obsolete operations (which Nix
        /// 2.26 still serves) and the two removed ones, [`Opcode::QueryFailedPaths`] and
        /// [`Opcode::ClearFailedPaths`], which it refuses (see [`Opcode::refusal_message`]).
        /// Numbers 0, 2, 15, 17 and everything above 47 were never assigned or are long gone;
        /// [`Opcode::from_u64`] refuses them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Opcode {
            $($(#[$doc])* $name,)*
        }

        impl Opcode {
            /// Every opcode, in numeric order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];

            /// The number on the wire.
            pub const fn code(self) -> u64 {
                match self {
                    $(Opcode::$name => $code,)*
                }
            }

            /// The opcode for a wire number. Unassigned numbers give
            /// [`ProtocolError::UnknownOpcode`].
            pub const fn from_u64(code: u64) -> Result<Opcode, ProtocolError> {
                match code {
                    $($code => Ok(Opcode::$name),)*
                    other => Err(ProtocolError::UnknownOpcode(other)),
                }
            }

            /// The operation's name in Nix's sources (`IsValidPath`, ...).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Opcode::$name => stringify!($name),)*
                }
            }
        }
    };
}

opcodes! {
    /// Whether a path is valid (1).
    IsValidPath = 1,
    /// Whether a path can be substituted (3). Obsolete: clients from 1.12 use
    /// `QuerySubstitutablePaths`.
    HasSubstitutes = 3,
    /// The NAR hash of a path (4). Obsolete: clients use `QueryPathInfo`.
    QueryPathHash = 4,
    /// The references of a path (5). Obsolete: clients use `QueryPathInfo`.
    QueryReferences = 5,
    /// The paths that refer to a path (6).
    QueryReferrers = 6,
    /// Adds a file system object to the store, content-addressed (7). Its form changed at 1.25.
    AddToStore = 7,
    /// Adds a text file to the store (8). Obsolete since 1.25: clients use `AddToStore`.
    AddTextToStore = 8,
    /// Builds or substitutes derived paths (9).
    BuildPaths = 9,
    /// Makes a path valid, substituting it if needed (10).
    EnsurePath = 10,
    /// Adds a temporary GC root for the connection's lifetime (11).
    AddTempRoot = 11,
    /// Registers a symlink outside the store as an indirect GC root (12).
    AddIndirectRoot = 12,
    /// Waits for a running garbage collection (13). Obsolete: Nix 2.26 answers at once.
    SyncWithGC = 13,
    /// Lists the GC roots (14).
    FindRoots = 14,
    /// Streams a path in `nix-store --export` form (16). Obsolete since Nix 2.0's clients.
    ExportPath = 16,
    /// The deriver of a path (18). Obsolete: clients use `QueryPathInfo`.
    QueryDeriver = 18,
    /// Sets the client's build settings (19). The first operation of every Nix client.
    SetOptions = 19,
    /// Runs or simulates garbage collection (20).
    CollectGarbage = 20,
    /// Substitution information for one path (21). Obsolete: clients from 1.12 use
    /// `QuerySubstitutablePathInfos`.
    QuerySubstitutablePathInfo = 21,
    /// The output paths of a derivation (22). Obsolete: clients from 1.22 use
    /// `QueryDerivationOutputMap`.
    QueryDerivationOutputs = 22,
    /// Every valid path (23).
    QueryAllValidPaths = 23,
    /// Removed from Nix (24): Nix 2.26 answers "Removed operation 24".
    QueryFailedPaths = 24,
    /// Removed from Nix (25): Nix 2.26 answers "Removed operation 25".
    ClearFailedPaths = 25,
    /// The path info of a path (26).
    QueryPathInfo = 26,
    /// Imports paths in `nix-store --export` form (27). Obsolete: clients from 1.18 use
    /// `AddToStoreNar`.
    ImportPaths = 27,
    /// The output names of a derivation (28). Obsolete.
    QueryDerivationOutputNames = 28,
    /// The store path with a given hash part (29).
    QueryPathFromHashPart = 29,
    /// Substitution information for several paths (30).
    QuerySubstitutablePathInfos = 30,
    /// Which of several paths are valid (31).
    QueryValidPaths = 31,
    /// Which of several paths can be substituted (32).
    QuerySubstitutablePaths = 32,
    /// The valid derivations that produce a path (33).
    QueryValidDerivers = 33,
    /// Deduplicates the store by hard links (34).
    OptimiseStore = 34,
    /// Checks (and optionally repairs) the store (35).
    VerifyStore = 35,
    /// Builds a derivation sent whole by the client (36).
    BuildDerivation = 36,
    /// Adds signatures to a path (37).
    AddSignatures = 37,
    /// Streams a path's NAR (38).
    NarFromPath = 38,
    /// Adds a path with a given path info and its NAR (39).
    AddToStoreNar = 39,
    /// What would have to be built or substituted for some derived paths (40).
    QueryMissing = 40,
    /// The output names and (known) paths of a derivation (41).
    QueryDerivationOutputMap = 41,
    /// Registers a realisation (content-addressed derivations) (42).
    RegisterDrvOutput = 42,
    /// Looks up a realisation (43). Its answer changed form at 1.31.
    QueryRealisation = 43,
    /// Adds several paths in one framed stream (44).
    AddMultipleToStore = 44,
    /// Stores a build log (45).
    AddBuildLog = 45,
    /// Builds derived paths and returns a result for each (46).
    BuildPathsWithResults = 46,
    /// Registers a symlink as a permanent GC root (47). Nix only; Lix has no such operation.
    AddPermRoot = 47,
}

/// Where an operation stands in Nix 2.26.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpStatus {
    /// Current clients send it.
    Current,
    /// Current clients no longer send it, but Nix 2.26's daemon still serves it.
    Obsolete,
    /// Nix 2.26's daemon refuses it with "Removed operation N".
    Removed,
}

impl Opcode {
    /// Where the operation stands in Nix 2.26.
    pub const fn status(self) -> OpStatus {
        use Opcode::*;
        match self {
            QueryFailedPaths | ClearFailedPaths => OpStatus::Removed,
            HasSubstitutes | QueryPathHash | QueryReferences | AddTextToStore | SyncWithGC | ExportPath
            | QueryDeriver | QuerySubstitutablePathInfo | QueryDerivationOutputs | ImportPaths
            | QueryDerivationOutputNames => OpStatus::Obsolete,
            _ => OpStatus::Current,
        }
    }

    /// Whether Nix 2.26 refuses the operation.
    pub const fn is_removed(self) -> bool {
        matches!(self.status(), OpStatus::Removed)
    }

    /// Whether Lix (protocol 1.35) defines the operation at all: all but
    /// [`Opcode::AddPermRoot`].
    pub const fn defined_by_lix(self) -> bool {
        !matches!(self, Opcode::AddPermRoot)
    }

    /// The error Lix 2.93 answers for operations it defines but no longer serves (Nix 2.26 serves
    /// them all). Lix raises it before reading the request's arguments.
    pub const fn lix_refusal(self) -> Option<&'static str> {
        use Opcode::*;
        Some(match self {
            HasSubstitutes => "HasSubstitutes is not supported in Lix. This is not used if the declared server protocol is > 1.12 (Nix 1.0, 2012)",
            QueryPathHash => "QueryPathHash is not supported in Lix, client usages were removed in 2016 in e0204f8d462041387651af388074491fd0bf36d6",
            QueryReferences => "QueryReferences is not supported in Lix, client usages were removed in 2016 in e0204f8d462041387651af388074491fd0bf36d6",
            QueryDeriver => "QueryDeriver is not supported in Lix, client usages were removed in 2016 in e0204f8d462041387651af388074491fd0bf36d6",
            ExportPath => "ExportPath is not supported in Lix, client usage were removed in 2017 in 27dc76c1a5dbe654465245ff5f6bc22e2c8902da",
            ImportPaths => "ImportPaths is not supported in Lix. This is not used if the declared server protocol is >= 1.18 (Nix 2.0, 2016)",
            QueryFailedPaths => "Removed operation 24",
            ClearFailedPaths => "Removed operation 25",
            _ => return None,
        })
    }

    /// The error text Nix 2.26's daemon sends (as `STDERR_ERROR`) for an operation number it does
    /// not serve: `Removed operation N` for the removed operations, `invalid operation N` for
    /// numbers it does not know (and, for numbers beyond 32 bits, the error of its number
    /// reader). `None` for operations it serves.
    ///
    /// Nix raises these before the operation's work starts, so besides sending the error it then
    /// closes the connection (and, as it happens, sends the error a second time first). A server
    /// that wants to keep the connection open can do so for the removed operations, whose
    /// arguments are known: `QueryFailedPaths` has none, and `ClearFailedPaths` carried a set of
    /// paths in the Nix versions that had it.
    pub fn refusal_message(code: u64) -> Option<String> {
        if code > u64::from(u32::MAX) {
            // Nix reads the opcode as an `unsigned int` and fails before looking at it.
            return Some(format!("serialised integer {code} is too large for type 'j'"));
        }
        match Opcode::from_u64(code) {
            Ok(op) if op.is_removed() => Some(format!("Removed operation {code}")),
            Ok(_) => None,
            Err(_) => Some(format!("invalid operation {code}")),
        }
    }
}

impl Opcode {
    /// What the server sends besides the typed reply: the NAR of `NarFromPath` after
    /// `STDERR_LAST`, the export of `ExportPath` in `STDERR_WRITE` messages.
    pub const fn reply_data(self) -> ReplyData {
        match self {
            Opcode::NarFromPath => ReplyData::NarAfterLast,
            Opcode::ExportPath => ReplyData::StderrWrite,
            _ => ReplyData::None,
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl TryFrom<u64> for Opcode {
    type Error = ProtocolError;

    fn try_from(code: u64) -> Result<Self, Self::Error> {
        Opcode::from_u64(code)
    }
}

impl From<Opcode> for u64 {
    fn from(op: Opcode) -> u64 {
        op.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_nix() {
        assert_eq!(Opcode::ALL.len(), 44);
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_u64(op.code()).unwrap(), *op);
        }
        let pairs = [
            (Opcode::IsValidPath, 1),
            (Opcode::HasSubstitutes, 3),
            (Opcode::AddToStore, 7),
            (Opcode::ExportPath, 16),
            (Opcode::QueryDeriver, 18),
            (Opcode::SetOptions, 19),
            (Opcode::QueryPathInfo, 26),
            (Opcode::BuildDerivation, 36),
            (Opcode::AddToStoreNar, 39),
            (Opcode::AddMultipleToStore, 44),
            (Opcode::AddPermRoot, 47),
        ];
        for (op, code) in pairs {
            assert_eq!(op.code(), code, "{op}");
        }
        // Numbers ascend, so ALL is sorted by code.
        assert!(Opcode::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
    }

    #[test]
    fn unknown_and_removed() {
        for code in [0, 2, 15, 17, 48, 1000, u32::MAX.into()] {
            assert!(matches!(Opcode::from_u64(code), Err(ProtocolError::UnknownOpcode(c)) if c == code));
            assert_eq!(Opcode::refusal_message(code), Some(format!("invalid operation {code}")));
        }
        assert!(matches!(Opcode::from_u64(1 << 32), Err(ProtocolError::UnknownOpcode(_))));
        assert_eq!(
            Opcode::refusal_message(1 << 32).as_deref(),
            Some("serialised integer 4294967296 is too large for type 'j'")
        );
        assert_eq!(Opcode::refusal_message(24).as_deref(), Some("Removed operation 24"));
        assert_eq!(Opcode::refusal_message(25).as_deref(), Some("Removed operation 25"));
        assert_eq!(Opcode::refusal_message(1), None);
        assert_eq!(Opcode::refusal_message(16), None, "Nix 2.26 still serves ExportPath");
        let removed: Vec<_> = Opcode::ALL.iter().filter(|o| o.is_removed()).collect();
        assert_eq!(removed, [&Opcode::QueryFailedPaths, &Opcode::ClearFailedPaths]);
        assert!(!Opcode::AddPermRoot.defined_by_lix() && Opcode::AddBuildLog.defined_by_lix());
        assert!(Opcode::ImportPaths.lix_refusal().is_some() && Opcode::IsValidPath.lix_refusal().is_none());
        assert_eq!(Opcode::QueryPathInfo.to_string(), "QueryPathInfo (26)");
    }
}
