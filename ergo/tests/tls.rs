//! TLS distribution against real Erlang nodes running OTP's `inet_tls_dist`
//! (`erl -proto_dist inet_tls -ssl_dist_optfile F`), each an OS process on
//! 127.0.0.1: both directions, auto and strict (mutual TLS) modes, TLS 1.2
//! and 1.3, calls, RPC and 10 MB binaries each way, monitors and links
//! firing `noconnection` when a TLS peer is killed, and every refusal (an
//! unknown CA, an expired certificate, a wrong host name, a missing client
//! certificate, a plain node knocking) logged with its reason while the
//! node keeps serving others. The certificates are made here, with rcgen.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Erl, InteropNode, free_port};
use ergo::dist::{DistOptions, TlsOptions};
use ergo::{Atom, Node, Term};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// A directory of PEM files for one test, removed when the test ends.
struct Pki {
    dir: PathBuf,
}

/// A certificate authority: its certificate and key.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ergo-tls-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_string()
    }

    fn write(&self, file: &str, text: &str) -> String {
        std::fs::write(self.dir.join(file), text).unwrap();
        self.path(file)
    }

    /// A CA, written as `NAME.pem`.
    fn ca(&self, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        self.write(&format!("{name}.pem"), &cert.pem());
        Ca { cert, key }
    }

    /// A certificate for `hosts` signed by `ca`, written as `NAME.pem` and
    /// `NAME.key`; `expired` makes one whose validity ended in 2021.
    fn leaf(&self, name: &str, ca: &Ca, hosts: &[&str], expired: bool) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        // Erlang checks a server's certificate for the node's host as a
        // DNS name, even when the host is an IP address: name it both ways.
        for h in hosts
            .iter()
            .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
        {
            params
                .subject_alt_names
                .push(SanType::DnsName((*h).try_into().unwrap()));
        }
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    /// An `-ssl_dist_optfile` for `erl`: the server and client option
    /// lists, as Erlang terms.
    fn optfile(&self, name: &str, server: &str, client: &str) -> String {
        self.write(
            &format!("{name}.conf"),
            &format!("[{{server, [{server}]}}, {{client, [{client}]}}].\n"),
        )
    }

    /// `erl`'s options to present certificate `name` and verify peers
    /// against `ca` (requiring client certificates when serving).
    fn strict(&self, name: &str, ca: &str, extra: &str) -> String {
        let (cert, key, ca) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
            self.path(&format!("{ca}.pem")),
        );
        let common = format!(
            "{{certfile, \"{cert}\"}}, {{keyfile, \"{key}\"}}, {{cacertfile, \"{ca}\"}}, \
             {{verify, verify_peer}}{extra}"
        );
        self.optfile(
            &format!("{name}-strict"),
            &format!("{common}, {{fail_if_no_peer_cert, true}}"),
            &common,
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `erl` with TLS distribution configured by `optfile`.
fn erl_tls(name: &str, epmd: u16, optfile: &str) -> Erl {
    Erl::start(
        name,
        "cookie",
        epmd,
        &["-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile],
    )
}

/// An ergo node in this process with TLS `tls`, listening.
async fn tls_node(name: &str, epmd: u16, tls: TlsOptions) -> Node {
    let node = Node::builder(format!("{name}@127.0.0.1"))
        .cookie("cookie")
        .tls(tls)
        .start()
        .unwrap();
    let opts = DistOptions {
        epmd_port: Some(epmd),
        ..DistOptions::default()
    };
    node.dist().listen(opts).await.unwrap();
    node
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 30 s"))
}

/// Asserts that the node's log gets a line holding every one of `parts`.
fn logged(r: &InteropNode, parts: &[&str]) {
    let (found, log) = r.wait_log(parts, Duration::from_secs(15));
    assert!(found, "no log line holds {parts:?}:\n{log}");
}

#[test]
fn erlang_over_tls_1_3_reaches_an_auto_mode_node_with_calls_rpc_and_ten_megabytes_each_way() {
    let pki = Pki::new("auto");
    let ca = pki.ca("ca");
    pki.leaf("erl", &ca, &["127.0.0.1", "localhost"], false);
    // An Erlang operator's options for a peer with a self-signed
    // certificate: verify_none (Erlang needs a certificate to serve).
    let versions = "{versions, ['tlsv1.3']}";
    let optfile = pki.optfile(
        "erl-auto",
        &format!(
            "{{certfile, \"{}\"}}, {{keyfile, \"{}\"}}, {{verify, verify_none}}, {versions}",
            pki.path("erl.pem"),
            pki.path("erl.key")
        ),
        &format!("{{verify, verify_none}}, {versions}"),
    );
    let epmd = free_port();
    let r = InteropNode::start_with("r_auto", "cookie", epmd, &["--tls-auto"]);
    logged(&r, &["distribution started", "self-signed"]);
    let mut e = erl_tls("e_auto", epmd, &optfile);
    assert_eq!(
        e.eval(&format!("N = '{}', net_adm:ping(N)", r.name)),
        "pong"
    );
    assert_eq!(e.eval("gen_server:call({counter, N}, {add, 5})"), "5");
    assert_eq!(e.eval("rpc:call(N, interop, add, [2, 3])"), "5");
    assert_eq!(
        e.eval("Big = crypto:strong_rand_bytes(10000000), gen_server:call({echo, N}, Big, 30000) =:= Big"),
        "true"
    );
    // Rust -> Erlang as a plain message.
    assert_eq!(e.eval("{echo, N} ! {self(), Big}, ok"), "ok");
    assert_eq!(
        e.eval("receive {echo, B2} -> B2 =:= Big after 30000 -> timeout end"),
        "true"
    );
    // A monitor and a link across the TLS connection fire `noconnection`
    // when the Rust node is killed.
    assert_eq!(
        e.eval(
            "{ok, W} = gen_server:call({lab, N}, {spawn, self()}), MRef = monitor(process, W), \
             process_flag(trap_exit, true), link(W), ok"
        ),
        "ok"
    );
    drop(r);
    assert_eq!(
        e.eval("receive {'DOWN', MRef, process, W, R1} -> R1 after 10000 -> timeout end"),
        "noconnection"
    );
    assert_eq!(
        e.eval("receive {'EXIT', W, R2} -> R2 after 10000 -> timeout end"),
        "noconnection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_1_2_both_ways_with_an_erlang_node_that_verifies_its_peers() {
    let pki = Pki::new("mutual");
    let ca = pki.ca("ca");
    pki.leaf("node", &ca, &["127.0.0.1", "localhost"], false);
    pki.leaf("erl", &ca, &["127.0.0.1", "localhost"], false);
    let optfile = pki.strict("erl", "ca", ", {versions, ['tlsv1.2']}");
    let epmd = free_port();
    let tls = TlsOptions::from_pem_files(pki.path("node.pem"), pki.path("node.key"))
        .unwrap()
        .verify_peers(pki.path("ca.pem"))
        .unwrap();
    assert!(tls.verifies_peers());
    let a = tls_node("m_a", epmd, tls).await;
    a.dist()
        .register_rpc("t", "echo", |args: Vec<Term>| async move {
            Ok(args
                .into_iter()
                .next()
                .unwrap_or_else(|| Term::atom("none")))
        });
    let mut e = erl_tls("m_e", epmd, &optfile);
    assert_eq!(
        e.eval(
            "P = spawn(fun() -> receive after infinity -> ok end end), register(sleeper, P), ok"
        ),
        "ok"
    );
    let erl = Atom::from(e.name.as_str());
    // The Rust node connects first, on first use.
    let rpc = |m: &'static str, f: &'static str, args: Vec<Term>| {
        let a = a.clone();
        async move {
            a.dist()
                .rpc_call(erl, m, f, args, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("rpc {m}:{f}: {e:?}"))
        }
    };
    assert_eq!(rpc("erlang", "node", vec![]).await, Term::Atom(erl));
    let big = Term::Binary(vec![7u8; 10_000_000].into());
    assert_eq!(
        rpc("erlang", "byte_size", vec![big]).await,
        Term::from(10_000_000)
    );
    match rpc(
        "binary",
        "copy",
        vec![Term::Binary(vec![1].into()), Term::from(10_000_000)],
    )
    .await
    {
        Term::Binary(b) => assert!(b.len() == 10_000_000 && b.iter().all(|&x| x == 1)),
        other => panic!("not a binary: {other:?}"),
    }
    // And Erlang calls the Rust node over the same connection.
    assert_eq!(
        e.eval("rpc:call('m_a@127.0.0.1', t, echo, [{hello, <<\"tls\">>}])"),
        "{hello,<<\"tls\">>}"
    );
    // A monitor and a link from Rust fire `noconnection` when the Erlang
    // node is killed.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.spawn(move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let p = match ctx
            .node()
            .dist()
            .rpc_call(
                erl,
                "erlang",
                "whereis",
                vec![Term::atom("sleeper")],
                Duration::from_secs(5),
            )
            .await
        {
            Ok(Term::Pid(p)) => p,
            other => panic!("whereis: {other:?}"),
        };
        ctx.monitor(p);
        ctx.link(p).unwrap();
        let _ = ready_tx.send(());
        let mut got = Vec::new();
        for _ in 0..2 {
            match ctx.receive_timeout(Duration::from_secs(10)).await {
                Some(m) => got.push(m.to_string()),
                None => got.push("timeout".into()),
            }
        }
        let _ = tx.send((p, got));
    });
    within("the monitor and link", ready_rx).await.unwrap();
    assert_eq!(
        e.eval("W = fun L(0) -> none; L(K) -> case process_info(P, links) of {links, [_]} -> linked; _ -> timer:sleep(20), L(K - 1) end end, W(250)"),
        "linked"
    );
    e.kill();
    let (p, mut got) = within("the notices", rx).await.unwrap();
    got.sort();
    assert!(
        got[0].starts_with("{'DOWN',") && got[0].ends_with(&format!(",process,{p},noconnection}}")),
        "{got:?}"
    );
    assert_eq!(got[1], format!("{{'EXIT',{p},noconnection}}"));
}

#[test]
fn refused_tls_peers_are_logged_with_the_reason_and_the_node_keeps_serving() {
    let pki = Pki::new("refusals");
    let ca = pki.ca("ca");
    let rogue_ca = pki.ca("rogue-ca");
    let hosts = ["127.0.0.1", "localhost"];
    pki.leaf("node", &ca, &hosts, false);
    pki.leaf("erl", &ca, &hosts, false);
    pki.leaf("rogue", &rogue_ca, &hosts, false);
    pki.leaf("expired", &ca, &hosts, true);
    pki.leaf("elsewhere", &ca, &["elsewhere.example"], false);
    let epmd = free_port();
    let r = InteropNode::start_with(
        "r_ref",
        "cookie",
        epmd,
        &[
            "--tls-certfile",
            &pki.path("node.pem"),
            "--tls-keyfile",
            &pki.path("node.key"),
            "--tls-cacertfile",
            &pki.path("ca.pem"),
        ],
    );
    logged(&r, &["distribution started", "peers verified against"]);
    let ping = format!("net_adm:ping('{}')", r.name);
    let served = |e: &mut Erl| {
        assert_eq!(e.eval(&ping), "pong");
        assert_eq!(
            e.eval(&format!(
                "gen_server:call({{echo, '{}'}}, still_here)",
                r.name
            )),
            "still_here"
        );
    };
    // A client certificate from another CA.
    let mut e = erl_tls("e_rogue", epmd, &pki.strict("rogue", "ca", ""));
    assert_eq!(e.eval(&ping), "pang");
    logged(&r, &["refused a connection", "unknown CA"]);
    drop(e);
    // No client certificate at all.
    let no_cert = pki.optfile(
        "nocert",
        "",
        &format!(
            "{{cacertfile, \"{}\"}}, {{verify, verify_peer}}",
            pki.path("ca.pem")
        ),
    );
    let mut e = erl_tls("e_nocert", epmd, &no_cert);
    assert_eq!(e.eval(&ping), "pang");
    logged(&r, &["refused a connection", "no client certificate"]);
    drop(e);
    // An expired client certificate.
    let mut e = erl_tls("e_expired", epmd, &pki.strict("expired", "ca", ""));
    assert_eq!(e.eval(&ping), "pang");
    logged(&r, &["refused a connection", "expired"]);
    drop(e);
    // A plain node knocking.
    let mut e = Erl::start("e_plain", "cookie", epmd, &[]);
    assert_eq!(e.eval(&ping), "pang");
    logged(&r, &["refused a connection", "does not speak TLS"]);
    drop(e);
    // Still serving a well-configured peer.
    let mut good = erl_tls("e_good", epmd, &pki.strict("erl", "ca", ""));
    served(&mut good);
    // Outgoing: a server whose certificate names another host, and one
    // whose certificate comes from another CA, are refused by the Rust
    // node (its lab worker asks them for `node()` over RPC). Host names are
    // checked on outgoing connections only, as `inet_tls_dist` checks them.
    for (name, cert, why) in [
        ("e_elsewhere", "elsewhere", "wrong host"),
        ("e_rogue_srv", "rogue", "unknown CA"),
    ] {
        let bad = erl_tls(name, epmd, &pki.strict(cert, "ca", ""));
        // (Fresh variables each round: the shell keeps its bindings.)
        let asked = good.eval(&format!(
            "{{ok, W_{cert}}} = gen_server:call({{lab, '{}'}}, {{spawn, self()}}), \
             W_{cert} ! {{rpc, '{}', erlang, node, []}}, \
             receive {{forward, W_{cert}, {{rpc_result, R_{cert}}}}} -> R_{cert} \
             after 20000 -> timeout end",
            r.name, bad.name
        ));
        assert!(asked.contains("nodedown"), "{name}: {asked}");
        logged(&r, &["cannot connect", why]);
        served(&mut good);
    }
}

#[test]
fn a_plain_and_a_tls_node_refuse_each_other_cleanly() {
    let pki = Pki::new("mixed");
    let ca = pki.ca("ca");
    pki.leaf("erl", &ca, &["127.0.0.1", "localhost"], false);
    let epmd = free_port();
    let r = InteropNode::start("r_plain", "cookie", epmd);
    let optfile = pki.optfile(
        "erl-auto",
        &format!(
            "{{certfile, \"{}\"}}, {{keyfile, \"{}\"}}, {{verify, verify_none}}",
            pki.path("erl.pem"),
            pki.path("erl.key")
        ),
        "{verify, verify_none}",
    );
    let mut tls = erl_tls("e_tls", epmd, &optfile);
    let ping = format!("net_adm:ping('{}')", r.name);
    assert_eq!(tls.eval(&ping), "pang");
    logged(&r, &["refused a connection", "speaks TLS"]);
    let mut plain = Erl::start("e_plain2", "cookie", epmd, &[]);
    assert_eq!(plain.eval(&ping), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ergo_nodes_in_auto_mode_talk_and_a_plain_one_cannot_reach_them() {
    let epmd = free_port();
    let a = tls_node("t_a", epmd, TlsOptions::auto().unwrap()).await;
    let b = tls_node("t_b", epmd, TlsOptions::auto().unwrap()).await;
    b.dist()
        .register_rpc("t", "size", |args: Vec<Term>| async move {
            match args.as_slice() {
                [Term::Binary(b)] => Ok(Term::from(b.len() as i64)),
                _ => Ok(Term::atom("badarg")),
            }
        });
    let big = Term::Binary(vec![3u8; 4_000_000].into());
    assert_eq!(
        within(
            "rpc over TLS",
            a.dist().rpc_call(
                Atom::from("t_b@127.0.0.1"),
                "t",
                "size",
                vec![big],
                Duration::from_secs(20)
            )
        )
        .await
        .unwrap(),
        Term::from(4_000_000)
    );
    let plain = Node::builder("t_plain@127.0.0.1")
        .cookie("cookie")
        .start()
        .unwrap();
    plain
        .dist()
        .listen(DistOptions {
            epmd_port: Some(epmd),
            ..DistOptions::default()
        })
        .await
        .unwrap();
    assert!(
        !within(
            "plain to TLS",
            plain.dist().connect(Atom::from("t_a@127.0.0.1"))
        )
        .await
    );
    assert!(
        !within(
            "TLS to plain",
            a.dist().connect(Atom::from("t_plain@127.0.0.1"))
        )
        .await
    );
    // Still connected to each other.
    assert!(a.dist().connect(Atom::from("t_b@127.0.0.1")).await);
}
