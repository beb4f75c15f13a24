use crate::helpers::*;

#[tokio::test]
async fn swagger_ui_and_the_spec_are_served() {
    let app = spawn_app().await;
    for path in ["/docs", "/docs/"] {
        let a = app.get(path, None).await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
        assert!(a.text.contains("swagger"), "{path}");
    }
    let spec = app.get("/openapi.json", None).await;
    assert_eq!(spec.status, 200);
    let doc = spec.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["Bearer"]["type"], "http");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/token",
        "/api/token/refresh",
        "/api/token/verify",
        "/api/token/blacklist",
        "/api/v1/auth/jwt/create",
        "/api/v1/auth/jwt/refresh",
        "/api/v1/auth/jwt/verify",
        "/api/v1/auth/users",
        "/api/v1/auth/users/me",
    ] {
        let key = paths
            .keys()
            .find(|k| k.trim_end_matches('/') == p)
            .unwrap_or_else(|| panic!("{p} missing"));
        for (method, op) in paths[key].as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {p}");
            assert!(
                responses.keys().any(|s| s.starts_with('4')),
                "{method} {p} documents no errors"
            );
            if method == "post" {
                let content = op["requestBody"]["content"].as_object().unwrap();
                for ct in [
                    "application/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                ] {
                    assert!(content.contains_key(ct), "{p} lacks {ct}");
                }
            }
        }
    }
    let me = &paths
        .iter()
        .find(|(k, _)| k.trim_end_matches('/') == "/api/v1/auth/users/me")
        .unwrap()
        .1["get"];
    assert_eq!(me["security"][0]["Bearer"], serde_json::json!([]));
    assert!(me["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
}

#[tokio::test]
async fn the_root_points_to_the_docs() {
    let app = spawn_app().await;
    let a = app.get("/", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["docs"], "/docs");
    assert_eq!(a.json["openapi"], "/openapi.json");
    // A browser goes straight to Swagger UI.
    let a = Answer::from(
        app.client
            .get(app.url("/"))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/docs"));
    let docs = app.get("/docs", None).await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text.contains("swagger"),
        "{}",
        &docs.text[..200.min(docs.text.len())]
    );
}

#[tokio::test]
async fn the_document_teaches() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json", None).await;
    assert!(
        !served.text.contains(":null"),
        "no key made null by the polish"
    );
    let doc = served.json;
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "JWT",
            "Sliding tokens",
            "Users",
            "Opaque token",
            "Who am I",
            "Keys",
            "Groups",
            "Forward auth",
            "Operations"
        ]
    );
    let paths = doc["paths"].as_object().unwrap();
    // Djoser's spelling, with the slash.
    for p in [
        "/api/token/",
        "/api/v1/auth/users/me/",
        "/auth/token/login/",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    let mut described = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(
                op["description"].is_string(),
                "{method} {path} has no description"
            );
            assert!(op["operationId"].is_string(), "{method} {path}");
            described += 1;
        }
    }
    assert!(described >= 30);
    // Every tag an operation names is declared, in the declared style.
    for item in paths.values() {
        for op in item.as_object().unwrap().values() {
            for t in op["tags"].as_array().unwrap() {
                assert!(tags.contains(&t.as_str().unwrap()), "{t}");
            }
        }
    }
    // Forward auth: one entry, and Swagger UI can authorize it.
    let forward = paths["/api/v1/auth/forward/"].as_object().unwrap();
    assert_eq!(forward.len(), 1);
    assert_eq!(
        forward["get"]["security"],
        serde_json::json!([{"Bearer": []}, {"Token": []}, {"Cookie": []}])
    );
    // A body whose fields are all optional is not required.
    for method in ["put", "patch"] {
        assert_eq!(
            paths["/api/v1/auth/users/me/"][method]["requestBody"]["required"],
            false
        );
    }
    assert_eq!(
        paths["/api/token/"]["post"]["requestBody"]["required"],
        true
    );
    // Examples instead of "string", and the constraints the server enforces.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Credentials"]["example"]["username"], "alice");
    assert_eq!(
        schemas["UserCreate"]["properties"]["password"]["minLength"],
        8
    );
    assert_eq!(
        schemas["UserCreate"]["properties"]["username"]["maxLength"],
        150
    );
    // Each error status with the shape it really has.
    let obtain = &paths["/api/token/"]["post"]["responses"];
    assert_eq!(
        obtain["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TokenError"
    );
    assert_eq!(
        obtain["429"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Detail"
    );
    assert_eq!(
        paths["/api/v1/auth/users/me/"]["get"]["responses"]["401"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/Error"
    );
    // Swagger UI shows this same document.
    let ui = app.get("/docs", None).await.text;
    assert!(ui.contains(r#""/api/v1/auth/users/me/""#));
    assert!(ui.contains(r#""Opaque token""#));
}
