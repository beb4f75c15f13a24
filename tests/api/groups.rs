//! Groups and memberships: the staff endpoints, their errors, races, and
//! `tessera groups`.

use serde_json::json;

use crate::helpers::*;

/// A staff user's access token, and a plain user's id and access token.
async fn staff_and_user(app: &TestApp) -> (String, i64, String) {
    app.create_staff("boss").await;
    let (_, staff) = app.login("boss").await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    (staff, id, access)
}

#[tokio::test]
async fn only_staff_manage_groups() {
    let app = spawn_app().await;
    let (staff, id, access) = staff_and_user(&app).await;
    let g = app
        .call(
            "POST",
            "/api/v1/groups/",
            Some(&bearer(&staff)),
            Some(json!({"name": "ops"})),
        )
        .await;
    let gid = g.json["id"].as_i64().unwrap();
    let routes = [
        ("GET", "/api/v1/groups/".to_owned(), None),
        (
            "POST",
            "/api/v1/groups/".to_owned(),
            Some(json!({"name": "x"})),
        ),
        ("GET", format!("/api/v1/groups/{gid}/"), None),
        ("DELETE", format!("/api/v1/groups/{gid}/"), None),
        ("GET", format!("/api/v1/auth/users/{id}/groups/"), None),
        (
            "POST",
            format!("/api/v1/auth/users/{id}/groups/"),
            Some(json!({"name": "ops"})),
        ),
        (
            "DELETE",
            format!("/api/v1/auth/users/{id}/groups/ops/"),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        let a = app.call(method, path, None, body.clone()).await;
        assert_eq!(a.status, 401, "{method} {path}");
        assert_eq!(
            a.json,
            json!({"detail": "Authentication credentials were not provided."})
        );
        let a = app
            .call(method, path, Some(&bearer(&access)), body.clone())
            .await;
        assert_eq!(a.status, 403, "{method} {path}");
        assert_eq!(
            a.json,
            json!({"detail": "You do not have permission to perform this action."})
        );
        let key = app.token_login("alice", PASSWORD).await;
        let a = app
            .call(method, path, Some(&token(&key)), body.clone())
            .await;
        assert_eq!(a.status, 403, "{method} {path}, opaque key");
    }
    // Nothing was written by the refused requests.
    let a = app.get("/api/v1/groups/", Some(&bearer(&staff))).await;
    assert_eq!(a.json, json!([{"id": gid, "name": "ops"}]));
    let a = app
        .get(
            &format!("/api/v1/auth/users/{id}/groups/"),
            Some(&bearer(&staff)),
        )
        .await;
    assert_eq!(a.json, json!([]));
}

#[tokio::test]
async fn groups_are_created_read_and_deleted() {
    let app = spawn_app().await;
    let (staff, id, _) = staff_and_user(&app).await;
    let auth = Some(bearer(&staff));
    let auth = auth.as_deref();
    let create = |body: serde_json::Value| app.call("POST", "/api/v1/groups/", auth, Some(body));
    let ops = create(json!({"name": "  ops "})).await;
    assert_eq!(ops.status, 201, "{}", ops.text);
    assert_eq!(ops.json["name"], "ops", "trimmed, as DRF's CharField");
    let ops_id = ops.json["id"].as_i64().unwrap();
    let admin = create(json!({"name": "admin"})).await;
    assert_eq!(admin.status, 201);
    // Form bodies too, as every endpoint takes them.
    let a = app
        .client
        .post(app.url("/api/v1/groups/"))
        .header("authorization", bearer(&staff))
        .form(&[("name", "billing")])
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 201);
    let refused = [
        (
            json!({"name": "ops"}),
            "group with this name already exists.",
        ),
        (json!({"name": "   "}), "This field may not be blank."),
        (json!({}), "This field is required."),
        (json!({"name": null}), "This field may not be null."),
        (json!({"name": ["a"]}), "Not a valid string."),
        (
            json!({"name": "a\u{0}b"}),
            "Null characters are not allowed.",
        ),
        (
            json!({"name": "x".repeat(151)}),
            "Ensure this field has no more than 150 characters.",
        ),
        (
            json!({"name": "north,south"}),
            "Group names cannot contain commas or control characters.",
        ),
        (
            json!({"name": "tab\there"}),
            "Group names cannot contain commas or control characters.",
        ),
    ];
    for (body, message) in refused {
        let a = create(body.clone()).await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.json, json!({"name": [message]}), "{body}");
    }
    assert_eq!(create(json!({"name": "x".repeat(150)})).await.status, 201);
    let list = app.get("/api/v1/groups/", auth).await;
    let names: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "billing", "ops", &"x".repeat(150)],
        "by name"
    );

    let a = app.get(&format!("/api/v1/groups/{ops_id}/"), auth).await;
    assert_eq!(a.json, json!({"id": ops_id, "name": "ops"}));
    for missing in ["999999", "abc"] {
        let a = app.get(&format!("/api/v1/groups/{missing}/"), auth).await;
        assert_eq!(a.status, 404, "{missing}");
    }
    let a = app.get("/api/v1/groups/999999/", auth).await;
    assert_eq!(
        a.json,
        json!({"detail": "No Group matches the given query."})
    );

    // Deleting a group ends its memberships.
    let a = app
        .call(
            "POST",
            &format!("/api/v1/auth/users/{id}/groups/"),
            auth,
            Some(json!({"name": "ops"})),
        )
        .await;
    assert_eq!(a.status, 200);
    let a = app
        .call("DELETE", &format!("/api/v1/groups/{ops_id}/"), auth, None)
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(a.text, "");
    let a = app
        .call("DELETE", &format!("/api/v1/groups/{ops_id}/"), auth, None)
        .await;
    assert_eq!(a.status, 404);
    let a = app
        .get(&format!("/api/v1/auth/users/{id}/groups/"), auth)
        .await;
    assert_eq!(a.json, json!([]));
}

