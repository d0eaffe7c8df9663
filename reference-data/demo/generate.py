#!/usr/bin/env python3
"""Writes the demo base-library files of `onewindow demo` (made-up people of 呼伦贝尔市).

    python3 reference-data/demo/generate.py

Deterministic (fixed seed): running it again writes the same files. Every resident ID
number passes the GB 11643 check digit and every USCC the GB 32100 check character, the
gender code matches the parity of the ID's sequence digit and the birth date its date
digits. The development identity provider's personas (src/devidp/personas.rs) are
included with exactly their ID numbers, names, phones and enterprise, so that a demo
login finds its own data. Nothing here is a real person or enterprise.
"""

import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent
rng = random.Random(20240515)

# ---------------------------------------------------------------- check characters

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"


def id_number(area, born, seq):
    body = f"{area}{born:%Y%m%d}{seq:03d}"
    return body + ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS)) % 11]


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(prefix, area):
    body = prefix + area + "MA" + "".join(rng.choice(USCC_CHARS) for _ in range(7))
    s = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARS[(31 - s % 31) % 31]


def check_id(n):
    return ID_CHECK[sum(int(c) * w for c, w in zip(n[:17], ID_WEIGHTS)) % 11] == n[17]


def check_uscc(c):
    s = sum(USCC_CHARS.index(ch) * w for ch, w in zip(c[:17], USCC_WEIGHTS))
    return USCC_CHARS[(31 - s % 31) % 31] == c[17]


# ---------------------------------------------------------------- places

# code, name, police (ID cards), civil affairs, streets or towns, roads
DISTRICTS = [
    ("150702", "海拉尔区", "呼伦贝尔市公安局海拉尔区分局", "海拉尔区民政局",
     ["胜利街道", "正阳街道", "健康街道", "靠山街道", "建设街道"],
     ["胜利大街", "中央街", "河东路", "学府路", "巴彦托海路", "东大街"]),
    ("150703", "扎赉诺尔区", "呼伦贝尔市公安局扎赉诺尔区分局", "扎赉诺尔区民政局",
     ["第三街道", "铁北街道"], ["兴华路", "新开河路"]),
    ("150721", "阿荣旗", "阿荣旗公安局", "阿荣旗民政局",
     ["那吉镇", "亚东镇"], ["兴安路", "繁荣大街"]),
    ("150722", "莫力达瓦达斡尔族自治旗", "莫力达瓦达斡尔族自治旗公安局", "莫力达瓦达斡尔族自治旗民政局",
     ["尼尔基镇", "腾克镇"], ["纳文大街", "达斡尔路"]),
    ("150723", "鄂伦春自治旗", "鄂伦春自治旗公安局", "鄂伦春自治旗民政局",
     ["阿里河镇", "大杨树镇"], ["林业路", "嘎仙路"]),
    ("150724", "鄂温克族自治旗", "鄂温克族自治旗公安局", "鄂温克族自治旗民政局",
     ["巴彦托海镇", "伊敏河镇"], ["巴彦托海大街", "团结路"]),
    ("150725", "陈巴尔虎旗", "陈巴尔虎旗公安局", "陈巴尔虎旗民政局",
     ["巴彦库仁镇"], ["阿拉坦路", "团结大街"]),
    ("150726", "新巴尔虎左旗", "新巴尔虎左旗公安局", "新巴尔虎左旗民政局",
     ["阿木古郎镇"], ["诺门罕路", "乌尔逊路"]),
    ("150727", "新巴尔虎右旗", "新巴尔虎右旗公安局", "新巴尔虎右旗民政局",
     ["阿拉坦额莫勒镇"], ["呼伦路", "克尔伦大街"]),
    ("150781", "满洲里市", "满洲里市公安局", "满洲里市民政局",
     ["北区街道", "南区街道"], ["五道街", "国门路", "中苏路"]),
    ("150782", "牙克石市", "牙克石市公安局", "牙克石市民政局",
     ["胜利街道", "新工街道"], ["林城路", "博克图街"]),
    ("150783", "扎兰屯市", "扎兰屯市公安局", "扎兰屯市民政局",
     ["兴华街道", "正阳街道"], ["中央路", "吊桥路"]),
    ("150784", "额尔古纳市", "额尔古纳市公安局", "额尔古纳市民政局",
     ["拉布大林街道", "室韦镇"], ["建设路", "白桦路"]),
    ("150785", "根河市", "根河市公安局", "根河市民政局",
     ["河西街道", "敖鲁古雅乡"], ["中央街", "森林路"]),
]
BY_CODE = {d[0]: d for d in DISTRICTS}
CITY = "内蒙古自治区呼伦贝尔市"


