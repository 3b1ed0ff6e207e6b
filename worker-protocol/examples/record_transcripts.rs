//! Records the conversations of a Nix client with a Nix daemon of the same version, for the
//! transcript tests (see `tests/data/nix-2.26.3-transcripts/README.md`).
//!
//! Usage: `cargo run -p worker-protocol --example record_transcripts -- ROOTFS OUT_DIR`, where
//! ROOTFS is a Debian root file system with `nix-bin` installed (Nix runs there under `chroot` in
//! a private mount namespace, so this needs root) and OUT_DIR receives the recording.

#[path = "../tests/transcript/proxy.rs"]
mod proxy;
#[allow(dead_code)]
#[path = "../tests/transcript/scenario.rs"]
mod scenario;

use std::path::PathBuf;

use scenario::{run_scenario, start_daemon, Client, Env};

/// Where the store lives while recording (fixed, so that recordings are reproducible).
const WORK: &str = "/tmp/casnix-record-transcripts";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, rootfs, out] = &args[..] else {
        eprintln!("usage: record_transcripts ROOTFS OUT_DIR");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    let work = PathBuf::from(WORK);
    if work.exists() {
        std::fs::remove_dir_all(&work).expect("clearing the work directory");
    }
    let env = Env::new(&work);
    let client = Client::Chroot(PathBuf::from(rootfs));
    let mut daemon = start_daemon(&client, &env).await;
    let recorder = proxy::Recorder::start(&env.proxy_socket(), env.daemon_socket());
    let outputs = run_scenario(&client, &env).await;
    let recordings = recorder.finish().await;
    daemon.kill().await.expect("stopping the daemon");

    std::fs::create_dir_all(&out).expect("creating the output directory");
    for (i, (to_daemon, to_client)) in recordings.iter().enumerate() {
        std::fs::write(out.join(format!("conn-{i:02}.to-daemon.bin")), to_daemon).expect("writing");
        std::fs::write(out.join(format!("conn-{i:02}.to-client.bin")), to_client).expect("writing");
    }
    std::fs::write(out.join("store-dir.txt"), format!("{}\n", env.store())).expect("writing");
    let paths = format!("added {}\ndrv {}\nbuilt {}\n", outputs.added, outputs.drv, outputs.built);
    std::fs::write(out.join("paths.txt"), paths).expect("writing");
    std::fs::write(out.join("commands.txt"), outputs.log.join("\n") + "\n").expect("writing");
    std::fs::remove_dir_all(&work).expect("cleaning up");
    println!("recorded {} connections into {}", recordings.len(), out.display());
}
