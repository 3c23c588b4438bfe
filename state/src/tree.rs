//! The sparse Merkle tree: empty subtrees, paths, proofs.
//!
//! A tree of depth `D` has `2^D` leaves; leaf `i` holds account `i`'s [`crate::Account::leaf`], or 0
//! when empty. Inner nodes are `compress(Node, left, right)`: one Poseidon permutation
//! ([`poseidon::compress`]). Levels count from
//! the leaves (level 0) to the root (level `D`, index 0). A subtree with only empty leaves has the
//! fixed hash `EMPTY[level]` (`EMPTY[0] = 0`, `EMPTY[l+1] = node(EMPTY[l], EMPTY[l])`), so a
//! store need only hold the nodes that were ever written.
//!
//! The logic here is storage-free: it reads nodes through [`NodeSource`] and returns the nodes to
//! write, so the STF's overlay, the persistent store and a proof verifier share it.

use std::sync::LazyLock;

use crate::{
    encoding::{Decode, DecodeError, DecodeResult, Encode, Reader},
    field::{fr_to_bytes, Fr},
    ids::AccountIndex,
    poseidon,
    store::{NodeKey, StoreResult},
};

/// The largest supported depth (an [`AccountIndex`] is a `u32`).
pub const MAX_DEPTH: u8 = 32;
/// The depth a deployment gets unless its genesis says otherwise: 2^26 = 67 million accounts,
/// room for the first year's target of 50 million citizens (2^24 is 16.7 million).
pub const DEFAULT_DEPTH: u8 = 26;

static EMPTY: LazyLock<[Fr; MAX_DEPTH as usize + 1]> = LazyLock::new(|| {
    let mut e = [Fr::zero(); MAX_DEPTH as usize + 1];
    for l in 1..e.len() {
        e[l] = node(e[l - 1], e[l - 1]);
    }
    e
});

/// Hash of an empty subtree whose root is at `level`.
pub fn empty_hash(level: u8) -> Fr {
    EMPTY[usize::from(level)]
}

/// Reads tree nodes; `None` means never written, i.e. the empty subtree.
pub trait NodeSource {
    /// The node at `key`, if written.
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>>;

    /// The node at `key`, or the empty hash of its level.
    fn node_or_empty(&self, key: NodeKey) -> StoreResult<Fr> {
        Ok(self.node(key)?.unwrap_or_else(|| empty_hash(key.0)))
    }
}

/// The root of a tree of `depth` read through `src`.
pub fn root(src: &impl NodeSource, depth: u8) -> StoreResult<Fr> {
    src.node_or_empty((depth, 0))
}

/// The siblings of leaf `index`, from the leaf level up.
pub fn siblings(src: &impl NodeSource, depth: u8, index: AccountIndex) -> StoreResult<Vec<Fr>> {
    let i = u64::from(index.0);
    (0..depth)
        .map(|level| src.node_or_empty((level, (i >> level) ^ 1)))
        .collect()
}

/// Whether `index` is a leaf of a tree of `depth`.
pub fn index_fits(index: AccountIndex, depth: u8) -> bool {
    depth >= 32 || u64::from(index.0) >> depth == 0
}

/// Hashes `leaf` at `index` up through `siblings`, handing every node on the way (leaf first)
/// to `visit`, and returns the root.
fn fold_path(
    index: AccountIndex,
    leaf: Fr,
    siblings: &[Fr],
    mut visit: impl FnMut(NodeKey, Fr),
) -> Fr {
    let mut i = u64::from(index.0);
    let mut cur = leaf;
    visit((0, i), cur);
    for (level, sib) in siblings.iter().enumerate() {
        cur = hash_pair(cur, *sib, i & 1 == 1);
        i >>= 1;
        visit((level as u8 + 1, i), cur);
    }
    cur
}

/// The root a path yields for `leaf` at `index`.
pub fn root_from_path(index: AccountIndex, leaf: Fr, siblings: &[Fr]) -> Fr {
    fold_path(index, leaf, siblings, |_, _| {})
}

