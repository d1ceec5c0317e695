//! Lamina's volume store.
//!
//! An lvol store (lvstore) carves a block device into clusters and hands them to logical volumes
//! (lvols): thick or thin-provisioned, with snapshots and clones. This crate owns the on-disk
//! format, cluster allocation, crash-safe metadata and the concurrent registry through which
//! every caller reaches an lvol. It knows nothing of NVMe.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
