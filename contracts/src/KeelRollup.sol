// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import {KeelPoseidon} from "./generated/KeelPoseidon.sol";
import {KeelConstants} from "./generated/KeelConstants.sol";
import {KeelHash} from "./KeelHash.sol";
import {Grumpkin} from "./Grumpkin.sol";
import {BatchVerifierCall} from "./IBatchVerifier.sol";
import {FrostSecp256k1} from "./FrostSecp256k1.sol";

/// Keel's L1 rules on any EVM chain: the rules that the embedded L1 (keel_committer::EmbeddedL1)
/// enforces, with the same semantics and deadlines (in seconds of block time).
///
/// - Lease and epochs: the holder's batches and heartbeats keep the lease; a registered standby
///   may claim it once the holder has been silent for the failover timeout, opening a new epoch;
///   a batch from another epoch is refused.
/// - Batches: posted in order, with their data in calldata; the contract decodes the data,
///   recomputes its commitment and the L1 queue's running hash over the batch's queue entries,
///   and verifies the proof against public inputs built from its own state. The batch's
///   withdrawals are then credited (paid by `claim`).
/// - Forced inclusion: deposits escrow ETH (one L2 unit is one gwei); forced transfers join the
///   same queue; the queue's running hash is keel-state's.
/// - Exit mode: anyone may activate it past the forced-inclusion or the proof deadline. Then
///   each account exits once, with a Merkle proof against the last proven root and its owner's
///   signature naming the recipient, and unconsumed deposits are reclaimed by their depositors.
///   Payouts never exceed the escrow.
/// - The council: a FROST(secp256k1) threshold key whose signatures, numbered in sequence, may
///   activate exit mode at once or rotate the registered sequencers, and nothing else.
contract KeelRollup {
    /// Wei per L2 unit.
    uint256 public constant UNIT = 1 gwei;
    uint8 private constant BATCH_VERSION = 1;
    uint8 private constant TAG_DEPOSIT = 0x01;
    uint8 private constant TAG_TRANSFER = 0x02;
    uint8 private constant TAG_WITHDRAW = 0x03;
    uint8 private constant TAG_FORCED = 0x10;

    /// What a deployment fixes at its start.
    struct Genesis {
        /// The rollup's chain id (signed into exits).
        uint64 chainId;
        /// The state tree's depth.
        uint8 depth;
        /// Seconds of silence after which a registered standby may claim the lease.
        uint64 failoverTimeout;
        /// Seconds a queue entry may wait before anyone may activate exit mode.
        uint64 forcedInclusionDeadline;
        /// Seconds without a proven batch before anyone may activate exit mode.
        uint64 proofDeadline;
        /// The registered sequencers in take-over order; the first holds the lease in epoch 1.
        address[] sequencers;
        /// The Grumpkin keys their acknowledgements are signed with (a standby's signed
        /// acknowledgement makes the primary's operations `replicated`): x and y of each, in the
        /// order of `sequencers`.
        uint256[] ackKeys;
        /// The permutation contract (generated from keel-state).
        KeelPoseidon poseidon;
        /// The batch proof verifier (generated from the verifying key; src/IBatchVerifier.sol).
        address verifier;
        /// The council's FROST(secp256k1) group key, uncompressed.
        uint256 councilX;
        uint256 councilY;
    }

    /// The council's actions (the byte its message names).
    uint8 public constant COUNCIL_EXIT_MODE = 1;
    uint8 public constant COUNCIL_ROTATE = 2;

    // ---- errors: one per refusal ----
    error ExitModeActive();
    error NotInExitMode();
    error ExitModeNotDue(uint64 queueDue, uint64 proofDue);
    error NotRegistered();
    error NotLeaseHolder();
    error AlreadyLeaseHolder();
    error LeaseNotExpired(uint64 claimableAt);
    error StaleEpoch(uint64 current, uint64 got);
    error WrongBatchNumber(uint64 expected, uint64 got);
    error WrongPrevRoot();
    error WrongQueueStart();
    error WrongQueueEnd();
    error QueueOrder(uint64 position);
    error DataMismatch();
    error BadData(uint256 offset);
    error InvalidProof();
    error ZeroAmount();
    error NotWholeUnits();
    error AmountTooLarge();
    error BadKey();
    error BadSignatureEncoding();
    error ForcedWithdrawal();
    error TreeFull();
    error AlreadyExited(uint32 account);
    error WrongMerkleProof();
    error NotAccountOwner();
    error NotReclaimable(uint64 position);
    error AlreadyReclaimed(uint64 position);
    error NothingToClaim();
    error PaymentFailed();
    error BadGenesis();
    error BadCouncilSignature(uint64 sequence);
    error EmptySequencerSet();

    // ---- events: everything services follow ----
    event LeaseClaimed(uint64 indexed epoch, address indexed sequencer);
    event Heartbeat(uint64 indexed epoch);
    event DepositQueued(uint64 indexed position, uint32 indexed account, uint256 pkX, uint256 pkY, uint64 amount, address depositor);
    event ForcedQueued(uint64 indexed position, bytes op);
    event BatchProven(uint64 indexed number, uint256 root, uint64 queueConsumed);
    event WithdrawalCredited(address indexed recipient, uint64 amount);
    event ExitModeActivated(uint8 reason);
    event Exited(uint32 indexed account, address indexed recipient, uint64 amount);
    event Reclaimed(uint64 indexed position, address indexed recipient, uint64 amount);
    event Claimed(address indexed recipient, uint256 amountWei);
    event CouncilActed(uint64 indexed sequence, uint8 action);
    event SequencersRotated(uint256 count);

    /// Exit mode's reasons (0: running).
    uint8 public constant EXIT_FORCED_INCLUSION = 1;
    uint8 public constant EXIT_PROOF_DEADLINE = 2;
    uint8 public constant EXIT_COUNCIL = 3;

    uint64 public immutable chainId;
    uint8 public immutable depth;
    uint64 public immutable failoverTimeout;
    uint64 public immutable forcedInclusionDeadline;
    uint64 public immutable proofDeadline;
    KeelPoseidon public immutable poseidon;
    address public immutable verifier;
    uint256 public immutable councilX;
    uint256 public immutable councilY;
    /// The number the council's next signature must carry.
    uint64 public councilSequence;
    address[] private sequencerList;
    uint256[] private ackKeyList;
    mapping(address => bool) public isSequencer;

    // the lease
    uint64 public epoch;
    address public leaseHolder;
    uint64 public leaseSince;
    uint64 public lastActive;

    // the checkpoint: the last proven batch
    uint64 public batchNumber;
    uint256 public stateRoot;
    uint64 public queueConsumed;
    uint64 public provenAt;

    // the queue: running hash after each entry, enqueue times, deposits' payers
    uint256[] private queueHashes;
    uint64[] private enqueuedAt;
    mapping(uint64 => address) private depositor;
    mapping(uint64 => uint64) private depositAmount;
    mapping(bytes32 => uint32) private accountPlusOne;
    uint32 public nextIndex;

    // exit mode and payouts
    uint8 public exitReason;
    uint64 public exitSince;
    mapping(uint32 => bool) public exited;
    mapping(uint64 => bool) public reclaimed;
    /// L2 units held for the rollup: deposits in, credited payouts out.
    uint64 public escrow;
    /// Wei credited and not yet claimed, per recipient.
    mapping(address => uint256) public claimable;

    constructor(Genesis memory g) {
        if (g.depth == 0 || g.depth > 32 || g.sequencers.length == 0) revert BadGenesis();
        if (!validAckKeys(g.sequencers.length, g.ackKeys)) revert BadGenesis();
        if (!FrostSecp256k1.onCurve(g.councilX, g.councilY) || g.councilX >= FrostSecp256k1.N) revert BadGenesis();
        councilX = g.councilX;
        councilY = g.councilY;
        chainId = g.chainId;
        depth = g.depth;
        failoverTimeout = g.failoverTimeout;
        forcedInclusionDeadline = g.forcedInclusionDeadline;
        proofDeadline = g.proofDeadline;
        poseidon = g.poseidon;
        verifier = g.verifier;
        for (uint256 i; i < g.sequencers.length; i++) {
            sequencerList.push(g.sequencers[i]);
            isSequencer[g.sequencers[i]] = true;
        }
        ackKeyList = g.ackKeys;
        // the empty tree's root
        uint256 root = 0;
        for (uint256 i; i < g.depth; i++) {
            root = KeelHash.compress(g.poseidon, KeelHash.NODE, root, root);
        }
        stateRoot = root;
        uint64 now_ = uint64(block.timestamp);
        epoch = 1;
        leaseHolder = g.sequencers[0];
        leaseSince = now_;
        lastActive = now_;
        provenAt = now_;
    }

    // ---------------------------------------------------------------- views

    /// Everything a service reads each poll, in one call (`state()`).
    struct State {
        uint64 epoch;
        address leaseHolder;
        uint64 leaseSince;
        uint64 lastActive;
        uint64 batchNumber;
        uint256 stateRoot;
        uint64 queueConsumed;
        uint256 queueHash;
        uint64 provenAt;
        uint64 queueLength;
        uint8 exitReason;
        uint64 exitSince;
        uint64 councilSequence;
        address[] sequencers;
        uint256[] ackKeys;
    }

    /// The rollup's state at a glance.
    function state() external view returns (State memory s) {
        s.epoch = epoch;
        s.leaseHolder = leaseHolder;
        s.leaseSince = leaseSince;
        s.lastActive = lastActive;
        s.batchNumber = batchNumber;
        s.stateRoot = stateRoot;
        s.queueConsumed = queueConsumed;
        s.queueHash = queueHashAt(queueConsumed);
        s.provenAt = provenAt;
        s.queueLength = uint64(queueHashes.length);
        s.exitReason = exitReason;
        s.exitSince = exitSince;
        s.councilSequence = councilSequence;
        s.sequencers = sequencerList;
        s.ackKeys = ackKeyList;
    }

    /// The registered sequencers, in take-over order.
    function sequencers() external view returns (address[] memory) {
        return sequencerList;
    }

    /// The sequencers' acknowledgement keys: x and y of each, in the order of `sequencers()`.
    function ackKeys() external view returns (uint256[] memory) {
        return ackKeyList;
    }

    /// Whether `keys` holds one Grumpkin point (x, y) per sequencer of `count`.
    function validAckKeys(uint256 count, uint256[] memory keys) private pure returns (bool) {
        if (keys.length != 2 * count) return false;
        for (uint256 i; i < keys.length; i += 2) {
            if (!Grumpkin.onCurve(keys[i], keys[i + 1])) return false;
        }
        return true;
    }

    /// Entries ever queued.
    function queueLength() external view returns (uint64) {
        return uint64(queueHashes.length);
    }

    /// The queue's running hash after `count` entries (0 for none).
    function queueHashAt(uint64 count) public view returns (uint256) {
        return count == 0 ? 0 : queueHashes[count - 1];
    }

    /// When entry `position` was queued.
    function queuedAt(uint64 position) external view returns (uint64) {
        return enqueuedAt[position];
    }

    /// The index of the account with this key, if it has one.
    function accountOf(uint256 pkX, uint256 pkY) external view returns (bool found, uint32 index) {
        uint32 a = accountPlusOne[keccak256(abi.encode(pkX, pkY))];
        return (a != 0, a == 0 ? 0 : a - 1);
    }

    /// When a registered standby may claim the lease.
    function claimableAt() public view returns (uint64) {
        return (leaseSince > lastActive ? leaseSince : lastActive) + failoverTimeout;
    }

    // ---------------------------------------------------------------- the lease

    /// The holder's heartbeat: restarts the failover clock as a batch does.
    function heartbeat() external {
        running();
        if (msg.sender != leaseHolder) revert NotLeaseHolder();
        lastActive = uint64(block.timestamp);
        emit Heartbeat(epoch);
    }

    /// A registered standby takes the lease, in a new epoch, once the holder is silent.
    function claimLease() external {
        running();
        if (!isSequencer[msg.sender]) revert NotRegistered();
        if (msg.sender == leaseHolder) revert AlreadyLeaseHolder();
        uint64 at = claimableAt();
        if (block.timestamp < at) revert LeaseNotExpired(at);
        uint64 now_ = uint64(block.timestamp);
        epoch += 1;
        leaseHolder = msg.sender;
        leaseSince = now_;
        lastActive = now_;
        emit LeaseClaimed(epoch, msg.sender);
    }

    // ---------------------------------------------------------------- the queue

    /// Escrows `msg.value` (whole gwei) for the account with key `(pkX, pkY)`, which is created
    /// (at the next index) if it does not exist yet, and queues the deposit.
    function deposit(uint256 pkX, uint256 pkY) external payable {
        running();
        if (msg.value % UNIT != 0) revert NotWholeUnits();
        uint256 units = msg.value / UNIT;
        if (units == 0) revert ZeroAmount();
        if (units > type(uint64).max || escrow + units > type(uint64).max) revert AmountTooLarge();
        if (!Grumpkin.onCurve(pkX, pkY)) revert BadKey();
        uint64 amount = uint64(units);
        bytes32 k = keccak256(abi.encode(pkX, pkY));
        uint32 plusOne = accountPlusOne[k];
        uint32 index;
        if (plusOne == 0) {
            index = nextIndex;
            if (depth < 32 && (uint256(index) >> depth) != 0) revert TreeFull();
            nextIndex = index + 1;
            accountPlusOne[k] = index + 1;
        } else {
            index = plusOne - 1;
        }
        escrow += amount;
        uint256[8] memory e;
        (e[0], e[1], e[2], e[3]) = (1, KeelHash.word(1, index, 0, amount, 0), pkX, pkY);
        uint64 position = enqueue(KeelHash.entry(poseidon, e));
        depositor[position] = msg.sender;
        depositAmount[position] = amount;
        emit DepositQueued(position, index, pkX, pkY, amount, msg.sender);
    }

    /// Queues a signed transfer (its canonical encoding, tag 0x02) for forced inclusion.
    /// Withdrawals cannot be forced: in exit mode an account exits instead.
    function force(bytes calldata op) external {
        running();
        if (op.length == 0) revert BadData(0);
        if (uint8(op[0]) == TAG_WITHDRAW) revert ForcedWithdrawal();
        if (uint8(op[0]) != TAG_TRANSFER || op.length != 121) revert BadData(0);
        (uint256[8] memory e,) = signedEntry(op, 0, TAG_TRANSFER);
        e[0] = 1;
        uint64 position = enqueue(KeelHash.entry(poseidon, e));
        emit ForcedQueued(position, op);
    }

    function enqueue(uint256 entryHash) private returns (uint64 position) {
        position = uint64(queueHashes.length);
        uint256 prev = queueHashAt(position);
        queueHashes.push(KeelHash.compress(poseidon, KeelHash.QUEUE, prev, entryHash));
        enqueuedAt.push(uint64(block.timestamp));
    }

    // ---------------------------------------------------------------- batches

    /// Posts the next batch (keel_state::Batch's canonical encoding) with its proof.
    function postBatch(bytes calldata data, bytes calldata proof) external {
        running();
        if (data.length < 181 || uint8(data[0]) != BATCH_VERSION) revert BadData(0);
        uint64 bEpoch = uint64(bytes8(data[9:17]));
        if (bEpoch != epoch) revert StaleEpoch(epoch, bEpoch);
        if (msg.sender != leaseHolder) revert NotLeaseHolder();
        uint256[6] memory pi; // prev_root, new_root, number, data_commitment, queue_before, queue_after
        pi[2] = uint64(bytes8(data[1:9]));
        if (pi[2] != uint256(batchNumber) + 1) revert WrongBatchNumber(batchNumber + 1, uint64(pi[2]));
        pi[0] = field(data, 17);
        pi[1] = field(data, 49);
        pi[4] = field(data, 81);
        pi[5] = field(data, 113);
        pi[3] = field(data, 145);
        if (pi[0] != stateRoot) revert WrongPrevRoot();
        if (pi[4] != queueHashAt(queueConsumed)) revert WrongQueueStart();

        Walk memory w = walk(data);
        if (w.commitment != pi[3]) revert DataMismatch();
        if (w.queueHash != pi[5]) revert WrongQueueEnd();
        if (!BatchVerifierCall.verify(verifier, pi, proof)) revert InvalidProof();

        uint64 now_ = uint64(block.timestamp);
        batchNumber = uint64(pi[2]);
        stateRoot = pi[1];
        queueConsumed = w.position;
        provenAt = now_;
        lastActive = now_;
        emit BatchProven(batchNumber, pi[1], w.position);
        // a withdrawal in a proven batch was valid (the circuit refuses an invalid one): credit it
        for (uint256 i; i < w.to.length; i++) {
            credit(w.to[i], w.amounts[i]);
            emit WithdrawalCredited(w.to[i], w.amounts[i]);
        }
    }

    /// What walking a batch's operations gives.
    struct Walk {
        /// The data commitment.
        uint256 commitment;
        /// Queue entries consumed after the batch.
        uint64 position;
        /// The queue's running hash after the batch.
        uint256 queueHash;
        /// The withdrawals' recipients and amounts.
        address[] to;
        uint64[] amounts;
    }

    /// Decodes the operations, recomputing the data commitment and, over the queue entries among
    /// them, the queue's running hash (which must match the entries queued here, in order).
    function walk(bytes calldata data) private view returns (Walk memory w) {
        uint256 count = uint32(bytes4(data[177:181]));
        // never allocate for more operations than the data could hold (the smallest is 77 bytes)
        if (count > (data.length - 181) / 77) revert BadData(177);
        uint256 at = 181;
        w.position = queueConsumed;
        w.queueHash = queueHashAt(w.position);
        w.to = new address[](count);
        w.amounts = new uint64[](count);
        uint256 withdrawals;
        uint256 d;
        for (uint256 i; i < count; i++) {
            (uint256[8] memory e, uint256 len) = opEntry(data, at);
            if (uint8(data[at]) == TAG_WITHDRAW) {
                w.to[withdrawals] = address(bytes20(data[at + 5:at + 25]));
                w.amounts[withdrawals] = uint64(bytes8(data[at + 25:at + 33]));
                withdrawals++;
            }
            uint256 h = KeelHash.entry(poseidon, e);
            d = KeelHash.compress(poseidon, KeelHash.DATA, d, h);
            if (e[0] == 1) {
                if (w.position >= queueHashes.length) revert QueueOrder(w.position);
                w.queueHash = KeelHash.compress(poseidon, KeelHash.QUEUE, w.queueHash, h);
                if (w.queueHash != queueHashes[w.position]) revert QueueOrder(w.position);
                w.position++;
            }
            at += len;
        }
        if (at != data.length) revert BadData(at);
        w.commitment = KeelHash.compress(poseidon, KeelHash.BATCH, d, count);
        address[] memory to = w.to;
        uint64[] memory amounts = w.amounts;
        assembly {
            mstore(to, withdrawals)
            mstore(amounts, withdrawals)
        }
    }

    /// The entry-hash elements of the operation encoded at `data[at..]`, and its length.
    function opEntry(bytes calldata data, uint256 at) private pure returns (uint256[8] memory e, uint256 len) {
        if (at >= data.length) revert BadData(at);
        uint8 tag = uint8(data[at]);
        uint8 kind = tag & ~TAG_FORCED;
        if (tag == TAG_DEPOSIT) {
            len = 77;
            if (at + len > data.length) revert BadData(at);
            uint256 x = field(data, at + 5);
            uint256 y = field(data, at + 37);
            if (!Grumpkin.onCurve(x, y)) revert BadData(at);
            e[1] = KeelHash.word(1, uint32(bytes4(data[at + 1:at + 5])), 0, uint64(bytes8(data[at + 69:at + 77])), 0);
            (e[0], e[2], e[3]) = (1, x, y);
        } else if (tag == TAG_TRANSFER || tag == TAG_WITHDRAW || tag == TAG_TRANSFER | TAG_FORCED) {
            len = kind == TAG_TRANSFER ? 121 : 137;
            if (at + len > data.length) revert BadData(at);
            (e,) = signedEntry(data[at:at + len], 0, kind);
            if (tag & TAG_FORCED != 0) e[0] = 1;
        } else {
            revert BadData(at);
        }
    }

    /// The entry-hash elements of a signed operation's encoding at `op[at..]` (source 0), and a
    /// withdrawal's recipient.
    function signedEntry(bytes calldata op, uint256 at, uint8 kind)
        private
        pure
        returns (uint256[8] memory e, address recipient)
    {
        uint32 from = uint32(bytes4(op[at + 1:at + 5]));
        uint256 sig;
        if (kind == TAG_TRANSFER) {
            uint32 to_ = uint32(bytes4(op[at + 5:at + 9]));
            uint64 amount = uint64(bytes8(op[at + 9:at + 17]));
            uint64 nonce = uint64(bytes8(op[at + 17:at + 25]));
            e[1] = KeelHash.word(2, from, to_, amount, nonce);
            sig = at + 25;
        } else {
            recipient = address(bytes20(op[at + 5:at + 25]));
            uint64 amount = uint64(bytes8(op[at + 25:at + 33]));
            uint64 nonce = uint64(bytes8(op[at + 33:at + 41]));
            e[1] = KeelHash.word(3, from, 0, amount, nonce);
            e[2] = uint256(uint160(recipient));
            sig = at + 41;
        }
        uint256 rx = field(op, sig);
        uint256 ry = field(op, sig + 32);
        uint256 s = KeelHash.le(bytes32(op[sig + 64:sig + 96]));
        if (!Grumpkin.onCurve(rx, ry) || s >= Grumpkin.Q) revert BadSignatureEncoding();
        (e[4], e[5], e[6], e[7]) = (rx, ry, s & type(uint128).max, s >> 128);
    }

    /// A canonical field element encoded little-endian at `data[at..at+32]`.
    function field(bytes calldata data, uint256 at) private pure returns (uint256 x) {
        x = KeelHash.le(bytes32(data[at:at + 32]));
        if (x >= KeelHash.F) revert BadData(at);
    }

    // ---------------------------------------------------------------- exit mode

    /// Anyone may activate exit mode once the oldest unconsumed queue entry is older than the
    /// forced-inclusion deadline, or no batch has been proven for the proof deadline.
    function activateExitMode() external {
        running();
        uint64 now_ = uint64(block.timestamp);
        uint64 queueDue = queueConsumed < queueHashes.length
            ? enqueuedAt[queueConsumed] + forcedInclusionDeadline
            : type(uint64).max;
        uint64 proofDue = provenAt + proofDeadline;
        uint8 reason;
        if (now_ >= queueDue) reason = EXIT_FORCED_INCLUSION;
        else if (now_ >= proofDue) reason = EXIT_PROOF_DEADLINE;
        else revert ExitModeNotDue(queueDue, proofDue);
        exitReason = reason;
        exitSince = now_;
        emit ExitModeActivated(reason);
    }

    /// The account's balance, proven by a Merkle proof against the last proven root, is credited
    /// to `recipient`, whom the owner names with a signature over keel_state::ops::exit_message.
    function exit(
        uint32 index,
        uint256 pkX,
        uint256 pkY,
        uint64 balance,
        uint64 nonce,
        uint256[] calldata siblings,
        address recipient,
        uint256[3] calldata signature
    ) external {
        if (exitReason == 0) revert NotInExitMode();
        if (exited[index]) revert AlreadyExited(index);
        if (siblings.length != depth || (depth < 32 && (uint256(index) >> depth) != 0)) revert WrongMerkleProof();
        uint256 leafHash = KeelHash.leaf(poseidon, pkX, pkY, balance, nonce);
        if (KeelHash.root(poseidon, index, leafHash, siblings) != stateRoot) revert WrongMerkleProof();
        uint256[] memory c = new uint256[](7);
        (c[0], c[1], c[2], c[3]) = (signature[0], signature[1], pkX, pkY);
        (c[4], c[5], c[6]) = (KeelHash.word(KeelConstants.KIND_EXIT, index, 0, 0, 0), uint256(uint160(recipient)), chainId);
        uint256 e = Grumpkin.challenge(KeelHash.sponge(poseidon, KeelHash.CHALLENGE, c));
        if (!Grumpkin.verify(pkX, pkY, signature[0], signature[1], signature[2], e)) revert NotAccountOwner();
        exited[index] = true;
        credit(recipient, balance);
        emit Exited(index, recipient, balance);
    }

    /// In exit mode, refunds a deposit that no proven batch consumed to whoever paid it.
    function reclaim(uint64 position) external {
        if (exitReason == 0) revert NotInExitMode();
        if (position < queueConsumed || depositor[position] == address(0)) revert NotReclaimable(position);
        if (reclaimed[position]) revert AlreadyReclaimed(position);
        reclaimed[position] = true;
        uint64 amount = depositAmount[position];
        credit(depositor[position], amount);
        emit Reclaimed(position, depositor[position], amount);
    }

    // ---------------------------------------------------------------- the council

    /// What the council signs for its next action: the chain, this contract, the rollup's
    /// chain id, the sequence number, the action and its payload (for a rotation, the hash of the
    /// new set), in `abi.encodePacked` form (keel_evm::council::message builds the same bytes).
    function councilMessage(uint8 action, bytes32 payload) public view returns (bytes memory) {
        return abi.encodePacked("keel/council/v1", block.chainid, address(this), chainId, councilSequence, action, payload);
    }

    /// Exit mode at once, by the council's signature `(R, z)`.
    function councilActivateExitMode(uint256 rx, uint256 ry, uint256 z) external {
        running();
        councilCheck(COUNCIL_EXIT_MODE, bytes32(0), rx, ry, z);
        exitReason = EXIT_COUNCIL;
        exitSince = uint64(block.timestamp);
        emit ExitModeActivated(EXIT_COUNCIL);
    }

    /// A new registered sequencer set with their acknowledgement keys, by the council's
    /// signature; if the lease holder is not in it, the lease passes to the set's first, in a new
    /// epoch.
    function councilRotateSequencers(address[] calldata set, uint256[] calldata keys, uint256 rx, uint256 ry, uint256 z)
        external
    {
        running();
        if (set.length == 0) revert EmptySequencerSet();
        if (!validAckKeys(set.length, keys)) revert BadKey();
        councilCheck(COUNCIL_ROTATE, keccak256(abi.encodePacked(set, keys)), rx, ry, z);
        ackKeyList = keys;
        for (uint256 i; i < sequencerList.length; i++) isSequencer[sequencerList[i]] = false;
        delete sequencerList;
        bool holderStays;
        for (uint256 i; i < set.length; i++) {
            sequencerList.push(set[i]);
            isSequencer[set[i]] = true;
            holderStays = holderStays || set[i] == leaseHolder;
        }
        emit SequencersRotated(set.length);
        if (!holderStays) {
            uint64 now_ = uint64(block.timestamp);
            epoch += 1;
            leaseHolder = set[0];
            leaseSince = now_;
            lastActive = now_;
            emit LeaseClaimed(epoch, set[0]);
        }
    }

    function councilCheck(uint8 action, bytes32 payload, uint256 rx, uint256 ry, uint256 z) private {
        uint64 sequence = councilSequence;
        if (!FrostSecp256k1.verify(councilX, councilY, rx, ry, z, councilMessage(action, payload))) {
            revert BadCouncilSignature(sequence);
        }
        councilSequence = sequence + 1;
        emit CouncilActed(sequence, action);
    }

    // ---------------------------------------------------------------- payouts

    /// Pays the caller what was credited to it.
    function claim() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert PaymentFailed();
        emit Claimed(msg.sender, amount);
    }

    /// Moves `amount` units out of the escrow to `to`'s claim; more than the escrow holds is
    /// refused (it would mean an unsound proof), by the checked subtraction.
    function credit(address to, uint64 amount) private {
        escrow -= amount;
        claimable[to] += uint256(amount) * UNIT;
    }

    function running() private view {
        if (exitReason != 0) revert ExitModeActive();
    }
}
