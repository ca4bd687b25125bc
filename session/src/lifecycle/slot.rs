//! One session struct's values within one request, with per-field dirty
//! tracking against the bytes the store holds: the whole state machine of a
//! field, from first use through commit.
//!
//! Fields are decoded lazily, on first use: a request pays for the fields it
//! touches, not for every field the struct declares. A slot has no lock of
//! its own: it lives in the request's state, whose lock is held only inside
//! this crate, never while user code runs.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use crate::data::{SessionSchema, StoredField};
use crate::error::Error;
use crate::event::SessionEvent;
use crate::store::{no_fields, ChangeSet, Fields};

pub(crate) struct Slot<T> {
    value: T,
    /// The record as loaded, shared with the request and the other slots.
    record: Arc<Fields>,
    /// The field last looked up in `record`, with what it holds there: a
    /// handler usually reads a field before writing it, and the commit
    /// compares the two, so the second lookup (a scan of a packed record)
    /// is spared.
    looked_up: Option<(usize, Option<Held>)>,
    /// By field index; a few bytes each, since every request makes them.
    fields: Box<[FieldState]>,
    /// By field index, for the fields this request committed: what the
    /// store holds since (`None`: removed). For the others, the record says.
    committed: Vec<(usize, Option<Bytes>)>,
    /// The fields a commit in flight carries, with what the store will hold.
    pending: Vec<(usize, Option<Bytes>)>,
}

/// Where one stored field stands.
#[derive(Default, Clone, Copy)]
struct FieldState {
    /// `value` holds the field's stored value (or a newer one).
    decoded: bool,
    /// Written or borrowed mutably since the last commit.
    touched: bool,
    /// To be removed at commit unless written again: a flash field was read,
    /// or the stored bytes no longer decode.
    removed: bool,
}

/// What the store holds for one field: its bytes and the key they are under.
#[derive(Clone)]
struct Held {
    key: &'static str,
    bytes: Bytes,
}

/// How a commit in flight ended, for the fields it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// The store holds the changes.
    Committed,
    /// The commit failed: the changes are dirty again, unless newer ones
    /// arrived meanwhile.
    Retry,
    /// The session is gone: the changes are dropped.
    Dropped,
}

