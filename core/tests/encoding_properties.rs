//! Every binary (postcard) and JSON encoding round-trips, and the decoders
//! reject what is not exactly one encoding: trailing bytes, truncated input,
//! input over the size limit, and non-canonical (overlong) encodings.

use lotline_core::attestation::{Envelope, EnvelopeSignature};
use lotline_core::block::{Block, BlockHash, Header};
use lotline_core::certificate::{Certificate, Signed};
use lotline_core::codec::{self, DecodeError};
use lotline_core::crypto::{PublicKey, Signature};
use lotline_core::hash::Digest;
use lotline_core::limits;
use lotline_core::receipt::Receipt;
use lotline_core::statement::Statement;
use lotline_core::vote::{Vote, VoteKind};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---- strategies -------------------------------------------------------------

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(r, s)| {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s);
        Signature(sig)
    })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    let keyid = prop_oneof![public_key().prop_map(|k| k.to_hex()), ".{0,12}"];
    (
        prop_oneof![
            Just(lotline_core::attestation::PAYLOAD_TYPE.to_owned()),
            ".{0,40}"
        ],
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(
            (keyid, signature()).prop_map(|(keyid, sig)| EnvelopeSignature { keyid, sig }),
            0..3,
        ),
    )
        .prop_map(|(payload_type, payload, signatures)| Envelope {
            payload_type,
            payload: payload.into(),
            signatures,
        })
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u16>(),
        digest(),
        any::<u64>(),
        any::<u64>(),
        digest(),
        digest(),
        any::<u32>(),
        digest(),
        any::<u64>(),
        any::<u16>(),
    )
        .prop_map(
            |(
                version,
                chain_id,
                height,
                view,
                parent,
                root,
                count,
                evidence_root,
                timestamp_ms,
                proposer,
            )| {
                Header {
                    version,
                    chain_id,
                    height,
                    view,
                    parent: BlockHash(parent),
                    root,
                    count,
                    evidence_root,
                    timestamp_ms,
                    proposer,
                }
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (header(), prop::collection::vec(envelope(), 0..4)).prop_map(|(header, attestations)| Block {
        header,
        attestations,
        evidence: Vec::new(),
    })
}

fn certificate() -> impl Strategy<Value = Certificate> {
    (
        any::<u64>(),
        any::<u64>(),
        digest(),
        prop::collection::vec(
            (any::<u16>(), signature())
                .prop_map(|(signer, signature)| Signed { signer, signature }),
            0..6,
        ),
    )
        .prop_map(|(epoch, view, block, signatures)| Certificate {
            epoch,
            view,
            block: BlockHash(block),
            signatures,
        })
}

fn vote() -> impl Strategy<Value = Vote> {
    (
        prop_oneof![
            Just(VoteKind::Notarize),
            Just(VoteKind::Nullify),
            Just(VoteKind::Finalize)
        ],
        any::<u64>(),
        any::<u64>(),
        digest(),
        any::<u16>(),
        signature(),
    )
        .prop_map(|(kind, epoch, view, block, signer, signature)| Vote {
            kind,
            epoch,
            view,
            block,
            signer,
            signature,
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        any::<u16>(),
        envelope(),
        any::<u32>(),
        prop::collection::vec(digest(), 0..8),
        header(),
        certificate(),
    )
        .prop_map(
            |(version, attestation, leaf_index, proof, header, certificate)| Receipt {
                version,
                attestation,
                leaf_index,
                proof,
                header,
                descendants: Vec::new(),
                certificate,
            },
        )
}

// ---- the properties, for any type ---------------------------------------------

/// A cap no test value reaches, for types without their own decoder.
const CAP: usize = limits::BLOCK_BYTES_MAX;

/// postcard and JSON round trips through the generic decoders.
fn round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = codec::to_bytes(value);
    prop_assert_eq!(&codec::from_bytes::<T>("value", &bytes, CAP)?, value);
    let json = serde_json::to_vec(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&codec::from_json::<T>("value", &json, CAP)?, value);
    Ok(())
}

/// Trailing bytes, any strict prefix, and a cap one byte short are errors,
/// each of its own kind; exactly at the cap is fine.
fn rejects_all_but_one_encoding<T>(value: &T, extra: &[u8], cut: Index) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = codec::to_bytes(value);

    let mut longer = bytes.clone();
    longer.extend_from_slice(extra);
    prop_assert_eq!(
        codec::from_bytes::<T>("value", &longer, CAP),
        Err(DecodeError::Trailing {
            what: "value",
            trailing: extra.len()
        })
    );

    let prefix = &bytes[..cut.index(bytes.len())];
    prop_assert!(
        matches!(
            codec::from_bytes::<T>("value", prefix, CAP),
            Err(DecodeError::Malformed { .. })
        ),
        "a {}-byte prefix of a {}-byte encoding decoded",
        prefix.len(),
        bytes.len()
    );

    prop_assert_eq!(
        codec::from_bytes::<T>("value", &bytes, bytes.len() - 1),
        Err(DecodeError::TooLarge {
            what: "value",
            len: bytes.len(),
            max: bytes.len() - 1
        })
    );
    prop_assert_eq!(
        &codec::from_bytes::<T>("value", &bytes, bytes.len())?,
        value
    );

    let json = serde_json::to_vec(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        codec::from_json::<T>("value", &json, json.len() - 1),
        Err(DecodeError::TooLarge {
            what: "value",
            len: json.len(),
            max: json.len() - 1
        })
    );
    Ok(())
}

