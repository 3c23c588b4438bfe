// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import {KeelConstants} from "./generated/KeelConstants.sol";

/// Keel's Schnorr signatures over Grumpkin (keel_state::signature), checked on chain: the exit's
/// proof that the account's owner chose the recipient. Grumpkin is `y² = x³ − 17` over BN254's
/// scalar field, of prime order `Q` (BN254's base field modulus).
library Grumpkin {
    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    uint256 internal constant Q = 0x30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47;

    /// Whether `(x, y)` is canonical and on the curve (the identity has no affine form).
    function onCurve(uint256 x, uint256 y) internal pure returns (bool) {
        return x < P && y < P && mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), P - 17, P);
    }

    /// The challenge of keel_state::signature: `2^253 + 2·(h mod 2^253) + 1`, mod Q.
    function challenge(uint256 h) internal pure returns (uint256) {
        return ((uint256(1) << 253) + 2 * (h & ((uint256(1) << 253) - 1)) + 1) % Q;
    }

    /// Whether `s·G == R + e·pk` with `pk` and `R` canonical points on the curve and `s < Q`.
    function verify(uint256 pkx, uint256 pky, uint256 rx, uint256 ry, uint256 s, uint256 e)
        internal
        pure
        returns (bool ok)
    {
        if (!onCurve(pkx, pky) || !onCurve(rx, ry) || s >= Q) return false;
        uint256 ne = (Q - (e % Q)) % Q;
        (uint256 gx, uint256 gy) = (KeelConstants.GRUMPKIN_GX, KeelConstants.GRUMPKIN_GY);
        assembly {
            // Jacobian doubling (a = 0) of the point at `acc`, in place; z = 0 is the identity.
            function dblIn(acc) {
                let p := 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001
                let z := mload(add(acc, 0x40))
                if iszero(z) { leave }
                let x := mload(acc)
                let y := mload(add(acc, 0x20))
                let a := mulmod(x, x, p)
                let b := mulmod(y, y, p)
                let c := mulmod(b, b, p)
                let d := addmod(x, b, p)
                d := addmod(mulmod(d, d, p), sub(p, addmod(a, c, p)), p)
                d := addmod(d, d, p)
                let e3 := mulmod(3, a, p)
                let x3 := addmod(mulmod(e3, e3, p), sub(p, addmod(d, d, p)), p)
                mstore(acc, x3)
                mstore(add(acc, 0x20), addmod(mulmod(e3, addmod(d, sub(p, x3), p), p), sub(p, mulmod(8, c, p)), p))
                mstore(add(acc, 0x40), mulmod(2, mulmod(y, z, p), p))
            }
            // Jacobian addition of the point at `pt` to the one at `acc`, in place (`tmp`: four
            // words of scratch memory).
            function addTo(acc, pt, tmp) {
                let p := 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001
                let z2 := mload(add(pt, 0x40))
                if iszero(z2) { leave }
                let z1 := mload(add(acc, 0x40))
                if iszero(z1) {
                    mstore(acc, mload(pt))
                    mstore(add(acc, 0x20), mload(add(pt, 0x20)))
                    mstore(add(acc, 0x40), z2)
                    leave
                }
                {
                    let z1z1 := mulmod(z1, z1, p)
                    let z2z2 := mulmod(z2, z2, p)
                    let u1 := mulmod(mload(acc), z2z2, p)
                    let s1 := mulmod(mulmod(mload(add(acc, 0x20)), z2, p), z2z2, p)
                    mstore(tmp, u1)
                    mstore(add(tmp, 0x20), s1)
                    mstore(add(tmp, 0x40), addmod(mulmod(mload(pt), z1z1, p), sub(p, u1), p))
                    mstore(add(tmp, 0x60), addmod(mulmod(mulmod(mload(add(pt, 0x20)), z1, p), z1z1, p), sub(p, s1), p))
                }
                let h := mload(add(tmp, 0x40))
                let r := mload(add(tmp, 0x60))
                if iszero(h) {
                    if iszero(r) {
                        dblIn(acc)
                        leave
                    }
                    mstore(add(acc, 0x40), 0)
                    leave
                }
                r := addmod(r, r, p)
                let i := mulmod(4, mulmod(h, h, p), p)
                let j := mulmod(h, i, p)
                let v := mulmod(mload(tmp), i, p)
                mstore(acc, addmod(mulmod(r, r, p), sub(p, addmod(j, addmod(v, v, p), p)), p))
                mstore(
                    add(acc, 0x20),
                    addmod(
                        mulmod(r, addmod(v, sub(p, mload(acc)), p), p),
                        sub(p, mulmod(2, mulmod(mload(add(tmp, 0x20)), j, p), p)),
                        p
                    )
                )
                // (z1 + z2)² − z1² − z2² = 2·z1·z2
                mstore(add(acc, 0x40), mulmod(mulmod(2, mulmod(z1, z2, p), p), h, p))
            }

            let acc := mload(0x40)
            let g := add(acc, 0x60)
            let q := add(acc, 0xc0)
            let gq := add(acc, 0x120)
            let tmp := add(acc, 0x180)
            mstore(0x40, add(acc, 0x200))
            mstore(acc, 0)
            mstore(add(acc, 0x20), 1)
            mstore(add(acc, 0x40), 0)
            mstore(g, gx)
            mstore(add(g, 0x20), gy)
            mstore(add(g, 0x40), 1)
            mstore(q, pkx)
            mstore(add(q, 0x20), pky)
            mstore(add(q, 0x40), 1)
            mstore(gq, gx)
            mstore(add(gq, 0x20), gy)
            mstore(add(gq, 0x40), 1)
            addTo(gq, q, tmp)
            // s·G + (−e)·pk by Shamir's trick, most significant bit first (both are below 2^254)
            for { let i := 254 } i {} {
                i := sub(i, 1)
                dblIn(acc)
                switch or(and(shr(i, s), 1), shl(1, and(shr(i, ne), 1)))
                case 1 { addTo(acc, g, tmp) }
                case 2 { addTo(acc, q, tmp) }
                case 3 { addTo(acc, gq, tmp) }
            }
            let p := 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001
            let z := mload(add(acc, 0x40))
            let zz := mulmod(z, z, p)
            ok :=
                and(
                    iszero(iszero(z)),
                    and(eq(mload(acc), mulmod(rx, zz, p)), eq(mload(add(acc, 0x20)), mulmod(ry, mulmod(zz, z, p), p)))
                )
        }
    }
}
