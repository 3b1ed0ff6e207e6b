//! String literals: escapes, and the indentation stripping of `''` strings, as Nix's lexer and
//! parser do them.

/// Unescapes the body of a `"..."` string piece: `\n`, `\r`, `\t`, `\X` → `X`; a CR or CRLF in the
/// source becomes LF.
pub fn unescape_plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '\r' => {
                out.push('\n');
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// One piece of an indented string before stripping: literal text (subject to indentation
/// stripping) or an escape's result (not subject to it), or an interpolation.
#[derive(Debug, Clone, PartialEq)]
pub enum IndPart<T> {
    /// Raw text whose leading spaces count as indentation.
    Text(String),
    /// The result of `''$`, `'''` or `''\X`: never indentation.
    Escaped(String),
    /// `${...}`.
    Interpolation(T),
}

/// Splits the raw text of one literal run of an indented string into text and escapes.
pub fn split_indented(raw: &str, out: &mut Vec<IndPart<impl Sized>>) {
    let mut text = String::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("''") {
            if let Some(r) = after.strip_prefix('$') {
                flush(&mut text, out);
                out.push(IndPart::Escaped("$".into()));
                rest = r;
                continue;
            }
            if let Some(r) = after.strip_prefix('\'') {
                flush(&mut text, out);
                out.push(IndPart::Escaped("''".into()));
                rest = r;
                continue;
            }
            if let Some(r) = after.strip_prefix('\\') {
                flush(&mut text, out);
                let mut chars = r.chars();
                let escaped = match chars.next() {
                    Some('n') => "\n".to_string(),
                    Some('r') => "\r".to_string(),
                    Some('t') => "\t".to_string(),
                    Some(c) => c.to_string(),
                    None => String::new(),
                };
                out.push(IndPart::Escaped(escaped));
                rest = chars.as_str();
                continue;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            text.push(c);
        }
        rest = chars.as_str();
    }
    flush(&mut text, out);
}

fn flush<T>(text: &mut String, out: &mut Vec<IndPart<T>>) {
    if !text.is_empty() {
        out.push(IndPart::Text(std::mem::take(text)));
    }
}

/// Nix's indentation stripping: removes the smallest indentation of non-blank lines, and a final
/// line of only spaces. Returns literal strings and interpolations in order, dropping empty
/// literals.
pub fn strip_indentation<T>(parts: Vec<IndPart<T>>) -> Vec<Result<String, T>> {
    let mut at_start = true;
    let mut min_indent = usize::MAX;
    let mut cur_indent = 0;
    for part in &parts {
        match part {
            IndPart::Text(s) => {
                for c in s.chars() {
                    if at_start {
                        if c == ' ' {
                            cur_indent += 1;
                        } else if c == '\n' {
                            cur_indent = 0;
                        } else {
                            at_start = false;
                            min_indent = min_indent.min(cur_indent);
                        }
                    } else if c == '\n' {
                        at_start = true;
                        cur_indent = 0;
                    }
                }
            }
            _ => {
                if at_start {
                    at_start = false;
                    min_indent = min_indent.min(cur_indent);
                }
            }
        }
    }
    let mut out = Vec::new();
    at_start = true;
    let mut dropped = 0;
    let count = parts.len();
    for (index, part) in parts.into_iter().enumerate() {
        let is_last = index + 1 == count;
        let s = match part {
            IndPart::Interpolation(e) => {
                at_start = false;
                dropped = 0;
                out.push(Err(e));
                continue;
            }
            IndPart::Text(s) | IndPart::Escaped(s) => s,
        };
        let mut s2 = String::with_capacity(s.len());
        for c in s.chars() {
            if at_start {
                if c == ' ' {
                    if dropped >= min_indent {
                        s2.push(c);
                    }
                    dropped += 1;
                } else if c == '\n' {
                    dropped = 0;
                    s2.push(c);
                } else {
                    at_start = false;
                    dropped = 0;
                    s2.push(c);
                }
            } else {
                s2.push(c);
                if c == '\n' {
                    at_start = true;
                }
            }
        }
        if is_last {
            if let Some(p) = s2.rfind('\n') {
                if s2[p + 1..].chars().all(|c| c == ' ') {
                    s2.truncate(p + 1);
                }
            }
        }
        if !s2.is_empty() {
            out.push(Ok(s2));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(raw: &str) -> String {
        let mut parts: Vec<IndPart<()>> = Vec::new();
        split_indented(raw, &mut parts);
        strip_indentation(parts).into_iter().map(|p| p.unwrap_or_default()).collect()
    }

    #[test]
    fn strips_common_indentation_and_last_blank_line() {
        assert_eq!(strip("  a\n    b\n  "), "a\n  b\n");
        assert_eq!(strip("  ''$x '''\n  "), "$x ''\n");
    }

    #[test]
    fn escapes_end_indentation() {
        assert_eq!(strip("  ''\\n  a"), "\na");
        assert_eq!(strip("  ''\\n    a"), "\n  a");
    }

    #[test]
    fn plain_escapes() {
        assert_eq!(unescape_plain(r#"a\nb\"\$\\"#), "a\nb\"$\\");
        assert_eq!(unescape_plain("a\r\nb"), "a\nb");
    }
}
