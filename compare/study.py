"""The study's table in the report: the questions Switchyard began from, answered with this run's
figures. `switchyard switchcost` builds the answers (switchcost/study.cc) and writes them into its
JSON as "study"; this only renders that object, so the answers are written once, in C++.
"""

TITLE = "The study's questions, answered on this machine"


def _cell(figure):
    return figure.get("text", "-") if figure else "-"


def section(switchcost):
    """The section's lines (its heading left out): the unit table, the note's guesses checked,
    each question with its answer, and the flags."""
    study = (switchcost or {}).get("study")
    if not study:
        why = (switchcost or {}).get("error") or (
            "the switch-cost microbenchmarks did not run" if not switchcost or
            "results" not in switchcost else "this run's switchcost predates the study's table")
        return [f"Not answered in this run: {' '.join(why.split())}."]  # one line
    header = ["unit", "page tables change", "kernel stack changes", "registers saved",
              "the note's guess", "one switch (1 CPU)", "create", "PSS per unit"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in study["rows"]:
        cells = [row["kind"], row["page_tables"], row["kernel_stack"], row["registers"],
                 row["guess"], _cell(row.get("switch")), _cell(row.get("create")),
                 _cell(row.get("memory"))]
        lines.append("| " + " | ".join(cells) + " |")
    space = study.get("address_space", {})
    pcid = "has" if space.get("pcid") else "has no"
    lines += ["", "Each figure is this run's own row of the Switch cost section (the row each "
              f"came from is in results.json, switchcost.study). The CPU {pcid} PCID; meltdown: "
              f"{space.get('pti')}.",
              "", "The study note's guesses (\"my understanding, not verified\"), checked:", ""]
    lines += [f"- {row['kind']}: {row['verdict']}" for row in study["rows"]]
    lines += ["", "The study's questions, each answered from this run's figures:", ""]
    for question in study["questions"]:
        lines.append(f"- {question['question']} — {question['answer']}")
    flags = study.get("flags", [])
    lines.append("")
    if flags:
        lines.append("Flagged (outside what the kernel's design allows, so not given as "
                     "answers; re-run on a quieter machine):")
        lines += [f"- ⚠ {flag['question']}: {flag['why']}" for flag in flags]
    else:
        lines.append("No figure fell outside what the kernel's design allows.")
    return lines
