//! Connections held per client address, so one address cannot take every connection permit.
//!
//! **Threat.** The global cap (`limits.max_connections`) protects memory, but a single client can
//! open that many connections and hold them (each within its timeouts), starving everyone else.
//! A per-address cap bounds what one source takes. IPv6 clients are grouped by their /64 (one host
//! usually has a whole /64 to pick addresses from); IPv4-mapped IPv6 addresses count as their IPv4
//! address.
//!
//! **Invariant.** The count of an address equals the number of live [`AddressSlot`]s for it; an
//! entry is removed when its count returns to zero, so the map holds only addresses with open
//! connections (at most `limits.max_connections` entries).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The unit connections are counted by: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of a peer address.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// Open connections per [`AddressKey`], bounded by a fixed maximum.
#[derive(Debug)]
pub(crate) struct PerAddress {
    max: usize,
    open: Arc<Mutex<HashMap<AddressKey, usize>>>,
}

impl PerAddress {
    /// Counts at most `max` (>= 1) connections per address.
    pub(crate) fn new(max: usize) -> Self {
        PerAddress {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when that address already holds
    /// `max`. The slot is given back when dropped.
    pub(crate) fn claim(&self, ip: IpAddr) -> Option<AddressSlot> {
        let key = AddressKey::of(ip);
        // A poisoned lock only means a thread panicked between two plain integer updates; the
        // map is still consistent.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            key,
            open: Arc::clone(&self.open),
        })
    }

    /// Connections currently counted for `ip`'s address.
    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&AddressKey::of(ip)).copied().unwrap_or(0)
    }
}

/// One connection counted against its address; released on drop.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    key: AddressKey,
    open: Arc<Mutex<HashMap<AddressKey, usize>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test addresses are valid")
    }

    #[test]
    fn an_address_gets_at_most_max_slots_and_gets_them_back() {
        let per_address = PerAddress::new(2);
        let first = per_address.claim(ip("192.0.2.1")).expect("first");
        let second = per_address.claim(ip("192.0.2.1")).expect("second");
        assert!(per_address.claim(ip("192.0.2.1")).is_none());
        // Another address is not affected.
        let other = per_address.claim(ip("192.0.2.2")).expect("other address");
        drop(first);
        let third = per_address
            .claim(ip("192.0.2.1"))
            .expect("a slot was given back");
        drop((second, third, other));
        assert_eq!(per_address.count(ip("192.0.2.1")), 0);
        assert!(
            per_address.open.lock().unwrap().is_empty(),
            "no stale entries"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_counts_as_ipv4() {
        let per_address = PerAddress::new(1);
        let _held = per_address.claim(ip("2001:db8:1:2::10")).expect("first");
        assert!(
            per_address.claim(ip("2001:db8:1:2:ffff::1")).is_none(),
            "same /64"
        );
        let _next = per_address
            .claim(ip("2001:db8:1:3::10"))
            .expect("another /64");
        let _v4 = per_address.claim(ip("198.51.100.7")).expect("v4");
        assert!(per_address.claim(ip("::ffff:198.51.100.7")).is_none());
    }
}
