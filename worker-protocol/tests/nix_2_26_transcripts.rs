//! Conversations of the real Nix 2.26.3 client with the real Nix 2.26.3 daemon (worker protocol
//! 1.38), recorded by `examples/record_transcripts.rs` into `tests/data/nix-2.26.3-transcripts/`
//! (see its README): every request and reply decodes with `worker_protocol::ops` and encodes
//! back to exactly the recorded bytes, and the values are the ones the commands dealt with.

mod transcript;

use std::collections::BTreeMap;

use nix_formats::hash::{Algorithm, Hash};
use nix_formats::signature::TrustedKeys;
use nix_formats::store_path::StoreDir;
use transcript::scenario::secret_key;
use transcript::{check_conversation, opcodes, operations, Conversation, Outcome};
use worker_protocol::ops::request::add::AddToStore;
use worker_protocol::ops::{Opcode, Request, Response};
use worker_protocol::types::{TrustedFlag, UnkeyedValidPathInfo};
use worker_protocol::ProtocolVersion;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nix-2.26.3-transcripts");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load() -> (StoreDir, BTreeMap<String, String>, Vec<Conversation>) {
    let store_dir = StoreDir::new(String::from_utf8(read("store-dir.txt")).unwrap().trim());
    let paths = String::from_utf8(read("paths.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut conversations = Vec::new();
    for i in 0.. {
        let up = format!("conn-{i:02}.to-daemon.bin");
        if !std::path::Path::new(&format!("{DATA}/{up}")).exists() {
            break;
        }
        let down = read(&format!("conn-{i:02}.to-client.bin"));
        let c = check_conversation(&read(&up), &down, &store_dir).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        conversations.push(c);
    }
    (store_dir, paths, conversations)
}

#[test]
fn every_recorded_message_round_trips() {
    let (_, _, conversations) = load();
    assert_eq!(conversations.len(), 20);
    for c in &conversations {
        assert_eq!(c.version, ProtocolVersion::new(1, 38));
        assert_eq!(c.features, (vec![], vec![]), "Nix 2.26 has no protocol features");
        assert_eq!(c.info.daemon_nix_version.as_deref(), Some("2.26.3"));
        assert_eq!(c.info.remote_trusts_us, Some(TrustedFlag::Trusted));
        assert!(matches!(c.exchanges.first().map(|e| &e.request), Some(Request::SetOptions(_))));
    }
    let seen = opcodes(&conversations);
    for op in [
        Opcode::AddToStore,
        Opcode::IsValidPath,
        Opcode::QueryPathInfo,
        Opcode::QueryReferrers,
        Opcode::AddSignatures,
        Opcode::AddToStoreNar,
        Opcode::QueryMissing,
        Opcode::BuildPaths,
        Opcode::BuildPathsWithResults,
        Opcode::QueryDerivationOutputMap,
        Opcode::AddTempRoot,
        Opcode::AddIndirectRoot,
        Opcode::FindRoots,
        Opcode::CollectGarbage,
        Opcode::VerifyStore,
        Opcode::OptimiseStore,
    ] {
        assert!(seen.contains(&op), "no {op} among {seen:?}");
    }
}

#[test]
fn recorded_values() {
    let (store_dir, paths, conversations) = load();
    let ops = operations(&conversations);
    let added = store_dir.parse(&paths["added"]).unwrap();
    let built = store_dir.parse(&paths["built"]).unwrap();
    let drv = store_dir.parse(&paths["drv"]).unwrap();

    // `nix-store --add`: the framed NAR of hello.txt, answered with the path info.
    let add = ops.iter().find(|e| matches!(&e.request, Request::AddToStore(AddToStore::Framed(f)) if f.name == "hello.txt")).unwrap();
    let Request::AddToStore(AddToStore::Framed(f)) = &add.request else { unreachable!() };
    assert_eq!(f.method.to_string(), "fixed:r:sha256");
    let Outcome::Reply(Response::AddToStore(reply)) = &add.outcome else { panic!("{:?}", add.outcome) };
    assert_eq!(reply.path(), &added);

    // The derivation went in as text; its output was built and is in the output map.
    assert!(ops.iter().any(|e| matches!(
        (&e.request, &e.outcome),
        (Request::AddToStore(AddToStore::Framed(f)), Outcome::Reply(Response::AddToStore(r)))
            if f.method.to_string() == "text:sha256" && r.path() == &drv
    )));
    assert!(ops.iter().any(|e| matches!(
        &e.outcome,
        Outcome::Reply(Response::QueryDerivationOutputMap(m)) if m.get("out") == Some(&Some(built.clone()))
    )));
    let with_results = ops
        .iter()
        .find_map(|e| match &e.outcome {
            Outcome::Reply(Response::BuildPathsWithResults(r)) if !r.is_empty() => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let result = &with_results[0].result;
    assert!(result.built_outputs.contains_key("out"), "{result:?}");
    assert!(result.times_built >= 1 && result.start_time > 0, "{result:?}");

    // `nix store sign` signed the fingerprint of the daemon's path info with the scenario's key.
    let info: UnkeyedValidPathInfo = ops
        .iter()
        .find_map(|e| match (&e.request, &e.outcome) {
            (Request::QueryPathInfo(q), Outcome::Reply(Response::QueryPathInfo(Some(i)))) if q.path == added => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    let sigs = ops
        .iter()
        .find_map(|e| match &e.request {
            Request::AddSignatures(s) if s.path == added => Some(s.sigs.clone()),
            _ => None,
        })
        .unwrap();
    let mut keys = TrustedKeys::new();
    keys.insert(secret_key().public());
    let keyed = info.with_path(added.clone());
    assert_eq!(sigs.len(), 1);
    assert!(keyed.check_signature(&store_dir, &keys, sigs.iter().next().unwrap()).unwrap());

    // `nix-store --import`: AddToStoreNar whose framed NAR matches the info it carries.
    let import = ops.iter().find(|e| matches!(&e.request, Request::AddToStoreNar(n) if n.info.path == added)).unwrap();
    let Request::AddToStoreNar(n) = &import.request else { unreachable!() };
    assert_eq!(n.info.nar_hash, Hash::of(Algorithm::Sha256, &import.payload));
    assert_eq!(n.info.nar_size, import.payload.len() as u64);
    assert!(matches!(import.outcome, Outcome::Reply(Response::AddToStoreNar)));
}

/// The checker notices changed bytes: a changed padding byte, a cut-off reply, extra bytes.
#[test]
fn tampering_is_detected() {
    let (store_dir, _, _) = load();
    let up = read("conn-01.to-daemon.bin");
    let down = read("conn-01.to-client.bin");
    assert!(check_conversation(&up, &down, &store_dir).is_ok());
    let mut longer = down.clone();
    longer.push(0);
    assert!(check_conversation(&up, &longer, &store_dir).is_err());
    assert!(check_conversation(&up, &down[..down.len() - 1], &store_dir).is_err());
    let mut more = up.clone();
    more.extend_from_slice(&Opcode::QueryFailedPaths.code().to_le_bytes());
    let err = check_conversation(&more, &down, &store_dir).unwrap_err();
    assert!(err.contains("Removed operation 24"), "{err}");
    // The last byte the client sent is padding of a string or part of a number; changing it to
    // a value with bits set must break decoding or re-encoding.
    let mut changed = up.clone();
    *changed.last_mut().unwrap() ^= 0x80;
    assert!(check_conversation(&changed, &down, &store_dir).is_err());
}
