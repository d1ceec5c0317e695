//! Crate-level tests: operations and their failure paths, data semantics, snapshots and
//! clones, the seed scenario (listings racing deletes), crash consistency over every write
//! of a scripted sequence, and a model-based property test. Iteration counts are CI-sized by
//! default and scale with environment variables (see each file).

// Test arithmetic runs on small sizes fixed by the tests themselves (a few MiB), so the
// truncating casts cannot truncate; short names mirror the maths in assertions.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

mod at_once;
mod cancel;
mod churn;
mod crash;
mod data;
mod fault_windows;
mod interleave;
mod lvol_ops;
mod model;
mod repair;
mod seed;
mod snapshots;
mod store_ops;
mod support;
mod teardown;
