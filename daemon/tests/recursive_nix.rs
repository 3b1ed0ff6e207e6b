//! Recursive Nix (`recursive-nix`) through casnix-daemon, driven by the real Nix 2.8: a
//! builder talks to the daemon through `$NIX_REMOTE` (the socket in its build directory),
//! sees only its input closure and what it added, and its output may refer to what it added;
//! in the native sandbox, what it adds is mounted (read-only) into its running sandbox.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, Daemon};

const CONF: &str = "experimental-features = nix-command recursive-nix\n";

/// A derivation whose builder adds a file through recursive Nix, checks what it can see, and
/// links the added path from its output.
fn nix_file(daemon: &Daemon, unreachable: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
        derivation {{
          name = "recursive";
          system = builtins.currentSystem;
          builder = "/bin/sh";
          requiredSystemFeatures = [ "recursive-nix" ];
          input = builtins.toFile "input" "visible";
          unreachable = "{unreachable}";
          PATH = "/usr/bin:/bin";
          args = [ "-ec" ''
            case "$NIX_REMOTE" in unix://*/.nix-socket) ;; *) echo "NIX_REMOTE=$NIX_REMOTE"; exit 1;; esac
            nix-store -q --hash "$input"
            test -e "$unreachable"
            if nix-store -q --hash "$unreachable"; then echo "unreachable path visible"; exit 1; fi
            echo added > file
            added=$(nix-store --add file)
            nix-store -r "$added"
            test "$(nix-store -q --references "$added")" = ""
            mkdir $out
            ln -s "$added" $out/added
          '' ];
        }}
        "#
    );
    daemon.file("recursive.nix", text.as_bytes())
}

#[test]
fn a_builder_adds_paths_it_may_refer_to() {
    let daemon = Daemon::start(CONF);
    let other = daemon.file("other", b"not an input");
    let unreachable = ok(daemon.nix("nix-store").arg("--add").arg(&other));
    let file = nix_file(&daemon, &unreachable);
    let out = ok(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    let added = std::fs::read_link(format!("{out}/added")).unwrap();
    assert_eq!(std::fs::read_to_string(&added).unwrap(), "added\n");
    let references = ok(daemon.nix("nix-store").args(["-q", "--references"]).arg(&out));
    assert_eq!(references, added.to_str().unwrap(), "{}", daemon.daemon_log());
    // The socket went with the build directory.
    assert!(!daemon.daemon_log().contains("panicked"));
}

#[test]
fn without_the_experimental_feature_the_build_is_refused() {
    let daemon = Daemon::start("");
    let file = nix_file(&daemon, "/nonexistent");
    let err = fails(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    assert!(err.contains("with features {recursive-nix} is required to build"), "{err}");
}

#[test]
fn paths_added_from_a_sandboxed_build_appear_in_its_sandbox() {
    // The host's Nix 2.8 client inside the native sandbox (its libraries through `sandbox-paths`).
    let daemon = Daemon::start(&format!("{CONF}sandbox = true\nsandbox-paths = /usr /bin=/usr/bin /lib=/usr/lib /lib64=/usr/lib64\n"));
    let file = daemon.file(
        "sandboxed.nix",
        br#"
        derivation {
          name = "recursive-sandboxed";
          system = builtins.currentSystem;
          builder = "/bin/sh";
          requiredSystemFeatures = [ "recursive-nix" ];
          PATH = "/usr/bin:/bin";
          args = [ "-ec" ''
            echo added > file
            added=$(nix-store --add file)
            mkdir dir; echo inner > dir/inner
            dir=$(nix-store --add dir)
            mkdir $out
            cat "$added" > $out/read
            cat "$dir/inner" >> $out/read
            if echo x > "$added" 2>/dev/null; then echo "the added path is writable"; exit 1; fi
            ln -s "$added" $out/added
          '' ];
        }
        "#,
    );
    let out = ok(daemon.nix("nix-build").arg(&file).arg("--no-out-link"));
    assert_eq!(std::fs::read_to_string(format!("{out}/read")).unwrap(), "added\ninner\n", "{}", daemon.daemon_log());
    let added = std::fs::read_link(format!("{out}/added")).unwrap();
    let references = ok(daemon.nix("nix-store").args(["-q", "--references"]).arg(&out));
    assert_eq!(references, added.to_str().unwrap());
}
