//! The handle a handler holds: `Session<T>`, and what its accessors call.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use crate::data::{Accessors, SessionData};
use crate::error::Error;
use crate::lifecycle::slot::{Slot, SlotState};
use crate::lifecycle::RequestSession;

/// A typed session, handed to a handler.
///
/// `Session<T>` derefs to the accessors `#[derive(Session)]` generated for `T`,
/// so a field `cart: Vec<Item>` is read with `session.cart()`, replaced with
/// `session.set_cart(..)` and changed in place with `session.cart_mut()`.
/// Reading never marks a field dirty; a field is written at commit only when
/// its encoded bytes differ from what was loaded.
///
/// The handle is cheap to clone, `Send + Sync`, and may be held across
/// `.await`. The guard returned by a `*_mut()` accessor may not: it holds the
/// session's lock, so keep it to one statement or a short block.
pub struct Session<T: SessionData> {
    accessors: T::Accessors,
}

impl<T: SessionData> Session<T> {
    pub(crate) fn new(raw: RawHandle<T>) -> Self {
        Self {
            accessors: T::Accessors::from_raw(raw),
        }
    }

    fn request(&self) -> &RequestSession {
        &self.accessors.raw().request
    }

    /// Whether this session is not in the store yet: the client presented no
    /// valid session, or it was destroyed during this request.
    pub fn is_new(&self) -> bool {
        self.request().is_new()
    }

    /// Ends the session: its record is deleted at commit and the client gets a
    /// removal cookie. Fields set afterwards in the same request start a fresh
    /// session with a new id.
    pub fn destroy(&self) {
        self.request().destroy();
    }

    /// Moves the session to a new id at commit, keeping its data and deleting
    /// the old record. Call it when privileges change (log in, log out) so that
    /// an id planted before cannot ride along (session fixation).
    pub fn regenerate(&self) {
        self.request().regenerate();
    }

    /// Overrides the configured `max_age` for this session only, for example
    /// for "remember me". The override is stored with the session and survives
    /// reloads; it also makes the cookie persistent when the configuration asks
    /// for browser-session cookies. `None` returns to the configured value.
    /// Lifetimes beyond 400 days, the most a browser keeps a cookie, are cut
    /// to 400 days.
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        self.request().set_max_age(max_age);
    }

    /// The lifetime this session gets from its next commit on: the override
    /// set by [`set_max_age`](Self::set_max_age), or else the configured one.
    pub fn max_age(&self) -> Duration {
        self.request().max_age()
    }

    /// Commits now instead of at the end of the request: writes the changed
    /// fields and prepares the cookie the response will carry. Required when
    /// auto-commit is turned off; harmless otherwise (the final commit then
    /// has nothing left to write).
    pub async fn save(&self) -> Result<(), Error> {
        self.request().save().await
    }
}

impl<T: SessionData> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self {
            accessors: self.accessors.clone(),
        }
    }
}

impl<T: SessionData> Deref for Session<T> {
    type Target = T::Accessors;

    fn deref(&self) -> &T::Accessors {
        &self.accessors
    }
}

impl<T: SessionData> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("type", &std::any::type_name::<T>())
            .field("new", &self.is_new())
            .finish_non_exhaustive()
    }
}

/// What generated accessors call: typed access to one struct's slot in the
/// request's session, with dirty tracking by field index.
///
/// `stored` arguments are the field's index in [`SessionData::FIELDS`], or
/// `None` for `skip` fields, which are never tracked.
#[doc(hidden)]
pub struct RawHandle<T: SessionData> {
    slot: Arc<Slot<T>>,
    request: RequestSession,
}

impl<T: SessionData> RawHandle<T> {
    pub(crate) fn new(slot: Arc<Slot<T>>, request: RequestSession) -> Self {
        Self { slot, request }
    }

    /// Reads through `read`; never marks anything dirty.
    pub fn get<R>(&self, stored: Option<usize>, read: impl FnOnce(&T) -> R) -> R {
        let mut state = self.slot.lock();
        state.decode(stored, self.request.config());
        read(&state.value)
    }

    /// Writes through `write` and marks the field dirty.
    pub fn set(&self, stored: Option<usize>, write: impl FnOnce(&mut T)) {
        let mut state = self.slot.lock();
        state.mark_touched(stored);
        write(&mut state.value);
    }

    /// Reads a flash field through `take` (which leaves the default behind):
    /// the field is removed from the store at commit unless set again.
    pub fn take<R>(&self, stored: Option<usize>, take: impl FnOnce(&mut T) -> R) -> R {
        let mut state = self.slot.lock();
        state.decode(stored, self.request.config());
        state.mark_consumed(stored);
        take(&mut state.value)
    }

    /// A guard for changing a field in place; the field is marked dirty (and
    /// compared by its encoding at commit, so an unchanged value costs nothing).
    pub fn field_mut<F>(
        &self,
        stored: Option<usize>,
        project: fn(&T) -> &F,
        project_mut: fn(&mut T) -> &mut F,
    ) -> FieldMut<'_, T, F> {
        let mut state = self.slot.lock();
        state.decode(stored, self.request.config());
        state.mark_touched(stored);
        FieldMut {
            state,
            project,
            project_mut,
        }
    }
}

impl<T: SessionData> Clone for RawHandle<T> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
            request: self.request.clone(),
        }
    }
}

impl<T: SessionData> fmt::Debug for RawHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawHandle").finish_non_exhaustive()
    }
}

/// In-place access to one field, returned by the generated `*_mut()`
/// accessors. It holds the session's lock until dropped.
pub struct FieldMut<'a, T: SessionData, F> {
    state: MutexGuard<'a, SlotState<T>>,
    project: fn(&T) -> &F,
    project_mut: fn(&mut T) -> &mut F,
}

impl<T: SessionData, F> Deref for FieldMut<'_, T, F> {
    type Target = F;

    fn deref(&self) -> &F {
        (self.project)(&self.state.value)
    }
}

impl<T: SessionData, F> DerefMut for FieldMut<'_, T, F> {
    fn deref_mut(&mut self) -> &mut F {
        (self.project_mut)(&mut self.state.value)
    }
}

impl<T: SessionData, F: fmt::Debug> fmt::Debug for FieldMut<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
