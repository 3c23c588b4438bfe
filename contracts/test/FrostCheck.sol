// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import {FrostSecp256k1} from "../src/FrostSecp256k1.sol";

/// TEST ONLY: FrostSecp256k1's functions as calls, so tests compare them with the frost crate.
contract FrostCheck {
    function challenge(bytes calldata m) external pure returns (uint256) {
        return FrostSecp256k1.challenge(m);
    }

    function verify(uint256 pkx, uint256 pky, uint256 rx, uint256 ry, uint256 z, bytes calldata m)
        external
        pure
        returns (bool)
    {
        return FrostSecp256k1.verify(pkx, pky, rx, ry, z, m);
    }
}