def address(area):
    _, name, _, _, streets, roads = BY_CODE[area]
    street = rng.choice(streets)
    road = rng.choice(roads)
    if street.endswith("镇") or street.endswith("乡"):
        return f"{CITY}{name}{street}{road}{rng.randint(1, 180)}号"
    return (f"{CITY}{name}{street}{road}{rng.randint(1, 260)}号"
            f"{rng.randint(1, 6)}单元{rng.randint(1, 6)}0{rng.randint(1, 4)}室")


def station(area):
    _, name, police, _, streets, _ = BY_CODE[area]
    s = rng.choice(streets)
    return f"{police}{s.removesuffix('街道').removesuffix('镇').removesuffix('乡')}派出所"


# ---------------------------------------------------------------- people

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱",
            "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "宋", "谢", "韩", "唐", "冯", "于"]
MALE = ["伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "建国", "志强",
        "海涛", "宏伟", "晓东", "鹏飞", "俊杰", "子轩", "浩然", "宇航"]
FEMALE = ["芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "玲", "燕", "秀英", "桂兰", "丽娟",
          "海燕", "雅琴", "晓梅", "欣怡", "梓涵", "雨桐", "思琪"]
# Mongolian, Daur, Ewenki and Oroqen names as usually written in Chinese characters
MONGOL_M = ["巴特尔", "苏和", "朝鲁", "额尔敦", "宝音", "那顺", "哈斯巴根", "图门"]
MONGOL_F = ["其其格", "乌日娜", "斯琴", "萨仁", "娜仁花", "高娃", "塔娜", "阿拉坦其其格"]
DAUR = (["敖", "郭", "何", "孟", "沃"], ["德胜", "晓光", "福林"], ["春梅", "淑华", "金凤"])
EWENKI = (["杜", "涂", "何"], ["文龙", "宝山", "志刚"], ["玉兰", "秀芝", "丽华"])
OROQEN = (["莫", "孟", "关", "吴"], ["金山", "铁柱", "国庆"], ["淑兰", "桂芝", "秀云"])

ETHNIC_WEIGHTS = [("汉族", 62), ("蒙古族", 16), ("达斡尔族", 7), ("鄂温克族", 6),
                  ("鄂伦春族", 4), ("满族", 3), ("回族", 1), ("俄罗斯族", 1)]


def ethnicity(area):
    if area == "150722":
        return rng.choice(["达斡尔族", "达斡尔族", "汉族"])
    if area == "150723":
        return rng.choice(["鄂伦春族", "汉族"])
    if area == "150724":
        return rng.choice(["鄂温克族", "蒙古族", "汉族"])
    names, weights = zip(*ETHNIC_WEIGHTS)
    return rng.choices(names, weights)[0]


def person_name(male, eth):
    if eth == "蒙古族":
        return rng.choice(MONGOL_M if male else MONGOL_F)
    table = {"达斡尔族": DAUR, "鄂温克族": EWENKI, "鄂伦春族": OROQEN}.get(eth)
    if table:
        surnames, m, f = table
        return rng.choice(surnames) + rng.choice(m if male else f)
    return rng.choice(SURNAMES) + rng.choice(MALE if male else FEMALE)


def mobile():
    return rng.choice(["13", "15", "18", "17", "19"]) + str(rng.randint(0, 9)) + \
        "".join(str(rng.randint(0, 9)) for _ in range(8))


def random_date(start, end):
    return start + timedelta(days=rng.randint(0, (end - start).days))


# The demo personas: exactly as in src/devidp/personas.rs.
PERSONAS = [
    # id number, name, phone, ethnicity
    ("150702198506123025", "王小明", "13800000001", "汉族"),
    ("150702199203151541", "李芳", "13800000002", "汉族"),
    ("150721197809234018", "赵强", "13800000003", "汉族"),
    ("150702200108081229", "陈静", "13800000004", "汉族"),
]
DAIRY = ("91150700MA0N2C3D40", "呼伦贝尔草原乳业有限公司")


