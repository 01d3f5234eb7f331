//! The bad-token catalogue and time-shifted tokens against the reference server: every
//! entry minted by stampede is refused with 401 through the header, the query and the
//! subprotocol, for every algorithm stampede signs with; valid tokens of each algorithm
//! are accepted. A server with a lenient bad-token policy accepts exactly the policy
//! entries it chose to, and nothing that every correct server refuses. Also the two auth
//! bugs planted for issue 3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use stampede::auth::{self, attach, Keys, Token};
use stampede::model::{AuthPlan, TokenPlan};
use stampede::model::{AuthSpec, BadToken, Forge, JwtAlg, Placement, SecretSource};
use stampede::reference::{self, Bug, ServerHandle, TargetConfig};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"auth-catalogue-secret";
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(test: F) -> F::Output {
    timeout(LIMIT, test).await.expect("test timed out")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn placements() -> [Placement; 3] {
    [
        Placement::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        },
        Placement::Query {
            param: "token".into(),
        },
        Placement::Subprotocol {
            offer: vec!["jwt-auth".into()],
            prefix: "jwt.".into(),
        },
    ]
}

fn keys(alg: JwtAlg) -> Keys {
    match alg {
        JwtAlg::Rs256 => Keys::pem(alg, &fixture("rsa-private.pem"), None).unwrap(),
        JwtAlg::Es256 => Keys::pem(alg, &fixture("ec-private.pem"), None).unwrap(),
        _ => Keys::hmac(alg, SECRET).unwrap(),
    }
}

/// A server that verifies what `keys` signs, with the given `aud`/`iss` and bug.
async fn server(
    keys: &Keys,
    aud: Option<&str>,
    iss: Option<&str>,
    bug: Option<Bug>,
) -> ServerHandle {
    configured(keys, aud, iss, bug, false).await
}

/// The same server, with a lenient bad-token policy when `lenient`.
async fn configured(
    keys: &Keys,
    aud: Option<&str>,
    iss: Option<&str>,
    bug: Option<Bug>,
    lenient: bool,
) -> ServerHandle {
    let config = TargetConfig {
        secret: SECRET.to_vec(),
        public_key_pem: keys.public_pem().map(<[u8]>::to_vec),
        audience: aud.map(str::to_string),
        issuer: iss.map(str::to_string),
        bug,
        lenient,
        ..TargetConfig::default()
    };
    let addr = "127.0.0.1:0".parse().unwrap();
    reference::spawn(config, addr, CancellationToken::new())
        .await
        .unwrap()
}

fn auth_plan(alg: JwtAlg, aud: Option<&str>, iss: Option<&str>) -> AuthPlan {
    let mut plan = AuthPlan::from_spec(&AuthSpec {
        secret: SecretSource::Literal {
            value: String::from_utf8(SECRET.to_vec()).unwrap().into(),
        },
        alg,
        ..AuthSpec::default()
    });
    plan.aud = aud.map(str::to_string);
    plan.iss = iss.map(str::to_string);
    plan
}

/// One slot per forge (a fresh `jti` each), `copies` times over.
fn mint(alg: JwtAlg, plan: &AuthPlan, forges: &[Option<Forge>], copies: usize) -> Vec<Token> {
    let slots: Vec<TokenPlan> = (0..copies)
        .flat_map(|c| {
            forges.iter().enumerate().map(move |(i, forge)| TokenPlan {
                sub: format!("user-{i}"),
                jti: format!("{alg:?}-{c}-{i}"),
                forge: forge.clone(),
            })
        })
        .collect();
    auth::mint_all(&slots, plan, &keys(alg)).unwrap()
}

fn bad_forges() -> Vec<Option<Forge>> {
    let shift = |exp_s, nbf_s| Forge::Shift {
        exp_s,
        nbf_s,
        iat_s: None,
    };
    let mut forges: Vec<Option<Forge>> = BadToken::all()
        .map(|name| Some(Forge::Bad { name }))
        .collect();
    forges.push(Some(shift(Some(-30), None)));
    forges.push(Some(shift(Some(0), None)));
    forges.push(Some(shift(None, Some(60))));
    forges.push(Some(Forge::Shift {
        exp_s: Some(-3600),
        nbf_s: Some(-7200),
        iat_s: Some(-7200),
    }));
    forges
}

