//! Spreadsheet cells as a person sees them: typed cells, the sheet shown, title rows,
//! workbooks by their content, and bounds checked before anything is loaded.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

use crate::support::*;

/// A zip of `parts`, deflated.
fn zip_of(path: &Path, parts: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in parts {
        zip.start_file(*name, deflated).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A hand-made `.xlsx`: sheets of (name, state, sheetData XML), the active one, and
/// optional shared strings. Inline strings, error cells and formulas without a saved
/// value are written as a script would write them.
fn hand_made_xlsx(path: &Path, sheets: &[(&str, &str, &str)], active: usize, shared: &str) {
    let main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    let rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let mut listed = String::new();
    let mut rels = String::new();
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, state, data)) in sheets.iter().enumerate() {
        let n = i + 1;
        listed.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{n}" state="{state}" r:id="rId{n}"/>"#
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{n}" Type="{rel}/worksheet" Target="worksheets/sheet{n}.xml"/>"#
        ));
        parts.push((
            format!("xl/worksheets/sheet{n}.xml"),
            format!(r#"<?xml version="1.0"?><worksheet xmlns="{main}"><sheetData>{data}</sheetData></worksheet>"#).into_bytes(),
        ));
    }
    rels.push_str(&format!(
        r#"<Relationship Id="rIdS" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>"#
    ));
    parts.push(("[Content_Types].xml".into(), br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.to_vec()));
    parts.push(("_rels/.rels".into(), format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#).into_bytes()));
    parts.push(("xl/workbook.xml".into(), format!(r#"<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{rel}"><bookViews><workbookView activeTab="{active}"/></bookViews><sheets>{listed}</sheets></workbook>"#).into_bytes()));
    parts.push(("xl/_rels/workbook.xml.rels".into(), format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#).into_bytes()));
    parts.push((
        "xl/sharedStrings.xml".into(),
        format!(r#"<?xml version="1.0"?><sst xmlns="{main}">{shared}</sst>"#).into_bytes(),
    ));
    let parts: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_of(path, &parts);
}

fn text(cell: &str, value: &str) -> String {
    format!(r#"<c r="{cell}" t="inlineStr"><is><t>{value}</t></is></c>"#)
}

const HEADER: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>serviceAccount</t></is></c><c r="C1" t="inlineStr"><is><t>reason</t></is></c></row>"#;

/// A hand-made `.ods`: tables of (name, hidden, rows XML), the active one by name.
fn hand_made_ods(path: &Path, tables: &[(&str, bool, &str)], active: &str) {
    let mut body = String::new();
    for (name, hidden, rows) in tables {
        let style = if *hidden { "ta2" } else { "ta1" };
        body.push_str(&format!(
            r#"<table:table table:name="{name}" table:style-name="{style}">{rows}</table:table>"#
        ));
    }
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2"><office:automatic-styles><style:style style:name="ta1" style:family="table"><style:table-properties table:display="true"/></style:style><style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/></style:style></office:automatic-styles><office:body><office:spreadsheet>{body}</office:spreadsheet></office:body></office:document-content>"#
    );
    let settings = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-settings xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"><office:settings><config:config-item-set config:name="ooo:view-settings"><config:config-item config:name="ActiveTable" config:type="string">{active}</config:config-item></config:config-item-set></office:settings></office:document-settings>"#
    );
    zip_of(
        path,
        &[
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#),
            ("content.xml", content.as_bytes()),
            ("settings.xml", settings.as_bytes()),
        ],
    );
}

fn ods_cell(attributes: &str, shown: &str) -> String {
    format!(r#"<table:table-cell {attributes}><text:p>{shown}</text:p></table:table-cell>"#)
}

fn ods_text(value: &str) -> String {
    ods_cell(r#"office:value-type="string""#, value)
}

fn ods_row(cells: &[String]) -> String {
    format!("<table:table-row>{}</table:table-row>", cells.concat())
}

/// `Old draft` (hidden, first) and `Review` (active): dates, times, percentages,
/// fractions and booleans where ids and reasons belong.
fn typed_review(path: &Path) {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("hh:mm");
    let percent = Format::new().set_num_format("0%");
    let old = workbook.add_worksheet().set_name("Old draft").unwrap();
    for (column, header) in ["id", "serviceAccount", "reason"].iter().enumerate() {
        old.write_string(0, column as u16, *header).unwrap();
    }
    old.write_number(1, 0, 900.0).unwrap();
    old.write_boolean(1, 1, true).unwrap();
    old.write_string(1, 2, "stale draft").unwrap();
    old.set_hidden(true);
    let review = workbook.add_worksheet().set_name("Review").unwrap();
    for (column, header) in ["id", "serviceAccount", "reason"].iter().enumerate() {
        review.write_string(0, column as u16, *header).unwrap();
    }
    let day = ExcelDateTime::from_ymd(2023, 3, 15).unwrap();
    review
        .write_datetime_with_format(1, 0, &day, &date)
        .unwrap();
    review.write_boolean(1, 1, true).unwrap();
    review.write_string(1, 2, "CI runner").unwrap();
    review.write_number(2, 0, 3.0).unwrap();
    review.write_boolean(2, 1, true).unwrap();
    let march = ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
    review
        .write_datetime_with_format(2, 2, &march, &date)
        .unwrap();
    review.write_number(3, 0, 4.0).unwrap();
    review.write_boolean(3, 1, true).unwrap();
    review
        .write_number_with_format(3, 2, 0.5, &percent)
        .unwrap();
    review.write_number(4, 0, 5.0).unwrap();
    review.write_boolean(4, 1, true).unwrap();
    let half_past = ExcelDateTime::from_hms(12, 30, 0).unwrap();
    review
        .write_datetime_with_format(4, 2, &half_past, &time)
        .unwrap();
    review.write_number(5, 0, 6.0).unwrap();
    review.write_string(5, 1, "WAHR").unwrap();
    review.write_number(5, 2, 2024.0).unwrap();
    review.write_string(6, 0, "'44").unwrap();
    review.write_number(6, 1, 1.0).unwrap();
    review.write_string(6, 2, "'=not a formula").unwrap();
    review.write_number(7, 0, 1.5).unwrap();
    review.write_boolean(7, 1, false).unwrap();
    review.write_string(7, 2, "fraction").unwrap();
    review.set_active(true);
    workbook.save(path).unwrap();
}

#[test]
fn dates_times_percentages_and_fractions_are_invalid_named_by_cell_in_xlsx() {
    let work = Workdir::new();
    typed_review(&work.path("review.xlsx"));
    let run = Validate::offline().within(&work).file("review.xlsx").run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "Review!A2 holds a date (2023-03-15), not an id",
        "Review!C3 holds a date (2024-03-01), not text: format the column as Text",
        "Review!C4 holds the number 0.5 (a fraction or a percentage), not text: format the column as Text",
        "Review!C5 holds a time (12:30:00), not text: format the column as Text",
        "Review!A8 holds the number 1.5, not an id",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(
        run.stderr.contains("7 rows, 2 valid, 5 invalid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(r#"reading sheet "Review" of 2; not read: "Old draft" (hidden)"#),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("line 6,") && !run.stdout.contains("line 7,"),
        "WAHR, 2024, '44 and a workbook's '= are read: {}",
        run.stdout
    );
}

#[test]
fn a_hidden_sheet_is_read_only_when_named_in_any_case() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    typed_review(&work.path("review.xlsx"));
    let run = Apply::on(&sim)
        .within(&work)
        .file("review.xlsx")
        .args(["--sheet", "OLD DRAFT", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&read_report(&work.path("r.csv"))),
        vec![(2, "updated".into())]
    );
    let applied = Apply::on(&sim)
        .within(&work)
        .file("review.xlsx")
        .args(["--skip-invalid", "--report", "s.csv"])
        .run();
    let rows = read_report(&work.path("s.csv"));
    assert!(
        rows.iter().all(|r| r["id"] != "900"),
        "the hidden sheet is not applied: {}",
        applied.stderr
    );
    // The report holds rows in the order they finished: compare them by id.
    let mut sent: Vec<(u64, &str)> = rows
        .iter()
        .filter(|r| r["outcome"] == "updated")
        .map(|r| (r["id"].parse().unwrap(), r["reason"].as_str()))
        .collect();
    sent.sort();
    let (ids, sent_reasons): (Vec<u64>, Vec<&str>) = sent.into_iter().unzip();
    assert_eq!(ids, [6, 44], "only what the sheet shows is sent");
    // The reason sent is the cell as written, its `'` kept; the report, a CSV, protects a
    // leading `'` with one more, which its reader removes.
    assert_eq!(sent_reasons, ["2024", "''=not a formula"]);
}

#[test]
fn error_cells_and_formulas_without_a_saved_value_are_invalid() {
    let work = Workdir::new();
    let rows = format!(
        r#"{HEADER}<row r="2"><c r="A2"><v>7</v></c><c r="B2" t="b"><v>1</v></c><c r="C2" t="e"><f>VLOOKUP(A2,Owners!A:B,2,0)</f><v>#N/A</v></c></row><row r="3"><c r="A3"><f>Owners!A3</f></c><c r="B3" t="b"><v>1</v></c>{}</row><row r="4"><c r="A4" t="e"><v>#REF!</v></c><c r="B4" t="b"><v>1</v></c>{}</row><row r="5"><c r="A5"><v>9</v></c><c r="B5" t="b"><v>0</v></c><c r="C5" t="s"><v>0</v></c></row>"#,
        text("C3", "scripted"),
        text("C4", "deleted owner")
    );
    hand_made_xlsx(
        &work.path("scripted.xlsx"),
        &[("Review", "visible", &rows)],
        0,
        "<si><t>a person</t></si>",
    );
    let run = Validate::offline()
        .within(&work)
        .file("scripted.xlsx")
        .run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "Review!C2 holds the error #N/A, not text: format the column as Text",
        "Review!A3 holds a formula with no saved value: open and save the file in a spreadsheet",
        "Review!A4 holds the error #REF!, not an id",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(!run.stdout.contains("line 5,"), "{}", run.stdout);
}

#[test]
fn ods_cells_and_sheets_are_read_as_shown() {
    let work = Workdir::new();
    let header = ods_row(&[
        ods_text("id"),
        ods_text("serviceAccount"),
        ods_text("reason"),
    ]);
    let review = [
        header.clone(),
        ods_row(&[
            ods_cell(
                r#"office:value-type="date" office:date-value="2023-03-15""#,
                "15/03/2023",
            ),
            ods_cell(
                r#"office:value-type="boolean" office:boolean-value="true""#,
                "TRUE",
            ),
            ods_text("CI"),
        ]),
        ods_row(&[
            ods_cell(r#"office:value-type="float" office:value="3""#, "3"),
            ods_cell(
                r#"office:value-type="boolean" office:boolean-value="true""#,
                "TRUE",
            ),
            ods_cell(
                r#"office:value-type="time" office:time-value="PT12H30M00S""#,
                "12:30",
            ),
        ]),
        ods_row(&[
            ods_cell(r#"office:value-type="float" office:value="4""#, "4"),
            ods_text("FALSCH"),
            ods_cell(
                r#"office:value-type="percentage" office:value="0.5""#,
                "50%",
            ),
        ]),
        ods_row(&[
            ods_cell(r#"office:value-type="float" office:value="5""#, "5"),
            ods_text("VRAI"),
            ods_text("a person"),
        ]),
    ]
    .concat();
    let draft = [
        header,
        ods_row(&[ods_text("900"), ods_text("true"), ods_text("stale")]),
    ]
    .concat();
    hand_made_ods(
        &work.path("review.ods"),
        &[("Old draft", true, &draft), ("Review", false, &review)],
        "Review",
    );
    let run = Validate::offline().within(&work).file("review.ods").run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "Review!A2 holds a date (2023-03-15), not an id",
        "Review!C3 holds a duration (PT12H30M00S), not text",
        "Review!C4 holds the number 0.5 (a fraction or a percentage), not text",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(!run.stdout.contains("line 5,"), "{}", run.stdout);
    assert!(
        run.stderr.contains(r#"not read: "Old draft" (hidden)"#),
        "{}",
        run.stderr
    );
    let hidden = Validate::offline()
        .within(&work)
        .file("review.ods")
        .args(["--sheet", "old draft"])
        .run();
    assert_eq!(hidden.code, 0, "{}", hidden.stderr);
}

#[test]
fn a_workbook_is_read_by_its_content_whatever_its_name_or_on_standard_input() {
    let work = Workdir::new();
    typed_review(&work.path("desired.csv"));
    std::fs::copy(work.path("desired.csv"), work.path("desired")).unwrap();
    for name in ["desired.csv", "desired"] {
        let run = Validate::offline().within(&work).file(name).run();
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(
            run.stdout.contains("Review!A2 holds a date"),
            "{name}: {}",
            run.stdout
        );
    }
    let bytes = std::fs::read(work.path("desired.csv")).unwrap();
    let mut child = command(work.dir.path(), &["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let run = finish(child);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("Review!A2 holds a date"),
        "{}",
        run.stdout
    );
}

#[test]
fn title_rows_and_a_notes_sheet_are_told_apart_from_the_header() {
    let work = Workdir::new();
    let mut workbook = Workbook::new();
    let notes = workbook.add_worksheet().set_name("Notes").unwrap();
    notes.write_string(0, 0, "How to fill this in").unwrap();
    let review = workbook.add_worksheet().set_name("Review").unwrap();
    review
        .write_string(0, 0, "Q4 2026 access review – platform team")
        .unwrap();
    review.write_string(1, 0, "Owner: ops").unwrap();
    for (column, header) in ["ID", "Service account?", "Justification"]
        .iter()
        .enumerate()
    {
        review.write_string(3, column as u16, *header).unwrap();
    }
    review.write_number(4, 0, 5.0).unwrap();
    review.write_string(4, 1, "yes").unwrap();
    review.write_string(4, 2, "deploy bot").unwrap();
    workbook.save(work.path("q4.xlsx")).unwrap();
    let notes = Validate::offline().within(&work).file("q4.xlsx").run();
    assert_eq!(notes.code, 2);
    assert!(
        notes
            .stderr
            .contains(r#"line 1 of sheet "Notes" (the workbook has "Notes", "Review")"#)
            && notes.stderr.contains("--id-column")
            && notes.stderr.contains("--flag-column")
            && notes.stderr.contains("--header-row"),
        "{}",
        notes.stderr
    );
    let run = Validate::offline()
        .within(&work)
        .file("q4.xlsx")
        .args(["--sheet", "review"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the header is on line 4; skipped the rows above it: line 1, 2"),
        "{}",
        run.stderr
    );
    let fixed = Validate::offline()
        .within(&work)
        .file("q4.xlsx")
        .args(["--sheet", "Review", "--header-row", "4"])
        .run();
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    let wrong = Validate::offline()
        .within(&work)
        .file("q4.xlsx")
        .args(["--sheet", "Review", "--header-row", "2"])
        .run();
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
}

#[test]
fn windows_1252_is_refused_on_a_file_that_is_utf8_already() {
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id,flag,reason\n1,true,Jürgen Müller\n2,true,Équipe\n",
    );
    let run = Validate::offline()
        .within(&work)
        .file("in.csv")
        .args(["--encoding", "windows-1252"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("this file is UTF-8 already"),
        "{}",
        run.stderr
    );
    work.write("ascii.csv", "id,flag,reason\n1,true,plain\n");
    let ascii = Validate::offline()
        .within(&work)
        .file("ascii.csv")
        .args(["--encoding", "windows-1252"])
        .run();
    assert_eq!(ascii.code, 0, "{}", ascii.stderr);
}

#[test]
fn ids_and_flags_as_spreadsheets_and_dataframes_write_them() {
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id;serviceAccount;reason\n1.0;WAHR;a\n1.00E+02;FALSCH;b\n'44;VERDADERO;c\n106.5;true;d\n7;x;e\n8;✓;f\n",
    );
    let run = Validate::offline().within(&work).file("in.csv").run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("\"106.5\" is not a whole number"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"x\" is not a flag") && run.stdout.contains("a mark does not say"),
        "{}",
        run.stdout
    );
    for line in 2..=4 {
        assert!(
            !run.stdout.contains(&format!("line {line},")),
            "line {line}: {}",
            run.stdout
        );
    }
}

#[test]
fn the_exports_own_connection_cell_names_the_connection() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    let export = Export::on(&sim)
        .within(&work)
        .args(["-o", "export.csv"])
        .run();
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut reader = csv::Reader::from_path(work.path("export.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let record = reader.records().next().unwrap().unwrap();
    let cell = |name: &str| record[headers.iter().position(|h| h == name).unwrap()].to_owned();
    let (username, connection) = (cell("username"), cell("connection"));
    assert!(
        connection.contains(' '),
        "client type and alias: {connection}"
    );
    let mut writer = csv::Writer::from_path(work.path("by-name.csv")).unwrap();
    writer
        .write_record(["username", "connection", "serviceAccount", "reason"])
        .unwrap();
    writer
        .write_record([username.as_str(), connection.as_str(), "true", "CI"])
        .unwrap();
    writer.flush().unwrap();
    let plan = Plan::on(&sim)
        .within(&work)
        .file("by-name.csv")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
}

/// Runs `validate` on a hostile workbook: refused (exit 2) or read, in well under the
/// seconds that loading it whole took.
fn validate_quickly(work: &Workdir, name: &str) -> Run {
    let started = Instant::now();
    let run = Validate::offline().within(work).file(name).run().run;
    // A debug build on a shared machine: the release build takes well under a second.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{name}: {:?}",
        started.elapsed()
    );
    run
}

#[test]
fn hostile_workbooks_are_refused_or_read_as_the_cells_they_hold() {
    let work = Workdir::new();
    let far = format!(
        r#"{HEADER}<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="b"><v>1</v></c>{}</row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#,
        text("C2", "ok")
    );
    hand_made_xlsx(&work.path("far.xlsx"), &[("S", "visible", &far)], 0, "");
    let run = validate_quickly(&work, "far.xlsx");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("line 1048576, column id: the id is empty"),
        "{}",
        run.stdout
    );
    let beyond = format!(r#"{HEADER}<row r="1048577"><c r="A1048577"><v>1</v></c></row>"#);
    hand_made_xlsx(
        &work.path("beyond.xlsx"),
        &[("S", "visible", &beyond)],
        0,
        "",
    );
    let run = validate_quickly(&work, "beyond.xlsx");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let huge = "x".repeat(40 * 1024 * 1024);
    hand_made_xlsx(
        &work.path("string.xlsx"),
        &[("S", "visible", HEADER)],
        0,
        &format!("<si><t>{huge}</t></si>"),
    );
    let run = validate_quickly(&work, "string.xlsx");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("xl/sharedStrings.xml expands from"),
        "{}",
        run.stderr
    );
    let repeated = format!(
        r#"{}<table:table-row table:number-rows-repeated="1000000"><table:table-cell/></table:table-row>{}"#,
        ods_row(&[ods_text("id"), ods_text("flag"), ods_text("reason")]),
        ods_row(&[
            ods_text("1"),
            ods_cell(r#"table:number-columns-repeated="60""#, ""),
            ods_text("x")
        ])
    );
    hand_made_ods(&work.path("repeated.ods"), &[("S", false, &repeated)], "S");
    let run = validate_quickly(&work, "repeated.ods");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("repeats its rows and cells"),
        "{}",
        run.stderr
    );
}
