//! `onewindow import` as an operator runs it: good and bad rows, idempotent re-imports,
//! licence files, refused files and resources, and the shipped demo data. Every test runs
//! on SQLite and again on PostgreSQL (ignored when the PostgreSQL/Redis run is not
//! configured).

use std::path::{Path, PathBuf};
use std::process::Command;

use onewindow::store::BaseRecord;

use crate::backend_tests;
use crate::harness::{Backend, Resources, definitions_dir};

backend_tests!(
    sync: a_csv_with_bad_rows_stores_the_good_ones_and_lists_the_bad_by_line,
    reimporting_the_same_file_changes_nothing_and_a_changed_row_is_updated,
    a_json_lines_licence_file_stores_one_record_per_licence,
    an_unknown_or_missing_column_refuses_the_whole_file,
    resources_the_base_library_does_not_hold_are_refused,
    the_shipped_demo_files_import_without_rejections_and_again_without_changes,
    a_file_larger_than_a_batch_is_stored_in_batches_and_repeats_are_found_across_them,
);

const WANG: &str = "150702198506123025";
const LI: &str = "150702199203151541";
const ZHAO: &str = "150721197809234018";
const DAIRY: &str = "91150700MA0N2C3D40";

/// One backend's database and a scratch directory for input files.
struct Ctx {
    res: Resources,
    rt: tokio::runtime::Runtime,
}

impl Ctx {
    fn database_url(&self) -> String {
        self.res.settings().database_url()
    }

    /// Writes an input file into the scratch directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.res.tmp.path().join(name);
        std::fs::write(&p, text).expect("write input");
        p
    }

    /// Runs `onewindow import <args…>` against this backend.
    fn import(&self, args: &[&str]) -> Out {
        let mut c = Command::new(env!("CARGO_BIN_EXE_onewindow"));
        for (k, _) in std::env::vars() {
            if k.starts_with("ONEWINDOW_")
                || k == "DATABASE_URL"
                || k == "REDIS_URL"
                || k == "RUST_LOG"
            {
                c.env_remove(k);
            }
        }
        c.arg("import")
            .args(args)
            .env("ONEWINDOW_DATA_DIR", self.res.tmp.path())
            .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
            .env("ONEWINDOW_KEY_ENCRYPTION_KEY", crate::harness::TEST_KEK);
        if let Some(db) = &self.res.database_url {
            c.env("DATABASE_URL", db);
        }
        let out = c.output().expect("run onewindow import");
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn import_file(&self, resource: &str, file: &Path) -> Out {
        self.import(&[resource, file.to_str().expect("utf-8 path")])
    }

    /// Reads the base library back as the gateway does: found by the subject's blind
    /// index, opened with the personal-data key.
    fn records(&self, resource: &str, subject: &str) -> Vec<BaseRecord> {
        self.rt.block_on(async {
            let settings = self.res.settings();
            let store = onewindow::store::connect(&self.database_url(), 2)
                .await
                .expect("open store");
            let (_, sealer) = onewindow::app::personal_data_keys(&settings, store.as_ref())
                .await
                .expect("keys");
            let base = onewindow::sharing::provider::BaseLibrary::new(store.clone(), sealer);
            let r = base
                .records(resource, subject)
                .await
                .expect("base records")
                .into_iter()
                .map(|r| BaseRecord {
                    resource: resource.to_owned(),
                    subject: subject.to_owned(),
                    record: r.record,
                    data: serde_json::Value::Object(r.data),
                    updated_at: r.as_of,
                })
                .collect();
            // At rest the subject is only a blind index and the data is sealed.
            assert!(
                store
                    .base_records(resource, subject)
                    .await
                    .expect("raw")
                    .is_empty(),
                "no row is keyed by the plain ID number"
            );
            store.close().await;
            r
        })
    }

    fn count(&self, resource: &str) -> i64 {
        self.rt.block_on(async {
            let store = onewindow::store::connect(&self.database_url(), 2)
                .await
                .expect("open store");
            let n = store
                .count_base_records(resource)
                .await
                .expect("count base records");
            store.close().await;
            n
        })
    }
}

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `body` on fresh resources of `backend`.
fn on_backend(backend: Backend, body: impl Fn(&Ctx)) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let res = rt.block_on(Resources::new(backend));
    body(&Ctx { res, rt });
}

const PERSON_HEADER: &str =
    "id_number,name,gender,birth_date,ethnicity,phone,household_address,residence_address\n";

