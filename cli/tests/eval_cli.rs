//! `casnix eval` as `nix-instantiate --eval`: output formats, `-A`, `--arg`/`--argstr`, errors and
//! exit codes. The expected outputs were taken from Nix 2.26's `nix-instantiate --eval`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn eval(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_casnix"))
        .arg("eval")
        .args(args)
        .env_remove("NIX_PATH")
        .output()
        .expect("casnix runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lazy_and_strict_output() {
    assert_eq!(eval(&["--expr", "{a=1+1;b=[1];}"]), (0, "{ a = <CODE>; b = <CODE>; }\n".into(), String::new()));
    assert_eq!(eval(&["--strict", "--expr", "{a=1+1;b=[1];}"]), (0, "{ a = 2; b = [ 1 ]; }\n".into(), String::new()));
}

#[test]
fn json_raw_and_xml() {
    assert_eq!(eval(&["--json", "--strict", "--expr", "{a=1.5;b=[null];c=\"x\";}"]).1, "{\"a\":1.5,\"b\":[null],\"c\":\"x\"}\n");
    let (code, _, err) = eval(&["--json", "--expr", "{a=1.5;b=[null];}"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot convert a thunk to JSON"), "{err}");
    assert_eq!(eval(&["--raw", "--expr", "\"a\\nb\""]).1, "a\nb");
    let xml = "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n      <int value=\"1\" />\n    </attr>\n    <attr name=\"b\">\n      <string value=\"x:x\" />\n    </attr>\n  </attrs>\n</expr>\n";
    assert_eq!(eval(&["--xml", "--no-location", "--expr", "{a=1;b=x:x;}"]).1, xml);
}

#[test]
fn attribute_paths_and_arguments() {
    assert_eq!(eval(&["-A", "b.0", "--expr", "{b=[7];}"]).1, "7\n");
    assert_eq!(eval(&["--arg", "x", "1+2", "--argstr", "y", "s", "--expr", "{x,y}:[x y]"]).1, "[ <CODE> \"s\" ]\n");
    assert_eq!(eval(&["--strict", "--expr", "{a?1}:a"]).1, "<LAMBDA>\n");
    assert_eq!(eval(&["-A", "a", "--expr", "{z?2}: {a = z;}"]).1, "2\n");
}

#[test]
fn errors_print_like_nix_and_exit_1() {
    let (code, out, err) = eval(&["--expr", "throw \"x\""]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "error:\n       … while calling the 'throw' builtin\n         at «string»:1:1:\n            1| throw \"x\"\n             | ^\n\n       error: x\n"
    );
    let (code, _, err) = eval(&["--expr", "undefinedvar"]);
    assert_eq!(code, 1);
    assert_eq!(err, "error: undefined variable 'undefinedvar'\n       at «string»:1:1:\n            1| undefinedvar\n             | ^\n");
}

/// The code frame of an error: the lines around the error's, numbered, with a caret under the
/// column (Nix's `printCodeLines`); empty lines show as `N|`. Expected outputs from Nix 2.26.
#[test]
fn code_frames_show_the_lines_around_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("first.nix", "undefinedvar + 1\n\n# more\n", "error: undefined variable 'undefinedvar'\n       at FILE:1:1:\n            1| undefinedvar + 1\n             | ^\n            2|\n"),
        ("middle.nix", "{ a = 1;\n  b = ;\n}\n", "error: syntax error, unexpected ';'\n       at FILE:2:7:\n            1| { a = 1;\n            2|   b = ;\n             |       ^\n            3| }\n"),
        ("last.nix", "let\n  x = 1;\nin\n", "error: syntax error, unexpected end of file\n       at FILE:4:1:\n            3| in\n            4|\n             | ^\n"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = eval(&[path.to_str().unwrap()]);
        assert_eq!(code, 1);
        assert_eq!(err, expected.replace("FILE", path.to_str().unwrap()), "{name}");
    }
    let (_, _, err) = eval(&["--expr", "let\n  a = 1;\n  b = c;\nin b"]);
    assert_eq!(err, "error: undefined variable 'c'\n       at «string»:3:7:\n            2|   a = 1;\n            3|   b = c;\n             |       ^\n            4| in b\n");
    let (_, _, err) = eval(&["--show-trace", "--expr", "\n\n  throw \"deep\""]);
    assert_eq!(
        err,
        "error:\n       … while calling the 'throw' builtin\n         at «string»:3:3:\n            2|\n            3|   throw \"deep\"\n             |   ^\n\n       error: deep\n"
    );
}
