//! Access keys: the bootstrap admin key, key records in the store, and the
//! lookup SigV4 verification uses.

use crate::db;
use crate::error::{ApiError, ApiResult};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use stevedore_api::Timestamp;
use stevedore_auth::{Credential, CredentialLookup};
use stevedore_model::keys;
use stevedore_store::{Revision, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
    /// `None` for an account's root key, else an IAM-style user name.
    pub user_name: Option<String>,
    /// Admin keys may manage other keys.
    pub admin: bool,
    pub created_at: Timestamp,
}

impl AccessKeyRecord {
    pub fn principal_arn(&self) -> String {
        match &self.user_name {
            None => format!("arn:aws:iam::{}:root", self.account_id),
            Some(u) => format!("arn:aws:iam::{}:user/{}", self.account_id, u),
        }
    }
}

/// Parsed key records, reused while their store revision is unchanged, so
/// the per-request cost of finding a secret is one map probe.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (Revision, Arc<AccessKeyRecord>)>>,
}

impl KeyCache {
    pub fn lookup(&self, store: &dyn Store, akid: &str) -> ApiResult<Option<Arc<AccessKeyRecord>>> {
        let Some(kv) = store.get(&keys::access_key(akid))? else {
            self.entries.write().remove(akid);
            return Ok(None);
        };
        if let Some((rev, rec)) = self.entries.read().get(akid) {
            if *rev == kv.mod_revision {
                return Ok(Some(rec.clone()));
            }
        }
        let rec: Arc<AccessKeyRecord> = Arc::new(db::decode(&kv)?);
        self.entries
            .write()
            .insert(akid.to_string(), (kv.mod_revision, rec.clone()));
        Ok(Some(rec))
    }
}

/// Adapts the cache to the verifier and remembers which record matched.
pub struct StoreLookup<'a> {
    pub cache: &'a KeyCache,
    pub store: &'a dyn Store,
    pub found: RefCell<Option<Arc<AccessKeyRecord>>>,
    pub failed: RefCell<Option<ApiError>>,
}

impl CredentialLookup for StoreLookup<'_> {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        match self.cache.lookup(self.store, access_key_id) {
            Ok(Some(rec)) => {
                let cred = Credential {
                    access_key_id: rec.access_key_id.clone(),
                    secret_access_key: rec.secret_access_key.clone(),
                    account_id: rec.account_id.clone(),
                    principal: rec.principal_arn(),
                };
                *self.found.borrow_mut() = Some(rec);
                Some(cred)
            }
            Ok(None) => None,
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                None
            }
        }
    }
}

pub fn new_key(
    account_id: &str,
    user_name: Option<String>,
    admin: bool,
    now: Timestamp,
) -> AccessKeyRecord {
    let (access_key_id, secret_access_key) = stevedore_auth::generate_access_key();
    AccessKeyRecord {
        access_key_id,
        secret_access_key,
        account_id: account_id.to_string(),
        user_name,
        admin,
        created_at: now,
    }
}

/// Stores a new key; the key id is random, so "must not exist" only fails
/// on a collision, which is reported rather than overwriting.
pub async fn store_key(store: &dyn Store, rec: &AccessKeyRecord) -> ApiResult<()> {
    let key = keys::access_key(&rec.access_key_id);
    if db::commit(
        store,
        vec![db::unchanged(&key, 0)],
        vec![db::put(&key, rec)],
    )
    .await?
    {
        Ok(())
    } else {
        Err(ApiError::server("Access key id collision; retry."))
    }
}

pub fn all_keys(store: &dyn Store) -> ApiResult<Vec<AccessKeyRecord>> {
    let mut out = Vec::new();
    let page = db::page(
        store,
        keys::access_keys_prefix(),
        None,
        usize::MAX,
        false,
        |_| Ok(true),
    )?;
    for kv in &page.kvs {
        out.push(db::decode(kv)?);
    }
    Ok(out)
}

/// On first start, makes the admin key; on every start, makes sure the
/// credentials file holds it (it may have been deleted by hand).
pub async fn ensure_admin_key(
    store: &dyn Store,
    account_id: &str,
    credentials_path: &Path,
    now: Timestamp,
) -> ApiResult<AccessKeyRecord> {
    let existing = all_keys(store)?.into_iter().find(|k| k.admin);
    let rec = match existing {
        Some(k) => k,
        None => {
            let rec = new_key(account_id, None, true, now);
            store_key(store, &rec).await?;
            rec
        }
    };
    let wanted = credentials_ini(&rec);
    let current = std::fs::read_to_string(credentials_path).unwrap_or_default();
    if current != wanted {
        write_private(credentials_path, wanted.as_bytes()).map_err(|e| {
            ApiError::server(format!("cannot write {}: {e}", credentials_path.display()))
        })?;
    }
    Ok(rec)
}

pub fn credentials_ini(rec: &AccessKeyRecord) -> String {
    format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        rec.access_key_id, rec.secret_access_key
    )
}

/// Writes a file readable only by its owner, atomically (temp + rename), so
/// a crash never leaves a half-written secret.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