fn a_csv_with_bad_rows_stores_the_good_ones_and_lists_the_bad_by_line(b: Backend) {
    on_backend(b, |ctx| {
        let csv = format!(
            "{PERSON_HEADER}\
             {WANG},王小明,2,1985-06-12,汉族,13800000001,内蒙古自治区呼伦贝尔市海拉尔区胜利街道1号,\n\
             {LI},李芳,2,1992-03-15,汉族,0470-8221234,内蒙古自治区呼伦贝尔市海拉尔区正阳街道2号,内蒙古自治区呼伦贝尔市海拉尔区健康街道3号\n\
             150702198506121234,错号,1,1985-06-12,汉族,13800000009,,\n\
             {ZHAO},赵强,1,1978-09-31,汉族,13800000003,,\n\
             {ZHAO},赵强,1,1978-09-23,汉族,12345,,\n\
             {WANG},王小明,2,1985-06-12,汉族,13800000001,,\n\
             ,无号,1,1990-01-01,汉族,,,\n\
             {ZHAO},赵强,1,1978-09-23,汉族,13800000003,\"内蒙古自治区呼伦贝尔市阿荣旗那吉镇兴安路5号\",\n\
             {ZHAO},赵强\n"
        );
        let file = ctx.file("people.csv", &csv);
        let out = ctx.import_file("person", &file);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert_eq!(
            out.lines(),
            vec![
                "person: 3 added, 0 updated, 0 unchanged, 6 rejected",
                "line 4: id_number 150702********1234 fails the GB 11643 check digit",
                "line 5: birth_date is not a real date written YYYY-MM-DD",
                "line 6: phone is not a mobile number (11 digits, 1[3-9]…) or a landline (like 0470-8221234)",
                "line 7: duplicate of line 2",
                "line 8: id_number is missing",
                "line 10: has 2 fields but the header has 8",
            ],
            "{out:?}"
        );
        assert!(
            !out.stdout.contains("150702198506121234") && !out.stdout.contains("12345,"),
            "no personal data in full: {}",
            out.stdout
        );
        assert_eq!(ctx.count("person"), 3);

        let wang = ctx.records("person", WANG);
        assert_eq!(wang.len(), 1);
        assert_eq!(wang[0].record, "");
        assert_eq!(
            wang[0].data,
            serde_json::json!({
                "id_number": WANG,
                "name": "王小明",
                "gender": "2",
                "birth_date": "1985-06-12",
                "ethnicity": "汉族",
                "phone": "13800000001",
                "household_address": "内蒙古自治区呼伦贝尔市海拉尔区胜利街道1号",
            }),
            "an empty cell is not stored"
        );
        let zhao = ctx.records("person", ZHAO);
        assert_eq!(
            zhao[0].data["household_address"],
            "内蒙古自治区呼伦贝尔市阿荣旗那吉镇兴安路5号"
        );
    });
}

fn reimporting_the_same_file_changes_nothing_and_a_changed_row_is_updated(b: Backend) {
    on_backend(b, |ctx| {
        let csv = format!(
            "uscc,name,legal_rep,legal_rep_id_number,registered_address,registered_capital,business_scope,established_on\n\
             {DAIRY},呼伦贝尔草原乳业有限公司,陈静,150702200108081229,内蒙古自治区呼伦贝尔市海拉尔区乳业路8号,3000,乳制品生产,2019-04-18\n\
             91350100M000100Y43,某某贸易有限公司,王小明,{WANG},内蒙古自治区呼伦贝尔市海拉尔区河东路1号,12.5,贸易,2020-01-02\n"
        );
        let file = ctx.file("enterprise.csv", &csv);
        let out = ctx.import_file("enterprise", &file);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.lines(),
            vec!["enterprise: 2 added, 0 updated, 0 unchanged, 0 rejected"]
        );
        let first = ctx.records("enterprise", DAIRY);
        assert_eq!(first[0].data["registered_capital"], serde_json::json!(3000));
        assert_eq!(first[0].data["uscc"], DAIRY);

        let out = ctx.import_file("enterprise", &file);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.lines(),
            vec!["enterprise: 0 added, 0 updated, 2 unchanged, 0 rejected"]
        );
        assert_eq!(
            ctx.records("enterprise", DAIRY)[0].updated_at,
            first[0].updated_at,
            "an unchanged record is not written again"
        );

        let changed = csv.replace(",3000,", ",3500,");
        let file = ctx.file("enterprise-2.csv", &changed);
        let out = ctx.import_file("enterprise", &file);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.lines(),
            vec!["enterprise: 0 added, 1 updated, 1 unchanged, 0 rejected"]
        );
        assert_eq!(
            ctx.records("enterprise", DAIRY)[0].data["registered_capital"],
            serde_json::json!(3500)
        );
        assert_eq!(ctx.count("enterprise"), 2);
    });
}

