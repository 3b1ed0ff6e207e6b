//! Requests about garbage collection and store maintenance: roots, `CollectGarbage`,
//! `OptimiseStore`, `VerifyStore`.

use std::collections::BTreeSet;

use bytes::BytesMut;
use nix_formats::store_path::StorePath;

use super::wire_struct;
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::wire::encoder::{put_bool, put_u64};
use crate::wire::{DecodeError, Decoder};

wire_struct! {
    /// `AddTempRoot`: the path, kept alive while the connection lasts. Reply: `1`.
    AddTempRoot { /// The path.
        path: StorePath }
}
wire_struct! {
    /// `AddIndirectRoot`: a symlink outside the store (made absolute by Nix). Reply: `1`.
    AddIndirectRoot { /// The symlink's path.
        link: String }
}
wire_struct! {
    /// `AddPermRoot` (Nix only): the store path and the symlink to create. Reply: the symlink's
    /// absolute path. Nix refuses it from untrusted clients.
    AddPermRoot {
        /// The path to keep alive.
        path: StorePath,
        /// Where the symlink goes.
        gc_root: String,
    }
}
wire_struct! {
    /// `SyncWithGC` (obsolete): no fields. Reply: `1`.
    SyncWithGC {}
}
wire_struct! {
    /// `FindRoots`: no fields. Reply: the roots.
    FindRoots {}
}
wire_struct! {
    /// `OptimiseStore`: no fields. Reply: `1`.
    OptimiseStore {}
}
wire_struct! {
    /// `VerifyStore`: two flags. Reply: whether errors remain. Nix refuses repair from untrusted
    /// clients.
    VerifyStore {
        /// Check the contents' hashes too.
        check_contents: bool,
        /// Repair what is broken.
        repair: bool,
    }
}

/// What `CollectGarbage` does (Nix's `GCOptions::GCAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GcAction {
    /// List the live paths (0).
    ReturnLive,
    /// List the dead paths (1).
    ReturnDead,
    /// Delete the dead paths (2).
    DeleteDead,
    /// Delete [`CollectGarbage::paths_to_delete`] if they are dead (3).
    DeleteSpecific,
}

impl GcAction {
    /// The number on the wire.
    pub fn code(self) -> u64 {
        match self {
            Self::ReturnLive => 0,
            Self::ReturnDead => 1,
            Self::DeleteDead => 2,
            Self::DeleteSpecific => 3,
        }
    }

    /// The action for a wire number, if it is one.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::ReturnLive),
            1 => Some(Self::ReturnDead),
            2 => Some(Self::DeleteDead),
            3 => Some(Self::DeleteSpecific),
            _ => None,
        }
    }
}

/// `CollectGarbage`: action (a 32-bit number), paths to delete, "ignore liveness" flag (Nix
/// refuses true), the most bytes to free, then three obsolete 32-bit numbers (written as 0,
/// ignored when read). Reply: the deleted (or listed) paths and the bytes freed. An action above
/// 3, which Nix would cast without checking, is refused here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectGarbage {
    /// What to do.
    pub action: GcAction,
    /// The paths for [`GcAction::DeleteSpecific`].
    pub paths_to_delete: BTreeSet<StorePath>,
    /// Delete even live paths (Nix's daemon refuses this).
    pub ignore_liveness: bool,
    /// Stop after freeing this many bytes (`u64::MAX`: no limit).
    pub max_freed: u64,
}

impl WireEncode for CollectGarbage {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.action.code());
        self.paths_to_delete.encode(out, ctx)?;
        put_bool(out, self.ignore_liveness);
        put_u64(out, self.max_freed);
        for _ in 0..3 {
            put_u64(out, 0);
        }
        Ok(())
    }
}

impl WireDecode for CollectGarbage {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let code = d.read_u32("garbage collector action")?;
        let action = GcAction::from_code(code.into())
            .ok_or(ProtocolError::BadValue { what: "garbage collector action", value: code.into() })?;
        let paths_to_delete = BTreeSet::decode(d, ctx)?;
        let ignore_liveness = d.read_bool("ignoreLiveness flag")?;
        let max_freed = d.read_u64()?;
        for _ in 0..3 {
            d.read_u32("obsolete garbage collector field")?;
        }
        Ok(Self { action, paths_to_delete, ignore_liveness, max_freed })
    }
}
