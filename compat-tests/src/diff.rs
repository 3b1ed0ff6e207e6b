//! A small line diff for reports: longest common subsequence, shown with a few lines of context.

/// Lines of context shown around each change.
const CONTEXT: usize = 3;
/// Above this many lines on either side, the diff shows the first differing line only (the LCS
/// table would grow too large).
const MAX_LINES: usize = 4000;

/// A readable diff of `left` (`-`) against `right` (`+`); empty when they are equal.
pub fn lines(left: &str, right: &str) -> String {
    if left == right {
        return String::new();
    }
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return first_difference(&a, &b);
    }
    let ops = edit_script(&a, &b);
    render(&ops)
}

#[derive(Clone, Copy, PartialEq)]
enum Op<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Removed(a[i]));
            i += 1;
        } else {
            ops.push(Op::Added(b[j]));
            j += 1;
        }
    }
    ops
}

fn render(ops: &[Op<'_>]) -> String {
    let changed: Vec<usize> = ops.iter().enumerate().filter(|(_, op)| !matches!(op, Op::Same(_))).map(|(i, _)| i).collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for (index, op) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(index) <= CONTEXT);
        if !near {
            continue;
        }
        if let Some(last) = last_shown {
            if index > last + 1 {
                out.push_str("   ...\n");
            }
        } else if index > 0 {
            out.push_str("   ...\n");
        }
        let (mark, text) = match op {
            Op::Same(t) => (' ', t),
            Op::Removed(t) => ('-', t),
            Op::Added(t) => ('+', t),
        };
        out.push_str(&format!(" {mark} {text}\n"));
        last_shown = Some(index);
    }
    out
}

fn first_difference(a: &[&str], b: &[&str]) -> String {
    let index = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    format!(
        "   first difference at line {}:\n - {}\n + {}\n",
        index + 1,
        a.get(index).copied().unwrap_or("<end>"),
        b.get(index).copied().unwrap_or("<end>")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_changes_with_context() {
        let d = super::lines("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(d, "   a\n - b\n + x\n   c\n");
        assert_eq!(super::lines("same", "same"), "");
    }
}