def from_id(n):
    born = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    return n[:6], born, "1" if int(n[16]) % 2 else "2"


people = []
used_ids = set()
used_names = {p[1] for p in PERSONAS}
for n, name, phone, eth in PERSONAS:
    assert check_id(n), n
    area, born, gender = from_id(n)
    home = address(area)
    people.append(dict(id_number=n, name=name, gender=gender, birth_date=born.isoformat(),
                       ethnicity=eth, phone=phone, household_address=home,
                       residence_address=home, area=area, born=born, persona=True))
    used_ids.add(n)


def new_person(area, born, male, eth=None, surname=None):
    while True:
        seq = rng.randint(0, 499) * 2 + (1 if male else 0)
        n = id_number(area, born, seq)
        if n not in used_ids:
            break
    used_ids.add(n)
    eth = eth or ethnicity(area)
    while True:  # no two people of the demo share a name
        name = person_name(male, eth)
        if surname and eth != "蒙古族":
            name = surname + name[1:]
        if name not in used_names:
            break
    used_names.add(name)
    home = address(area)
    residence = home if rng.random() < 0.6 else address(rng.choice(["150702", area]))
    adult = (date(2024, 5, 15) - born).days >= 18 * 365
    phone = mobile() if adult else ""
    if adult and rng.random() < 0.08:
        phone = f"0470-{rng.randint(8200000, 8399999)}"
    return dict(id_number=n, name=name, gender="1" if male else "2",
                birth_date=born.isoformat(), ethnicity=eth, phone=phone,
                household_address=home, residence_address=residence, area=area,
                born=born, persona=False)


areas = [d[0] for d in DISTRICTS]
for i in range(48):
    area = "150702" if i % 3 == 0 else rng.choice(areas)
    born = random_date(date(1948, 1, 1), date(2003, 12, 31))
    people.append(new_person(area, born, male=rng.random() < 0.5))

# children living with a parent: same household register and address
children = []
for parent in rng.sample([p for p in people if 1975 <= p["born"].year <= 1995 and not p["persona"]], 8):
    born = random_date(date(max(parent["born"].year + 22, 2008), 1, 1), date(2022, 12, 31))
    child = new_person(parent["area"], born, male=rng.random() < 0.5,
                       eth=parent["ethnicity"], surname=parent["name"][0])
    child["household_address"] = parent["household_address"]
    child["residence_address"] = parent["residence_address"]
    child["parent"] = parent["id_number"]
    children.append(child)
people += children

PERSON_COLUMNS = ["id_number", "name", "gender", "birth_date", "ethnicity", "phone",
                  "household_address", "residence_address"]

# ---------------------------------------------------------------- enterprises

adults = [p for p in people if (date(2024, 5, 15) - p["born"]).days >= 22 * 365 and not p["persona"]]
reps = rng.sample(adults, 14)
ENTERPRISES = [
    # prefix, area, name, capital (10,000 yuan), scope, food licence
    ("91", "150700", "呼伦贝尔市蒙源肉业有限责任公司", 2000, "牲畜屠宰；肉制品加工、销售；冷链仓储。", True),
    ("91", "150702", "海拉尔区额尔古纳河餐饮管理有限公司", 100, "餐饮服务；餐饮管理；食品销售。", True),
    ("91", "150781", "满洲里市国门商贸有限公司", 500, "进出口贸易；日用百货、建材批发零售。", False),
    ("91", "150782", "牙克石市林海木业有限公司", 800, "木材加工；木制品制造、销售。", False),
    ("93", "150783", "扎兰屯市金秋大豆种植专业合作社", 60, "组织成员种植、销售大豆、玉米；提供农业技术服务。", False),
    ("91", "150785", "根河市敖鲁古雅旅游文化有限公司", 300, "旅游景区管理；民俗文化展示；旅游商品销售。", False),
    ("91", "150784", "额尔古纳市白桦林旅行社有限公司", 50, "国内旅游业务；入境旅游业务；票务代理。", False),
    ("92", "150724", "鄂温克族自治旗巴彦托海奶茶馆", 10, "餐饮服务（奶茶、奶制品、面食）。", True),
    ("91", "150722", "莫力达瓦达斡尔族自治旗达斡尔风味饭店有限公司", 80, "餐饮服务；预包装食品销售。", True),
    ("91", "150725", "陈巴尔虎旗草原那达慕文化传媒有限公司", 200, "文艺演出策划；会展服务；广告设计制作。", False),
    ("91", "150727", "新巴尔虎右旗呼伦湖渔业有限公司", 600, "水产捕捞、养殖；水产品初加工、销售。", True),
    ("91", "150721", "阿荣旗兴安岭蓝莓食品有限公司", 1200, "果汁饮料、果酱生产；农产品收购、销售。", True),
    ("91", "150702", "海拉尔区诺敏建筑工程有限公司", 1000, "房屋建筑工程施工；市政工程施工；建材销售。", False),
    ("91", "150700", "呼伦贝尔市北疆数据科技有限公司", 300, "软件开发；信息系统集成服务；数据处理服务。", False),
]
chen = next(p for p in people if p["id_number"] == "150702200108081229")
enterprises = [dict(uscc=DAIRY[0], name=DAIRY[1], legal_rep=chen["name"],
                    legal_rep_id_number=chen["id_number"],
                    registered_address=f"{CITY}海拉尔区呼伦贝尔经济技术开发区乳业路8号",
                    registered_capital=3000,
                    business_scope="乳制品生产、销售；生鲜乳收购；饲草种植。",
                    established_on="2019-04-18", area="150700", food=True)]
