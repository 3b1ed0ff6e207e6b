//! casnix's Nix language evaluator.
//!
//! Source is parsed with `rnix` and lowered ([`lower`]) into an expression tree whose variables
//! are resolved to environment slots; the [`Evaluator`] evaluates it lazily (thunks with
//! blackholing), with the builtins of [`builtins`]. Filesystem and store access go through
//! [`io::EvalIo`]. Output in `nix-instantiate --eval`'s formats is in [`print`] and [`output`].

mod assert_eq;
pub mod builtins;
pub mod call;
pub mod corepkgs;
pub mod env;
pub mod error;
pub mod expr;
pub mod io;
pub mod lower;
pub mod machine;
mod nar_filter;
pub mod ops;
pub mod output;
pub mod path;
pub mod print;
pub mod source;
pub mod symbol;
pub mod value;

pub use error::{ErrorKind, EvalError, EvalResult};
pub use machine::{EvalOptions, Evaluator, SearchPathEntry};
pub use value::Value;
