//! `casnix nar pack|unpack|ls`: `nix-store --dump`, `nix-store --restore` and `nix nar ls`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use nix_formats::nar::{self, Limits, ListEntry, ListNode};
use serde_json::{json, Map, Value};

/// The NAR subcommands.
#[derive(Subcommand)]
pub enum NarCommand {
    /// Write the NAR serialisation of PATH to standard output (`nix-store --dump`).
    Pack {
        /// The file system object to serialise.
        path: PathBuf,
    },
    /// Read a NAR on standard input and unpack it at DIR, which must not exist (`nix-store --restore`).
    Unpack {
        /// Where to create the file system object.
        dir: PathBuf,
    },
    /// List the contents of a NAR file (`nix nar ls`).
    Ls {
        /// Show type, permissions and size, as `ls -l` does.
        #[arg(short = 'l', long)]
        long: bool,
        /// List subdirectories recursively.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Show a directory itself rather than its contents.
        #[arg(short = 'd', long)]
        directory: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The NAR file.
        nar: PathBuf,
        /// The path inside the NAR to list.
        #[arg(default_value = "/")]
        path: String,
    },
}

/// Runs a NAR subcommand.
pub fn run(command: NarCommand) -> Result<()> {
    match command {
        NarCommand::Pack { path } => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            nar::dump_path(&path, &mut out).with_context(|| format!("cannot serialise '{}'", path.display()))?;
            out.flush()?;
        }
        NarCommand::Unpack { dir } => {
            let input = BufReader::with_capacity(1 << 20, io::stdin().lock());
            nar::restore(input, &dir, &Limits::default())
                .with_context(|| format!("cannot unpack the NAR into '{}'", dir.display()))?;
        }
        NarCommand::Ls { long, recursive, directory, json, nar: file, path } => {
            if json && directory {
                bail!("'--directory' is useless with '--json'");
            }
            let f = File::open(&file).with_context(|| format!("cannot open '{}'", file.display()))?;
            let entries = nar::list(BufReader::with_capacity(1 << 20, f), &Limits::default())
                .with_context(|| format!("invalid NAR '{}'", file.display()))?;
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let listing = Listing { entries: &entries };
            let at = normalise(&path);
            let idx = listing.find(&at).with_context(|| format!("path '{path}' does not exist"))?;
            if json {
                writeln!(out, "{}", listing.json(idx, recursive))?;
            } else {
                listing.print(&mut out, idx, &at, long, recursive, directory)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// `path` inside the NAR as the list stores it: no leading or trailing slash, `""` for the root.
fn normalise(path: &str) -> Vec<u8> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/").into_bytes()
}

/// A NAR listing in depth-first order (a directory's entries follow it).
struct Listing<'a> {
    entries: &'a [ListEntry],
}

impl Listing<'_> {
    fn find(&self, path: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e.path == path)
    }

    /// Indices of the direct children of the directory at `idx`.
    fn children(&self, idx: usize) -> Vec<usize> {
        let parent = &self.entries[idx].path;
        let depth = if parent.is_empty() { 0 } else { parent.split(|&b| b == b'/').count() };
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate().skip(idx + 1) {
            let inside = if parent.is_empty() {
                true
            } else {
                e.path.len() > parent.len() && e.path.starts_with(parent) && e.path[parent.len()] == b'/'
            };
            if !inside {
                break;
            }
            if e.path.split(|&b| b == b'/').count() == depth + 1 {
                out.push(i);
            }
        }
        out
    }

    fn name(&self, idx: usize) -> &[u8] {
        let p = &self.entries[idx].path;
        p.rsplit(|&b| b == b'/').next().unwrap_or(p)
    }

    fn print(&self, out: &mut impl Write, idx: usize, at: &[u8], long: bool, recursive: bool, directory: bool) -> Result<()> {
        let is_dir = matches!(self.entries[idx].node, ListNode::Directory);
        let rel: Vec<u8> = if is_dir { b".".to_vec() } else { at.rsplit(|&b| b == b'/').next().unwrap_or(at).to_vec() };
        if is_dir && !directory {
            self.print_children(out, idx, &rel, long, recursive)
        } else {
            self.print_one(out, idx, &rel, long)
        }
    }

    fn print_children(&self, out: &mut impl Write, idx: usize, rel: &[u8], long: bool, recursive: bool) -> Result<()> {
        for child in self.children(idx) {
            let mut child_rel = rel.to_vec();
            child_rel.push(b'/');
            child_rel.extend_from_slice(self.name(child));
            self.print_one(out, child, &child_rel, long)?;
            if recursive && matches!(self.entries[child].node, ListNode::Directory) {
                self.print_children(out, child, &child_rel, long, recursive)?;
            }
        }
        Ok(())
    }

    fn print_one(&self, out: &mut impl Write, idx: usize, rel: &[u8], long: bool) -> Result<()> {
        let node = &self.entries[idx].node;
        if long {
            let (mode, size) = match node {
                ListNode::Regular { executable: true, size, .. } => ("-r-xr-xr-x", *size),
                ListNode::Regular { executable: false, size, .. } => ("-r--r--r--", *size),
                ListNode::Symlink { .. } => ("lrwxrwxrwx", 0),
                ListNode::Directory => ("dr-xr-xr-x", 0),
            };
            write!(out, "{mode} {size:>20} ")?;
            out.write_all(rel)?;
            if let ListNode::Symlink { target } = node {
                out.write_all(b" -> ")?;
                out.write_all(target)?;
            }
        } else {
            out.write_all(rel)?;
        }
        out.write_all(b"\n")?;
        Ok(())
    }

    /// The JSON `nix nar ls --json` prints; without `recursive`, a directory's entries are `{}`.
    fn json(&self, idx: usize, recursive: bool) -> Value {
        let mut obj = Map::new();
        match &self.entries[idx].node {
            ListNode::Regular { executable, size, nar_offset } => {
                obj.insert("type".into(), json!("regular"));
                obj.insert("size".into(), json!(size));
                if *executable {
                    obj.insert("executable".into(), json!(true));
                }
                obj.insert("narOffset".into(), json!(nar_offset));
            }
            ListNode::Symlink { target } => {
                obj.insert("type".into(), json!("symlink"));
                obj.insert("target".into(), json!(String::from_utf8_lossy(target)));
            }
            ListNode::Directory => {
                obj.insert("type".into(), json!("directory"));
                let mut entries = Map::new();
                for child in self.children(idx) {
                    let v = if recursive { self.json(child, true) } else { json!({}) };
                    entries.insert(String::from_utf8_lossy(self.name(child)).into_owned(), v);
                }
                obj.insert("entries".into(), Value::Object(entries));
            }
        }
        Value::Object(obj)
    }
}
