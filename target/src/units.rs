//! Sizes in human units, for the CLI and the TOML configuration: `10G`, `512M`, `1.5T`,
//! `4096` (bytes). Units are binary (K = 1024 bytes) whatever the spelling: `G`, `GiB` and `GB`
//! all mean 2^30 bytes, as in LVM, so `10G` is always the same size as an SPDK `size_in_mib` of
//! 10240.

use std::fmt::Write;

const UNITS: [(&str, u32); 6] = [
    ("", 0),
    ("K", 10),
    ("M", 20),
    ("G", 30),
    ("T", 40),
    ("P", 50),
];

/// Parses a size: a decimal number (fractions allowed) with an optional binary unit suffix
/// (`K`, `M`, `G`, `T`, `P`, optionally followed by `i`/`iB`/`B`, any case). The result must be
/// a whole number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let shift = unit_shift(unit.trim())
        .ok_or_else(|| format!("size '{s}': unknown unit '{unit}' (use K, M, G, T or P)"))?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(format!("size '{s}': expected a number such as 10G or 512M"));
    }
    let digits = format!("{whole}{frac}");
    let value: u128 = digits
        .parse()
        .map_err(|_| format!("size '{s}': expected a number such as 10G or 512M"))?;
    let denominator = 10u128
        .checked_pow(u32::try_from(frac.len()).unwrap_or(u32::MAX))
        .ok_or_else(|| format!("size '{s}': too many decimals"))?;
    let scaled = value
        .checked_mul(1u128 << shift)
        .ok_or_else(|| format!("size '{s}' is too large"))?;
    if scaled % denominator != 0 {
        return Err(format!("size '{s}' is not a whole number of bytes"));
    }
    u64::try_from(scaled / denominator).map_err(|_| format!("size '{s}' is too large"))
}

fn unit_shift(unit: &str) -> Option<u32> {
    let upper = unit.to_ascii_uppercase();
    let base = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .or_else(|| upper.strip_suffix('I'))
        .unwrap_or(&upper);
    UNITS.iter().find(|(u, _)| *u == base).map(|(_, s)| *s)
}

/// Formats bytes for people: `10 GiB`, `1.5 GiB`, `512 MiB`, `4 KiB`, `100 B` (at most one
/// decimal, rounded down so a size is never overstated).
pub fn format_size(bytes: u64) -> String {
    let (name, shift) = UNITS
        .iter()
        .rev()
        .find(|(_, shift)| bytes >> shift > 0)
        .copied()
        .unwrap_or(("", 0));
    if shift == 0 {
        return format!("{bytes} B");
    }
    let whole = bytes >> shift;
    let tenths = ((bytes - (whole << shift)) * 10) >> shift;
    let mut out = whole.to_string();
    if tenths > 0 {
        let _ = write!(out, ".{tenths}");
    }
    let _ = write!(out, " {name}iB");
    out
}

/// `bytes` in whole MiB, rounded up (SPDK's `size_in_mib`).
pub fn to_mib_rounded_up(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("10gb"), Ok(10 << 30));
        assert_eq!(parse_size(" 1.5T "), Ok(3 << 39));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("0.5K"), Ok(512));
    }

    #[test]
    fn refuses_nonsense() {
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("1.1.1G").is_err());
        assert!(parse_size("0.3").is_err(), "not whole bytes");
        assert!(parse_size("99999999999P").is_err(), "overflow");
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("1.00000000000000000000000000000000000000001G").is_err());
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(512 << 20), "512 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(16 << 30), "16 GiB");
        assert_eq!(format_size((1 << 30) - 1), "1023.9 MiB");
        for s in ["10G", "1.5T", "512M", "4K"] {
            let b = parse_size(s).unwrap();
            assert_eq!(parse_size(&format_size(b).replace(' ', "")), Ok(b));
        }
        assert_eq!(to_mib_rounded_up(1), 1);
        assert_eq!(to_mib_rounded_up(10 << 30), 10240);
    }
}
