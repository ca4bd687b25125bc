//! The handle a handler holds: `Session<T>`, and what its accessors call.
//!
//! No lock of the crate is ever held while user code runs: every accessor
//! takes the request's lock for its own few statements, and the `*_mut()`
//! guard works on a copy of the field that it writes back when dropped. So
//! any mix of accessors and handle methods, in any order, from any task,
//! cannot deadlock.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, SystemTime};

use crate::data::SessionSchema;
use crate::error::Error;
use crate::id::PublicId;
use crate::lifecycle::slot::Slot;
use crate::lifecycle::{LiveSession, LoadedSession, RequestSession};

/// A struct that can be used as `Session<Self>`.
///
/// Implemented by `#[derive(Session)]`; see the [crate docs](crate) for the
/// attributes it accepts.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a session struct",
    label = "`{Self}` does not derive `Session`",
    note = "add `#[derive(Session)]` to the definition of `{Self}`"
)]
pub trait SessionData: SessionSchema {
    /// The type that carries the generated accessors; `Session<Self>` derefs to it.
    #[doc(hidden)]
    type Accessors: Accessors<Self>;
}

/// The generated accessor type: a thin wrapper around a [`RawHandle`].
#[doc(hidden)]
pub trait Accessors<T: SessionData>: Clone + Send + Sync + 'static {
    /// Wraps the untyped handle.
    fn from_raw(raw: RawHandle<T>) -> Self;
    /// The untyped handle, for the methods `Session<T>` offers itself.
    fn raw(&self) -> &RawHandle<T>;
}

/// A typed session, handed to a handler.
///
/// `Session<T>` derefs to the accessors `#[derive(Session)]` generated for `T`,
/// so a field `cart: Vec<Item>` is read with `session.cart()`, replaced with
/// `session.set_cart(..)` and changed in place with `session.cart_mut()`.
/// Reading never marks a field dirty; a field is written at commit only when
/// its encoded bytes differ from what was loaded.
///
/// The handle is cheap to clone, `Send + Sync`, and may be held across
/// `.await`, as may the guard of a `*_mut()` accessor.
pub struct Session<T: SessionData> {
    accessors: T::Accessors,
}

impl<T: SessionData> Session<T> {
    fn request(&self) -> &RequestSession {
        &self.accessors.raw().request
    }

    /// Whether this session is not in the store yet: the client presented no
    /// live session, or it was destroyed during this request.
    pub fn is_new(&self) -> bool {
        self.request().is_new()
    }

    /// Ends the whole session, every struct of it: its record is deleted at
    /// commit and the client gets a removal cookie. Fields set afterwards in
    /// the same request start a fresh session with a new id.
    pub fn destroy(&self) {
        self.request().destroy();
    }

    /// Moves the session to a new id at commit, keeping its data and deleting
    /// the old record in the same store operation. Call it when privileges
    /// rise (log in) so that an id planted before cannot ride along (session
    /// fixation); whoever holds the old id reaches nothing. To log out,
    /// [`destroy`](Self::destroy) the session instead: nothing of it should
    /// outlive the logout.
    pub fn regenerate(&self) {
        self.request().regenerate();
    }

    /// Returns every field of this struct to its default, as in a new
    /// session; the session itself, its id and its other structs stay (a
    /// cart emptied after checkout, while the login lives on). The stored
    /// fields are removed from the store at commit, unless set again.
    pub fn clear(&self) {
        self.accessors.raw().clear();
    }

    /// Makes the next commit write the session even if nothing changed, as
    /// koa-session's `save()` does: a new session is stored and gets its
    /// cookie though it holds nothing yet (an anonymous visitor who must
    /// keep one id from the first response on); a stored one is extended.
    pub fn touch(&self) {
        self.request().touch();
    }

