"""Build the bundled example datasets in assets/ from the raw public files.

Usage (what `make assets` runs):

    python scripts/build_assets.py --raw ../shared/datasets --out assets

For each of Adult, COMPAS and German credit this writes `<name>.parquet` (zstd, plain string
and int64 columns, no pandas metadata, rows in the raw files' order) and a card
`<name>.json` that records the source, licence, citation, columns, target, positive and
favourable labels, sensitive attributes, known issues, every transformation applied below
(with the row counts it produced) and the sha256 of the Parquet file.

The output is byte-identical from run to run for a given pyarrow version: no timestamps, no
random state, fixed column order and fixed Parquet writer options. Nothing in `core/` reads
the raw files; this script is the only place that does, and only when a maintainer rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ZSTD_LEVEL = 9

# ---------------------------------------------------------------------------------------
# Adult
# ---------------------------------------------------------------------------------------

ADULT_RAW_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
ADULT_INT_COLUMNS = [
    "age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week",
]

ADULT_COLUMNS = {
    "age": "Age in years.",
    "workclass": "Employer type (Private, Self-emp-not-inc, Federal-gov, ...).",
    "fnlwgt": "Census sampling weight (how many people the row stands for), not a personal attribute.",
    "education": "Highest education level reached, as a category.",
    "education_num": "Highest education level as an ordinal number (1 = Preschool ... 16 = Doctorate).",
    "marital_status": "Marital status.",
    "occupation": "Occupation group.",
    "relationship": "Role in the household (Husband, Wife, Own-child, Not-in-family, ...).",
    "race": "Race as recorded by the census (5 coarse categories).",
    "sex": "Sex as recorded by the census (Male, Female).",
    "capital_gain": "Capital gains in the year, USD.",
    "capital_loss": "Capital losses in the year, USD.",
    "hours_per_week": "Usual hours worked per week.",
    "native_country": "Country of origin.",
    "income": "Target: yearly income above 50,000 USD ('>50K') or not ('<=50K').",
}


def build_adult(raw: Path) -> tuple[pd.DataFrame, list[str]]:
    """adult.data + adult.test -> one table, rows with any '?' dropped."""
    steps: list[str] = []
    read = dict(
        header=None, names=ADULT_RAW_COLUMNS, skipinitialspace=True, dtype=str,
        keep_default_na=False, skip_blank_lines=True,
    )
    train = pd.read_csv(raw / "adult" / "adult.data", **read)
    # adult.test's first line is "|1x3 Cross validator", not data.
    test = pd.read_csv(raw / "adult" / "adult.test", skiprows=1, **read)
    steps.append(
        f"Read adult.data ({len(train):,} rows) and adult.test ({len(test):,} rows, its first "
        "line '|1x3 Cross validator' skipped); no header, the 15 documented column names."
    )
    df = pd.concat([train, test], ignore_index=True)
    steps.append(
        f"Concatenated train then test in file order ({len(df):,} rows); the train/test origin "
        "is not kept (Equiscope makes its own split)."
    )
    df = df.apply(lambda col: col.str.strip())
    steps.append("Stripped the leading space of every value.")
    test_dots = int(df["income"].str.endswith(".").sum())
    df["income"] = df["income"].str.removesuffix(".")
    steps.append(
        f"Normalised the test file's labels with a trailing dot ('>50K.' -> '>50K', "
        f"'<=50K.' -> '<=50K'; {test_dots:,} rows)."
    )
    has_missing = (df == "?").any(axis=1)
    before = len(df)
    df = df.loc[~has_missing].reset_index(drop=True)
    steps.append(
        f"Dropped rows with '?' (missing) in any column: {before:,} -> {len(df):,} rows "
        "(missing values are in workclass, occupation and native_country)."
    )
    df.columns = [c.replace("-", "_") for c in df.columns]
    steps.append("Renamed columns to snake_case (education-num -> education_num, ...).")
    for col in ADULT_INT_COLUMNS:
        df[col] = df[col].astype("int64")
    steps.append(f"Cast {', '.join(ADULT_INT_COLUMNS)} to int64; every other column is a string.")
    return df, steps


ADULT_CARD = {
    "name": "adult",
    "title": "Adult (Census Income)",
    "description": (
        "Records of adults from the 1994 US Current Population Survey, with whether their "
        "yearly income was above 50,000 USD. It is the most common benchmark for income "
        "prediction fairness, with sex and race as the usual protected attributes."
    ),
    "source": "UCI Machine Learning Repository (Becker & Kohavi, 1996), files adult.data and adult.test",
    "url": "https://doi.org/10.24432/C5XW20",
    "licence": "CC BY 4.0",
    "citation": (
        "Becker, B. & Kohavi, R. (1996). Adult [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5XW20"
    ),
    "target": "income",
    "positive_label": ">50K",
    "favourable_outcome": ">50K",
    "sensitive": ["sex", "race"],
    "known_issues": [
        "Data from 1994: incomes are not adjusted for inflation and the 50K threshold, jobs and "
        "demographics do not describe today's population.",
        "Race has only 5 coarse census categories (White, Black, Asian-Pac-Islander, "
        "Amer-Indian-Eskimo, Other); the smaller groups have few rows, so their metrics have "
        "wide confidence intervals.",
        "fnlwgt is a census sampling weight (how many people a row represents), not an "
        "attribute of the person; using it as a feature is questionable.",
        "relationship (Husband/Wife) and marital_status encode sex and are strong proxies for it.",
        "Imbalanced target: about 25% of rows are '>50K', and far fewer among women than men.",
        "Rows with any missing value ('?') were dropped (3,620 of 48,842): this removes every "
        "row with no workclass or occupation, so the 'Never-worked' workclass disappears "
        "entirely and the copy under-represents people outside regular employment.",
        "education and education_num carry the same information.",
    ],
}

# ---------------------------------------------------------------------------------------
# COMPAS
# ---------------------------------------------------------------------------------------

COMPAS_KEEP = [
    "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
    "priors_count", "c_charge_degree", "c_charge_desc", "decile_score", "score_text",
    "length_of_stay_days", "two_year_recid",
]

COMPAS_COLUMNS = {
    "sex": "Sex (Male, Female).",
    "age": "Age in years as given in the published file (not the age at screening, see known issues).",
    "age_cat": "Age bucket from the published file: 'Less than 25', '25 - 45', 'Greater than 45'.",
    "race": "Race as recorded by Broward County (African-American, Caucasian, Hispanic, Other, Asian, Native American).",
    "juv_fel_count": "Number of juvenile felonies.",
    "juv_misd_count": "Number of juvenile misdemeanours.",
    "juv_other_count": "Number of other juvenile offences.",
    "priors_count": "Number of prior offences.",
    "c_charge_degree": "Degree of the charge that led to the COMPAS screening: F (felony) or M (misdemeanour).",
    "c_charge_desc": "Description of that charge (free text, many rare values; missing for 5 rows).",
    "decile_score": "COMPAS recidivism risk decile, 1-10 (an output of the COMPAS tool, not a fact about the person).",
    "score_text": "COMPAS risk band: Low (deciles 1-4), Medium (5-7), High (8-10) (an output of the COMPAS tool).",
    "length_of_stay_days": "Days in jail for the screened charge: date of c_jail_out minus date of c_jail_in.",
    "two_year_recid": "Target: 1 if the person was charged with a new offence within two years, else 0.",
}


def build_compas(raw: Path) -> tuple[pd.DataFrame, list[str]]:
    """ProPublica's two-year file, their filters, identifiers and outcome leaks dropped."""
    steps: list[str] = []
    df = pd.read_csv(raw / "compas" / "compas-scores-two-years.csv")
    steps.append(
        f"Read compas-scores-two-years.csv ({len(df):,} rows, 53 columns as published by "
        "ProPublica)."
    )
    # The published file repeats decile_score and priors_count; pandas names the copies
    # '.1'. Check they really are copies before dropping them.
    for col in ("decile_score", "priors_count"):
        if not df[col].equals(df[f"{col}.1"]):
            raise SystemExit(f"compas: duplicate column {col} differs from its first copy")
    df = df.drop(columns=["decile_score.1", "priors_count.1"])
    steps.append(
        "Dropped the second copies of decile_score and priors_count (the published file "
        "repeats both columns; checked identical)."
    )

    mask = (
        (df["days_b_screening_arrest"] <= 30)
        & (df["days_b_screening_arrest"] >= -30)
        & (df["is_recid"] != -1)
        & (df["c_charge_degree"] != "O")
        & (df["score_text"] != "N/A")
    )
    before = len(df)
    df = df.loc[mask].reset_index(drop=True)
    steps.append(
        "Applied ProPublica's filters from their 'Compas Analysis' notebook: "
        "days_b_screening_arrest <= 30 and >= -30 (a missing value fails both), is_recid != -1, "
        f"c_charge_degree != 'O', score_text != 'N/A': {before:,} -> {len(df):,} rows."
    )
    jail_in = pd.to_datetime(df["c_jail_in"]).dt.normalize()
    jail_out = pd.to_datetime(df["c_jail_out"]).dt.normalize()
    df["length_of_stay_days"] = (jail_out - jail_in).dt.days.astype("int64")
    steps.append(
        "Derived length_of_stay_days = as.Date(c_jail_out) - as.Date(c_jail_in) in days, as "
        "ProPublica computes length_of_stay (calendar dates, time of day ignored)."
    )
    dropped = [c for c in df.columns if c not in COMPAS_KEEP]
    df = df[COMPAS_KEEP].copy()
    steps.append(
        "Dropped direct identifiers (id, name, first, last, dob), every case number "
        "(c_case_number, r_case_number, vr_case_number), every raw date or timestamp "
        "(compas_screening_date, screening_date, v_screening_date, c_jail_in, c_jail_out, "
        "c_offense_date, c_arrest_date, r_offense_date, r_jail_in, r_jail_out, vr_offense_date, "
        "in_custody, out_custody), columns that leak the outcome (is_recid, r_*, violent_recid, "
        "is_violent_recid, vr_*, start, end, event), the violence score (v_*), constant "
        "assessment labels (type_of_assessment, v_type_of_assessment) and screening bookkeeping "
        f"(days_b_screening_arrest, c_days_from_compas): {len(dropped)} columns dropped, "
        f"{len(COMPAS_KEEP)} kept."
    )
    for col in df.columns:
        if pd.api.types.is_integer_dtype(df[col]):
            df[col] = df[col].astype("int64")
    steps.append(
        "Kept two_year_recid as int64 0/1 (positive label 1); counts and scores are int64, "
        "the rest strings (c_charge_desc keeps its 5 missing values as nulls)."
    )
    return df, steps


