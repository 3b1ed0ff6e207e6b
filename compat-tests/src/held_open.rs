//! A process that keeps a store file open: a runtime root to Nix's garbage collector (which
//! reads `/proc/<pid>/fd`), so scenarios can check that a daemon spares paths in use.

use std::fs::File;
use std::process::{Child, Command, Stdio};

use crate::must;

/// A `sleep` with a file open on its standard input, ended on drop.
#[derive(Debug)]
pub struct HeldOpen {
    child: Child,
}

impl HeldOpen {
    /// Opens `path` and starts the process holding it.
    pub fn new(path: &str) -> Self {
        let file = must(File::open(path), "open the file to hold");
        let child = must(
            Command::new("sleep").arg("3600").stdin(Stdio::from(file)).stdout(Stdio::null()).stderr(Stdio::null()).spawn(),
            "start sleep",
        );
        Self { child }
    }
}

impl Drop for HeldOpen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
