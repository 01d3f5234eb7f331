use super::*;
use crate::auth::tests::mint;
use crate::model::{BadToken, Forge, JwtAlg};
use serde_json::json;

fn token() -> Token {
    mint(JwtAlg::Hs256, None)
}

fn missing() -> Token {
    mint(
        JwtAlg::Hs256,
        Some(Forge::Bad {
            name: BadToken::Missing,
        }),
    )
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

const URL: &str = "ws://127.0.0.1:1/ws";

#[test]
fn header_placement_sets_bearer() {
    let t = token();
    let p = Placement::Header {
        name: "Authorization".into(),
        prefix: "Bearer ".into(),
    };
    let req = attach(URL, &p, &t).unwrap();
    assert_eq!(
        header(&req, "authorization").unwrap(),
        format!("Bearer {}", t.expose())
    );
}

#[test]
fn custom_header_carries_the_bare_token() {
    let t = token();
    let p = Placement::Header {
        name: "X-Auth-Token".into(),
        prefix: String::new(),
    };
    let req = attach(URL, &p, &t).unwrap();
    assert_eq!(header(&req, "x-auth-token").unwrap(), t.expose());
    assert_eq!(header(&req, "authorization"), None);
}

#[test]
fn query_placement_appends_parameter() {
    let t = token();
    let p = Placement::Query {
        param: "token".into(),
    };
    let req = attach("ws://127.0.0.1:1/ws?x=1", &p, &t).unwrap();
    assert_eq!(
        req.uri().query().unwrap(),
        format!("x=1&token={}", t.expose())
    );
    // An opaque token is percent-encoded: `+`, `&`, `=`, `%`, `/` and spaces arrive as
    // written, not as a space, a second parameter or a decoded byte.
    let opaque = t.with_value("opaque+A/B=C&D%EF x~y".into());
    let req = attach("ws://127.0.0.1:1/ws", &p, &opaque).unwrap();
    assert_eq!(
        req.uri().query().unwrap(),
        "token=opaque%2BA%2FB%3DC%26D%25EF%20x~y"
    );
}

#[test]
fn subprotocol_placement_offers_protocol_then_token() {
    let t = token();
    let p = Placement::Subprotocol {
        offer: vec!["jwt-auth".into()],
        prefix: "jwt.".into(),
    };
    let req = attach(URL, &p, &t).unwrap();
    assert_eq!(
        header(&req, "sec-websocket-protocol").unwrap(),
        format!("jwt-auth, jwt.{}", t.expose())
    );
}

#[test]
fn cookie_placement_sets_or_appends_the_cookie() {
    let t = token();
    let p = Placement::Cookie {
        name: "session".into(),
    };
    let req = attach(URL, &p, &t).unwrap();
    assert_eq!(
        header(&req, "cookie").unwrap(),
        format!("session={}", t.expose())
    );
    let extras = UpgradeExtras {
        headers: vec![("Cookie".into(), "theme=dark".into())],
        origin: None,
        ..Default::default()
    };
    let req = attach_with(URL, &p, &extras, &t).unwrap();
    assert_eq!(
        header(&req, "cookie").unwrap(),
        format!("theme=dark; session={}", t.expose())
    );
}

#[test]
fn first_message_puts_nothing_on_the_upgrade() {
    let t = token();
    let template = json!({"type": "connection_init", "payload": {"token": "{{token}}", "n": 1, "list": ["Bearer {{ token }}", "{{other}}"]}});
    let p = Placement::FirstMessage {
        template,
        text: false,
        after: None,
    };
    let req = attach(URL, &p, &t).unwrap();
    let plain = attach(URL, &Placement::None, &t).unwrap();
    let names = |r: &Request| {
        r.headers()
            .iter()
            .filter(|(n, _)| *n != "sec-websocket-key")
            .map(|(n, v)| format!("{n}: {v:?}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&req), names(&plain));
    assert_eq!(req.uri(), plain.uri());
    let text = first_message(&p, &t).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = json!({"type": "connection_init", "payload": {"token": t.expose(), "n": 1, "list": [format!("Bearer {}", t.expose()), "{{other}}"]}});
    assert_eq!(sent, expected);
    assert_eq!(first_message(&Placement::None, &t), None);
    assert_eq!(first_message(&p, &missing()), None);
}

#[test]
fn fill_str_edge_cases() {
    assert_eq!(fill_str("a{{token}}b{{token}}", "T"), "aTbT");
    assert_eq!(fill_str("{{ token }}", "T"), "T");
    assert_eq!(fill_str("{{token", "T"), "{{token");
    assert_eq!(fill_str("{{x}}{{token}}}}", "T"), "{{x}}T}}");
    assert_eq!(fill_str("é{{token}}ü", "T"), "éTü");
}

#[test]
fn extra_headers_and_origin_are_applied_and_placement_wins() {
    let t = token();
    let extras = UpgradeExtras {
        headers: vec![
            ("X-Client".into(), "stampede".into()),
            ("Authorization".into(), "Basic x".into()),
        ],
        origin: Some("https://app.example".into()),
        ..Default::default()
    };
    let p = Placement::Header {
        name: "Authorization".into(),
        prefix: "Bearer ".into(),
    };
    let req = attach_with(URL, &p, &extras, &t).unwrap();
    assert_eq!(header(&req, "x-client").unwrap(), "stampede");
    assert_eq!(header(&req, "origin").unwrap(), "https://app.example");
    assert_eq!(
        header(&req, "authorization").unwrap(),
        format!("Bearer {}", t.expose())
    );
    let from_plan = UpgradeExtras::from_plan(&crate::auth::tests::auth_plan(JwtAlg::Hs256));
    assert_eq!(from_plan, UpgradeExtras::default());
}

#[test]
fn missing_token_places_nothing_anywhere() {
    let m = missing();
    let placements = [
        Placement::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        },
        Placement::Query {
            param: "token".into(),
        },
        Placement::Cookie {
            name: "session".into(),
        },
    ];
    for p in placements {
        let req = attach(URL, &p, &m).unwrap();
        assert_eq!(header(&req, "authorization"), None);
        assert_eq!(header(&req, "cookie"), None);
        assert_eq!(req.uri().query(), None, "{p:?}");
    }
    // The subprotocol is still offered, without a token entry.
    let p = Placement::Subprotocol {
        offer: vec!["jwt-auth".into()],
        prefix: "jwt.".into(),
    };
    assert_eq!(
        header(&attach(URL, &p, &m).unwrap(), "sec-websocket-protocol").unwrap(),
        "jwt-auth"
    );
    let bare = Placement::Subprotocol {
        offer: vec![],
        prefix: "jwt.".into(),
    };
    assert_eq!(
        header(&attach(URL, &bare, &m).unwrap(), "sec-websocket-protocol"),
        None
    );
}

#[test]
fn empty_token_is_placed_empty() {
    let e = mint(
        JwtAlg::Hs256,
        Some(Forge::Bad {
            name: BadToken::Empty,
        }),
    );
    let p = Placement::Query {
        param: "token".into(),
    };
    assert_eq!(attach(URL, &p, &e).unwrap().uri().query(), Some("token="));
    let p = Placement::Header {
        name: "Authorization".into(),
        prefix: "Bearer ".into(),
    };
    assert_eq!(
        header(&attach(URL, &p, &e).unwrap(), "authorization").unwrap(),
        "Bearer "
    );
}

#[test]
fn bad_url_and_bad_header_are_errors_not_panics() {
    let err = attach("not a url", &Placement::None, &token()).unwrap_err();
    assert!(matches!(err, PlacementError::Url { .. }));
    let extras = UpgradeExtras {
        headers: vec![("bad header".into(), "v".into())],
        origin: None,
        ..Default::default()
    };
    let err = attach_with(URL, &Placement::None, &extras, &token()).unwrap_err();
    assert!(matches!(err, PlacementError::Header(_)));
    let extras = UpgradeExtras {
        headers: vec![],
        origin: Some("line\nbreak".into()),
        ..Default::default()
    };
    assert!(attach_with(URL, &Placement::None, &extras, &token()).is_err());
}

#[test]
fn plain_subprotocols_come_first_in_one_header() {
    let extras = UpgradeExtras {
        subprotocols: vec!["graphql-transport-ws".into(), "v2".into()],
        ..Default::default()
    };
    let req = attach_with(URL, &Placement::None, &extras, &token()).unwrap();
    let offered: Vec<&str> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(offered, ["graphql-transport-ws, v2"]);
    let placement = Placement::Subprotocol {
        offer: vec!["jwt-auth".into()],
        prefix: "jwt.".into(),
    };
    let t = token();
    let req = attach_with(URL, &placement, &extras, &t).unwrap();
    let offered = req.headers().get("sec-websocket-protocol").unwrap();
    assert_eq!(
        offered.to_str().unwrap(),
        format!("graphql-transport-ws, v2, jwt-auth, jwt.{}", t.expose())
    );
}