COMPAS_CARD = {
    "name": "compas",
    "title": "COMPAS two-year recidivism (ProPublica, Broward County)",
    "description": (
        "People screened with the COMPAS risk-assessment tool in Broward County, Florida in "
        "2013-2014, with whether they were charged again within two years. ProPublica used it "
        "to show that the tool's errors differ between Black and white defendants."
    ),
    "source": (
        "ProPublica, 'Machine Bias' (Angwin et al., 2016), repository propublica/compas-analysis, "
        "file compas-scores-two-years.csv"
    ),
    "url": "https://github.com/propublica/compas-analysis",
    "licence": "Published by ProPublica for analysis; cite the source",
    "citation": (
        "Angwin, J., Larson, J., Mattu, S. & Kirchner, L. (2016). Machine Bias. ProPublica. "
        "https://www.propublica.org/article/machine-bias-risk-assessments-in-criminal-sentencing"
    ),
    "target": "two_year_recid",
    "positive_label": 1,
    "favourable_outcome": 0,
    "sensitive": ["race", "sex", "age_cat"],
    "known_issues": [
        "The target is a new charge (arrest) within two years, a proxy for crime: it reflects "
        "where and whom the police arrest as much as who offends.",
        "decile_score and score_text are COMPAS's own outputs, not facts about the person; a "
        "reviewer auditing a new model may want to exclude them from the features.",
        "Rows follow ProPublica's filters (7,214 -> 6,172); their choices about which charge "
        "belongs to which screening are inherited.",
        "People screened late in the period stay in the file only if they reoffended (all 868 "
        "rows screened after 2014-04-01 have two_year_recid = 1): the follow-up window is "
        "too short for the others, which inflates the base rate (Barenstein, 2019).",
        "age is not the age at the COMPAS screening: it is 1-4 years higher than the age "
        "computed from date of birth and screening date; age_cat is derived from it and its "
        "'Greater than 45' bucket includes 45.",
        "Small groups: Asian (31 rows) and Native American (11 rows) give unreliable per-group "
        "metrics; race categories mix race and ethnicity.",
        "The raw file contains names, dates of birth and case numbers; they are dropped here, "
        "but a row can still be rare enough (age, race, sex, charge) to be linkable to public "
        "court records.",
    ],
}

