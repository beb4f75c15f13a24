//! How setting values are read from TOML and the environment when serde's
//! defaults would give a message that names a Rust type: durations and
//! enums say what they accept, with an example.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de::Error};

use super::Rate;

/// A setting whose value is one of a fixed set of names.
pub trait Named: Copy + Sized + 'static {
    /// Every value, in the order the error message lists them.
    const ALL: &'static [Self];
    /// A line of TOML that sets it, for the message.
    const EXAMPLE: &'static str;
    fn name(self) -> &'static str;
}

/// Reads a [`Named`] value from its exact name; any other word is refused
/// with the accepted names (and the right spelling, when only the case is
/// off).
pub fn named<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    if let Some(v) = T::ALL.iter().find(|v| v.name() == text) {
        return Ok(*v);
    }
    let accepted: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
    let hint = T::ALL
        .iter()
        .find(|v| v.name().eq_ignore_ascii_case(&text))
        .map(|v| {
            format!(
                " (names are case-sensitive: did you mean \"{}\"?)",
                v.name()
            )
        })
        .unwrap_or_default();
    Err(D::Error::custom(format!(
        "\"{text}\" is not accepted{hint}; accepted: {} (e.g. {})",
        accepted.join(", "),
        T::EXAMPLE
    )))
}

/// A duration with its unit, as humantime writes it (`"300s"`, `"5m"`,
/// `"1h 30m"`). A bare number is refused with that advice: seconds or
/// milliseconds would be a guess.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    let advice = "write a number with its unit, e.g. \"300s\", \"5m\" or \"1h 30m\"";
    match Raw::deserialize(d)? {
        Raw::Text(text) => humantime::parse_duration(text.trim())
            .map_err(|e| D::Error::custom(format!("\"{text}\" is not a duration ({e}); {advice}"))),
        Raw::Number(n) => Err(D::Error::custom(format!("{n} has no unit; {advice}"))),
    }
}

pub(super) fn optional_rate<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Rate>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// IP networks, each written as a CIDR block or a single address.
pub(super) fn networks<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR block"))
                })
        })
        .collect()
}

pub(super) fn secret_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

pub(super) fn optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(s.trim())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

pub(super) fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.trim().is_empty()).then_some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        Blue,
    }

    impl Named for Colour {
        const ALL: &'static [Self] = &[Self::Red, Self::Blue];
        const EXAMPLE: &'static str = "colour = \"Red\"";
        fn name(self) -> &'static str {
            match self {
                Self::Red => "Red",
                Self::Blue => "Blue",
            }
        }
    }

    fn colour(v: serde_json::Value) -> Result<Colour, String> {
        named::<_, Colour>(v).map_err(|e| e.to_string())
    }

    fn dur(v: serde_json::Value) -> Result<Duration, String> {
        duration(v).map_err(|e| e.to_string())
    }

    #[test]
    fn names_are_exact_and_refusals_list_them() {
        assert_eq!(colour("Blue".into()), Ok(Colour::Blue));
        let err = colour("blue".into()).unwrap_err();
        assert!(err.contains("did you mean \"Blue\""), "{err}");
        assert!(
            err.contains("accepted: Red, Blue (e.g. colour = \"Red\")"),
            "{err}"
        );
        let err = colour("green".into()).unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn durations_need_their_unit() {
        assert_eq!(dur("5m".into()), Ok(Duration::from_secs(300)));
        assert_eq!(dur("1h 30m".into()), Ok(Duration::from_secs(5400)));
        let err = dur("300".into()).unwrap_err();
        assert!(err.contains("\"300\" is not a duration"), "{err}");
        assert!(err.contains("e.g. \"300s\", \"5m\""), "{err}");
        let err = dur(serde_json::json!(300)).unwrap_err();
        assert!(err.contains("300 has no unit"), "{err}");
    }
}