    /// Overrides the configured `max_age` for this session only, for example
    /// for "remember me". The override is stored with the session and survives
    /// reloads; it also makes the cookie persistent when the configuration asks
    /// for browser-session cookies. `None` returns to the configured value.
    /// Lifetimes beyond 400 days, the most a browser keeps a cookie, are cut
    /// to 400 days; lifetimes under a second (a cookie's `Max-Age` counts
    /// whole seconds) are raised to one second. Zero ends the session at the
    /// commit, as [`destroy`](Self::destroy) does.
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        self.request().set_max_age(max_age);
    }

    /// This session's own max-age, as [`set_max_age`](Self::set_max_age)
    /// set it (in this request or an earlier one); `None` when the
    /// configured one applies.
    pub fn max_age(&self) -> Option<Duration> {
        self.request().max_age()
    }

    /// When the stored session expires, as of this request's load or last
    /// commit (each commit extends it); `None` while it is not stored.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.request().expires_at()
    }

    /// The user this session is bound to, if any.
    pub fn owner(&self) -> Option<String> {
        self.request().owner()
    }

    /// Binds the session to a user (`None` unbinds it), so that the user's
    /// sessions can be listed and revoked with
    /// [`SessionManager::sessions_of`](crate::SessionManager::sessions_of) and
    /// its siblings. Stored at commit; [`regenerate`](Self::regenerate) keeps
    /// it, and destroying or expiring the session removes it from the list.
    pub fn set_owner(&self, owner: Option<&str>) {
        self.request().set_owner(owner);
    }

    /// This session's public id, as the owner's session list shows it; `None`
    /// while the session is not stored, and from [`regenerate`](Self::regenerate)
    /// until the commit, which draws the new id (the old one dies there).
    pub fn public_id(&self) -> Option<PublicId> {
        self.request().public_id()
    }

    /// The live sessions of this session's owner (a "your devices" page),
    /// oldest first, this one marked [`current`](crate::lifecycle::LiveSession::current);
    /// none without an owner. They serialize as JSON wants them. As stored:
    /// an owner set or a regenerate in this request shows once committed
    /// ([`save`](Self::save)).
    pub async fn owner_sessions(&self) -> Result<Vec<LiveSession>, Error> {
        self.request().owner_sessions().await
    }

    /// Ends every other session of this session's owner ("log out other
    /// devices") right away, and returns how many it ended. Without an owner
    /// it ends nothing.
    pub async fn revoke_other_sessions(&self) -> Result<u64, Error> {
        self.request().revoke_other_sessions().await
    }

    /// Commits now instead of at the end of the request: writes the changed
    /// fields and prepares the cookie the response will carry. Required when
    /// auto-commit is turned off; harmless otherwise (the final commit then
    /// has nothing left to write).
    pub async fn save(&self) -> Result<(), Error> {
        self.request().save().await
    }
}

impl RequestSession {
    /// The typed session `T` of this request, loading the session on first use.
    /// Every call for the same `T` shares one state; different structs share
    /// one store load.
    ///
    /// Fails with [`Error::KeyClash`] if `T` stores a field under a key that
    /// another struct used with the same manager stores under too.
    pub async fn session<T: SessionData>(&self) -> Result<Session<T>, Error> {
        let slot = self.slot::<T>().await?;
        Ok(self.handle(slot))
    }

    fn handle<T: SessionData>(&self, slot: usize) -> Session<T> {
        let raw = RawHandle {
            request: self.clone(),
            slot,
            _type: PhantomData,
        };
        Session {
            accessors: T::Accessors::from_raw(raw),
        }
    }
}

