//! Graph helpers over store paths: closures and Nix's topological sort. Both are iterative, so
//! deep graphs cannot overflow the stack.

use std::collections::BTreeSet;

/// Which edges a closure follows (Nix's `computeFSClosure` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosureOptions {
    /// Follow referrers instead of references (`nix-store -q --referrers-closure`).
    pub flip_direction: bool,
    /// Also the valid outputs of each derivation reached (forward); the valid derivers of each
    /// path reached (flipped).
    pub include_outputs: bool,
    /// Also the valid deriver of each path reached (forward); the valid outputs of each
    /// derivation reached (flipped).
    pub include_derivers: bool,
}

/// The references of some items form a cycle: `path` was reached again from `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopoCycle<T> {
    /// The item reached twice on one walk.
    pub path: T,
    /// The item whose edge closed the cycle.
    pub parent: T,
}

/// Nix's `topoSort`: orders `items` so that every item comes before the items it refers to
/// (referrers first). `children` gives an item's references; those outside `items` and
/// self-references are ignored. The order is exactly Nix's (depth-first in sorted order, then
/// reversed), and a cycle is reported with the same pair Nix reports.
pub fn topo_sort<T, F>(items: &BTreeSet<T>, mut children: F) -> Result<Vec<T>, TopoCycle<T>>
where
    T: Ord + Clone,
    F: FnMut(&T) -> BTreeSet<T>,
{
    struct Frame<T> {
        node: T,
        children: Vec<T>,
        next: usize,
    }
    let mut sorted = Vec::with_capacity(items.len());
    let mut visited = BTreeSet::new();
    let mut on_stack = BTreeSet::new();
    let mut frame_for = |node: T, visited: &mut BTreeSet<T>, on_stack: &mut BTreeSet<T>| {
        visited.insert(node.clone());
        on_stack.insert(node.clone());
        let kids = children(&node).into_iter().filter(|c| *c != node && items.contains(c)).collect();
        Frame { node, children: kids, next: 0 }
    };
    for root in items {
        if visited.contains(root) {
            continue;
        }
        let mut stack = vec![frame_for(root.clone(), &mut visited, &mut on_stack)];
        while let Some(top) = stack.last_mut() {
            if let Some(child) = top.children.get(top.next).cloned() {
                top.next += 1;
                if on_stack.contains(&child) {
                    return Err(TopoCycle { path: child, parent: top.node.clone() });
                }
                if !visited.contains(&child) {
                    let frame = frame_for(child, &mut visited, &mut on_stack);
                    stack.push(frame);
                }
            } else if let Some(done) = stack.pop() {
                on_stack.remove(&done.node);
                sorted.push(done.node);
            }
        }
    }
    sorted.reverse();
    Ok(sorted)
}

/// Everything reachable from `start` (included) through `edges`, which may fail.
pub(crate) fn reachable<T, E, F>(start: impl IntoIterator<Item = T>, mut edges: F) -> Result<BTreeSet<T>, E>
where
    T: Ord + Clone,
    F: FnMut(&T) -> Result<BTreeSet<T>, E>,
{
    let mut seen = BTreeSet::new();
    let mut todo: Vec<T> = Vec::new();
    for s in start {
        if seen.insert(s.clone()) {
            todo.push(s);
        }
    }
    while let Some(item) = todo.pop() {
        for next in edges(&item)? {
            if seen.insert(next.clone()) {
                todo.push(next);
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Nix's recursive algorithm, written plainly, to compare against.
    fn reference_sort(items: &BTreeSet<u8>, graph: &BTreeMap<u8, BTreeSet<u8>>) -> Result<Vec<u8>, (u8, u8)> {
        fn visit(
            p: u8,
            parent: Option<u8>,
            items: &BTreeSet<u8>,
            graph: &BTreeMap<u8, BTreeSet<u8>>,
            visited: &mut BTreeSet<u8>,
            parents: &mut BTreeSet<u8>,
            sorted: &mut Vec<u8>,
        ) -> Result<(), (u8, u8)> {
            if parents.contains(&p) {
                return Err((p, parent.unwrap_or(p)));
            }
            if !visited.insert(p) {
                return Ok(());
            }
            parents.insert(p);
            for &c in graph.get(&p).into_iter().flatten() {
                if c != p && items.contains(&c) {
                    visit(c, Some(p), items, graph, visited, parents, sorted)?;
                }
            }
            sorted.push(p);
            parents.remove(&p);
            Ok(())
        }
        let (mut visited, mut parents, mut sorted) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        for &i in items {
            visit(i, None, items, graph, &mut visited, &mut parents, &mut sorted)?;
        }
        sorted.reverse();
        Ok(sorted)
    }

    fn graph_of(edges: &[(u8, u8)]) -> BTreeMap<u8, BTreeSet<u8>> {
        let mut g: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
        for &(a, b) in edges {
            g.entry(a).or_default().insert(b);
        }
        g
    }

    #[test]
    fn referrers_come_first() {
        let g = graph_of(&[(1, 2), (2, 3), (1, 3), (3, 3)]);
        let items: BTreeSet<u8> = [1, 2, 3].into();
        let sorted = topo_sort(&items, |n| g.get(n).cloned().unwrap_or_default()).unwrap();
        assert_eq!(sorted, vec![1, 2, 3]);
    }

    #[test]
    fn cycle_is_reported() {
        let g = graph_of(&[(1, 2), (2, 1)]);
        let items: BTreeSet<u8> = [1, 2].into();
        let err = topo_sort(&items, |n| g.get(n).cloned().unwrap_or_default()).unwrap_err();
        assert_eq!(err, TopoCycle { path: 1, parent: 2 });
    }

    #[test]
    fn deep_chain_does_not_overflow() {
        let n: u32 = 200_000;
        let items: BTreeSet<u32> = (0..n).collect();
        let sorted = topo_sort(&items, |&i| if i + 1 < n { [i + 1].into() } else { BTreeSet::new() }).unwrap();
        assert_eq!(sorted.first(), Some(&0));
        assert_eq!(sorted.last(), Some(&(n - 1)));
    }

    #[test]
    fn reachable_follows_edges() {
        let g = graph_of(&[(1, 2), (2, 3), (4, 1)]);
        let r: Result<_, ()> = reachable([1u8], |n| Ok(g.get(n).cloned().unwrap_or_default()));
        assert_eq!(r.unwrap(), [1, 2, 3].into());
    }

    proptest! {
        #[test]
        fn matches_nix_recursive_order(edges in proptest::collection::vec((0u8..12, 0u8..12), 0..30), extra in proptest::collection::btree_set(0u8..12, 0..12)) {
            let g = graph_of(&edges);
            let mut items: BTreeSet<u8> = g.keys().copied().collect();
            items.extend(extra);
            let ours = topo_sort(&items, |n| g.get(n).cloned().unwrap_or_default()).map_err(|c| (c.path, c.parent));
            prop_assert_eq!(ours, reference_sort(&items, &g));
        }
    }
}
