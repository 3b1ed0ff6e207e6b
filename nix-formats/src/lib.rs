//! Nix's data formats, byte-exact with Nix.
//!
//! Every module handles one format and knows nothing of sockets or storage: input comes from byte
//! slices or [`std::io::Read`], output goes to [`std::io::Write`]. Parsers enforce explicit limits and
//! return typed errors; none of them panics on hostile input.

pub mod build_result;
pub mod content_address;
pub mod derivation;
pub mod derived_path;
pub mod git;
pub mod hash;
pub mod nar;
pub mod narinfo;
pub mod nixbase32;
pub mod path_info;
pub mod realisation;
pub mod refscan;
pub mod signature;
pub mod store_path;
