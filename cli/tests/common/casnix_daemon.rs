//! A real `casnix-daemon` (built beside the test binary) serving a test's isolated root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `casnix-daemon` beside the test binary (target/release/deps/../casnix-daemon).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(Path::parent).expect("the target directory");
    let daemon = dir.join("casnix-daemon");
    assert!(
        daemon.is_file(),
        "{} is missing: build it first (cargo build --release -p daemon --bin casnix-daemon)",
        daemon.display()
    );
    daemon
}

/// A running `casnix-daemon`, killed on drop.
pub struct CasnixDaemon(Child);

impl CasnixDaemon {
    /// Starts `command` (the daemon binary with the root's environment), its standard error
    /// into `log`, and waits until `socket` exists.
    pub fn start(mut command: Command, socket: &Path, log: &Path) -> CasnixDaemon {
        let log = fs::File::create(log).expect("creating the daemon's log");
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().expect("starting casnix-daemon");
        let mut daemon = CasnixDaemon(child);
        for _ in 0..400 {
            if socket.exists() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.0.try_wait() {
                panic!("casnix-daemon exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("casnix-daemon does not listen");
    }
}

impl Drop for CasnixDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
