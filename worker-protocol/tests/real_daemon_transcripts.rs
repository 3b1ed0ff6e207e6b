//! The real Nix 2.8 client talking to the real Nix 2.8 daemon (worker protocol 1.34) through a
//! recording proxy: every request and every reply of every connection is decoded with
//! `worker_protocol::ops` and must encode back to exactly the bytes Nix sent. Needs Nix installed
//! (`scripts/test-all.sh` installs it); fails without it.

mod transcript;

use nix_formats::store_path::StoreDir;
use transcript::proxy::Recorder;
use transcript::scenario::{run_scenario, start_daemon, Client, Env};
use transcript::{check_conversation, opcodes, operations, Conversation, Outcome};
use worker_protocol::ops::{Opcode, Request, Response};
use worker_protocol::ProtocolVersion;

#[tokio::test]
async fn nix_2_8_client_and_daemon_conversations_round_trip() {
    let dir = tempfile::Builder::new().prefix("casnix-transcript-").tempdir_in("/tmp").unwrap();
    let env = Env::new(dir.path());
    let client = Client::Installed;
    let mut daemon = start_daemon(&client, &env).await;
    let recorder = Recorder::start(&env.proxy_socket(), env.daemon_socket());
    let outputs = run_scenario(&client, &env).await;
    let recordings = recorder.finish().await;
    daemon.kill().await.unwrap();

    let store_dir = StoreDir::new(&env.store());
    let conversations: Vec<Conversation> = recordings
        .iter()
        .enumerate()
        .map(|(i, (up, down))| check_conversation(up, down, &store_dir).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    assert!(conversations.len() >= 15, "{} connections", conversations.len());
    for c in &conversations {
        assert_eq!(c.version, ProtocolVersion::new(1, 34));
        assert_eq!(c.info.daemon_nix_version.as_deref(), Some("2.8.0"));
    }
    let seen = opcodes(&conversations);
    for op in [
        Opcode::SetOptions,
        Opcode::AddToStore,
        Opcode::IsValidPath,
        Opcode::QueryPathInfo,
        Opcode::QueryReferrers,
        Opcode::AddSignatures,
        Opcode::AddToStoreNar,
        Opcode::QueryMissing,
        Opcode::BuildPaths,
        Opcode::BuildPathsWithResults,
        Opcode::EnsurePath,
        Opcode::AddTempRoot,
        Opcode::AddIndirectRoot,
        Opcode::FindRoots,
        Opcode::CollectGarbage,
        Opcode::VerifyStore,
        Opcode::OptimiseStore,
    ] {
        assert!(seen.contains(&op), "no {op} among {seen:?}");
    }
    let ops = operations(&conversations);
    // The reply to `nix-store --add` is the path the client printed.
    let added = store_dir.parse(&outputs.added).unwrap();
    assert!(ops.iter().any(|e| matches!(
        (&e.request, &e.outcome),
        (Request::AddToStore(_), Outcome::Reply(Response::AddToStore(r))) if r.path() == &added
    )));
    // The build of `nix build` reports its output.
    assert!(ops.iter().any(|e| matches!(
        &e.outcome,
        Outcome::Reply(Response::BuildPathsWithResults(results)) if results.iter().any(|r| !r.result.built_outputs.is_empty())
    )));
    let built = store_dir.parse(&outputs.built).unwrap();
    assert!(ops.iter().any(|e| matches!(
        &e.outcome,
        Outcome::Reply(Response::QueryDerivationOutputMap(m)) if m.values().any(|p| p.as_ref() == Some(&built))
    )));
}
