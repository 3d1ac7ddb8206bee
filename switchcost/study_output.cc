// How the study is shown: the short table and answers `switchyard switchcost` prints, and the
// "study" object of its --json, which the comparison's report renders (compare/study.py).
#include <ostream>
#include <sstream>

#include "switchcost/study.h"

namespace switchyard::switchcost {
namespace {

nlohmann::json QuotedJson(const Quoted& quoted) {
  nlohmann::json json = {
      {"label", quoted.label}, {"text", quoted.text}, {"measured", quoted.measured}};
  if (quoted.measured) {
    const Figure& row = quoted.row;
    json.update({{"unit", row.unit},
                 {"operation", row.operation},
                 {"method", row.method},
                 {"pinned", row.pinned},
                 {"value", row.value},
                 {"spread", row.spread},
                 {"unit_of_value", row.unit_of_value},
                 {"flagged", quoted.flagged}});
  }
  return json;
}

std::size_t Columns(const std::string& text) {
  std::size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return columns;
}

// Writes `text` in lines of at most `width` columns, each starting with `indent`.
void Wrap(const std::string& text, const std::string& indent, std::size_t width,
          std::ostream& out) {
  std::istringstream words(text);
  std::string line, word;
  while (words >> word) {
    if (!line.empty() && Columns(indent + line + " " + word) > width) {
      out << indent << line << "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out << indent << line << "\n";
}

}  // namespace

void PrintStudy(const Study& study, std::ostream& out) {
  out << "\nThe study's table: what a switch changes in each kind of unit, what it costs here, "
         "and the\nstudy note's guess (\"my understanding, not verified\") checked:\n";
  const std::vector<std::size_t> widths = {31, 13, 24, 28, 20, 15, 11};
  const std::vector<std::string> header = {"unit",      "page tables",  "kernel stack",
                                           "registers", "note's guess", "switch, 1 CPU",
                                           "create",    "PSS per unit"};
  for (std::size_t i = 0; i < widths.size(); ++i) out << Pad(header[i], widths[i]);
  out << header.back() << "\n";
  for (const StudyRow& row : study.rows) {
    const std::vector<std::string> cells = {
        row.kind,  row.page_tables,      row.kernel_stack,    row.registers,
        row.guess, row.switch_time.text, row.create_time.text};
    for (std::size_t i = 0; i < widths.size(); ++i) out << Pad(cells[i], widths[i]);
    out << row.memory.text << "\n";
  }
  out << "\nThe note's guesses:\n";
  for (const StudyRow& row : study.rows) Wrap(row.kind + ": " + row.verdict, "  ", 100, out);
  out << "\nThe study's questions, answered from the figures above:\n";
  for (const Question& question : study.questions) {
    Wrap(question.question, "  ", 100, out);
    Wrap(question.answer, "    ", 100, out);
  }
  if (study.flags.empty()) {
    out << "\nFlags: none (every figure the answers use is within what the kernel's design "
           "allows).\n";
  } else {
    out << "\nFlags: figures outside what the kernel's design allows, not given as answers:\n";
    for (const Flag& flag : study.flags) Wrap(flag.question + ": " + flag.why, "  ", 100, out);
  }
}

nlohmann::json StudyJson(const Study& study) {
  nlohmann::json rows = nlohmann::json::array();
  for (const StudyRow& row : study.rows) {
    rows.push_back({{"unit", row.unit},
                    {"kind", row.kind},
                    {"page_tables", row.page_tables},
                    {"kernel_stack", row.kernel_stack},
                    {"registers", row.registers},
                    {"guess", row.guess},
                    {"verdict", row.verdict},
                    {"switch", QuotedJson(row.switch_time)},
                    {"create", QuotedJson(row.create_time)},
                    {"memory", QuotedJson(row.memory)}});
  }
  nlohmann::json questions = nlohmann::json::array();
  for (const Question& question : study.questions) {
    nlohmann::json quoted = nlohmann::json::array();
    for (const Quoted& figure : question.figures) quoted.push_back(QuotedJson(figure));
    questions.push_back({{"id", question.id},
                         {"question", question.question},
                         {"answer", question.answer},
                         {"flagged", question.flagged},
                         {"figures", quoted}});
  }
  nlohmann::json flags = nlohmann::json::array();
  for (const Flag& flag : study.flags) {
    flags.push_back({{"question", flag.question}, {"why", flag.why}});
  }
  const AddressSpace& facts = study.address_space;
  return {{"address_space", {{"known", facts.known}, {"pcid", facts.pcid}, {"pti", facts.pti}}},
          {"rows", rows},
          {"questions", questions},
          {"flags", flags}};
}

}  // namespace switchyard::switchcost
