//! Kubernetes resource quantities ("500m", "16Gi", "1e3", "2").
//!
//! Quantities are kept as integer milli-units so sums of requests are exact.

/// A parsed quantity, in thousandths of the base unit (millicores for CPU,
/// millibytes for memory, milli-GPUs for extended resources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Quantity {
    milli: i128,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Kubernetes quantity: {why}")]
pub struct QuantityError {
    pub input: String,
    pub why: &'static str,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity { milli: 0 };

    pub fn from_milli(milli: i128) -> Quantity {
        Quantity { milli }
    }

    pub fn from_whole(whole: i64) -> Quantity {
        Quantity { milli: i128::from(whole) * 1000 }
    }

    pub fn milli(self) -> i128 {
        self.milli
    }

    /// Whole units, rounded up as the scheduler rounds requests.
    pub fn ceil_whole(self) -> i64 {
        let whole = self.milli.div_euclid(1000) + i128::from(self.milli.rem_euclid(1000) != 0);
        whole.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    pub fn as_f64(self) -> f64 {
        self.milli as f64 / 1000.0
    }

    pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
        let fail = |why| QuantityError { input: input.to_string(), why };
        let text = input.trim();
        if text.is_empty() {
            return Err(fail("empty"));
        }
        let (sign, unsigned) = match text.as_bytes()[0] {
            b'-' => (-1, &text[1..]),
            b'+' => (1, &text[1..]),
            _ => (1, text),
        };
        let number_end = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(fail("no number"));
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // Base-10 exponent and binary multiplier of the suffix.
        let (exp10, mult2): (i32, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            s if s.starts_with(['e', 'E']) => {
                let exp: i32 = s[1..].parse().map_err(|_| fail("bad exponent"))?;
                if !(-30..=30).contains(&exp) {
                    return Err(fail("exponent out of range"));
                }
                (exp, 0)
            }
            _ => return Err(fail("unknown suffix")),
        };
        if int_part.len() + frac_part.len() > 30 {
            return Err(fail("too many digits"));
        }
        let digits: i128 = format!("{int_part}{frac_part}").parse().unwrap_or(0);
        // value = digits * 10^(exp10 - frac_len) * 2^mult2; we want value * 1000.
        let mut scaled = digits.checked_mul(1i128 << mult2).ok_or_else(|| fail("too large"))?;
        let shift = exp10 - frac_part.len() as i32 + 3;
        if shift >= 0 {
            for _ in 0..shift {
                scaled = scaled.checked_mul(10).ok_or_else(|| fail("too large"))?;
            }
        } else {
            // Round up fractions of a milli-unit, as Kubernetes does.
            let divisor = 10i128.pow((-shift) as u32);
            scaled = scaled / divisor + i128::from(scaled % divisor != 0);
        }
        Ok(Quantity { milli: sign * scaled })
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, other: Quantity) -> Quantity {
        Quantity { milli: self.milli.saturating_add(other.milli) }
    }
}

impl std::ops::AddAssign for Quantity {
    fn add_assign(&mut self, other: Quantity) {
        *self = *self + other;
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, |a, b| a + b)
    }
}

/// A whole count from a quantity string, as used for GPUs: "8" → 8. A
/// fractional or unparsable value yields None so a broken device plugin
/// never shows up as phantom capacity.
pub fn whole_count(input: &str) -> Option<i64> {
    let quantity = Quantity::parse(input).ok()?;
    (quantity.milli % 1000 == 0 && quantity.milli >= 0).then_some((quantity.milli / 1000) as i64)
}

/// Human-readable bytes in binary units: 17179869184 → "16 GiB".
pub fn format_bytes(bytes: i128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 || unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// CPU in cores with up to three decimals: 1500 millicores → "1.5".
pub fn format_cpu(q: Quantity) -> String {
    let cores = q.milli() as f64 / 1000.0;
    let text = format!("{cores:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_kubernetes_emits() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("1", 1_000),
            ("8", 8_000),
            ("500m", 500),
            ("0.5", 500),
            ("1.5", 1_500),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("16Gi", 16 * (1i128 << 30) * 1000),
            ("80G", 80_000_000_000_000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1.5e-3", 2), // rounds up to the next milli-unit
            ("100n", 1),
            ("-1", -1_000),
            ("+2", 2_000),
            ("  3 ", 3_000),
        ];
        for (input, milli) in cases {
            assert_eq!(Quantity::parse(input).map(Quantity::milli), Ok(*milli), "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for input in ["", "abc", "1x", "1.2.3", ".", "Gi", "1e99", "1ee", "--1", "1 Gi"] {
            assert!(Quantity::parse(input).is_err(), "{input} should not parse");
        }
    }

    #[test]
    fn gpu_counts_are_whole() {
        assert_eq!(whole_count("8"), Some(8));
        assert_eq!(whole_count("0"), Some(0));
        assert_eq!(whole_count("1k"), Some(1000));
        assert_eq!(whole_count("500m"), None);
        assert_eq!(whole_count("-1"), None);
        assert_eq!(whole_count("lots"), None);
    }

    #[test]
    fn ceil_whole_rounds_up() {
        assert_eq!(Quantity::from_milli(1).ceil_whole(), 1);
        assert_eq!(Quantity::from_milli(1000).ceil_whole(), 1);
        assert_eq!(Quantity::from_milli(1001).ceil_whole(), 2);
        assert_eq!(Quantity::from_milli(0).ceil_whole(), 0);
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_bytes(17_179_869_184), "16 GiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_cpu(Quantity::from_milli(1500)), "1.5");
        assert_eq!(format_cpu(Quantity::from_milli(250)), "0.25");
        assert_eq!(format_cpu(Quantity::from_milli(4000)), "4");
    }

    proptest::proptest! {
        #[test]
        fn whole_numbers_round_trip(n in 0i64..1_000_000_000) {
            proptest::prop_assert_eq!(whole_count(&n.to_string()), Some(n));
        }

        #[test]
        fn sums_are_exact(a in 0i64..1_000_000, b in 0i64..1_000_000) {
            let total = Quantity::parse(&format!("{a}m")).unwrap() + Quantity::parse(&format!("{b}m")).unwrap();
            proptest::prop_assert_eq!(total.milli(), i128::from(a + b));
        }

        #[test]
        fn never_panics(input in ".{0,40}") {
            let _ = Quantity::parse(&input);
        }
    }
}
