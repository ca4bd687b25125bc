//! One session struct's values within one request, with per-field dirty
//! tracking against the bytes that were loaded.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::SessionConfig;
use crate::data::SessionData;
use crate::error::Error;
use crate::event::SessionEvent;
use crate::lifecycle::lock;
use crate::store::ChangeSet;

pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

pub(crate) struct SlotState<T> {
    pub(crate) value: T,
    fields: Box<[FieldState]>,
}

/// Where one stored field stands against the store.
#[derive(Default)]
struct FieldState {
    /// The bytes the store holds for the field, `None` if it holds none.
    stored: Option<Vec<u8>>,
    /// The key `stored` was found under, when it was an `alias`.
    alias: Option<&'static str>,
    /// Written or borrowed mutably since the last commit.
    touched: bool,
    /// A flash field read (and so emptied) since the last commit.
    consumed: bool,
    /// The outcome of a commit in flight: the bytes the store will hold.
    pending: Option<Option<Vec<u8>>>,
}

impl<T: SessionData> Slot<T> {
    /// Decodes `T` from a loaded record; a field that fails to decode keeps
    /// its default and is reported.
    pub(crate) fn load(record: &HashMap<String, Vec<u8>>, config: &SessionConfig) -> Self {
        let mut value = T::new_default();
        let fields = T::FIELDS
            .iter()
            .map(|field| {
                let found = std::iter::once(field.key)
                    .chain(field.aliases.iter().copied())
                    .find_map(|key| record.get(key).map(|bytes| (key, bytes)));
                let Some((key, bytes)) = found else {
                    return FieldState::default();
                };
                if let Err(error) = (field.decode)(&mut value, bytes) {
                    config.emit(SessionEvent::FieldReset {
                        field: field.key,
                        error,
                    });
                }
                FieldState {
                    stored: Some(bytes.clone()),
                    alias: (key != field.key).then_some(key),
                    ..FieldState::default()
                }
            })
            .collect();
        Self {
            state: Mutex::new(SlotState { value, fields }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        lock(&self.state)
    }
}

impl<T> SlotState<T> {
    pub(crate) fn mark_touched(&mut self, stored: Option<usize>) {
        if let Some(field) = stored.and_then(|index| self.fields.get_mut(index)) {
            field.touched = true;
            field.consumed = false;
        }
    }

    pub(crate) fn mark_consumed(&mut self, stored: Option<usize>) {
        if let Some(field) = stored.and_then(|index| self.fields.get_mut(index)) {
            field.consumed = true;
        }
    }
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
        let SlotState { value, fields } = &mut *state;
        // Built only if a field absent from the store was touched.
        let mut defaults: Option<T> = None;
        for (spec, field) in T::FIELDS.iter().zip(fields.iter_mut()) {
            let next = if field.consumed {
                None
            } else if field.touched {
                let bytes = (spec.encode)(value).map_err(|source| Error::Encode {
                    field: spec.key,
                    source,
                })?;
                Some(bytes)
            } else {
                continue;
            };
            let unchanged = match (&field.stored, &next) {
                (Some(stored), Some(next)) => stored == next,
                (None, None) => true,
                (Some(_), None) => false,
                // A field the store lacks loads as its default: writing the
                // default would change nothing a reader could see.
                (None, Some(next)) => {
                    let defaults = defaults.get_or_insert_with(T::new_default);
                    (spec.encode)(defaults).is_ok_and(|default| default == *next)
                }
            };
            field.touched = false;
            field.consumed = false;
            if unchanged {
                continue;
            }
            match &next {
                Some(bytes) => changes.set.push((spec.key, bytes.clone())),
                None => changes.remove.push(spec.key),
            }
            // The value now lives under its current key; drop the old one.
            changes.remove.extend(field.alias);
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
                field.stored = next;
                field.alias = None;
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
        state
            .fields
            .iter_mut()
            .for_each(|field| *field = FieldState::default());
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
