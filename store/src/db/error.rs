//! The database layer's typed errors.

use std::path::PathBuf;

use nix_formats::derivation::{DrvPathError, OutputPathError};

/// Everything that can go wrong opening, reading or writing the path-info database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A file-system operation on the database directory failed.
    #[error("{context} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite reported an error.
    #[error("SQLite error while {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The database stayed busy (locked by other writers) past the configured timeout.
    #[error("SQLite database '{}' is busy", path.display())]
    Busy {
        /// The database file.
        path: PathBuf,
    },
    /// The schema file names a version newer than this crate knows.
    #[error("current Nix store schema is version {found}, but casnix only supports {supported}")]
    SchemaTooNew {
        /// The version found.
        found: u32,
        /// The newest supported version.
        supported: u32,
    },
    /// The schema file names a version that Nix must migrate first.
    #[error("Nix store schema version {found} is too old; let a current Nix upgrade it (casnix needs {needed})")]
    SchemaTooOld {
        /// The version found.
        found: u32,
        /// The version needed.
        needed: u32,
    },
    /// The schema file does not hold a number.
    #[error("'{}' is corrupt", path.display())]
    SchemaFileCorrupt {
        /// The schema file.
        path: PathBuf,
    },
    /// A read-only open found no database (or one whose schema file is missing).
    #[error("Nix database '{}' does not exist, and cannot be created in read-only mode", path.display())]
    DatabaseMissing {
        /// The database directory.
        path: PathBuf,
    },
    /// casnix's own database file has a newer version than this crate knows.
    #[error("casnix database '{}' is version {found}, but this casnix only supports {supported}", path.display())]
    CasnixSchemaTooNew {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest supported version.
        supported: i64,
    },
    /// A write was attempted on a database opened read-only.
    #[error("the Nix database was opened read-only")]
    ReadOnly,
    /// A path that must be valid is not.
    #[error("path '{0}' is not valid")]
    InvalidPath(String),
    /// A registered path refers to a path that is neither valid nor registered with it.
    #[error("cannot register path '{path}': its reference '{reference}' is not valid")]
    InvalidReference {
        /// The path being registered.
        path: String,
        /// The missing reference.
        reference: String,
    },
    /// The references of the paths being registered form a cycle.
    #[error("cycle detected in the references of '{path}' from '{parent}'")]
    Cycle {
        /// The path reached twice.
        path: String,
        /// The path whose reference closed the cycle.
        parent: String,
    },
    /// The same path appears twice in one registration.
    #[error("path '{0}' is given twice in one registration")]
    DuplicatePath(String),
    /// Nix stores only SHA-256 NAR hashes.
    #[error("cannot register path '{path}': its NAR hash is {algorithm}, not sha256")]
    NarHashNotSha256 {
        /// The path.
        path: String,
        /// The algorithm it has.
        algorithm: String,
    },
    /// A path claims a content address its store path does not match.
    #[error("cannot add path '{0}' to the Nix store because it claims to be content-addressed but isn't")]
    NotContentAddressed(String),
    /// A new `.drv` path was registered without its parsed derivation.
    #[error("cannot register derivation '{0}': its parsed derivation was not supplied")]
    MissingDerivation(String),
    /// The supplied derivation does not produce the `.drv` path it was given for.
    #[error("derivation supplied for '{path}' belongs to '{actual}'")]
    DerivationMismatch {
        /// The `.drv` path being registered.
        path: String,
        /// The path the supplied derivation's text gets.
        actual: String,
    },
    /// The supplied derivation's own store path cannot be computed.
    #[error("derivation for '{path}': {source}")]
    DerivationPath {
        /// The `.drv` path being registered.
        path: String,
        /// Why its path cannot be computed.
        source: DrvPathError,
    },
    /// An output path of a supplied derivation cannot be computed.
    #[error("derivation '{path}': {source}")]
    DerivationOutput {
        /// The `.drv` path being registered.
        path: String,
        /// Why the output path cannot be computed.
        source: OutputPathError,
    },
    /// A path cannot be invalidated because valid paths outside the set refer to it.
    #[error("cannot delete path '{path}' because it is in use by {}", referrers.join(", "))]
    PathInUse {
        /// The path.
        path: String,
        /// Its referrers outside the set being invalidated.
        referrers: Vec<String>,
    },
    /// A number does not fit the database's signed 64-bit integers.
    #[error("cannot register path '{path}': its {field} is out of range")]
    ValueOutOfRange {
        /// The path.
        path: String,
        /// The field (`narSize` or `registrationTime`).
        field: &'static str,
    },
    /// A hash part to look up does not have 32 characters.
    #[error("invalid hash part '{0}'")]
    InvalidHashPart(String),
    /// A row in the database cannot be decoded.
    #[error("invalid-path entry for '{path}': {reason}")]
    CorruptRow {
        /// The path (or row) concerned.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A castore root is larger than [`crate::db::MAX_CASTORE_ROOT_LEN`].
    #[error("castore root for '{path}' has {len} bytes, more than the limit")]
    CastoreRootTooLarge {
        /// The path.
        path: String,
        /// The root's size.
        len: usize,
    },
    /// A realisation conflicts with the one already registered.
    #[error("trying to register a realisation of '{id}', but another one is registered: local {local}, new {new}")]
    IncompatibleRealisation {
        /// The derivation output.
        id: String,
        /// The registered output path.
        local: String,
        /// The offered output path.
        new: String,
    },
    /// A realisation depends on a realisation that is not registered, or registered differently.
    #[error("cannot register the realisation '{id}': it depends on '{dependency}', which {problem}")]
    BadDependentRealisation {
        /// The derivation output being registered.
        id: String,
        /// The dependency.
        dependency: String,
        /// "is not registered" or "maps to another path here".
        problem: &'static str,
    },
    /// The content-addressed-derivation tables do not exist (read-only open of a database that
    /// never had them).
    #[error("the Nix database has no realisation tables (and was opened read-only)")]
    NoRealisationTables,
}

impl DbError {
    /// Wraps a SQLite error with what was being done.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
        move |source| DbError::Sqlite { context, source }
    }

    /// Wraps an I/O error with what was being done and on which path.
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DbError {
        let path = path.into();
        move |source| DbError::Io { context, path, source }
    }

    /// Whether this is SQLite saying another connection holds a lock (worth retrying).
    pub(crate) fn is_busy(&self) -> bool {
        match self {
            DbError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. } => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::FileLockingProtocolFailed
            ),
            _ => false,
        }
    }
}
