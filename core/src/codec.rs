//! Shared encoding rules: postcard for binary forms (with size caps and no
//! trailing bytes), serde JSON for the API, and the serde helpers that give one
//! type both a compact binary form and a readable JSON form.

/// Errors from decoding untrusted bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} has {0} trailing bytes after its encoding", .trailing)]
    Trailing { what: &'static str, trailing: usize },
    #[error("{what} is not a valid encoding: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// Encodes `value` with postcard. Encoding our own in-memory types can only
/// fail on a serde bug, which we surface as an empty vector never reaching disk
/// or wire unnoticed: callers compare against decoded values in tests.
pub fn to_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    match postcard::to_allocvec(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("postcard encoding of an in-memory value failed: {e}"),
    }
}

/// Appends `value`'s postcard encoding ([`to_bytes`]) to `out`. A caller
/// that encodes large values again and again (a block at every commit)
/// keeps one buffer, and its pages, instead of a fresh allocation each
/// time.
pub fn encode_onto<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    match postcard::to_extend(value, std::mem::take(out)) {
        Ok(bytes) => *out = bytes,
        Err(e) => panic!("postcard encoding of an in-memory value failed: {e}"),
    }
}

/// Decodes a postcard value of at most `max` bytes, rejecting trailing bytes
/// and non-canonical encodings.
///
/// postcard's varints may be written overlong (`0x80 0x00` for 0). Accepting
/// them would give one receipt, block or vote many byte forms, so the value
/// is re-encoded and must reproduce the input exactly: one value, one encoding.
pub fn from_bytes<'a, T: serde::Deserialize<'a> + serde::Serialize>(
    what: &'static str,
    bytes: &'a [u8],
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            what,
            trailing: rest.len(),
        });
    }
    if to_bytes(&value) != bytes {
        return Err(DecodeError::Malformed {
            what,
            reason: "non-canonical encoding".into(),
        });
    }
    Ok(value)
}

/// Decodes a JSON value of at most `max` bytes.
pub fn from_json<'a, T: serde::Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// Serde for byte vectors: base64 (standard, padded) in human-readable formats,
/// raw bytes in postcard. DSSE's JSON form uses base64 for payload and sig.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    /// Into any owner of a `Vec<u8>`'s bytes (a `Vec` itself, or a shared
    /// `bytes::Bytes`, which takes the vector without copying it).
    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            STANDARD
                .decode(s.as_bytes())
                .map(T::from)
                .map_err(serde::de::Error::custom)
        } else {
            let bytes = <serde_bytes_owned::ByteBuf>::deserialize(d)?;
            Ok(T::from(bytes.0))
        }
    }

    /// A minimal owned byte buffer visitor so postcard decodes `bytes` directly.
    mod serde_bytes_owned {
        use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
        use std::fmt;

        pub struct ByteBuf(pub Vec<u8>);

        impl<'de> Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                        while let Some(b) = seq.next_element::<u8>()? {
                            out.push(b);
                        }
                        Ok(ByteBuf(out))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}

/// Decodes lowercase hex into `out`. Only lowercase is accepted: one value
/// has one text form, so an edited receipt can not verify as the original.
pub fn decode_lower_hex(s: &str, out: &mut [u8]) -> Result<(), &'static str> {
    if s.len() != 2 * out.len() {
        return Err("wrong number of hex digits");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("hex must be lowercase 0-9a-f");
    }
    hex::decode_to_slice(s, out).map_err(|_| "expected hex digits")
}

/// Fixed-size byte arrays: hex in human-readable formats, a fixed tuple of
/// `N` bytes (no length prefix) in postcard.
pub mod fixed {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<const N: usize, S: Serializer>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&hex::encode(bytes));
        }
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }

    pub fn deserialize<'de, const N: usize, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        struct HexV<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for HexV<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{} hex digits", 2 * N)
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<[u8; N], E> {
                if v.len() != 2 * N {
                    return Err(E::custom(format!(
                        "expected {} hex digits, got {}",
                        2 * N,
                        v.len()
                    )));
                }
                let mut out = [0u8; N];
                super::decode_lower_hex(v, &mut out).map_err(E::custom)?;
                Ok(out)
            }
        }
        struct TupleV<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for TupleV<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(HexV::<N>)
        } else {
            d.deserialize_tuple(N, TupleV::<N>)
        }
    }
}

/// Implements Serialize/Deserialize for a newtype over `[u8; N]` with [`fixed`].
macro_rules! hex_or_bytes_serde {
    ($ty:ident, $n:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::codec::fixed::serialize::<$n, S>(&self.0, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::codec::fixed::deserialize::<$n, D>(d).map($ty)
            }
        }
    };
}
pub(crate) use hex_or_bytes_serde;
