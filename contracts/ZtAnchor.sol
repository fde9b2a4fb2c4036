// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ZtAnchor: one Merkle root per epoch per audit log.
/// @notice zt-audit's anchor job sends, each epoch, the RFC 6962 Merkle root over the heads
/// (chain id, seq, head hash) of the evidence chains that moved. A root on chain, taken before
/// the fact, shows later that a chain was truncated or rewritten, even by a signing-key holder.
///
/// Rules:
/// - A log (`logId`, e.g. keccak256 of its name) belongs to the address that first writes it;
///   the owner may authorize more writers.
/// - Epochs rise strictly per log.
/// - Sending an (epoch, root) that is already recorded is a no-op, so a retry after a crash or
///   an RPC outage is always safe; a different root for a recorded epoch reverts.
contract ZtAnchor {
    /// One slot per log: owner and latest epoch packed together (one SSTORE per anchor).
    struct Log {
        address owner;
        uint64 latestEpoch;
    }

    mapping(bytes32 => Log) private logs;
    mapping(bytes32 => mapping(uint64 => bytes32)) private roots;
    mapping(bytes32 => mapping(address => bool)) public isWriter;

    event Anchored(bytes32 indexed logId, uint64 indexed epoch, bytes32 root, uint64 leafCount);
    event WriterSet(bytes32 indexed logId, address indexed writer, bool allowed);

    error ZeroRoot();
    error ZeroEpoch();
    error NotWriter(bytes32 logId, address sender);
    error NotOwner(bytes32 logId, address sender);
    error EpochNotRising(bytes32 logId, uint64 epoch, uint64 latestEpoch);
    error RootConflict(bytes32 logId, uint64 epoch, bytes32 recorded, bytes32 given);

    /// @notice Records `root` for `epoch` of `logId`. Idempotent for an identical (epoch, root).
    function anchor(bytes32 logId, uint64 epoch, bytes32 root, uint64 leafCount) external {
        if (root == bytes32(0)) revert ZeroRoot();
        if (epoch == 0) revert ZeroEpoch();
        Log memory log = logs[logId];
        if (log.owner == address(0)) {
            log.owner = msg.sender;
        } else if (log.owner != msg.sender && !isWriter[logId][msg.sender]) {
            revert NotWriter(logId, msg.sender);
        }
        bytes32 recorded = roots[logId][epoch];
        if (recorded != bytes32(0)) {
            if (recorded == root) return;
            revert RootConflict(logId, epoch, recorded, root);
        }
        if (epoch <= log.latestEpoch) revert EpochNotRising(logId, epoch, log.latestEpoch);
        log.latestEpoch = epoch;
        logs[logId] = log;
        roots[logId][epoch] = root;
        emit Anchored(logId, epoch, root, leafCount);
    }

    /// @notice The owner of `logId` lets `writer` anchor for it (or not).
    function setWriter(bytes32 logId, address writer, bool allowed) external {
        if (logs[logId].owner != msg.sender) revert NotOwner(logId, msg.sender);
        isWriter[logId][writer] = allowed;
        emit WriterSet(logId, writer, allowed);
    }

    /// @notice The root recorded for `epoch` of `logId` (zero when none).
    function rootOf(bytes32 logId, uint64 epoch) external view returns (bytes32) {
        return roots[logId][epoch];
    }

    /// @notice The latest epoch of `logId` and its root (zeros when none).
    function latest(bytes32 logId) external view returns (uint64 epoch, bytes32 root) {
        epoch = logs[logId].latestEpoch;
        root = roots[logId][epoch];
    }

    /// @notice Who owns `logId` (zero when nobody anchored it yet).
    function ownerOf(bytes32 logId) external view returns (address) {
        return logs[logId].owner;
    }
}
