use session::{Codec, CodecError, Session};

/// Only knows numbers.
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

#[derive(Session, Default)]
#[session(codec = Decimal)]
struct Counters {
    hits: u64,
    label: String,
}

fn main() {}
