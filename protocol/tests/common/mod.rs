//! Shared test code: proptest strategies for every PDU and structure, and the decoding
//! harnesses the fuzz targets also use.
#![allow(dead_code)]

pub mod harness;
pub mod strategies;
