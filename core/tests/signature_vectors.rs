//! ZIP-215 edge cases through `PublicKey::verify` and `BatchVerifier`.
//!
//! Lotline's rule is that single and batch verification give the same verdict
//! on every input, so that honest nodes never disagree on what enters the
//! chain. The vectors are the Ed25519 edge cases that split implementations:
//!
//! * the 8 small-order points (the 8-torsion) and the non-canonical point
//!   encodings (y >= p, or x = 0 with the sign bit set), as published with
//!   ZIP 215 (<https://zips.z.cash/zip-0215>) and in the ed25519-zebra /
//!   ed25519-consensus test suite (`tests/small_order.rs`, `tests/util`), and
//!   analysed in Chalkias, Garillot, Nikolaenko: "Taming the many EdDSAs"
//!   (SSR 2020, <https://eprint.iacr.org/2020/1244>), whose vectors 0-11
//!   exercise the same small-order and non-canonical cases;
//! * a non-canonical scalar s >= l, which every rule rejects.
//!
//! ed25519-dalek's `verify_strict` rejects small-order keys and R, and its
//! `verify` is cofactorless, so both disagree with ZIP-215 (and with each
//! other) on these vectors: that is why neither decides validity in Lotline.

use ed25519_dalek::Verifier as _;
use lotline_core::crypto::{BatchVerifier, PublicKey, Signature, SignatureError, SigningKey};

/// The message signed in the ZIP-215 small-order vectors.
const MSG: &[u8] = b"Zcash";

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).expect("64 hex digits");
    out
}

/// The canonical encodings of the 8 small-order points (the 8-torsion
/// subgroup), in the order ed25519-consensus lists `EIGHT_TORSION`.
const SMALL_ORDER: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000", // order 1: identity (0, 1)
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
    "0000000000000000000000000000000000000000000000000000000000000080", // order 4: (-sqrt(-1), 0)
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2: (0, -1)
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
    "0000000000000000000000000000000000000000000000000000000000000000", // order 4: (sqrt(-1), 0)
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
];

/// The non-canonical encodings of small-order points (the first six of
/// ed25519-consensus' `non_canonical_point_encodings`).
const NON_CANONICAL_SMALL_ORDER: [&str; 6] = [
    "0100000000000000000000000000000000000000000000000000000000000080", // (0, 1) with sign bit: x = -0
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // (0, -1) with sign bit: x = -0
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p     = 0: order 4
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = p     = 0, sign bit: order 4
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1 = 1: the identity
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = p + 1 = 1, sign bit: the identity
];

/// The group order l = 2^252 + 27742317777372353535851937790883648493,
/// little-endian.
const L: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

/// The 14 small-order encodings: 8 canonical, 6 not.
fn small_order_encodings() -> Vec<[u8; 32]> {
    SMALL_ORDER
        .iter()
        .chain(&NON_CANONICAL_SMALL_ORDER)
        .map(|s| hex32(s))
        .collect()
}

/// Every non-canonical point encoding: y + p for the 19 field elements
/// y < 19 whose y + p fits in 255 bits, with either sign bit, when y is on
/// the curve; and the two x = 0 points with the sign bit set. Generated as
/// ed25519-consensus' `tests/util/mod.rs` does. Twelve such y are on the
/// curve (0, 1, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18), so there are 26
/// encodings (the comment there says 25); only the six listed in
/// [`NON_CANONICAL_SMALL_ORDER`] have small order.
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = vec![
        hex32(NON_CANONICAL_SMALL_ORDER[0]),
        hex32(NON_CANONICAL_SMALL_ORDER[1]),
    ];
    for y in 0u8..19 {
        let mut bytes = [0xff; 32];
        bytes[0] = 0xed + y;
        bytes[31] = 0x7f;
        for sign in [0x00, 0x80] {
            bytes[31] = 0x7f | sign;
            if ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok() {
                out.push(bytes);
            }
        }
    }
    out
}

fn signature(r: &[u8; 32], s: &[u8; 32]) -> Signature {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s);
    Signature(sig)
}

/// Little-endian 256-bit addition (the inputs here never overflow).
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "overflow");
    out
}

/// The verdicts of every path on one vector: `PublicKey::verify`,
/// `BatchVerifier` with the vector alone, and ed25519-consensus' batch
/// equation itself (no per-item fallback).
fn verdicts(key: &PublicKey, msg: &[u8], sig: &Signature) -> (bool, bool, bool) {
    let single = key.verify(msg, sig).is_ok();
    let mut batch = BatchVerifier::new();
    batch.push(*key, msg, *sig);
    let ours = batch.verify().iter().all(Result::is_ok);
    let mut raw = ed25519_consensus::batch::Verifier::new();
    raw.queue((
        ed25519_consensus::VerificationKeyBytes::from(key.0),
        ed25519_consensus::Signature::from(sig.0),
        msg,
    ));
    let equation = raw.verify(rand_core::OsRng).is_ok();
    (single, ours, equation)
}

