//! The demo's open data: the generated datasets (the service catalogue, case statistics,
//! aggregated figures) and one department upload, published; one answered and one open
//! data request. Idempotent: a dataset already there is left as it is.

use chrono::{DateTime, Utc};

use super::check::{FieldType, OpenField};
use super::{OpenDraftInput, OpenRequestInput};
use crate::state::AppState;

const SAMR: &str = "11150700MB1530001X";
const HRSS: &str = "11150700MB15300034";

fn field(name: &str, zh: &str, en: &str, kind: FieldType, unit: Option<&str>) -> OpenField {
    OpenField {
        name: name.into(),
        title_zh: zh.into(),
        title_en: en.into(),
        kind,
        unit: unit.map(str::to_owned),
    }
}

fn generated(
    id: &str,
    source: &str,
    dept: &str,
    zh: &str,
    en: &str,
    dzh: &str,
    den: &str,
) -> OpenDraftInput {
    OpenDraftInput {
        id: id.into(),
        title_zh: zh.into(),
        title_en: en.into(),
        description_zh: dzh.into(),
        description_en: den.into(),
        topic: "government".into(),
        licence: "city-open-1.0".into(),
        update_cycle: if source == "catalogue" {
            "weekly"
        } else {
            "daily"
        }
        .into(),
        source: source.into(),
        department: Some(dept.into()),
        ..OpenDraftInput::default()
    }
}

/// Seeds the demo's open data (idempotent).
pub async fn seed_demo(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let upload = OpenDraftInput {
        id: "training-providers".into(),
        title_zh: "职业技能培训机构名录".into(),
        title_en: "Vocational training providers".into(),
        description_zh: "经人社局认定的职业技能培训机构，含所在旗县区、年培训能力和近一年考核合格率。".into(),
        description_en: "Training providers recognised by the human resources bureau, with their district, yearly capacity and last year's pass rate.".into(),
        topic: "society".into(),
        licence: "cc-by-4.0".into(),
        update_cycle: "quarterly".into(),
        source: "upload".into(),
        schema: Some(vec![
            field("provider", "机构名称", "Provider", FieldType::String, None),
            field("district", "所在旗县区", "District", FieldType::String, None),
            field("trades", "培训工种", "Trades taught", FieldType::String, None),
            field("places", "年培训能力", "Places a year", FieldType::Integer, Some("人次")),
            field("pass_rate", "考核合格率", "Pass rate", FieldType::Number, Some("%")),
            field("recognised_on", "认定日期", "Recognised on", FieldType::Date, None),
        ]),
        csv: Some(
            "provider,district,trades,places,pass_rate,recognised_on\n\
             海拉尔区职业技能培训学校,海拉尔区,电工;焊工;育婴员,1200,92.5,2019-03-01\n\
             满洲里市技工学校,满洲里市,汽车维修;中式烹调,800,88.0,2020-07-15\n\
             扎兰屯市就业培训中心,扎兰屯市,养老护理员;家政服务员,650,90.2,2018-11-20\n\
             牙克石市职业教育中心,牙克石市,林业机械;电子商务,540,86.7,2021-04-09\n\
             鄂温克族自治旗民族职业技能培训学校,鄂温克族自治旗,民族服饰制作;奶制品加工,300,94.1,2022-06-30\n"
                .into(),
        ),
        ..OpenDraftInput::default()
    };
    let plan = [
        (HRSS, upload),
        (
            SAMR,
            generated(
                "service-catalogue",
                "catalogue",
                SAMR,
                "政务服务事项目录",
                "Service catalogue",
                "一网通办平台上可办理的全部政务服务事项，含实施部门、办件类型、法定和承诺时限、是否可网上办理。由平台按周自动生成。",
                "Every service the one-window gateway offers, with its department, case kind, legal and promised time limits and whether it can be applied for online. Generated weekly by the gateway.",
            ),
        ),
        (
            SAMR,
            generated(
                "case-statistics",
                "case_stats",
                SAMR,
                "政务服务办件统计",
                "Case statistics",
                "近十二个月按月份、事项和部门统计的申请件数、办结件数和按时办结件数。由平台每日自动生成。",
                "Cases lodged, concluded and concluded on time, by month, service and department, over the last twelve months. Generated daily by the gateway.",
            ),
        ),
        (
            SAMR,
            generated(
                "service-figures",
                "figures",
                SAMR,
                "政务服务汇总指标",
                "Service figures",
                "事项数、网办事项数、办件总数、按时办结率、平均评价等汇总指标。由平台每日自动生成。",
                "Aggregated figures: services, services online, cases, share concluded on time, average rating. Generated daily by the gateway.",
            ),
        ),
    ];
    for (dept, input) in plan {
        if app.store.dataset(&input.id).await?.is_some() {
            continue;
        }
        let id = input.id.clone();
        super::draft(app, dept, "seed", input, now)
            .await
            .map_err(|e| anyhow::anyhow!("draft {id}: {e}"))?;
        super::publish(app, &id, now)
            .await
            .map_err(|e| anyhow::anyhow!("publish {id}: {e}"))?;
    }
    if app.store.requests(1).await?.is_empty() {
        let answered = super::file_request(
            app,
            OpenRequestInput {
                title: "职业培训补贴发放统计".into(),
                body:
                    "希望开放按月、按旗县区统计的职业培训补贴发放人次和金额，用于研究培训政策效果。"
                        .into(),
                email: None,
                department: Some(HRSS.into()),
            },
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("request: {e}"))?;
        super::answer_request(
            app,
            answered.id,
            "已列入下季度开放计划，届时以“职业培训补贴发放统计”数据集发布，按月更新。",
            HRSS,
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("answer: {e}"))?;
        super::file_request(
            app,
            OpenRequestInput {
                title: "食品经营许可证发放数量".into(),
                body: "按月统计的新办、变更、注销食品经营许可证数量。".into(),
                email: None,
                department: Some(SAMR.into()),
            },
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("request: {e}"))?;
    }
    Ok(())
}
