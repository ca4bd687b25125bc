//! The contract between `#[derive(Session)]` and the runtime.
//!
//! Users never implement these by hand: the derive writes them. They are public
//! so that the generated code can name them, and documented so that a reader of
//! the expansion knows what each piece is for.

use crate::codec::CodecError;
use crate::handle::RawHandle;

/// A struct that can be stored as a typed session.
///
/// Implemented by `#[derive(Session)]`; see the [crate docs](crate) for the
/// attributes it accepts.
pub trait SessionData: Sized + Send + Sync + 'static {
    /// The type that carries the generated accessors; `Session<Self>` derefs to it.
    #[doc(hidden)]
    type Accessors: Accessors<Self>;

    /// The stored fields, in declaration order. A field's index in this slice
    /// is the index the accessors pass to [`RawHandle`].
    #[doc(hidden)]
    const FIELDS: &'static [StoredField<Self>];

    /// The value of a session that holds nothing yet: every field at its default.
    #[doc(hidden)]
    fn new_default() -> Self;
}

/// The generated accessor type: a thin wrapper around a [`RawHandle`].
#[doc(hidden)]
pub trait Accessors<T: SessionData>: Clone + Send + Sync + 'static {
    /// Wraps the untyped handle.
    fn from_raw(raw: RawHandle<T>) -> Self;
    /// The untyped handle, for the methods `Session<T>` offers itself.
    fn raw(&self) -> &RawHandle<T>;
}

/// How one field of `T` reaches the store.
#[doc(hidden)]
#[derive(Debug)]
pub struct StoredField<T> {
    /// The key the field is stored under (namespace and `rename` applied).
    pub key: &'static str,
    /// Older keys also accepted when loading (`alias`), namespace applied.
    pub aliases: &'static [&'static str],
    /// Whether reading the field consumes it (`flash`).
    pub flash: bool,
    /// Encodes the field's current value with its codec.
    pub encode: fn(&T) -> Result<Vec<u8>, CodecError>,
    /// Decodes stored bytes into the field; leaves it untouched on error.
    pub decode: fn(&mut T, &[u8]) -> Result<(), CodecError>,
}