fn assert_verdict(what: &str, key: &PublicKey, msg: &[u8], sig: &Signature, valid: bool) {
    let got = verdicts(key, msg, sig);
    assert_eq!(
        got,
        (valid, valid, valid),
        "{what}: (single, BatchVerifier, raw batch) for key {key} sig {sig:?}"
    );
}

#[test]
fn the_vector_lists_are_the_published_ones() {
    let non_canonical = non_canonical_encodings();
    assert_eq!(
        non_canonical.len(),
        26,
        "2 + 2 x 12 non-canonical point encodings"
    );
    for (i, small) in NON_CANONICAL_SMALL_ORDER.iter().enumerate() {
        assert!(
            non_canonical.contains(&hex32(small)),
            "non-canonical small-order encoding {i} missing"
        );
    }
    // Every encoding here decodes to a curve point (ZIP 215 accepts them).
    for bytes in small_order_encodings().iter().chain(&non_canonical) {
        assert!(
            ed25519_consensus::VerificationKey::try_from(*bytes).is_ok(),
            "{}",
            hex::encode(bytes)
        );
    }
}

/// Vector (1): small-order A and small-order R with s = 0. ZIP 215's
/// cofactored equation [8][s]B = [8]R + [8][k]A is 0 = 0 + 0, so it accepts,
/// for any message, every one of the 14 x 14 combinations. Single and batch
/// agree. Such a key "signs" everything, which is why genesis refuses it.
#[test]
fn small_order_a_and_r_with_s_zero_are_accepted_by_single_and_batch() {
    let encodings = small_order_encodings();
    let zero = [0u8; 32];
    let mut all = BatchVerifier::new();
    let mut raw = ed25519_consensus::batch::Verifier::new();
    for a in &encodings {
        let key = PublicKey(*a);
        assert!(key.is_weak(), "small-order key {key} must be weak");
        for r in &encodings {
            let sig = signature(r, &zero);
            assert_verdict("small-order A, R; s = 0", &key, MSG, &sig, true);
            assert_verdict("same, another message", &key, b"lot 42 passed", &sig, true);
            all.push(key, MSG, sig);
            raw.queue((
                ed25519_consensus::VerificationKeyBytes::from(*a),
                ed25519_consensus::Signature::from(sig.0),
                MSG,
            ));
        }
    }
    // All 196 at once: the batch equation holds, every verdict is Ok.
    assert!(raw.verify(rand_core::OsRng).is_ok());
    let verdicts = all.verify();
    assert_eq!(verdicts.len(), 196);
    assert!(verdicts.iter().all(Result::is_ok));
}

/// Vector (2): non-canonical encodings of A (y = p + 1 is the identity,
/// y = p is a point of order 4; and x = -0) verify under ZIP 215, which
/// hashes A's bytes as given and does not require canonical points.
#[test]
fn non_canonical_a_is_accepted() {
    let identity = hex32(SMALL_ORDER[0]);
    for a in NON_CANONICAL_SMALL_ORDER {
        let key = PublicKey(hex32(a));
        assert!(
            key.is_weak(),
            "non-canonical small-order key {key} must be weak"
        );
        assert_verdict(
            "non-canonical A, R = identity, s = 0",
            &key,
            MSG,
            &signature(&identity, &[0; 32]),
            true,
        );
        // And as R.
        assert_verdict(
            "A = identity, non-canonical R, s = 0",
            &PublicKey(identity),
            MSG,
            &signature(&hex32(a), &[0; 32]),
            true,
        );
    }
}

/// `is_weak` promises to flag non-canonical encodings, not only small-order
/// ones: a key has exactly one encoding in a genesis. The 19 non-canonical
/// encodings of large-order points are checked too.
#[test]
fn every_non_canonical_key_is_weak() {
    let missed: Vec<String> = non_canonical_encodings()
        .into_iter()
        .filter(|b| !PublicKey(*b).is_weak())
        .map(hex::encode)
        .collect();
    assert!(
        missed.is_empty(),
        "PublicKey::is_weak() is false for {} non-canonical encodings (ed25519-dalek's VerifyingKey::to_bytes \
         returns the bytes it was given, so comparing with them does not detect non-canonical input):\n{}",
        missed.len(),
        missed.join("\n")
    );
}

