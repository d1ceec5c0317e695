//! Sans-IO codec for NVMe over TCP.
//!
//! This crate owns every byte Lamina puts on or takes off the wire: the NVMe/TCP PDUs
//! (NVMe/TCP Transport Specification 1.0), the NVMe structures they carry (NVMe Base
//! Specification 2.0, NVMe over Fabrics 1.1) and the framing that cuts a byte stream into PDUs.
//! It contains no networking code, no runtime and no clocks: the target and Lamina's own
//! initiator both drive it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
