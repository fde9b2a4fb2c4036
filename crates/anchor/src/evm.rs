//! The chain, through alloy: a provider without fillers (nonces, fees and gas are set here,
//! explicitly, so a retry can reuse a signed transaction byte for byte), the contract's ABI,
//! and the reads reconciliation needs.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent};

use crate::error::AnchorError;
use crate::rpc::RpcUrl;
use crate::tree::LogRef;

sol! {
    /// `contracts/ZtAnchor.sol` (a test checks this interface against the compiled artifact).
    #[derive(Debug)]
    contract ZtAnchor {
        event Anchored(bytes32 indexed logId, uint64 indexed epoch, address indexed owner, bytes32 root, uint64 leafCount);
        event WriterSet(bytes32 indexed logId, address indexed owner, address indexed writer, bool allowed);
        error ZeroRoot();
        error ZeroEpoch();
        error NotWriter(bytes32 logId, address owner, address sender);
        error EpochNotRising(bytes32 logId, uint64 epoch, uint64 latestEpoch);
        error RootConflict(bytes32 logId, uint64 epoch, bytes32 recorded, bytes32 given);
        function logIdOf(address owner, bytes32 name) external pure returns (bytes32);
        function anchor(address owner, bytes32 name, uint64 epoch, bytes32 root, uint64 leafCount) external;
        function setWriter(bytes32 name, address writer, bool allowed) external;
        function rootOf(bytes32 logId, uint64 epoch) external view returns (bytes32);
        function latest(bytes32 logId) external view returns (uint64 epoch, bytes32 root);
        function isWriter(bytes32 logId, address writer) external view returns (bool);
    }

    /// The lineage's `DAALog` (`contracts/lineage/DAALog.sol`).
    #[derive(Debug)]
    contract DAALog {
        event ActionLogged(bytes32 indexed actionHash, address indexed logger, uint256 timestamp, string metadata);
        event BatchLogged(bytes32 indexed batchRoot, uint256 count, address indexed logger, uint256 timestamp);
        error AlreadyLogged(bytes32 hash);
        function logAction(bytes32 actionHash, string metadata) external;
        function logBatch(bytes32 batchRoot, uint256 count) external;
    }
}

/// The compiled `ZtAnchor` artifact (ABI, bytecode), committed; see `contracts/README.md`.
pub const ZT_ANCHOR_ARTIFACT: &str = include_str!("../../../contracts/ZtAnchor.json");
/// The compiled lineage `DAALog` artifact, for tests and benchmarks.
pub const DAALOG_ARTIFACT: &str = include_str!("../../../contracts/lineage/DAALog.json");

/// The creation bytecode of an artifact.
pub fn artifact_bytecode(artifact: &str) -> Result<Bytes, AnchorError> {
    let v: serde_json::Value = serde_json::from_str(artifact)
        .map_err(|e| AnchorError::Config(format!("contract artifact is not JSON: {e}")))?;
    let hex_code = v["bytecode"]
        .as_str()
        .ok_or_else(|| AnchorError::Config("contract artifact has no bytecode".into()))?;
    let raw = hex::decode(hex_code.trim_start_matches("0x"))
        .map_err(|e| AnchorError::Config(format!("contract bytecode is not hex: {e}")))?;
    Ok(Bytes::from(raw))
}

/// Which network: the chain id the RPC must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Base Sepolia, chain id 84532 (the default).
    BaseSepolia,
    /// Base mainnet, chain id 8453.
    Base,
    /// A local node (anvil); any chain id.
    Local,
}

impl Network {
    /// From `base-sepolia`, `base`, `local`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "base-sepolia" => Some(Self::BaseSepolia),
            "base" => Some(Self::Base),
            "local" => Some(Self::Local),
            _ => None,
        }
    }

    /// The chain id this network must have (`None`: any).
    pub fn chain_id(self) -> Option<u64> {
        match self {
            Self::BaseSepolia => Some(84532),
            Self::Base => Some(8453),
            Self::Local => None,
        }
    }
}

