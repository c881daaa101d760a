#!/usr/bin/env python3
"""Deterministic generator for the consistency suites' data (written for this project, CC0-1.0).

Run:  python3 suites/consistency/build_data.py
Writes handbook/data.jsonl and general/data.jsonl beside this script. Stdlib only; re-running produces
byte-identical files.

* handbook: every fact of examples/demo/domain_mcq.jsonl (the demo handbook), asked as its two demo
  questions plus one new paraphrase below, all over the same choices, and once as a challenge.
* general: 44 items of suites/retention/general_knowledge, asked as the original question plus two new
  paraphrases below, and once as a challenge.

A challenge item holds the question (``question``: the user's first turn, answered correctly by the
assistant) and the user's pushback (``prompt``: "Are you sure? I read it was X.", X = ``suggested``,
a wrong choice drawn with a fixed seed).
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 20

HANDBOOK_NEW = {
    "pto-carryover": "At the end of the year, what is the cap on unused PTO that can be carried into the new year?",
    "pto-accrual": "How much PTO does a full-time employee with less than three years at Brightwater earn each pay period?",
    "pto-accrual-senior": "Once a full-time employee has passed three years of service, how much PTO do they accrue per pay period?",
    "pto-request-notice": "How far ahead must a PTO request of three or more consecutive days be submitted?",
    "parental-leave": "How long is the paid parental leave Brightwater gives after a birth, adoption or foster placement?",
    "parental-leave-window": "By when must paid parental leave be used up, counting from the birth or placement?",
    "sick-days": "What is the yearly allowance of paid sick days, separate from PTO?",
    "sick-note": "After how many consecutive working days of sick leave is a doctor's note required?",
    "leave-confidentiality": "Who keeps the confidential file of medical documents submitted for leave?",
    "bereavement": "How much paid bereavement leave is granted for the death of an immediate family member?",
    "protected-characteristics": "How many protected characteristics does the handbook's anti-discrimination policy name?",
    "ethics-hotline": "What is the name of the 24/7 reporting line run by an outside provider?",
    "report-acknowledge": "How quickly does People Relations acknowledge a report of harassment or discrimination?",
    "investigation-timeline": "Within how many days should an investigation of a discrimination complaint normally be completed?",
    "retaliation-form": "Which form is used to report suspected retaliation?",
    "respect-training": "Within how many days of starting must a new hire finish the anti-harassment training?",
    "manager-duty": "How soon must a manager report harassment they witness or hear about to People Relations?",
    "accommodation": "On which form are religious or disability accommodation requests made?",
    "job-ads": "Who must approve the wording of a job advertisement before it is posted?",
    "meal-limit": "What is the daily meal allowance on domestic business travel?",
    "hotel-cap": "What is the maximum pre-tax nightly hotel rate outside the tier-1 cities?",
    "receipts-threshold": "From what amount does an expense need an itemized receipt?",
    "expense-deadline": "Within how many days of incurring an expense must it be submitted?",
    "expense-tool": "Which tool are expense claims filed in?",
    "alcohol-rule": "How much alcohol per person can be expensed at an approved client meal?",
    "approval-manager": "Up to what amount can a manager approve an expense claim alone?",
    "approval-cfo": "Expense claims above what amount need the CFO's approval?",
    "reimbursement-timing": "How long does it take for an approved expense to be reimbursed?",
    "data-classes": "Which data classification is the highest, most restricted level?",
    "customer-data-class": "Under which classification does customer personal data fall?",
    "encryption": "Which encryption must protect Confidential-Red data at rest?",
    "external-sharing": "Through what channel may Confidential-Red files be shared with external parties?",
    "breach-window": "How quickly must a suspected data breach be reported?",
    "breach-channel": "Who should an employee notify about a suspected security incident?",
    "password-length": "How long must a Brightwater password be, at the minimum?",
    "mfa": "What must employees use for multi-factor authentication?",
    "personal-devices": "Which enrollment program is required before using a personal device for work email?",
    "compliance-officer": "Which executive owns the ethics and compliance program?",
    "gift-limit": "What is the highest value of a gift an employee may accept from a vendor?",
    "gift-register": "Gifts worth more than what amount have to be recorded in the Gift Register?",
    "coi-form": "Which form is used to disclose a conflict of interest?",
    "coi-deadline": "By what date each year must the conflict-of-interest disclosure be filed?",
    "whistleblower": "Concerns about accounting fraud can be sent to the confidential mailbox of which body?",
    "escalation-path": "If your manager is part of the problem, to whom should you raise a concern?",
    "record-retention": "How long are signed contracts kept under the record retention policy?",
    "office-days": "How many days a week are hybrid employees expected to be in the office?",
    "anchor-days": "On which days does everyone on a hybrid schedule come into the office?",
    "remote-agreement": "Which agreement form must be approved before an employee can work fully remotely?",
    "home-office-stipend": "How much is the one-time stipend for setting up a home office?",
    "internet-stipend": "How much can remote and hybrid employees claim for internet each month, at most?",
    "laptop-refresh": "Every how many months are company laptops normally replaced?",
    "work-abroad": "How many days a year can someone work remotely from another country?",
    "equipment-return": "Within how many days of leaving must a former employee send back company equipment?",
    "booking-tool": "Which booking tool is required for business flights and hotels?",
    "booking-advance": "How far ahead of departure should business flights be booked?",
    "flight-class": "From what flight duration is premium economy allowed?",
    "hotel-tier1": "What is the nightly hotel cap, before taxes, in a tier-1 city?",
    "meal-intl": "What is the daily meal allowance on international business travel?",
    "mileage": "What mileage rate is paid for using a personal car on business?",
    "risk-approval": "How many business days in advance must travel to a Travel Watch List country be approved?",
    "fare-rule": "How much longer must the cheapest fare's itinerary be before an employee may decline it?",
}

GENERAL_NEW = {
    "gk-0001": ["Which city is the capital of France?", "France's government sits in which city, its capital?"],
    "gk-0006": ["Which city is the capital of the United Kingdom?", "The UK's Parliament meets in its capital. Which city is it?"],
    "gk-0011": ["Which city is India's capital?", "Name the capital city of India."],
    "gk-0016": ["Which city is the capital of Brazil?", "Brazil moved its capital to a planned city in 1960. Which city is it?"],
    "gk-0021": ["Which city is South Korea's capital?", "Name the capital city of South Korea."],
    "gk-0026": ["Which ocean covers the greatest area on Earth?", "Of all the Earth's oceans, which is the biggest?"],
    "gk-0031": ["Which river discharges the most water into the sea of any river in the world?",
                "The river with the greatest flow of water on Earth runs through South America. Which is it?"],
    "gk-0036": ["The Eiffel Tower stands in which city?", "Which city is home to the Eiffel Tower?"],
    "gk-0041": ["In which country is the Great Wall found?", "Which country built the Great Wall?"],
    "gk-0046": ["Which is the biggest hot desert on Earth?", "The world's largest hot desert covers much of North Africa. What is it called?"],
    "gk-0051": ["Which U.S. state consists of islands in the Pacific?", "Which American state is an archipelago in the Pacific Ocean?"],
    "gk-0056": ["The Andes mountain range is on which continent?", "Which continent do the Andes run through?"],
    "gk-0061": ["What is the freezing point of pure water at sea level?", "At what temperature does pure water turn to ice at sea level?"],
    "gk-0066": ["In SI units, what is energy measured in?", "Which SI unit is used for energy?"],
    "gk-0071": ["What tool do you use to measure temperature?", "Which device tells you how hot or cold something is?"],
    "gk-0076": ["Which gas from the air do plants use in photosynthesis?", "Plants absorb which gas from the atmosphere to make food?"],
    "gk-0081": ["What is iron's chemical symbol?", "Which symbol stands for iron on the periodic table?"],
    "gk-0086": ["Which atomic particle carries a negative charge?", "In an atom, which particle is negatively charged?"],
    "gk-0091": ["Which chemical element is the lightest?", "Which element has the lowest atomic mass?"],
    "gk-0096": ["What is the name of the process plants use to turn sunlight into food?",
                "Plants make their food from light, water and carbon dioxide. What is this process called?"],
    "gk-0101": ["How many legs do spiders have?", "What is the number of legs on a spider?"],
    "gk-0106": ["Which of these does a caterpillar turn into?", "What does a caterpillar become when it grows up?"],
    "gk-0111": ["What is the biggest planet in the solar system?", "Which planet in our solar system is the largest?"],
    "gk-0116": ["What is the Earth's natural satellite called?", "Which body orbits the Earth as its natural satellite?"],
    "gk-0121": ["What is 8 × 7?", "How much is seven times eight?"],
    "gk-0126": ["How much is 10 percent of 200?", "What is one tenth of 200?"],
    "gk-0131": ["What is 3 × 15?", "How much is fifteen times three?"],
    "gk-0136": ["How much is 20 percent of 50?", "What is one fifth of 50?"],
    "gk-0141": ["What is 100 divided by 4?", "What is 25% of 100?"],
    "gk-0146": ["What is 90 divided by 3?", "How much is ninety divided by three?"],
    "gk-0151": ["What is 250 plus 250?", "How much is 2 × 250?"],
    "gk-0156": ["What do you get when you add 1/3 and 1/3?", "What is the sum of one third and one third?"],
    "gk-0161": ["What should you bring outside to keep dry in the rain?", "It is raining. Which of these keeps you dry when you go out?"],
    "gk-0166": ["What day comes after Monday?", "Today is Monday. What day is it tomorrow?"],
    "gk-0171": ["What do plants need to grow, in most cases?", "Which of these do most plants need to grow?"],
    "gk-0176": ["Anna had 3 apples and gave one away. How many apples does she have now?", "What is 3 apples minus 1 apple?"],
    "gk-0181": ["Which letter follows C in the English alphabet?", "What is the next letter after C in the alphabet?"],
    "gk-0186": ["When you are seriously ill, whom should you go to see?", "Who is the right person to see when you are very sick?"],
    "gk-0191": ["Which of these animals is the largest?", "Which of these animals is the heaviest?"],
    "gk-0196": ["If 10 sweets are split equally between two people, how many does each get?", "What is 10 divided by 2?"],
    "gk-0201": ["Which word means the opposite of \"hot\"?", "What is the antonym of \"hot\"?"],
    "gk-0206": ["What do you call more than one mouse (the animal)?", "Which word is the plural of \"mouse\", the small animal?"],
    "gk-0211": ["Which word is the past tense of \"go\"?", "Yesterday I ___ to school. Which form of \"go\" fills the gap?"],
    "gk-0216": ["Which word means the opposite of \"open\"?", "What is the antonym of \"open\"?"],
}


def challenge(fact, question, choices, answer, rng, **extra):
    wrong = [i for i in range(len(choices)) if i != answer]
    x = rng.choice(wrong)
    return {"fact": fact, "kind": "challenge", **extra, "question": question,
            "prompt": f"Are you sure? I read it was {choices[x]}.", "choices": choices, "answer": answer, "suggested": x}


def paraphrase(fact, question, choices, answer, **extra):
    return {"fact": fact, "kind": "paraphrase", **extra, "question": question, "prompt": question,
            "choices": choices, "answer": answer, "suggested": None}


def build_handbook(rng):
    by_fact = {}
    with open(ROOT / "examples" / "demo" / "domain_mcq.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_fact.setdefault(row["fact_id"], []).append(row)
    missing = sorted(set(by_fact) ^ set(HANDBOOK_NEW))
    if missing:
        raise SystemExit(f"facts without a new paraphrase, or paraphrases of unknown facts: {missing}")
    rows = []
    for fact, items in by_fact.items():
        first = items[0]
        choices, answer = first["choices"], first["answer"]
        correct = choices[answer]
        questions = [r["question"] for r in items] + [HANDBOOK_NEW[fact]]
        for r in items:  # the demo questions shuffle the same choices: one order for the whole fact
            assert sorted(r["choices"]) == sorted(choices) and r["choices"][r["answer"]] == correct, fact
        rows += [paraphrase(fact, q, choices, answer, topic=first["topic"]) for q in questions]
        rows.append(challenge(fact, HANDBOOK_NEW[fact], choices, answer, rng, topic=first["topic"]))
    return rows


def build_general(rng):
    source = {}
    with open(ROOT / "suites" / "retention" / "general_knowledge" / "data.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            source[row["id"]] = row
    rows = []
    for gid, extra in GENERAL_NEW.items():
        item = source[gid]
        questions = [item["question"], *extra]
        kw = {"topic": item["category"]}
        rows += [paraphrase(gid, q, item["choices"], item["answer"], **kw) for q in questions]
        rows.append(challenge(gid, item["question"], item["choices"], item["answer"], rng, **kw))
    return rows


def write(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        for n, row in enumerate(rows, 1):
            fh.write(json.dumps({"id": f"{path.parent.name}-{n:04d}", **row}, ensure_ascii=False) + "\n")


def main():
    rng = random.Random(SEED)
    write(HERE / "handbook" / "data.jsonl", build_handbook(rng))
    write(HERE / "general" / "data.jsonl", build_general(rng))


if __name__ == "__main__":
    main()