seen_uscc = {DAIRY[0]}
for (prefix, area, name, capital, scope, food), rep in zip(ENTERPRISES, reps):
    code = uscc(prefix, area)
    while code in seen_uscc:
        code = uscc(prefix, area)
    seen_uscc.add(code)
    place = address(area if area != "150700" else "150702")
    enterprises.append(dict(uscc=code, name=name, legal_rep=rep["name"],
                            legal_rep_id_number=rep["id_number"],
                            registered_address=place, registered_capital=capital,
                            business_scope=scope,
                            established_on=random_date(date(2003, 1, 1), date(2023, 6, 30)).isoformat(),
                            area=area, food=food))
for e in enterprises:
    assert check_uscc(e["uscc"]), e["uscc"]

ENTERPRISE_COLUMNS = ["uscc", "name", "legal_rep", "legal_rep_id_number",
                      "registered_address", "registered_capital", "business_scope",
                      "established_on"]
DISHONEST = "海拉尔区诺敏建筑工程有限公司"

# ---------------------------------------------------------------- e-licences

licences = []


def licence(holder, kind, no, issuer, issued_on=None, valid_until=None, holder_name=None):
    row = {"holder": holder, "licence": kind, "licence_no": no, "issuer": issuer}
    if issued_on:
        row["issued_on"] = issued_on.isoformat()
    if valid_until:
        row["valid_until"] = valid_until if isinstance(valid_until, str) else valid_until.isoformat()
    if holder_name:
        row["holder_name"] = holder_name
    licences.append(row)


def add_years(d, n):
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


def id_card(p):
    # validity by age at issue: under 16 5 years, 16–25 10 years, 26–45 20 years, over 45 long-term
    earliest = max(p["born"] + timedelta(days=365), date(2014, 1, 1))
    issued = random_date(earliest, date(2024, 3, 31))
    age = (issued - p["born"]).days // 365
    years = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else None
    until = add_years(issued, years) if years else "长期"
    licence(p["id_number"], "resident_id_card", p["id_number"], BY_CODE[p["area"]][2],
            issued, until, p["name"])


households = {}
for p in people:
    id_card(p)

# household registers: the personas, the children and their parents, and most others
for p in people:
    if not (p["persona"] or "parent" in p or rng.random() < 0.75):
        continue
    owner = p.get("parent", p["id_number"])
    if owner not in households:
        households[owner] = f"{p['area']}{rng.randint(100000, 999999)}"
    issued = random_date(max(p["born"], date(2005, 1, 1)), date(2024, 3, 31))
    licence(p["id_number"], "household_register", households[owner], station(p["area"]),
            issued, None, p["name"])

# a few married couples, 李芳 among them (新生儿出生“一件事” asks for the marriage certificate)
li = next(p for p in people if p["id_number"] == "150702199203151541")
grooms = [p for p in adults if p["gender"] == "1" and 1980 <= p["born"].year <= 1995]
brides = [p for p in adults if p["gender"] == "2" and 1980 <= p["born"].year <= 1998]
couples = [(rng.choice(grooms), li)]
for g, b in zip(rng.sample(grooms, 4), rng.sample(brides, 4)):
    if g is not couples[0][0]:
        couples.append((g, b))
