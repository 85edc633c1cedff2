//! The page text in English and Chinese, from one catalogue: templates name
//! a message, never spell it, so the two languages cannot drift apart in
//! structure.

use lotline_core::epcis::{InspectionResult, RecallClass, Severity};

use super::view::StepKind;
use crate::quality::root_cause::{FactorKind, LinkKind};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `?lang=` wins; then the best of `Accept-Language` (q-values honoured);
    /// English when neither names a language we have.
    pub fn choose(explicit: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = explicit.and_then(Lang::from_tag) {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for entry in accept_language.unwrap_or_default().split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_tag(tag)
                && q > 0.0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::Zh)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The dashboard's text in this language.
    pub fn dashboard(self) -> &'static Dash {
        match self {
            Lang::En => &DASH_EN,
            Lang::Zh => &DASH_ZH,
        }
    }

    pub fn messages(self) -> &'static Messages {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }
}

/// Every string the public pages show.
#[derive(Debug)]
pub struct Messages {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub title: &'static str,
    pub product: &'static str,
    pub gtin: &'static str,
    pub lot: &'static str,
    pub serial: &'static str,
    pub recalled: &'static str,
    pub recall_advice: &'static str,
    pub recall_class: &'static str,
    pub recall_reason: &'static str,
    pub recall_issued: &'static str,
    pub not_recalled: &'static str,
    pub materials: &'static str,
    pub supplier: &'static str,
    pub no_materials: &'static str,
    pub steps: &'static str,
    pub made_from: &'static str,
    pub private_withheld: &'static str,
    pub within_spec: &'static str,
    pub out_of_spec: &'static str,
    pub cold_chain: &'static str,
    pub cold_ok: &'static str,
    pub cold_excursion: &'static str,
    pub cold_range: &'static str,
    pub cold_none: &'static str,
    pub readings: &'static str,
    pub verified: &'static str,
    pub verified_intro: &'static str,
    pub records: &'static str,
    pub download_proof: &'static str,
    pub proof_hint: &'static str,
    pub corrections: &'static str,
    pub truncated: &'static str,
    pub footer: &'static str,
}

impl Messages {
    pub fn step(&self, kind: &StepKind) -> &'static str {
        let zh = self.lang == "zh";
        match (kind, zh) {
            (StepKind::Production, false) => "Production",
            (StepKind::Production, true) => "生产",
            (StepKind::Serialisation, false) => "Serialised",
            (StepKind::Serialisation, true) => "赋码",
            (StepKind::Packing, false) => "Packed into",
            (StepKind::Packing, true) => "装入",
            (StepKind::Inspection, false) => "Inspection",
            (StepKind::Inspection, true) => "检验",
            (StepKind::NonConformance, false) => "Non-conformance",
            (StepKind::NonConformance, true) => "不合格",
            (StepKind::Certificate, false) => "Certificate",
            (StepKind::Certificate, true) => "证书",
        }
    }

    pub fn result(&self, result: &InspectionResult) -> &'static str {
        let zh = self.lang == "zh";
        match (result, zh) {
            (InspectionResult::Pass, false) => "Pass",
            (InspectionResult::Pass, true) => "合格",
            (InspectionResult::Fail, false) => "Fail",
            (InspectionResult::Fail, true) => "不合格",
            (InspectionResult::Conditional, false) => "Conditional",
            (InspectionResult::Conditional, true) => "有条件放行",
        }
    }

    pub fn severity(&self, severity: &Severity) -> &'static str {
        let zh = self.lang == "zh";
        match (severity, zh) {
            (Severity::Minor, false) => "minor",
            (Severity::Minor, true) => "轻微",
            (Severity::Major, false) => "major",
            (Severity::Major, true) => "严重",
            (Severity::Critical, false) => "critical",
            (Severity::Critical, true) => "致命",
        }
    }

    pub fn class(&self, class: &RecallClass) -> &'static str {
        match class {
            RecallClass::I => "I",
            RecallClass::II => "II",
            RecallClass::III => "III",
        }
    }
}

pub static EN: Messages = Messages {
    lang: "en",
    other_lang: "zh",
    other_lang_name: "中文",
    title: "Product provenance",
    product: "Product",
    gtin: "GTIN",
    lot: "Lot",
    serial: "Serial",
    recalled: "RECALLED — do not use this product",
    recall_advice: "Stop using it and contact the seller or the manufacturer.",
    recall_class: "Recall class",
    recall_reason: "Reason",
    recall_issued: "Issued by",
    not_recalled: "No recall affects this product.",
    materials: "Origin of key materials",
    supplier: "Supplier",
    no_materials: "No upstream materials are recorded.",
    steps: "Production and inspection",
    made_from: "from",
    private_withheld: "measurements not public",
    within_spec: "within spec",
    out_of_spec: "OUT OF SPEC",
    cold_chain: "Cold chain",
    cold_ok: "All temperature readings stayed within range.",
    cold_excursion: "Temperature excursion: a reading left the allowed range.",
    cold_range: "Allowed range",
    cold_none: "No temperature readings are recorded.",
    readings: "readings",
    verified: "Verified",
    verified_intro: "These records are certified on the consortium ledger by the validators of:",
    records: "signed records",
    download_proof: "Download the proof bundle",
    proof_hint: "Check it offline with `lotline verify` or the Lotline SDK.",
    corrections: "records were corrected by their authors and are not shown",
    truncated: "The history is longer than shown here.",
    footer: "Lotline traceability ledger",
};

