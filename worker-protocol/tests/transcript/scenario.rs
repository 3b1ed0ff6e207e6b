//! The client commands whose conversations with a real daemon are recorded: store paths added,
//! queried, signed, built, rooted, collected, exported and imported again, on an isolated store.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// Which Nix runs the commands.
pub enum Client {
    /// The Nix on `PATH`.
    Installed,
    /// The Nix of a Debian root file system at this path, run in a private mount namespace that
    /// binds `/proc`, `/dev` and `/tmp` into it (so paths under `/tmp` are shared).
    Chroot(PathBuf),
}

impl Client {
    /// A command running `program args` with exactly `vars` (and `PATH`) in its environment.
    pub fn command(&self, vars: &[(String, String)], program: &str, args: &[String]) -> Command {
        let mut cmd = match self {
            Client::Installed => {
                let mut cmd = Command::new(program);
                cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).envs(vars.iter().cloned()).args(args);
                cmd
            }
            Client::Chroot(root) => {
                let root = root.display();
                let script = format!(
                    "mount --rbind /proc {root}/proc && mount --rbind /dev {root}/dev && mount --bind /tmp {root}/tmp && \
                     exec chroot {root} env -i PATH=/usr/bin:/bin \"$@\""
                );
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "sh", "-c", &script, "sh"]);
                cmd.args(vars.iter().map(|(k, v)| format!("{k}={v}"))).arg(program).args(args);
                cmd
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }
}

/// The directories of one recording, all under `root` (which must be under `/tmp`).
pub struct Env {
    pub root: PathBuf,
}

/// The expression built by the scenario: `n` makes distinct derivations.
const EXPR: &str = r#"{ n ? "1" }: derivation {
  name = "greeting-${n}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo hello ${n} > $out" ];
}
"#;

/// A fixed signing key, so recordings are reproducible.
pub fn secret_key() -> nix_formats::signature::SecretKey {
    nix_formats::signature::SecretKey::from_seed("casnix-test-1", &[7; 32]).unwrap()
}

impl Env {
    /// Creates the directories and input files under `root`.
    pub fn new(root: &Path) -> Self {
        for sub in ["store", "state", "log", "conf", "home"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(
            root.join("conf/nix.conf"),
            "substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = nix-command\n",
        )
        .unwrap();
        std::fs::write(root.join("home/hello.txt"), b"hello\n").unwrap();
        std::fs::write(root.join("home/expr.nix"), EXPR).unwrap();
        std::fs::write(root.join("home/key"), secret_key().to_text()).unwrap();
        Self { root: root.to_owned() }
    }

    pub fn path(&self, sub: &str) -> String {
        self.root.join(sub).to_str().unwrap().to_owned()
    }

    /// The store directory.
    pub fn store(&self) -> String {
        self.path("store")
    }

    /// The socket the daemon listens on.
    pub fn daemon_socket(&self) -> PathBuf {
        self.root.join("daemon.sock")
    }

    /// The socket clients connect to (the recording proxy's).
    pub fn proxy_socket(&self) -> PathBuf {
        self.root.join("proxy.sock")
    }

    fn common(&self) -> Vec<(String, String)> {
        [("NIX_STORE_DIR", "store"), ("NIX_STATE_DIR", "state"), ("NIX_LOG_DIR", "log"), ("NIX_CONF_DIR", "conf"), ("HOME", "home")]
            .iter()
            .map(|(k, v)| (k.to_string(), self.path(v)))
            .collect()
    }

    /// The environment of the daemon.
    pub fn daemon_vars(&self) -> Vec<(String, String)> {
        let mut v = self.common();
        v.push(("NIX_REMOTE".into(), "local".into()));
        v.push(("NIX_DAEMON_SOCKET_PATH".into(), self.daemon_socket().to_str().unwrap().to_owned()));
        v
    }

    /// The environment of the clients.
    pub fn client_vars(&self) -> Vec<(String, String)> {
        let mut v = self.common();
        v.push(("NIX_REMOTE".into(), format!("unix://{}", self.proxy_socket().display())));
        v
    }
}

/// Starts the daemon of `client` for `env` and waits until its socket exists.
pub async fn start_daemon(client: &Client, env: &Env) -> Child {
    let mut daemon = client.command(&env.daemon_vars(), "nix-daemon", &[]).spawn().unwrap();
    for _ in 0..200 {
        if env.daemon_socket().exists() {
            return daemon;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("nix-daemon exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nix-daemon did not create its socket");
}

/// What the scenario ran and produced.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Each command line and its first line of output.
    pub log: Vec<String>,
    /// The path `nix-store --add` created.
    pub added: String,
    /// The derivation `nix-instantiate` created.
    pub drv: String,
    /// Its output, built by `nix-store -r`.
    pub built: String,
}

async fn run(client: &Client, env: &Env, log: &mut Vec<String>, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let (program, rest) = args.split_first().unwrap();
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let mut cmd = client.command(&env.client_vars(), program, &rest);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut input = child.stdin.take().unwrap();
        input.write_all(&data).await.unwrap();
        drop(input);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("the client finishes").unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = if out.stdout.iter().any(|&b| b < b'\t') {
        format!("<{} bytes>", out.stdout.len())
    } else {
        first_line(&out)
    };
    log.push(format!("{} -> {shown}", args.join(" ")));
    out
}

fn first_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_owned()
}

/// Runs the commands (each must succeed) against the proxy socket.
pub async fn run_scenario(client: &Client, env: &Env) -> Outputs {
    let mut o = Outputs::default();
    let log = &mut o.log;
    let hello = env.path("home/hello.txt");
    let expr = env.path("home/expr.nix");
    run(client, env, log, &["nix", "store", "ping"], None).await;
    o.added = first_line(&run(client, env, log, &["nix-store", "--add", &hello], None).await);
    let added = o.added.clone();
    run(client, env, log, &["nix-store", "--check-validity", &added], None).await;
    run(client, env, log, &["nix-store", "-q", "--references", &added], None).await;
    run(client, env, log, &["nix-store", "-q", "--referrers", &added], None).await;
    run(client, env, log, &["nix", "path-info", "--json", &added], None).await;
    run(client, env, log, &["nix", "store", "sign", "--key-file", &env.path("home/key"), &added], None).await;
    run(client, env, log, &["nix", "store", "add-file", &hello], None).await;
    o.drv = first_line(&run(client, env, log, &["nix-instantiate", &expr], None).await);
    let drv = o.drv.clone();
    o.built = first_line(&run(client, env, log, &["nix-store", "-r", &drv], None).await);
    let built = o.built.clone();
    run(client, env, log, &["nix-store", "-q", "--outputs", &drv], None).await;
    run(client, env, log, &["nix", "build", "--no-link", "-f", &expr, "--argstr", "n", "2"], None).await;
    let link = env.path("home/link");
    run(client, env, log, &["nix-store", "-r", &built, "--add-root", &link, "--indirect"], None).await;
    run(client, env, log, &["nix-store", "--gc", "--print-roots"], None).await;
    let export = run(client, env, log, &["nix-store", "--export", &added], None).await.stdout;
    run(client, env, log, &["nix-store", "--delete", &added], None).await;
    run(client, env, log, &["nix-store", "--import"], Some(export)).await;
    run(client, env, log, &["nix-store", "--gc", "--print-dead"], None).await;
    run(client, env, log, &["nix-store", "--verify", "--check-contents"], None).await;
    run(client, env, log, &["nix-store", "--optimise"], None).await;
    o
}
