//! End-to-end tests for Lamina, its Rust NVMe/TCP initiator and the `lamina-perf` load generator.
//!
//! The initiator is built on `lamina-protocol`, the same codec the target uses, and drives the
//! target over real sockets on loopback.
