//! The sessions every benchmark uses: the same keys and values for `session`
//! (typed structs) and its peers (string keys, JSON values), at 4, 16, 20 and
//! 64 fields, so that every variant stores and reads the same thing.

use serde::Serialize;
use serde_json::{Map, Value};
use session::{Session, SessionData};

/// How many sessions the HTTP benchmarks seed and rotate through.
pub const SESSIONS: usize = 200;

/// The field counts a session struct exists for.
pub const FIELD_COUNTS: [usize; 4] = [4, 16, 20, 64];

/// A session struct of this crate, whatever its size: what the generic
/// handlers and benches need from it.
pub trait Profile: SessionData + Serialize + Send + Sync + 'static {
    /// Session `i`'s data: every field away from its default, so that all
    /// are stored.
    fn filled(i: usize) -> Self;

    /// Sets every field of `session` to session `i`'s data, through the
    /// generated setters.
    fn fill(session: &Session<Self>, i: usize);

    /// The `counter` field.
    fn counter(session: &Session<Self>) -> u64;

    /// Sets the `counter` field.
    fn set_counter(session: &Session<Self>, value: u64);
}

/// A field's value in session `i`, by its key: short strings and integers
/// like a web shop keeps, none at its default.
trait Fill {
    fn fill(key: &str, i: usize) -> Self;
}

impl Fill for String {
    fn fill(key: &str, i: usize) -> Self {
        match key {
            "user" => format!("user{i}"),
            "email" => format!("user{i}@example.com"),
            "display_name" => format!("User {i}"),
            "locale" => "en-GB".into(),
            "timezone" => "Europe/London".into(),
            "theme" => "dark".into(),
            "plan" => "pro".into(),
            "csrf_token" => "3q2-7wE9xk4PZf1Lr8mYtA".into(),
            "last_path" => "/cart".into(),
            "referrer" => "https://example.org/".into(),
            "currency" => "GBP".into(),
            "country" => "GB".into(),
            "language" => "en".into(),
            "avatar_url" => format!("/avatars/{i}.png"),
            "phone" => format!("+44 20 7946 {:04}", i % 10_000),
            // Other keys: a short value that names the key, like "view_mode-7".
            _ => format!("{key}-{}", i % 10),
        }
    }
}

impl Fill for u64 {
    fn fill(key: &str, i: usize) -> Self {
        match key {
            "user_id" => 1000 + i as u64,
            "counter" => 1,
            "login_at" | "last_seen_at" => 1_700_000_000,
            // Other keys: a small number that differs from key to key.
            _ => 2 + key.bytes().map(u64::from).sum::<u64>() % 97,
        }
    }
}

/// Declares session structs from lists of `field: Type => setter`, each
/// with its [`Profile`] impl.
macro_rules! profiles {
    ($(
        $(#[$doc:meta])*
        $name:ident { $($field:ident: $ty:ty => $set:ident,)* }
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Default, Serialize, Session)]
        pub struct $name {
            $(#[allow(missing_docs)] pub $field: $ty,)*
        }

        impl Profile for $name {
            fn filled(i: usize) -> Self {
                Self { $($field: Fill::fill(stringify!($field), i),)* }
            }

            fn fill(session: &Session<Self>, i: usize) {
                let data = Self::filled(i);
                $(session.$set(data.$field);)*
            }

            fn counter(session: &Session<Self>) -> u64 {
                session.counter()
            }

            fn set_counter(session: &Session<Self>, value: u64) {
                session.set_counter(value);
            }
        }
    )*};
}