pub static ZH: Messages = Messages {
    lang: "zh",
    other_lang: "en",
    other_lang_name: "English",
    title: "产品溯源",
    product: "产品",
    gtin: "商品条码",
    lot: "批次",
    serial: "序列号",
    recalled: "已召回 — 请停止使用本产品",
    recall_advice: "请停止使用，并联系销售商或生产企业。",
    recall_class: "召回级别",
    recall_reason: "原因",
    recall_issued: "发布机构",
    not_recalled: "本产品不在任何召回范围内。",
    materials: "关键原料来源",
    supplier: "供应商",
    no_materials: "未记录上游原料。",
    steps: "生产与检验",
    made_from: "原料",
    private_withheld: "检测数据不公开",
    within_spec: "符合规格",
    out_of_spec: "超出规格",
    cold_chain: "冷链",
    cold_ok: "所有温度读数均在允许范围内。",
    cold_excursion: "温度超限：有读数超出允许范围。",
    cold_range: "允许范围",
    cold_none: "未记录温度读数。",
    readings: "个读数",
    verified: "已验证",
    verified_intro: "以下记录已由这些机构的验证节点在联盟账本上认证：",
    records: "条签名记录",
    download_proof: "下载证明包",
    proof_hint: "可使用 `lotline verify` 或 Lotline SDK 离线验证。",
    corrections: "条记录已被其发布者更正，未显示",
    truncated: "历史记录比此处显示的更长。",
    footer: "Lotline 质量追溯账本",
};

/// The dashboard's text (`crate::dashboard`).
#[derive(Debug)]
pub struct Dash {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub title: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub token: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub wrong_token: &'static str,
    pub signed_in_as: &'static str,
    pub overview: &'static str,
    pub alerts: &'static str,
    pub no_alerts: &'static str,
    pub rule: &'static str,
    pub subject: &'static str,
    pub summary: &'static str,
    pub height: &'static str,
    pub attestation: &'static str,
    pub suppliers: &'static str,
    pub supplier: &'static str,
    pub lots: &'static str,
    pub nc_rate: &'static str,
    pub ppm: &'static str,
    pub coverage: &'static str,
    pub no_suppliers: &'static str,
    pub recalls: &'static str,
    pub no_recalls: &'static str,
    pub recall: &'static str,
    pub class: &'static str,
    pub reason: &'static str,
    pub scope: &'static str,
    pub issued_by: &'static str,
    pub report: &'static str,
    pub chart: &'static str,
    pub gtin: &'static str,
    pub characteristic: &'static str,
    pub show: &'static str,
    pub measurements: &'static str,
    pub signals: &'static str,
    pub trace: &'static str,
    pub identifier: &'static str,
    pub nodes: &'static str,
    pub edges: &'static str,
    pub truncated: &'static str,
    pub legend: &'static str,
    pub root_cause: &'static str,
    pub bad_units: &'static str,
    pub analyse: &'static str,
    pub factor: &'static str,
    pub kind: &'static str,
    pub counts: &'static str,
    pub lift: &'static str,
    pub q_value: &'static str,
    pub evidence: &'static str,
    pub population: &'static str,
    pub units: &'static str,
    pub bad: &'static str,
    pub no_findings: &'static str,
    pub forbidden_form: &'static str,
}

impl Dash {
    /// A root-cause factor's kind, as the findings table names it.
    pub fn factor_kind(&self, kind: &FactorKind) -> &'static str {
        let zh = self.lang == "zh";
        match (kind, zh) {
            (FactorKind::Lot, false) => "Lot",
            (FactorKind::Lot, true) => "批次",
            (FactorKind::Material, false) => "Material",
            (FactorKind::Material, true) => "物料",
            (FactorKind::ProcessStep, false) => "Process step",
            (FactorKind::ProcessStep, true) => "工序",
            (FactorKind::ProductionDay, false) => "Production day",
            (FactorKind::ProductionDay, true) => "生产日期",
            (FactorKind::Container, false) => "Container",
            (FactorKind::Container, true) => "包装容器",
            (FactorKind::Destination, false) => "Destination",
            (FactorKind::Destination, true) => "收货方",
            (FactorKind::Carrier, false) => "Carrier",
            (FactorKind::Carrier, true) => "承运商",
        }
    }

    /// One link of a finding's evidence path.
    pub fn link_kind(&self, kind: &LinkKind) -> &'static str {
        let zh = self.lang == "zh";
        match (kind, zh) {
            (LinkKind::TransformedInto, false) => "made into",
            (LinkKind::TransformedInto, true) => "加工为",
            (LinkKind::Serialised, false) => "serialised",
            (LinkKind::Serialised, true) => "赋码",
            (LinkKind::PackedIn, false) => "packed in",
            (LinkKind::PackedIn, true) => "装入",
            (LinkKind::AssociatedWith, false) => "associated with",
            (LinkKind::AssociatedWith, true) => "关联",
            (LinkKind::ShippedTo, false) => "shipped to",
            (LinkKind::ShippedTo, true) => "发往",
            (LinkKind::CarriedBy, false) => "carried by",
            (LinkKind::CarriedBy, true) => "承运",
        }
    }
}

