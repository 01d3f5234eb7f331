//! Where the token travels on the upgrade request.

use super::Token;
use crate::scenario::Placement;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{HeaderName, HeaderValue};

/// The upgrade request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("invalid target URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("token does not fit in header {0}")]
    Header(String),
}

/// Builds the upgrade request for `url` with `token` placed as the scenario says.
pub fn attach(url: &str, placement: &Placement, token: &Token) -> Result<Request, PlacementError> {
    let url = match placement {
        Placement::Query { param } => with_query(url, param, token.expose()),
        _ => url.to_string(),
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| PlacementError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    match placement {
        Placement::Header { name, prefix } => {
            let value = format!("{prefix}{}", token.expose());
            insert(&mut request, name, &value)?;
        }
        Placement::Subprotocol { offer, prefix } => {
            let mut values = offer.clone();
            values.push(format!("{prefix}{}", token.expose()));
            insert(&mut request, "sec-websocket-protocol", &values.join(", "))?;
        }
        Placement::Query { .. } | Placement::None => {}
    }
    Ok(request)
}

fn with_query(url: &str, param: &str, value: &str) -> String {
    // JWTs are base64url plus '.', none of which needs escaping in a query.
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}={value}")
}

fn insert(request: &mut Request, name: &str, value: &str) -> Result<(), PlacementError> {
    let name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| PlacementError::Header(name.into()))?;
    let value =
        HeaderValue::from_str(value).map_err(|_| PlacementError::Header(name.to_string()))?;
    request.headers_mut().insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint_all;
    use crate::plan::TokenPlan;
    use std::time::Duration;

    fn token() -> Token {
        let slots = vec![TokenPlan {
            sub: "u".into(),
            jti: "j".into(),
        }];
        mint_all(&slots, b"k", Duration::from_secs(60))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn header_placement_sets_bearer() {
        let t = token();
        let p = Placement::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        };
        let req = attach("ws://127.0.0.1:1/ws", &p, &t).unwrap();
        let got = req
            .headers()
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(got, format!("Bearer {}", t.expose()));
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
    }

    #[test]
    fn subprotocol_placement_offers_protocol_then_token() {
        let t = token();
        let p = Placement::Subprotocol {
            offer: vec!["jwt-auth".into()],
            prefix: "jwt.".into(),
        };
        let req = attach("ws://127.0.0.1:1/ws", &p, &t).unwrap();
        let got = req
            .headers()
            .get("sec-websocket-protocol")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(got, format!("jwt-auth, jwt.{}", t.expose()));
    }

    #[test]
    fn bad_url_is_an_error_not_a_panic() {
        let err = attach("not a url", &Placement::None, &token()).unwrap_err();
        assert!(matches!(err, PlacementError::Url { .. }));
    }
}
