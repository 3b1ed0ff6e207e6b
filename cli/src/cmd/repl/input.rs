//! Where the repl's lines come from: a line editor with history when standard input is a
//! terminal, plain lines otherwise (no prompts, so `casnix repl < script` prints only results).

use std::io::BufRead;
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

/// The prompt of a new expression, as `nix repl` shows it.
const PROMPT: &str = "nix-repl> ";
/// The prompt of a continued expression: blanks as wide as [`PROMPT`].
const CONTINUATION: &str = "          ";
/// How many history entries are kept (Nix's editline keeps 1000 too).
const HISTORY_SIZE: usize = 1000;

/// The line source.
pub enum Input {
    /// A terminal: rustyline, with history saved to `history`.
    Editor {
        /// The editor.
        editor: Box<Editor<(), FileHistory>>,
        /// The history file, when one could be placed.
        history: Option<PathBuf>,
    },
    /// Piped standard input, read line by line.
    Piped(std::io::StdinLock<'static>),
}

/// `$XDG_DATA_HOME/casnix/repl-history` (or `~/.local/share/...`), as Nix keeps
/// `$XDG_DATA_HOME/nix/repl-history`.
pub fn history_path() -> Option<PathBuf> {
    history_path_in(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn history_path_in(xdg_data_home: Option<std::ffi::OsString>, home: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let data = match xdg_data_home.filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(home?).join(".local/share"),
    };
    Some(data.join("casnix").join("repl-history"))
}

impl Input {
    /// A line editor when standard input and output are terminals, plain lines otherwise.
    pub fn open() -> Input {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            let config = Config::builder().max_history_size(HISTORY_SIZE).map(|b| b.auto_add_history(false).build());
            if let Ok(config) = config {
                if let Ok(mut editor) = Editor::<(), FileHistory>::with_config(config) {
                    let history = history_path();
                    if let Some(path) = &history {
                        if let Some(dir) = path.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        // A missing history file is the normal first start.
                        let _ = editor.load_history(path);
                    }
                    return Input::Editor { editor: Box::new(editor), history };
                }
            }
        }
        Input::Piped(std::io::stdin().lock())
    }

    /// Whether lines come from a terminal.
    pub fn interactive(&self) -> bool {
        matches!(self, Input::Editor { .. })
    }

    /// Reads a line; `continued` says whether it continues an incomplete expression. `None`
    /// at the end of input. Ctrl-C gives an empty line (the current input is dropped).
    pub fn read_line(&mut self, continued: bool) -> Option<Line> {
        match self {
            Input::Editor { editor, .. } => {
                let prompt = if continued { CONTINUATION } else { PROMPT };
                match editor.readline(prompt) {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                        }
                        Some(Line::Text(line))
                    }
                    Err(ReadlineError::Interrupted) => Some(Line::Interrupt),
                    Err(_) => None,
                }
            }
            Input::Piped(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => {
                        let line = line.strip_suffix('\n').unwrap_or(&line);
                        let line = line.strip_suffix('\r').unwrap_or(line);
                        Some(Line::Text(line.to_string()))
                    }
                }
            }
        }
    }

    /// Saves the history (at the end of the session).
    pub fn save(&mut self) {
        if let Input::Editor { editor, history: Some(path) } = self {
            if let Err(e) = editor.save_history(path) {
                eprintln!("warning: cannot save the repl history to '{}': {e}", path.display());
            }
        }
    }
}

/// A line, or Ctrl-C.
pub enum Line {
    /// A line of text, without its newline.
    Text(String),
    /// Ctrl-C: drop the current input.
    Interrupt,
}

#[cfg(test)]
mod tests {
    use super::history_path_in;

    #[test]
    fn history_lives_under_the_data_directory() {
        assert_eq!(history_path_in(Some("/data".into()), Some("/home/u".into())), Some("/data/casnix/repl-history".into()));
        assert_eq!(history_path_in(Some("".into()), Some("/home/u".into())), Some("/home/u/.local/share/casnix/repl-history".into()));
        assert_eq!(history_path_in(None, None), None);
    }
}
