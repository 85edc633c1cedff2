//! The attestation Merkle tree of a block: rs_merkle with a BLAKE3 hasher whose
//! leaves and inner nodes hash in different domains.
//!
//! Leaves are attestation ids in block order. rs_merkle promotes an odd last
//! node unchanged to the next level (it does not duplicate it); a verifier in
//! another language must do the same. The root of an empty block is
//! [`Digest::ZERO`].

use rs_merkle::{Hasher, MerkleProof, MerkleTree};

use crate::attestation::AttestationId;
use crate::hash::{self, Digest, Domain};

/// rs_merkle hasher: `leaf = H_leaf(id)`, `node = H_node(left || right)`.
#[derive(Clone, Copy, Debug)]
pub struct Blake3Domains;

impl Hasher for Blake3Domains {
    type Hash = [u8; 32];

    /// Used by rs_merkle only through our own [`leaf_hash`]; kept in the leaf
    /// domain so it can never produce an inner-node hash.
    fn hash(data: &[u8]) -> [u8; 32] {
        hash::hash(Domain::MerkleLeaf, data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => hash::hash_parts(Domain::MerkleNode, &[left, right]).0,
            None => *left,
        }
    }
}

/// The leaf hash of an attestation id.
pub fn leaf_hash(id: &AttestationId) -> [u8; 32] {
    Blake3Domains::hash(id.0.as_bytes())
}

/// A built tree over one block's attestation ids.
pub struct BlockTree {
    tree: MerkleTree<Blake3Domains>,
    len: usize,
}

impl std::fmt::Debug for BlockTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockTree({} leaves, root {})", self.len, self.root())
    }
}

impl BlockTree {
    pub fn new(ids: &[AttestationId]) -> BlockTree {
        let leaves: Vec<[u8; 32]> = ids.iter().map(leaf_hash).collect();
        BlockTree {
            tree: MerkleTree::from_leaves(&leaves),
            len: ids.len(),
        }
    }

    pub fn root(&self) -> Digest {
        self.tree.root().map(Digest).unwrap_or(Digest::ZERO)
    }

    /// The sibling hashes proving leaf `index`, bottom-up.
    pub fn proof(&self, index: usize) -> Option<Vec<Digest>> {
        if index >= self.len {
            return None;
        }
        Some(
            self.tree
                .proof(&[index])
                .proof_hashes()
                .iter()
                .copied()
                .map(Digest)
                .collect(),
        )
    }
}

/// The root over `ids` (convenience for producers and validators).
pub fn root(ids: &[AttestationId]) -> Digest {
    BlockTree::new(ids).root()
}

/// The number of sibling hashes a proof of leaf `index` of `count` has: one
/// per level, except where the node is the odd last one and is promoted.
pub fn proof_len(index: usize, count: usize) -> usize {
    let (mut i, mut n, mut len) = (index, count, 0);
    while n > 1 {
        if !(i == n - 1 && n % 2 == 1) {
            len += 1;
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    len
}

/// Checks that `id` is leaf `index` of `count` leaves under `root`. The
/// proof must have exactly the siblings the tree shape calls for: rs_merkle
/// ignores surplus hashes, and a receipt must have one valid form only.
pub fn verify_proof(
    root: &Digest,
    id: &AttestationId,
    index: usize,
    count: usize,
    proof: &[Digest],
) -> bool {
    if index >= count
        || proof.len() > crate::limits::MERKLE_PROOF_HASHES_MAX
        || proof.len() != proof_len(index, count)
    {
        return false;
    }
    let hashes: Vec<[u8; 32]> = proof.iter().map(|d| d.0).collect();
    MerkleProof::<Blake3Domains>::new(hashes).verify(root.0, &[index], &[leaf_hash(id)], count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<AttestationId> {
        (0..n)
            .map(|i| AttestationId(hash::hash(Domain::Attestation, &i.to_le_bytes())))
            .collect()
    }

    #[test]
    fn empty_tree_has_zero_root() {
        assert_eq!(root(&[]), Digest::ZERO);
    }

    #[test]
    fn single_leaf_root_is_its_leaf_hash() {
        let ids = ids(1);
        assert_eq!(root(&ids).0, leaf_hash(&ids[0]));
        assert!(verify_proof(&root(&ids), &ids[0], 0, 1, &[]));
    }

    #[test]
    fn leaf_can_not_pose_as_inner_node() {
        // Second-preimage guard: an inner node's preimage (left || right) given
        // as a leaf hashes in the leaf domain and so differs.
        let ids = ids(2);
        let tree = BlockTree::new(&ids);
        let mut concat = Vec::new();
        concat.extend_from_slice(&leaf_hash(&ids[0]));
        concat.extend_from_slice(&leaf_hash(&ids[1]));
        assert_ne!(Blake3Domains::hash(&concat), tree.root().0);
    }

    proptest! {
        #[test]
        fn every_leaf_proves_and_wrong_index_fails(n in 1usize..70, pick in 0usize..70) {
            let ids = ids(n);
            let tree = BlockTree::new(&ids);
            let i = pick % n;
            let proof = tree.proof(i).unwrap();
            prop_assert_eq!(proof.len(), proof_len(i, n));
            prop_assert!(verify_proof(&tree.root(), &ids[i], i, n, &proof));
            let mut longer = proof.clone();
            longer.push(Digest::ZERO);
            prop_assert!(!verify_proof(&tree.root(), &ids[i], i, n, &longer));
            if n > 1 {
                let j = (i + 1) % n;
                prop_assert!(!verify_proof(&tree.root(), &ids[i], j, n, &proof));
                prop_assert!(!verify_proof(&tree.root(), &ids[j], i, n, &proof));
            }
        }
    }
}