impl<T: SessionSchema> Slot<T> {
    pub(crate) fn new(record: Arc<Fields>) -> Self {
        Self {
            value: T::new_default(),
            record,
            looked_up: None,
            fields: T::FIELDS.iter().map(|_| FieldState::default()).collect(),
            committed: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Reads through `read`; never marks anything dirty. The event, if any,
    /// is for the caller to emit once it holds no lock.
    pub(crate) fn read<R>(
        &mut self,
        stored: Option<usize>,
        read: impl FnOnce(&T) -> R,
    ) -> (R, Option<SessionEvent>) {
        let event = self.decode(stored);
        (read(&self.value), event)
    }

    /// Writes through `write` and marks the field dirty.
    pub(crate) fn write(&mut self, stored: Option<usize>, write: impl FnOnce(&mut T)) {
        if let Some(field) = stored.map(|index| &mut self.fields[index]) {
            // Its old value needs no decoding any more.
            field.decoded = true;
            field.touched = true;
            field.removed = false;
        }
        write(&mut self.value);
    }

    /// Reads a flash field through `take`, which leaves the default behind:
    /// the field is removed at commit unless written again.
    pub(crate) fn take<R>(
        &mut self,
        stored: Option<usize>,
        take: impl FnOnce(&mut T) -> R,
    ) -> (R, Option<SessionEvent>) {
        let event = self.decode(stored);
        if let Some(field) = stored.map(|index| &mut self.fields[index]) {
            field.removed = true;
        }
        (take(&mut self.value), event)
    }

    /// Returns every field to its default: the stored ones are removed at
    /// commit unless written again.
    pub(crate) fn clear(&mut self) {
        self.value = T::new_default();
        self.fields.fill(FieldState {
            decoded: true,
            touched: false,
            removed: true,
        });
    }

    /// Makes sure `value` holds the stored field: decodes it on first use. A
    /// field that fails to decode keeps its default, is reported once, and
    /// its stale bytes are removed at the next commit.
    fn decode(&mut self, stored: Option<usize>) -> Option<SessionEvent> {
        let index = stored?;
        if std::mem::replace(&mut self.fields[index].decoded, true) {
            return None;
        }
        let spec = &T::FIELDS[index];
        let held = self.held(index)?;
        let error = (spec.decode)(&mut self.value, &held.bytes).err()?;
        self.fields[index].removed = true;
        Some(SessionEvent::FieldReset {
            field: spec.key,
            error,
        })
    }

    /// What the store holds for field `index`: under its key, or else under
    /// the first of its aliases found.
    fn held(&mut self, index: usize) -> Option<Held> {
        let spec = &T::FIELDS[index];
        if let Some((_, committed)) = self.committed.iter().find(|(field, _)| *field == index) {
            return committed.clone().map(|bytes| Held {
                key: spec.key,
                bytes,
            });
        }
        match &self.looked_up {
            Some((field, held)) if *field == index => held.clone(),
            _ => {
                let held = held_in(&self.record, spec);
                self.looked_up = Some((index, held.clone()));
                held
            }
        }
    }
}

fn held_in<T>(record: &Fields, spec: &StoredField<T>) -> Option<Held> {
    spec.keys().find_map(|key| {
        let bytes = record.get(key)?;
        Some(Held { key, bytes })
    })
}

/// A slot with its type erased, so one request can hold several structs.
pub(crate) trait AnySlot: Send {
    /// Adds this slot's changes to `changes` and remembers them as pending.
    fn collect(&mut self, changes: &mut ChangeSet) -> Result<(), Error>;
    /// Ends the commit in flight.
    fn settle(&mut self, outcome: Settle);
    /// Forgets everything: the session was destroyed.
    fn reset(&mut self);
    /// Lets go of the record as loaded: nothing reads it any more.
    fn release_record(&mut self);
    /// Writes what this request committed into `fields`, a copy of the
    /// record as loaded.
    fn committed_into(&self, fields: &mut Fields);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: SessionSchema> AnySlot for Slot<T> {
    fn collect(&mut self, changes: &mut ChangeSet) -> Result<(), Error> {
        // Built only if a field absent from the store was touched.
        let mut defaults: Option<T> = None;
        for (index, spec) in T::FIELDS.iter().enumerate() {
            let field = &self.fields[index];
            let next = if field.removed {
                None
            } else if field.touched {
                let bytes = (spec.encode)(&self.value).map_err(|source| Error::Encode {
                    field: spec.key,
                    source,
                })?;
                Some(Bytes::from(bytes))
            } else {
                continue;
            };
            let held = self.held(index);
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
            let field = &mut self.fields[index];
            field.touched = false;
            field.removed = false;
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
            self.pending.push((index, next));
        }
        Ok(())
    }

    fn settle(&mut self, outcome: Settle) {
        for (index, next) in std::mem::take(&mut self.pending) {
            let field = &mut self.fields[index];
            match outcome {
                Settle::Committed => {
                    match self.committed.iter_mut().find(|(field, _)| *field == index) {
                        Some((_, committed)) => *committed = next,
                        None => self.committed.push((index, next)),
                    }
                }
                // A field written or read again since is dirty already, with
                // a newer value.
                Settle::Retry if !(field.touched || field.removed) => match next {
                    Some(_) => field.touched = true,
                    None => field.removed = true,
                },
                Settle::Retry | Settle::Dropped => {}
            }
        }
    }

    fn reset(&mut self) {
        self.value = T::new_default();
        self.record = no_fields();
        self.looked_up = None;
        self.fields.fill(FieldState::default());
        self.committed.clear();
        self.pending.clear();
    }

    fn release_record(&mut self) {
        self.record = no_fields();
        self.looked_up = None;
    }

    fn committed_into(&self, fields: &mut Fields) {
        for (index, committed) in &self.committed {
            let spec = &T::FIELDS[*index];
            spec.aliases.iter().for_each(|alias| {
                fields.remove(alias);
            });
            match committed {
                Some(bytes) => fields.insert(spec.key, bytes.clone()),
                None => fields.remove(spec.key),
            };
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
