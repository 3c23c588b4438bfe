// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// FROST(secp256k1, SHA-256) signatures (RFC 9591, the ciphersuite of ZF's `frost-secp256k1`),
/// verified with the ecrecover precompile: the council's threshold key.
///
/// A signature `(R, z)` on `message` under the group key `PK` is valid when `z·G = R + c·PK`, with
/// `c = H2(enc(R) ‖ enc(PK) ‖ message)` (compressed SEC1 encodings; H2 is `hash_to_field` with
/// `expand_message_xmd` over SHA-256 and the tag "FROST-secp256k1-SHA256-v1chal", 48 bytes
/// reduced mod n). `ecrecover(h, v, r, s)` returns the address of `r⁻¹·(s·Q − h·G)`, where `Q` is
/// the point with x-coordinate `r` and parity `v`; with `Q = PK`, `s = −c·PK.x` and
/// `h = −z·PK.x` that is `z·G − c·PK`, which must be `R`, compared by address.
library FrostSecp256k1 {
    uint256 internal constant N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
    uint256 internal constant P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f;

    /// Whether `(x, y)` is a canonical point of secp256k1.
    function onCurve(uint256 x, uint256 y) internal pure returns (bool) {
        return x < P && y < P && mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
    }

    /// The compressed SEC1 encoding of `(x, y)`.
    function compressed(uint256 x, uint256 y) internal pure returns (bytes memory) {
        return abi.encodePacked(uint8(2 + (y & 1)), bytes32(x));
    }

    /// RFC 9591's H2 for this ciphersuite.
    function challenge(bytes memory m) internal pure returns (uint256) {
        bytes memory dstPrime = abi.encodePacked("FROST-secp256k1-SHA256-v1chal", uint8(29));
        bytes32 b0 = sha256(abi.encodePacked(bytes32(0), bytes32(0), m, uint16(48), uint8(0), dstPrime));
        bytes32 b1 = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        bytes32 b2 = sha256(abi.encodePacked(b0 ^ b1, uint8(2), dstPrime));
        // the 48 uniform bytes b1 ‖ b2[..16] as a big-endian integer, mod n
        return addmod(mulmod(uint256(b1) % N, 1 << 128, N), uint256(b2) >> 128, N);
    }

    /// Whether `(R, z)` is a signature on `message` under `(pkx, pky)`, a point on the curve with
    /// `pkx < n` (checked at genesis).
    function verify(uint256 pkx, uint256 pky, uint256 rx, uint256 ry, uint256 z, bytes memory message)
        internal
        pure
        returns (bool)
    {
        if (!onCurve(rx, ry) || z == 0 || z >= N) return false;
        uint256 c = challenge(abi.encodePacked(compressed(rx, ry), compressed(pkx, pky), message));
        if (c == 0) return false;
        bytes32 h = bytes32(N - mulmod(z, pkx, N));
        bytes32 s = bytes32(N - mulmod(c, pkx, N));
        address got = ecrecover(h, uint8(27 + (pky & 1)), bytes32(pkx), s);
        return got != address(0) && got == address(uint160(uint256(keccak256(abi.encodePacked(rx, ry)))));
    }
}
