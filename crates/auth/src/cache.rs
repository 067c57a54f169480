//! A small bounded cache of SigV4 signing keys.
//!
//! Deriving the signing key costs four HMAC-SHA256 computations; the key only changes with the
//! (secret, date, region, service) tuple, so the verifier caches it. What is cached is the HMAC
//! state already keyed with the signing key (inner and outer pads absorbed), which saves two more
//! SHA-256 compressions per request.
//!
//! Entries are found by a (randomly keyed) hash of access key id, date, region and service; on a
//! hit every field is compared, *including the secret* (in constant time), so a rotated secret
//! never reuses a key derived from the old one.

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use subtle::ConstantTimeEq;

pub(crate) type HmacSha256 = Hmac<Sha256>;

struct Entry {
    access_key_id: Box<str>,
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
    secret: Box<[u8]>,
    mac: HmacSha256,
}

impl Entry {
    fn matches(&self, secret: &[u8], akid: &str, date: &str, region: &str, service: &str) -> bool {
        &*self.access_key_id == akid
            && &*self.date == date
            && &*self.region == region
            && &*self.service == service
            && bool::from(self.secret.ct_eq(secret))
    }
}

pub(crate) struct SigningKeyCache {
    capacity: usize,
    hasher: RandomState,
    map: Mutex<HashMap<u64, Entry>>,
}

impl SigningKeyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            hasher: RandomState::new(),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// The HMAC keyed with the signing key for this secret and scope (from the cache, or derived
    /// and inserted). `None` only if HMAC refused a key, which it never does.
    pub(crate) fn signing_mac(
        &self,
        secret: &str,
        akid: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> Option<HmacSha256> {
        let slot = self.hasher.hash_one((akid, date, region, service));
        if let Some(entry) = self.map.lock().get(&slot) {
            if entry.matches(secret.as_bytes(), akid, date, region, service) {
                return Some(entry.mac.clone());
            }
        }
        let mac = derive_signing_mac(secret, date, region, service)?;
        if self.capacity > 0 {
            let mut map = self.map.lock();
            if map.len() >= self.capacity && !map.contains_key(&slot) {
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
            map.insert(
                slot,
                Entry {
                    access_key_id: akid.into(),
                    date: date.into(),
                    region: region.into(),
                    service: service.into(),
                    secret: secret.as_bytes().into(),
                    mac: mac.clone(),
                },
            );
        }
        Some(mac)
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`,
/// returned as an HMAC instance keyed with `kSigning`.
pub(crate) fn derive_signing_mac(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Option<HmacSha256> {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k_secret, date.as_bytes())?;
    let k_region = hmac(&k_date, region.as_bytes())?;
    let k_service = hmac(&k_region, service.as_bytes())?;
    let k_signing = hmac(&k_service, b"aws4_request")?;
    HmacSha256::new_from_slice(&k_signing).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_documented_signing_key() {
        // From the AWS documentation example (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        // 20120215, us-east-1, iam).
        let mut k = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
        for part in [&b"20120215"[..], b"us-east-1", b"iam", b"aws4_request"] {
            k = hmac(&k, part).unwrap().to_vec();
        }
        assert_eq!(
            hex::encode(&k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn rotated_secret_does_not_reuse_cached_key() {
        let cache = SigningKeyCache::new(4);
        let a = cache
            .signing_mac("secret-one", "AKID", "20240101", "us-east-1", "ecs")
            .unwrap();
        let a_again = cache
            .signing_mac("secret-one", "AKID", "20240101", "us-east-1", "ecs")
            .unwrap();
        let b = cache
            .signing_mac("secret-two", "AKID", "20240101", "us-east-1", "ecs")
            .unwrap();
        let tag = |m: HmacSha256| m.chain_update(b"x").finalize().into_bytes();
        assert_eq!(tag(a.clone()), tag(a_again));
        assert_ne!(tag(a), tag(b.clone()));
        let expected = derive_signing_mac("secret-two", "20240101", "us-east-1", "ecs").unwrap();
        assert_eq!(tag(b), tag(expected));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_is_bounded() {
        let cache = SigningKeyCache::new(3);
        for i in 0..20 {
            cache.signing_mac("s", "AKID", "20240101", &format!("region-{i}"), "ecs");
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
    }
}
