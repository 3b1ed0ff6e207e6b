//! Both connection types between real Nix 2.8 programs: the real clients (`nix-store`, `nix`,
//! `nix-instantiate`) talk to a relay built from a `ServerConnection`, which passes every
//! request through a `ClientConnection` to the real `nix-daemon`. Whatever the clients print
//! must equal what they print talking to the daemon directly. The relay offers 1.34, 1.24 and
//! 1.21, so the real clients send framed payloads, NARs inline and data pulled with `STDERR_READ`.
//! These tests need Nix installed (`scripts/test-all.sh` installs it) and fail without it.

mod nix_env;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use nix_env::*;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use worker_protocol::connection::{ClientConnection, ServerConfig, ServerConnection};
use worker_protocol::logger::{LogCollector, LogMessage, RemoteError};
use worker_protocol::ops::{Content, Payload, Request, Response};
use worker_protocol::types::ClientHandshakeInfo;
use worker_protocol::handshake::WorkerConfig;
use worker_protocol::{ProtocolError, ProtocolVersion};

/// The payload forms the relay has seen.
type Seen = Arc<Mutex<Vec<Payload>>>;

/// Serves one real client: every request goes to the daemon, every reply and log message back.
async fn relay_one(
    stream: tokio::net::UnixStream,
    nix_socket: &Path,
    cfg: ServerConfig,
    client_cfg: worker_protocol::connection::ClientConfig,
    seen: Seen,
) -> Result<(), ProtocolError> {
    let (r, w) = stream.into_split();
    let mut server = ServerConnection::handshake(r, w, &cfg).await?;
    let mut client = ClientConnection::connect_unix(nix_socket, &client_cfg).await?.with_sink(LogCollector::new(64 << 20));
    while let Some(request) = server.next_request().await? {
        seen.lock().unwrap().push(request.payload(server.version()));
        let result = match &request {
            Request::NarFromPath(r) => {
                let mut nar = Vec::new();
                match client.nar_from_path(&r.path, &mut nar).await {
                    Ok(_) => {
                        forward_logs(&mut server, &mut client).await?;
                        let out = server.nar_reply().await?;
                        out.write_all(&nar).await?;
                        out.flush().await?;
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
            Request::ExportPath(r) => {
                let mut data = Vec::new();
                let exported = client.export_path(&r.path, &mut data).await;
                if exported.is_ok() {
                    let mut out = server.export_writer()?;
                    out.write_all(&data).await?;
                    out.flush().await?;
                }
                exported.map(|()| Response::ExportPath)
            }
            _ => {
                let mut payload = server.payload()?;
                client.request(request.clone(), Some(&mut payload)).await
            }
        };
        forward_logs(&mut server, &mut client).await?;
        match result {
            Ok(response) => server.respond(&response).await?,
            Err(ProtocolError::Remote { message, status }) => {
                server.fail(&RemoteError::new(message).with_status(status.try_into().unwrap_or(1))).await?
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Sends the log messages the daemon sent during the last call on to the real client.
async fn forward_logs<R, W, R2, W2>(
    server: &mut ServerConnection<R, W>,
    client: &mut ClientConnection<R2, W2, LogCollector>,
) -> Result<(), ProtocolError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    for message in std::mem::take(&mut client.sink_mut().messages) {
        if let LogMessage::Write(data) = message {
            server.logger().write_data(&data).await?;
        } else {
            server.logger().forward(&message).await?;
        }
    }
    client.sink_mut().data.clear();
    Ok(())
}

/// Starts the relay on `socket` for the daemon of `nix`, speaking at most `version` on both
/// sides (so requests pass through in the form they came in).
fn start_relay(nix: &NixDaemon, socket: &Path, version: ProtocolVersion, seen: Seen) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    let daemon_socket = nix.socket();
    let cfg = ServerConfig {
        worker: WorkerConfig { version, min_version: ProtocolVersion::new(1, 10), ..WorkerConfig::default() },
        info: ClientHandshakeInfo { daemon_nix_version: Some("2.8.0".into()), remote_trusts_us: None },
        store_dir: nix.store_dir(),
        ..ServerConfig::default()
    };
    let client_cfg = nix.client_config(version);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (daemon_socket, cfg, client_cfg, seen) = (daemon_socket.clone(), cfg.clone(), client_cfg.clone(), seen.clone());
            tokio::spawn(async move {
                if let Err(e) = relay_one(stream, &daemon_socket, cfg, client_cfg, seen).await {
                    panic!("relay: {e}");
                }
            });
        }
    })
}

/// Runs `program args` through the relay (and with `stdin`, if given).
async fn via_relay(nix: &NixDaemon, relay: &Path, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = nix.command(program, &format!("unix://{}", relay.display()));
    cmd.args(args);
    if stdin.is_some() {
        cmd.stdin(std::process::Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).await.unwrap();
        drop(pipe);
    }
    tokio::time::timeout(LIMIT, child.wait_with_output()).await.expect("the command finishes").unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const EXPR: &str = r#"derivation {
  name = "relayed";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo building relayed; echo hi > $out" ];
}
"#;

/// At the clients' own version (1.34): framed payloads.
#[tokio::test]
async fn real_clients_through_our_server_and_client() {
    let seen = through_the_relay(ProtocolVersion::new(1, 34)).await;
    assert!(seen.contains(&Payload::Framed(Content::Nar)), "{seen:?}");
}

/// At 1.24: `AddToStore` with a NAR inline, which the server finds the end of by parsing it.
#[tokio::test]
async fn real_clients_at_1_24() {
    let seen = through_the_relay(ProtocolVersion::new(1, 24)).await;
    assert!(seen.contains(&Payload::InlineNar), "{seen:?}");
}

/// At 1.21: `AddToStoreNar` data pulled from the client with `STDERR_READ`.
#[tokio::test]
async fn real_clients_at_1_21() {
    let seen = through_the_relay(ProtocolVersion::new(1, 21)).await;
    assert!(seen.contains(&Payload::StderrReadPulled(Content::Nar)), "{seen:?}");
}

/// Runs the real clients through the relay at `version`; returns the payload forms it relayed.
async fn through_the_relay(version: ProtocolVersion) -> Vec<Payload> {
    let nix = NixDaemon::start().await;
    let relay = nix.path("relay.sock");
    let seen = Seen::default();
    let relay_task = start_relay(&nix, &relay, version, seen.clone());

    // Adding, dumping, querying.
    let tree = nix.path("home/tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/file"), vec![b'x'; 300_000]).unwrap();
    std::os::unix::fs::symlink("sub/file", tree.join("link")).unwrap();
    let added = ok(via_relay(&nix, &relay, "nix-store", &["--add", tree.to_str().unwrap()], None).await, "add");
    let direct = nix.nix_ok("nix-store", &["--add", tree.to_str().unwrap()]).await;
    assert_eq!(added, direct);
    let path = added.trim();
    let dumped = via_relay(&nix, &relay, "nix-store", &["--dump", path], None).await;
    assert!(dumped.status.success());
    assert_eq!(dumped.stdout, nix.nix_bytes("nix-store", &["--dump", path]).await);
    for args in [&["path-info", "--json", path][..], &["path-info", "-rsS", "--sigs", path][..]] {
        let relayed = ok(via_relay(&nix, &relay, "nix", args, None).await, "path-info");
        assert_eq!(relayed, nix.nix_ok("nix", args).await, "{args:?}");
    }

    // A derivation instantiated and built through the relay; its build output comes back as
    // log messages.
    let expr = nix.path("home/expr.nix");
    std::fs::write(&expr, EXPR).unwrap();
    let drv = ok(via_relay(&nix, &relay, "nix-instantiate", &[expr.to_str().unwrap()], None).await, "instantiate");
    let drv = drv.trim();
    let built = via_relay(&nix, &relay, "nix-store", &["--realise", drv], None).await;
    let stderr = String::from_utf8_lossy(&built.stderr).into_owned();
    let out_path = ok(built, "realise");
    assert!(stderr.contains("building relayed"), "{stderr}");
    assert_eq!(out_path, nix.nix_ok("nix-store", &["-q", "--outputs", drv]).await);
    let refs = ok(via_relay(&nix, &relay, "nix-store", &["-q", "--references", drv], None).await, "references");
    assert_eq!(refs, nix.nix_ok("nix-store", &["-q", "--references", drv]).await);

    // Export through the relay, delete, import through the relay (AddToStoreNar, framed).
    let exported = via_relay(&nix, &relay, "nix-store", &["--export", path], None).await;
    assert!(exported.status.success());
    assert_eq!(exported.stdout, nix.nix_bytes("nix-store", &["--export", path]).await);
    let mut deleted = false;
    for _ in 0..200 {
        if nix.nix("nix-store", &["--delete", path]).await.status.success() {
            deleted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(deleted, "{path} stays alive");
    let imported = ok(via_relay(&nix, &relay, "nix-store", &["--import"], Some(&exported.stdout)).await, "import");
    assert_eq!(imported.trim(), path);

    // Garbage collection listings and verification.
    let relayed = ok(via_relay(&nix, &relay, "nix-store", &["--gc", "--print-dead"], None).await, "gc");
    assert_eq!(relayed, nix.nix_ok("nix-store", &["--gc", "--print-dead"]).await);
    ok(via_relay(&nix, &relay, "nix-store", &["--verify", "--check-contents"], None).await, "verify");
    // An error from the daemon reaches the real client through both connections.
    let bogus = format!("{}/00000000000000000000000000000000-bogus", nix.store_dir().as_str());
    let failed = via_relay(&nix, &relay, "nix-store", &["--realise", &bogus], None).await;
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("bogus"), "{}", String::from_utf8_lossy(&failed.stderr));
    relay_task.abort();
    let seen = seen.lock().unwrap().clone();
    seen
}
