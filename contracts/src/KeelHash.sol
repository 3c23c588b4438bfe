// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import {KeelPoseidon} from "./generated/KeelPoseidon.sol";

/// Keel's uses of Poseidon (keel_state::poseidon): fixed-length sponges whose capacity element
/// names the domain and the input length, over the generated permutation contract.
library KeelHash {
    /// BN254's scalar field: the field of the state tree, the hashes and Grumpkin's coordinates.
    uint256 internal constant F = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;

    uint256 internal constant NODE = 1;
    uint256 internal constant LEAF = 2;
    uint256 internal constant ENTRY = 3;
    uint256 internal constant CHALLENGE = 4;
    uint256 internal constant DATA = 5;
    uint256 internal constant BATCH = 6;
    uint256 internal constant QUEUE = 7;

    /// The capacity element of a sponge in `domain` over `len` inputs: `domain·2^32 + len`.
    function capacity(uint256 domain, uint256 len) internal pure returns (uint256) {
        return (domain << 32) | len;
    }

    /// One permutation, by a static call to the generated contract.
    function permute(KeelPoseidon p, uint256 a, uint256 b, uint256 c)
        internal
        view
        returns (uint256 r0, uint256 r1, uint256 r2)
    {
        bytes4 sel = KeelPoseidon.permute.selector;
        assembly {
            let m := mload(0x40)
            mstore(m, sel)
            mstore(add(m, 0x04), a)
            mstore(add(m, 0x24), b)
            mstore(add(m, 0x44), c)
            if iszero(staticcall(gas(), p, m, 0x64, m, 0x60)) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
            r0 := mload(m)
            r1 := mload(add(m, 0x20))
            r2 := mload(add(m, 0x40))
        }
    }

    /// A two-input hash in `domain`: one permutation of `[capacity(domain, 2), a, b]`.
    function compress(KeelPoseidon p, uint256 domain, uint256 a, uint256 b) internal view returns (uint256 out) {
        (, out,) = permute(p, capacity(domain, 2), a, b);
    }

    /// The fixed-length sponge over `xs` in `domain`.
    function sponge(KeelPoseidon p, uint256 domain, uint256[] memory xs) internal view returns (uint256) {
        uint256 s0 = capacity(domain, xs.length);
        uint256 s1;
        uint256 s2;
        for (uint256 i; i < xs.length; i += 2) {
            s1 = addmod(s1, xs[i], F);
            if (i + 1 < xs.length) s2 = addmod(s2, xs[i + 1], F);
            (s0, s1, s2) = permute(p, s0, s1, s2);
        }
        return s1;
    }

    /// An operation's scalar fields in one element: `kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce`.
    function word(uint256 kind, uint32 a, uint32 b, uint64 amount, uint64 nonce) internal pure returns (uint256) {
        return kind | (uint256(a) << 8) | (uint256(b) << 40) | (uint256(amount) << 72) | (uint256(nonce) << 136);
    }

    /// `sponge(Entry, source, word, e1, e2, R.x, R.y, s_lo, s_hi)`.
    function entry(KeelPoseidon p, uint256[8] memory e) internal view returns (uint256) {
        uint256[] memory xs = new uint256[](8);
        for (uint256 i; i < 8; i++) xs[i] = e[i];
        return sponge(p, ENTRY, xs);
    }

    /// An account's leaf: `sponge(Leaf, pk.x, pk.y, balance, nonce)`.
    function leaf(KeelPoseidon p, uint256 x, uint256 y, uint64 balance, uint64 nonce) internal view returns (uint256) {
        uint256[] memory xs = new uint256[](4);
        (xs[0], xs[1], xs[2], xs[3]) = (x, y, balance, nonce);
        return sponge(p, LEAF, xs);
    }

    /// The root a Merkle path yields for `leafHash` at `index` (siblings from the leaf up).
    function root(KeelPoseidon p, uint256 index, uint256 leafHash, uint256[] calldata siblings)
        internal
        view
        returns (uint256 cur)
    {
        cur = leafHash;
        for (uint256 level; level < siblings.length; level++) {
            cur = (index >> level) & 1 == 1
                ? compress(p, NODE, siblings[level], cur)
                : compress(p, NODE, cur, siblings[level]);
        }
    }

    /// A 32-byte little-endian encoding read as an integer.
    function le(bytes32 v) internal pure returns (uint256) {
        uint256 x = uint256(v);
        x = ((x >> 8) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff)
            | ((x & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff) << 8);
        x = ((x >> 16) & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff)
            | ((x & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff) << 16);
        x = ((x >> 32) & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)
            | ((x & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff) << 32);
        x = ((x >> 64) & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)
            | ((x & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff) << 64);
        return (x >> 128) | (x << 128);
    }
}
