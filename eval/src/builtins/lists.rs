//! Lists: `map`, `filter`, `foldl'`, `genList`, `sort`, `elemAt`, ...

use super::{make_attrs, PrimOpDef};
use crate::error::{EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::symbol::Symbol;
use crate::value::{Attr, Attrs, Value};

/// The builtins of this group.
pub const PRIMOPS: &[PrimOpDef] = &[
    PrimOpDef { name: "map", arity: 2, fun: map },
    PrimOpDef { name: "length", arity: 1, fun: length },
    PrimOpDef { name: "elemAt", arity: 2, fun: elem_at },
    PrimOpDef { name: "head", arity: 1, fun: head },
    PrimOpDef { name: "tail", arity: 1, fun: tail },
    PrimOpDef { name: "filter", arity: 2, fun: filter },
    PrimOpDef { name: "elem", arity: 2, fun: elem },
    PrimOpDef { name: "concatLists", arity: 1, fun: concat_lists },
    PrimOpDef { name: "concatMap", arity: 2, fun: concat_map },
    PrimOpDef { name: "foldl'", arity: 3, fun: foldl_strict },
    PrimOpDef { name: "genList", arity: 2, fun: gen_list },
    PrimOpDef { name: "all", arity: 2, fun: all },
    PrimOpDef { name: "any", arity: 2, fun: any },
    PrimOpDef { name: "sort", arity: 2, fun: sort },
    PrimOpDef { name: "partition", arity: 2, fun: partition },
    PrimOpDef { name: "groupBy", arity: 2, fun: group_by },
];

fn map(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let f = args[0].clone();
    Ok(Value::list_from(list.len(), list.iter().map(|x| Value::lazy_apply(f.clone(), x.clone()))))
}

fn length(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    Ok(Value::Int(ev.force_list(&args[0])?.len() as i64))
}

fn elem_at(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[0])?;
    let n = ev.force_int(&args[1])?;
    match usize::try_from(n).ok().and_then(|i| list.get(i)) {
        Some(v) => {
            let v = v.clone();
            ev.force(&v)
        }
        None => Err(EvalError::other(format!("'builtins.elemAt' called with index {n} on a list of size {}", list.len()))),
    }
}

fn head(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[0])?;
    match list.first() {
        Some(v) => {
            let v = v.clone();
            ev.force(&v)
        }
        None => Err(EvalError::other("'builtins.head' called on an empty list")),
    }
}

fn tail(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[0])?;
    if list.is_empty() {
        return Err(EvalError::other("'builtins.tail' called on an empty list"));
    }
    Ok(Value::list_from(list.len() - 1, list[1..].iter().cloned()))
}

fn filter(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let mut out = Vec::new();
    for x in list.iter() {
        let keep = ev.call(&args[0], std::slice::from_ref(x))?;
        if ev.expect_bool(&keep)? {
            out.push(x.clone());
        }
    }
    if out.len() == list.len() {
        return Ok(Value::List(list));
    }
    Ok(Value::list(out))
}

fn elem(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    for x in list.iter() {
        if ev.values_equal(&args[0], x, false)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn concat_lists(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let lists = ev.force_list(&args[0])?;
    let forced = lists.iter().map(|l| ev.force_list(l)).collect::<EvalResult<Vec<_>>>()?;
    let len = forced.iter().map(|l| l.len()).sum();
    Ok(Value::list_from(len, forced.iter().flat_map(|l| l.iter().cloned())))
}

fn concat_map(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let mut results = Vec::with_capacity(list.len());
    for x in list.iter() {
        let r = ev.call(&args[0], std::slice::from_ref(x))?;
        results.push(ev.force_list(&r)?);
    }
    let len = results.iter().map(|l| l.len()).sum();
    Ok(Value::list_from(len, results.iter().flat_map(|l| l.iter().cloned())))
}

fn foldl_strict(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[2])?;
    let mut acc = args[1].clone();
    for x in list.iter() {
        acc = ev.call(&args[0], &[acc, x.clone()])?;
    }
    ev.force(&acc)
}

fn gen_list(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let n = ev.force_int(&args[1])?;
    if n < 0 {
        return Err(EvalError::other(format!("cannot create list of size {n}")));
    }
    if n > 1 << 28 {
        return Err(EvalError::other(format!("cannot create list of size {n}: too large")));
    }
    let f = ev.force(&args[0])?;
    Ok(Value::list_from(n as usize, (0..n).map(|i| Value::lazy_apply_int(&f, i))))
}

fn all(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    for x in list.iter() {
        let r = ev.call(&args[0], std::slice::from_ref(x))?;
        if !ev.expect_bool(&r)? {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn any(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    for x in list.iter() {
        let r = ev.call(&args[0], std::slice::from_ref(x))?;
        if ev.expect_bool(&r)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// A stable merge sort whose comparison may fail.
fn merge_sort(ev: &mut Evaluator, items: Vec<Value>, less: &Value) -> EvalResult<Vec<Value>> {
    if items.len() <= 1 {
        return Ok(items);
    }
    let mut items = items;
    let right = items.split_off(items.len() / 2);
    let left = merge_sort(ev, items, less)?;
    let right = merge_sort(ev, right, less)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        // Take from the right only when it is strictly less (stability).
        let r = ev.call(less, &[right[j].clone(), left[i].clone()])?;
        if ev.expect_bool(&r)? {
            out.push(right[j].clone());
            j += 1;
        } else {
            out.push(left[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
    Ok(out)
}

fn sort(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let less = ev.force(&args[0])?;
    let sorted = merge_sort(ev, list.to_vec(), &less)?;
    Ok(Value::list(sorted))
}

fn partition(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in list.iter() {
        let r = ev.call(&args[0], std::slice::from_ref(x))?;
        if ev.expect_bool(&r)? {
            right.push(x.clone());
        } else {
            wrong.push(x.clone());
        }
    }
    Ok(make_attrs(vec![("right", Value::list(right)), ("wrong", Value::list(wrong))]))
}

fn group_by(ev: &mut Evaluator, args: Vec<Value>) -> EvalResult<Value> {
    let list = ev.force_list(&args[1])?;
    let mut groups: Vec<(Symbol, Vec<Value>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for x in list.iter() {
        let key = ev.call(&args[0], std::slice::from_ref(x))?;
        let key = Symbol::new(&ev.force_str(&key)?);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(x.clone());
    }
    let entries = groups
        .into_iter()
        .map(|(name, items)| Attr { name, value: Value::list(items), pos: None })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}
