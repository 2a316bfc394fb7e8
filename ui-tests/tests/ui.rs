//! Each misuse of a macro must fail to compile with a readable error spanned
//! on the token the user wrote; each correct use must compile.

#[test]
fn derive_term_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/derive_*.rs");
}

#[test]
fn derive_term_correct_uses_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/derive_*.rs");
}

#[test]
fn gen_server_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/gen_server_*.rs");
}

#[test]
fn gen_server_correct_uses_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/gen_server_*.rs");
}

#[test]
fn gen_stage_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/gen_stage_*.rs");
}

#[test]
fn gen_stage_correct_uses_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/gen_stage_*.rs");
}

#[test]
fn supervisor_and_application_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/supervisor_*.rs");
    t.compile_fail("tests/fail/application_*.rs");
}

#[test]
fn supervisor_and_application_correct_uses_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/supervisor_*.rs");
}

#[test]
fn connection_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/connection_*.rs");
}

#[test]
fn connection_correct_uses_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/connection_*.rs");
}