/// Fee settings: explicit values override the node's estimates; the gas limit is capped.
#[derive(Debug, Clone, Copy)]
pub struct Fees {
    /// `maxFeePerGas`, wei.
    pub max_fee: Option<u128>,
    /// `maxPriorityFeePerGas`, wei.
    pub priority_fee: Option<u128>,
    /// Largest gas limit accepted for one anchor transaction.
    pub gas_cap: u64,
}

impl Default for Fees {
    fn default() -> Self {
        Self {
            max_fee: None,
            priority_fee: None,
            gas_cap: 200_000,
        }
    }
}

/// What a receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Executed without reverting.
    pub success: bool,
    /// Who sent the transaction.
    pub from: Address,
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// Gas used.
    pub gas_used: u64,
    /// Contract created, for a deployment.
    pub contract_address: Option<Address>,
    /// `Anchored` events in it.
    pub anchored: Vec<AnchoredLog>,
}

/// An `Anchored` event in a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchoredLog {
    /// The contract that emitted it.
    pub contract: Address,
    /// Log id.
    pub log_id: B256,
    /// The log's owner.
    pub owner: Address,
    /// Epoch.
    pub epoch: u64,
    /// Root.
    pub root: B256,
    /// Leaves.
    pub leaf_count: u64,
}

/// An `Anchored` event found on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchoredEvent {
    /// Epoch.
    pub epoch: u64,
    /// Root.
    pub root: B256,
    /// Leaves.
    pub leaf_count: u64,
    /// Transaction.
    pub tx_hash: Option<B256>,
    /// Block.
    pub block_number: Option<u64>,
}

/// Why a raw transaction was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted (or already known: same bytes).
    Accepted,
    /// Its nonce is used: it or another transaction of ours was mined.
    NonceTooLow,
}

/// A connection to one EVM node.
#[derive(Clone)]
pub struct Evm {
    provider: RootProvider,
    chain_id: u64,
    /// Every error that may quote the node's URL is scrubbed with it.
    url: RpcUrl,
}

/// The provider's `Debug` would show the URL, key and all.
impl std::fmt::Debug for Evm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evm")
            .field("url", &self.url)
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

/// A revert reason from an RPC error, decoded against the contract's errors when possible.
pub fn revert_reason(e: &alloy::transports::TransportError) -> Option<String> {
    let payload = e.as_error_resp()?;
    if let Some(err) = payload.as_decoded_interface_error::<ZtAnchor::ZtAnchorErrors>() {
        return Some(format!("{err:?}"));
    }
    payload
        .as_revert_data()
        .map(|d| format!("revert 0x{}", hex::encode(d)))
}

impl Evm {
    /// Connects and checks the chain id against `network`. The URL may carry a key: every
    /// error this connection returns names it redacted ([`crate::rpc`]).
    pub async fn connect(rpc: impl Into<RpcUrl>, network: Network) -> Result<Self, AnchorError> {
        let url: RpcUrl = rpc.into();
        let parsed: alloy::transports::http::reqwest::Url =
            url.expose().trim().parse().map_err(|e| {
                AnchorError::Config(format!("RPC URL {url}: {}", url.scrub(&format!("{e}"))))
            })?;
        let provider = RootProvider::new_http(parsed);
        let mut evm = Self {
            provider,
            chain_id: 0,
            url,
        };
        evm.chain_id = evm
            .provider
            .get_chain_id()
            .await
            .map_err(evm.rpc_err("eth_chainId"))?;
        if let Some(want) = network.chain_id() {
            if want != evm.chain_id {
                return Err(AnchorError::Config(format!(
                    "the RPC at {} is chain {}, not {want} ({network:?})",
                    evm.url, evm.chain_id
                )));
            }
        }
        Ok(evm)
    }

    /// The node's URL, redacted.
    pub fn url(&self) -> &RpcUrl {
        &self.url
    }

