// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// TEST ONLY, never deployed by Keel outside tests: a stand-in for the generated halo2 verifier,
/// with its calling convention (src/IBatchVerifier.sol), that accepts exactly the "proof"
/// `keccak256(publicInputs)`. The rollup's rule tests use it to check that the contract builds
/// the public inputs from its own state and the posted data and refuses a batch whose proof does
/// not match them; the real verifier is tested in keel-evm's `verifier` tests.
contract DigestVerifier {
    fallback(bytes calldata input) external returns (bytes memory) {
        require(input.length == 6 * 32 + 32, "not a digest");
        require(bytes32(input[192:224]) == keccak256(input[0:192]), "wrong digest");
        return "";
    }
}
