//! Djoser's user endpoints, with both kinds of credentials.

use serde_json::json;

use crate::helpers::*;

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";

#[tokio::test]
async fn list_shows_staff_everyone_and_others_themselves() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    let admin = app.create_staff("admin").await;
    let (_, alice_access) = app.login("alice").await;
    let a = app
        .get("/api/v1/auth/users/", Some(&bearer(&alice_access)))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json,
        json!([{"email": "alice@example.com", "id": alice, "username": "alice"}])
    );
    let admin_key = app.token_login("admin", PASSWORD).await;
    let a = app
        .get("/api/v1/auth/users/", Some(&token(&admin_key)))
        .await;
    let ids: Vec<i64> = a
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![alice, bob, admin]);
    app.get("/api/v1/auth/users/", None)
        .await
        .assert_401(json!({"detail": NOT_PROVIDED}));
}

#[tokio::test]
async fn me_read_update_with_either_credential() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    for auth in [bearer(&access), token(&key), format!("token {key}")] {
        let a = app.get("/api/v1/auth/users/me/", Some(&auth)).await;
        assert_eq!(
            a.json,
            json!({"email": "alice@example.com", "id": id, "username": "alice"}),
            "{auth}"
        );
    }
    // PUT: email changes, username is read-only and ignored.
    let a = app
        .call(
            "PUT",
            "/api/v1/auth/users/me/",
            Some(&bearer(&access)),
            Some(json!({"email": "alice2@example.com", "username": "hacker"})),
        )
        .await;
    assert_eq!(
        a.json,
        json!({"email": "alice2@example.com", "id": id, "username": "alice"})
    );
    let a = app
        .call(
            "PUT",
            "/api/v1/auth/users/me/",
            Some(&token(&key)),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json["email"].clone()),
        (200, json!("alice2@example.com"))
    );
    let form = reqwest::multipart::Form::new().text("email", "alice3@example.com");
    let a = Answer::from(
        app.client
            .patch(app.url("/api/v1/auth/users/me"))
            .header("authorization", bearer(&access))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.json["email"], "alice3@example.com");
    let a = app
        .call(
            "PATCH",
            "/api/v1/auth/users/me/",
            Some(&bearer(&access)),
            Some(json!({"email": "bad"})),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"email": ["Enter a valid email address."]}))
    );
    app.call(
        "PATCH",
        "/api/v1/auth/users/me/",
        None,
        Some(json!({"email": "a@b.co"})),
    )
    .await
    .assert_401(json!({"detail": NOT_PROVIDED}));
    let a = app
        .call(
            "POST",
            "/api/v1/auth/users/me/",
            Some(&bearer(&access)),
            None,
        )
        .await;
    assert_eq!(a.status, 405);
    // The refused PATCH wrote nothing.
    let a = app.get("/api/v1/auth/users/me/", Some(&token(&key))).await;
    assert_eq!(a.json["email"], "alice3@example.com");
}

