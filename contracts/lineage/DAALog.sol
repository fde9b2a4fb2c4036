// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title DAALog, as the zt-infra lineage deployed it: reconstructed for tests.
/// @notice The lineage logs each action hash on chain (`logAction`, one transaction per record)
/// or a batch root (`logBatch`: a SHA-256 pair Merkle root over the records' hashes, the odd
/// node duplicated). zt-audit does not write this contract; `zt-audit reconcile` reads its
/// events to check a lineage JSONL file against an existing deployment. This source follows the
/// lineage's interface (function and event names and argument types) so the tests have a real
/// deployment to read; its storage layout is our own.
contract DAALog {
    struct Entry {
        address logger;
        uint64 timestamp;
        string metadata;
    }

    mapping(bytes32 => Entry) public actions;
    mapping(bytes32 => Entry) public batches;

    event ActionLogged(bytes32 indexed actionHash, address indexed logger, uint256 timestamp, string metadata);
    event BatchLogged(bytes32 indexed batchRoot, uint256 count, address indexed logger, uint256 timestamp);

    error AlreadyLogged(bytes32 hash);

    function logAction(bytes32 actionHash, string calldata metadata) external {
        if (actions[actionHash].logger != address(0)) revert AlreadyLogged(actionHash);
        actions[actionHash] = Entry(msg.sender, uint64(block.timestamp), metadata);
        emit ActionLogged(actionHash, msg.sender, block.timestamp, metadata);
    }

    function logBatch(bytes32 batchRoot, uint256 count) external {
        if (batches[batchRoot].logger != address(0)) revert AlreadyLogged(batchRoot);
        batches[batchRoot] = Entry(msg.sender, uint64(block.timestamp), "");
        emit BatchLogged(batchRoot, count, msg.sender, block.timestamp);
    }
}
