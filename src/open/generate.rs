//! The files of generated datasets, made from what the gateway holds: the service
//! catalogue (`catalogue`), case statistics by month, service and department over the
//! last twelve months (`case_stats`), and aggregated figures (`figures`). Each comes
//! with its schema, so the same checks run on them as on an upload.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

use super::check::{FieldType, OpenField, to_csv};
use crate::http::error::{AppError, AppResult, Message};
use crate::state::AppState;

fn f(name: &str, zh: &str, en: &str, kind: FieldType, unit: Option<&str>) -> OpenField {
    OpenField {
        name: name.into(),
        title_zh: zh.into(),
        title_en: en.into(),
        kind,
        unit: unit.map(str::to_owned),
    }
}

/// The schema and CSV file of a generated source.
pub async fn build(
    app: &AppState,
    source: &str,
    now: DateTime<Utc>,
) -> AppResult<(Vec<OpenField>, String)> {
    match source {
        "catalogue" => Ok(catalogue(app)),
        "case_stats" => case_stats(app, now).await,
        "figures" => figures(app).await,
        _ => Err(AppError::Invalid(vec![crate::http::error::FieldError {
            field: "source".into(),
            message: Message::new("没有这种数据来源。", "No such source."),
        }])),
    }
}

fn dept_names(app: &AppState, uscc: &str) -> (String, String) {
    app.catalogue
        .department(uscc)
        .map(|d| (d.name.clone(), d.name_en.clone()))
        .unwrap_or_else(|| (uscc.to_owned(), uscc.to_owned()))
}