/// What the server answered an upgrade: `Ok(())` accepted (then closed), `Err(status)`.
async fn upgrade(url: &str, placement: &Placement, token: &Token) -> Result<(), u16> {
    let request = attach(url, placement, token).unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let first = ws.next().await;
            assert!(
                matches!(first, Some(Ok(Message::Text(_)))),
                "{token:?}: {first:?}"
            );
            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
            Ok(())
        }
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("{token:?} via {placement:?}: not an HTTP refusal: {other}"),
    }
}

async fn assert_all_refused(server: &ServerHandle, tokens: &[Token]) {
    for token in tokens {
        assert!(token.must_reject(), "{token:?}");
        for placement in placements() {
            let got = upgrade(&server.url(), &placement, token).await;
            assert_eq!(got, Err(401), "{token:?} via {placement:?}");
        }
    }
}

async fn assert_all_accepted(server: &ServerHandle, tokens: &[Token]) {
    let placements = placements();
    for (token, placement) in tokens.iter().zip(placements.iter().cycle()) {
        let got = upgrade(&server.url(), placement, token).await;
        assert_eq!(got, Ok(()), "{token:?} via {placement:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_catalogue_entry_and_invalid_shift_is_refused_with_401_for_every_algorithm() {
    bounded(async {
        for alg in JwtAlg::ALL {
            let keys = keys(alg);
            let server = server(&keys, None, None, None).await;
            let plan = auth_plan(alg, None, None);
            assert_all_refused(&server, &mint(alg, &plan, &bad_forges(), 1)).await;
            let valid = mint(alg, &plan, &[None], 3);
            assert_all_accepted(&server, &valid).await;
            let stats = server.stats();
            assert_eq!(stats.accepted, 3, "{alg:?}: {stats:?}");
            server.shutdown().await;
        }
    })
    .await;
}

/// The catalogue entries a lenient server without `aud`/`iss` configured accepts: the
/// policy ones, except `wrong-aud` (like jsonwebtoken, it refuses an audience it was never
/// given).
const LENIENTLY_ACCEPTED: [BadToken; 7] = [
    BadToken::WrongIss,
    BadToken::MissingSub,
    BadToken::EmptySub,
    BadToken::MissingExp,
    BadToken::ExpString,
    BadToken::DuplicateSubKeys,
    BadToken::Oversized,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lenient_server_accepts_policy_entries_only_for_every_algorithm() {
    bounded(async {
        for alg in JwtAlg::ALL {
            let keys = keys(alg);
            let server = configured(&keys, None, None, None, true).await;
            let plan = auth_plan(alg, None, None);
            let (accepted, refused): (Vec<Option<Forge>>, Vec<Option<Forge>>) =
                bad_forges().into_iter().partition(
                    |f| matches!(f, Some(Forge::Bad { name }) if LENIENTLY_ACCEPTED.contains(name)),
                );
            assert_eq!(accepted.len(), LENIENTLY_ACCEPTED.len());
            for forge in &accepted {
                let Some(Forge::Bad { name }) = forge else {
                    unreachable!()
                };
                assert_ne!(name.policy(), stampede::model::Policy::MustReject, "{name}");
            }
            assert_all_refused(&server, &mint(alg, &plan, &refused, 1)).await;
            // Every placement of every accepted entry: one fresh token each (a `jti` is
            // served once at a time).
            let tokens = mint(alg, &plan, &accepted, placements().len());
            for (batch, placement) in tokens.chunks(accepted.len()).zip(placements()) {
                for token in batch {
                    let got = upgrade(&server.url(), &placement, token).await;
                    assert_eq!(got, Ok(()), "{alg:?}: {token:?} via {placement:?}");
                }
            }
            assert_all_accepted(&server, &mint(alg, &plan, &[None], 3)).await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lenient_server_with_aud_and_iss_configured_refuses_every_bad_token() {
    bounded(async {
        let (aud, iss) = (Some("api"), Some("https://issuer.example"));
        let keys = keys(JwtAlg::Hs256);
        let server = configured(&keys, aud, iss, None, true).await;
        let plan = auth_plan(JwtAlg::Hs256, aud, iss);
        let policy_free: Vec<Option<Forge>> = bad_forges()
            .into_iter()
            .filter(|f| {
                !matches!(f, Some(Forge::Bad { name })
                    if name.policy() == stampede::model::Policy::ServerPolicy)
            })
            .collect();
        // wrong-aud and wrong-iss included: the configured values are checked.
        assert_all_refused(&server, &mint(JwtAlg::Hs256, &plan, &policy_free, 1)).await;
        assert_all_accepted(&server, &mint(JwtAlg::Hs256, &plan, &[None], 3)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_aud_and_iss_configured_only_the_right_ones_pass() {
    bounded(async {
        let (aud, iss) = (Some("api"), Some("https://issuer.example"));
        let keys = keys(JwtAlg::Hs256);
        let server = server(&keys, aud, iss, None).await;
        let plan = auth_plan(JwtAlg::Hs256, aud, iss);
        assert_all_refused(&server, &mint(JwtAlg::Hs256, &plan, &bad_forges(), 1)).await;
        assert_all_accepted(&server, &mint(JwtAlg::Hs256, &plan, &[None], 3)).await;
        // Tokens without the configured aud/iss are refused too.
        let bare = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &[None],
            1,
        );
        let got = upgrade(&server.url(), &placements()[0], &bare[0]).await;
        assert_eq!(got, Err(401));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valid_tokens_that_expire_later_or_started_earlier_are_accepted() {
    bounded(async {
        let keys = keys(JwtAlg::Hs256);
        let server = server(&keys, None, None, None).await;
        let later = Forge::Shift {
            exp_s: Some(120),
            nbf_s: Some(-60),
            iat_s: Some(-60),
        };
        let tokens = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &[Some(later)],
            3,
        );
        assert!(tokens.iter().all(|t| !t.must_reject()));
        assert_all_accepted(&server, &tokens).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_accept_alg_none_accepts_every_none_spelling() {
    bounded(async {
        let keys = keys(JwtAlg::Hs256);
        let server = server(&keys, None, None, Some(Bug::AcceptAlgNone)).await;
        let names = [
            "alg-none",
            "alg-none-title",
            "alg-none-upper",
            "alg-none-mixed",
        ];
        let forges: Vec<_> = names
            .iter()
            .map(|n| {
                Some(Forge::Bad {
                    name: BadToken::from_name(n).unwrap(),
                })
            })
            .collect();
        let tokens = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &forges,
            1,
        );
        for token in &tokens {
            assert_eq!(
                upgrade(&server.url(), &placements()[0], token).await,
                Ok(()),
                "{token:?}"
            );
        }
        // Everything else is still refused.
        let other = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &[Some(Forge::Bad {
                name: BadToken::WrongSignature,
            })],
            1,
        );
        assert_eq!(
            upgrade(&server.url(), &placements()[0], &other[0]).await,
            Err(401)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_query_skips_expiry_accepts_expired_tokens_via_the_query_only() {
    bounded(async {
        let keys = keys(JwtAlg::Hs256);
        let server = server(&keys, None, None, Some(Bug::QuerySkipsExpiry)).await;
        let expired = Forge::Shift {
            exp_s: Some(-30),
            nbf_s: None,
            iat_s: None,
        };
        let tokens = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &[Some(expired)],
            1,
        );
        let [header, query, subprotocol] = placements();
        assert_eq!(upgrade(&server.url(), &header, &tokens[0]).await, Err(401));
        assert_eq!(
            upgrade(&server.url(), &subprotocol, &tokens[0]).await,
            Err(401)
        );
        assert_eq!(upgrade(&server.url(), &query, &tokens[0]).await, Ok(()));
        let future = Forge::Shift {
            exp_s: None,
            nbf_s: Some(60),
            iat_s: None,
        };
        let tokens = mint(
            JwtAlg::Hs256,
            &auth_plan(JwtAlg::Hs256, None, None),
            &[Some(future)],
            1,
        );
        assert_eq!(
            upgrade(&server.url(), &query, &tokens[0]).await,
            Err(401),
            "only exp is skipped"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_public_key_refuses_rs256() {
    bounded(async {
        let hmac_only = server(&keys(JwtAlg::Hs256), None, None, None).await;
        let tokens = mint(
            JwtAlg::Rs256,
            &auth_plan(JwtAlg::Rs256, None, None),
            &[None],
            1,
        );
        assert_eq!(
            upgrade(&hmac_only.url(), &placements()[0], &tokens[0]).await,
            Err(401)
        );
        let bad = TargetConfig {
            public_key_pem: Some(b"not a key".to_vec()),
            ..TargetConfig::default()
        };
        let err = reference::spawn(
            bad,
            "127.0.0.1:0".parse().unwrap(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");
    })
    .await;
}
