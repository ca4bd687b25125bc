//! One session struct's values within one request, with per-field dirty
//! tracking against the bytes the store holds.
//!
//! Fields are decoded lazily, on first use: a request pays for the fields it
//! touches, not for every field the struct declares.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::config::SessionConfig;
use crate::data::{SessionData, StoredField};
use crate::error::Error;
use crate::event::SessionEvent;
use crate::lifecycle::lock;
use crate::store::{ChangeSet, Fields};

pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

pub(crate) struct SlotState<T> {
    pub(crate) value: T,
    /// The record as loaded, shared with the request and the other slots.
    record: Arc<Fields>,
    fields: Box<[FieldState]>,
}

/// Where one stored field stands.
#[derive(Default)]
struct FieldState {
    /// `value` holds the field's stored value (or a newer one).
    decoded: bool,
    /// Written or borrowed mutably since the last commit.
    touched: bool,
    /// A flash field read (and so emptied) since the last commit.
    consumed: bool,
    /// What the store holds since this request committed the field; until
    /// then, the record says.
    committed: Option<Option<Bytes>>,
    /// The outcome of a commit in flight: what the store will hold.
    pending: Option<Option<Bytes>>,
}

/// What the store holds for one field: its bytes and the key they are under.
struct Held {
    key: &'static str,
    bytes: Bytes,
}

impl<T: SessionData> Slot<T> {
    pub(crate) fn new(record: Arc<Fields>) -> Self {
        Self {
            state: Mutex::new(SlotState {
                value: T::new_default(),
                record,
                fields: T::FIELDS.iter().map(|_| FieldState::default()).collect(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        lock(&self.state)
    }
}

impl<T: SessionData> SlotState<T> {
    /// Makes sure `value` holds the stored field: decodes it on first use. A
    /// field that fails to decode keeps its default and is reported.
    pub(crate) fn decode(&mut self, stored: Option<usize>, config: &SessionConfig) {
        let Some(index) = stored else { return };
        if std::mem::replace(&mut self.fields[index].decoded, true) {
            return;
        }
        let spec = &T::FIELDS[index];
        if let Some(held) = self.held(index) {
            if let Err(error) = (spec.decode)(&mut self.value, &held.bytes) {
                config.emit(SessionEvent::FieldReset {
                    field: spec.key,
                    error,
                });
            }
        }
    }

    /// Marks a field written; its old value needs no decoding any more.
    pub(crate) fn mark_touched(&mut self, stored: Option<usize>) {
        if let Some(field) = stored.map(|index| &mut self.fields[index]) {
            field.decoded = true;
            field.touched = true;
            field.consumed = false;
        }
    }

    pub(crate) fn mark_consumed(&mut self, stored: Option<usize>) {
        if let Some(field) = stored.map(|index| &mut self.fields[index]) {
            field.consumed = true;
        }
    }

    /// What the store holds for field `index`: under its key, or else under
    /// the first of its aliases found.
    fn held(&self, index: usize) -> Option<Held> {
        match &self.fields[index].committed {
            Some(committed) => committed.clone().map(|bytes| Held {
                key: T::FIELDS[index].key,
                bytes,
            }),
            None => held_in(&self.record, &T::FIELDS[index]),
        }
    }
}

fn held_in<T>(record: &Fields, spec: &StoredField<T>) -> Option<Held> {
    std::iter::once(spec.key)
        .chain(spec.aliases.iter().copied())
        .find_map(|key| {
            let bytes = record.get(key)?.clone();
            Some(Held { key, bytes })
        })
}

/// A slot with its type erased, so one request can hold several structs.
pub(crate) trait AnySlot: Send + Sync {
    /// Adds this slot's changes to `changes` and remembers them as pending.
    fn collect(&self, changes: &mut ChangeSet) -> Result<(), Error>;
    /// Ends the commit in flight: adopt its changes, or mark them dirty again.
    fn settle(&self, committed: bool);
    /// Forgets everything: the session was destroyed.
    fn reset(&self);
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: SessionData> AnySlot for Slot<T> {
    fn collect(&self, changes: &mut ChangeSet) -> Result<(), Error> {
        let mut state = self.lock();
        // Built only if a field absent from the store was touched.
        let mut defaults: Option<T> = None;
        for (index, spec) in T::FIELDS.iter().enumerate() {
            let field = &state.fields[index];
            let next = if field.consumed {
                None
            } else if field.touched {
                let bytes = (spec.encode)(&state.value).map_err(|source| Error::Encode {
                    field: spec.key,
                    source,
                })?;
                Some(Bytes::from(bytes))
            } else {
                continue;
            };
            let held = state.held(index);
            let unchanged = match (&held, &next) {
                (Some(held), Some(next)) => held.bytes == next,
                (None, None) => true,
                (Some(_), None) => false,
                // A field the store lacks loads as its default: writing the
                // default would change nothing a reader could see.
                (None, Some(next)) => {
                    let defaults = defaults.get_or_insert_with(T::new_default);
                    (spec.encode)(defaults).is_ok_and(|default| default == next[..])
                }
            };
            let field = &mut state.fields[index];
            field.touched = false;
            field.consumed = false;
            if unchanged {
                continue;
            }
            match &next {
                Some(bytes) => changes.set.push((spec.key, bytes.clone())),
                None => changes.remove.push(spec.key),
            }
            // The value now lives under its current key; drop an alias's.
            if let Some(held) = held.filter(|held| held.key != spec.key) {
                changes.remove.push(held.key);
            }
            field.pending = Some(next);
        }
        Ok(())
    }

    fn settle(&self, committed: bool) {
        let mut state = self.lock();
        for field in state.fields.iter_mut() {
            let Some(next) = field.pending.take() else {
                continue;
            };
            if committed {
                field.committed = Some(next);
            } else if next.is_some() {
                field.touched = true;
            } else {
                field.consumed = true;
            }
        }
    }

    fn reset(&self) {
        let mut state = self.lock();
        state.value = T::new_default();
        state.record = Arc::default();
        state
            .fields
            .iter_mut()
            .for_each(|field| *field = FieldState::default());
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
