//! A session's encoded field values by stored key: a map, or the one buffer
//! a store read them in, looked up where a request asks.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::BoxError;

/// Hashed with foldhash, not SipHash: the names come from the application's
/// own structs, never from a client, and a record hashes every one of them.
type Map = HashMap<Arc<str>, Bytes, foldhash::fast::RandomState>;

/// Encoded field values by stored key.
///
/// Most stores fill it as a map. The Redis store hands over the whole hash
/// as Redis packed it, and a lookup reads that buffer where a request asks:
/// a request reads a few fields, so loading a wide session then costs about
/// what a narrow one does. Changing packed fields turns them into a map
/// first. Cloning copies the map's entries but no names or values: names
/// are shared strings and values share their buffers.
#[derive(Clone, Default)]
pub struct Fields(Repr);

#[derive(Clone)]
enum Repr {
    Map(Map),
    /// A MessagePack array of strings, names and values in turn, checked
    /// when it was read. Names starting with a dot are the store's own
    /// entries, not fields: no stored key starts with one. The Redis store
    /// reads its hashes this way, and cookie-only sessions are sealed so.
    Packed(Bytes),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Map(Map::default())
    }
}

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// No fields, with room for `capacity` of them.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Repr::Map(Map::with_capacity_and_hasher(
            capacity,
            Default::default(),
        )))
    }

    /// The value stored under `name`.
    pub fn get(&self, name: &str) -> Option<Bytes> {
        match &self.0 {
            Repr::Map(map) => map.get(name).cloned(),
            Repr::Packed(packed) => find(packed, name).map(|value| packed.slice_ref(value)),
        }
    }

    /// Whether a value is stored under `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        match &self.0 {
            Repr::Map(map) => map.contains_key(name),
            Repr::Packed(packed) => find(packed, name).is_some(),
        }
    }

    /// Stores `value` under `name`; returns the value it replaces.
    pub fn insert(&mut self, name: &str, value: Bytes) -> Option<Bytes> {
        let map = self.map();
        match map.get_mut(name) {
            Some(held) => Some(std::mem::replace(held, value)),
            None => map.insert(field_name(name), value),
        }
    }

    /// Removes the value stored under `name` and returns it.
    pub fn remove(&mut self, name: &str) -> Option<Bytes> {
        self.map().remove(name)
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Map(map) => map.len(),
            Repr::Packed(_) => self.iter().count(),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Every field's name and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let (map, packed) = match &self.0 {
            Repr::Map(map) => (Some(map), None),
            Repr::Packed(packed) => (None, Some(packed)),
        };
        let mapped = map
            .into_iter()
            .flatten()
            .map(|(name, value)| (&**name, &**value));
        // A name that is not UTF-8 is no stored key: nothing could read it.
        let packed = packed.into_iter().flat_map(|packed| {
            packed_entries(packed).filter_map(|(name, value)| Some((utf8(name)?, value)))
        });
        mapped.chain(packed)
    }

    /// Fields packed as a MessagePack array of strings, names and values in
    /// turn, kept as they are. Entries whose names start with a dot are not
    /// fields: each is handed to `entry` instead (a store's own metadata).
    pub(crate) fn packed(
        packed: Bytes,
        mut entry: impl FnMut(&[u8], &[u8]) -> Result<(), BoxError>,
    ) -> Result<Self, BoxError> {
        let mut rest: &[u8] = &packed;
        let len = array_len(&mut rest).ok_or(MALFORMED)?;
        if len % 2 != 0 {
            return Err(MALFORMED.into());
        }
        for _ in 0..len / 2 {
            let name = string(&mut rest).ok_or(MALFORMED)?;
            let value = string(&mut rest).ok_or(MALFORMED)?;
            if name.first() == Some(&b'.') {
                entry(name, value)?;
            }
        }
        if !rest.is_empty() {
            return Err(MALFORMED.into());
        }
        Ok(Self(Repr::Packed(packed)))
    }

    /// Sets the fields of `set`, then removes those of `remove`. Packed
    /// fields stay packed: the entries left are copied into a new buffer,
    /// the set ones after them, which costs less than a map of every field
    /// when a request changes a few (a cookie-only session, opened packed).
    pub(crate) fn merge(&mut self, set: &[(&str, Bytes)], remove: &[&str]) {
        let Repr::Packed(packed) = &self.0 else {
            for (name, value) in set {
                self.insert(name, value.clone());
            }
            for name in remove {
                self.remove(name);
            }
            return;
        };
        let changed = |name: &[u8]| {
            let named = |other: &str| other.as_bytes() == name;
            set.iter().any(|(other, _)| named(other)) || remove.iter().any(|other| named(other))
        };
        let kept = packed_entries(packed).filter(|(name, _)| !changed(name));
        let added = set
            .iter()
            .filter(|(name, _)| !remove.contains(name))
            .map(|(name, value)| (name.as_bytes(), &value[..]));
        let entries: Vec<(&[u8], &[u8])> = kept.chain(added).collect();
        self.0 = Repr::Packed(pack_entries(&entries).into());
    }

    /// `entries` of the caller's own (names starting with a dot), then the
    /// fields, packed as [`Fields::packed`] reads them back.
    pub(crate) fn pack(&self, entries: &[(&str, &[u8])]) -> Vec<u8> {
        let own = entries
            .iter()
            .map(|(name, value)| (name.as_bytes(), *value));
        let all: Vec<(&[u8], &[u8])> = match &self.0 {
            Repr::Map(map) => {
                let fields = map
                    .iter()
                    .map(|(name, value)| (name.as_bytes(), &value[..]));
                own.chain(fields).collect()
            }
            Repr::Packed(packed) => own.chain(packed_entries(packed)).collect(),
        };
        pack_entries(&all)
    }

    /// The fields as a map, unpacking them first if they are packed.
    fn map(&mut self) -> &mut Map {
        if let Repr::Packed(packed) = &self.0 {
            let map = packed_entries(packed)
                .filter_map(|(name, value)| {
                    Some((field_name(utf8(name)?), packed.slice_ref(value)))
                })
                .collect();
            self.0 = Repr::Map(map);
        }
        match &mut self.0 {
            Repr::Map(map) => map,
            Repr::Packed(_) => unreachable!("packed fields were just unpacked"),
        }
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(name, value)| other.get(name).is_some_and(|held| held == value))
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Names are interned as [`Fields::insert`] does, so no store building a
/// record allocates the names of a struct's fields.
impl<N: AsRef<str>> FromIterator<(N, Bytes)> for Fields {
    fn from_iter<I: IntoIterator<Item = (N, Bytes)>>(fields: I) -> Self {
        let map = fields
            .into_iter()
            .map(|(name, value)| (field_name(name.as_ref()), value))
            .collect();
        Self(Repr::Map(map))
    }
}