profiles! {
    /// 4 keys: the smallest session the growth matrix measures.
    Profile4 {
        user: String => set_user,
        locale: String => set_locale,
        user_id: u64 => set_user_id,
        counter: u64 => set_counter,
    }

    /// 16 keys.
    Profile16 {
        user: String => set_user,
        email: String => set_email,
        display_name: String => set_display_name,
        locale: String => set_locale,
        timezone: String => set_timezone,
        theme: String => set_theme,
        plan: String => set_plan,
        csrf_token: String => set_csrf_token,
        user_id: u64 => set_user_id,
        visits: u64 => set_visits,
        cart_items: u64 => set_cart_items,
        page_size: u64 => set_page_size,
        unread: u64 => set_unread,
        role: u64 => set_role,
        login_at: u64 => set_login_at,
        counter: u64 => set_counter,
    }

    /// 20 keys: the session of the main matrix (and of the earlier benchmarks).
    Profile20 {
        user: String => set_user,
        email: String => set_email,
        display_name: String => set_display_name,
        locale: String => set_locale,
        timezone: String => set_timezone,
        theme: String => set_theme,
        plan: String => set_plan,
        csrf_token: String => set_csrf_token,
        last_path: String => set_last_path,
        referrer: String => set_referrer,
        user_id: u64 => set_user_id,
        visits: u64 => set_visits,
        cart_items: u64 => set_cart_items,
        page_size: u64 => set_page_size,
        unread: u64 => set_unread,
        role: u64 => set_role,
        login_at: u64 => set_login_at,
        tos_version: u64 => set_tos_version,
        experiment: u64 => set_experiment,
        counter: u64 => set_counter,
    }

    /// 64 keys: the largest session the growth matrix measures.
    Profile64 {
        user: String => set_user,
        email: String => set_email,
        display_name: String => set_display_name,
        locale: String => set_locale,
        timezone: String => set_timezone,
        theme: String => set_theme,
        plan: String => set_plan,
        csrf_token: String => set_csrf_token,
        last_path: String => set_last_path,
        referrer: String => set_referrer,
        user_id: u64 => set_user_id,
        visits: u64 => set_visits,
        cart_items: u64 => set_cart_items,
        page_size: u64 => set_page_size,
        unread: u64 => set_unread,
        role: u64 => set_role,
        login_at: u64 => set_login_at,
        tos_version: u64 => set_tos_version,
        experiment: u64 => set_experiment,
        currency: String => set_currency,
        country: String => set_country,
        language: String => set_language,
        device: String => set_device,
        browser: String => set_browser,
        os: String => set_os,
        landing_page: String => set_landing_page,
        utm_source: String => set_utm_source,
        utm_medium: String => set_utm_medium,
        utm_campaign: String => set_utm_campaign,
        search_query: String => set_search_query,
        sort_order: String => set_sort_order,
        view_mode: String => set_view_mode,
        last_product: String => set_last_product,
        wishlist_id: String => set_wishlist_id,
        coupon: String => set_coupon,
        shipping_method: String => set_shipping_method,
        payment_method: String => set_payment_method,
        avatar_url: String => set_avatar_url,
        company: String => set_company,
        job_title: String => set_job_title,
        phone: String => set_phone,
        cart_total: u64 => set_cart_total,
        order_count: u64 => set_order_count,
        last_order_id: u64 => set_last_order_id,
        points: u64 => set_points,
        level: u64 => set_level,
        age_days: u64 => set_age_days,
        failed_logins: u64 => set_failed_logins,
        mfa_method: u64 => set_mfa_method,
        notif_count: u64 => set_notif_count,
        items_per_row: u64 => set_items_per_row,
        last_seen_at: u64 => set_last_seen_at,
        consent_version: u64 => set_consent_version,
        region_id: u64 => set_region_id,
        store_id: u64 => set_store_id,
        warehouse_id: u64 => set_warehouse_id,
        segment: u64 => set_segment,
        score: u64 => set_score,
        streak: u64 => set_streak,
        invites: u64 => set_invites,
        credits: u64 => set_credits,
        quota: u64 => set_quota,
        api_calls: u64 => set_api_calls,
        counter: u64 => set_counter,
    }
}

/// Session `i`'s data at `fields` fields as string keys and JSON values, for
/// the peers' string-key APIs; `None` for a field count without a struct.
pub fn json_fields(fields: usize, i: usize) -> Option<Map<String, Value>> {
    let value = match fields {
        4 => serde_json::to_value(Profile4::filled(i)),
        16 => serde_json::to_value(Profile16::filled(i)),
        20 => serde_json::to_value(Profile20::filled(i)),
        64 => serde_json::to_value(Profile64::filled(i)),
        _ => return None,
    };
    match value.expect("plain strings and integers serialize") {
        Value::Object(map) => Some(map),
        _ => unreachable!("a struct serializes to an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_struct_has_its_field_count_and_no_default_value() {
        for fields in FIELD_COUNTS {
            let map = json_fields(fields, 7).unwrap();
            assert_eq!(map.len(), fields);
            assert_eq!(map["counter"], 1);
            for (key, value) in &map {
                assert!(
                    value != &Value::from(0) && value != &Value::from(""),
                    "{key} is at its default"
                );
            }
        }
    }
}
