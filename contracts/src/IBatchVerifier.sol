// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// How the rollup calls a batch proof's verifier: a static call whose calldata is the six public
/// inputs as 32-byte big-endian words, in the circuit's order (keel_circuit::PublicInputs:
/// prev_root, new_root, batch_number, data_commitment, queue_before, queue_after), followed by
/// the proof's bytes. The call succeeds if and only if the proof is valid. This is the calling
/// convention of the verifiers that snark-verifier generates.
library BatchVerifierCall {
    /// Whether `verifier` accepts `proof` for `publicInputs`.
    function verify(address verifier, uint256[6] memory publicInputs, bytes calldata proof)
        internal
        view
        returns (bool ok)
    {
        (ok,) = verifier.staticcall(abi.encodePacked(publicInputs, proof));
    }
}
