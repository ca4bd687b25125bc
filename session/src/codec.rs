//! How a field's value becomes the bytes a store keeps.
//!
//! Every stored field goes through a [`Codec`]: [`Json`] unless the field or
//! the struct names another with `#[session(codec = Type)]`.

use std::error::Error as StdError;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Turns values of `T` into bytes and back.
///
/// Codecs are types, not values: the derive calls them as
/// `<Codec as session::Codec<FieldType>>::encode(&value)`. Implement it for
/// your own format when neither built-in codec fits.
#[diagnostic::on_unimplemented(
    message = "`{T}` cannot be stored with the session codec `{Self}`",
    label = "this field's type must work with the codec"
)]
pub trait Codec<T> {
    /// Encodes `value`.
    fn encode(value: &T) -> Result<Vec<u8>, CodecError>;
    /// Decodes bytes written by [`encode`](Codec::encode).
    fn decode(bytes: &[u8]) -> Result<T, CodecError>;
}

/// The default codec: JSON through `serde_json`, readable in any store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::new)
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::new)
    }
}

/// A compact binary codec (postcard): smaller records, not human-readable,
/// and not self-describing, so a changed field type fails to decode (and
/// falls back to its default) rather than being misread.
#[cfg(feature = "binary")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Binary;

#[cfg(feature = "binary")]
impl<T: Serialize + DeserializeOwned> Codec<T> for Binary {
    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        postcard::to_stdvec(value).map_err(CodecError::new)
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        postcard::from_bytes(bytes).map_err(CodecError::new)
    }
}

/// A codec failed to encode or decode a value.
pub struct CodecError(Box<dyn StdError + Send + Sync>);

impl CodecError {
    /// Wraps the error of a codec's underlying format.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

impl fmt::Debug for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for CodecError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
