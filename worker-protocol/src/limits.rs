//! [`Limits`]: the bounds every decoder enforces, so that hostile input cannot make it allocate
//! without bound or recurse without end.

/// Bounds on what a peer may send. Exceeding one gives a typed [`crate::ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest byte string in a message (store paths, messages, derivation fields, ...).
    pub max_string_len: usize,
    /// The most elements in one list, set or map.
    pub max_collection_len: usize,
    /// How deeply collections (and chains of derivation outputs) may nest.
    pub max_depth: usize,
    /// The most bytes buffered to decode one message (see [`crate::wire::WireReader`]).
    pub max_message_len: usize,
    /// The largest frame of a framed stream. Frames are streamed through, never held whole, so
    /// this can be large.
    pub max_frame_len: usize,
}

impl Limits {
    /// The defaults: 64 MiB strings, 1 Mi elements per collection, nesting depth 16, 128 MiB per
    /// buffered message and 64 MiB frames. Nix itself sends frames of at most a few tens of KiB.
    pub const DEFAULT: Limits = Limits {
        max_string_len: 64 << 20,
        max_collection_len: 1 << 20,
        max_depth: 16,
        max_message_len: 128 << 20,
        max_frame_len: 64 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
