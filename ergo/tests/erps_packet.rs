//! `ergo::erps::packet` against the real Erps 0.7.0 (`Erps.Packet`): the
//! bytes `Erps.Packet.encode/2` writes equal ours byte for byte and decode
//! back to the same packets; Erps' own `get_data`/`decode/2` accepts what
//! we write and refuses it where it should (wrong identifier, incompatible
//! version, a signed packet, an atom its VM does not know).
//!
//! Erps is compiled from `../shared/third_party/erps` next to the
//! workspace (or the folder `ERPS_SRC` names) with its `build.sh`. Without
//! that folder or `elixir`, each test says why on stderr and does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ergo::erps::packet::{
    self, DecodeOptions, EncodeOptions, HmacKey, Packet, PacketReader, PacketType,
};
use ergo::etf::{BigInt, Term};

/// Where Erps' sources are.
fn erps_source() -> PathBuf {
    match std::env::var_os("ERPS_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/third_party/erps"),
    }
}

/// Erps compiled into a folder of .beam files (once per run), or why the
/// tests cannot run here.
fn erps_beams() -> Result<&'static Path, &'static str> {
    static BEAMS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BEAMS.get_or_init(|| {
        let src = erps_source();
        let script = src.join("build.sh");
        if !script.is_file() {
            return Err(format!(
                "no Erps sources: {} does not exist (set ERPS_SRC to the folder holding build.sh)",
                script.display()
            ));
        }
        match Command::new("elixir").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => return Err("`elixir` is not installed (not on PATH)".to_string()),
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("erps-beams");
        let run = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .expect("run Erps' build.sh");
        // Both present and the build fails: that is a failure, not a skip.
        assert!(
            run.status.success(),
            "{} {} failed:\n{}{}",
            script.display(),
            out.display(),
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        Ok(out)
    });
    built.as_deref().map_err(String::as_str)
}

/// Erps, or `None` after saying on stderr why `test` does not run.
fn erps_or_skip(test: &str) -> Option<&'static Path> {
    match erps_beams() {
        Ok(beams) => Some(beams),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Runs `script` in `elixir` with Erps loaded, `args` in `System.argv()`;
/// its standard output, line by line.
fn elixir(beams: &Path, script: &str, args: &[String]) -> Vec<String> {
    let out = Command::new("elixir")
        .arg("-pa")
        .arg(beams)
        .arg("-e")
        .arg(script)
        .args(args)
        .output()
        .expect("run elixir");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "elixir failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const ID36: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// The same packets on both sides, by name: Elixir's `%Erps.Packet{}`
/// and ours.
fn shared_packets() -> Vec<(&'static str, String, Packet)> {
    let big: BigInt = "123456789012345678901234567890".parse().unwrap();
    vec![
        ("keepalive", "%Packet{}".into(), Packet::keepalive()),
        (
            "call",
            r#"%Packet{type: :call, version: v.("1.2.3"), identifier: "calc", payload: {12345, :hello}}"#.into(),
            Packet::call(Term::Int(12345), Term::atom("hello"))
                .with_identifier("calc")
                .with_version((1, 2, 3)),
        ),
        (
            "cast",
            r#"%Packet{type: :cast, version: v.("0.2.4"), identifier: "my_api", payload: {:add, [1, 2, 3], "bin", 3.5, -7, 123456789012345678901234567890, []}}"#.into(),
            Packet::cast(Term::tuple([
                Term::atom("add"),
                Term::list([Term::Int(1), Term::Int(2), Term::Int(3)]),
                Term::binary("bin"),
                Term::Float(3.5),
                Term::Int(-7),
                Term::bigint(big),
                Term::NIL,
            ]))
            .with_identifier("my_api")
            .with_version((0, 2, 4)),
        ),
        (
            "push",
            r#"%Packet{type: :push, payload: %{a: 1, b: "two"}}"#.into(),
            // Keys in term order, as Erlang writes small maps.
            Packet::push(Term::map([
                (Term::atom("a"), Term::Int(1)),
                (Term::atom("b"), Term::binary("two")),
            ])),
        ),
        (
            "reply",
            format!(
                r#"%Packet{{type: :reply, version: v.("255.0.9"), identifier: "{ID36}", payload: {{{{:ok, 'charlist'}}, 98765}}}}"#
            ),
            Packet::reply(
                Term::tuple([Term::atom("ok"), Term::charlist("charlist")]),
                Term::Int(98765),
            )
            .with_identifier(ID36)
            .with_version((255, 0, 9)),
        ),
        (
            "call_error",
            r#"%Packet{type: :error, payload: {:timeout, 42}}"#.into(),
            Packet::call_error(Term::atom("timeout"), Term::Int(42)),
        ),
        (
            "refusal",
            // What Erps.Server sends for a packet it refuses.
            r#"%Packet{type: :error, payload: "wrong identifier"}"#.into(),
            Packet::refusal("wrong identifier"),
        ),
        (
            "unicode",
            r#"%Packet{type: :cast, identifier: "ünï", payload: {:"ünïcode", :"日本", "é"}}"#.into(),
            Packet::cast(Term::tuple([
                Term::atom("ünïcode"),
                Term::atom("日本"),
                Term::binary("é"),
            ]))
            .with_identifier("ünï"),
        ),
        (
            "blob",
            // Large enough that Erps' `compressed: true` compresses it.
            r#"%Packet{type: :push, payload: {:blob, :binary.copy("ab", 500), Enum.to_list(1..300)}}"#.into(),
            Packet::push(Term::tuple([
                Term::atom("blob"),
                Term::binary("ab".repeat(500)),
                Term::list((1..=300).map(Term::Int)),
            ])),
        ),
        (
            "keyed",
            r#"%Packet{type: :cast, hmac_key: :binary.copy(<<7>>, 16), payload: :x}"#.into(),
            Packet::cast(Term::atom("x")).with_hmac_key([7; 16]),
        ),
    ]
}

const ENCODE_SCRIPT: &str = r##"
alias Erps.Packet
v = &Version.parse!/1
packets = [__PACKETS__]
for {name, compressed, p} <- packets do
  opts = if compressed, do: [compressed: true], else: []
  bytes = p |> Packet.encode(opts) |> IO.iodata_to_binary()
  IO.puts("#{name} #{Base.encode16(bytes, case: :lower)}")
end
"##;

#[test]
fn erps_and_ergo_write_the_same_bytes() {
    let Some(beams) = erps_or_skip("erps_and_ergo_write_the_same_bytes") else {
        return;
    };
    let shared = shared_packets();
    let mut entries: Vec<String> = shared
        .iter()
        .map(|(name, ex, _)| format!("{{\"{name}\", false, {ex}}}"))
        .collect();
    // Compressed by Erps: not compared byte for byte (another zlib), read
    // back.
    for (name, ex, _) in &shared {
        if *name != "keepalive" {
            entries.push(format!("{{\"z_{name}\", true, {ex}}}"));
        }
    }
    let script = ENCODE_SCRIPT.replace("__PACKETS__", &entries.join(",\n  "));
    let lines = elixir(beams, &script, &[]);
    assert_eq!(lines.len(), entries.len(), "{lines:?}");

    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for line in &lines {
        let (name, hex_bytes) = line.split_once(' ').expect("name and bytes");
        let bytes = unhex(hex_bytes);
        let (_, _, packet) = shared
            .iter()
            .find(|(n, _, _)| *n == name.trim_start_matches("z_"))
            .unwrap_or_else(|| panic!("unknown packet {name}"));
        if name == "z_blob" {
            // 131, 80: a compressed term.
            assert_eq!(&bytes[96..98], &[131, 80], "Erps compressed the blob");
        }
        if !name.starts_with("z_") {
            assert_eq!(
                hex(&packet::encode(packet)),
                hex_bytes,
                "{name}: ergo's bytes differ from Erps'"
            );
        }
        let safe = DecodeOptions::default();
        let mut want = packet.clone();
        if packet.hmac_key != [0; 16] {
            // Erps writes the key field it is given; our default reader
            // refuses it as Erps' does.
            assert_eq!(
                packet::decode(&bytes, &safe),
                Err(packet::ErpsError::AuthenticationProvided)
            );
            continue;
        }
        if packet.kind == PacketType::Keepalive {
            want = Packet::keepalive();
        }
        assert_eq!(
            packet::decode(&bytes, &safe).as_ref(),
            Ok(&want),
            "{name}: ergo reads Erps' bytes"
        );
        stream.extend_from_slice(&bytes);
        expected.push(want);
    }
    // All of them in one stream, in 7-byte pieces.
    let mut reader = PacketReader::new(1 << 16);
    let mut got = Vec::new();
    for piece in stream.chunks(7) {
        reader.feed(piece);
        while let Some(p) = reader.next_packet().expect("a packet") {
            got.push(p);
        }
    }
    assert_eq!(reader.finish(), Ok(None));
    assert_eq!(got, expected);
}

const DECODE_SCRIPT: &str = r##"
defmodule ErgoTest.BytesTransport do
  # Packet.get_data/3 reads a socket through a Transport; this one "reads"
  # the whole packet at once.
  def recv(bytes, 0, _timeout), do: {:ok, bytes}
end

# Safe decoding refuses atoms this VM has never seen, as an Erps server
# refuses atoms its application does not use: these are the atoms the
# packets carry (the script naming them creates them).
_known = [:hello, :add, :pong, :a, :b]

for arg <- System.argv() do
  [name, opts, hex] = String.split(arg, ":")
  bytes = Base.decode16!(hex, case: :lower)
  opts =
    case opts do
      "none" -> []
      "id" -> [identifier: "calc"]
      "other_id" -> [identifier: "other"]
      "ok_ver" -> [versions: "~> 1.2"]
      "bad_ver" -> [versions: "~> 2.0"]
    end
  got = Erps.Packet.get_data(ErgoTest.BytesTransport, bytes, opts)
  # get_data/3 hands everything after the size field to decode/2.
  direct =
    case bytes do
      <<"erps", 0::40>> -> got
      <<"erps", _size::32, rest::binary>> -> Erps.Packet.decode(rest, opts)
    end
  line =
    case got do
      {:ok, p} -> "ok #{p.type} #{p.version} #{inspect(p.identifier)} #{inspect(p.payload)}"
      {:error, e} -> "error #{inspect(e)}"
    end
  same = if direct == got, do: "", else: " (decode/2 disagrees: #{inspect(direct)})"
  IO.puts("#{name} #{line}#{same}")
end
"##;

#[test]
fn erps_reads_what_ergo_writes() {
    let Some(beams) = erps_or_skip("erps_reads_what_ergo_writes") else {
        return;
    };
    let call = Packet::call(Term::Int(12345), Term::atom("hello"))
        .with_identifier("calc")
        .with_version((1, 2, 3));
    let signed = packet::encode_with(
        &call,
        &EncodeOptions {
            sign: Some(HmacKey::new([9; 16], "shared secret")),
            ..EncodeOptions::default()
        },
    )
    .unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "keepalive",
            "none",
            packet::encode(&Packet::keepalive()),
            r#"ok keepalive 0.0.0 "" nil"#.into(),
        ),
        (
            "call",
            "none",
            packet::encode(&call),
            r#"ok call 1.2.3 "calc" {12345, :hello}"#.into(),
        ),
        (
            "call_with_id",
            "id",
            packet::encode(&call),
            r#"ok call 1.2.3 "calc" {12345, :hello}"#.into(),
        ),
        (
            "wrong_id",
            "other_id",
            packet::encode(&call),
            r#"error "wrong identifier""#.into(),
        ),
        (
            "good_version",
            "ok_ver",
            packet::encode(&call),
            r#"ok call 1.2.3 "calc" {12345, :hello}"#.into(),
        ),
        (
            "bad_version",
            "bad_ver",
            packet::encode(&call),
            r#"error "incompatible version""#.into(),
        ),
        (
            "cast",
            "none",
            packet::encode(&Packet::cast(Term::tuple([
                Term::atom("add"),
                Term::list([Term::Int(1), Term::Int(2), Term::Int(3)]),
                Term::binary("bin"),
                Term::Float(3.5),
                Term::Int(-7),
            ]))),
            r#"ok cast 0.0.0 "" {:add, [1, 2, 3], "bin", 3.5, -7}"#.into(),
        ),
        (
            "push",
            "none",
            packet::encode(&Packet::push(Term::map([
                (Term::atom("b"), Term::binary("two")),
                (Term::atom("a"), Term::Int(1)),
            ]))),
            r#"ok push 0.0.0 "" %{a: 1, b: "two"}"#.into(),
        ),
        (
            "reply",
            "none",
            packet::encode(
                &Packet::reply(Term::atom("pong"), Term::Int(98765))
                    .with_identifier(ID36)
                    .with_version((255, 0, 9)),
            ),
            format!(r#"ok reply 255.0.9 "{ID36}" {{:pong, 98765}}"#),
        ),
        (
            "refusal",
            "none",
            packet::encode(&Packet::refusal("incompatible version")),
            r#"ok error 0.0.0 "" "incompatible version""#.into(),
        ),
        // Erps does not verify: a signed packet is refused.
        (
            "signed",
            "none",
            signed,
            r#"error "authentication provided""#.into(),
        ),
        // Erps decodes safely: an atom its VM has never seen is badarg.
        (
            "unknown_atom",
            "none",
            packet::encode(&Packet::cast(Term::atom(
                "ergo_side_only_atom_nobody_else_has_q3",
            ))),
            "error :badarg".into(),
        ),
    ];
    let args: Vec<String> = cases
        .iter()
        .map(|(name, opts, bytes, _)| format!("{name}:{opts}:{}", hex(bytes)))
        .collect();
    let lines = elixir(beams, DECODE_SCRIPT, &args);
    assert_eq!(lines.len(), cases.len(), "{lines:?}");
    for ((name, _, _, want), line) in cases.iter().zip(&lines) {
        assert_eq!(line, &format!("{name} {want}"), "Erps on {name}");
    }
}
