//! Typed JSON records over the key-value store, plus the paging and
//! compare-and-set conventions every handler shares.

use crate::error::{ApiError, ApiResult};
use base64::Engine;
use serde::{de::DeserializeOwned, Serialize};
use stevedore_store::{Compare, KeyValue, Op, RangeRequest, Revision, Store, Txn};

/// How often a handler re-reads and retries after losing a compare-and-set
/// race before giving up with a ServerException. Contention is per object,
/// so this is only reached under pathological load.
pub const MAX_CAS_RETRIES: usize = 64;

pub struct Versioned<T> {
    pub value: T,
    pub mod_revision: Revision,
}

pub fn decode<T: DeserializeOwned>(kv: &KeyValue) -> ApiResult<T> {
    serde_json::from_slice(&kv.value).map_err(|e| {
        tracing::error!(key = %kv.key, error = %e, "corrupt record");
        ApiError::server(format!("Stored record {} is unreadable.", kv.key))
    })
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn get<T: DeserializeOwned>(store: &dyn Store, key: &str) -> ApiResult<Option<Versioned<T>>> {
    match store.get(key)? {
        None => Ok(None),
        Some(kv) => Ok(Some(Versioned {
            value: decode(&kv)?,
            mod_revision: kv.mod_revision,
        })),
    }
}

/// Every record under `prefix`, decoded, with its revision.
pub fn all_versioned<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> ApiResult<Vec<Versioned<T>>> {
    page(store, prefix, None, usize::MAX, false, |_| Ok(true))?
        .kvs
        .iter()
        .map(|kv| {
            Ok(Versioned {
                value: decode(kv)?,
                mod_revision: kv.mod_revision,
            })
        })
        .collect()
}

pub fn put<T: Serialize>(key: impl Into<String>, value: &T) -> Op {
    Op::Put {
        key: key.into(),
        value: encode(value),
    }
}

/// The compare that makes a read-modify-write safe: the key is unchanged
/// since we read it (revision 0: it still does not exist).
pub fn unchanged(key: impl Into<String>, revision: Revision) -> Compare {
    Compare::ModRevision {
        key: key.into(),
        revision,
    }
}

/// Commits a transaction; `false` means a compare failed and the caller
/// should re-read and retry.
pub async fn commit(store: &dyn Store, compares: Vec<Compare>, ops: Vec<Op>) -> ApiResult<bool> {
    Ok(store.txn(Txn { compares, ops }).await?.succeeded)
}

pub fn contention() -> ApiError {
    ApiError::server("The request lost too many concurrent-update races; retry it.")
}

/// A page of records under `prefix`, in key order, resuming after the
/// resource named by `token`. Keys, not offsets, anchor the page, so
/// concurrent inserts and deletes never make a listing repeat or skip an
/// item that existed throughout.
pub struct Page {
    pub kvs: Vec<KeyValue>,
    pub next_token: Option<String>,
}

pub fn encode_token(resume_after: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(resume_after.as_bytes())
}

pub fn decode_token(token: &str) -> ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid("Invalid nextToken: it was not issued by this service. Start again without nextToken."))
}

/// Checks `maxResults` against the operation's documented range.
pub fn max_results(given: Option<i32>, default: usize, max: usize) -> ApiResult<usize> {
    match given {
        None => Ok(default),
        Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "maxResults must be between 1 and {max}; it was {n}."
        ))),
    }
}

/// Scans `prefix` in key order (or reverse), keeping records that `keep`
/// accepts, until `limit` are collected. The token holds the key suffix
/// of the last record returned.
pub fn page<F>(
    store: &dyn Store,
    prefix: &str,
    token: Option<&str>,
    limit: usize,
    reverse: bool,
    mut keep: F,
) -> ApiResult<Page>
where
    F: FnMut(&KeyValue) -> ApiResult<bool>,
{
    let mut start_after = match token {
        Some(t) => Some(format!("{prefix}{}", decode_token(t)?)),
        None => None,
    };
    let mut out = Vec::new();
    loop {
        let batch = store.range(&RangeRequest {
            prefix: prefix.to_string(),
            start_after: start_after.clone(),
            limit: Some(limit.max(64)),
            reverse,
        })?;
        let mut last = None;
        for kv in batch.kvs {
            last = Some(kv.key.clone());
            if keep(&kv)? {
                out.push(kv);
                if out.len() == limit {
                    let next = out
                        .last()
                        .map(|kv| encode_token(kv.key.strip_prefix(prefix).unwrap_or(&kv.key)));
                    // Only hand out a token when something may follow.
                    let more = store
                        .range(&RangeRequest {
                            prefix: prefix.to_string(),
                            start_after: out.last().map(|kv| kv.key.clone()),
                            limit: Some(1),
                            reverse,
                        })?
                        .kvs
                        .into_iter()
                        .next()
                        .is_some();
                    return Ok(Page {
                        kvs: out,
                        next_token: if more { next } else { None },
                    });
                }
            }
        }
        if !batch.more || last.is_none() {
            return Ok(Page {
                kvs: out,
                next_token: None,
            });
        }
        start_after = last;
    }
}