    /// An RPC failure, its text scrubbed of the URL's secrets (transport errors quote the
    /// URL).
    fn rpc_error(&self, message: String) -> AnchorError {
        AnchorError::Rpc(self.url.scrub(&message))
    }

    fn rpc_err<'a>(
        &'a self,
        what: &'a str,
    ) -> impl FnOnce(alloy::transports::TransportError) -> AnchorError + 'a {
        move |e| self.rpc_error(format!("{what}: {e}"))
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Signs `to`/`input` (or a deployment when `to` is `None`) with `nonce`, fees and a gas
    /// limit from the node's estimate (capped). Returns the hash and the raw bytes.
    pub async fn sign(
        &self,
        signer: &PrivateKeySigner,
        to: Option<Address>,
        input: Bytes,
        nonce: u64,
        fees: &Fees,
    ) -> Result<(B256, Vec<u8>), AnchorError> {
        let from = signer.address();
        let mut req = TransactionRequest::default()
            .with_from(from)
            .with_chain_id(self.chain_id)
            .with_nonce(nonce);
        req = match to {
            Some(a) => req.with_to(a).with_input(input),
            None => req.with_deploy_code(input),
        };
        let gas =
            self.provider
                .estimate_gas(req.clone())
                .await
                .map_err(|e| match revert_reason(&e) {
                    Some(r) => AnchorError::Revert(r),
                    None => self.rpc_error(format!("eth_estimateGas: {e}")),
                })?;
        // 20% headroom over the estimate, never above the cap.
        let limit = gas.saturating_add(gas / 5);
        let cap = if to.is_none() {
            5_000_000
        } else {
            fees.gas_cap
        };
        if gas > cap {
            return Err(AnchorError::Config(format!(
                "the transaction needs {gas} gas, over the cap of {cap} (--gas-limit)"
            )));
        }
        let (max_fee, priority) = match (fees.max_fee, fees.priority_fee) {
            (Some(m), Some(p)) => (m, p),
            (m, p) => {
                let est = self
                    .provider
                    .estimate_eip1559_fees()
                    .await
                    .map_err(self.rpc_err("fee estimate"))?;
                (
                    m.unwrap_or(est.max_fee_per_gas),
                    p.unwrap_or(est.max_priority_fee_per_gas),
                )
            }
        };
        let req = req
            .with_gas_limit(limit.min(cap))
            .with_max_fee_per_gas(max_fee.max(priority))
            .with_max_priority_fee_per_gas(priority);
        let wallet = EthereumWallet::new(signer.clone());
        let envelope = req
            .build(&wallet)
            .await
            .map_err(|e| AnchorError::Key(format!("signing the transaction: {e}")))?;
        let hash = *envelope.tx_hash();
        Ok((hash, envelope.encoded_2718()))
    }

    /// Broadcasts signed bytes. "Already known" is accepted (same bytes).
    pub async fn send_raw(&self, raw: &[u8]) -> Result<SendOutcome, AnchorError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(SendOutcome::Accepted),
            Err(e) => {
                let text = e.to_string().to_lowercase();
                if text.contains("already known") || text.contains("already imported") {
                    Ok(SendOutcome::Accepted)
                } else if text.contains("nonce too low") || text.contains("nonce is too low") {
                    Ok(SendOutcome::NonceTooLow)
                } else {
                    Err(self.rpc_error(format!("eth_sendRawTransaction: {e}")))
                }
            }
        }
    }

    /// The next nonce of `addr`, pending transactions included.
    pub async fn pending_nonce(&self, addr: Address) -> Result<u64, AnchorError> {
        self.provider
            .get_transaction_count(addr)
            .pending()
            .await
            .map_err(self.rpc_err("eth_getTransactionCount"))
    }

    /// The receipt of `hash`, if mined.
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, AnchorError> {
        let Some(r) = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(self.rpc_err("eth_getTransactionReceipt"))?
        else {
            return Ok(None);
        };
        let (Some(block_number), Some(block_hash)) = (r.block_number, r.block_hash) else {
            return Ok(None);
        };
        let anchored = r
            .inner
            .logs()
            .iter()
            .filter_map(|l| ZtAnchor::Anchored::decode_log(&l.inner).ok())
            .map(|ev| AnchoredLog {
                contract: ev.address,
                log_id: ev.logId,
                owner: ev.owner,
                epoch: ev.epoch,
                root: ev.root,
                leaf_count: ev.leafCount,
            })
            .collect();
        Ok(Some(Receipt {
            success: r.status(),
            from: r.from,
            block_number,
            block_hash,
            gas_used: r.gas_used,
            contract_address: r.contract_address,
            anchored,
        }))
    }

    /// Whether the node knows transaction `hash` (mined or pending).
    pub async fn tx_known(&self, hash: B256) -> Result<bool, AnchorError> {
        Ok(self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(self.rpc_err("eth_getTransactionByHash"))?
            .is_some())
    }

    /// The hash of canonical block `number`.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, AnchorError> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(self.rpc_err("eth_getBlockByNumber"))?
            .map(|b| b.header.hash))
    }

    /// The number of the `latest`, `safe` or `finalized` block (`None` when the node has none).
    pub async fn tag_number(&self, tag: BlockNumberOrTag) -> Result<Option<u64>, AnchorError> {
        match self.provider.get_block_by_number(tag).await {
            Ok(b) => Ok(b.map(|b| b.header.number)),
            // Some nodes answer an error for a tag they do not track.
            Err(e) if !matches!(tag, BlockNumberOrTag::Latest) => {
                let _ = e;
                Ok(None)
            }
            Err(e) => Err(self.rpc_error(format!("eth_getBlockByNumber: {e}"))),
        }
    }

    /// `rootOf(logId, epoch)` at the latest block.
    pub async fn root_of(
        &self,
        contract: Address,
        log_id: B256,
        epoch: u64,
    ) -> Result<B256, AnchorError> {
        let call = ZtAnchor::rootOfCall {
            logId: log_id,
            epoch,
        };
        let out = self.call(contract, call.abi_encode()).await?;
        ZtAnchor::rootOfCall::abi_decode_returns(&out)
            .map_err(|e| self.rpc_error(format!("rootOf: undecodable answer: {e}")))
    }

    /// Whether there is code at `addr`.
    pub async fn has_code(&self, addr: Address) -> Result<bool, AnchorError> {
        Ok(!self
            .provider
            .get_code_at(addr)
            .await
            .map_err(self.rpc_err("eth_getCode"))?
            .is_empty())
    }

    async fn call(&self, to: Address, input: Vec<u8>) -> Result<Bytes, AnchorError> {
        let req = TransactionRequest::default()
            .with_to(to)
            .with_input(Bytes::from(input));
        self.provider
            .call(req)
            .await
            .map_err(|e| match revert_reason(&e) {
                Some(r) => AnchorError::Revert(r),
                None => self.rpc_error(format!("eth_call: {e}")),
            })
    }

    /// Every `Anchored` event of `log_id` at `contract` between two blocks, queried in spans of
    /// `span` blocks (public RPCs cap the range of `eth_getLogs`).
    pub async fn anchored_events(
        &self,
        contract: Address,
        log_id: B256,
        from: u64,
        to: u64,
        span: u64,
    ) -> Result<Vec<AnchoredEvent>, AnchorError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(span.max(1) - 1));
            let filter = Filter::new()
                .address(contract)
                .event_signature(ZtAnchor::Anchored::SIGNATURE_HASH)
                .topic1(log_id)
                .from_block(start)
                .to_block(end);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(self.rpc_err("eth_getLogs"))?;
            for l in logs {
                if let Ok(ev) = ZtAnchor::Anchored::decode_log(&l.inner) {
                    out.push(AnchoredEvent {
                        epoch: ev.epoch,
                        root: ev.root,
                        leaf_count: ev.leafCount,
                        tx_hash: l.transaction_hash,
                        block_number: l.block_number,
                    });
                }
            }
            start = end.saturating_add(1);
        }
        Ok(out)
    }

    /// Every event with `signature` at `contract` between two blocks, as `(topic1, data,
    /// tx hash, block)`: the lineage `DAALog` reads.
    pub async fn raw_events(
        &self,
        contract: Address,
        signature: B256,
        from: u64,
        to: u64,
        span: u64,
    ) -> Result<Vec<alloy::rpc::types::Log>, AnchorError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(span.max(1) - 1));
            let filter = Filter::new()
                .address(contract)
                .event_signature(signature)
                .from_block(start)
                .to_block(end);
            out.extend(
                self.provider
                    .get_logs(&filter)
                    .await
                    .map_err(self.rpc_err("eth_getLogs"))?,
            );
            start = end.saturating_add(1);
        }
        Ok(out)
    }

    /// Sends a transaction and waits for its receipt (deployments, tests, benches).
    pub async fn send_and_wait(
        &self,
        signer: &PrivateKeySigner,
        to: Option<Address>,
        input: Bytes,
        fees: &Fees,
        timeout: Duration,
    ) -> Result<Receipt, AnchorError> {
        let nonce = self.pending_nonce(signer.address()).await?;
        let (hash, raw) = self.sign(signer, to, input, nonce, fees).await?;
        if self.send_raw(&raw).await? == SendOutcome::NonceTooLow {
            return Err(self.rpc_error(format!(
                "nonce {nonce} of {} is already used",
                signer.address()
            )));
        }
        self.wait_receipt(hash, timeout)
            .await?
            .ok_or_else(|| self.rpc_error(format!("no receipt for {hash} within {timeout:?}")))
    }

    /// Polls for a receipt until `timeout`.
    pub async fn wait_receipt(
        &self,
        hash: B256,
        timeout: Duration,
    ) -> Result<Option<Receipt>, AnchorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A local node mines at once, a public one every couple of seconds: start fast.
        let mut wait = Duration::from_millis(5);
        loop {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(Some(r));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// Deploys `ZtAnchor`; returns its address and the receipt.
    pub async fn deploy(
        &self,
        signer: &PrivateKeySigner,
        artifact: &str,
        fees: &Fees,
    ) -> Result<(Address, Receipt), AnchorError> {
        let code = artifact_bytecode(artifact)?;
        let r = self
            .send_and_wait(signer, None, code, fees, Duration::from_secs(120))
            .await?;
        if !r.success {
            return Err(AnchorError::Revert("the deployment reverted".into()));
        }
        let addr = r
            .contract_address
            .ok_or_else(|| self.rpc_error("the deployment receipt names no contract".into()))?;
        Ok((addr, r))
    }

    /// The calldata of `anchor(owner, name, epoch, root, leafCount)` for `log`.
    pub fn anchor_calldata(log: &LogRef, epoch: u64, root: B256, leaf_count: u64) -> Bytes {
        Bytes::from(
            ZtAnchor::anchorCall {
                owner: log.owner,
                name: log.name_hash(),
                epoch,
                root,
                leafCount: leaf_count,
            }
            .abi_encode(),
        )
    }

    /// The calldata of `setWriter(name, writer, allowed)`: sent by the owner of `log_name`.
    pub fn set_writer_calldata(log_name: &str, writer: Address, allowed: bool) -> Bytes {
        Bytes::from(
            ZtAnchor::setWriterCall {
                name: crate::tree::log_name_hash(log_name),
                writer,
                allowed,
            }
            .abi_encode(),
        )
    }

    /// `isWriter(logId, writer)` at the latest block.
    pub async fn is_writer(
        &self,
        contract: Address,
        log_id: B256,
        writer: Address,
    ) -> Result<bool, AnchorError> {
        let call = ZtAnchor::isWriterCall {
            logId: log_id,
            writer,
        };
        let out = self.call(contract, call.abi_encode()).await?;
        ZtAnchor::isWriterCall::abi_decode_returns(&out)
            .map_err(|e| self.rpc_error(format!("isWriter: undecodable answer: {e}")))
    }

    /// `logIdOf(owner, name)` as the contract computes it.
    pub async fn log_id_of(&self, contract: Address, log: &LogRef) -> Result<B256, AnchorError> {
        let call = ZtAnchor::logIdOfCall {
            owner: log.owner,
            name: log.name_hash(),
        };
        let out = self.call(contract, call.abi_encode()).await?;
        ZtAnchor::logIdOfCall::abi_decode_returns(&out)
            .map_err(|e| self.rpc_error(format!("logIdOf: undecodable answer: {e}")))
    }

    /// A JSON-RPC call by name (anvil's test methods, say).
    pub async fn raw_request(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, AnchorError> {
        self.provider
            .raw_request(method.into(), params)
            .await
            .map_err(|e| self.rpc_error(format!("{method}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::json_abi::JsonAbi;
    use alloy::sol_types::SolError;

    #[test]
    fn the_inline_interface_matches_the_compiled_artifact() {
        let v: serde_json::Value = serde_json::from_str(ZT_ANCHOR_ARTIFACT).unwrap();
        let abi: JsonAbi = serde_json::from_value(v["abi"].clone()).unwrap();
        let sel = |name: &str| abi.function(name).unwrap()[0].selector();
        assert_eq!(sel("anchor"), ZtAnchor::anchorCall::SELECTOR);
        assert_eq!(sel("rootOf"), ZtAnchor::rootOfCall::SELECTOR);
        assert_eq!(sel("latest"), ZtAnchor::latestCall::SELECTOR);
        assert_eq!(sel("setWriter"), ZtAnchor::setWriterCall::SELECTOR);
        assert_eq!(sel("logIdOf"), ZtAnchor::logIdOfCall::SELECTOR);
        assert_eq!(sel("isWriter"), ZtAnchor::isWriterCall::SELECTOR);
        let ev = abi.event("Anchored").unwrap()[0].selector();
        assert_eq!(ev, ZtAnchor::Anchored::SIGNATURE_HASH);
        assert_eq!(
            abi.event("WriterSet").unwrap()[0].selector(),
            ZtAnchor::WriterSet::SIGNATURE_HASH
        );
        for (e, sel) in [
            ("ZeroRoot", ZtAnchor::ZeroRoot::SELECTOR),
            ("ZeroEpoch", ZtAnchor::ZeroEpoch::SELECTOR),
            ("NotWriter", ZtAnchor::NotWriter::SELECTOR),
            ("EpochNotRising", ZtAnchor::EpochNotRising::SELECTOR),
            ("RootConflict", ZtAnchor::RootConflict::SELECTOR),
        ] {
            assert_eq!(abi.error(e).unwrap()[0].selector(), sel, "{e}");
        }
        assert_eq!(
            abi.errors().count(),
            5,
            "an error the Rust interface does not know"
        );
        assert_eq!(
            abi.functions().count(),
            6,
            "a function the Rust interface does not know"
        );
        let d: serde_json::Value = serde_json::from_str(DAALOG_ARTIFACT).unwrap();
        let dabi: JsonAbi = serde_json::from_value(d["abi"].clone()).unwrap();
        assert_eq!(
            dabi.event("ActionLogged").unwrap()[0].selector(),
            DAALog::ActionLogged::SIGNATURE_HASH
        );
        assert_eq!(
            dabi.event("BatchLogged").unwrap()[0].selector(),
            DAALog::BatchLogged::SIGNATURE_HASH
        );
        assert!(!artifact_bytecode(ZT_ANCHOR_ARTIFACT).unwrap().is_empty());
    }
}