impl LoadedSession {
    /// The typed session `T` as loaded, for the hook to judge; what the hook
    /// changes through it stays (unless the hook refuses the session).
    pub async fn session<T: SessionData>(&self) -> Result<Session<T>, Error> {
        let request = self.request();
        let slot = request.loaded_slot::<T>().await?;
        Ok(request.handle(slot))
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
/// `stored` arguments are the field's index in [`SessionSchema::FIELDS`], or
/// `None` for `skip` fields, which are never tracked. The closures passed in
/// are the generated code's own: a clone, an assignment, a `mem::replace`.
#[doc(hidden)]
pub struct RawHandle<T> {
    request: RequestSession,
    slot: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T: SessionData> RawHandle<T> {
    /// Reads through `read`; never marks anything dirty.
    pub fn get<R>(&self, stored: Option<usize>, read: impl FnOnce(&T) -> R) -> R {
        let (value, event) = self
            .request
            .with_slot(self.slot, |slot| slot.read(stored, read));
        if let Some(event) = event {
            self.request.config().emit(event);
        }
        value
    }

    /// Writes through `write` and marks the field dirty.
    pub fn set(&self, stored: Option<usize>, write: impl FnOnce(&mut T)) {
        self.request
            .with_slot(self.slot, |slot| slot.write(stored, write));
    }

    /// Reads through `read`, the application's closure, under the session's
    /// lock; never marks anything dirty. The session used inside it panics
    /// (it would deadlock).
    pub fn read<R>(&self, stored: Option<usize>, read: impl FnOnce(&T) -> R) -> R {
        self.get(stored, |value| crate::lifecycle::reading(|| read(value)))
    }

    /// Returns every field to its default; the stored ones are removed from
    /// the store at commit unless set again.
    pub fn clear(&self) {
        self.request.with_slot(self.slot, Slot::<T>::clear);
    }

    /// Reads a flash field through `take` (which leaves the default behind):
    /// the field is removed from the store at commit unless set again.
    pub fn take<R>(&self, stored: Option<usize>, take: impl FnOnce(&mut T) -> R) -> R {
        let (value, event) = self
            .request
            .with_slot(self.slot, |slot| slot.take(stored, take));
        if let Some(event) = event {
            self.request.config().emit(event);
        }
        value
    }

    /// A guard holding a copy of a field, written back (and so marked dirty)
    /// when dropped; compared by its encoding at commit, so an unchanged
    /// value costs nothing.
    pub fn field_mut<F>(
        &self,
        stored: Option<usize>,
        copy: fn(&T) -> F,
        put: fn(&mut T, F),
    ) -> FieldMut<'_, T, F> {
        FieldMut {
            raw: self,
            stored,
            value: Some(self.get(stored, copy)),
            put,
        }
    }
}

impl<T> Clone for RawHandle<T> {
    fn clone(&self) -> Self {
        Self {
            request: self.request.clone(),
            slot: self.slot,
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for RawHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawHandle").finish_non_exhaustive()
    }
}

/// In-place access to one field, returned by the generated `*_mut()`
/// accessors. It holds a copy of the field, not a lock, and writes it back
/// when dropped, so the session stays usable meanwhile (a getter inside
/// `session.cart_mut().push(session.item())` is fine) and the guard may
/// cross an `.await`. A change made to the same field through another
/// accessor while the guard lives is replaced by the guard's value.
pub struct FieldMut<'a, T: SessionData, F> {
    raw: &'a RawHandle<T>,
    stored: Option<usize>,
    /// Always `Some` until the guard is dropped.
    value: Option<F>,
    put: fn(&mut T, F),
}

impl<T: SessionData, F> Deref for FieldMut<'_, T, F> {
    type Target = F;

    fn deref(&self) -> &F {
        self.value
            .as_ref()
            .unwrap_or_else(|| unreachable!("the value leaves only on drop"))
    }
}

impl<T: SessionData, F> DerefMut for FieldMut<'_, T, F> {
    fn deref_mut(&mut self) -> &mut F {
        self.value
            .as_mut()
            .unwrap_or_else(|| unreachable!("the value leaves only on drop"))
    }
}

impl<T: SessionData, F> Drop for FieldMut<'_, T, F> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            let put = self.put;
            self.raw.set(self.stored, |data| put(data, value));
        }
    }
}

impl<T: SessionData, F: fmt::Debug> fmt::Debug for FieldMut<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
