//! Deserializers that accept what both HTML forms and JSON clients send: a
//! number may arrive as `3` or `"3"`, a checkbox as `true` or `"on"`. Values
//! stay text until validation, so a bad value becomes a field error that
//! names the field instead of an opaque parse failure.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// A number or a string, kept as text ("" when null).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Option::<Scalar>::deserialize(deserializer)? {
        None => String::new(),
        Some(Scalar::Int(n)) => n.to_string(),
        Some(Scalar::Float(f)) => f.to_string(),
        Some(Scalar::Bool(b)) => b.to_string(),
        Some(Scalar::Text(t)) => t,
    })
}

/// true, "true", "on", "1" and "yes" are true; false, "false", "off", "0",
/// "no", null and no value at all are false (an unchecked checkbox sends
/// nothing). Anything else, the empty text too, is refused rather than read
/// as false, so a typo is not silently a no.
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = match Option::<Scalar>::deserialize(deserializer)? {
        None => Some(false),
        Some(Scalar::Bool(b)) => Some(b),
        Some(Scalar::Int(n)) => match n {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        },
        Some(Scalar::Float(_)) => None,
        Some(Scalar::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Some(true),
            "false" | "off" | "0" | "no" => Some(false),
            _ => None,
        },
    };
    value.ok_or_else(|| serde::de::Error::custom("a flag must be true or false (on/off, yes/no, 1/0)"))
}

/// Parses optional integer text for a named field.
pub fn int(field: &str, text: &str) -> Result<Option<i64>, crate::validate::Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>().map(Some).map_err(|_| crate::validate::Invalid::new(field, "must be a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Form {
        #[serde(default, deserialize_with = "text")]
        n: String,
        #[serde(default, deserialize_with = "flag")]
        on: bool,
    }

    #[test]
    fn a_flag_that_is_neither_yes_nor_no_is_refused() {
        for json in [r#"{"on": "AAA"}"#, r#"{"on": ""}"#, r#"{"on": 2}"#, r#"{"on": 1.5}"#, r#"{"on": "truee"}"#] {
            let error = serde_json::from_str::<Form>(json).err().map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.contains("must be true or false")), "{json} is refused");
        }
    }

    #[test]
    fn accepts_numbers_strings_and_checkboxes() {
        let parse = |json: &str| serde_json::from_str::<Form>(json).unwrap();
        assert_eq!(parse(r#"{"n": 3}"#).n, "3");
        assert_eq!(parse(r#"{"n": "3"}"#).n, "3");
        assert_eq!(parse(r#"{"n": null}"#).n, "");
        assert_eq!(parse(r#"{}"#).n, "");
        assert!(parse(r#"{"on": "on"}"#).on);
        assert!(parse(r#"{"on": true}"#).on);
        assert!(!parse(r#"{"on": "off"}"#).on);
        assert!(!parse(r#"{"on": 0}"#).on);
        assert_eq!(int("replicas", "x").unwrap_err().field, "replicas");
        assert_eq!(int("replicas", " 4 "), Ok(Some(4)));
        assert_eq!(int("replicas", ""), Ok(None));
    }
}