# ---------------------------------------------------------------------------------------
# German credit
# ---------------------------------------------------------------------------------------

GERMAN_RAW_COLUMNS = [
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings",
    "present_employment", "installment_rate", "status_sex", "other_debtors",
    "present_residence_since", "property", "age", "installment_plans", "housing",
    "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
    "foreign_worker", "credit",
]
GERMAN_INT_COLUMNS = [
    "duration", "credit_amount", "installment_rate", "present_residence_since", "age",
    "number_of_existing_credits", "number_of_people_liable_for",
]
# status_sex codes whose text starts with "female" (A95 never occurs in the data).
GERMAN_FEMALE_CODES = ("A92", "A95")

GERMAN_COLUMNS = {
    "status": "Status of the existing checking account (balance in DM, or none).",
    "duration": "Duration of the credit in months.",
    "credit_history": "Credit history.",
    "purpose": "Purpose of the credit.",
    "credit_amount": "Credit amount in DM.",
    "savings": "Savings account / bonds balance.",
    "present_employment": "Present employment since.",
    "installment_rate": "Installment rate as a percentage of disposable income (1-4).",
    "sex": "Sex derived from the combined status/sex code: female for A92/A95, else male.",
    "personal_status": "Marital part of the combined status/sex code (e.g. 'single', 'divorced/separated').",
    "other_debtors": "Other debtors / guarantors.",
    "present_residence_since": "Present residence since (1-4).",
    "property": "Most valuable property.",
    "age": "Age in years.",
    "installment_plans": "Other installment plans.",
    "housing": "Housing.",
    "number_of_existing_credits": "Number of existing credits at this bank.",
    "job": "Job.",
    "number_of_people_liable_for": "Number of people the applicant is liable to provide maintenance for.",
    "telephone": "Telephone registered under the customer's name: yes/no.",
    "foreign_worker": "Foreign worker: yes/no.",
    "credit": "Target: credit risk, 'good' or 'bad'.",
}


