//! What string fields accept, as DRF's `CharField` and Django's user model
//! do: no NUL character, integers with every digit, usernames in NFKC.

use serde_json::json;

use crate::helpers::*;

const NO_NUL: &str = "Null characters are not allowed.";

fn nul_error(a: &Answer, field: &str) {
    assert_eq!(a.status, 400, "{field}: {}", a.text);
    assert_eq!(a.json, json!({ field: [NO_NUL] }), "{field}");
}

#[tokio::test]
async fn a_nul_character_is_a_field_error_never_a_query() {
    let app = spawn_app().await;
    app.register("bob").await;
    let (refresh, access) = app.login("bob").await;
    for path in [
        "/api/token/",
        "/api/v1/auth/jwt/create/",
        "/auth/token/login/",
    ] {
        let a = app
            .post_json(path, json!({"username": "bob\u{0}", "password": "x"}))
            .await;
        nul_error(&a, "username");
        nul_error(
            &app.post_form(path, &[("username", "bob\0"), ("password", "x")])
                .await,
            "username",
        );
        nul_error(
            &app.post_multipart(path, &[("username", "bob"), ("password", "x\0y")])
                .await,
            "password",
        );
    }
    // The raw form body, as the review sent it.
    nul_error(
        &app.post_raw(
            "/api/token/",
            Some("application/x-www-form-urlencoded"),
            "username=bob%00&password=x",
        )
        .await,
        "username",
    );
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": "carol", "password": "Tr0ub4dor\u{0}_3xyz"}),
        )
        .await;
    nul_error(&a, "password");
    for (path, field) in [
        ("/api/token/refresh/", "refresh"),
        ("/api/token/verify/", "token"),
        ("/api/token/blacklist/", "refresh"),
    ] {
        let a = app
            .post_json(path, json!({ field: format!("{refresh}\u{0}") }))
            .await;
        nul_error(&a, field);
    }
    let a = app
        .call(
            "POST",
            "/api/v1/auth/users/set_username/",
            Some(&bearer(&access)),
            Some(json!({"current_password": PASSWORD, "new_username": "b\u{0}b"})),
        )
        .await;
    nul_error(&a, "new_username");
    let a = app
        .call(
            "PATCH",
            "/api/v1/auth/users/me/",
            Some(&bearer(&access)),
            Some(json!({"email": "b\u{0}b@example.com"})),
        )
        .await;
    nul_error(&a, "email");
    // Nothing was written: bob is still bob, and carol does not exist.
    assert_eq!(app.me(&access).await.json["username"], "bob");
    assert_eq!(app.me(&access).await.json["email"], "bob@example.com");
    let a = app
        .post_json(
            "/api/token/",
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn a_large_json_integer_keeps_every_digit() {
    let app = spawn_app().await;
    let digits = "123456789012345678901234567890";
    let created = app
        .post_raw(
            "/api/v1/auth/users/",
            Some("application/json"),
            &format!(r#"{{"username": {digits}, "password": "{PASSWORD}"}}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["username"], digits);
    for username in [digits.to_owned(), format!("-{digits}")] {
        let login = app
            .post_raw(
                "/api/token/",
                Some("application/json"),
                &format!(r#"{{"username": {username}, "password": "{PASSWORD}"}}"#),
            )
            .await;
        let expected = if username == digits { 200 } else { 401 };
        assert_eq!(login.status, expected, "{username}: {}", login.text);
    }
    // A float is still read as Python prints it.
    let a = app
        .post_raw(
            "/api/v1/auth/users/",
            Some("application/json"),
            &format!(r#"{{"username": 1.5, "password": "{PASSWORD}"}}"#),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["username"], "1.5");
}

#[tokio::test]
async fn usernames_are_nfkc_normalized_everywhere() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    app.register("ADMIN").await;
    let taken = json!({"username": ["A user with that username already exists."]});
    for fullwidth in ["ａｌｉｃｅ", "ＡＤＭＩＮ"] {
        let a = app
            .post_json(
                "/api/v1/auth/users/",
                json!({"username": fullwidth, "password": PASSWORD}),
            )
            .await;
        assert_eq!((a.status.as_u16(), &a.json), (400, &taken), "{fullwidth}");
    }
    // A new name is stored normalized.
    let bob = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": "ｂｏｂ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.text);
    assert_eq!(bob.json["username"], "bob");
    // Login finds the normalized name, with both kinds of credentials.
    let login = app
        .post_json(
            "/api/token/",
            json!({"username": "ａｌｉｃｅ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(
        claims(login.json["access"].as_str().unwrap())["user_id"],
        alice.to_string()
    );
    app.token_login("ａｌｉｃｅ", PASSWORD).await;
    // set_username: taken in another width, stored normalized.
    let access = login.json["access"].as_str().unwrap();
    let auth = bearer(access);
    let set = |name: &'static str| {
        app.call(
            "POST",
            "/api/v1/auth/users/set_username/",
            Some(&auth),
            Some(json!({"current_password": PASSWORD, "new_username": name})),
        )
    };
    let a = set("ＡＤＭＩＮ").await;
    assert_eq!(
        (a.status.as_u16(), &a.json),
        (
            400,
            &json!({"new_username": ["A user with that username already exists."]})
        )
    );
    assert_eq!(set("ｃａｒｏｌ").await.status, 204);
    assert_eq!(app.me(access).await.json["username"], "carol");
    app.login("carol").await;
    // The service's own registration (createsuperuser's path) too.
    let staff = app
        .service
        .register(
            tessera::app::Registration {
                username: Some("ｓｔａｆｆ".into()),
                email: Some(String::new()),
                password: Some(PASSWORD.into()),
                password_retype: None,
                superuser: true,
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(staff.username, "staff");
    // The rules see the name that would be stored: U+FDFA is one letter
    // that NFKC turns into 18 characters with spaces.
    let long = "\u{FDFA}".repeat(9);
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": long, "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let problems = a.json["username"].as_array().unwrap();
    assert!(
        problems.contains(&json!("Ensure this field has no more than 150 characters.")),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn names_stored_before_normalization_are_normalized_by_a_migration() {
    use migration::MigratorTrait;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    app.register("ADMIN").await;
    let db = app.service.database();
    // As an older Tessera stored them, unnormalized.
    let mut ids = Vec::new();
    for (placeholder, stored) in [
        ("dave", "ｃａｒｏｌ"),
        ("erin", "ＡＤＭＩＮ"),
        ("frank", "𝐜𝐚𝐫𝐨𝐥"),
    ] {
        ids.push(app.register(placeholder).await["id"].as_i64().unwrap());
        entity::users::Entity::update_many()
            .col_expr(
                entity::users::Column::Username,
                sea_orm::sea_query::Expr::value(stored),
            )
            .filter(entity::users::Column::Username.eq(placeholder))
            .exec(db)
            .await
            .unwrap();
    }
    // The normalization migration, run again over those rows.
    // Down to before it (the later migrations go and come back too).
    let back = migration::Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name().contains("normalize_usernames"))
        .unwrap()
        + 1;
    migration::Migrator::down(db, Some(back as u32))
        .await
        .unwrap();
    migration::Migrator::up(db, None).await.unwrap();
    let name = |id: i64| async move {
        entity::users::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .username
    };
    assert_eq!(name(ids[0]).await, "carol", "normalized");
    assert_eq!(
        name(ids[1]).await,
        "ＡＤＭＩＮ",
        "ADMIN is taken: left for an operator"
    );
    assert_eq!(
        name(ids[2]).await,
        "𝐜𝐚𝐫𝐨𝐥",
        "carol is now taken by the older account"
    );
    let a = app
        .post_json(
            "/api/token/",
            json!({"username": "ｃａｒｏｌ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        claims(a.json["access"].as_str().unwrap())["user_id"],
        ids[0].to_string()
    );
}
