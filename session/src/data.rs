//! What `#[derive(Session)]` tells the runtime about a struct's fields.
//!
//! Users never implement this by hand: the derive writes it. It is public so
//! that the generated code can name it, and documented so that a reader of the
//! expansion knows what each piece is for.

use crate::codec::CodecError;

/// The stored fields of a session struct: how each reaches the store, and
/// what a session that holds nothing looks like.
#[doc(hidden)]
pub trait SessionSchema: Sized + Send + Sync + 'static {
    /// The stored fields, in declaration order. A field's index in this slice
    /// is the index the accessors pass to the handle.
    const FIELDS: &'static [StoredField<Self>];

    /// The value of a session that holds nothing yet: every field at its default.
    fn new_default() -> Self;
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

impl<T> StoredField<T> {
    /// The field's key followed by its aliases: every key it may be stored under.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.key).chain(self.aliases.iter().copied())
    }
}