pub static DASH_EN: Dash = Dash {
    lang: "en",
    other_lang: "zh",
    other_lang_name: "中文",
    title: "Quality dashboard",
    login_title: "Sign in to the quality dashboard",
    login_intro: "Paste an API token issued to your organisation. The dashboard shows what your organisation may read.",
    token: "API token",
    sign_in: "Sign in",
    sign_out: "Sign out",
    wrong_token: "That token is not valid on this node.",
    signed_in_as: "Signed in as",
    overview: "Overview",
    alerts: "Latest alerts",
    no_alerts: "No alerts you may read.",
    rule: "Rule",
    subject: "Subject",
    summary: "Summary",
    height: "Height",
    attestation: "Attestation",
    suppliers: "Supplier scorecards",
    supplier: "Supplier",
    lots: "Lots",
    nc_rate: "Non-conformance rate",
    ppm: "PPM",
    coverage: "Certificate coverage",
    no_suppliers: "No judged or certified lots you may read.",
    recalls: "Recall status",
    no_recalls: "No recall orders you may read.",
    recall: "Recall",
    class: "Class",
    reason: "Reason",
    scope: "Scope",
    issued_by: "Issued by",
    report: "report",
    chart: "Control chart",
    gtin: "GTIN",
    characteristic: "Characteristic",
    show: "Show",
    measurements: "measurements",
    signals: "Signals",
    trace: "Genealogy",
    identifier: "Lot or serial (Digital Link URI)",
    nodes: "nodes",
    edges: "links",
    truncated: "The graph is larger than drawn here.",
    legend: "Red: recalled or failed. Each link opens its attestation.",
    root_cause: "Root cause",
    bad_units: "Bad units (one identifier per line)",
    analyse: "Analyse",
    factor: "Factor",
    kind: "Kind",
    counts: "Bad / good exposed",
    lift: "Lift",
    q_value: "q (BH)",
    evidence: "Evidence",
    population: "Population",
    units: "units",
    bad: "bad",
    no_findings: "No factor is shared by the bad units more than by the good ones.",
    forbidden_form: "The form expired or did not come from this dashboard; reload the page and try again.",
};

pub static DASH_ZH: Dash = Dash {
    lang: "zh",
    other_lang: "en",
    other_lang_name: "English",
    title: "质量看板",
    login_title: "登录质量看板",
    login_intro: "请粘贴为贵机构签发的 API 令牌。看板仅显示贵机构有权读取的数据。",
    token: "API 令牌",
    sign_in: "登录",
    sign_out: "退出",
    wrong_token: "该令牌在本节点无效。",
    signed_in_as: "当前机构",
    overview: "总览",
    alerts: "最新预警",
    no_alerts: "暂无可查看的预警。",
    rule: "规则",
    subject: "对象",
    summary: "说明",
    height: "区块高度",
    attestation: "证明记录",
    suppliers: "供应商评分卡",
    supplier: "供应商",
    lots: "批次数",
    nc_rate: "不合格率",
    ppm: "PPM（百万分之缺陷数）",
    coverage: "证书覆盖率",
    no_suppliers: "暂无可查看的已检验或已认证批次。",
    recalls: "召回状态",
    no_recalls: "暂无可查看的召回令。",
    recall: "召回",
    class: "级别",
    reason: "原因",
    scope: "范围",
    issued_by: "发布机构",
    report: "报告",
    chart: "控制图",
    gtin: "商品条码",
    characteristic: "质量特性",
    show: "显示",
    measurements: "个测量值",
    signals: "信号",
    trace: "谱系图",
    identifier: "批次或序列号（数字链接 URI）",
    nodes: "节点",
    edges: "连接",
    truncated: "谱系图比此处绘制的更大。",
    legend: "红色：已召回或检验不合格。点击连接可查看对应的证明记录。",
    root_cause: "根因分析",
    bad_units: "不良品（每行一个标识）",
    analyse: "分析",
    factor: "因素",
    kind: "类型",
    counts: "暴露的不良/良品",
    lift: "提升度",
    q_value: "q 值（BH 校正）",
    evidence: "证据",
    population: "样本",
    units: "件",
    bad: "不良",
    no_findings: "没有发现不良品比良品更多共享的因素。",
    forbidden_form: "表单已过期或并非来自本看板，请刷新页面后重试。",
};

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn explicit_choice_beats_accept_language_and_q_values_count() {
        assert_eq!(Lang::choose(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(
            Lang::choose(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(
            Lang::choose(None, Some("en;q=0.5, zh-Hans;q=0.7")),
            Lang::Zh
        );
        assert_eq!(Lang::choose(None, Some("fr-FR, de")), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), Some("zh")), Lang::Zh);
        assert_eq!(Lang::choose(None, None), Lang::En);
    }
}