#[tokio::test]
async fn memberships_are_added_and_removed() {
    let app = spawn_app().await;
    let (staff, id, _) = staff_and_user(&app).await;
    let auth = Some(bearer(&staff));
    let auth = auth.as_deref();
    for name in ["ops", "admin"] {
        app.call("POST", "/api/v1/groups/", auth, Some(json!({"name": name})))
            .await;
    }
    let path = format!("/api/v1/auth/users/{id}/groups/");
    let add = |name: &'static str| app.call("POST", &path, auth, Some(json!({"name": name})));
    let a = add("ops").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json.as_array().unwrap().len(), 1);
    assert_eq!(a.json[0]["name"], "ops");
    let a = add("admin").await;
    let names: Vec<&str> = a
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ops"]);
    // Again: nothing changes.
    let again = add("ops").await;
    assert_eq!((again.status.as_u16(), &again.json), (200, &a.json));
    let a = add("nope").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json,
        json!({"name": ["Object with name=nope does not exist."]})
    );
    let a = app.call("POST", &path, auth, Some(json!({}))).await;
    assert_eq!(a.json, json!({"name": ["This field is required."]}));
    for missing in ["999999", "abc"] {
        let a = app
            .call(
                "POST",
                &format!("/api/v1/auth/users/{missing}/groups/"),
                auth,
                Some(json!({"name": "ops"})),
            )
            .await;
        assert_eq!(a.status, 404, "{missing}");
        let a = app
            .get(&format!("/api/v1/auth/users/{missing}/groups/"), auth)
            .await;
        assert_eq!(a.status, 404, "{missing}");
    }
    let a = app.get(&path, auth).await;
    assert_eq!(a.json.as_array().unwrap().len(), 2);

    let (ops, nope) = (format!("{path}ops/"), format!("{path}nope/"));
    let a = app.call("DELETE", &ops, auth, None).await;
    assert_eq!(a.status, 204, "{}", a.text);
    let a = app.call("DELETE", &ops, auth, None).await;
    assert_eq!(a.status, 404, "not a member any more");
    assert_eq!(
        a.json,
        json!({"detail": "No Group matches the given query."})
    );
    assert_eq!(app.call("DELETE", &nope, auth, None).await.status, 404);
    // Names no group can have are 404 too, before any query.
    for odd in ["a%00b", &"x".repeat(151)] {
        let a = app
            .call("DELETE", &format!("{path}{odd}/"), auth, None)
            .await;
        assert_eq!(a.status, 404, "{}", a.text);
    }
    let a = app.get(&path, auth).await;
    assert_eq!(a.json[0]["name"], "admin");
    assert_eq!(a.json.as_array().unwrap().len(), 1);
    // A deleted user's memberships go with them.
    app.delete_user(id).await;
    let left = app.service.group_names(id).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn concurrent_creations_and_adds_write_once() {
    let app = spawn_app().await;
    let (staff, id, _) = staff_and_user(&app).await;
    app.warm_connections(8).await;
    let auth = bearer(&staff);
    let creations = (0..8).map(|_| {
        app.call(
            "POST",
            "/api/v1/groups/",
            Some(&auth),
            Some(json!({"name": "ops"})),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(creations)
        .await
        .iter()
        .map(|a| a.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
    let path = format!("/api/v1/auth/users/{id}/groups/");
    let adds = (0..8).map(|_| app.call("POST", &path, Some(&auth), Some(json!({"name": "ops"}))));
    for a in futures::future::join_all(adds).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }
    assert_eq!(app.service.group_names(id).await.unwrap(), ["ops"]);
}

#[tokio::test]
async fn the_command_line_manages_groups() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
        ("TESSERA__LOG__LEVEL", "warn"),
        ("TESSERA_PASSWORD", PASSWORD),
    ];
    let run = |args: &[&str]| {
        let o = tessera(dir.path(), &env).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&[
        "createsuperuser",
        "--username",
        "root",
        "--email",
        "root@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    for name in ["ops", "admin"] {
        let (code, _, err) = run(&["groups", "create", name]);
        assert_eq!(code, Some(0), "{err}");
    }
    let (code, _, err) = run(&["groups", "create", "ops"]);
    assert_eq!(code, Some(2), "taken: {err}");
    assert!(
        err.contains("group with this name already exists."),
        "{err}"
    );
    let (code, _, err) = run(&["groups", "create", "a,b"]);
    assert_eq!(code, Some(2), "{err}");
    let (_, out, _) = run(&["groups", "list"]);
    assert_eq!(out, "admin\nops\n");
    // A typo among the names adds none of them.
    let (code, _, err) = run(&["groups", "add", "root", "ops", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    let (_, out, _) = run(&["groups", "show", "root"]);
    assert_eq!(out, "", "nothing added");
    let (code, _, err) = run(&["groups", "add", "root", "ops", "admin"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["groups", "show", "root"]);
    assert_eq!(out, "admin\nops\n");
    let (code, _, err) = run(&["groups", "create", "  "]);
    assert_eq!(code, Some(2), "blank: {err}");
    assert!(err.contains("This field may not be blank."), "{err}");
    let (code, _, err) = run(&["groups", "add", "root", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Object with name=nope does not exist."),
        "{err}"
    );
    let (code, _, err) = run(&["groups", "add", "nobody", "ops"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no user named \"nobody\""), "{err}");
    let (code, _, err) = run(&["groups", "remove", "root", "ops"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["groups", "remove", "root", "ops"]);
    assert_eq!(code, Some(2), "not a member: {err}");
    let (code, _, err) = run(&["groups", "delete", "admin"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["groups", "show", "root"]);
    assert_eq!(out, "");
    let (code, _, _) = run(&["groups", "delete", "admin"]);
    assert_eq!(code, Some(2));
    let (_, out, _) = run(&["groups", "list"]);
    assert_eq!(out, "ops\n");
}