/// The service catalogue (政务服务事项目录): one row per service.
pub fn catalogue(app: &AppState) -> (Vec<OpenField>, String) {
    let schema = vec![
        f(
            "service_code",
            "事项编码",
            "Service code",
            FieldType::String,
            None,
        ),
        f(
            "name_zh",
            "事项名称",
            "Service name (Chinese)",
            FieldType::String,
            None,
        ),
        f(
            "name_en",
            "事项英文名称",
            "Service name (English)",
            FieldType::String,
            None,
        ),
        f(
            "item_type",
            "事项类型",
            "Item type",
            FieldType::String,
            None,
        ),
        f(
            "case_kind",
            "办件类型",
            "Case kind",
            FieldType::String,
            None,
        ),
        f(
            "department_code",
            "实施部门代码",
            "Department code",
            FieldType::String,
            None,
        ),
        f(
            "department_zh",
            "实施部门",
            "Department",
            FieldType::String,
            None,
        ),
        f(
            "legal_limit",
            "法定时限",
            "Legal time limit",
            FieldType::Integer,
            Some("天"),
        ),
        f(
            "promised_limit",
            "承诺时限",
            "Promised time limit",
            FieldType::Integer,
            Some("天"),
        ),
        f(
            "online",
            "可网上办理",
            "Can be applied for online",
            FieldType::Boolean,
            None,
        ),
        f(
            "max_visits",
            "最多跑动次数",
            "Most visits needed",
            FieldType::Integer,
            Some("次"),
        ),
    ];
    let header: Vec<String> = schema.iter().map(|f| f.name.clone()).collect();
    let rows: Vec<Vec<String>> = app
        .catalogue
        .services()
        .iter()
        .map(|s| {
            let code = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            vec![
                s.code.clone(),
                s.name.clone(),
                s.name_en.clone(),
                s.item_type.code().to_owned(),
                code(serde_json::to_value(s.case_kind).unwrap_or_default()),
                s.department.clone(),
                dept_names(app, &s.department).0,
                s.guide.legal_limit.value.to_string(),
                s.guide.promised_limit.value.to_string(),
                s.channels
                    .iter()
                    .any(|c| code(serde_json::to_value(c).unwrap_or_default()) == "online")
                    .to_string(),
                s.guide.max_visits.to_string(),
            ]
        })
        .collect();
    (schema, to_csv(&header, &rows))
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The start of the month (China time) `back` months before `now`'s, in UTC.
fn month_start(now: DateTime<Utc>, back: u32) -> (String, DateTime<Utc>) {
    let local = now.with_timezone(&cst());
    let mut y = local.year();
    let mut m = local.month() as i32 - back as i32;
    while m < 1 {
        m += 12;
        y -= 1;
    }
    let first = NaiveDate::from_ymd_opt(y, m as u32, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| cst().from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    (format!("{y:04}-{m:02}"), first)
}

/// Case statistics (办件统计): per month (China time), service and department, cases
/// lodged, concluded and concluded on time, over the last twelve months.
pub async fn case_stats(app: &AppState, now: DateTime<Utc>) -> AppResult<(Vec<OpenField>, String)> {
    let schema = vec![
        f("month", "月份", "Month", FieldType::String, None),
        f(
            "service_code",
            "事项编码",
            "Service code",
            FieldType::String,
            None,
        ),
        f("service_zh", "事项名称", "Service", FieldType::String, None),
        f(
            "department_code",
            "部门代码",
            "Department code",
            FieldType::String,
            None,
        ),
        f(
            "department_zh",
            "部门",
            "Department",
            FieldType::String,
            None,
        ),
        f(
            "lodged",
            "申请件数",
            "Cases lodged",
            FieldType::Integer,
            Some("件"),
        ),
        f(
            "concluded",
            "办结件数",
            "Cases concluded",
            FieldType::Integer,
            Some("件"),
        ),
        f(
            "on_time",
            "按时办结件数",
            "Concluded on time",
            FieldType::Integer,
            Some("件"),
        ),
        f(
            "on_time_rate",
            "按时办结率",
            "Share concluded on time",
            FieldType::Number,
            Some("%"),
        ),
    ];
    let header: Vec<String> = schema.iter().map(|f| f.name.clone()).collect();
    let mut rows = Vec::new();
    for back in (0..12).rev() {
        let (month, from) = month_start(now, back);
        let (_, to) = if back == 0 {
            (String::new(), now + chrono::Duration::seconds(1))
        } else {
            month_start(now, back - 1)
        };
        for c in app.store.case_counts(from, to).await? {
            let service = app
                .catalogue
                .service(&c.service)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| c.service.clone());
            let rate = if c.concluded > 0 {
                format!("{:.1}", c.on_time as f64 * 100.0 / c.concluded as f64)
            } else {
                String::new()
            };
            rows.push(vec![
                month.clone(),
                c.service.clone(),
                service,
                c.department.clone(),
                dept_names(app, &c.department).0,
                c.lodged.to_string(),
                c.concluded.to_string(),
                c.on_time.to_string(),
                rate,
            ]);
        }
    }
    Ok((schema, to_csv(&header, &rows)))
}

/// Aggregated figures (汇总指标): one row per figure.
pub async fn figures(app: &AppState) -> AppResult<(Vec<OpenField>, String)> {
    let schema = vec![
        f(
            "indicator",
            "指标代码",
            "Indicator",
            FieldType::String,
            None,
        ),
        f(
            "name_zh",
            "指标名称",
            "Name (Chinese)",
            FieldType::String,
            None,
        ),
        f(
            "name_en",
            "指标英文名称",
            "Name (English)",
            FieldType::String,
            None,
        ),
        f("value", "数值", "Value", FieldType::Number, None),
        f("unit", "单位", "Unit", FieldType::String, None),
    ];
    let header: Vec<String> = schema.iter().map(|f| f.name.clone()).collect();
    let figs = app.store.case_figures().await?;
    let total: i64 = figs.by_status.iter().map(|c| c.n).sum();
    let pct = |a: i64, b: i64| {
        if b > 0 {
            format!("{:.1}", a as f64 * 100.0 / b as f64)
        } else {
            String::new()
        }
    };
    let avg = if figs.rated > 0 {
        format!("{:.2}", figs.rating_sum as f64 / figs.rated as f64)
    } else {
        String::new()
    };
    let online = app
        .catalogue
        .services()
        .iter()
        .filter(|s| {
            s.channels.iter().any(|c| {
                serde_json::to_value(c)
                    .ok()
                    .as_ref()
                    .and_then(|v| v.as_str())
                    == Some("online")
            })
        })
        .count();
    let row = |k: &str, zh: &str, en: &str, v: String, u: &str| {
        vec![k.to_owned(), zh.to_owned(), en.to_owned(), v, u.to_owned()]
    };
    let rows = vec![
        row(
            "services",
            "政务服务事项数",
            "Services offered",
            app.catalogue.services().len().to_string(),
            "项",
        ),
        row(
            "services_online",
            "可网上办理事项数",
            "Services that can be applied for online",
            online.to_string(),
            "项",
        ),
        row(
            "departments",
            "实施部门数",
            "Departments",
            app.catalogue.departments().len().to_string(),
            "个",
        ),
        row("cases", "办件总数", "Cases", total.to_string(), "件"),
        row(
            "concluded_with_due",
            "有时限的办结件数",
            "Concluded cases with a due date",
            figs.concluded_with_due.to_string(),
            "件",
        ),
        row(
            "on_time_rate",
            "按时办结率",
            "Share concluded on time",
            pct(figs.concluded_on_time, figs.concluded_with_due),
            "%",
        ),
        row(
            "rated",
            "评价件数",
            "Cases rated",
            figs.rated.to_string(),
            "件",
        ),
        row("average_rating", "平均评价", "Average rating", avg, "分"),
    ];
    Ok((schema, to_csv(&header, &rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_go_back_across_the_year() {
        let now = Utc
            .with_ymd_and_hms(2026, 2, 10, 0, 0, 0)
            .single()
            .expect("a date");
        assert_eq!(month_start(now, 0).0, "2026-02");
        let (m, at) = month_start(now, 3);
        assert_eq!(m, "2025-11");
        // Midnight in China is 16:00 the day before in UTC.
        assert_eq!(
            at,
            Utc.with_ymd_and_hms(2025, 10, 31, 16, 0, 0)
                .single()
                .expect("a date")
        );
        // 31 Dec 20:00 UTC is already January in China.
        let now = Utc
            .with_ymd_and_hms(2025, 12, 31, 20, 0, 0)
            .single()
            .expect("a date");
        assert_eq!(month_start(now, 0).0, "2026-01");
    }
}
