//! Just enough of Kubernetes quantities ("500m", "2Ti", "192") to validate a fleet file
//! and to pack bound pods onto nodes. Values are kept in thousandths so "100m" of CPU
//! and "1.5Gi" of memory stay exact.

/// Parses a quantity into thousandths of its unit, rounding up. `None` when it is not a
/// quantity Kubernetes would accept (negative values included: the testbed never needs them).
pub(crate) fn parse_milli(text: &str) -> Option<u128> {
    let text = text.trim();
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    // (multiplier, divisor) applied to the value in thousandths.
    let (mul, div): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => return None,
    };
    if frac_part.len() > 9 {
        return None;
    }
    let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
    let frac_scale = 10u128.pow(frac_part.len() as u32);
    let frac: u128 = if frac_part.is_empty() { 0 } else { frac_part.parse().ok()? };
    // value * 1000 = (int * scale + frac) * 1000 / scale
    let scaled = (int.checked_mul(frac_scale)?.checked_add(frac)?).checked_mul(1000)?;
    let numerator = scaled.checked_mul(mul)?;
    let denominator = frac_scale * div;
    Some(numerator.div_ceil(denominator))
}

#[cfg(test)]
mod tests {
    use super::parse_milli;

    #[test]
    fn parses_the_forms_a_fleet_file_uses() {
        let cases: &[(&str, Option<u128>)] = &[
            ("192", Some(192_000)),
            ("100m", Some(100)),
            ("0.5", Some(500)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("2Ti", Some(2_199_023_255_552_000)),
            ("64Mi", Some(67_108_864_000)),
            ("1k", Some(1_000_000)),
            ("1.5m", Some(2)),
            ("", None),
            ("abc", None),
            ("12Qi", None),
            ("-1", None),
            ("1.2.3", None),
            (".", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_milli(text), *want, "{text:?}");
        }
    }
}
