//! SMART / Health Information log page (LID 02h): 512 bytes with 128-bit counters.

use bytes::BytesMut;

use super::LOG_512;
use crate::wire::{Reader, StructDecodeError, Writer};

//~ NVMe Base 2.0, SMART / Health Information Log Page figure.
/// Byte offset of Data Units Read (first 128-bit counter).
pub const SMART_COUNTERS_OFFSET: usize = 32;
/// Byte offset of Warning Composite Temperature Time.
pub const SMART_WCTT_OFFSET: usize = 192;

/// SMART / Health Information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmartLog {
    /// Critical Warning bits.
    pub critical_warning: u8,
    /// Composite Temperature (K).
    pub composite_temperature: u16,
    /// Available Spare (%).
    pub available_spare: u8,
    /// Available Spare Threshold (%).
    pub available_spare_threshold: u8,
    /// Percentage Used.
    pub percentage_used: u8,
    /// Endurance Group Critical Warning Summary.
    pub endurance_group_warning: u8,
    /// Data Units Read (thousands of 512-byte units).
    pub data_units_read: u128,
    /// Data Units Written.
    pub data_units_written: u128,
    /// Host Read Commands.
    pub host_read_commands: u128,
    /// Host Write Commands.
    pub host_write_commands: u128,
    /// Controller Busy Time (minutes).
    pub controller_busy_time: u128,
    /// Power Cycles.
    pub power_cycles: u128,
    /// Power On Hours.
    pub power_on_hours: u128,
    /// Unsafe Shutdowns.
    pub unsafe_shutdowns: u128,
    /// Media and Data Integrity Errors.
    pub media_errors: u128,
    /// Number of Error Information Log Entries.
    pub error_log_entries: u128,
    /// Warning Composite Temperature Time (minutes).
    pub warning_temp_time: u32,
    /// Critical Composite Temperature Time (minutes).
    pub critical_temp_time: u32,
    /// Temperature Sensors 1..8 (K).
    pub temp_sensors: [u16; 8],
    /// Thermal Management Temperature 1 and 2 Transition Counts.
    pub thermal_transition_counts: [u32; 2],
    /// Total Time For Thermal Management Temperature 1 and 2 (s).
    pub thermal_total_times: [u32; 2],
}

impl SmartLog {
    /// Size on the wire.
    pub const SIZE: usize = LOG_512;

    /// Bytes `encode` appends.
    pub const fn encoded_len(&self) -> usize {
        Self::SIZE
    }

    fn counters(&self) -> [u128; 10] {
        [
            self.data_units_read,
            self.data_units_written,
            self.host_read_commands,
            self.host_write_commands,
            self.controller_busy_time,
            self.power_cycles,
            self.power_on_hours,
            self.unsafe_shutdowns,
            self.media_errors,
            self.error_log_entries,
        ]
    }

    /// Appends the 512-byte page.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut w = Writer::append(dst, Self::SIZE);
        w.u8(0, self.critical_warning);
        w.u16(1, self.composite_temperature);
        w.bytes(
            3,
            &[
                self.available_spare,
                self.available_spare_threshold,
                self.percentage_used,
                self.endurance_group_warning,
            ],
        );
        for (i, c) in self.counters().iter().enumerate() {
            w.u128(SMART_COUNTERS_OFFSET + 16 * i, *c);
        }
        w.u32(SMART_WCTT_OFFSET, self.warning_temp_time);
        w.u32(196, self.critical_temp_time);
        for (i, t) in self.temp_sensors.iter().enumerate() {
            w.u16(200 + 2 * i, *t);
        }
        w.u32(216, self.thermal_transition_counts[0]);
        w.u32(220, self.thermal_transition_counts[1]);
        w.u32(224, self.thermal_total_times[0]);
        w.u32(228, self.thermal_total_times[1]);
    }

    /// Parses the page.
    pub fn decode(src: &[u8]) -> Result<Self, StructDecodeError> {
        let r = Reader::new(src, "SMART log", Self::SIZE)?;
        let c = |i: usize| r.u128(SMART_COUNTERS_OFFSET + 16 * i);
        let mut temp_sensors = [0u16; 8];
        for (i, t) in temp_sensors.iter_mut().enumerate() {
            *t = r.u16(200 + 2 * i)?;
        }
        Ok(Self {
            critical_warning: r.u8(0)?,
            composite_temperature: r.u16(1)?,
            available_spare: r.u8(3)?,
            available_spare_threshold: r.u8(4)?,
            percentage_used: r.u8(5)?,
            endurance_group_warning: r.u8(6)?,
            data_units_read: c(0)?,
            data_units_written: c(1)?,
            host_read_commands: c(2)?,
            host_write_commands: c(3)?,
            controller_busy_time: c(4)?,
            power_cycles: c(5)?,
            power_on_hours: c(6)?,
            unsafe_shutdowns: c(7)?,
            media_errors: c(8)?,
            error_log_entries: c(9)?,
            warning_temp_time: r.u32(SMART_WCTT_OFFSET)?,
            critical_temp_time: r.u32(196)?,
            temp_sensors,
            thermal_transition_counts: [r.u32(216)?, r.u32(220)?],
            thermal_total_times: [r.u32(224)?, r.u32(228)?],
        })
    }
}
