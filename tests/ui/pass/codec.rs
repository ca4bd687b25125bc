//! `codec = Type` on fields and on the struct, with built-in and own codecs.
#![deny(warnings)]

use std::marker::PhantomData;

use session::__private::SessionSchema;
use session::{Codec, CodecError, Session};

/// Stores numbers as decimal text.
struct Decimal;

impl Codec<u64> for Decimal {
    fn encode(value: &u64) -> Result<Vec<u8>, CodecError> {
        Ok(value.to_string().into_bytes())
    }

    fn decode(bytes: &[u8]) -> Result<u64, CodecError> {
        let text = std::str::from_utf8(bytes).map_err(CodecError::new)?;
        text.parse().map_err(CodecError::new)
    }
}

/// A codec generic over a marker, to check generic codec paths.
struct Tagged<M>(PhantomData<M>);

impl<M, T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Tagged<M> {
    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        session::Json::encode(value)
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        session::Json::decode(bytes)
    }
}

mod codecs {
    pub(crate) type Compact = session::Binary;
}

#[derive(Session, Default)]
#[session(codec = Decimal)]
struct Counters {
    hits: u64,
    #[session(codec = session::Json)]
    label: String,
    #[session(codec = ::session::Binary)]
    bytes: Vec<u8>,
    #[session(codec = Tagged<u8>)]
    tags: Vec<String>,
    #[session(codec = codecs::Compact)]
    misses: u64,
}

#[derive(Session, Default)]
struct Mixed {
    #[session(codec = Decimal)]
    count: u64,
    name: String,
}

fn main() {
    let mut counters = Counters::new_default();
    counters.hits = 12;
    counters.label = "x".to_owned();
    assert_eq!((Counters::FIELDS[0].encode)(&counters).unwrap(), b"12");
    assert_eq!((Counters::FIELDS[1].encode)(&counters).unwrap(), b"\"x\"");
    (Counters::FIELDS[0].decode)(&mut counters, b"40").unwrap();
    assert_eq!(counters.hits, 40);

    let mixed = Mixed::new_default();
    assert_eq!((Mixed::FIELDS[0].encode)(&mixed).unwrap(), b"0");
    assert_eq!((Mixed::FIELDS[1].encode)(&mixed).unwrap(), b"\"\"");
    let _ = |s: Session<Counters>| s.set_misses(s.hits());
}
