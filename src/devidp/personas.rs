//! The demo personas (演示身份): one table, so the picker page, the ID token and the
//! userinfo answer can never disagree about who someone is.
//!
//! Every resident ID number (身份证号) and USCC (统一社会信用代码) here is made up but passes
//! its check digit, so the gateway's edge validation accepts it like a real one.

use std::fmt;

use serde_json::{Map, Value};

/// Identity assurance level 1 (低): e.g. a phone number only.
pub const LOA_1: &str = "urn:onewindow:loa:1";
/// Identity assurance level 2 (中): real-name verified.
pub const LOA_2: &str = "urn:onewindow:loa:2";
/// Identity assurance level 3 (高): verified in person or with a certificate.
pub const LOA_3: &str = "urn:onewindow:loa:3";

/// A demo user a newcomer can log in as, with the claims the gateway reads by default.
///
/// Claims a persona does not have are `None` or empty and are left out of the ID token
/// and the userinfo answer altogether (never sent as `null`).
pub struct Persona {
    /// Stable id, also the OIDC subject (`sub`) and the `login_hint` that selects it.
    pub id: &'static str,
    /// `citizen` (自然人), `enterprise` (法人) or `staff` (工作人员).
    pub kind: &'static str,
    /// Display name, claim `name`.
    pub name: &'static str,
    /// What this persona is for, in Chinese (shown on the picker page).
    pub description_zh: &'static str,
    /// What this persona is for, in English (shown on the picker page).
    pub description_en: &'static str,
    /// Identity assurance level, claim `acr` (one of [`LOA_1`], [`LOA_2`], [`LOA_3`]).
    pub acr: &'static str,
    /// Resident ID number, claim `id_number`.
    pub id_number: Option<&'static str>,
    /// Mobile number, claim `phone_number`.
    pub phone_number: Option<&'static str>,
    /// `email` (made-up addresses under example domains).
    pub email: Option<&'static str>,
    /// Enterprise USCC, claim `uscc`.
    pub uscc: Option<&'static str>,
    /// Enterprise name, claim `enterprise_name`.
    pub enterprise_name: Option<&'static str>,
    /// The user's role in the enterprise (`legal_representative`, `agent`), claim `enterprise_role`.
    pub enterprise_role: Option<&'static str>,
    /// Staff roles (`clerk`, `department_officer`, `operator`), claim `roles`.
    pub roles: &'static [&'static str],
    /// The department (by USCC) a department officer works for, claim `department`.
    pub department: Option<&'static str>,
    /// The service hall a window clerk works in, claim `service_hall`.
    pub service_hall: Option<&'static str>,
    /// The departments (by USCC) whose services the clerk's hall takes in, claim `hall_departments`.
    pub hall_departments: &'static [&'static str],
}

/// Resident ID numbers must not reach a log, even fake ones: `Debug` names the persona only.
impl fmt::Debug for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persona")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("acr", &self.acr)
            .finish_non_exhaustive()
    }
}

impl Persona {
    /// The persona's claims as sent in the ID token and by the userinfo endpoint
    /// (without `sub`, `iss`, `aud` and the other protocol claims).
    pub fn claims(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), Value::from(v));
            }
        };
        put("name", Some(self.name));
        put("acr", Some(self.acr));
        put("id_number", self.id_number);
        put("phone_number", self.phone_number);
        put("email", self.email);
        put("uscc", self.uscc);
        put("enterprise_name", self.enterprise_name);
        put("enterprise_role", self.enterprise_role);
        put("department", self.department);
        put("service_hall", self.service_hall);
        if !self.roles.is_empty() {
            m.insert("roles".to_owned(), Value::from(self.roles.to_vec()));
        }
        if !self.hall_departments.is_empty() {
            m.insert(
                "hall_departments".to_owned(),
                Value::from(self.hall_departments.to_vec()),
            );
        }
        m
    }

    /// The kind as a label for people: (Chinese, English).
    pub fn kind_label(&self) -> (&'static str, &'static str) {
        match self.kind {
            "citizen" => ("自然人", "Citizen"),
            "enterprise" => ("法人", "Enterprise"),
            "staff" => ("工作人员", "Staff"),
            _ => ("其他", "Other"),
        }
    }

    /// The assurance level as a label for people: (Chinese, English).
    pub fn acr_label(&self) -> (&'static str, &'static str) {
        match self.acr {
            LOA_1 => ("认证等级 1（低）", "Assurance level 1 (low)"),
            LOA_2 => ("认证等级 2（中）", "Assurance level 2 (substantial)"),
            LOA_3 => ("认证等级 3（高）", "Assurance level 3 (high)"),
            _ => ("认证等级未知", "Unknown assurance level"),
        }
    }
}