const MALFORMED: &str = "the packed session fields are malformed";

/// The entries of a checked packed buffer: what follows the array's header.
fn body(packed: &[u8]) -> &[u8] {
    let mut rest = packed;
    match array_len(&mut rest) {
        Some(_) => rest,
        // Checked when the fields were read: this cannot occur.
        None => &[],
    }
}

/// The length of the MessagePack array whose header starts `rest`; moves
/// `rest` past the header.
fn array_len(rest: &mut &[u8]) -> Option<usize> {
    let (&marker, after) = rest.split_first()?;
    let (len, after) = match marker {
        0x90..=0x9f => (usize::from(marker & 0x0f), after),
        0xdc => {
            let (len, after) = after.split_first_chunk()?;
            (usize::from(u16::from_be_bytes(*len)), after)
        }
        0xdd => {
            let (len, after) = after.split_first_chunk()?;
            (usize::try_from(u32::from_be_bytes(*len)).ok()?, after)
        }
        _ => return None,
    };
    *rest = after;
    Some(len)
}

/// The fields of a checked packed buffer, names and values as slices of it;
/// the store's own entries are skipped.
fn packed_entries(packed: &[u8]) -> PackedEntries<'_> {
    PackedEntries { rest: body(packed) }
}

struct PackedEntries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PackedEntries<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let name = string(&mut self.rest)?;
            let value = string(&mut self.rest)?;
            if name.first() != Some(&b'.') {
                return Some((name, value));
            }
        }
    }
}

/// The value of field `name` in a checked packed buffer. A loop of its
/// own, since every load looks up a field or two, stepping over the
/// entries before it.
fn find<'a>(packed: &'a [u8], name: &str) -> Option<&'a [u8]> {
    // A store's own entry is no field.
    if name.starts_with('.') {
        return None;
    }
    let mut rest = body(packed);
    while !rest.is_empty() {
        let entry = string(&mut rest)?;
        let value = string(&mut rest)?;
        if entry == name.as_bytes() {
            return Some(value);
        }
    }
    None
}

