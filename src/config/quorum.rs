//! `quorum` as written in the file: "all", "majority", "any" or a number of
//! sentinels (an integer, or a string of digits).

use std::fmt;

use serde::{Deserializer, Serializer};

use crate::core::Quorum;

pub fn serialize<S: Serializer>(quorum: &Quorum, s: S) -> Result<S::Ok, S::Error> {
    match quorum {
        Quorum::AtLeast(n) => s.serialize_u64(*n as u64),
        other => s.serialize_str(&other.to_string()),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Quorum, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Quorum;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"all\", \"majority\", \"any\" or a number of sentinels")
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Quorum, E> {
            usize::try_from(n)
                .map(Quorum::AtLeast)
                .map_err(|_| E::custom(format!("quorum {n} is negative")))
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Quorum, E> {
            usize::try_from(n)
                .map(Quorum::AtLeast)
                .map_err(|_| E::custom(format!("quorum {n} is too large")))
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Quorum, E> {
            match text.trim() {
                "all" => Ok(Quorum::All),
                "majority" => Ok(Quorum::Majority),
                "any" => Ok(Quorum::Any),
                other => other.parse().map(Quorum::AtLeast).map_err(|_| {
                    E::custom(format!(
                        "unknown quorum {text:?}: expected \"all\", \"majority\", \"any\" or a number"
                    ))
                }),
            }
        }
    }
    d.deserialize_any(Visitor)
}
