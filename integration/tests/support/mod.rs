//! Test support shared by the integration tests of the host and `lamina-perf`.
#![allow(dead_code)]

pub mod mock;