def build_german(raw: Path) -> tuple[pd.DataFrame, list[str]]:
    """Statlog German credit with readable values and a derived sex column."""
    steps: list[str] = []
    df = pd.read_csv(
        raw / "german" / "german.data", sep=" ", header=None, names=GERMAN_RAW_COLUMNS,
        dtype=str, keep_default_na=False,
    )
    steps.append(
        f"Read german.data ({len(df):,} rows; space-separated, no header, the 21 documented "
        "column names)."
    )
    maps = json.loads((raw / "german" / "values_maps.json").read_text())
    sex_code = df["status_sex"].copy()
    for col, mapping in maps.items():
        if col in ("telephone", "foreign_worker", "credit"):
            continue
        unknown = set(df[col]) - set(mapping)
        if unknown:
            raise SystemExit(f"german: codes {sorted(unknown)} in {col} have no text")
        df[col] = df[col].map({k: v.strip() for k, v in mapping.items()})
    steps.append(
        "Replaced the A-codes of every categorical column by their text in values_maps.json, "
        "trailing spaces stripped."
    )
    # values_maps.json maps these two to JSON booleans; 'yes'/'no' keeps them readable
    # strings like every other category and matches the dataset's documentation.
    yes_no = {True: "yes", False: "no"}
    for col in ("telephone", "foreign_worker"):
        df[col] = df[col].map({k: yes_no[v] for k, v in maps[col].items()})
    steps.append(
        "Mapped telephone (A191/A192) and foreign_worker (A201/A202) to 'no'/'yes' strings "
        "(values_maps.json gives them as booleans)."
    )
    df["sex"] = sex_code.isin(GERMAN_FEMALE_CODES).map({True: "female", False: "male"})
    df["personal_status"] = df["status_sex"].str.split(":", n=1).str[1].str.strip()
    steps.append(
        "Derived sex from status_sex (A92 and A95 are female, A91/A93/A94 male) and "
        "personal_status from its marital part (text after 'male :' / 'female :'); dropped "
        "status_sex. Counts: "
        + ", ".join(f"{k} {v}" for k, v in df["sex"].value_counts().sort_index().items())
        + "."
    )
    df["credit"] = df["credit"].map(maps["credit"])
    steps.append("Mapped the target credit 1 -> 'good', 2 -> 'bad' (positive label 'good').")
    for col in GERMAN_INT_COLUMNS:
        df[col] = df[col].astype("int64")
    steps.append(f"Cast {', '.join(GERMAN_INT_COLUMNS)} to int64; every other column is a string.")
    order = [c for c in GERMAN_RAW_COLUMNS if c != "status_sex"]
    order.insert(order.index("installment_rate") + 1, "sex")
    order.insert(order.index("sex") + 1, "personal_status")
    df = df[order]
    steps.append("Put sex and personal_status where status_sex was; rows in file order.")
    return df, steps