/// The MessagePack string at the start of `rest`; moves `rest` past it.
/// Read by hand, not with `rmp::decode::read_str_len`: a lookup steps over
/// every entry before the one it wants, and rmp's generic reader costs
/// several times these few comparisons.
#[inline(always)]
fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&marker, after) = rest.split_first()?;
    let (len, after) = match marker {
        0xa0..=0xbf => (usize::from(marker & 0x1f), after),
        0xd9 => {
            let (&len, after) = after.split_first()?;
            (usize::from(len), after)
        }
        0xda => {
            let (len, after) = after.split_first_chunk()?;
            (usize::from(u16::from_be_bytes(*len)), after)
        }
        0xdb => {
            let (len, after) = after.split_first_chunk()?;
            (usize::try_from(u32::from_be_bytes(*len)).ok()?, after)
        }
        _ => return None,
    };
    let (string, after) = after.split_at_checked(len)?;
    *rest = after;
    Some(string)
}

/// `entries` as a MessagePack array of strings, names and values in turn.
fn pack_entries(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2 * 5)
        .sum();
    let mut packed = Vec::with_capacity(size + 5);
    push_array_len(&mut packed, 2 * entries.len());
    for (name, value) in entries {
        push_string(&mut packed, name);
        push_string(&mut packed, value);
    }
    packed
}

