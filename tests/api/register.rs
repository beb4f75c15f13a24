use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_in_every_body_format() {
    let app = spawn_app().await;
    let a = app
        .post_multipart(
            "/api/v1/auth/users/",
            &[
                ("email", "alice@example.com"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.text,
        format!(
            r#"{{"email":"alice@example.com","username":"alice","id":{}}}"#,
            a.json["id"]
        )
    );
    let a = app
        .post_form(
            "/api/v1/auth/users/",
            &[
                ("email", "bob@example.com"),
                ("username", "bob"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json["username"].clone()),
        (201, json!("bob"))
    );
    // Email is optional; JSON with a charset parameter is JSON.
    let a = app
        .post_raw(
            "/api/v1/auth/users",
            Some("application/json; charset=utf-8"),
            &json!({"username": "carol", "password": PASSWORD}).to_string(),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["email"], "");
    // The password is stored as an argon2id hash, never as sent.
    let row = entity::users::Entity::find_by_id(a.json["id"].as_i64().unwrap())
        .one(app.service.database())
        .await
        .unwrap()
        .unwrap();
    assert!(row.password.starts_with("$argon2id$"), "{}", row.password);
    assert!(row.is_active && !row.is_staff && !row.is_superuser);
    app.login("carol").await;
}

#[tokio::test]
async fn privileged_fields_are_ignored() {
    let app = spawn_app().await;
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": "mallory", "password": PASSWORD, "is_staff": true, "is_superuser": true, "id": 999}),
        )
        .await;
    assert_eq!(a.status, 201);
    assert_ne!(a.json["id"], 999);
    let row = entity::users::Entity::find_by_id(a.json["id"].as_i64().unwrap())
        .one(app.service.database())
        .await
        .unwrap()
        .unwrap();
    assert!(!row.is_staff && !row.is_superuser);
}

#[tokio::test]
async fn field_errors_as_djoser_gives_them() {
    let app = spawn_app().await;
    app.register("alice").await;
    let long = "u".repeat(151);
    let cases: Vec<(serde_json::Value, serde_json::Value)> = vec![
        (
            json!({}),
            json!({"username": ["This field is required."], "password": ["This field is required."]}),
        ),
        (
            json!({"username": "dave"}),
            json!({"password": ["This field is required."]}),
        ),
        (
            json!({"username": "", "password": ""}),
            json!({"username": ["This field may not be blank."], "password": ["This field may not be blank."]}),
        ),
        (
            json!({"username": "alice", "password": PASSWORD}),
            json!({"username": ["A user with that username already exists."]}),
        ),
        (
            json!({"username": "erin", "password": "Xy7#q"}),
            json!({"password": ["This password is too short. It must contain at least 8 characters."]}),
        ),
        (
            json!({"username": "erin", "password": "83920174652"}),
            json!({"password": ["This password is entirely numeric."]}),
        ),
        (
            json!({"username": "erin", "email": "not-an-email", "password": PASSWORD}),
            json!({"email": ["Enter a valid email address."]}),
        ),
        (
            json!({"username": "bad user!", "password": PASSWORD}),
            json!({"username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."]}),
        ),
        (
            json!({"username": long, "password": PASSWORD}),
            json!({"username": ["Ensure this field has no more than 150 characters."]}),
        ),
        // Field errors first; password rules only once the fields are valid.
        (
            json!({"username": "erin", "email": "nope", "password": "123"}),
            json!({"email": ["Enter a valid email address."]}),
        ),
        (
            json!({"username": "alice", "password": "123"}),
            json!({"username": ["A user with that username already exists."]}),
        ),
    ];
    for (body, expected) in cases {
        let a = app.post_json("/api/v1/auth/users/", body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert_eq!(a.json, expected, "{body}");
    }
    // Nothing was written by the refused requests.
    let count = entity::users::Entity::find()
        .all(app.service.database())
        .await
        .unwrap()
        .len();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn usernames_are_case_sensitive() {
    let app = spawn_app().await;
    app.register("alice").await;
    let a = app
        .post_form(
            "/api/v1/auth/users/",
            &[("username", "Alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.json["username"], "Alice");
}

#[tokio::test]
async fn registering_while_authenticated_is_allowed() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let a = Answer::from(
        app.client
            .post(app.url("/api/v1/auth/users/"))
            .header("authorization", format!("Bearer {access}"))
            .form(&[("username", "hank"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 201);
}