fn extra_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn digest_encodings(v in digest(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        prop_assert_eq!(codec::to_bytes(&v).len(), 32);
        prop_assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.to_hex()));
        prop_assert_eq!(Digest::from_hex(&v.to_hex()), Ok(v));
    }

    #[test]
    fn public_key_encodings(v in public_key(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        prop_assert_eq!(codec::to_bytes(&v).len(), 32);
        prop_assert_eq!(PublicKey::from_hex(&v.to_hex()), Ok(v));
    }

    #[test]
    fn signature_encodings(v in signature(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        prop_assert_eq!(codec::to_bytes(&v).len(), 64);
    }

    #[test]
    fn envelope_encodings(v in envelope(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        // The envelope's own decoders, with its limit.
        prop_assert_eq!(&Envelope::from_bytes(&v.to_bytes())?, &v);
        prop_assert_eq!(&Envelope::from_json(&serde_json::to_vec(&v).unwrap())?, &v);
        let mut longer = v.to_bytes();
        longer.extend_from_slice(&extra);
        let trailing = Envelope::from_bytes(&longer);
        prop_assert!(matches!(trailing, Err(DecodeError::Trailing { .. })), "{:?}", trailing);
        // The id is a function of type and payload only.
        let mut resigned = v.clone();
        resigned.signatures.clear();
        prop_assert_eq!(resigned.id(), v.id());
    }

    #[test]
    fn header_encodings(v in header(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        // The hash is over the encoding, so a decoded header hashes the same.
        let back: Header = codec::from_bytes("header", &codec::to_bytes(&v), CAP)?;
        prop_assert_eq!(back.hash(), v.hash());
    }

    #[test]
    fn block_encodings(v in block(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        prop_assert_eq!(&Block::from_bytes(&v.to_bytes())?, &v);
        let mut longer = v.to_bytes();
        longer.extend_from_slice(&extra);
        let trailing = Block::from_bytes(&longer);
        prop_assert!(matches!(trailing, Err(DecodeError::Trailing { .. })), "{:?}", trailing);
    }

    #[test]
    fn certificate_encodings(v in certificate(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
    }

    #[test]
    fn vote_encodings(v in vote(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        // The vote kind's tag is its explicit byte.
        prop_assert_eq!(codec::to_bytes(&v)[0], v.kind as u8);
    }

    #[test]
    fn receipt_encodings(v in receipt(), extra in extra_bytes(), cut in any::<Index>()) {
        round_trips(&v)?;
        rejects_all_but_one_encoding(&v, &extra, cut)?;
        prop_assert_eq!(&Receipt::from_bytes(&v.to_bytes())?, &v);
        prop_assert_eq!(&Receipt::from_json(&serde_json::to_vec(&v).unwrap())?, &v);
        let mut longer = v.to_bytes();
        longer.extend_from_slice(&extra);
        let trailing = Receipt::from_bytes(&longer);
        prop_assert!(matches!(trailing, Err(DecodeError::Trailing { .. })), "{:?}", trailing);
    }

    /// Arbitrary bytes never panic a decoder; what decodes re-encodes to a
    /// prefix-free form no longer than the input.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Receipt::from_bytes(&bytes);
        let _ = Receipt::from_json(&bytes);
        let _ = Block::from_bytes(&bytes);
        let _ = Envelope::from_bytes(&bytes);
        let _ = Envelope::from_json(&bytes);
        let _ = Statement::from_payload(&bytes);
        if let Ok(vote) = codec::from_bytes::<Vote>("vote", &bytes, CAP) {
            prop_assert!(codec::to_bytes(&vote).len() <= bytes.len());
        }
    }
}

// ---- the real limits ------------------------------------------------------------

#[test]
fn decoders_enforce_their_limits() {
    let too_big = |max: usize| vec![0u8; max + 1];
    let is_too_large = |r: Result<(), DecodeError>, max: usize| {
        assert_eq!(
            r,
            Err(DecodeError::TooLarge {
                what: match_what(max),
                len: max + 1,
                max
            })
        );
    };
    fn match_what(max: usize) -> &'static str {
        match max {
            limits::ATTESTATION_BYTES_MAX => "attestation",
            limits::RECEIPT_BYTES_MAX => "receipt",
            limits::BLOCK_BYTES_MAX => "block",
            limits::STATEMENT_BYTES_MAX => "statement",
            _ => unreachable!(),
        }
    }
    is_too_large(
        Envelope::from_bytes(&too_big(limits::ATTESTATION_BYTES_MAX)).map(drop),
        limits::ATTESTATION_BYTES_MAX,
    );
    is_too_large(
        Envelope::from_json(&too_big(limits::ATTESTATION_BYTES_MAX)).map(drop),
        limits::ATTESTATION_BYTES_MAX,
    );
    is_too_large(
        Receipt::from_bytes(&too_big(limits::RECEIPT_BYTES_MAX)).map(drop),
        limits::RECEIPT_BYTES_MAX,
    );
    is_too_large(
        Receipt::from_json(&too_big(limits::RECEIPT_BYTES_MAX)).map(drop),
        limits::RECEIPT_BYTES_MAX,
    );
    is_too_large(
        Statement::from_payload(&too_big(limits::STATEMENT_BYTES_MAX)).map(drop),
        limits::STATEMENT_BYTES_MAX,
    );
    is_too_large(
        Block::from_bytes(&too_big(limits::BLOCK_BYTES_MAX)).map(drop),
        limits::BLOCK_BYTES_MAX,
    );
}

/// A length prefix that claims more elements than there are bytes fails
/// cleanly instead of allocating for the claim.
#[test]
fn huge_length_prefixes_fail_cleanly() {
    // Receipt version 1, then an envelope whose payloadType claims 2^32 - 1 bytes.
    let bytes = [0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, b'x'];
    assert!(matches!(
        Receipt::from_bytes(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
    // A block whose attestation list claims u64::MAX entries.
    let mut block = codec::to_bytes(&Block {
        header: Header {
            version: 1,
            chain_id: Digest::ZERO,
            height: 1,
            view: 0,
            parent: BlockHash(Digest::ZERO),
            root: Digest::ZERO,
            count: 0,
            evidence_root: Digest::ZERO,
            timestamp_ms: 0,
            proposer: 0,
        },
        attestations: vec![],
        evidence: vec![],
    });
    assert_eq!(
        (block.pop(), block.pop()),
        (Some(0), Some(0)),
        "the empty lists' lengths (evidence, then attestations) are the last bytes"
    );
    block.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert!(matches!(
        Block::from_bytes(&block),
        Err(DecodeError::Malformed { .. })
    ));
}

/// One value, one encoding: postcard varints may be written overlong
/// (0x80 0x00 for 0), and a decoder that accepts that gives every receipt,
/// block and vote many byte forms, so raw bytes can not be deduplicated or
/// hashed. Decoders must refuse what they would not have encoded.
#[test]
fn overlong_varints_are_rejected() {
    let vote = Vote {
        kind: VoteKind::Finalize,
        epoch: 0,
        view: 5,
        block: Digest([3; 32]),
        signer: 1,
        signature: Signature([9; 64]),
    };
    let bytes = codec::to_bytes(&vote);
    assert_eq!(&bytes[..2], &[2, 0], "kind Finalize, then epoch 0");
    let mut overlong = vec![2, 0x80, 0x00];
    overlong.extend_from_slice(&bytes[2..]);
    let decoded = codec::from_bytes::<Vote>("vote", &overlong, CAP);
    assert!(
        decoded.is_err(),
        "an overlong epoch varint decoded as {decoded:?}"
    );

    let receipt_bytes = [0x81, 0x00];
    let version = codec::from_bytes::<u16>("version", &receipt_bytes, CAP);
    assert!(
        version.is_err(),
        "an overlong u16 varint decoded as {version:?}"
    );
}