/// Vector (3): s >= l is rejected by every path, for an honest signature
/// with l added to s, for s = l itself on a small-order vector that is
/// valid with s = 0, and for s with the top bits set.
#[test]
fn non_canonical_s_is_rejected() {
    let l = hex32(L);
    let key = SigningKey::from_seed(&[7; 32]);
    let public = key.public_key();
    let honest = key.sign(MSG);
    assert_verdict("honest signature", &public, MSG, &honest, true);

    let s: [u8; 32] = honest.0[32..].try_into().expect("32 bytes");
    let r: [u8; 32] = honest.0[..32].try_into().expect("32 bytes");
    let s_plus_l = add_le(&s, &l);
    assert_verdict(
        "honest R, s + l",
        &public,
        MSG,
        &signature(&r, &s_plus_l),
        false,
    );
    assert_eq!(
        public.verify(MSG, &signature(&r, &s_plus_l)),
        Err(SignatureError::Invalid)
    );

    let identity = PublicKey(hex32(SMALL_ORDER[0]));
    let r_identity = hex32(SMALL_ORDER[0]);
    assert_verdict(
        "identity A and R, s = 0",
        &identity,
        MSG,
        &signature(&r_identity, &[0; 32]),
        true,
    );
    assert_verdict(
        "identity A and R, s = l",
        &identity,
        MSG,
        &signature(&r_identity, &l),
        false,
    );
    assert_verdict(
        "identity A and R, s = 2l",
        &identity,
        MSG,
        &signature(&r_identity, &add_le(&l, &l)),
        false,
    );
    assert_verdict(
        "identity A and R, s = 2^256 - 1",
        &identity,
        MSG,
        &signature(&r_identity, &[0xff; 32]),
        false,
    );

    // In a mixed batch exactly the bad item fails, and the rest pass.
    let mut batch = BatchVerifier::new();
    batch.push(public, MSG, honest);
    batch.push(public, MSG, signature(&r, &s_plus_l));
    batch.push(identity, MSG, signature(&r_identity, &[0; 32]));
    let verdicts: Vec<bool> = batch.verify().iter().map(Result::is_ok).collect();
    assert_eq!(verdicts, vec![true, false, true]);
}

/// Vector (4): ed25519-dalek disagrees with ZIP 215 on vector (1).
/// `verify_strict` rejects every small-order A or R that ZIP 215 accepts;
/// plain `verify` (cofactorless, [s]B = R + [k]A) accepts some of them and
/// rejects others depending on the message hash, i.e. on k mod 8. If dalek
/// decided validity, two honest nodes using the two dalek calls, or dalek
/// and a batch verifier, could disagree on the same block.
#[test]
fn dalek_disagrees_with_zip215_on_small_order_vectors() {
    let identity = hex32(SMALL_ORDER[0]);
    let sig = signature(&identity, &[0; 32]);
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig.0);

    // A = R = identity, s = 0: ZIP 215 and dalek's cofactorless verify accept, verify_strict rejects.
    let key = PublicKey(identity);
    assert!(key.verify(MSG, &sig).is_ok());
    let dalek_key =
        ed25519_dalek::VerifyingKey::from_bytes(&identity).expect("the identity decodes");
    assert!(dalek_key.verify_strict(MSG, &dalek_sig).is_err());
    assert!(dalek_key.verify(MSG, &dalek_sig).is_ok());

    // verify_strict rejects all 196 small-order combinations ZIP 215 accepts.
    let encodings = small_order_encodings();
    for a in &encodings {
        for r in &encodings {
            let sig = signature(r, &[0; 32]);
            assert!(PublicKey(*a).verify(MSG, &sig).is_ok());
            let strict = ed25519_dalek::VerifyingKey::from_bytes(a)
                .map(|k| {
                    k.verify_strict(MSG, &ed25519_dalek::Signature::from_bytes(&sig.0))
                        .is_ok()
                })
                .unwrap_or(false);
            assert!(
                !strict,
                "verify_strict accepted A {} R {}",
                hex::encode(a),
                hex::encode(r)
            );
        }
    }

    // A of order 8, R = identity, s = 0: cofactorless verify needs [k]A = 0,
    // i.e. 8 | k, which depends on the message. ZIP 215 accepts every message.
    let a = hex32(SMALL_ORDER[1]);
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(&a).expect("decodes");
    let (mut dalek_yes, mut dalek_no) = (0, 0);
    for i in 0u32..64 {
        let msg = format!("message {i}");
        assert!(PublicKey(a).verify(msg.as_bytes(), &sig).is_ok());
        match dalek_key.verify(msg.as_bytes(), &dalek_sig) {
            Ok(()) => dalek_yes += 1,
            Err(_) => dalek_no += 1,
        }
    }
    assert!(
        dalek_yes > 0 && dalek_no > 0,
        "cofactorless verify: {dalek_yes} accepted, {dalek_no} rejected"
    );
}

/// The honest case, for contrast: every implementation accepts an ordinary
/// signature, and a batch of them verifies as a batch.
#[test]
fn honest_signatures_pass_everywhere() {
    let keys: Vec<SigningKey> = (1u8..=16)
        .map(|i| SigningKey::from_seed(&[i; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0u8..16).map(|i| vec![i; usize::from(i) + 1]).collect();
    let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let mut batch = BatchVerifier::new();
    let mut raw = ed25519_consensus::batch::Verifier::new();
    for ((key, msg), sig) in keys.iter().zip(&msgs).zip(&sigs) {
        let public = key.public_key();
        assert!(!public.is_weak());
        assert_verdict("honest", &public, msg, sig, true);
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public.0).expect("decodes");
        assert!(
            dalek
                .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
                .is_ok()
        );
        batch.push(public, msg, *sig);
        raw.queue((
            ed25519_consensus::VerificationKeyBytes::from(public.0),
            ed25519_consensus::Signature::from(sig.0),
            msg.as_slice(),
        ));
    }
    assert!(raw.verify(rand_core::OsRng).is_ok());
    assert!(batch.verify().iter().all(Result::is_ok));
}