/// A persona with only the always-present fields set, to keep the table short.
const BASE: Persona = Persona {
    id: "",
    kind: "citizen",
    name: "",
    description_zh: "",
    description_en: "",
    acr: LOA_2,
    id_number: None,
    phone_number: None,
    email: None,
    uscc: None,
    enterprise_name: None,
    enterprise_role: None,
    roles: &[],
    department: None,
    service_hall: None,
    hall_departments: &[],
};

/// 呼伦贝尔市市场监督管理局 (the hall's first department; also 周涛's department).
const MARKET_REGULATION: &str = "11150700MB1530001X";

static PERSONAS: &[Persona] = &[
    Persona {
        id: "citizen-wang",
        kind: "citizen",
        name: "王小明",
        description_zh: "已实名认证的市民（认证等级 2），可办理大多数个人事项。",
        description_en: "Resident with a verified identity (assurance level 2); can apply for most personal services.",
        acr: LOA_2,
        id_number: Some("150702198506123025"),
        phone_number: Some("13800000001"),
        email: Some("wang.xiaoming@example.cn"),
        ..BASE
    },
    Persona {
        id: "citizen-li",
        kind: "citizen",
        name: "李芳",
        description_zh: "高等级认证的市民（认证等级 3），可办理要求最高认证等级的事项。",
        description_en: "Resident with high assurance (level 3); can apply for services that need the highest level.",
        acr: LOA_3,
        id_number: Some("150702199203151541"),
        phone_number: Some("13800000002"),
        email: Some("li.fang@example.cn"),
        ..BASE
    },
    Persona {
        id: "citizen-zhao",
        kind: "citizen",
        name: "赵强",
        description_zh: "低等级认证的市民（认证等级 1），用于演示“认证等级不足”页面。",
        description_en: "Resident with low assurance (level 1); shows the “assurance too low” page.",
        acr: LOA_1,
        id_number: Some("150721197809234018"),
        phone_number: Some("13800000003"),
        email: Some("zhao.qiang@example.cn"),
        ..BASE
    },
    Persona {
        id: "enterprise-chen",
        kind: "enterprise",
        name: "陈静",
        description_zh: "呼伦贝尔草原乳业有限公司的法定代表人，代表企业办理法人事项。",
        description_en: "Legal representative of Hulunbuir Grassland Dairy Co., Ltd.; applies for services on the enterprise's behalf.",
        acr: LOA_2,
        id_number: Some("150702200108081229"),
        phone_number: Some("13800000004"),
        email: Some("chen.jing@caoyuan-dairy.example.cn"),
        uscc: Some("91150700MA0N2C3D40"),
        enterprise_name: Some("呼伦贝尔草原乳业有限公司"),
        enterprise_role: Some("legal_representative"),
        ..BASE
    },
    Persona {
        id: "clerk-sun",
        kind: "staff",
        name: "孙丽",
        description_zh: "呼伦贝尔市政务服务中心的窗口人员，为到现场的申请人一窗受理。",
        description_en: "Window clerk at the Hulunbuir Government Service Centre; takes in applications for walk-in applicants.",
        acr: LOA_2,
        roles: &["clerk"],
        service_hall: Some("hlbe-zwfwzx"),
        hall_departments: &[
            MARKET_REGULATION,
            "11150700MB15300021",
            "11150700MB15300034",
        ],
        ..BASE
    },
    Persona {
        id: "officer-zhou",
        kind: "staff",
        name: "周涛",
        description_zh: "市场监督管理局的部门人员，审查并办结本部门的办件。",
        description_en: "Officer of the Market Regulation Administration; reviews and concludes the department's cases.",
        acr: LOA_2,
        roles: &["department_officer"],
        department: Some(MARKET_REGULATION),
        ..BASE
    },
    Persona {
        id: "officer-ma",
        kind: "staff",
        name: "马强",
        description_zh: "人力资源和社会保障局的部门人员，审查并办结社保卡等办件。",
        description_en: "Officer of the Human Resources and Social Security Bureau; reviews and concludes social security cases.",
        acr: LOA_2,
        roles: &["department_officer"],
        department: Some("11150700MB15300034"),
        ..BASE
    },
    Persona {
        id: "officer-gao",
        kind: "staff",
        name: "高峰",
        description_zh: "公安局的部门人员，审核其他部门对人口基础信息的共享申请。",
        description_en: "Officer of the Public Security Bureau; decides other departments' requests for the population base data.",
        acr: LOA_2,
        roles: &["department_officer"],
        department: Some("11150700MB15300021"),
        ..BASE
    },
    Persona {
        id: "operator-wu",
        kind: "staff",
        name: "吴敏",
        description_zh: "系统运维人员，配置事项、部门与密钥，查看统计数据。",
        description_en: "Operator; configures services, departments and keys, and sees the figures.",
        acr: LOA_2,
        roles: &["operator"],
        ..BASE
    },
];