fn a_json_lines_licence_file_stores_one_record_per_licence(b: Backend) {
    on_backend(b, |ctx| {
        let lines = [
            format!(
                r#"{{"holder":"{WANG}","licence":"resident_id_card","licence_no":"{WANG}","issuer":"呼伦贝尔市公安局海拉尔区分局","issued_on":"2016-12-05","valid_until":"2036-12-05","holder_name":"王小明"}}"#
            ),
            format!(
                r#"{{"holder":"{WANG}","licence":"household_register","licence_no":"150702123456","issuer":"呼伦贝尔市公安局海拉尔区分局胜利派出所"}}"#
            ),
            String::new(),
            format!(
                r#"{{"holder":"{DAIRY}","licence":"business_licence","licence_no":"{DAIRY}","issuer":"呼伦贝尔市市场监督管理局","issued_on":"2019-04-18","valid_until":"长期"}}"#
            ),
            format!(
                r#"{{"holder":"{WANG}","licence":"business_licence","licence_no":"x","issuer":"呼伦贝尔市市场监督管理局"}}"#
            ),
            format!(r#"{{"holder":"{LI}","licence":"resident_id_card","#),
            format!(
                r#"{{"holder":"{WANG}","licence":"resident_id_card","licence_no":"{WANG}","issuer":"别处"}}"#
            ),
            format!(
                r#"{{"holder":"{LI}","licence":"marriage_certificate","licence_no":"J150702-2020-000001","issuer":"海拉尔区民政局","issued_on":"2020-05-20"}}"#
            ),
        ];
        let file = ctx.file("licences.ndjson", &(lines.join("\n") + "\n"));
        let out = ctx.import_file("elicence", &file);
        assert_eq!(out.code, Some(3), "{out:?}");
        let got = out.lines();
        assert_eq!(
            got[0], "elicence: 4 added, 0 updated, 0 unchanged, 3 rejected",
            "{out:?}"
        );
        assert_eq!(
            got[1],
            "line 5: holder 150702********3025 is a resident ID number, not a unified social credit code (a business_licence is held by an enterprise)"
        );
        assert!(got[2].starts_with("line 6: is not valid JSON"), "{out:?}");
        assert_eq!(got[3], "line 7: duplicate of line 1");
        assert!(!out.stdout.contains(WANG), "{}", out.stdout);

        let mut wang = ctx.records("elicence", WANG);
        wang.sort_by(|a, b| a.record.cmp(&b.record));
        assert_eq!(
            wang.iter().map(|r| r.record.as_str()).collect::<Vec<_>>(),
            ["household_register", "resident_id_card"]
        );
        assert_eq!(
            wang[1].data,
            serde_json::json!({
                "licence_no": WANG,
                "issuer": "呼伦贝尔市公安局海拉尔区分局",
                "issued_on": "2016-12-05",
                "valid_until": "2036-12-05",
                "holder_name": "王小明",
            })
        );
        let dairy = ctx.records("elicence", DAIRY);
        assert_eq!(dairy.len(), 1);
        assert_eq!(dairy[0].data["valid_until"], "长期");

        // --format overrides the extension
        let renamed = ctx.file("licences.txt", &(lines[0].clone() + "\n"));
        let out = ctx.import(&["elicence", renamed.to_str().expect("path")]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("--format"), "{out:?}");
        let out = ctx.import(&[
            "elicence",
            renamed.to_str().expect("path"),
            "--format",
            "jsonl",
        ]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.lines(),
            ["elicence: 0 added, 0 updated, 1 unchanged, 0 rejected"]
        );
    });
}

fn an_unknown_or_missing_column_refuses_the_whole_file(b: Backend) {
    on_backend(b, |ctx| {
        let file = ctx.file(
            "people.csv",
            &format!("id_number,name,nickname\n{WANG},王小明,小王\n"),
        );
        let out = ctx.import_file("person", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(
            out.stderr.contains("unknown column(s) \"nickname\"")
                && out.stderr.contains(
                    "the columns of person are: id_number, name, gender, birth_date, ethnicity, phone, household_address, residence_address"
                ),
            "{out:?}"
        );

        let file = ctx.file("no-key.csv", "name,phone\n王小明,13800000001\n");
        let out = ctx.import_file("person", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("the file has no id_number column"),
            "{out:?}"
        );

        // JSON lines: a bad key on a late line refuses the file before anything is stored
        let jsonl = format!(
            "{{\"uscc\":\"{DAIRY}\",\"dishonest_list_status\":\"0\"}}\n{{\"uscc\":\"91350100M000100Y43\",\"dishonest_list_status\":\"0\",\"remark\":\"x\"}}\n"
        );
        let file = ctx.file("credit.jsonl", &jsonl);
        let out = ctx.import_file("credit", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("\"remark\" (first on line 2)")
                && out.stderr.contains("uscc, dishonest_list_status"),
            "{out:?}"
        );
        assert_eq!(ctx.count("person"), 0);
        assert_eq!(ctx.count("credit"), 0);
    });
}

fn resources_the_base_library_does_not_hold_are_refused(b: Backend) {
    on_backend(b, |ctx| {
        let file = ctx.file("records.csv", &format!("id_number,has_record\n{WANG},0\n"));
        let out = ctx.import_file("criminal_record", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr
                .contains("criminal_record is not shared (不予共享)"),
            "{out:?}"
        );

        let file = ctx.file(
            "insurance.csv",
            &format!("id_number,insured_status\n{WANG},2\n"),
        );
        let out = ctx.import_file("social_insurance", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains(
                "social_insurance is reached through the providing department's data API"
            ),
            "{out:?}"
        );

        let out = ctx.import_file("people", &file);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains(
                "unknown resource \"people\"; the resources that can be imported are: person, enterprise, credit, elicence"
            ),
            "{out:?}"
        );
    });
}

fn the_shipped_demo_files_import_without_rejections_and_again_without_changes(b: Backend) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-data/demo");
    let files = [
        ("person", "person.csv"),
        ("enterprise", "enterprise.csv"),
        ("credit", "credit.csv"),
        ("elicence", "elicence.jsonl"),
    ];
    let rows = |file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).expect("demo file");
        let n = text.lines().filter(|l| !l.trim().is_empty()).count();
        if file.ends_with(".csv") { n - 1 } else { n }
    };
    on_backend(b, |ctx| {
        for (resource, file) in files {
            let path = dir.join(file);
            let n = rows(file);
            let out = ctx.import_file(resource, &path);
            assert_eq!(out.code, Some(0), "{out:?}");
            assert_eq!(
                out.lines(),
                [format!(
                    "{resource}: {n} added, 0 updated, 0 unchanged, 0 rejected"
                )],
                "{out:?}"
            );
            let out = ctx.import_file(resource, &path);
            assert_eq!(
                out.lines(),
                [format!(
                    "{resource}: 0 added, 0 updated, {n} unchanged, 0 rejected"
                )],
                "{out:?}"
            );
        }
        assert!(ctx.count("person") >= 50);
        assert!(ctx.count("enterprise") >= 10);
        // the personas find their own data
        for (id, name, phone) in [
            (WANG, "王小明", "13800000001"),
            (LI, "李芳", "13800000002"),
            (ZHAO, "赵强", "13800000003"),
            ("150702200108081229", "陈静", "13800000004"),
        ] {
            let p = ctx.records("person", id);
            assert_eq!(p.len(), 1, "{name}");
            assert_eq!(p[0].data["name"], name);
            assert_eq!(p[0].data["phone"], phone);
            let licences: Vec<String> = ctx
                .records("elicence", id)
                .into_iter()
                .map(|r| r.record)
                .collect();
            assert!(
                licences.contains(&"resident_id_card".to_owned())
                    && licences.contains(&"household_register".to_owned()),
                "{name}: {licences:?}"
            );
        }
        let dairy = ctx.records("enterprise", DAIRY);
        assert_eq!(dairy[0].data["name"], "呼伦贝尔草原乳业有限公司");
        assert_eq!(dairy[0].data["legal_rep"], "陈静");
        assert_eq!(
            ctx.records("credit", DAIRY)[0].data["dishonest_list_status"],
            "0"
        );
        assert!(
            ctx.records("elicence", DAIRY)
                .iter()
                .any(|r| r.record == "business_licence")
        );
    });
}