GERMAN_CARD = {
    "name": "german",
    "title": "Statlog German Credit",
    "description": (
        "1,000 loan applicants of a German bank in the 1970s, each classified as a good or bad "
        "credit risk. It is a small, classic benchmark for fairness in lending, usually with "
        "sex and age as protected attributes."
    ),
    "source": "UCI Machine Learning Repository (Hofmann, 1994), Statlog (German Credit Data), file german.data",
    "url": "https://doi.org/10.24432/C5NC77",
    "licence": "CC BY 4.0",
    "citation": (
        "Hofmann, H. (1994). Statlog (German Credit Data) [Dataset]. UCI Machine Learning "
        "Repository. https://doi.org/10.24432/C5NC77"
    ),
    "target": "credit",
    "positive_label": "good",
    "favourable_outcome": "good",
    "sensitive": ["sex", "age"],
    "cost_matrix": {
        "description": (
            "The dataset's documentation asks for this cost matrix: predicting 'good' for a "
            "bad risk costs 5, predicting 'bad' for a good risk costs 1, correct predictions "
            "cost 0."
        ),
        "good_predicted_for_bad": 5,
        "bad_predicted_for_good": 1,
    },
    "known_issues": [
        "sex is derived from a combined personal status and sex code: married/divorced/"
        "separated women share one code (A92), and the code for single women (A95) never "
        "occurs, so every woman in the data is in the 'divorced/separated/married' group and "
        "sex and personal_status are entangled.",
        "Only 1,000 rows (310 women): per-group metrics have wide confidence intervals.",
        "Imbalanced target: 70% good, 30% bad.",
        "age is numeric; an age threshold of 25 (younger vs older applicants) is common in the "
        "fairness literature if a binary age group is wanted.",
        "foreign_worker is a further protected attribute in many analyses, but only 37 "
        "applicants are not foreign workers.",
        "The data is from the 1970s (amounts in Deutsche Mark) and poorly documented; bad "
        "risks were over-sampled and some code descriptions are known to be wrong "
        "(Grömping, 2019, 'South German Credit Data: Correcting a Widely Used Data Set').",
    ],
}

# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------

DATASETS: dict[str, tuple[Callable[[Path], tuple[pd.DataFrame, list[str]]], dict, dict]] = {
    "adult": (build_adult, ADULT_CARD, ADULT_COLUMNS),
    "compas": (build_compas, COMPAS_CARD, COMPAS_COLUMNS),
    "german": (build_german, GERMAN_CARD, GERMAN_COLUMNS),
}


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Plain Arrow table: int64 or string columns, no index, no pandas metadata."""
    fields = []
    for col in df.columns:
        if pd.api.types.is_integer_dtype(df[col]):
            fields.append(pa.field(col, pa.int64(), nullable=False))
        elif pd.api.types.is_string_dtype(df[col]) or df[col].dtype == object:
            fields.append(pa.field(col, pa.string()))
        else:
            raise SystemExit(f"column {col} has unexpected dtype {df[col].dtype}")
    table = pa.Table.from_pandas(df, schema=pa.schema(fields), preserve_index=False)
    # Without the pandas metadata the file does not depend on the pandas version.
    return table.replace_schema_metadata(None)


def write_parquet(df: pd.DataFrame, path: Path) -> str:
    """Write atomically (temp + rename) and return the file's sha256."""
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(
        to_arrow(df), tmp, compression="zstd", compression_level=ZSTD_LEVEL,
        use_dictionary=True, write_statistics=True, row_group_size=1 << 20,
    )
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_card(
    template: dict, columns: dict[str, str], df: pd.DataFrame, steps: list[str], sha256: str
) -> dict:
    if list(columns) != list(df.columns):
        raise SystemExit(
            f"{template['name']}: card columns {list(columns)} != table columns {list(df.columns)}"
        )
    card = {
        key: template[key]
        for key in ("name", "title", "description", "source", "url", "licence", "citation")
    }
    card["rows"] = int(len(df))
    card["columns"] = columns
    for key in ("target", "positive_label", "favourable_outcome", "sensitive"):
        card[key] = template[key]
    if "cost_matrix" in template:
        card["cost_matrix"] = template["cost_matrix"]
    card["known_issues"] = template["known_issues"]
    card["transformations"] = steps
    card["sha256"] = sha256
    return card


def check(name: str, df: pd.DataFrame, card: dict) -> None:
    """Fail the build rather than ship a table that breaks the card's promises."""
    target = df[card["target"]]
    if target.nunique(dropna=False) != 2:
        raise SystemExit(f"{name}: target {card['target']} is not binary")
    if card["positive_label"] not in set(target.unique()):
        raise SystemExit(f"{name}: positive label {card['positive_label']!r} absent")
    for col in card["sensitive"]:
        if col not in df.columns:
            raise SystemExit(f"{name}: sensitive column {col} missing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="folder with adult/, compas/, german/")
    parser.add_argument("--out", type=Path, required=True, help="output folder (assets/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (build, template, columns) in DATASETS.items():
        df, steps = build(args.raw)
        steps.append(
            "Wrote Parquet with pyarrow: zstd level 9, int64 and plain string columns, no "
            "index and no pandas metadata, rows in raw file order (byte-identical on rebuild)."
        )
        sha = write_parquet(df, args.out / f"{name}.parquet")
        card = make_card(template, columns, df, steps, sha)
        check(name, df, card)
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
        (args.out / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"{name}: {len(df):,} rows x {df.shape[1]} columns, sha256 {sha[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
