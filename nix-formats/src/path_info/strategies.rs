//! Proptest strategies for path infos, shared by the unit tests of `path_info` and `narinfo`.

use proptest::prelude::*;

use super::ValidPathInfo;
use crate::content_address::{ContentAddress, Method};
use crate::hash::{Algorithm, Hash};
use crate::store_path::StorePath;

/// Any valid store path.
pub(crate) fn store_path() -> impl Strategy<Value = StorePath> {
    (proptest::array::uniform20(any::<u8>()), "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,30}")
        .prop_map(|(digest, name)| StorePath::from_digest(&digest, &name).unwrap())
}

/// A hash of `algo` with random digest bytes.
pub(crate) fn hash_of(algo: Algorithm) -> impl Strategy<Value = Hash> {
    proptest::collection::vec(any::<u8>(), algo.size()).prop_map(move |d| Hash::from_digest(algo, &d).unwrap())
}

/// A hash of any algorithm.
pub(crate) fn any_hash() -> impl Strategy<Value = Hash> {
    prop_oneof![
        hash_of(Algorithm::Md5),
        hash_of(Algorithm::Sha1),
        hash_of(Algorithm::Sha256),
        hash_of(Algorithm::Sha512)
    ]
}

/// Any content address (text addresses use SHA-256).
pub(crate) fn content_address() -> impl Strategy<Value = ContentAddress> {
    prop_oneof![
        hash_of(Algorithm::Sha256).prop_map(|hash| ContentAddress { method: Method::Text, hash }),
        any_hash().prop_map(|hash| ContentAddress { method: Method::Flat, hash }),
        any_hash().prop_map(|hash| ContentAddress { method: Method::Nar, hash }),
    ]
}

/// A signature-like string: no line breaks (so it fits a narinfo line).
pub(crate) fn sig_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.:+/=_ -]{0,100}"
}

/// A path info with SHA-256 NAR hash and every field randomly set.
pub(crate) fn path_info() -> impl Strategy<Value = ValidPathInfo> {
    (
        store_path(),
        proptest::option::of(store_path()),
        hash_of(Algorithm::Sha256),
        proptest::collection::btree_set(store_path(), 0..5),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::btree_set(sig_text(), 0..4),
        proptest::option::of(content_address()),
    )
        .prop_map(|(path, deriver, nar_hash, mut references, self_ref, time, size, ultimate, sigs, ca)| {
            if self_ref {
                references.insert(path.clone());
            }
            ValidPathInfo {
                path,
                deriver,
                nar_hash,
                references,
                registration_time: time,
                nar_size: size,
                ultimate,
                sigs,
                ca,
            }
        })
}
