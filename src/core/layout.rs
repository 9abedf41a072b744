//! The ledger tree layout: which file holds which part of the state.
//!
//! ```text
//! config.json                          pipeline config
//! stats.json                           orders per role and status (what `status` reads),
//!                                      and the last id handed out per kind and for voyages
//! orders/<KIND>-<SHARD>/<ID>.json      one order: state and its own history
//! orders/<KIND>-<SHARD>/_index.jsonl   one summary line per order of the shard
//! voyages/<SHARD>/<VOY-ID>.json        one voyage
//! ```
//! A shard holds 100 consecutive numbers (`FTR-0107` is in `orders/FTR-01/`),
//! so an append rewrites a handful of small trees whatever the ledger's size.
//! Few levels and few files matter: every object an append writes is a new
//! file in the object store, and creating files dominates append time.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ids::{Kind, OrderId, VoyageId, shard};
use super::state::{Counters, Order, OrderSummary, State, Stats, Voyage};

pub const CONFIG: &str = "config.json";
pub const STATS: &str = "stats.json";
pub const ORDERS: &str = "orders";
pub const VOYAGES: &str = "voyages";
pub const INDEX: &str = "_index.jsonl";

/// The directory of an order's shard, e.g. `orders/FTR-00`.
pub fn shard_dir(kind: &Kind, number: u32) -> String {
    format!("{ORDERS}/{kind}-{}", shard(number))
}

/// What `stats.json` holds: the counts, and the id counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub stats: Stats,
    pub ids: Counters,
}

pub fn tally_blob(stats: &Stats, ids: &Counters) -> Vec<u8> {
    to_blob(&Tally { stats: stats.clone(), ids: ids.clone() })
}

pub fn order_path(id: &OrderId) -> String {
    format!("{}/{id}.json", shard_dir(id.kind(), id.number()))
}

pub fn index_path(id: &OrderId) -> String {
    format!("{}/{INDEX}", shard_dir(id.kind(), id.number()))
}

pub fn voyage_path(id: VoyageId) -> String {
    format!("{VOYAGES}/{}/{id}.json", shard(id.number()))
}

/// Pretty JSON with a final newline, so `git show` reads well.
pub fn to_blob<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("state always serializes");
    out.push(b'\n');
    out
}

pub fn from_blob<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// A shard index: one compact JSON summary per line, sorted by id.
pub fn index_blob<'a>(summaries: impl IntoIterator<Item = &'a OrderSummary>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in summaries {
        serde_json::to_writer(&mut out, s).expect("summaries always serialize");
        out.push(b'\n');
    }
    out
}

pub fn parse_index(bytes: &[u8]) -> Result<Vec<OrderSummary>, serde_json::Error> {
    bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()).map(serde_json::from_slice).collect()
}

/// Replace or insert `summary` in a shard's summaries, keeping them sorted by id.
pub fn upsert_summary(summaries: &mut Vec<OrderSummary>, summary: OrderSummary) {
    match summaries.binary_search_by(|s| s.id.cmp(&summary.id)) {
        Ok(i) => summaries[i] = summary,
        Err(i) => summaries.insert(i, summary),
    }
}

pub fn order_blob(order: &Order) -> Vec<u8> {
    to_blob(order)
}

pub fn voyage_blob(voyage: &Voyage) -> Vec<u8> {
    to_blob(voyage)
}

/// Every file of the tree that materializes a complete `state`.
pub fn render(state: &State) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if let Some(config) = &state.config {
        files.insert(CONFIG.to_string(), to_blob(config));
        files.insert(STATS.to_string(), tally_blob(&state.stats, &state.counters));
    }
    let mut shards: BTreeMap<String, Vec<OrderSummary>> = BTreeMap::new();
    for order in state.orders.values() {
        files.insert(order_path(&order.id), order_blob(order));
        shards.entry(index_path(&order.id)).or_default().push(order.summary());
    }
    for (path, summaries) in shards {
        files.insert(path, index_blob(&summaries));
    }
    for voyage in state.voyages.values() {
        files.insert(voyage_path(voyage.id), voyage_blob(voyage));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sharded_by_hundreds() {
        let id: OrderId = "FTR-0107".parse().unwrap();
        assert_eq!(order_path(&id), "orders/FTR-01/FTR-0107.json");
        assert_eq!(index_path(&id), "orders/FTR-01/_index.jsonl");
        assert_eq!(voyage_path("VOY-0003".parse().unwrap()), "voyages/00/VOY-0003.json");
        let big: OrderId = "BUG-12345".parse().unwrap();
        assert_eq!(order_path(&big), "orders/BUG-123/BUG-12345.json");
    }
}