#[test]
fn help_names_the_exit_statuses() {
    let out = Command::new(env!("CARGO_BIN_EXE_onewindow"))
        .args(["import", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("3 some rows rejected") && text.contains("--format"),
        "{text}"
    );
}

/// A valid resident ID number of someone born in 海拉尔区 on 1990-01-`day`.
fn resident_id(day: u32, seq: u32) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let body = format!("150702199001{day:02}{seq:03}");
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    format!("{body}{}", C[(sum % 11) as usize])
}

fn a_file_larger_than_a_batch_is_stored_in_batches_and_repeats_are_found_across_them(b: Backend) {
    on_backend(b, |ctx| {
        let mut csv = String::from("id_number,name\n");
        let mut n = 0;
        for day in 1..=28 {
            for seq in 0..43 {
                csv.push_str(&format!("{},居民{n}\n", resident_id(day, seq)));
                n += 1;
            }
        }
        assert_eq!(n, 1204);
        csv.push_str(&format!("{},又一次\n", resident_id(1, 0)));
        let file = ctx.file("many.csv", &csv);
        let out = ctx.import_file("person", &file);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert_eq!(
            out.lines(),
            [
                "person: 1204 added, 0 updated, 0 unchanged, 1 rejected",
                "line 1206: duplicate of line 2",
            ]
        );
        let out = ctx.import_file("person", &file);
        assert_eq!(
            out.lines()[0],
            "person: 0 added, 0 updated, 1204 unchanged, 1 rejected"
        );
        assert_eq!(ctx.count("person"), 1204);
    });
}
