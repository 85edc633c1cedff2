//! Every size limit on untrusted input, in one place, with the relations
//! between them checked at compile time.

/// Largest JSON statement (the DSSE payload) a member may sign.
pub const STATEMENT_BYTES_MAX: usize = 48 * 1024;
/// Largest encoded attestation envelope (JSON form, base64 inflates by 4/3).
pub const ATTESTATION_BYTES_MAX: usize = 72 * 1024;
/// Signatures per envelope. Lotline requires exactly one member signature.
pub const ENVELOPE_SIGNATURES_MAX: usize = 1;
/// Attestations in one block.
pub const BLOCK_ATTESTATIONS_MAX: usize = 4096;
/// Equivocation evidence recorded by one block. A Byzantine validator can
/// equivocate in every view; the backlog drains this many per block.
pub const BLOCK_EVIDENCE_MAX: usize = 16;
/// Largest encoded block (postcard).
pub const BLOCK_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest encoded receipt (postcard or JSON).
pub const RECEIPT_BYTES_MAX: usize = 256 * 1024;
/// Largest Merkle proof (siblings). 2^32 leaves never fit a block.
pub const MERKLE_PROOF_HASHES_MAX: usize = 32;
/// Headers linking a block to the descendant whose certificate finalizes it.
pub const FINALITY_DESCENDANTS_MAX: usize = 256;
/// Validators in a consortium.
pub const VALIDATORS_MAX: usize = 64;
/// Items in one batch submit.
pub const BATCH_ITEMS_MAX: usize = 1000;
/// Largest HTTP request body (a full batch of maximal attestations would be
/// larger; a batch is bounded by this, not by items x max size).
pub const HTTP_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest EPCIS capture document (`POST /epcis/capture`). Such a document
/// is streamed, never held whole: the node keeps at most a few chunks of
/// [`CAPTURE_CHUNK_EVENTS`] events in memory, however large it is. Under
/// `rollback` its signed events are spooled to disk until the whole document
/// has been read, so this also bounds the spool (about 1.5x the document).
pub const CAPTURE_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Events of a capture document signed, admitted and enqueued together.
pub const CAPTURE_CHUNK_EVENTS: usize = BATCH_ITEMS_MAX;
/// Largest single event of a capture document, as JSON (a statement holding
/// it must fit [`STATEMENT_BYTES_MAX`]; this leaves room for whitespace).
pub const CAPTURE_EVENT_BYTES_MAX: usize = 4 * STATEMENT_BYTES_MAX;
/// Largest part of a capture document outside its event list (`@context`,
/// `epcisHeader`), which is held in memory while the events stream.
pub const CAPTURE_OUTLINE_BYTES_MAX: usize = HTTP_BODY_BYTES_MAX;
/// Identifiers an event may reference (EPCs, classes, parents, children).
pub const EVENT_IDENTIFIERS_MAX: usize = 10_000;
/// Length of any single identifier or vocabulary string.
pub const IDENTIFIER_BYTES_MAX: usize = 512;

/// Private fields in one statement's private section (statement version 2).
pub const PRIVATE_FIELDS_MAX: usize = 32;
/// Orgs one private section is wrapped to.
pub const PRIVATE_RECIPIENTS_MAX: usize = 64;
/// A private field's JSON pointer, bytes and segments.
pub const PRIVATE_PATH_BYTES_MAX: usize = 256;
pub const PRIVATE_PATH_DEPTH_MAX: usize = 8;
/// A private section's ciphertext. With base64 and the largest recipient
/// list it still fits a statement.
pub const PRIVATE_CIPHERTEXT_BYTES_MAX: usize = 24 * 1024;

const _: () = assert!(STATEMENT_BYTES_MAX * 4 / 3 + 1024 <= ATTESTATION_BYTES_MAX);
/// The block producer also cuts by bytes; a block must fit many maximal items.
const _: () = assert!(ATTESTATION_BYTES_MAX * 256 <= BLOCK_BYTES_MAX);
const _: () = assert!(BLOCK_ATTESTATIONS_MAX < (1 << MERKLE_PROOF_HASHES_MAX));
const _: () = assert!(ATTESTATION_BYTES_MAX + 64 * 1024 <= RECEIPT_BYTES_MAX);
const _: () = assert!(ATTESTATION_BYTES_MAX <= HTTP_BODY_BYTES_MAX);
const _: () = assert!(ENVELOPE_SIGNATURES_MAX == 1);
const _: () = assert!(CAPTURE_CHUNK_EVENTS <= BATCH_ITEMS_MAX);
const _: () = assert!(CAPTURE_EVENT_BYTES_MAX + CAPTURE_OUTLINE_BYTES_MAX <= CAPTURE_BYTES_MAX);
const _: () = assert!(HTTP_BODY_BYTES_MAX <= CAPTURE_BYTES_MAX);

/// Most receipts one proof bundle may hold, and its largest JSON form
/// (`lotline verify` reads the whole file).
pub const BUNDLE_RECEIPTS_MAX: usize = 10_000;
pub const BUNDLE_BYTES_MAX: usize = 256 * 1024 * 1024;
const _: () = assert!(
    PRIVATE_CIPHERTEXT_BYTES_MAX * 4 / 3 + PRIVATE_RECIPIENTS_MAX * 256 <= STATEMENT_BYTES_MAX
);
const _: () = assert!(PRIVATE_FIELDS_MAX * PRIVATE_PATH_BYTES_MAX <= PRIVATE_CIPHERTEXT_BYTES_MAX);
