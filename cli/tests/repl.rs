//! `casnix repl` driven through piped standard input: bindings across lines, multi-line input,
//! `:l`, `:p`, `:t`, errors that do not end the session, `:q`, and `:b` building a busybox
//! derivation through a real `casnix-daemon` on an isolated root. The expected printouts are
//! those of Nix 2.26's `nix repl` for the same input (checked by hand; `nix repl` itself also
//! echoes prompts and input when piped, which casnix leaves out).
//!
//! The `:b` test needs `casnix-daemon` built beside the test binary (`cargo build --release -p
//! daemon --bin casnix-daemon`) and Debian's static busybox (`scripts/test-all.sh` installs them).

#![allow(clippy::unwrap_used)]

mod common;

use common::casnix_daemon::{self, CasnixDaemon};

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// An isolated root: store, state, conf, home and the expressions under a temporary directory.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::Builder::new().prefix("casnix-repl-").tempdir_in("/tmp").unwrap();
        for sub in ["store", "state", "log", "conf", "home", "exprs"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        fs::write(dir.path().join("conf/nix.conf"), "substituters =\nsandbox = false\nbuild-users-group =\n").unwrap();
        Root { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn command(&self, program: &str, remote: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_STORE_DIR", self.path("store"))
            .env("NIX_STATE_DIR", self.path("state"))
            .env("NIX_LOG_DIR", self.path("log"))
            .env("NIX_CONF_DIR", self.path("conf"))
            .env("NIX_DAEMON_SOCKET_PATH", self.path("socket"))
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("home/data"))
            .env("NIX_REMOTE", remote)
            .env_remove("NIX_PATH")
            .current_dir(self.path("exprs"));
        cmd
    }

    /// Runs `casnix repl` with `script` on standard input.
    fn repl(&self, script: &str) -> Output {
        let mut child = self
            .command(env!("CARGO_BIN_EXE_casnix"), "daemon")
            .arg("repl")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn bindings_printing_and_errors() {
    let root = Root::new();
    let script = r#"x = 1 + 1
x
y = throw "never forced"
{ a = 1; b = { c = [ 1 2 ]; }; f = x: x; s = "hi\n"; l = [ ]; }
undefinedvar
{ a = throw "x"; b = x * 3; }
[ (throw "y") 1 { a = 1; } ]
:t map
:t "s"
:t 1.5
:x
x = 10
x
builtins.map
{ "a b" = null; e = { }; }
"#;
    let out = root.repl(script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        r#"2
{
  a = 1;
  b = { ... };
  f = «lambda f @ «string»:1:36»;
  l = [ ... ];
  s = "hi\n";
}
{
  a = «error: x»;
  b = 6;
}
[
  «error: y»
  1
  { ... }
]
the built-in function 'map'
a string
a float
10
«primop map»
{
  "a b" = null;
  e = { ... };
}
"#
    );
    assert_eq!(
        text(&out.stderr),
        "error: undefined variable 'undefinedvar'\n       at «string»:1:1:\n            1| undefinedvar\n             | ^\n\
         error: unknown command ':x'\n"
    );
}

#[test]
fn multi_line_input_load_print_and_quit() {
    let root = Root::new();
    fs::write(
        root.path("exprs/lib.nix"),
        "{ n ? 4 }: {\n  double = x: x * 2;\n  deep = { a = { b = { c = n; }; }; };\n  greeting = \"hello\\nworld\";\n}\n",
    )
    .unwrap();
    let script = r#"let
  a = 1;
  b = {
    c = a + 1;
  };
in b.c
:l ./lib.nix
double deep.a.b.c
:p deep
:p greeting
:p [ { a = 1; } [ 2 3 ] ]
{ a = 1;
  oops = ;
}
double 21
:q
"never printed"
"#;
    let out = root.repl(script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "2\n8\n{\n  a = {\n    b = { c = 4; };\n  };\n}\nhello\nworld\n[\n  { a = 1; }\n  [\n    2\n    3\n  ]\n]\n42\n"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Added 3 variables.\nerror: syntax error, unexpected ';'"), "{stderr}");
}

#[test]
fn end_of_input_inside_an_expression_ends_quietly() {
    let root = Root::new();
    let out = root.repl("1 + 2\n{ a = 1;\n");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "3\n");
    assert_eq!(text(&out.stderr), "");
}

/// Starts `casnix-daemon` on the root.
fn start_daemon(root: &Root) -> CasnixDaemon {
    let command = root.command(casnix_daemon::binary().to_str().unwrap(), "local");
    CasnixDaemon::start(command, &root.path("socket"), &root.path("daemon.log"))
}

#[test]
fn build_through_the_daemon() {
    let root = Root::new();
    let bin = root.path("exprs/busybox-dir/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("/bin/busybox (apt-get install busybox-static)");
    let _daemon = start_daemon(&root);
    let script = r#"mk = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "${./busybox-dir}/bin/busybox"; args = [ "sh" "-c" script ]; outputs = [ "out" "doc" ]; }
d = mk "repl-built" "echo built by the repl > $out; echo docs > $doc"
d
:b d
:b 1
builtins.readFile d.out
"#;
    let out = root.repl(script);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let store = root.path("store").to_str().unwrap().to_string();
    assert!(lines[0].starts_with(&format!("«derivation {store}/")) && lines[0].ends_with("-repl-built.drv»"), "{stdout}");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "This derivation produced the following outputs:");
    let doc = lines[3].strip_prefix("  doc -> ").unwrap();
    let out_path = lines[4].strip_prefix("  out -> ").unwrap();
    assert!(out_path.starts_with(&store) && out_path.ends_with("-repl-built"), "{stdout}");
    assert_eq!(fs::read_to_string(out_path).unwrap(), "built by the repl\n");
    assert_eq!(fs::read_to_string(doc).unwrap(), "docs\n");
    assert_eq!(lines[5], "\"built by the repl\\n\"");
    assert!(stderr.contains("error: expression does not evaluate to a derivation, so I can't build it"), "{stderr}");
}