#[tokio::test]
async fn users_by_id_follow_hide_users() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    app.create_staff("admin").await;
    let (_, access) = app.login("alice").await;
    let (_, admin) = app.login("admin").await;
    let me = bearer(&access);
    let a = app
        .get(&format!("/api/v1/auth/users/{alice}/"), Some(&me))
        .await;
    assert_eq!(
        a.json,
        json!({"email": "alice@example.com", "id": alice, "username": "alice"})
    );
    let cases = [
        (format!("/api/v1/auth/users/{bob}/"), "Not found."),
        (
            "/api/v1/auth/users/99999/".to_owned(),
            "No User matches the given query.",
        ),
        ("/api/v1/auth/users/abc/".to_owned(), "Not found."),
    ];
    for (path, detail) in &cases {
        let a = app.get(path, Some(&me)).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (404, json!({ "detail": detail })),
            "{path}"
        );
    }
    let a = app
        .get(&format!("/api/v1/auth/users/{bob}/"), Some(&bearer(&admin)))
        .await;
    assert_eq!(a.json["username"], "bob");
    app.get(&format!("/api/v1/auth/users/{alice}/"), None)
        .await
        .assert_401(json!({"detail": NOT_PROVIDED}));
    let a = app
        .call(
            "PATCH",
            &format!("/api/v1/auth/users/{alice}/"),
            Some(&me),
            Some(json!({"email": "alice4@example.com"})),
        )
        .await;
    assert_eq!(a.json["email"], "alice4@example.com");
    let a = Answer::from(
        app.client
            .put(app.url(&format!("/api/v1/auth/users/{alice}/")))
            .header("authorization", &me)
            .form(&[("email", "alice5@example.com")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.json["email"], "alice5@example.com");
    let a = app
        .call(
            "PATCH",
            &format!("/api/v1/auth/users/{bob}/"),
            Some(&me),
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (404, json!({"detail": "Not found."}))
    );
    let a = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/users/{bob}/"),
            Some(&me),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    let a = app
        .call(
            "POST",
            &format!("/api/v1/auth/users/{alice}/"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(a.status, 405);
    // Staff may delete anyone, confirming with their own password.
    let a = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/users/{bob}/"),
            Some(&bearer(&admin)),
            Some(json!({"current_password": "wrong"})),
        )
        .await;
    assert_eq!(a.json, json!({"current_password": ["Invalid password."]}));
    let a = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/users/{bob}/"),
            Some(&bearer(&admin)),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (204, ""));
    let a = app
        .get(&format!("/api/v1/auth/users/{bob}/"), Some(&bearer(&admin)))
        .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn set_password_validates_then_revokes() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    let other_key = app.token_login("alice", PASSWORD).await;
    let path = "/api/v1/auth/users/set_password/";
    app.post_form(path, &[("new_password", "x"), ("current_password", "y")])
        .await
        .assert_401(json!({"detail": NOT_PROVIDED}));
    let me = bearer(&access);
    let cases = [
        (
            json!({}),
            json!({"new_password": ["This field is required."], "current_password": ["This field is required."]}),
        ),
        (
            json!({"current_password": "wrong", "new_password": "An0ther-Good-Pass"}),
            json!({"current_password": ["Invalid password."]}),
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "1234"}),
            json!({"new_password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ]}),
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "alice1234"}),
            json!({"new_password": ["The password is too similar to the username."]}),
        ),
        (
            json!({"current_password": "wrong", "new_password": "1234"}),
            json!({"current_password": ["Invalid password."]}),
        ),
    ];
    for (body, expected) in cases {
        let a = app.call("POST", path, Some(&me), Some(body.clone())).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (400, expected),
            "{body}"
        );
    }
    // Nothing was revoked by the refused attempts.
    assert_eq!(app.refresh(&refresh).await.status, 200);
    assert_eq!(
        app.get("/api/v1/auth/users/me/", Some(&token(&key)))
            .await
            .status,
        200
    );

    let a = app
        .call(
            "POST",
            path,
            Some(&me),
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Good-Pass"})),
        )
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (204, ""));
    // Access tokens live until they expire: the price of stateless checks.
    assert_eq!(app.me(&access).await.status, 200);
    // Every opaque key ends at once, and older refresh tokens are refused.
    for k in [&key, &other_key] {
        app.get("/api/v1/auth/users/me/", Some(&token(k)))
            .await
            .assert_401(json!({"detail": "Invalid token."}));
    }
    app.refresh(&refresh).await.assert_401(
        json!({"detail": "The user's password has been changed.", "code": "password_changed"}),
    );
    // The old password no longer logs in; the new one does, and its tokens work.
    let a = app
        .post_form(
            "/api/token/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, 401);
    let a = app
        .post_form(
            "/api/token/",
            &[("username", "alice"), ("password", "An0ther-Good-Pass")],
        )
        .await;
    assert_eq!(a.status, 200);
    let new_refresh = a.json["refresh"].as_str().unwrap();
    assert_eq!(
        app.refresh(new_refresh).await.status,
        200,
        "a login right after the change is not revoked"
    );
    let new_key = app.token_login("alice", "An0ther-Good-Pass").await;
    assert_eq!(
        app.get("/api/v1/auth/users/me/", Some(&token(&new_key)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn set_username() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    app.register("bob").await;
    let (_, access) = app.login("alice").await;
    let me = bearer(&access);
    let path = "/api/v1/auth/users/set_username/";
    let cases = [
        (
            json!({}),
            json!({"current_password": ["This field is required."], "new_username": ["This field is required."]}),
        ),
        (
            json!({"current_password": "wrong", "new_username": "alice_new"}),
            json!({"current_password": ["Invalid password."]}),
        ),
        (
            json!({"current_password": PASSWORD, "new_username": "bob"}),
            json!({"new_username": ["A user with that username already exists."]}),
        ),
        (
            json!({"current_password": PASSWORD, "new_username": "bad name"}),
            json!({"new_username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."]}),
        ),
    ];
    for (body, expected) in cases {
        let a = app.call("POST", path, Some(&me), Some(body.clone())).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (400, expected),
            "{body}"
        );
    }
    app.post_form(path, &[("current_password", "x"), ("new_username", "y")])
        .await
        .assert_401(json!({"detail": NOT_PROVIDED}));
    let a = app
        .call(
            "POST",
            path,
            Some(&me),
            Some(json!({"current_password": PASSWORD, "new_username": "alice_new"})),
        )
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (204, ""));
    // The JWT names the user by id, so it still works and shows the new name.
    let a = app.get("/api/v1/whoami/", Some(&me)).await;
    assert_eq!(a.json, json!({"id": id, "username": "alice_new"}));
    app.login("alice_new").await;
}

#[tokio::test]
async fn delete_me_ends_every_credential() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    let path = "/api/v1/auth/users/me/";
    let a = app.call("DELETE", path, Some(&bearer(&access)), None).await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (
            400,
            json!({"current_password": ["This field is required."]})
        )
    );
    let a = app
        .call(
            "DELETE",
            path,
            Some(&bearer(&access)),
            Some(json!({"current_password": "nope"})),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"current_password": ["Invalid password."]}))
    );
    app.call("DELETE", path, None, None)
        .await
        .assert_401(json!({"detail": NOT_PROVIDED}));
    let a = app
        .call(
            "DELETE",
            path,
            Some(&token(&key)),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (204, ""));
    app.me(&access)
        .await
        .assert_401(json!({"detail": "User not found", "code": "user_not_found"}));
    app.get(path, Some(&token(&key)))
        .await
        .assert_401(json!({"detail": "Invalid token."}));
    app.refresh(&refresh)
        .await
        .assert_401(json!({"detail": "No active account found for the given token.", "code": "no_active_account"}));
}

#[tokio::test]
async fn registration_runs_djangos_password_validators() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "erin", "password": "password123"}),
            json!({"password": ["This password is too common."]}),
        ),
        (
            json!({"username": "johnsmith77", "password": "johnsmith77!"}),
            json!({"password": ["The password is too similar to the username."]}),
        ),
        (
            json!({"username": "frank", "email": "zebracorn@example.com", "password": "zebracorn1"}),
            json!({"password": ["The password is too similar to the email address."]}),
        ),
        (
            json!({"username": "erin", "password": "123"}),
            json!({"password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ]}),
        ),
    ];
    for (body, expected) in cases {
        let a = app.post_json("/api/v1/auth/users/", body.clone()).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (400, expected),
            "{body}"
        );
    }
}
