/// The methods `Session<T>` defines itself, in `session/src/handle.rs`. An
/// accessor of the same name would be shadowed by them. The workspace test
/// `handle_methods_match_the_derive` fails when this list and that file
/// disagree.
pub(crate) const SESSION_METHODS: &[&str] = &[
    "is_new",
    "destroy",
    "regenerate",
    "touch",
    "clear",
    "set_max_age",
    "max_age",
    "expires_at",
    "owner",
    "set_owner",
    "public_id",
    "owner_sessions",
    "revoke_other_sessions",
    "save",
];
