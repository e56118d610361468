//! Basics every layer shares and none owns: the topic-partition name, the
//! wall clock, and lock helpers. The bottom of the module graph: it imports
//! nothing from this crate.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// A topic name and partition number (displayed and parsed as the
/// `topic-partition` names of partition directories).
pub use sediment_protocol::TopicPartition;

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Locks a mutex, recovering from poisoning: the values behind this crate's
/// locks are updated by single stores, so a panic elsewhere cannot leave
/// them half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks a RwLock for reading, recovering from poisoning (as [`lock`]).
pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks a RwLock for writing, recovering from poisoning (as [`lock`]).
pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
