//! The Merkle update gadget: one leaf's path, before and after, from one set of siblings and index
//! bits.
//!
//! ```text
//!  leaf sponge: perm(cap(Leaf,4), pk.x, pk.y) ─absorb(balance, nonce)─▶ perm ─merkle_leaf─▶
//!  level 0:     perm(cap(Node,2), left, right) ─merkle─▶ level 1 … ─▶ level D−1: root = o1
//! ```
//!
//! Each level's `merkle` gate sits on the previous permutation's output row, next to the level's
//! sibling and bit, and writes the next permutation's input: `left = node + bit·(sib − node)`,
//! `right = sib + bit·(node − sib)`, with the bit constrained boolean; on the leaf level the node
//! is the leaf hash times the leaf's `exists` bit (an empty leaf is 0). The gadget lays out the
//! old path and then the new one; the new path's siblings and bits are copies of the old path's,
//! so both roots come from the same path.

use keel_state::{poseidon, Fr};

use super::{
    layout::{Cell, Layout, Sel, Tag},
    poseidon::{permutation, Perm},
};

/// A leaf's fields as cells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafCells {
    /// 1 if the account exists (the leaf is its hash), 0 if the leaf is empty.
    pub(crate) exists: Cell,
    /// The owner's key.
    pub(crate) pk: (Cell, Cell),
    /// The balance.
    pub(crate) balance: Cell,
    /// The nonce.
    pub(crate) nonce: Cell,
}

/// The roots of the tree with `old` and with `new` at the position of `bits` (leaf level first).
pub(crate) fn update(
    l: &mut Layout,
    old: &LeafCells,
    new: &LeafCells,
    bits: &[Cell],
    siblings: &[Fr],
) -> (Cell, Cell) {
    assert_eq!(bits.len(), siblings.len());
    let (before, sibs) = path(l, old, bits, siblings, None);
    let (after, _) = path(l, new, bits, siblings, Some(&sibs));
    (before, after)
}

/// One path: returns the root and the sibling cells.
fn path(
    l: &mut Layout,
    leaf: &LeafCells,
    bits: &[Cell],
    siblings: &[Fr],
    copy_siblings: Option<&[Cell]>,
) -> (Cell, Vec<Cell>) {
    let cap = l.constant(poseidon::capacity(poseidon::Domain::Leaf, 4));
    let leaf_hash =
        super::poseidon::sponge(l, cap, &[leaf.pk.0, leaf.pk.1, leaf.balance, leaf.nonce]);
    let mut perm: Perm = leaf_hash;
    let mut node = l.v(leaf.exists) * l.v(perm.out[1]);
    let mut sib_cells = Vec::with_capacity(siblings.len());
    for (level, (bit, sib)) in bits.iter().zip(siblings).enumerate() {
        let at = perm.out_row;
        l.enable(
            if level == 0 {
                Sel::MerkleLeaf
            } else {
                Sel::Merkle
            },
            at,
        );
        let s = match copy_siblings {
            Some(cells) => l.put_copy(at, 3, cells[level], Tag::MerkleSibling),
            None => l.put(at, 3, *sib, Tag::MerkleSibling),
        };
        sib_cells.push(s);
        let b = l.put_copy(at, 4, *bit, Tag::MerkleBit);
        if level == 0 {
            l.put_copy(at, 5, leaf.exists, Tag::Plain);
        }
        let right_child = l.v(b) == Fr::one();
        let (left, right) = if right_child {
            (*sib, node)
        } else {
            (node, *sib)
        };
        let x = [poseidon::capacity(poseidon::Domain::Node, 2), left, right];
        perm = permutation(l, x, [Tag::Plain, Tag::MerkleLeft, Tag::MerkleRight]).0;
        node = l.v(perm.out[1]);
    }
    (perm.out[1], sib_cells)
}
