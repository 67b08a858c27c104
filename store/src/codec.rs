//! The one place values become bytes: bincode 2 (serde mode) behind a format version byte.
//!
//! A record is `[FORMAT_VERSION] ‖ bincode(value)`. A reader that meets another version byte
//! refuses the record instead of misreading it; a future format adds a migration here.

use crate::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Current record format.
pub const FORMAT_VERSION: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => {
            let (value, used) = bincode::serde::decode_from_slice(rest, config())
                .map_err(|e| Error::Decode(e.to_string()))?;
            if used != rest.len() {
                return Err(Error::Decode(format!(
                    "{} trailing bytes",
                    rest.len() - used
                )));
            }
            Ok(value)
        }
        Some((v, _)) => Err(Error::Decode(format!("unknown format version {v}"))),
        None => Err(Error::Decode("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let v = (1u64, "x".to_string(), Some(3i64));
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<(u64, String, Option<i64>)>(&bytes).unwrap(), v);
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert!(decode::<(u64, String, Option<i64>)>(&bad).is_err());
    }
}
