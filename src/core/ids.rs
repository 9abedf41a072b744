//! Validated identifiers. Anything that becomes part of a ref name, a tree
//! path or a log line goes through these newtypes, so path traversal,
//! slashes and control characters are refused at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("malformed {what} {shown}: expected {expected}{hint}")]
    Malformed { what: &'static str, shown: String, expected: &'static str, hint: String },
    #[error("{what} number {number} is out of range (1 to 999999999)")]
    OutOfRange { what: &'static str, number: u64 },
}

/// Render untrusted input for an error message: quoted, control characters escaped, clipped.
pub fn shown(input: &str) -> String {
    let mut out: String = input.chars().take(40).flat_map(char::escape_debug).collect();
    if input.chars().count() > 40 {
        out.push('…');
    }
    format!("'{out}'")
}

/// "; did you mean 'X'?" when `s` in upper case would parse as `T`.
fn upper_case_hint<T: FromStr>(s: &str) -> String {
    let upper = s.to_ascii_uppercase();
    if upper != s && upper.parse::<T>().is_ok() { format!("; did you mean '{upper}'?") } else { String::new() }
}

/// Whether `s` is made of lower-case hexadecimal digits (ids, commit names).
pub fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_code(s: &str) -> bool {
    (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
}

macro_rules! code_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                if is_code(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::Malformed {
                        what: $what,
                        shown: shown(s),
                        expected: "2 to 8 upper-case letters",
                        hint: if is_code(&s.to_ascii_uppercase()) {
                            format!("; did you mean '{}'?", s.to_ascii_uppercase())
                        } else {
                            String::new()
                        },
                    })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

code_newtype!(
    /// A role code such as `PLN` or `BLD`.
    Role,
    "role"
);
code_newtype!(
    /// An order kind such as `FTR` or `BUG`.
    Kind,
    "kind"
);

/// Numbers are at least four digits wide and at most nine.
const MAX_NUMBER: u32 = 999_999_999;

fn parse_number(digits: &str) -> Option<u32> {
    if (4..=9).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok().filter(|n| *n > 0)
    } else {
        None
    }
}

/// An order id, `KIND-NNNN` (e.g. `FTR-0007`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId {
    kind: Kind,
    number: u32,
}

fn in_range(what: &'static str, number: u64) -> Result<u32, IdError> {
    u32::try_from(number).ok().filter(|n| (1..=MAX_NUMBER).contains(n)).ok_or(IdError::OutOfRange { what, number })
}

impl OrderId {
    /// The order `KIND-number`; numbers run from 1 to 999,999,999.
    pub fn new(kind: Kind, number: u64) -> Result<Self, IdError> {
        Ok(Self { kind, number: in_range("order", number)? })
    }
    pub fn kind(&self) -> &Kind {
        &self.kind
    }
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl FromStr for OrderId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parsed = s.split_once('-').and_then(|(kind, digits)| Some((kind.parse().ok()?, parse_number(digits)?)));
        match parsed {
            Some((kind, number)) => Ok(Self { kind, number }),
            None => Err(IdError::Malformed {
                what: "order id",
                shown: shown(s),
                expected: "KIND-NNNN such as FTR-0007",
                hint: upper_case_hint::<OrderId>(s),
            }),
        }
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:04}", self.kind, self.number)
    }
}

/// A voyage id, `VOY-NNNN`; its branch is `voyage/VOY-NNNN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoyageId(u32);

impl VoyageId {
    /// The voyage `VOY-number`; numbers run from 1 to 999,999,999.
    pub fn new(number: u64) -> Result<Self, IdError> {
        Ok(Self(in_range("voyage", number)?))
    }
    pub fn number(self) -> u32 {
        self.0
    }
    /// The short branch name, `voyage/VOY-NNNN`.
    pub fn branch(self) -> String {
        format!("voyage/{self}")
    }
}

impl FromStr for VoyageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        s.strip_prefix("VOY-").and_then(parse_number).map(Self).ok_or_else(|| IdError::Malformed {
            what: "voyage id",
            shown: shown(s),
            expected: "VOY-NNNN such as VOY-0003",
            hint: upper_case_hint::<VoyageId>(s),
        })
    }
}

impl fmt::Display for VoyageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VOY-{:04}", self.0)
    }
}

macro_rules! string_serde {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(OrderId);
string_serde!(VoyageId);

/// The shard directory of an entity number: 100 entities per shard, so an
/// append rewrites a tree of at most 100 entries at each level.
pub fn shard(number: u32) -> String {
    format!("{:02}", number / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_round_trip_and_refuse_garbage() {
        let id: OrderId = "FTR-0007".parse().unwrap();
        assert_eq!(id.to_string(), "FTR-0007");
        assert_eq!("BUG-12345".parse::<OrderId>().unwrap().to_string(), "BUG-12345");
        for bad in [
            "../x",
            "FTR-1/2",
            "FTR-1",
            "FTR-0000",
            "ftr-0001",
            "FTR-00a1",
            "FTR-0001\n",
            "FTR\u{7}-0001",
            "",
            "F-0001",
            "FTR-0001-2",
            "FTR-1234567890",
        ] {
            assert!(bad.parse::<OrderId>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn voyage_ids_and_branches() {
        let v: VoyageId = "VOY-0003".parse().unwrap();
        assert_eq!(v.branch(), "voyage/VOY-0003");
        assert!("VOY-3".parse::<VoyageId>().is_err());
        assert!("voy-0003".parse::<VoyageId>().is_err());
    }

    #[test]
    fn constructors_refuse_numbers_out_of_range() {
        assert!(VoyageId::new(0).is_err());
        assert!(VoyageId::new(1_000_000_000).is_err());
        assert!(OrderId::new("FTR".parse().unwrap(), u64::from(u32::MAX) + 1).is_err());
        assert_eq!(OrderId::new("FTR".parse().unwrap(), 7).unwrap().to_string(), "FTR-0007");
    }

    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(shown("a\nb"), "'a\\nb'");
    }
}