/// The nodes to write when leaf `index` (whose siblings are `siblings`) becomes `leaf`,
/// from the leaf up to the root.
pub fn updated_path(index: AccountIndex, leaf: Fr, siblings: &[Fr]) -> Vec<(NodeKey, Fr)> {
    let mut out = Vec::with_capacity(siblings.len() + 1);
    fold_path(index, leaf, siblings, |k, v| out.push((k, v)));
    out
}

/// An inner node: `compress(Node, left, right)`, one permutation.
pub fn node(left: Fr, right: Fr) -> Fr {
    poseidon::compress(poseidon::Domain::Node, left, right)
}

/// `node(cur, sibling)` when `cur` is a left child, `node(sibling, cur)` otherwise.
fn hash_pair(cur: Fr, sibling: Fr, cur_is_right: bool) -> Fr {
    if cur_is_right {
        node(sibling, cur)
    } else {
        node(cur, sibling)
    }
}

/// A membership (or, with the empty leaf 0, non-membership) proof for one leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    /// The leaf's position.
    pub index: AccountIndex,
    /// Siblings from the leaf level up; the tree's depth is their number.
    pub siblings: Vec<Fr>,
}

impl MerkleProof {
    /// The root this proof yields for `leaf`.
    pub fn compute_root(&self, leaf: Fr) -> Fr {
        root_from_path(self.index, leaf, &self.siblings)
    }

    /// Whether `leaf` is at `index` in the tree with `root`. A proof whose index does not fit its
    /// depth never verifies.
    pub fn verify(&self, leaf: Fr, root: Fr) -> bool {
        let depth = u8::try_from(self.siblings.len()).unwrap_or(u8::MAX);
        index_fits(self.index, depth) && self.compute_root(leaf) == root
    }
}

impl Encode for MerkleProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.0.to_be_bytes());
        out.push(self.siblings.len() as u8);
        for s in &self.siblings {
            out.extend_from_slice(&fr_to_bytes(s));
        }
    }
}

impl Decode for MerkleProof {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let index = AccountIndex(r.u32()?);
        let depth = r.u8()?;
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooLong {
                count: depth.into(),
                max: MAX_DEPTH.into(),
            });
        }
        let siblings = (0..depth).map(|_| r.fr()).collect::<DecodeResult<_>>()?;
        Ok(Self { index, siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Nodes(HashMap<NodeKey, Fr>);
    impl NodeSource for Nodes {
        fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>> {
            Ok(self.0.get(&key).copied())
        }
    }

    #[test]
    fn empty_tree_root_is_empty_hash() {
        let n = Nodes::default();
        assert_eq!(root(&n, 4).unwrap(), empty_hash(4));
        assert_eq!(empty_hash(1), node(Fr::zero(), Fr::zero()));
    }

    #[test]
    fn update_then_prove() {
        let mut n = Nodes::default();
        let depth = 3;
        for (i, v) in [(5u32, 11u64), (0, 7), (7, 3), (5, 12)] {
            let idx = AccountIndex(i);
            let sib = siblings(&n, depth, idx).unwrap();
            n.0.extend(updated_path(idx, Fr::from(v), &sib));
        }
        let r = root(&n, depth).unwrap();
        // compute the root by hand over the 8 leaves
        let mut level: Vec<Fr> = (0..8u64)
            .map(|i| n.0.get(&(0, i)).copied().unwrap_or(Fr::zero()))
            .collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|c| node(c[0], c[1])).collect();
        }
        assert_eq!(r, level[0]);
        for i in 0..8u32 {
            let p = MerkleProof {
                index: AccountIndex(i),
                siblings: siblings(&n, depth, AccountIndex(i)).unwrap(),
            };
            let leaf = n.0.get(&(0, u64::from(i))).copied().unwrap_or(Fr::zero());
            assert!(p.verify(leaf, r));
            assert!(!p.verify(leaf + Fr::one(), r));
        }
        // an index beyond the depth never verifies, even with a matching hash path
        let p = MerkleProof {
            index: AccountIndex(8 + 5),
            siblings: siblings(&n, depth, AccountIndex(5)).unwrap(),
        };
        assert!(!p.verify(Fr::from(12), r));
    }
}
