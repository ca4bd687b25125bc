//! The `data` column: one JSON object of the fields, each value the base64
//! of its encoded bytes, and the merge patches that change it.

use std::borrow::Cow;
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::store::{ChangeSet, Fields};

/// A `data` column that is not what this store writes.
#[derive(Debug, thiserror::Error)]
#[error("the stored session data is not a JSON object of base64 strings")]
pub struct CorruptData;

/// The set fields as a JSON object of base64 strings, with the removed ones
/// as `null` if `with_removals` (a merge patch).
pub(super) fn document(changes: &ChangeSet, with_removals: bool) -> String {
    let patch = Patch {
        changes,
        with_removals,
    };
    serde_json::to_string(&patch).unwrap_or_default()
}

/// The fields of a `data` document, read in one pass: names and values are
/// borrowed from it where JSON allows (it escapes nothing in base64), and
/// the values decoded into one shared buffer.
pub(super) fn fields(data: &str) -> Result<Fields, CorruptData> {
    let Entries(entries) = serde_json::from_str(data).map_err(|_| CorruptData)?;
    let size = entries.iter().map(|(_, value)| value.len() / 4 * 3 + 3);
    let mut decoded = Vec::with_capacity(size.sum());
    let mut ends = Vec::with_capacity(entries.len());
    for (_, value) in &entries {
        STANDARD
            .decode_vec(value.as_bytes(), &mut decoded)
            .map_err(|_| CorruptData)?;
        ends.push(decoded.len());
    }
    let decoded = Bytes::from(decoded);
    let mut fields = Fields::with_capacity(entries.len());
    let mut start = 0;
    for ((name, _), end) in entries.iter().zip(ends) {
        fields.insert(name, decoded.slice(start..end));
        start = end;
    }
    Ok(fields)
}

struct Patch<'a> {
    changes: &'a ChangeSet,
    with_removals: bool,
}

impl Serialize for Patch<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ChangeSet { set, remove, .. } = self.changes;
        let set = set.iter().map(|(name, value)| (*name, Some(value)));
        let removed = remove.iter().map(|name| (*name, None));
        let mut entries: Vec<_> = match self.with_removals {
            true => set.chain(removed).collect(),
            false => set.collect(),
        };
        // By name: MariaDB's JSON_MERGE_PATCH drops changes from a patch
        // whose keys are out of order. A name both set and removed is set
        // (the sort is stable): JSON keeps one of two equal keys, and not
        // every database the same one.
        entries.sort_by_key(|(name, _)| *name);
        entries.dedup_by_key(|(name, _)| *name);
        let mut object = serializer.serialize_map(Some(entries.len()))?;
        for (name, value) in entries {
            match value {
                Some(value) => object.serialize_entry(name, &Base64(value))?,
                None => object.serialize_entry(name, &())?,
            }
        }
        object.end()
    }
}

/// Bytes as a base64 string, written straight into the document.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// A JSON object's entries as strings, in order.
struct Entries<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((Text(name), Text(value))) = map.next_entry()? {
                    entries.push((name, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// A JSON string, borrowed unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct String;
        impl<'de> Visitor<'de> for String {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(String)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_merge_patch_holds_changed_fields_as_base64_and_removed_ones_as_null() {
        // In name order (MariaDB needs it); a name also removed is set.
        let changes = ChangeSet {
            set: vec![
                ("zeta", Bytes::from_static(b"1")),
                ("cart", Bytes::from_static(b"[\"a\"]")),
            ],
            remove: vec!["notice", "cart", "alpha"],
            ..ChangeSet::touch(Duration::from_secs(60))
        };
        assert_eq!(
            document(&changes, true),
            r#"{"alpha":null,"cart":"WyJhIl0=","notice":null,"zeta":"MQ=="}"#
        );
        assert_eq!(
            document(&changes, false),
            r#"{"cart":"WyJhIl0=","zeta":"MQ=="}"#
        );
    }

    #[test]
    fn documents_round_trip_and_corrupt_ones_are_refused() {
        let loaded = fields(r#"{"cart":"WyJhIl0=","empty":"","tab\tbed":"AQ=="}"#).unwrap();
        assert_eq!(loaded.get("cart"), Some(Bytes::from_static(b"[\"a\"]")));
        assert_eq!(loaded.get("empty"), Some(Bytes::new()));
        assert_eq!(loaded.get("tab\tbed"), Some(Bytes::from_static(&[1])));
        let names = ["cart", "empty", "tab\tbed"];
        let changes = ChangeSet {
            set: names.map(|name| (name, loaded.get(name).unwrap())).to_vec(),
            ..ChangeSet::touch(Duration::from_secs(60))
        };
        assert_eq!(fields(&document(&changes, false)).unwrap(), loaded);
        for corrupt in [
            "",
            "[]",
            r#"{"a":1}"#,
            r#"{"a":"!!"}"#,
            "{",
            r#"{"a":"AQ=="} x"#,
        ] {
            assert!(fields(corrupt).is_err(), "{corrupt:?} was accepted");
        }
    }

    mod properties {
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any text as a `data` column: an error or fields, never a panic.
            #[test]
            fn any_text_read_as_a_document_never_panics(data in "\\PC{0,300}") {
                let _ = fields(&data);
            }

            /// Any names and bytes round-trip through a document.
            #[test]
            fn documents_round_trip_any_names_and_bytes(
                map in btree_map("\\PC{0,16}", vec(any::<u8>(), 0..200), 0..16),
            ) {
                // A change set names fields by `&'static str`, as structs do.
                let names: Vec<&'static str> =
                    map.keys().map(|name| &*Box::leak(name.clone().into_boxed_str())).collect();
                let changes = ChangeSet {
                    set: names
                        .iter()
                        .zip(map.values())
                        .map(|(name, value)| (*name, Bytes::from(value.clone())))
                        .collect(),
                    ..ChangeSet::touch(Duration::from_secs(60))
                };
                let read = fields(&document(&changes, false)).unwrap();
                let expected: Fields =
                    map.iter().map(|(name, value)| (name.as_str(), Bytes::from(value.clone()))).collect();
                prop_assert_eq!(read, expected);
            }
        }
    }
}
