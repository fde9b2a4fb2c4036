// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ZtAnchor: one Merkle root per epoch per audit log.
/// @notice zt-audit's anchor job sends, each epoch, the RFC 6962 Merkle root over the heads
/// (chain id, seq, head hash) of the evidence chains that moved. A root on chain, taken before
/// the fact, shows later that a chain was truncated or rewritten, even by a signing-key holder.
///
/// Rules:
/// - A log is named by its owner and a name: `logId = keccak256(abi.encode(owner, name))`, where
///   `name` is a 32-byte name (zt-audit uses keccak256 of the log's UTF-8 name). The contract
///   computes the id, so nobody can write a log of another owner: there is no first-come
///   ownership to take, and a reader who knows the owner finds only that owner's log.
/// - Only the owner, or a writer the owner authorized for that log (`setWriter`), anchors it.
/// - Epochs rise strictly per log.
/// - Sending an (epoch, root) that is already recorded is a no-op, so a retry after a crash or
///   an RPC outage is always safe; a different root for a recorded epoch reverts.
contract ZtAnchor {
    mapping(bytes32 => uint64) private latestEpochs;
    mapping(bytes32 => mapping(uint64 => bytes32)) private roots;
    /// @notice Whether `writer` may anchor log `logId` besides its owner.
    mapping(bytes32 => mapping(address => bool)) public isWriter;

    event Anchored(
        bytes32 indexed logId, uint64 indexed epoch, address indexed owner, bytes32 root, uint64 leafCount
    );
    event WriterSet(bytes32 indexed logId, address indexed owner, address indexed writer, bool allowed);

    error ZeroRoot();
    error ZeroEpoch();
    error NotWriter(bytes32 logId, address owner, address sender);
    error EpochNotRising(bytes32 logId, uint64 epoch, uint64 latestEpoch);
    error RootConflict(bytes32 logId, uint64 epoch, bytes32 recorded, bytes32 given);

    /// @notice The id of `owner`'s log `name`.
    function logIdOf(address owner, bytes32 name) public pure returns (bytes32) {
        return keccak256(abi.encode(owner, name));
    }

    /// @notice Records `root` for `epoch` of `owner`'s log `name`. The sender must be the owner
    /// or a writer the owner authorized. Idempotent for an identical (epoch, root).
    function anchor(address owner, bytes32 name, uint64 epoch, bytes32 root, uint64 leafCount) external {
        if (root == bytes32(0)) revert ZeroRoot();
        if (epoch == 0) revert ZeroEpoch();
        bytes32 logId = logIdOf(owner, name);
        if (msg.sender != owner && !isWriter[logId][msg.sender]) revert NotWriter(logId, owner, msg.sender);
        bytes32 recorded = roots[logId][epoch];
        if (recorded != bytes32(0)) {
            if (recorded == root) return;
            revert RootConflict(logId, epoch, recorded, root);
        }
        uint64 latestEpoch = latestEpochs[logId];
        if (epoch <= latestEpoch) revert EpochNotRising(logId, epoch, latestEpoch);
        latestEpochs[logId] = epoch;
        roots[logId][epoch] = root;
        emit Anchored(logId, epoch, owner, root, leafCount);
    }

    /// @notice Lets `writer` anchor the sender's log `name` (or not). Only an owner can call it
    /// for its own logs: the id is computed from the sender.
    function setWriter(bytes32 name, address writer, bool allowed) external {
        bytes32 logId = logIdOf(msg.sender, name);
        isWriter[logId][writer] = allowed;
        emit WriterSet(logId, msg.sender, writer, allowed);
    }

    /// @notice The root recorded for `epoch` of `logId` (zero when none).
    function rootOf(bytes32 logId, uint64 epoch) external view returns (bytes32) {
        return roots[logId][epoch];
    }

    /// @notice The latest epoch of `logId` and its root (zeros when none).
    function latest(bytes32 logId) external view returns (uint64 epoch, bytes32 root) {
        epoch = latestEpochs[logId];
        root = roots[logId][epoch];
    }
}
