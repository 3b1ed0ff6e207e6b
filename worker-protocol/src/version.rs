//! Protocol versions and the numbers that open a connection.
//!
//! A version travels as one number, `major << 8 | minor`, read as an unsigned 32-bit value; bits
//! 16–31 carry nothing and are ignored, as Nix ignores them. The worker protocol (daemon socket,
//! `ssh-ng://`) is major 1; the serve protocol (`nix-store --serve`, `ssh://`) is major 2.

use std::fmt;

use crate::error::ProtocolError;

/// A protocol version: major and minor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion {
    major: u8,
    minor: u8,
}

impl ProtocolVersion {
    /// The version `major.minor`.
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// The major number.
    pub const fn major(self) -> u8 {
        self.major
    }

    /// The minor number.
    pub const fn minor(self) -> u8 {
        self.minor
    }

    /// Whether this version is `major.minor` or later.
    pub const fn at_least(self, major: u8, minor: u8) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }

    /// The number sent on the wire: `major << 8 | minor`.
    pub const fn to_wire(self) -> u64 {
        (self.major as u64) << 8 | self.minor as u64
    }

    /// Reads a version number as Nix does: it must fit in 32 bits; bits above 15 are ignored.
    pub fn from_wire(value: u64) -> Result<Self, ProtocolError> {
        if value > u64::from(u32::MAX) {
            return Err(ProtocolError::IntegerTooLarge { what: "protocol version", value, max: u32::MAX.into() });
        }
        Ok(Self { major: (value >> 8) as u8, minor: value as u8 })
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The first number a worker-protocol client sends (`cxin` little-endian).
pub const WORKER_MAGIC_1: u64 = 0x6e69_7863;
/// The number a worker-protocol server answers with (`oixd` little-endian).
pub const WORKER_MAGIC_2: u64 = 0x6478_696f;
/// The newest worker protocol version this crate speaks (Nix 2.26).
pub const WORKER_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::new(1, 38);
/// The oldest worker protocol version that can be negotiated at all: Nix 2.26 refuses anything
/// older, in both directions. [`crate::handshake::WorkerConfig::min_version`] can only raise it.
pub const WORKER_MIN_VERSION: ProtocolVersion = ProtocolVersion::new(1, 10);
/// The oldest worker protocol version accepted by default: the range this crate's operations are
/// written for (1.21, Nix 2.0, to 1.38). Newer Nix itself requires at least 1.18.
pub const WORKER_DEFAULT_MIN_VERSION: ProtocolVersion = ProtocolVersion::new(1, 21);

/// The first number a serve-protocol client sends.
pub const SERVE_MAGIC_1: u64 = 0x390c_9deb;
/// The number a serve-protocol server answers with.
pub const SERVE_MAGIC_2: u64 = 0x5452_eecb;
/// The newest serve protocol version this crate speaks (Nix 2.26).
pub const SERVE_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::new(2, 7);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers() {
        assert_eq!(ProtocolVersion::new(1, 10).to_wire(), 0x010a);
        assert_eq!(SERVE_PROTOCOL_VERSION.to_wire(), 0x0207);
        assert_eq!(ProtocolVersion::from_wire(0x0126).unwrap(), WORKER_PROTOCOL_VERSION);
        // Bits 16..31 are ignored, as Nix's GET_PROTOCOL_MAJOR/MINOR ignore them.
        assert_eq!(ProtocolVersion::from_wire(0x0101_010a).unwrap(), ProtocolVersion::new(1, 10));
        assert!(matches!(
            ProtocolVersion::from_wire(1 << 32),
            Err(ProtocolError::IntegerTooLarge { .. })
        ));
    }

    #[test]
    fn ordering_and_checks() {
        let v = ProtocolVersion::new(1, 30);
        assert!(v.at_least(1, 30) && v.at_least(1, 29) && !v.at_least(1, 31) && !v.at_least(2, 0));
        assert!(ProtocolVersion::new(1, 38) < ProtocolVersion::new(2, 0));
        assert_eq!(v.to_string(), "1.30");
        assert_eq!((v.major(), v.minor()), (1, 30));
    }
}