for g, b in couples:
    married = random_date(max(g["born"], b["born"]) + timedelta(days=22 * 365), date(2023, 12, 31))
    no = f"J{b['area']}-{married.year}-{rng.randint(1, 9999):06d}"
    office = BY_CODE[b["area"]][3]
    for p in (g, b):
        licence(p["id_number"], "marriage_certificate", no, office, married, None, p["name"])

# real-estate titles: 王小明, 李芳 and some others
wang = next(p for p in people if p["id_number"] == "150702198506123025")
owners = [wang, li] + rng.sample([p for p in adults if p is not li], 10)
for p in owners:
    issued = random_date(date(2016, 1, 1), date(2024, 3, 31))
    district = BY_CODE[p["area"]][1]
    no = f"蒙（{issued.year}）{district}不动产权第{rng.randint(1, 99999):07d}号"
    licence(p["id_number"], "real_estate_certificate", no, f"{district}不动产登记中心",
            issued, None, p["name"])

# birth medical certificates of the children born after 2010
HOSPITALS = {"150702": "呼伦贝尔市人民医院", "150781": "满洲里市人民医院",
             "150782": "牙克石市人民医院", "150783": "扎兰屯市人民医院"}
for c in children:
    if c["born"].year >= 2010:
        licence(c["id_number"], "birth_medical_certificate",
                f"{rng.choice('OPQRST')}{rng.randint(150000000, 159999999)}",
                HOSPITALS.get(c["area"], f"{BY_CODE[c['area']][1]}人民医院"),
                c["born"], None, c["name"])

# Newborns of 王小明 and 李芳 (新生儿出生“一件事”): a certificate is found under the mother's ID
# number until the child is registered. Fixed values, so the random draws stay as they were.
licence(wang["id_number"], "birth_medical_certificate", "Q150226118", "呼伦贝尔市人民医院",
        date(2026, 11, 2), None, wang["name"])
licence(li["id_number"], "birth_medical_certificate", "P150226127", "呼伦贝尔市人民医院",
        date(2026, 11, 15), None, li["name"])

# disability certificates: 20 characters, the ID number then category and grade
for p in rng.sample([p for p in people if not p["persona"]], 4):
    issued = random_date(date(2018, 1, 1), date(2023, 12, 31))
    district = BY_CODE[p["area"]][1]
    licence(p["id_number"], "disability_certificate",
            f"{p['id_number']}{rng.randint(1, 7)}{rng.randint(1, 4)}",
            f"{district}残疾人联合会", issued, add_years(issued, 10), p["name"])

# enterprises: business licence (long-term) and, for food businesses, a food licence (5 years)
MARKET = "呼伦贝尔市市场监督管理局"
for e in enterprises:
    est = date.fromisoformat(e["established_on"])
    district = "" if e["area"] == "150700" else BY_CODE[e["area"]][1]
    issuer = MARKET if not district else f"{district}市场监督管理局"
    licence(e["uscc"], "business_licence", e["uscc"], issuer,
            random_date(est, date(2024, 3, 31)), "长期", e["name"])
    if e["food"] and e["uscc"] != DAIRY[0]:
        issued = random_date(max(est, date(2021, 1, 1)), date(2024, 3, 31))
        licence(e["uscc"], "food_business_licence",
                f"JY{rng.choice('123')}{e['area']}{rng.randint(1000000, 9999999)}",
                issuer, issued, add_years(issued, 5) - timedelta(days=1), e["name"])

# ---------------------------------------------------------------- write


def write_csv(name, columns, rows):
    with open(OUT / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([r[c] for c in columns])


write_csv("person.csv", PERSON_COLUMNS, people)
write_csv("enterprise.csv", ENTERPRISE_COLUMNS, enterprises)
write_csv("credit.csv", ["uscc", "dishonest_list_status"],
          [{"uscc": e["uscc"], "dishonest_list_status": "1" if e["name"] == DISHONEST else "0"}
           for e in enterprises])
with open(OUT / "elicence.jsonl", "w", encoding="utf-8") as f:
    for row in licences:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")

print(f"{len(people)} people, {len(enterprises)} enterprises, {len(licences)} e-licences")
