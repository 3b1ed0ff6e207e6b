//! `assert a == b` failures explained as Nix 2.26's `assertEqValues` explains them.

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Evaluator;
use crate::print::error_repr;
use crate::symbol::Symbol;
use crate::value::Value;

fn fail(message: String) -> EvalError {
    EvalError::new(ErrorKind::Assert, message)
}

impl Evaluator {
    /// Finds why `a == b` is false and returns it as an assertion error (or `Ok` when they are
    /// equal after all).
    pub fn assert_eq_values(&mut self, a: &Value, b: &Value) -> EvalResult<()> {
        let a = self.force(a)?;
        let b = self.force(b)?;
        let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        if numeric(&a) && numeric(&b) {
            if self.values_equal(&a, &b, false)? {
                return Ok(());
            }
            return Err(fail(format!(
                "{} with value '{}' is not equal to {} with value '{}'",
                a.describe(),
                error_repr(&a),
                b.describe(),
                error_repr(&b)
            )));
        }
        if std::mem::discriminant(&a) != std::mem::discriminant(&b) && !(a.is_function() && b.is_function()) {
            return Err(fail(format!(
                "{} of value '{}' is not equal to {} of value '{}'",
                a.describe(),
                error_repr(&a),
                b.describe(),
                error_repr(&b)
            )));
        }
        match (&a, &b) {
            (Value::Bool(x), Value::Bool(y)) if x != y => {
                Err(fail(format!("boolean '{}' is not equal to boolean '{}'", error_repr(&a), error_repr(&b))))
            }
            (Value::String(x), Value::String(y)) if x.text != y.text => {
                Err(fail(format!("string '{}' is not equal to string '{}'", error_repr(&a), error_repr(&b))))
            }
            (Value::Path(x), Value::Path(y)) if x != y => {
                Err(fail(format!("path '{}' is not equal to path '{}'", error_repr(&a), error_repr(&b))))
            }
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Err(fail(format!(
                        "list of size '{}' is not equal to list of size '{}', left hand side is '{}', right hand side is '{}'",
                        x.len(),
                        y.len(),
                        error_repr(&a),
                        error_repr(&b)
                    )));
                }
                for (n, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                    self.assert_eq_values(p, q).map_err(|e| e.with_frame(None, format!("while comparing list element {n}")))?;
                }
                Ok(())
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if self.is_derivation(x)? && self.is_derivation(y)? {
                    let out = Symbol::new("outPath");
                    if let (Some(p), Some(q)) = (x.get(out).cloned(), y.get(out).cloned()) {
                        return self.assert_eq_values(&p, &q);
                    }
                }
                if x.len() != y.len() {
                    return Err(fail(format!(
                        "attribute names of attribute set '{}' differs from attribute set '{}'",
                        error_repr(&a),
                        error_repr(&b)
                    )));
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.name != q.name {
                        if y.get(p.name).is_none() {
                            return Err(fail(format!(
                                "attribute name '{}' is contained in '{}', but not in '{}'",
                                p.name,
                                error_repr(&a),
                                error_repr(&b)
                            )));
                        }
                        return Err(fail(format!(
                            "attribute name '{}' is missing in '{}', but is contained in '{}'",
                            q.name,
                            error_repr(&a),
                            error_repr(&b)
                        )));
                    }
                    self.assert_eq_values(&p.value, &q.value)
                        .map_err(|e| e.with_frame(None, format!("while comparing attribute '{}'", p.name)))?;
                }
                Ok(())
            }
            (x, _) if x.is_function() => {
                Err(fail("distinct functions and immediate comparisons of identical functions compare as unequal".into()))
            }
            _ => Ok(()),
        }
    }
}