/// All demo personas, in the order the picker shows them.
pub fn personas() -> &'static [Persona] {
    PERSONAS
}

/// The persona with this id (the `login_hint` / `sub`), if any: a demo persona, or one of
/// the benchmark's residents (`bench-citizen-N`, never shown on the picker).
pub fn find_persona(id: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.id == id).or_else(|| {
        let n: usize = id.strip_prefix(BENCH_PREFIX)?.parse().ok()?;
        bench_personas().get(n)
    })
}

/// The benchmark's residents: `bench-citizen-0` … `bench-citizen-999`, so a load of many
/// clients lodges as many people, as a city's load does (`bench/run` S1).
pub const BENCH_PERSONAS: usize = 1000;
const BENCH_PREFIX: &str = "bench-citizen-";

/// A benchmark resident's name, resident ID number (valid check digit)
/// and mobile number; the same every time, so `onewindow bench seed` can put them in the
/// base library and the load generator can fill their forms.
pub fn bench_identity(n: usize) -> (String, String, String) {
    const SURNAMES: [&str; 8] = ["赵", "钱", "孙", "李", "周", "吴", "郑", "王"];
    const GIVEN: [&str; 10] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰"];
    let name = format!(
        "{}{}{}",
        SURNAMES[n % 8],
        GIVEN[(n / 8) % 10],
        GIVEN[(n / 80) % 10]
    );
    // Born on a day of 1960–1999 that differs for every n below 13,440.
    let born = format!(
        "{}{:02}{:02}",
        1960 + n % 40,
        1 + (n / 40) % 12,
        1 + (n / 480) % 28
    );
    let first17 = format!("150702{born}{:03}", n % 1000);
    let id = crate::domain::ids::resident_id_with_check(&first17);
    (name, id, format!("139{:08}", n))
}

fn bench_personas() -> &'static [Persona] {
    static ALL: std::sync::OnceLock<Vec<Persona>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        (0..BENCH_PERSONAS)
            .map(|n| {
                let (name, id_number, phone) = bench_identity(n);
                Persona {
                    id: format!("{BENCH_PREFIX}{n}").leak(),
                    name: name.leak(),
                    description_zh: "基准测试用的虚构居民。",
                    description_en: "A made-up resident for the benchmark.",
                    // High assurance, so every service (S5's 无犯罪记录证明 asks level 3) is open.
                    acr: LOA_3,
                    id_number: Some(id_number.leak()),
                    phone_number: Some(phone.leak()),
                    ..BASE
                }
            })
            .collect()
    })
}