/// Appends a MessagePack array header for `len` items, in the shortest
/// form [`array_len`] reads.
fn push_array_len(packed: &mut Vec<u8>, len: usize) {
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(len @ 0..=15), _) => packed.push(0x90 | len),
        (_, Ok(len)) => {
            packed.push(0xdc);
            packed.extend_from_slice(&len.to_be_bytes());
        }
        _ => {
            packed.push(0xdd);
            packed.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

/// Appends `bytes` as a MessagePack string, in the shortest form
/// [`string`] reads.
fn push_string(packed: &mut Vec<u8>, bytes: &[u8]) {
    match (u8::try_from(bytes.len()), u16::try_from(bytes.len())) {
        (Ok(len @ 0..=31), _) => packed.push(0xa0 | len),
        (Ok(len), _) => packed.extend_from_slice(&[0xd9, len]),
        (_, Ok(len)) => {
            packed.push(0xda);
            packed.extend_from_slice(&len.to_be_bytes());
        }
        _ => {
            packed.push(0xdb);
            packed.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    packed.extend_from_slice(bytes);
}

fn utf8(name: &[u8]) -> Option<&str> {
    std::str::from_utf8(name).ok()
}

/// A field's name as a record holds it. Names come from the application's
/// structs, so each thread keeps the few it has met and hands out shared
/// copies: loading a wide session allocates none of its names.
fn field_name(name: &str) -> Arc<str> {
    /// Names a thread keeps at most; past it, names are allocated per use, so
    /// a store shared with other software cannot grow the cache unbounded.
    const KEPT: usize = 256;
    thread_local! {
        static NAMES: RefCell<HashSet<Arc<str>, foldhash::fast::RandomState>> =
            RefCell::default();
    }
    NAMES.with_borrow_mut(|names| {
        if let Some(kept) = names.get(name) {
            return Arc::clone(kept);
        }
        let name = Arc::<str>::from(name);
        if names.len() < KEPT {
            names.insert(Arc::clone(&name));
        }
        name
    })
}

/// No fields, shared: what a session that holds nothing starts from,
/// without an allocation per request.
pub(crate) fn no_fields() -> Arc<Fields> {
    static NONE: std::sync::LazyLock<Arc<Fields>> = std::sync::LazyLock::new(Arc::default);
    Arc::clone(&NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_shared_once_met() {
        let first = field_name("cart");
        assert_eq!(&*first, "cart");
        assert!(Arc::ptr_eq(&first, &field_name("cart")));
    }

    #[test]
    fn field_names_past_the_kept_ones_are_still_right() {
        for i in 0..1000 {
            let name = format!("field{i}");
            assert_eq!(*field_name(&name), *name);
        }
    }

    /// `entries` packed as the Redis store's load packs a hash.
    fn packed(entries: &[(&[u8], &[u8])]) -> Bytes {
        let mut packed = Vec::new();
        rmp::encode::write_array_len(&mut packed, 2 * entries.len() as u32).unwrap();
        for (name, value) in entries {
            for string in [name, value] {
                rmp::encode::write_str_len(&mut packed, string.len() as u32).unwrap();
                packed.extend_from_slice(string);
            }
        }
        packed.into()
    }

    fn map(entries: &[(&str, &str)]) -> Fields {
        entries
            .iter()
            .map(|(name, value)| (*name, Bytes::copy_from_slice(value.as_bytes())))
            .collect()
    }

    #[test]
    fn packed_fields_read_like_a_map_and_hand_over_the_store_entries() {
        // Strings of every MessagePack width: fix, 8, 16 and 32 bits.
        let (mid, long, huge) = ("m".repeat(40), "v".repeat(300), "h".repeat(70_000));
        let bytes = packed(&[
            (b"cart", b"[1]"),
            (b".owner", b"ann"),
            (b"empty", b""),
            (b"mid", mid.as_bytes()),
            (b"huge", huge.as_bytes()),
            (b"long", long.as_bytes()),
            (b"\xff", b"not a name"),
            (b".v", b"3"),
        ]);
        let mut store_entries = Vec::new();
        let fields = Fields::packed(bytes, |name, value| {
            store_entries.push((name.to_vec(), value.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store_entries,
            [
                (b".owner".to_vec(), b"ann".to_vec()),
                (b".v".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(fields.get("cart").as_deref(), Some(&b"[1]"[..]));
        assert_eq!(fields.get("long").as_deref(), Some(long.as_bytes()));
        assert_eq!(fields.get("mid").as_deref(), Some(mid.as_bytes()));
        assert_eq!(fields.get("huge").as_deref(), Some(huge.as_bytes()));
        assert_eq!(fields.get(".owner"), None);
        assert_eq!(fields.get("car"), None);
        assert!(fields.contains_key("empty") && !fields.contains_key(".v"));
        assert_eq!(fields.len(), 5);
        let others = [
            ("empty", ""),
            ("mid", &*mid),
            ("huge", &*huge),
            ("long", &*long),
        ];
        let expected = map(&[[("cart", "[1]")].as_slice(), &others].concat());
        assert_eq!(fields, expected);
        let changed = map(&[[("cart", "[2]")].as_slice(), &others].concat());
        assert_ne!(fields, changed);
    }

    #[test]
    fn packed_arrays_of_every_header_width_read() {
        // 40 fields need a 16-bit header; rmp writes the smallest one, so the
        // 32-bit header of the same entries is written by hand.
        let names: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&[u8], &[u8])> = names
            .iter()
            .map(|name| (name.as_bytes(), &b"1"[..]))
            .collect();
        let array16 = packed(&entries);
        assert_eq!(array16[0], 0xdc);
        let mut array32 = vec![0xdd, 0, 0, 0, 80];
        array32.extend_from_slice(&array16[3..]);
        let fix = packed(&entries[..7]);
        assert_eq!(fix[0], 0x9e);
        for (bytes, len) in [(fix, 7), (array16, 40), (Bytes::from(array32), 40)] {
            let fields = Fields::packed(bytes, |_, _| Ok(())).unwrap();
            assert_eq!(fields.len(), len);
            assert_eq!(fields.get("f6").as_deref(), Some(&b"1"[..]));
        }
    }

    #[test]
    fn changing_packed_fields_keeps_the_others() {
        let bytes = packed(&[(b"a", b"1"), (b".max_age", b"60000"), (b"b", b"2")]);
        let mut fields = Fields::packed(bytes, |_, _| Ok(())).unwrap();
        assert_eq!(
            fields.insert("a", Bytes::from_static(b"9")).as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(fields.insert("c", Bytes::from_static(b"3")), None);
        assert_eq!(fields.remove("b").as_deref(), Some(&b"2"[..]));
        assert_eq!(fields, map(&[("a", "9"), ("c", "3")]));
    }

    #[test]
    fn malformed_packed_fields_are_refused() {
        let whole = packed(&[(b"a", b"1")]);
        let mut odd = Vec::new();
        rmp::encode::write_array_len(&mut odd, 1).unwrap();
        rmp::encode::write_str(&mut odd, "a").unwrap();
        let mut number = Vec::new();
        rmp::encode::write_array_len(&mut number, 2).unwrap();
        rmp::encode::write_str(&mut number, "a").unwrap();
        rmp::encode::write_u8(&mut number, 1).unwrap();
        let mut trailing = whole.to_vec();
        trailing.push(0xc0);
        for malformed in [
            Bytes::new(),
            whole.slice(..whole.len() - 1),
            odd.into(),
            number.into(),
            trailing.into(),
        ] {
            assert!(
                Fields::packed(malformed.clone(), |_, _| Ok(())).is_err(),
                "{malformed:?} was accepted"
            );
        }
    }

    #[test]
    fn a_store_entry_that_does_not_read_fails_the_whole() {
        let bytes = packed(&[(b".max_age", b"soon")]);
        assert!(Fields::packed(bytes, |_, _| Err("not a number".into())).is_err());
    }

    /// Every header width of strings (fix, 8, 16, 32 bits) and of arrays
    /// (fix, 16, 32 bits): `pack` writes what rmp writes, and `packed` reads
    /// it back, the caller's entries handed over.
    #[test]
    fn packing_writes_what_rmp_writes_and_reads_back() {
        let lengths = [0, 1, 31, 32, 255, 256, 65_535, 65_536];
        let wide: Fields = lengths
            .iter()
            .map(|&len| (format!("f{len}"), Bytes::from(vec![b'v'; len])))
            .collect();
        let many: Fields = (0..40_000)
            .map(|i| (format!("f{i}"), Bytes::from(i.to_string())))
            .collect();
        for fields in [Fields::new(), map(&[("a", "1")]), wide, many] {
            let own: [(&str, &[u8]); 2] = [(".id", b"abc"), (".expires", &[0, 1, 2])];
            let packed_by_us = fields.pack(&own);
            let entries: Vec<(&[u8], &[u8])> = own
                .iter()
                .map(|(name, value)| (name.as_bytes(), *value))
                .chain(fields.iter().map(|(name, value)| (name.as_bytes(), value)))
                .collect();
            assert_eq!(
                packed_by_us,
                &packed(&entries)[..],
                "{} fields",
                fields.len()
            );

            let mut handed = Vec::new();
            let read = Fields::packed(packed_by_us.into(), |name, value| {
                handed.push((name.to_vec(), value.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(read, fields);
            let own: Vec<_> = own
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.to_vec()))
                .collect();
            assert_eq!(handed, own);
        }
    }

    /// Merging into packed fields (they stay packed) gives what merging
    /// into the same fields as a map gives: replaced, added, removed, a
    /// missing one removed, one both set and removed (removed), the store's
    /// own entries dropped.
    #[test]
    fn packed_fields_merge_as_a_map_does() {
        let base: &[(&[u8], &[u8])] = &[(b".id", b"x"), (b"a", b"1"), (b"b", b"2"), (b"c", b"3")];
        let set = [
            ("b", Bytes::from_static(b"20")),
            ("d", Bytes::from_static(b"4")),
            ("e", Bytes::new()),
        ];
        let remove = ["a", "e", "missing"];
        let mut packed_fields = Fields::packed(packed(base), |_, _| Ok(())).unwrap();
        let mut map_fields = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        packed_fields.merge(&set, &remove);
        map_fields.merge(&set, &remove);
        assert!(matches!(packed_fields.0, Repr::Packed(_)), "still packed");
        assert_eq!(packed_fields, map_fields);
        assert_eq!(packed_fields, map(&[("b", "20"), ("c", "3"), ("d", "4")]));
        assert_eq!(packed_fields.get(".id"), None);
    }

    mod properties {
        use std::collections::BTreeMap;

        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        use super::*;

        fn field_map() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
            btree_map("[a-z_.]{0,12}|\\PC{0,8}", vec(any::<u8>(), 0..300), 0..24)
        }

        fn fields_of(map: &BTreeMap<String, Vec<u8>>) -> Fields {
            map.iter()
                .filter(|(name, _)| !name.starts_with('.'))
                .map(|(name, value)| (name.as_str(), Bytes::from(value.clone())))
                .collect()
        }

        proptest! {
            /// Any bytes read as a packed record: an error, or fields that
            /// can be read and iterated, never a panic.
            #[test]
            fn any_bytes_read_as_packed_fields_never_panic(bytes in vec(any::<u8>(), 0..600)) {
                if let Ok(fields) = Fields::packed(bytes.into(), |_, _| Ok(())) {
                    for (name, value) in fields.iter() {
                        let found = fields.get(name);
                        prop_assert_eq!(found.as_deref(), Some(value));
                    }
                }
            }

            /// Packing round-trips, and merging into packed fields gives
            /// what merging into a map gives.
            #[test]
            fn packing_round_trips_and_packed_merges_as_a_map(
                map in field_map(),
                set in field_map(),
                remove in vec("[a-z_]{0,12}", 0..8),
            ) {
                let fields = fields_of(&map);
                let packed = Fields::packed(fields.pack(&[(".id", b"x")]).into(), |_, _| Ok(())).unwrap();
                prop_assert_eq!(&packed, &fields);

                let set = fields_of(&set);
                let set: Vec<(&str, Bytes)> = set
                    .iter()
                    .map(|(name, value)| (name, Bytes::copy_from_slice(value)))
                    .collect();
                let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
                let (mut from_packed, mut from_map) = (packed, fields);
                from_packed.merge(&set, &remove);
                from_map.merge(&set, &remove);
                prop_assert_eq!(from_packed, from_map);
            }
        }
    }
}
